package page

import (
	"bufio"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/lonelytrace/lonelytrace/schema"
	"github.com/lonelytrace/lonelytrace/viewer/model"
)

// WriteSummaryText writes s for a terminal: the same sections as the page, in the
// same order, each with its line on how to read it.
func WriteSummaryText(w io.Writer, s *model.Summary) error {
	out := bufio.NewWriter(w)
	printf := func(format string, args ...any) { fmt.Fprintf(out, format, args...) }
	how := func(text string) { printf("  (%s)\n\n", text) }

	printf("Window %s to %s (%s): %s spans stored in it.\n", s.Since.Format(time.RFC3339), s.Until.Format(time.RFC3339), s.TZ, fmtCount(s.Spans))
	if s.Dropped > 0 || s.Failed > 0 {
		printf("WARNING: the exporters dropped %s spans and failed to write %s; the numbers miss them.\n", fmtCount(s.Dropped), fmtCount(s.Failed))
	}
	printf("\n")

	printf("NOTIFY\n")
	n := s.Operations[schema.OpNotify]
	were, notifications := "were", "notifications"
	if n.Count == 1 {
		were, notifications = "was", "notification"
	}
	broadcasters := "broadcasters"
	if s.Broadcasters == 1 {
		broadcasters = "broadcaster"
	}
	printf("There %s %s %s to %s %s", were, fmtCount(n.Count), notifications, fmtCount(s.Broadcasters), broadcasters)
	if durations := n.DurationMs; durations != nil {
		printf(", taking %s (25%% %s, 75%% %s, 99%% %s)", fmtMs(durations.P50()), fmtMs(durations.P25()), fmtMs(durations.P75()), fmtMs(durations.P99()))
	}
	if sizes := n.SizeBytes; sizes != nil {
		printf(" to transmit %s (25%% %s, 75%% %s, 99%% %s) of meaningful data", fmtBytes(sizes.P50()), fmtBytes(sizes.P25()), fmtBytes(sizes.P75()), fmtBytes(sizes.P99()))
	}
	switch {
	case n.Count == 0:
	case n.Errors == 0:
		printf(", and none of them failed")
	default:
		printf(", and %s of them failed", fmtCount(n.Errors))
	}
	printf(".\n")
	if n.Approximate {
		how("medians, with the 25th, 75th and 99th percentiles in brackets, " + estimated + "; meaningful data is the message body only; a notification failed when its span's status is Error")
	} else {
		how("medians, with the 25th, 75th and 99th percentiles in brackets; meaningful data is the message body only; a notification failed when its span's status is Error")
	}

	for _, op := range []string{schema.OpNotify, schema.OpReceive} {
		a := s.AverageTrace[op]
		printf("AVERAGE TRACE OF %s (from the %s most recent of %s)\n", strings.ToUpper(opLabel(op)), fmtCount(a.Operations), fmtCount(a.Total))
		for _, ph := range a.Phases {
			failed := ""
			if ph.ErrorPercent > 0 {
				failed = ", failed in " + fmtPercent(ph.ErrorPercent)
			}
			printf("%s-%s: %s (25%% %s, 75%% %s, 99%% %s) (in %s of traces%s)\n", fmtMs(ph.StartMs), fmtMs(ph.EndMs), ph.Name,
				fmtMs(ph.DurationMs.P25()), fmtMs(ph.DurationMs.P75()), fmtMs(ph.DurationMs.P99()), fmtPercent(ph.InPercent), failed)
		}
		how("each phase (span below the operation's span, by name) from its median start to its median end after the operation's start, its duration percentiles, the share of operations that had it and of those in which it failed")
	}

	printf("COUNTS\n%-18s %12s %16s %12s %12s %12s %14s\n", "operation", "total", "failed", "stateless", "stateful", "bytes", "latest")
	for _, op := range schema.Operations {
		o := s.Operations[op]
		latest := "never"
		if o.SinceMostRecentMs != nil {
			latest = fmtMs(*o.SinceMostRecentMs) + " ago"
		}
		printf("%-18s %12s %16s %12s %12s %12s %14s\n", opLabel(op), fmtCount(o.Count), failedShare(o.Errors, o.Count), fmtCount(o.Stateless.Count), fmtCount(o.Stateful.Count), fmtBytes(float64(o.Bytes)), latest)
	}
	how("operations that started in the window, those that failed (status Error) and their share, by connection style, with their meaningful bytes and how long ago the latest started")

	printf("DURATIONS\n%-18s", "operation")
	for _, name := range model.PercentileNames {
		printf(" %9s", name)
	}
	printf("\n")
	row := func(label string, pc *model.Percentiles, format func(float64) string) {
		printf("%-18s", label)
		for i := range model.PercentileNames {
			if pc == nil {
				printf(" %9s", "–")
			} else {
				printf(" %9s", format(pc[i]))
			}
		}
		printf("\n")
	}
	approximate := false
	for _, op := range schema.Operations {
		o := s.Operations[op]
		row(opLabel(op)+approxMark(o.Approximate), o.DurationMs, fmtMs)
		approximate = approximate || o.Approximate
	}
	for _, g := range n.BySubscribers {
		row(fmt.Sprintf("notify, %s subs", fmtCount(g.Subscribers))+approxMark(g.Approximate), g.DurationMs, fmtMs)
	}
	if approximate {
		how("end minus start of each operation's span; p50 is the median, p99 is exceeded by one in a hundred, p100 is the slowest; ≈ marks percentiles " + estimated)
	} else {
		how("end minus start of each operation's span; p50 is the median, p99 is exceeded by one in a hundred, p100 is the slowest")
	}

	if len(n.BySubscribers) > 0 {
		printf("NOTIFY BY SUBSCRIBERS REACHED\n%-18s %12s %16s\n", "subscribers", "count", "failed")
		for _, g := range n.BySubscribers {
			printf("%-18s %12s %16s\n", fmtCount(g.Subscribers), fmtCount(g.Count), failedShare(g.Errors, g.Count))
		}
		how("notifications by how many subscribers the broadcaster reached, and how many of them failed")
	}

	printf("SIZES\n")
	for _, op := range []string{schema.OpNotify, schema.OpReceive} {
		row(opLabel(op)+approxMark(s.Operations[op].Approximate), s.Operations[op].SizeBytes, fmtBytes)
	}
	for _, op := range []string{schema.OpNotify, schema.OpReceive} {
		o := s.Operations[op]
		if len(o.BySize) == 0 {
			continue
		}
		printf("%s by size:", opLabel(op))
		for _, bk := range o.BySize {
			if bk.Count > 0 {
				printf(" below %s: %s;", bk.Below, fmtCount(bk.Count))
			}
		}
		printf("\n")
	}
	how(`meaningful bytes per message; "below 2^k" holds sizes from 2^(k-1) to 2^k - 1, "below 1" the empty ones`)

	printf("FILES\n")
	for _, f := range s.Files {
		printf("%s: %s spans, %s dropped, %s failed, checkpoints held back %s times\n", f.Path, fmtCount(f.Spans), fmtCount(f.Dropped), fmtCount(f.Failed), fmtCount(f.CheckpointsBlocked))
	}
	return out.Flush()
}

