package exporter_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/trace"

	"github.com/lonelytrace/lonelytrace/exporter"
	"github.com/lonelytrace/lonelytrace/otelsetup"
	"github.com/lonelytrace/lonelytrace/schema"
	"github.com/lonelytrace/lonelytrace/viewer"
)

// envSoak runs TestSoak for the given duration; it is skipped otherwise.
// The run of docs/reliability.md is
//
//	LONELYTRACE_SOAK=10m go test ./exporter -run TestSoak -v -timeout 30m
//
// with LONELYTRACE_SOAK_RATE (spans/s, default 20000) and
// LONELYTRACE_SOAK_DIR (keep the file there) to vary it, and otelsetup's
// LONELYTRACE_MAX_SIZE (e.g. 64MiB) to cap the file: the footprint (file,
// WAL, index) is sampled every 100 ms and checked against 1.25 times it.
const envSoak = "LONELYTRACE_SOAK"

// TestSoak records pub/sub traces through otelsetup at a steady rate, as
// an application would, with the viewer polled every second, and reports
// errors, drops, memory, the footprint on disk and the viewer's answer
// times.
func TestSoak(t *testing.T) {
	run, err := time.ParseDuration(os.Getenv(envSoak))
	if err != nil {
		t.Skipf("set %s to a duration (e.g. 10m) to soak", envSoak)
	}
	rate := 20000.0
	if v := os.Getenv(envSoak + "_RATE"); v != "" {
		fmt.Sscan(v, &rate)
	}
	dir := os.Getenv(envSoak + "_DIR")
	if dir == "" {
		dir = t.TempDir()
	}
	path := filepath.Join(dir, "soak.db")
	var errs atomic.Int64
	var lastErr atomic.Value
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) { errs.Add(1); lastErr.Store(err.Error()) }))
	t.Cleanup(func() { otel.SetErrorHandler(otel.ErrorHandlerFunc(func(error) {})) })
	t.Setenv("OTEL_TRACES_EXPORTER", "sqlite")

	ctx := context.Background()
	var exp *exporter.Exporter
	shutdown, err := otelsetup.Start(ctx, otelsetup.WithServiceName("soak"), otelsetup.WithDBPath(path),
		otelsetup.WithSQLiteExporter(func(e *exporter.Exporter) { exp = e }))
	if err != nil {
		t.Fatal(err)
	}
	tr := otel.Tracer("soak")

	// The viewer, on loopback, polled every second, as a dashboard would:
	// the summary of the last minute, and the page every tenth time.
	v, err := viewer.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	e := echo.New()
	v.Register(e.Group("/stats"))
	srv := httptest.NewServer(e)
	defer srv.Close()
	var polls, pollErrs atomic.Int64
	var lat []time.Duration
	stopPoll := make(chan struct{})
	pollDone := make(chan struct{})
	go func() {
		defer close(pollDone)
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for n := 0; ; n++ {
			select {
			case <-stopPoll:
				return
			case <-tick.C:
			}
			u := srv.URL + "/stats/api/summary?since=1m-ago"
			if n%10 == 9 {
				u = srv.URL + "/stats/?since=1m-ago"
			}
			began := time.Now()
			resp, err := http.Get(u)
			if err == nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					err = fmt.Errorf("status %d", resp.StatusCode)
				}
			}
			lat = append(lat, time.Since(began))
			polls.Add(1)
			if err != nil {
				pollErrs.Add(1)
				t.Logf("poll %s: %v", u, err)
			}
		}
	}()

	// A notify is four spans: the operation and three phases.
	topics := []string{"orders", "orders/eu", "users.new", "metrics"}
	produce := func(i int64) {
		start := time.Now()
		c, op := tr.Start(ctx, "notify", trace.WithTimestamp(start), schema.Notify(topics[i%4], int(128+i%4096), "b1:3003"))
		_, h := tr.Start(c, "hash", trace.WithTimestamp(start))
		h.End(trace.WithTimestamp(start.Add(20 * time.Microsecond)))
		_, s := tr.Start(c, "send request", trace.WithTimestamp(start.Add(30*time.Microsecond)))
		s.End(trace.WithTimestamp(start.Add(800 * time.Microsecond)))
		_, a := tr.Start(c, "accepted", trace.WithTimestamp(start.Add(810*time.Microsecond)))
		a.End(trace.WithTimestamp(start.Add(820 * time.Microsecond)))
		op.End(trace.WithTimestamp(start.Add(900 * time.Microsecond)))
	}

	type sample struct {
		at                   time.Duration
		heap, rss, file, wal uint64
		st                   exporter.Stats
	}
	var samples []sample
	// The footprint, every 100 ms: the WAL can grow and start over
	// between two samples of the rest.
	var fileSizes, walSizes, totalSizes []int64
	began := time.Now()
	var made int64
	tick := time.NewTicker(10 * time.Millisecond)
	next, nextWAL := time.Second, time.Duration(0)
	for time.Since(began) < run {
		<-tick.C
		elapsed := time.Since(began)
		for due := int64(rate*elapsed.Seconds()) / 4; made < due; made++ {
			produce(made)
		}
		if elapsed >= nextWAL {
			nextWAL += 100 * time.Millisecond
			file, wal, shm := footprint(path)
			fileSizes, walSizes, totalSizes = append(fileSizes, file), append(walSizes, wal), append(totalSizes, file+wal+shm)
		}
		if elapsed >= next {
			next += 5 * time.Second
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			fi, _ := os.Stat(path)
			var size uint64
			if fi != nil {
				size = uint64(fi.Size())
			}
			var wal uint64
			if w, err := os.Stat(path + "-wal"); err == nil {
				wal = uint64(w.Size())
			}
			sm := sample{elapsed, ms.HeapInuse, rssBytes(), size, wal, exp.Stats()}
			samples = append(samples, sm)
			if len(samples)%6 == 1 {
				t.Logf("%4.0fs  spans %10d  written %10d  dropped %6d  failed %d  heap %5.1f MiB  RSS %5.1f MiB  file %7.1f MiB  WAL %6.1f MiB  errors %d",
					elapsed.Seconds(), made*4, sm.st.Written, sm.st.Dropped, sm.st.Failed, float64(sm.heap)/(1<<20), float64(sm.rss)/(1<<20), float64(size)/(1<<20), float64(wal)/(1<<20), errs.Load())
			}
		}
	}
	tick.Stop()
	close(stopPoll)
	<-pollDone
	if err := shutdown(ctx); err != nil {
		t.Errorf("shutdown: %v", err)
	}
	elapsed := time.Since(began)
	st := exp.Stats()
	slices.Sort(lat)
	pct := func(p float64) time.Duration {
		if len(lat) == 0 {
			return 0
		}
		return lat[min(len(lat)-1, int(p*float64(len(lat))))]
	}
	var heapFirst, heapLast, rssMax uint64
	for _, sm := range samples {
		rssMax = max(rssMax, sm.rss)
		if sm.at < run/2 {
			heapFirst = max(heapFirst, sm.heap)
		} else {
			heapLast = max(heapLast, sm.heap)
		}
	}
	t.Logf("soak: %v at %.0f spans/s offered: %d spans made, %d written (%.0f/s), %d dropped, %d failed; otel errors %d",
		elapsed.Round(time.Second), rate, made*4, st.Written, float64(st.Written)/elapsed.Seconds(), st.Dropped, st.Failed, errs.Load())
	// at returns the p-quantile of sizes, in MiB.
	at := func(sizes []int64, p float64) float64 {
		if len(sizes) == 0 {
			return 0
		}
		return float64(sizes[min(len(sizes)-1, int(p*float64(len(sizes))))]) / (1 << 20)
	}
	for _, sizes := range [][]int64{fileSizes, walSizes, totalSizes} {
		slices.Sort(sizes)
	}
	half := samples[0]
	for _, sm := range samples {
		if sm.at <= run/2 {
			half = sm
		}
	}
	t.Logf("soak: heap in use peak %.1f MiB (first half) / %.1f MiB (second half), at 1 s / half-way / end %.1f / %.1f / %.1f MiB, RSS peak %.1f MiB; file %.1f MiB at the end",
		float64(heapFirst)/(1<<20), float64(heapLast)/(1<<20), float64(samples[0].heap)/(1<<20), float64(half.heap)/(1<<20), float64(samples[len(samples)-1].heap)/(1<<20),
		float64(rssMax)/(1<<20), float64(samples[len(samples)-1].file)/(1<<20))
	t.Logf("soak: sampled every 100 ms: file median %.1f MiB, max %.1f MiB; WAL median %.1f MiB, p99 %.1f MiB, max %.1f MiB; file + WAL + index median %.1f MiB, max %.1f MiB",
		at(fileSizes, 0.5), at(fileSizes, 1), at(walSizes, 0.5), at(walSizes, 0.99), at(walSizes, 1), at(totalSizes, 0.5), at(totalSizes, 1))
	if limit := metaValue(t, path, "retention_max_bytes"); limit > 0 {
		t.Logf("soak: size limit %.1f MiB: footprint max %.2f × the limit", float64(limit)/(1<<20), at(totalSizes, 1)*(1<<20)/float64(limit))
		if peak := at(totalSizes, 1) * (1 << 20); peak > 1.25*float64(limit) {
			t.Errorf("file + WAL + index reached %.0f bytes; want at most 1.25 × %d", peak, limit)
		}
	}
	t.Logf("soak: viewer polled %d times, %d errors; answer p50 %v p99 %v max %v",
		polls.Load(), pollErrs.Load(), pct(0.5).Round(time.Millisecond), pct(0.99).Round(time.Millisecond), pct(1).Round(time.Millisecond))
	if errs.Load() != 0 || pollErrs.Load() != 0 || st.Failed != 0 || st.Dropped != 0 {
		t.Errorf("want zero errors, failures and drops; last error: %v", lastErr.Load())
	}
	if heapLast > heapFirst+heapFirst/2+16<<20 {
		t.Errorf("heap grew from %d to %d bytes", heapFirst, heapLast)
	}
}
