package exporter_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/lonelytrace/lonelytrace/exporter"
	"github.com/lonelytrace/lonelytrace/internal/otlp/otlptest"
	"github.com/lonelytrace/lonelytrace/internal/sqlitec"
	"github.com/lonelytrace/lonelytrace/internal/tmpfs"
)

// ballast fills n bytes of the disk under dir with a file, and returns
// its path.
func ballast(t *testing.T, dir string, n int) string {
	t.Helper()
	path := filepath.Join(dir, fmt.Sprintf("ballast-%d", n))
	if err := os.WriteFile(path, make([]byte, n), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// footprint returns the bytes on disk of the trace file at path, its WAL
// and its shared-memory index.
func footprint(path string) (file, wal, shm int64) {
	size := func(p string) int64 {
		fi, err := os.Stat(p)
		if err != nil {
			return 0
		}
		return fi.Size()
	}
	return size(path), size(path + "-wal"), size(path + "-shm")
}

// timed is a SpanExporter in front of the exporter that records how long
// the slowest ExportSpans took and how many spans were offered: what the
// batch processor, and so the application, waited for.
type timed struct {
	*exporter.Exporter
	slowest atomic.Int64
	offered atomic.Int64
}

func (x *timed) ExportSpans(ctx context.Context, spans []sdktrace.ReadOnlySpan) error {
	began := time.Now()
	err := x.Exporter.ExportSpans(ctx, spans)
	took := int64(time.Since(began))
	for {
		s := x.slowest.Load()
		if took <= s || x.slowest.CompareAndSwap(s, took) {
			break
		}
	}
	x.offered.Add(int64(len(spans)))
	return err
}

// flatOut ends spans of about 1 KiB through a real SDK, behind otelsetup's
// batch settings, as fast as one goroutine can, until stop is called.
type flatOut struct {
	x    *timed
	tp   *sdktrace.TracerProvider
	made atomic.Int64
	stop func()
}

func startFlatOut(t *testing.T, e *exporter.Exporter) *flatOut {
	x := &timed{Exporter: e}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(x,
		sdktrace.WithMaxQueueSize(16384), sdktrace.WithBatchTimeout(20*time.Millisecond), sdktrace.WithExportTimeout(100*time.Millisecond)))
	f := &flatOut{x: x, tp: tp}
	tr := tp.Tracer("disk")
	pad := strings.Repeat("x", 1000)
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-done:
				return
			default:
			}
			_, s := tr.Start(context.Background(), "flat", trace.WithAttributes(attribute.String("pad", pad), attribute.Int("i", i)))
			s.End()
			f.made.Add(1)
			if i%256 == 0 {
				runtime.Gosched()
			}
		}
	}()
	var once sync.Once
	f.stop = func() {
		once.Do(func() {
			close(done)
			wg.Wait()
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			_ = tp.ForceFlush(ctx)
		})
	}
	t.Cleanup(func() { f.stop(); tp.Shutdown(context.Background()) })
	return f
}

// checkPrompt fails the test when an ExportSpans call waited for the disk:
// it may wait for room in the queue until its context ends (100 ms here),
// never for a write.
func (f *flatOut) checkPrompt(t *testing.T) {
	t.Helper()
	bound := time.Second
	if raceEnabled {
		bound *= 5
	}
	if s := time.Duration(f.x.slowest.Load()); s > bound {
		t.Errorf("slowest ExportSpans took %v; want under %v", s, bound)
	}
}

// TestFault_DiskFull fills a real disk, a 24 MiB tmpfs, with a flat-out
// producer of 1 KiB spans, where the test may mount one (root on Linux,
// as in CI); elsewhere it simulates a full disk with PRAGMA
// max_page_count on the writer's connection.
func TestFault_DiskFull(t *testing.T) {
	if dir := smallDisk(t, 24<<20); dir != "" {
		t.Logf("a real full disk: a 24 MiB tmpfs at %s", dir)
		diskFullTmpfs(t, dir)
		return
	}
	t.Logf("no tmpfs to fill (not root on Linux): simulating a full disk with PRAGMA max_page_count")
	diskFullSimulated(t)
}

