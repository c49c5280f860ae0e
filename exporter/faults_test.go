package exporter_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/lonelytrace/lonelytrace/exporter"
	"github.com/lonelytrace/lonelytrace/internal/otlp/otlptest"
	"github.com/lonelytrace/lonelytrace/internal/sqlitec"
)

// producer ends spans through the real SDK from the test goroutine and
// records how long the slowest span.End took: the application's view of
// a fault is that nothing it calls may block.
type producer struct {
	e      *exporter.Exporter
	tp     *sdktrace.TracerProvider
	tr     trace.Tracer
	n      int
	slowst time.Duration
}

func newProducer(t *testing.T, e *exporter.Exporter) *producer {
	// otelsetup's batch settings: short export timeout, large queue.
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(e,
		sdktrace.WithMaxQueueSize(16384), sdktrace.WithBatchTimeout(20*time.Millisecond), sdktrace.WithExportTimeout(100*time.Millisecond)))
	t.Cleanup(func() { tp.Shutdown(context.Background()) })
	return &producer{e: e, tp: tp, tr: tp.Tracer("faults")}
}

// run ends n spans named name.
func (p *producer) run(name string, n int) {
	for range n {
		began := time.Now()
		_, s := p.tr.Start(context.Background(), name)
		s.End()
		p.slowst = max(p.slowst, time.Since(began))
		p.n++
	}
}

// flush waits for the SDK's queue to reach the exporter and the exporter
// to write it.
func (p *producer) flush(t *testing.T) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := p.tp.ForceFlush(ctx); err != nil {
		return err
	}
	// The batch processor hands its spans over but does not flush the
	// exporter.
	return p.e.ForceFlush(ctx)
}

// checkNeverBlocked fails when a span.End took a second: not a speed
// target (the race detector and a busy machine make a span.End take a
// hundred milliseconds now and then), but the sign that the application
// waited for the file, which is held up for seconds in these tests.
func (p *producer) checkNeverBlocked(t *testing.T) {
	t.Helper()
	if p.slowst > time.Second {
		t.Errorf("slowest span.End of %d took %v; want it never to wait for the file", p.n, p.slowst)
	}
}

func countNamed(t *testing.T, path, name string) int64 {
	t.Helper()
	db := mustOpenRead(t, path)
	defer db.Close()
	return queryInt(t, db, "SELECT count(*) FROM spans WHERE name = ?", name)
}

func TestFault_FileDeleted(t *testing.T) {
	for _, tc := range []struct {
		name  string
		files []string
	}{
		{"FileOnly", []string{""}},
		{"WithWALAndIndex", []string{"", "-wal", "-shm"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "t.db")
			h := collectHandled(t)
			e := mustNew(t, path, exporter.WithMaintainEvery(20*time.Millisecond))
			p := newProducer(t, e)
			p.run("before", 500)
			if err := p.flush(t); err != nil {
				t.Fatal(err)
			}
			for _, s := range tc.files {
				if err := os.Remove(path + s); err != nil {
					t.Fatal(err)
				}
			}
			p.run("during", 500)
			waitFor(t, e, "a new file", func() bool {
				_, err := os.Stat(path)
				return err == nil && h.count("was deleted") > 0
			})
			p.run("after", 500)
			if err := p.flush(t); err != nil {
				t.Fatalf("flush after the file came back: %v", err)
			}
			if n := countNamed(t, path, "after"); n != 500 {
				t.Errorf("spans in the new file = %d; want 500", n)
			}
			p.checkNeverBlocked(t)
			if n := h.count("was deleted"); n != 1 {
				t.Errorf("reports of the deletion = %d; want 1: %v", n, h)
			}
			if s := e.Stats(); s.Written != 1500 || s.Failed != 0 {
				t.Errorf("Stats = %+v; want 1,500 written (some into the deleted file), none failed", s)
			}
			if err := e.Shutdown(context.Background()); err != nil {
				t.Fatal(err)
			}
			checkConsistent(t, path)
		})
	}
}

