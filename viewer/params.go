package viewer

import (
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/lonelytrace/lonelytrace/schema"
	tsearch "github.com/lonelytrace/lonelytrace/viewer/internal/search"
)

// The one place where a request's parameters become typed queries: every
// parameter is read, bounded and checked here, and every 400 message is
// written here, the checks made elsewhere (a step against its window)
// included. The handlers pass url.Values to these functions; the Go API
// takes the typed queries and checks them with the same functions.

// maxFilterLen bounds each filter and time parameter, so that a hostile
// query cannot make the viewer match megabyte patterns.
const maxFilterLen = 1024

// ParseError is a query parameter that could not be understood; it
// becomes a 400 response carrying Error's text.
type ParseError struct {
	Param, Value, Want string
}

func (e *ParseError) Error() string {
	return fmt.Sprintf("bad %s %q: want %s", e.Param, e.Value, e.Want)
}

// clip shortens a parameter's value for its error message.
func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}

// oneParam returns the value of the parameter name of params, "" when it
// is absent. Every parameter of the viewer is given at most once and holds
// at most maxFilterLen bytes; anything else is a *ParseError.
func oneParam(params url.Values, name string) (string, error) {
	vs := params[name]
	if len(vs) > 1 {
		return "", &ParseError{Param: name, Value: clip(strings.Join(vs, ",")), Want: "the parameter at most once"}
	}
	if len(vs) == 0 {
		return "", nil
	}
	if len(vs[0]) > maxFilterLen {
		return "", &ParseError{Param: name, Value: clip(vs[0]), Want: fmt.Sprintf("at most %d bytes", maxFilterLen)}
	}
	return vs[0], nil
}

// queryText reads the text of the window and filters from params.
func queryText(params url.Values) (QueryText, error) {
	var t QueryText
	for _, f := range []struct {
		name string
		dst  *string
	}{{"tz", &t.TZ}, {"since", &t.Since}, {"until", &t.Until}, {"broadcaster", &t.Broadcaster}, {"topic", &t.Topic}, {"glob", &t.Glob}} {
		var err error
		if *f.dst, err = oneParam(params, f.name); err != nil {
			return t, err
		}
	}
	return t, nil
}

// parseQuery parses the window and filters of params with now as the
// present and loc as the zone when tz is absent. Unknown parameters are
// ignored; anything unparseable is a *ParseError.
func parseQuery(params url.Values, now time.Time, loc *time.Location) (Query, error) {
	t, err := queryText(params)
	if err != nil {
		return Query{}, err
	}
	return ParseQuery(t, now, loc)
}

// badTime is the error of a since or until parameter (param) s that
// parseTime refused with err: a time outside the file's range, or no
// time and none of presets.
func badTime(param, s string, presets []string, err error) error {
	if errors.Is(err, errTimeRange) {
		return &ParseError{Param: param, Value: s, Want: "a time from 1678 to 2261 (int64 nanoseconds since 1970, the file's unit)"}
	}
	return &ParseError{Param: param, Value: s, Want: "an RFC 3339 time (2006-01-02T15:04:05Z07:00) or one of " + strings.Join(presets, ", ")}
}

// parseTZ reads a tz parameter: loc (time.Local when nil) when empty.
func parseTZ(tz string, loc *time.Location) (*time.Location, error) {
	if loc == nil {
		loc = time.Local
	}
	if tz == "" {
		return loc, nil
	}
	l, err := time.LoadLocation(tz)
	if err != nil {
		return nil, &ParseError{Param: "tz", Value: clip(tz), Want: `an IANA time zone such as "UTC" or "America/New_York"`}
	}
	return l, nil
}

// check completes q (its zone is loc when it has none) and checks what
// its types do not: a window that does not end before it starts, and a
// glob pattern.
func (q *Query) check(loc *time.Location) error {
	if q.Location == nil {
		q.Location = loc
	}
	if !q.SinceBeginning && q.Since.After(q.Until) {
		since := q.Raw.Since
		if since == "" {
			since = q.Since.Format(time.RFC3339Nano)
		}
		return &ParseError{Param: "since", Value: since, Want: fmt.Sprintf("a time not after until (%s)", q.Until.Format(time.RFC3339Nano))}
	}
	if err := schema.CheckGlob(q.Glob); err != nil {
		return &ParseError{Param: "glob", Value: q.Glob, Want: "a pattern: " + err.Error()}
	}
	return nil
}

