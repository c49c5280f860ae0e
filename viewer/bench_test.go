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
	benchFiles = map[string]string{}
	benchDir   string
)

func TestMain(m *testing.M) {
	if path := os.Getenv(envScaleChild); path != "" {
		scaleChild(path) // a viewer process of BenchmarkScale; never returns
	}
	code := m.Run()
	if benchDir != "" {
		os.RemoveAll(benchDir)
	}
	os.Exit(code)
}

// benchFile returns a trace file of about n spans spread evenly over the
// span of time before testNow: notifies with three phases, receives with
// two, and the other operations alone, written through the real SDK and
// exporter.
func benchFile(b *testing.B, n int, over time.Duration) string {
	benchMu.Lock()
	defer benchMu.Unlock()
	name := fmt.Sprintf("%d.db", n)
	if over != 7*24*time.Hour {
		name = fmt.Sprintf("%d-%v.db", n, over)
	}
	if p, ok := benchFiles[name]; ok {
		return p
	}
	keep := os.Getenv("LONELYTRACE_BENCH_DIR") // keeps the files between runs
	if keep != "" {
		path := filepath.Join(keep, name)
		if _, err := os.Stat(path); err == nil {
			benchFiles[name] = path
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
	path := filepath.Join(dir, name)
	r := newRecorder()
	ctx := context.Background()
	step := over / time.Duration(n)
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
	benchFiles[name] = path
	return path
}

// BenchmarkSummary times /api/summary over files of a week of spans, and
// over a file of two minutes at 20,000 spans/s asked for the last minute,
// as the soak's dashboard does (1.2 million spans in the window).
func BenchmarkSummary(b *testing.B) {
	type benchCase struct {
		n     int
		over  time.Duration
		since string
	}
	var cases []benchCase
	for _, n := range []int{100_000, 1_000_000} {
		for _, since := range []string{"24h-ago", "beginning"} {
			cases = append(cases, benchCase{n, 7 * 24 * time.Hour, since})
		}
	}
	cases = append(cases, benchCase{2_400_000, 2 * time.Minute, "1m-ago"})
	for _, c := range cases {
		n, since := c.n, c.since
		name := fmt.Sprintf("spans=%d/since=%s", n, since)
		if c.over != 7*24*time.Hour {
			name = fmt.Sprintf("spans=%d/over=%v/since=%s", n, c.over, since)
		}
		b.Run(name, func(b *testing.B) {
			path := benchFile(b, n, c.over)
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
			// The first answer reads every span of the window; the viewer
			// keeps what it read for the next ones.
			b.ReportMetric(float64(times[0].Microseconds())/1000, "first-ms")
			slices.Sort(times)
			med := times[len(times)/2]
			b.ReportMetric(float64(med.Microseconds())/1000, "median-ms")
			b.ReportMetric(float64(n)/med.Seconds(), "spans/s")
		})
	}
}

// BenchmarkSearch times /api/traces over a file of a million spans (a
// week), with since=beginning: the default list, each order, the filters
// that the operation cache cannot judge (name, attr; an attr that no
// operation has), and ones that match nothing (every operation of the
// window judged, none read). The first
// answer of the viewer (first-ms of the first case) reads the window's
// operation spans into the cache, as the page's first summary does.
func BenchmarkSearch(b *testing.B) {
	path := benchFile(b, 1_000_000, 7*24*time.Hour)
	benchSearch(b, path, []struct{ name, query string }{
		{"newest", ""},
		{"slowest", "sort=slowest"},
		{"notify-slowest-min", "op=notify&sort=slowest&min_ms=3"},
		{"receive-broadcaster", "op=notify&broadcaster=b2:3003&name=notify"},
		{"slowest-status-ok", "sort=slowest&status=ok&service=viewer_test"},
		{"attr", "op=notify&attr=lonelytrace.subscribers=3"},
		{"attr-no-match", "attr=messaging.destination.name=nowhere&sort=slowest"},
		{"newest-no-match", "status=error"},
		{"slowest-no-match", "sort=slowest&status=error"},
	})
}

// BenchmarkSearchFixture times /api/traces over the demo-shaped fixture of
// a million spans that LONELYTRACE_BENCH_FILE_1M names (docs/performance.md),
// with since=beginning: the list's doors (failures, a service, a topic, a
// percentile) besides the default list, and the terms judged on the rows
// (name, attr): ones no operation has (attempt is a phase's attribute),
// rare ones (674 operations are named missed, 14 of them on that topic:
// less than a page) and a common one (a third of the operations).
// Without the file it skips.
func BenchmarkSearchFixture(b *testing.B) {
	path := os.Getenv("LONELYTRACE_BENCH_FILE_1M")
	if path == "" {
		b.Skip("LONELYTRACE_BENCH_FILE_1M is not set")
	}
	benchSearch(b, path, []struct{ name, query string }{
		{"newest", ""},
		{"slowest", "sort=slowest"},
		{"failed-notify", "op=notify&status=error"},
		{"failed-receive-slowest", "op=receive&status=error&sort=slowest"},
		{"service-slowest", "service=subscriber-3&sort=slowest"},
		{"topic-ok", "topic=orders/region-7&status=ok"},
		{"notify-slowest-min", "op=notify&sort=slowest&min_ms=20"},
		{"no-such-service", "service=nobody&sort=slowest"},
		{"name-no-match", "name=nothing&sort=slowest"},
		{"name-no-match-newest", "name=nothing"},
		{"attr-no-match", "attr=messaging.destination.name=nowhere&sort=slowest"},
		{"attr-no-op-has", "attr=attempt=1&sort=slowest"},
		{"name-rare", "name=missed&sort=slowest"},
		{"name-rare-newest", "name=missed"},
		{"attr-scarce", "name=missed&attr=messaging.destination.name=orders/region-6"},
		{"attr-common", "attr=lonelytrace.broadcaster=broadcaster-1&sort=slowest"},
		{"attr-common-newest", "attr=lonelytrace.broadcaster=broadcaster-1"},
	})
}

// benchSearch times the search of each case over the file at path, each
// case's first answer and the median of them all.
func benchSearch(b *testing.B, path string, cases []struct{ name, query string }) {
	base := server(b, mustOpen(b, testNow, path))
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			params, err := url.ParseQuery("since=beginning&" + c.query)
			if err != nil {
				b.Fatal(err)
			}
			var times []time.Duration
			for b.Loop() {
				t0 := time.Now()
				code, body := get(b, base, "/api/traces", params)
				times = append(times, time.Since(t0))
				if code != 200 {
					b.Fatalf("status %d: %s", code, body)
				}
			}
			b.ReportMetric(float64(times[0].Microseconds())/1000, "first-ms")
			slices.Sort(times)
			b.ReportMetric(float64(times[len(times)/2].Microseconds())/1000, "median-ms")
		})
	}
}
