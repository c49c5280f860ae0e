package load_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"
	"time"

	_ "modernc.org/sqlite"

	"github.com/lonelytrace/lonelytrace/internal/load"
)

// rows counts the rows of a table the independent way: SQL on the file
// the run kept, not the pipeline's counters.
func rows(tb testing.TB, path string) int64 {
	tb.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		tb.Fatal(err)
	}
	defer db.Close()
	var n int64
	if err := db.QueryRow("SELECT count(*) FROM spans").Scan(&n); err != nil {
		tb.Fatalf("count %s: %v", path, err)
	}
	return n
}

// checkSane checks what every run must satisfy, whatever the machine's
// speed.
func checkSane(t *testing.T, r load.Result) {
	t.Helper()
	if r.Produced <= 0 || r.Stored <= 0 {
		t.Errorf("%s: produced = %d, stored = %d; want both > 0", r.Mode, r.Produced, r.Stored)
	}
	if r.Produced%4 != 0 {
		t.Errorf("%s: produced = %d; want whole traces of 4 spans", r.Mode, r.Produced)
	}
	// Every span is stored, dropped by the exporter, failed, or dropped by
	// the SDK's queue, which is the only rest; it cannot be negative.
	if r.SDKDropped < 0 || r.Stored+r.Dropped+r.Failed+r.SDKDropped != r.Produced {
		t.Errorf("%s: stored %d + dropped %d + failed %d + SDK dropped %d != produced %d",
			r.Mode, r.Stored, r.Dropped, r.Failed, r.SDKDropped, r.Produced)
	}
	if r.Failed != 0 {
		t.Errorf("%s: failed = %d; want 0", r.Mode, r.Failed)
	}
	if r.ProducedPerSec <= 0 || r.StoredPerSec <= 0 || r.StoredPerSec > r.ProducedPerSec*1.01 {
		t.Errorf("%s: produced %.0f/s, stored %.0f/s; want 0 < stored ≤ produced", r.Mode, r.ProducedPerSec, r.StoredPerSec)
	}
	if r.Elapsed < r.Duration {
		t.Errorf("%s: elapsed %s < duration %s", r.Mode, r.Elapsed, r.Duration)
	}
	if r.CPUPerSpan <= 0 || r.ProducerPerSpan <= 0 {
		t.Errorf("%s: CPU per span %s, producer per span %s; want > 0", r.Mode, r.CPUPerSpan, r.ProducerPerSpan)
	}
	if r.PeakRSS <= 0 {
		t.Errorf("%s: peak RSS = %d; want > 0", r.Mode, r.PeakRSS)
	}
}

func TestRun(t *testing.T) {
	t.Setenv("OTEL_TRACES_EXPORTER", "sqlite")
	dir := t.TempDir()
	r, err := load.Run(context.Background(), load.Lonelytrace, load.WithDuration(2*time.Second), load.WithDir(dir))
	if err != nil {
		t.Fatal(err)
	}
	checkSane(t, r)
	if want := filepath.Join(dir, "lonelytrace.db"); r.File != want {
		t.Errorf("file = %q; want %q", r.File, want)
	}
	if n := rows(t, r.File); n != r.Stored {
		t.Errorf("rows in the file = %d; want stored = %d", n, r.Stored)
	}
	if r.FileSpans != r.Stored {
		t.Errorf("file spans = %d; want stored = %d", r.FileSpans, r.Stored)
	}
	if r.BytesPerSpan <= 0 || r.FileBytes <= 0 {
		t.Errorf("bytes per span %.1f, file bytes %d; want > 0", r.BytesPerSpan, r.FileBytes)
	}

	t.Run("Appends", func(t *testing.T) {
		again, err := load.Run(context.Background(), load.Lonelytrace, load.WithSpans(1000), load.WithDuration(0), load.WithDir(dir))
		if err != nil {
			t.Fatal(err)
		}
		if again.Produced != 1000 {
			t.Errorf("produced = %d; want 1000 (WithSpans)", again.Produced)
		}
		if n := rows(t, again.File); n != r.Stored+again.Stored {
			t.Errorf("rows = %d; want %d + %d", n, r.Stored, again.Stored)
		}
	})

	t.Run("Exporters", func(t *testing.T) {
		t.Setenv("OTEL_TRACES_EXPORTER", "otlp")
		if _, err := load.Run(context.Background(), load.Lonelytrace, load.WithDuration(time.Second)); err == nil {
			t.Error("error = nil; want one about OTEL_TRACES_EXPORTER")
		}
	})

	t.Run("NoLimit", func(t *testing.T) {
		if _, err := load.Run(context.Background(), load.Lonelytrace, load.WithDuration(0)); err == nil {
			t.Error("error = nil; want one about the missing duration")
		}
	})
}