func diskFullTmpfs(t *testing.T, dir string) {
	path := filepath.Join(dir, "t.db")
	h := collectHandled(t)
	// Two ballast files: the first is deleted to let writing resume, the
	// second to let Shutdown checkpoint the WAL into the file.
	resume, last := ballast(t, dir, 6<<20), ballast(t, dir, 4<<20)
	e := mustNew(t, path, exporter.WithMaxSize(0), exporter.WithRetryBackoff(20*time.Millisecond))
	f := startFlatOut(t, e)
	ctx := context.Background()

	// committed is the most spans a ForceFlush that succeeded has seen
	// written: all of them must be in the file at the end.
	var committed int64
	flush := func() error {
		fctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		err := e.ForceFlush(fctx)
		if err == nil {
			committed = max(committed, e.Stats().Written)
		}
		return err
	}
	deadline := time.Now().Add(30 * time.Second)
	for e.Stats().Failed == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("the disk did not fill in 30 s: %+v", e.Stats())
		}
		_ = flush()
		time.Sleep(20 * time.Millisecond)
	}
	full := e.Stats()
	file, wal, shm := footprint(path)
	t.Logf("disk full after %d spans written: file %d, WAL %d, index %d bytes", full.Written, file, wal, shm)
	// Stay full for a while: every transaction fails, the producer goes on.
	time.Sleep(500 * time.Millisecond)
	stuck := e.Stats().Written

	freed := time.Now()
	if err := os.Remove(resume); err != nil {
		t.Fatal(err)
	}
	waitFor(t, nil, "writing to resume", func() bool { return e.Stats().Written > stuck })
	recovery := time.Since(freed)
	f.stop()
	waitFor(t, nil, "the queue to drain", func() bool {
		s := e.Stats()
		return s.Written+s.Failed+s.Dropped == f.x.offered.Load()
	})
	// The disk may be full again: SQLite cannot copy the WAL into a file
	// that may not grow, so the WAL keeps what was committed. With the
	// last ballast gone the final checkpoint may have room; if not, the
	// WAL keeps the spans and Shutdown says so.
	if err := os.Remove(last); err != nil {
		t.Fatal(err)
	}
	t.Logf("flush after the producer stopped: %v", flush())
	stillFull := false
	if err := e.Shutdown(ctx); err != nil {
		if !strings.Contains(err.Error(), "full") {
			t.Fatalf("Shutdown: %v; want nil or a full disk", err)
		}
		t.Logf("Shutdown on a disk still full: %v", err)
		stillFull = true
	}
	s := e.Stats()
	n := int64(otlptest.StoredSpans(t, path))
	t.Logf("tmpfs 24 MiB: %d spans offered, %d written, %d failed, %d dropped; %d kept after reopen (%d reported committed by ForceFlush); writing resumed %v after space came back; slowest ExportSpans %v",
		f.x.offered.Load(), s.Written, s.Failed, s.Dropped, n, committed, recovery.Round(time.Millisecond), time.Duration(f.x.slowest.Load()).Round(time.Millisecond))
	if n != s.Written || n < committed {
		t.Errorf("spans in the file after reopen = %d; want Written = %d, at least the %d ForceFlush reported committed", n, s.Written, committed)
	}
	if s.Written+s.Failed+s.Dropped != f.x.offered.Load() {
		t.Errorf("written %d + failed %d + dropped %d != %d offered", s.Written, s.Failed, s.Dropped, f.x.offered.Load())
	}
	// The count of failures is written with the next transaction that
	// succeeds, which a disk still full at the end may not allow.
	if m := metaValue(t, path, "failed_spans"); s.Failed == 0 || m > s.Failed || m != s.Failed && !stillFull {
		t.Errorf("meta failed_spans = %d; want Stats().Failed = %d > 0", m, s.Failed)
	}
	if a := h.count("failed (further"); a < 1 || a > h.count("works again")+1 {
		t.Errorf("reports = %d failures, %d recoveries; want one failure per episode: %v", a, h.count("works again"), h)
	}
	f.checkPrompt(t)
	checkConsistent(t, path)
}

