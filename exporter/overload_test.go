package exporter_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/lonelytrace/lonelytrace/exporter"
	"github.com/lonelytrace/lonelytrace/internal/otlp/otlptest"
	"github.com/lonelytrace/lonelytrace/schema"
	"github.com/lonelytrace/lonelytrace/viewer"
)

// envOverload sets how long TestOverload runs (a Go duration); the
// default keeps CI short. The 60-second run of docs/reliability.md is
//
//	LONELYTRACE_OVERLOAD=60s go test ./exporter -run TestOverload -v
const envOverload = "LONELYTRACE_OVERLOAD"

// rssBytes returns the process's resident set, or 0 where /proc is not.
func rssBytes() uint64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return 0
	}
	pages, _ := strconv.ParseUint(f[1], 10, 64)
	return pages * uint64(os.Getpagesize())
}

// TestOverload offers spans flat out from eight producers, each
// ExportSpans giving up after 20 ms (otelsetup gives its one batch
// processor 100 ms), for several times what the writer can store. The exporter must keep its memory flat
// (the queue bounds it), count every span it drops, in Stats and in the
// file, where the viewer shows them, and lose nothing else.
func TestOverload(t *testing.T) {
	// Under the race detector the writer is ten times slower: a short run
	// and a short queue check the counting, not the memory.
	run, queue := 5*time.Second, exporter.DefaultQueueSize
	if raceEnabled {
		run, queue = 2*time.Second, 8
	}
	if v := os.Getenv(envOverload); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatalf("%s=%q: %v", envOverload, v, err)
		}
		run = d
	}
	path := filepath.Join(t.TempDir(), "t.db")
	// The size limit keeps a long run's file small; retention runs under
	// the overload too.
	e := mustNew(t, path, exporter.WithMaxSize(64<<20), exporter.WithQueueSize(queue))
	ctx := context.Background()

	var offered atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for p := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// A pool of batches, built up front and offered in turn: making
			// fresh spans would cost the producers more than storing them
			// costs the writer, and there would be no overload to see.
			id := uint64(p) << 48
			pool := make([][]sdktrace.ReadOnlySpan, 16)
			for b := range pool {
				pool[b] = make([]sdktrace.ReadOnlySpan, 512)
				now := time.Now()
				for i := range pool[b] {
					id++
					pool[b][i] = stub(id/8, id, "overload", now, attribute.Int64("i", int64(id)), schema.Operation(schema.OpReceive))
				}
			}
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				batch := pool[n%len(pool)]
				ectx, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
				if err := e.ExportSpans(ectx, batch); err != nil {
					t.Error(err)
				}
				cancel()
				offered.Add(int64(len(batch)))
			}
		}()
	}

	type sample struct {
		at        time.Duration
		heap, rss uint64
		written   int64
	}
	var samples []sample
	began := time.Now()
	tick := time.NewTicker(250 * time.Millisecond)
	for time.Since(began) < run {
		<-tick.C
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		samples = append(samples, sample{time.Since(began), ms.HeapInuse, rssBytes(), e.Stats().Written})
	}
	tick.Stop()
	close(stop)
	wg.Wait()
	elapsed := time.Since(began)
	if err := e.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}

	s := e.Stats()
	rate := float64(s.Written) / elapsed.Seconds()
	offer := float64(offered.Load()) / elapsed.Seconds()
	// Memory: the peak of the second half against the peak of the first
	// (after a one-second warm-up).
	var first, second, peakRSS uint64
	for _, sm := range samples {
		peakRSS = max(peakRSS, sm.rss)
		switch {
		case sm.at < time.Second:
		case sm.at < run/2:
			first = max(first, sm.heap)
		default:
			second = max(second, sm.heap)
		}
	}
	t.Logf("%v: offered %.0f spans/s, stored %.0f spans/s (%.1fx over), dropped %d, failed %d; heap in use peak %.1f MiB then %.1f MiB, RSS peak %.1f MiB",
		elapsed.Round(time.Millisecond), offer, rate, offer/rate, s.Dropped, s.Failed, float64(first)/(1<<20), float64(second)/(1<<20), float64(peakRSS)/(1<<20))
	if testing.Verbose() {
		for _, sm := range samples {
			t.Logf("  t=%5.2fs heap %6.1f MiB rss %6.1f MiB written %d", sm.at.Seconds(), float64(sm.heap)/(1<<20), float64(sm.rss)/(1<<20), sm.written)
		}
	}
	if s.Dropped == 0 || offer < 1.5*rate {
		t.Errorf("offered %.0f spans/s against %.0f stored, %d dropped; want an overload of at least 1.5x", offer, rate, s.Dropped)
	}
	if s.Written+s.Dropped+s.Failed != offered.Load() || s.Failed != 0 {
		t.Errorf("written %d + dropped %d + failed %d != %d offered; want nothing lost uncounted and no failures", s.Written, s.Dropped, s.Failed, offered.Load())
	}
	if !raceEnabled && first > 0 && second > first+first/2+16<<20 {
		t.Errorf("heap in use grew from %d to %d bytes; want it flat", first, second)
	}
	if d := metaValue(t, path, "dropped_spans"); d != s.Dropped {
		t.Errorf("meta dropped_spans = %d; want %d", d, s.Dropped)
	}
	if kept, deleted := int64(otlptest.StoredSpans(t, path)), metaValue(t, path, "retention_deleted_spans"); kept+deleted != s.Written {
		t.Errorf("kept %d + deleted by retention %d != %d written", kept, deleted, s.Written)
	}

	// The viewer shows the drops.
	v, err := viewer.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	q, err := viewer.ParseQuery(viewer.QueryText{Since: "beginning"}, time.Now(), time.Local)
	if err != nil {
		t.Fatal(err)
	}
	sum, err := v.Summary(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Dropped != s.Dropped {
		t.Errorf("viewer dropped = %d; want %d", sum.Dropped, s.Dropped)
	}
	var page bytes.Buffer
	if err := v.WritePage(ctx, &page, viewer.PageQuery{Query: q}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(page.String(), `<p class="warn" id="dropped">The exporters dropped <b title="`+strconv.FormatInt(s.Dropped, 10)+`">`) {
		t.Error("the page does not warn of the drops")
	}
}
