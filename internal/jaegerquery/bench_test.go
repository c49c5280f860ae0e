package jaegerquery

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"
)

// BenchmarkFetch fetches a window of 10,000 traces (13,334 spans) of
// three services from the in-process fake into a new file each time:
// the cost of the wire, the conversion and the writer, not of a store.
func BenchmarkFetch(b *testing.B) {
	services := []string{"orders", "billing", "mail"}
	traces := makeTraces(10_000, services, t0, 300*time.Millisecond) // 50 min
	f := startFake(b, services, traces)
	want, _ := wantSpans(traces, t0, windowE)
	dir := b.TempDir()
	var spans, ntraces int
	for i := 0; b.Loop(); i++ {
		res, err := FetchFile(context.Background(), f.addr, filepath.Join(dir, fmt.Sprintf("j%d.db", i)), t0, windowE)
		if err != nil {
			b.Fatal(err)
		}
		if res.Spans != want {
			b.Fatalf("stored %d spans; want %d", res.Spans, want)
		}
		spans += res.Spans
		ntraces += res.Traces
	}
	s := b.Elapsed().Seconds()
	b.ReportMetric(float64(ntraces)/s, "traces/s")
	b.ReportMetric(float64(spans)/s, "spans/s")
}