const (
	// minStep and maxStep bound the step parameter.
	minStep, maxStep = time.Second, 24 * time.Hour
)

// parseStep reads the step parameter of params: 0 when absent.
func parseStep(params url.Values) (time.Duration, error) {
	v, err := oneParam(params, "step")
	if err != nil || v == "" {
		return 0, err
	}
	d, err := time.ParseDuration(v)
	if err != nil || d == 0 {
		return 0, badStep(v)
	}
	return d, checkStep(d, v)
}

// checkStep checks a step, given as text; 0 is the default.
func checkStep(d time.Duration, text string) error {
	if d != 0 && (d < minStep || d > maxStep || d%time.Millisecond != 0) {
		return badStep(text)
	}
	return nil
}

func badStep(text string) error {
	return &ParseError{Param: "step", Value: clip(text),
		Want: fmt.Sprintf("a Go duration from %s to %s in whole milliseconds, such as 10s or 5m", minStep, maxStep)}
}

// stepTooFine is the error of a step that cuts the window into n
// buckets, more than maxSeriesBuckets: the window is known only once
// the series is laid out (layoutSeries), so the check is made there.
func stepTooFine(step time.Duration, n uint64) error {
	return &ParseError{Param: "step", Value: step.String(),
		Want: fmt.Sprintf("a step that cuts the window into at most %d buckets (%d here)", maxSeriesBuckets, n)}
}

// parseSeries parses the parameters of /api/series.
func parseSeries(params url.Values, now time.Time, loc *time.Location) (SeriesQuery, error) {
	q, err := parseQuery(params, now, loc)
	if err != nil {
		return SeriesQuery{}, err
	}
	step, err := parseStep(params)
	return SeriesQuery{Query: q, Step: step}, err
}

// breakdownBys are the facts a breakdown groups by, in the page's order.
var breakdownBys = []string{"broadcaster", "topic", "service", "subscribers"}

// parseBreakdown parses the parameters of /api/breakdown.
func parseBreakdown(params url.Values, now time.Time, loc *time.Location) (BreakdownQuery, error) {
	q, err := parseQuery(params, now, loc)
	if err != nil {
		return BreakdownQuery{}, err
	}
	b := BreakdownQuery{Query: q}
	if b.By, err = oneParam(params, "by"); err != nil {
		return b, err
	}
	if b.Op, err = oneParam(params, "op"); err != nil {
		return b, err
	}
	_, err = b.check()
	return b, err
}

// check checks by and op, and returns op's index.
func (b BreakdownQuery) check() (op int, err error) {
	if !slices.Contains(breakdownBys, b.By) {
		return 0, &ParseError{Param: "by", Value: clip(b.By), Want: "one of " + strings.Join(breakdownBys, ", ")}
	}
	if b.Op == "" {
		return schema.NotifyIndex, nil
	}
	i, ok := schema.OpIndex(b.Op)
	if !ok {
		return 0, badOp(b.Op)
	}
	return i, nil
}

// badOp is the error of an op parameter that names no operation, in a
// breakdown or a search.
func badOp(op string) error {
	return &ParseError{Param: "op", Value: clip(op), Want: "one of " + strings.Join(schema.Operations[:], ", ")}
}

// pageRequest is the main page's parameters, parsed.
type pageRequest struct {
	q    Query
	text QueryText
	srch search
	step time.Duration
	// offset is the first trace of the list shown.
	offset int
	token  string
	// form holds the search as typed, for the form.
	form url.Values
	// queried is set once the window and filters are understood.
	queried bool
}

// parsePage parses the parameters of the main page. The request holds
// what could be read even with an error, for the form.
func parsePage(params url.Values, now time.Time, loc *time.Location) (pageRequest, error) {
	r := pageRequest{token: params.Get(TokenParam), form: params}
	var err error
	if r.text, err = queryText(params); err != nil {
		return r, err
	}
	if r.q, err = ParseQuery(r.text, now, loc); err != nil {
		return r, err
	}
	r.queried = true
	if r.offset, err = offsetParam(params, DefaultTraceLimit); err != nil {
		return r, err
	}
	if r.srch, err = parseSearch(params); err != nil {
		return r, err
	}
	r.step, err = parseStep(params)
	return r, err
}