func TestRun_Rate(t *testing.T) {
	t.Setenv("OTEL_TRACES_EXPORTER", "sqlite")
	for _, producers := range []int{1, 3} {
		t.Run(map[int]string{1: "OneProducer", 3: "ThreeProducers"}[producers], func(t *testing.T) {
			const rate, secs = 5000, 2
			r, err := load.Run(context.Background(), load.Lonelytrace, load.WithRate(rate),
				load.WithDuration(secs*time.Second), load.WithProducers(producers))
			if err != nil {
				t.Fatal(err)
			}
			checkSane(t, r)
			if want := int64(rate * secs); r.Produced < want*9/10 || r.Produced > want*11/10 {
				t.Errorf("produced = %d; want %d ± 10%%", r.Produced, want)
			}
			// 10,000 spans fit in the SDK's queue of 16,384, and the
			// writer stores 5,000 a second even under the race detector:
			// nothing may be dropped.
			if r.Stored != r.Produced {
				t.Errorf("stored = %d; want produced = %d (dropped %d, SDK dropped %d)", r.Stored, r.Produced, r.Dropped, r.SDKDropped)
			}
		})
	}
}

func TestCompare(t *testing.T) {
	t.Setenv("OTEL_TRACES_EXPORTER", "sqlite")
	dir := t.TempDir()
	// 16,000 spans fit in the queue otelsetup gives the SQLite pipeline's
	// batch processor (and the yardsticks behind the same processor), and
	// the exporter holds some 6,000 more (DefaultQueueBytes), so those
	// modes must store all they were given unless the writer falls behind
	// for longer than the exporter waits for room (100 ms): under the race
	// detector, which slows it tenfold, half the rate. OTLP's default
	// queue of 2,048 may drop, and must account for it.
	rate := 8000.0
	if raceEnabled {
		rate = 4000
	}
	c, err := load.Compare(context.Background(), load.WithRate(rate), load.WithDuration(2*time.Second), load.WithDir(dir))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Runs) != len(load.Modes) {
		t.Fatalf("runs = %d; want %d", len(c.Runs), len(load.Modes))
	}
	for i, m := range load.Modes {
		r := c.Runs[i]
		if r.Mode != m {
			t.Errorf("runs[%d].Mode = %q; want %q", i, r.Mode, m)
		}
		checkSane(t, r)
		if m != load.OTLP && r.Stored != r.Produced {
			t.Errorf("%s: stored = %d; want produced = %d", m, r.Stored, r.Produced)
		}
	}
	if plain, _ := c.Run(load.Plain); rows(t, filepath.Join(dir, "plain.db")) != plain.Stored {
		t.Errorf("plain: rows in the file differ from stored = %d", plain.Stored)
	}
	if otlp, _ := c.Run(load.OTLP); otlp.BytesPerSpan < 50 || otlp.BytesPerSpan > 1000 || otlp.ReceiverCPUPerSpan < 0 {
		t.Errorf("otlp: %.1f bytes per span, receiver CPU %s; want a protobuf's few hundred bytes", otlp.BytesPerSpan, otlp.ReceiverCPUPerSpan)
	}
	if c.StoredVsPlain <= 0 || c.CPUVsDiscard <= 0 || c.ProducerVsDiscard <= 0 {
		t.Errorf("ratios %.2f, %.2f, %.2f; want all > 0", c.StoredVsPlain, c.CPUVsDiscard, c.ProducerVsDiscard)
	}
}

func TestRun_Cancel(t *testing.T) {
	t.Setenv("OTEL_TRACES_EXPORTER", "sqlite")
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	r, err := load.Run(ctx, load.Discard, load.WithDuration(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if r.Duration > 10*time.Second {
		t.Errorf("duration = %s; want the run to stop with its context", r.Duration)
	}
	checkSane(t, r)
}
