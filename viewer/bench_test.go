package viewer_test

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/lonelytrace/lonelytrace/schema"
)

// benchFiles caches the generated files across a benchmark's runs: making
// a million spans takes longer than the benchmark itself.
var (
	benchMu    sync.Mutex
	benchFiles = map[int]string{}
	benchDir   string
)

func TestMain(m *testing.M) {
	code := m.Run()
	if benchDir != "" {
		os.RemoveAll(benchDir)
	}
	os.Exit(code)
}

// benchFile returns a trace file of about n spans over the week before
// testNow: notifies with three phases, receives with two, and the other
// operations alone, written through the real SDK and exporter.
func benchFile(b *testing.B, n int) string {
	benchMu.Lock()
	defer benchMu.Unlock()
	if p, ok := benchFiles[n]; ok {
		return p
	}
	keep := os.Getenv("LONELYTRACE_BENCH_DIR") // keeps the files between runs
	if keep != "" {
		path := filepath.Join(keep, fmt.Sprintf("%d.db", n))
		if _, err := os.Stat(path); err == nil {
			benchFiles[n] = path
			return path
		}
		if err := os.MkdirAll(keep, 0o755); err != nil {
			b.Fatal(err)
		}
	} else if benchDir == "" {
		d, err := os.MkdirTemp("", "lonelytrace-bench-")
		if err != nil {
			b.Fatal(err)
		}
		benchDir = d
	}
	dir := benchDir
	if keep != "" {
		dir = keep
	}
	path := filepath.Join(dir, fmt.Sprintf("%d.db", n))
	r := newRecorder()
	ctx := context.Background()
	step := 7 * 24 * time.Hour / time.Duration(n)
	topics := []string{"orders", "orders/eu", "users.new", "metrics", "chat/room1", "chat/room2"}
	spans := 0
	var batch []opSpec
	flushAt := 200_000
	written := 0
	for i := 0; spans < n; i++ {
		start := testNow.Add(-time.Duration(spans) * step)
		var o opSpec
		switch i % 10 {
		case 0, 1, 2, 3, 4, 5:
			o = newOp(schema.OpNotify, start, time.Duration(1e6+i%5e6))
			o.size, o.subs, o.broadcaster = int64(i%70_000), int64(i%7), fmt.Sprintf("b%d:3003", i%3)
			o.phases = []phaseSpec{{name: "hash", dur: 1e5}, {name: "send request", off: 2e5, dur: time.Duration(5e5 + i%1e6)},
				{name: "receive confirmed", off: 9e5, dur: 1e4}}
		case 6, 7, 8:
			o = newOp(schema.OpReceive, start, time.Duration(5e5+i%3e6))
			o.size, o.stateful = int64(i%70_000), int8(i%2)
			o.phases = []phaseSpec{{name: "verify", dur: 1e5}, {name: "handle", off: 1e5, dur: time.Duration(3e5 + i%1e6)}}
		default:
			o = newOp(schema.Operations[2+i%6], start, time.Duration(2e5+i%1e6))
			o.glob = "orders*"
		}
		o.topic = topics[i%len(topics)]
		spans += 1 + len(o.phases)
		batch = append(batch, o)
		if spans-written >= flushAt {
			for _, o := range batch {
				r.record(ctx, o)
			}
			writeSpansAppend(b, path, r.c.take())
			batch, written = batch[:0], spans
		}
	}
	for _, o := range batch {
		r.record(ctx, o)
	}
	writeSpansAppend(b, path, r.c.take())
	benchFiles[n] = path
	return path
}

func BenchmarkSummary(b *testing.B) {
	for _, n := range []int{100_000, 1_000_000} {
		for _, since := range []string{"24h-ago", "beginning"} {
			b.Run(fmt.Sprintf("spans=%d/since=%s", n, since), func(b *testing.B) {
				path := benchFile(b, n)
				v := mustOpen(b, testNow, path)
				base := server(b, v)
				params := url.Values{"since": {since}}
				var times []time.Duration
				b.ResetTimer()
				for b.Loop() {
					t0 := time.Now()
					s := summary(b, base, params)
					times = append(times, time.Since(t0))
					if s.Operations[schema.OpNotify].Count == 0 {
						b.Fatal("no notify in the window")
					}
				}
				slices.Sort(times)
				med := times[len(times)/2]
				b.ReportMetric(float64(med.Microseconds())/1000, "median-ms")
				b.ReportMetric(float64(n)/med.Seconds(), "spans/s")
			})
		}
	}
}