func diskFullSimulated(t *testing.T) {
	// A full disk, as SQLite sees it: the file may not grow.
	path := filepath.Join(t.TempDir(), "t.db")
	h := collectHandled(t)
	e := mustNew(t, path, exporter.WithRetryBackoff(time.Millisecond))
	p := newProducer(t, e)
	ctx := context.Background()
	p.run("before", 100)
	if err := p.flush(t); err != nil {
		t.Fatal(err)
	}
	setMax := func(n int) {
		err := exporter.OnWriterConn(ctx, e, func(c *sqlitec.Conn) error {
			return c.Exec(fmt.Sprintf("PRAGMA max_page_count = %d", n))
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	setMax(1)
	for range 5 {
		p.run("full", 1000)
		time.Sleep(20 * time.Millisecond)
	}
	waitFor(t, nil, "the failures", func() bool { s := e.Stats(); return s.Failed+s.Dropped >= 5000 })
	setMax(1 << 30)
	p.run("after", 100)
	if err := p.flush(t); err != nil {
		t.Fatal(err)
	}
	if n := countNamed(t, path, "after"); n != 100 {
		t.Errorf("spans after the disk has room = %d; want 100", n)
	}
	s := e.Stats()
	if s.Failed+s.Dropped+s.Written != int64(p.n) {
		t.Errorf("written %d + failed %d + dropped %d != %d ended", s.Written, s.Failed, s.Dropped, p.n)
	}
	if a, b := h.count("failed (further"), h.count("works again"); a != 1 || b != 1 {
		t.Errorf("reports = %d failures, %d recoveries; want 1 and 1: %v", a, b, h)
	}
	p.checkNeverBlocked(t)
}

// TestDisk_Cap writes 1 KiB spans flat out into a file capped at 16 MiB
// on a 48 MiB tmpfs (or, where the test cannot mount one, a directory of
// the usual disk), sampling the file, WAL and index every few
// milliseconds: together they must stay within 1.25 times the cap, so
// that the disk never fills, while retention deletes what does not fit.
func TestDisk_Cap(t *testing.T) {
	const limit = 16 << 20
	dir := smallDisk(t, 48<<20)
	if dir != "" {
		t.Logf("a real disk: a 48 MiB tmpfs at %s", dir)
	} else {
		dir = t.TempDir()
		t.Logf("no tmpfs (not root on Linux): the usual disk at %s; the footprint is still sampled", dir)
	}
	run := 6 * time.Second
	if raceEnabled {
		run = 4 * time.Second
	}
	path := filepath.Join(dir, "t.db")
	h := collectHandled(t)
	e := mustNew(t, path, exporter.WithMaxSize(limit), exporter.WithMaxAge(0))
	f := startFlatOut(t, e)

	var peak, peakFile, peakWAL, peakSHM atomic.Int64
	samples := 0
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		for {
			select {
			case <-stop:
				return
			case <-time.After(2 * time.Millisecond):
			}
			file, wal, shm := footprint(path)
			if file+wal+shm > peak.Load() {
				peak.Store(file + wal + shm)
				peakFile.Store(file)
				peakWAL.Store(wal)
				peakSHM.Store(shm)
			}
			samples++
		}
	}()
	time.Sleep(run)
	f.stop()
	if err := e.ForceFlush(context.Background()); err != nil {
		t.Errorf("ForceFlush: %v", err)
	}
	close(stop)
	<-sampled
	if err := e.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	s := e.Stats()
	kept := int64(otlptest.StoredSpans(t, path))
	deleted := metaValue(t, path, "retention_deleted_spans")
	t.Logf("cap 16 MiB: %d spans written (about %d MiB), %d dropped, %d failed; %d kept, %d deleted; footprint peak %.2f MiB = %.2f × the cap (file %.2f, WAL %.2f, index %.2f MiB at that sample; %d samples); slowest ExportSpans %v",
		s.Written, s.Written>>10, s.Dropped, s.Failed, kept, deleted, float64(peak.Load())/(1<<20), float64(peak.Load())/limit,
		float64(peakFile.Load())/(1<<20), float64(peakWAL.Load())/(1<<20), float64(peakSHM.Load())/(1<<20), samples, time.Duration(f.x.slowest.Load()).Round(time.Millisecond))
	if p := peak.Load(); p > limit*5/4 {
		t.Errorf("file + WAL + index reached %d bytes; want at most 1.25 × %d", p, limit)
	}
	if s.Failed != 0 {
		t.Errorf("%d spans failed (%v); want none: the cap keeps the disk from filling", s.Failed, s.LastError)
	}
	if s.Written < 2*limit>>10 {
		t.Logf("only %d spans written: the cap was not reached twice over (a slow machine)", s.Written)
	} else if deleted == 0 {
		t.Error("retention deleted nothing; want the oldest spans deleted")
	}
	if kept+deleted != s.Written {
		t.Errorf("kept %d + deleted %d != written %d", kept, deleted, s.Written)
	}
	if h.count("retention") != 0 || h.count("failed (further") != 0 {
		t.Errorf("reports: %v", h)
	}
	f.checkPrompt(t)
	checkConsistent(t, path)
}

// smallDisk mounts a tmpfs of size bytes for the test, or returns "" (and
// logs why) where it cannot.
func smallDisk(t *testing.T, size int64) string {
	t.Helper()
	dir, why := tmpfs.Mount(t, size)
	if dir == "" {
		t.Log(why)
	}
	return dir
}

// TestFault_LittleRoomBack fills the file to its page limit behind a
// flat-out producer that keeps the queue full, then gives back room for
// a job but not for a queue's worth: writing must resume, the writer
// trying one job a transaction while transactions fail. (Tried with all
// that was queued, every retry needed more than came back, and none was
// written until the producer stopped.)
func TestFault_LittleRoomBack(t *testing.T) {
	path := filepath.Join(t.TempDir(), "t.db")
	collectHandled(t)
	e := mustNew(t, path, exporter.WithMaxSize(0), exporter.WithRetryBackoff(100*time.Millisecond))
	f := startFlatOut(t, e)
	ctx := context.Background()
	waitFor(t, nil, "spans written", func() bool { return e.Stats().Written > 2000 })
	// limit lets the file grow by room pages beyond what it holds now.
	limit := func(room int64) {
		t.Helper()
		err := exporter.OnWriterConn(ctx, e, func(c *sqlitec.Conn) error {
			var pages int64
			if err := c.Query("PRAGMA page_count", nil, func(s *sqlitec.Stmt) error { pages = s.Int64(0); return nil }); err != nil {
				return err
			}
			return c.Exec(fmt.Sprintf("PRAGMA max_page_count = %d", pages+room))
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	limit(0)
	waitFor(t, nil, "the file to be full", func() bool { return e.Stats().Failed > 0 })
	time.Sleep(300 * time.Millisecond)
	stuck := e.Stats().Written
	// 96 pages of 16 KiB: room for a job of the batch processor's (at most
	// 512 spans of 1 KiB), not for the 6 MiB the queue holds.
	limit(96)
	waitFor(t, nil, "writing to resume", func() bool { return e.Stats().Written > stuck })
	f.stop()
	limit(1 << 30)
	if err := e.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	s := e.Stats()
	if n := int64(otlptest.StoredSpans(t, path)); n != s.Written {
		t.Errorf("spans in the file = %d; want Written = %d", n, s.Written)
	}
	if s.Written+s.Failed+s.Dropped != f.x.offered.Load() {
		t.Errorf("written %d + failed %d + dropped %d != %d offered", s.Written, s.Failed, s.Dropped, f.x.offered.Load())
	}
	checkConsistent(t, path)
}