// tracesRequest is the parameters of /api/traces, parsed.
type tracesRequest struct {
	q             Query
	srch          search
	offset, limit int
	// totals asks for the totals of the search.
	totals bool
}

// parseTraces parses the parameters of /api/traces.
func parseTraces(params url.Values, now time.Time, loc *time.Location) (tracesRequest, error) {
	var r tracesRequest
	var err error
	if r.q, err = parseQuery(params, now, loc); err != nil {
		return r, err
	}
	if r.limit, err = intParam(params, "limit", DefaultTraceLimit, 1, maxTraceLimit); err != nil {
		return r, err
	}
	if r.offset, err = offsetParam(params, r.limit); err != nil {
		return r, err
	}
	if r.srch, err = parseSearch(params); err != nil {
		return r, err
	}
	// The totals read the whole window where the list alone reads its
	// newest chunks: they are counted when asked for.
	r.totals, err = boolParam(params, "totals")
	return r, err
}

// offsetParam reads the offset of a page of limit traces: one range,
// stated once, whose highest offset is what the limit leaves of
// maxTraceOffset.
func offsetParam(params url.Values, limit int) (int, error) {
	return intParam(params, "offset", 0, 0, maxTraceOffset-limit)
}

func intParam(params url.Values, name string, def, lo, hi int) (int, error) {
	s := params.Get(name)
	if s == "" {
		return def, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < lo || n > hi {
		return 0, &ParseError{Param: name, Value: clip(s), Want: fmt.Sprintf("an integer from %d to %d", lo, hi)}
	}
	return n, nil
}

// boolParam reads a yes-or-no query parameter: absent or empty is false,
// and otherwise it is one of 1, true, 0, false.
func boolParam(params url.Values, name string) (bool, error) {
	switch s := params.Get(name); s {
	case "", "0", "false":
		return false, nil
	case "1", "true":
		return true, nil
	default:
		return false, &ParseError{Param: name, Value: clip(s), Want: "1, true, 0 or false"}
	}
}

// The search parameters of the trace list (docs/design.md#search), on top
// of the window and filters that every query shares. They narrow the
// trace list only: the aggregates of the page stay those of the window
// and filters, so that a door's count and its list tell the same story.

// maxAttrTerms bounds the attr parameters of one search.
const maxAttrTerms = 8

// maxSearchMs bounds min_ms and max_ms: durations are int64 nanoseconds.
const maxSearchMs = 9_000_000_000_000

// search is the parsed search parameters: the search's terms
// (viewer/internal/search), and the parameters as given, to carry them
// along in links (raw).
type search struct {
	tsearch.Terms
	raw url.Values
}

// parseSearch reads the search parameters of params. A bad value is a
// *ParseError that says what was expected.
func parseSearch(params url.Values) (search, error) {
	s := search{Terms: tsearch.NewTerms(), raw: url.Values{}}
	one := func(name string) (string, error) {
		v, err := oneParam(params, name)
		if v != "" {
			s.raw.Set(name, v)
		}
		return v, err
	}
	var err error
	if s.Op, err = one("op"); err != nil {
		return s, err
	}
	if _, known := schema.OpIndex(s.Op); s.Op != "" && !known {
		return s, badOp(s.Op)
	}
	if s.Service, err = one("service"); err != nil {
		return s, err
	}
	if s.Name, err = one("name"); err != nil {
		return s, err
	}
	if s.Status, err = one("status"); err != nil {
		return s, err
	}
	if s.Status != "" && s.Status != "error" && s.Status != "ok" {
		return s, &ParseError{Param: "status", Value: clip(s.Status), Want: `"error" or "ok" (any status but Error)`}
	}
	for _, b := range []struct {
		name string
		dst  *int64
	}{{"min_ms", &s.MinNs}, {"max_ms", &s.MaxNs}} {
		v, err := one(b.name)
		if err != nil {
			return s, err
		}
		if v == "" {
			continue
		}
		if *b.dst, err = parseMsBound(b.name, v); err != nil {
			return s, err
		}
	}
	sort, err := one("sort")
	if err != nil {
		return s, err
	}
	switch sort {
	case "", SortNewest:
	case SortSlowest:
		s.Sort = SortSlowest
	default:
		return s, &ParseError{Param: "sort", Value: clip(sort), Want: `"newest" or "slowest"`}
	}
	attrs := params["attr"]
	if len(attrs) > maxAttrTerms {
		return s, &ParseError{Param: "attr", Value: clip(strings.Join(attrs, ",")), Want: fmt.Sprintf("at most %d attr parameters", maxAttrTerms)}
	}
	for _, a := range attrs {
		if a == "" {
			continue
		}
		key, value, ok := strings.Cut(a, "=")
		if !ok || key == "" || len(a) > maxFilterLen {
			return s, &ParseError{Param: "attr", Value: clip(a), Want: fmt.Sprintf("key=value, a non-empty key, at most %d bytes", maxFilterLen)}
		}
		s.Attrs = append(s.Attrs, tsearch.Attr{Key: key, Value: value})
		s.raw.Add("attr", a)
	}
	return s, nil
}

// parseMsBound reads a duration bound in milliseconds, a decimal number
// from 0, and returns it in nanoseconds rounded up: a duration d (whole
// ns) is at least x ms exactly when d >= ceil(x·10^6), and below x ms
// exactly when d < ceil(x·10^6). The decimal is read exactly, so that a
// percentile the page shows, followed as min_ms, keeps the operation it
// was computed from.
func parseMsBound(name, v string) (int64, error) {
	bad := &ParseError{Param: name, Value: clip(v), Want: fmt.Sprintf("a number of milliseconds from 0 to %d, such as 12.5", int64(maxSearchMs))}
	if len(v) > 40 || strings.ContainsAny(v, "eE/") {
		return 0, bad
	}
	r, ok := new(big.Rat).SetString(v)
	if !ok || r.Sign() < 0 || r.Cmp(new(big.Rat).SetInt64(maxSearchMs)) > 0 {
		return 0, bad
	}
	r.Mul(r, new(big.Rat).SetInt64(1e6))
	q, m := new(big.Int).QuoRem(r.Num(), r.Denom(), new(big.Int))
	if m.Sign() > 0 {
		q.Add(q, big.NewInt(1))
	}
	return q.Int64(), nil
}

// values returns the parameters that reproduce s.
func (s search) values() url.Values {
	out := url.Values{}
	for k, vs := range s.raw {
		out[k] = slices.Clone(vs)
	}
	return out
}

// noSearch is the search of every trace: that of no parameter.
func noSearch() search {
	s, _ := parseSearch(nil)
	return s
}

// traceFormat reads the format parameter of /api/traces/:trace_id:
// reports whether it asks for OTLP/JSON.
func traceFormat(params url.Values) (otlp bool, err error) {
	switch format := params.Get("format"); format {
	case "", "json":
		return false, nil
	case "otlp":
		return true, nil
	default:
		return false, &ParseError{Param: "format", Value: clip(format), Want: `"json" (the default) or "otlp" (OTLP/JSON, as a download)`}
	}
}

// parseTraceID accepts 32 hex digits of a valid (non-zero) trace id.
func parseTraceID(s string) (trace.TraceID, error) {
	var id trace.TraceID
	if len(s) != 32 {
		return id, &ParseError{Param: "trace_id", Value: clip(s), Want: "32 hexadecimal digits"}
	}
	if _, err := hex.Decode(id[:], []byte(s)); err != nil || !id.IsValid() {
		return id, &ParseError{Param: "trace_id", Value: clip(s), Want: "32 hexadecimal digits, not all zero"}
	}
	return id, nil
}

// text is q as the parameters of its links write it.
func (q Query) text() QueryText {
	v := q.values()
	return QueryText{Since: v.Get("since"), Until: v.Get("until"), TZ: v.Get("tz"), Broadcaster: q.Broadcaster, Topic: q.Topic, Glob: q.Glob}
}

// tracePageRequest is the parameters of a trace's page, parsed: the
// window, filters, search and token it carries along in its links.
type tracePageRequest struct {
	q     Query
	srch  search
	token string
}

// parseTracePage parses the parameters of a trace's page.
func parseTracePage(params url.Values, now time.Time, loc *time.Location) (tracePageRequest, error) {
	r := tracePageRequest{token: params.Get(TokenParam)}
	var err error
	if r.q, err = parseQuery(params, now, loc); err != nil {
		return r, err
	}
	r.srch, err = parseSearch(params)
	return r, err
}
