package viewer

import (
	"errors"
	"fmt"
	"math"
	"net/url"
	"time"
)

// The named starts and ends of a window (docs/design.md#windows-and-percentiles).
var (
	sincePresets = []string{"beginning", "penultimate-midnight", "24h-ago", "penultimate-hour", "1h-ago", "penultimate-minute", "1m-ago"}
	untilPresets = []string{"now", "midnight", "top-of-hour", "top-of-minute"}
)

// Defaults of the window when a parameter is empty or absent.
const (
	defaultSince = "24h-ago"
	defaultUntil = "now"
)

// Query is the window and the filters of one question to the viewer,
// shared by every answer: the Go API takes it, and the page and the JSON
// API parse it from their parameters (since, until, tz, broadcaster,
// topic, glob).
type Query struct {
	// Since and Until bound the window: a span is in it when its start is
	// in [Since, Until). With SinceBeginning, Since is ignored.
	Since, Until   time.Time
	SinceBeginning bool
	// Location is the zone of the named instants (midnight, top of hour)
	// and of the times reported; nil is the viewer's zone.
	Location *time.Location
	// Broadcaster, Topic and Glob filter operations; "" means any. Glob
	// is a pattern (docs/design.md#windows-and-percentiles).
	Broadcaster, Topic, Glob string
	// Raw holds since, until and tz as given (ParseQuery fills it), to
	// carry them along in the page's links.
	Raw struct{ Since, Until, TZ string }
}

// QueryText is a Query as a user writes it: the page's parameters, the
// command line's flags. An empty field takes its default.
type QueryText struct {
	Since, Until, TZ         string
	Broadcaster, Topic, Glob string
}

// ParseQuery parses t with now as the present and loc as the zone when
// t.TZ is empty. Anything unparseable is a *ParseError.
//
// Since and Until take an RFC 3339 time or a preset (docs/design.md#the-window):
//
//	since: beginning, penultimate-midnight, 24h-ago (the default),
//	       penultimate-hour, 1h-ago, penultimate-minute, 1m-ago
//	until: now (the default), midnight, top-of-hour, top-of-minute
//
// so that since=penultimate-midnight&until=midnight is yesterday in tz.
func ParseQuery(t QueryText, now time.Time, loc *time.Location) (Query, error) {
	q := Query{Broadcaster: t.Broadcaster, Topic: t.Topic, Glob: t.Glob}
	q.Raw.Since, q.Raw.Until, q.Raw.TZ = t.Since, t.Until, t.TZ
	var err error
	if q.Location, err = parseTZ(t.TZ, loc); err != nil {
		return q, err
	}
	since, until := t.Since, t.Until
	if since == "" {
		since = defaultSince
	}
	if until == "" {
		until = defaultUntil
	}
	now = now.In(q.Location)
	if q.Until, err = parseUntil(until, now); err != nil {
		return q, err
	}
	if q.Since, q.SinceBeginning, err = parseSince(since, now); err != nil {
		return q, err
	}
	err = q.check(loc)
	return q, err
}

func parseSince(s string, now time.Time) (t time.Time, beginning bool, err error) {
	switch s {
	case "beginning":
		return time.Time{}, true, nil
	case "penultimate-midnight":
		return lastMidnight(lastMidnight(now).Add(-1)), false, nil
	case "24h-ago":
		return now.Add(-24 * time.Hour), false, nil
	case "penultimate-hour":
		return lastTop(lastTop(now, time.Hour).Add(-1), time.Hour), false, nil
	case "1h-ago":
		return now.Add(-time.Hour), false, nil
	case "penultimate-minute":
		return lastTop(lastTop(now, time.Minute).Add(-1), time.Minute), false, nil
	case "1m-ago":
		return now.Add(-time.Minute), false, nil
	}
	t, err = parseTime(s)
	if err != nil {
		return t, false, badTime("since", s, sincePresets, err)
	}
	return t, false, nil
}