// estimated says how percentiles marked approximate were computed.
const estimated = "estimated from a sketch within 1 % (the window holds more than 1,000,000 operations)"

// approxMark is the mark of an approximate percentile's row: " ≈".
func approxMark(approximate bool) string {
	if approximate {
		return " ≈"
	}
	return ""
}

// failedShare writes a count of failures with its share: "3 (2.5%)".
func failedShare(errors, count int64) string {
	if count == 0 {
		return fmtCount(errors)
	}
	return fmt.Sprintf("%s (%s)", fmtCount(errors), fmtPercent(share(errors, count)))
}

// WriteBreakdownText writes b for a terminal: one line per group, the largest
// first.
func WriteBreakdownText(w io.Writer, b *model.Breakdown) error {
	out := bufio.NewWriter(w)
	fmt.Fprintf(out, "\n%s BY %s\n%-30s %12s %16s %12s %9s %9s\n", strings.ToUpper(opLabel(b.Op)), strings.ToUpper(b.By), b.By, "count", "failed", "bytes", "p50", "p99")
	approximate := false
	for _, r := range b.Rows {
		key := r.Key
		if key == "" {
			key = "(none)"
		}
		fmt.Fprintf(out, "%-30s %12s %16s %12s %9s %9s\n", key+approxMark(r.Approximate), fmtCount(r.Count), failedShare(r.Errors, r.Count), fmtBytes(float64(r.Bytes)), fmtMs(r.DurationMs.P50()), fmtMs(r.DurationMs.P99()))
		approximate = approximate || r.Approximate
	}
	fmt.Fprintf(out, "  (the %s operations of the window by %s, the largest groups first; (none) holds those without it", opLabel(b.Op), b.By)
	if approximate {
		fmt.Fprintf(out, "; ≈ marks percentiles %s", estimated)
	}
	fmt.Fprintf(out, ")\n")
	return out.Flush()
}
