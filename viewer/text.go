package viewer

import (
	"bufio"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/lonelytrace/lonelytrace/schema"
)

// WriteText writes s for a terminal: the same sections as the page, in the
// same order, each with its line on how to read it.
func (s *Summary) WriteText(w io.Writer) error {
	b := bufio.NewWriter(w)
	p := func(format string, args ...any) { fmt.Fprintf(b, format, args...) }
	how := func(text string) { p("  (%s)\n\n", text) }

	p("Window %s to %s (%s): %s spans stored in it.\n", s.Since.Format(time.RFC3339), s.Until.Format(time.RFC3339), s.TZ, fmtCount(s.Spans))
	if s.Dropped > 0 || s.Failed > 0 {
		p("WARNING: the exporters dropped %s spans and failed to write %s; the numbers miss them.\n", fmtCount(s.Dropped), fmtCount(s.Failed))
	}
	p("\n")

	p("NOTIFY\n")
	n := s.Operations[schema.OpNotify]
	p("There were %s notifications to %s broadcasters", fmtCount(n.Count), fmtCount(s.Broadcasters))
	if d := n.DurationMs; d != nil {
		p(", taking %s (25%% %s, 75%% %s, 99%% %s)", fmtMs(d.P50()), fmtMs(d.P25()), fmtMs(d.P75()), fmtMs(d.P99()))
	}
	if z := n.SizeBytes; z != nil {
		p(" to transmit %s (25%% %s, 75%% %s, 99%% %s) of meaningful data", fmtBytes(z.P50()), fmtBytes(z.P25()), fmtBytes(z.P75()), fmtBytes(z.P99()))
	}
	p(".\n")
	how("medians, with the 25th, 75th and 99th percentiles in brackets; meaningful data is the message body only")

	for _, op := range []string{schema.OpNotify, schema.OpReceive} {
		a := s.AverageTrace[op]
		p("AVERAGE TRACE OF %s (from the %s most recent of %s)\n", strings.ToUpper(opLabel(op)), fmtCount(a.Operations), fmtCount(a.Total))
		for _, ph := range a.Phases {
			p("%s-%s: %s (25%% %s, 75%% %s, 99%% %s) (in %s of traces)\n", fmtMs(ph.StartMs), fmtMs(ph.EndMs), ph.Name,
				fmtMs(ph.DurationMs.P25()), fmtMs(ph.DurationMs.P75()), fmtMs(ph.DurationMs.P99()), fmtPercent(ph.InPercent))
		}
		how("each phase (span below the operation's span, by name) from its median start to its median end after the operation's start, its duration percentiles, and the share of operations that had it")
	}

	p("COUNTS\n%-18s %12s %12s %12s %12s %14s\n", "operation", "total", "stateless", "stateful", "bytes", "latest")
	for _, op := range schema.Operations {
		o := s.Operations[op]
		latest := "never"
		if o.SinceMostRecentMs != nil {
			latest = fmtMs(*o.SinceMostRecentMs) + " ago"
		}
		p("%-18s %12s %12s %12s %12s %14s\n", opLabel(op), fmtCount(o.Count), fmtCount(o.Stateless.Count), fmtCount(o.Stateful.Count), fmtBytes(float64(o.Bytes)), latest)
	}
	how("operations that started in the window, by connection style, with their meaningful bytes and how long ago the latest started")

	p("DURATIONS\n%-18s", "operation")
	for _, name := range percentileNames {
		p(" %9s", name)
	}
	p("\n")
	row := func(label string, pc *Percentiles, f func(float64) string) {
		p("%-18s", label)
		for i := range percentileNames {
			if pc == nil {
				p(" %9s", "–")
			} else {
				p(" %9s", f(pc[i]))
			}
		}
		p("\n")
	}
	for _, op := range schema.Operations {
		row(opLabel(op), s.Operations[op].DurationMs, fmtMs)
	}
	for _, g := range n.BySubscribers {
		row(fmt.Sprintf("notify, %s subs", fmtCount(g.Subscribers)), g.DurationMs, fmtMs)
	}
	how("end minus start of each operation's span; p50 is the median, p99 is exceeded by one in a hundred, p100 is the slowest")

	p("SIZES\n")
	for _, op := range []string{schema.OpNotify, schema.OpReceive} {
		row(opLabel(op), s.Operations[op].SizeBytes, fmtBytes)
	}
	for _, op := range []string{schema.OpNotify, schema.OpReceive} {
		o := s.Operations[op]
		if len(o.BySize) == 0 {
			continue
		}
		p("%s by size:", opLabel(op))
		for _, bk := range o.BySize {
			if bk.Count > 0 {
				p(" below %s: %s;", bk.Below, fmtCount(bk.Count))
			}
		}
		p("\n")
	}
	how(`meaningful bytes per message; "below 2^k" holds sizes from 2^(k-1) to 2^k - 1, "below 1" the empty ones`)

	p("FILES\n")
	for _, f := range s.Files {
		p("%s: %s spans, %s dropped, %s failed\n", f.Path, fmtCount(f.Spans), fmtCount(f.Dropped), fmtCount(f.Failed))
	}
	return b.Flush()
}