func parseUntil(s string, now time.Time) (time.Time, error) {
	switch s {
	case "now":
		return now, nil
	case "midnight":
		return lastMidnight(now), nil
	case "top-of-hour":
		return lastTop(now, time.Hour), nil
	case "top-of-minute":
		return lastTop(now, time.Minute), nil
	}
	t, err := parseTime(s)
	if err != nil {
		return t, badTime("until", s, untilPresets, err)
	}
	return t, nil
}

// errTimeRange is parseTime's error for a well-formed time the file
// cannot hold (badTime says which times it can).
var errTimeRange = errors.New("time out of range")

// parseTime accepts RFC 3339 with or without fractional seconds, and only
// times that fit in int64 Unix nanoseconds, the unit of the file.
func parseTime(s string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return t, err
	}
	if t.Year() < 1678 || t.Year() > 2261 {
		return t, fmt.Errorf("year %d: %w", t.Year(), errTimeRange)
	}
	return t, nil
}

// maxZoneSteps bounds how many zone changes lastStart walks back over; a
// day, hour or minute never spans more than a few.
const maxZoneSteps = 4

// lastMidnight returns the start of t's day in t's zone: midnight, or the
// instant the clock resumes where daylight saving skips midnight, and the
// first of two midnights where the clock falls back across one.
func lastMidnight(t time.Time) time.Time { return lastStart(t, 24*time.Hour, true) }

// lastTop returns the most recent top of the hour (unit time.Hour) or of
// the minute at or before t on t's wall clock, the most recent one where
// the clock falls back and reads it twice.
func lastTop(t time.Time, unit time.Duration) time.Time { return lastStart(t, unit, false) }

// lastStart returns the latest instant at or before t at which t's wall
// clock read a multiple of unit (a whole day, hour or minute), or jumped
// over one (then the unit starts when the clock resumes). Where the clock
// falls back and reads the same multiple twice, first picks the first
// reading, else the most recent.
//
// It reads the wall clock within one zone period (ZoneBounds) at a time,
// where the wall clock runs with the absolute time, and steps back over a
// zone change only when the period holds no such reading: neither
// time.Date's normalisation (which puts a skipped midnight west of UTC an
// hour early) nor subtracting the wall clock's minutes (which crosses a
// half-hour change) is right across every change.
func lastStart(t time.Time, unit time.Duration, first bool) time.Time {
	c := t
	for range maxZoneSteps {
		top := wallClock(t).Truncate(unit)
		c = t.Add(-wallClock(t).Sub(top))
		start, _ := t.ZoneBounds()
		if start.IsZero() {
			return c
		}
		before := wallClock(start.Add(-1))
		if !c.Before(start) {
			// The period before this one may have read the same top first.
			if !first || !before.Truncate(unit).Equal(top) {
				return c
			}
		} else if top.After(before) {
			return start // the clock jumped over top when this period began
		}
		t = start.Add(-1)
	}
	return c
}

// wallClock returns t's wall-clock reading as the same reading in UTC, where
// whole days, hours and minutes are multiples of the unit since the zero
// time, so that Truncate finds them.
func wallClock(t time.Time) time.Time {
	y, mo, d := t.Date()
	h, mi, s := t.Clock()
	return time.Date(y, mo, d, h, mi, s, t.Nanosecond(), time.UTC)
}

// bounds returns the window as Unix nanoseconds [lo, hi).
func (q Query) bounds() (lo, hi int64) {
	lo = math.MinInt64
	if !q.SinceBeginning {
		lo = q.Since.UnixNano()
	}
	return lo, q.Until.UnixNano()
}

// values returns the parameters that reproduce q, for links.
func (q Query) values() url.Values {
	v := url.Values{}
	set := func(k, s string) {
		if s != "" {
			v.Set(k, s)
		}
	}
	set("since", q.Raw.Since)
	set("until", q.Raw.Until)
	set("tz", q.Raw.TZ)
	set("broadcaster", q.Broadcaster)
	set("topic", q.Topic)
	set("glob", q.Glob)
	return v
}