func TestFault_FileReplaced(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "t.db")
	h := collectHandled(t)
	e := mustNew(t, path, exporter.WithMaintainEvery(20*time.Millisecond), exporter.WithRetryBackoff(time.Millisecond))
	p := newProducer(t, e)
	p.run("first", 100)
	if err := p.flush(t); err != nil {
		t.Fatal(err)
	}

	t.Run("ByTraceFile", func(t *testing.T) {
		other := filepath.Join(dir, "other.db")
		o := mustNew(t, other)
		if err := o.ExportSpans(context.Background(), spans(7)); err != nil {
			t.Fatal(err)
		}
		if err := o.Shutdown(context.Background()); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(other, path); err != nil {
			t.Fatal(err)
		}
		waitFor(t, e, "the switch", func() bool { return h.count("was replaced") == 1 })
		p.run("second", 100)
		if err := p.flush(t); err != nil {
			t.Fatal(err)
		}
		if n, m := countNamed(t, path, "second"), otlptest.StoredSpans(t, path); n != 100 || m != 107 {
			db := mustOpenRead(t, path)
			rows, _ := db.Query("SELECT name, count(*) FROM spans GROUP BY name")
			for rows.Next() {
				var name string
				var c int
				rows.Scan(&name, &c)
				t.Logf("%s: %d", name, c)
			}
			rows.Close()
			t.Errorf("replacement holds %d new spans, %d in all; want 100 and 107", n, m)
		}
	})

	t.Run("ByOtherFile", func(t *testing.T) {
		// A file that is not ours is never written: the spans fail and
		// are counted, once reported, until the path is free again.
		junk := filepath.Join(dir, "junk")
		if err := os.WriteFile(junk, []byte(strings.Repeat("not a database ", 500)), 0o644); err != nil {
			t.Fatal(err)
		}
		before := sum(t, junk)
		if err := os.Rename(junk, path); err != nil {
			t.Fatal(err)
		}
		waitFor(t, nil, "the report", func() bool { return h.count("opening a new one failed") == 1 })
		p.run("third", 100)
		waitFor(t, e, "the failures", func() bool { return e.Stats().Failed >= 100 })
		if sum(t, path) != before {
			t.Error("the foreign file was changed")
		}
		if err := os.Remove(path); err != nil {
			t.Fatal(err)
		}
		waitFor(t, e, "the path to be taken again", func() bool { return h.count("could be opened again") == 1 })
		p.run("fourth", 100)
		if err := p.flush(t); err != nil {
			t.Fatal(err)
		}
		if n := countNamed(t, path, "fourth"); n != 100 {
			t.Errorf("spans after the path was freed = %d; want 100", n)
		}
		if n := metaValue(t, path, "failed_spans"); n != e.Stats().Failed {
			t.Errorf("meta failed_spans in the new file = %d; want %d", n, e.Stats().Failed)
		}
		if n := h.count("opening a new one failed") + h.count("failed (further"); n != 2 {
			t.Errorf("failure reports = %d; want 2, one for the file and one for the writes: %v", n, h)
		}
	})
	p.checkNeverBlocked(t)
	if err := e.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	checkConsistent(t, path)
}

func TestFault_ReadOnly(t *testing.T) {
	path := filepath.Join(t.TempDir(), "t.db")
	h := collectHandled(t)
	e := mustNew(t, path, exporter.WithMaintainEvery(20*time.Millisecond), exporter.WithRetryBackoff(time.Millisecond))
	p := newProducer(t, e)
	ctx := context.Background()

	t.Run("Chmod", func(t *testing.T) {
		// The open file stays writable whatever its mode (POSIX), so the
		// writer carries on; a new connection could not open it.
		if err := os.Chmod(path, 0o444); err != nil {
			t.Fatal(err)
		}
		p.run("chmod", 200)
		if err := p.flush(t); err != nil {
			t.Fatalf("flush with the file read-only: %v", err)
		}
		if err := os.Chmod(path, 0o644); err != nil {
			t.Fatal(err)
		}
		if n := countNamed(t, path, "chmod"); n != 200 {
			t.Errorf("spans = %d; want 200", n)
		}
	})

	t.Run("ReadOnlyDatabase", func(t *testing.T) {
		// What a file system remounted read-only looks like to SQLite:
		// every write fails with SQLITE_READONLY.
		set := func(on int) {
			err := exporter.OnWriterConn(ctx, e, func(c *sqlitec.Conn) error {
				return c.Exec(fmt.Sprintf("PRAGMA query_only = %d", on))
			})
			if err != nil {
				t.Fatal(err)
			}
		}
		set(1)
		p.run("readonly", 300)
		waitFor(t, e, "the failures", func() bool { return e.Stats().Failed >= 300 })
		if s := e.Stats(); s.LastError == nil || !strings.Contains(s.LastError.Error(), "readonly") {
			t.Errorf("LastError = %v; want SQLite's readonly error", s.LastError)
		}
		set(0)
		p.run("writable", 300)
		if err := p.flush(t); err != nil {
			t.Fatal(err)
		}
		if n := countNamed(t, path, "writable"); n != 300 {
			t.Errorf("spans after the fault = %d; want 300", n)
		}
		if n := metaValue(t, path, "failed_spans"); n != 300 {
			t.Errorf("meta failed_spans = %d; want 300", n)
		}
		if a, b := h.count("failed (further"), h.count("works again"); a != 1 || b != 1 {
			t.Errorf("reports = %d failures, %d recoveries; want 1 and 1: %v", a, b, h)
		}
	})
	p.checkNeverBlocked(t)
}

func TestFault_SecondProcess(t *testing.T) {
	t.Run("BothWrite", func(t *testing.T) {
		// Another process writes the same file flat out: both wait their
		// turn for the lock (the busy timeout), nothing fails.
		path := filepath.Join(t.TempDir(), "t.db")
		e := mustNew(t, path)
		if err := e.ForceFlush(context.Background()); err != nil {
			t.Fatal(err)
		}
		cmd, _, lines := helper(t, "write", path, 1)
		var committed int64
		if !lines.Scan() || !strings.HasPrefix(lines.Text(), "committed") {
			t.Fatalf("helper said %q", lines.Text())
		}
		go func() {
			for lines.Scan() {
				var n int64
				if _, err := fmt.Sscanf(lines.Text(), "committed %d", &n); err == nil {
					atomic.StoreInt64(&committed, n)
				}
			}
		}()
		p := newProducer(t, e)
		deadline := time.Now().Add(time.Second)
		for time.Now().Before(deadline) {
			p.run("parent", 100)
			time.Sleep(5 * time.Millisecond)
		}
		cmd.Process.Kill()
		cmd.Wait()
		if err := p.flush(t); err != nil {
			t.Fatal(err)
		}
		committed = atomic.LoadInt64(&committed)
		// Both write flat out: when the other holds the lock for long, the
		// queue may fill and drop, but nothing fails and the counts add up.
		s := e.Stats()
		if s.Failed != 0 || s.Written+s.Dropped != int64(p.n) {
			t.Errorf("Stats = %+v; want %d written or dropped, none failed", s, p.n)
		}
		if n := countNamed(t, path, "parent"); n != s.Written {
			t.Errorf("parent's spans = %d; want %d", n, s.Written)
		}
		if n := countNamed(t, path, "gen-1"); n < committed || committed == 0 {
			t.Errorf("child's spans = %d; it reported %d committed", n, committed)
		}
		t.Logf("parent wrote %d spans (dropped %d), the child %d, into one file in one second", s.Written, s.Dropped, committed)
		checkConsistent(t, path)
	})

	t.Run("HoldsTheLock", func(t *testing.T) {
		// Another process holds the write lock longer than the busy
		// timeout: the writer waits and tries again, reported once, and
		// writes everything it accepted once the other lets go. Nothing
		// fails; the application never waits (a full queue drops).
		path := filepath.Join(t.TempDir(), "t.db")
		h := collectHandled(t)
		e := mustNew(t, path, exporter.WithBusyTimeout(100*time.Millisecond), exporter.WithRetryBackoff(10*time.Millisecond))
		if err := e.ForceFlush(context.Background()); err != nil {
			t.Fatal(err)
		}
		_, stdin, lines := helper(t, "lock", path, 0)
		if !lines.Scan() || lines.Text() != "locked" {
			t.Fatalf("helper said %q", lines.Text())
		}
		p := newProducer(t, e)
		for range 10 {
			p.run("locked", 100)
			time.Sleep(30 * time.Millisecond)
		}
		// The writer has met the lock once it reports it (or, as it did
		// before it waited for locks, a failure).
		waitFor(t, nil, "a report", func() bool { return h.count("is busy")+h.count("failed (further") > 0 })
		stdin.Close()
		p.run("free", 100)
		if err := p.flush(t); err != nil {
			t.Fatal(err)
		}
		if n := countNamed(t, path, "free"); n != 100 {
			t.Errorf("spans after the lock was released = %d; want 100", n)
		}
		s := e.Stats()
		if s.Failed != 0 || s.Written+s.Dropped != int64(p.n) {
			t.Errorf("Stats = %+v; want none failed, written+dropped = %d", s, p.n)
		}
		if n := countNamed(t, path, "locked"); n != s.Written-100 || n == 0 {
			t.Errorf("spans exported under the lock = %d stored; want the %d written besides the 100 after it", n, s.Written-100)
		}
		if a, b := h.count("is busy"), h.count("failed (further"); a != 1 || b != 0 {
			t.Errorf("reports = %d busy, %d failures; want 1 and 0: %v", a, b, h)
		}
		p.checkNeverBlocked(t)
	})
}
