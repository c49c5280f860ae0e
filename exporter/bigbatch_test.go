package exporter_test

import (
	"context"
	"database/sql"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/lonelytrace/lonelytrace/exporter"
	"github.com/lonelytrace/lonelytrace/schema"
)

// stubSpan is a span of trace number tr (a trace id made from it) with
// span id number sp, for tests that choose the shape of a batch.
func stubSpan(tr, sp uint64) sdktrace.ReadOnlySpan {
	var tid trace.TraceID
	binary.BigEndian.PutUint64(tid[:8], 0x1c0ffee)
	binary.BigEndian.PutUint64(tid[8:], tr+1)
	var sid trace.SpanID
	binary.BigEndian.PutUint64(sid[:], sp+1)
	start := time.Unix(1_700_000_000, int64(sp)).UTC()
	return tracetest.SpanStub{
		Name:        "op",
		SpanContext: trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceFlags: trace.FlagsSampled}),
		StartTime:   start,
		EndTime:     start.Add(time.Millisecond),
	}.Snapshot()
}

// storedPairs reads the file's spans as a map from span id to trace id,
// and the number of trace rows, failing on a span id stored twice.
func storedPairs(tb testing.TB, path string) (spans map[string]string, traceRows int64) {
	tb.Helper()
	db, err := schema.OpenRead(context.Background(), path)
	if err != nil {
		tb.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query("SELECT trace_id, span_id FROM spans_view")
	if err != nil {
		tb.Fatal(err)
	}
	defer rows.Close()
	spans = make(map[string]string)
	for rows.Next() {
		var tr, sp string
		if err := rows.Scan(&tr, &sp); err != nil {
			tb.Fatal(err)
		}
		if _, dup := spans[sp]; dup {
			tb.Fatalf("span %s stored twice", sp)
		}
		spans[sp] = tr
	}
	if err := rows.Err(); err != nil {
		tb.Fatal(err)
	}
	// startGeneration1's marker is a row of no trace.
	return spans, queryInt(tb, db, "SELECT count(*) FROM traces WHERE trace_id != zeroblob(16)")
}

// checkStored compares the file with the spans the test made: every one
// stored once under its own trace, and one trace row per distinct trace.
func checkStored(tb testing.TB, path string, made []sdktrace.ReadOnlySpan) {
	tb.Helper()
	want := make(map[string]string, len(made))
	traces := make(map[string]bool)
	for _, s := range made {
		want[s.SpanContext().SpanID().String()] = s.SpanContext().TraceID().String()
		traces[s.SpanContext().TraceID().String()] = true
	}
	got, traceRows := storedPairs(tb, path)
	if len(got) != len(want) {
		tb.Errorf("stored %d spans; want %d", len(got), len(want))
	}
	wrong := 0
	for sp, tr := range want {
		if got[sp] != tr {
			if wrong < 3 {
				tb.Errorf("span %s: stored under trace %q; want %s", sp, got[sp], tr)
			}
			wrong++
		}
	}
	if wrong > 3 {
		tb.Errorf("... %d spans in all not stored under their trace", wrong)
	}
	if traceRows != int64(len(traces)) {
		tb.Errorf("traces has %d rows; want %d", traceRows, len(traces))
	}
}

// TestTraces_LargeBatches checks batches with more distinct traces than a
// generation of the writer's trace cache holds: every span of the batch is
// stored under its own trace. A batch of more than 8,192 new traces used to
// push its first traces out of the cache before their spans were given
// their ids, and the whole transaction failed ("was not resolved").
func TestTraces_LargeBatches(t *testing.T) {
	sizes := []int{8191, 8192, 8193, 16385, 100_000}
	if raceEnabled {
		sizes = []int{8191, 8192, 8193, 16385, 33_000}
	}
	for _, n := range sizes {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			ctx := context.Background()
			path := filepath.Join(t.TempDir(), "t.db")
			e := mustNew(t, path)
			batch := make([]sdktrace.ReadOnlySpan, n)
			for i := range batch {
				batch[i] = stubSpan(uint64(i), uint64(i))
			}
			if err := e.ExportSpans(ctx, batch); err != nil {
				t.Fatal(err)
			}
			if err := e.ForceFlush(ctx); err != nil {
				t.Fatalf("flush: %v", err)
			}
			if err := e.Shutdown(ctx); err != nil {
				t.Fatal(err)
			}
			st := e.Stats()
			if st.Written != int64(n) || st.Failed != 0 || st.Dropped != 0 {
				t.Errorf("written %d, failed %d, dropped %d; want %d written (last error %v)", st.Written, st.Failed, st.Dropped, n, st.LastError)
			}
			checkStored(t, path, batch)
		})
	}
}

// TestTraces_LargeBatchAcrossGenerations checks a batch of more traces than
// the cache holds, half of them already written in the generation before
// by another writer: those keep their one row, the others get new rows.
func TestTraces_LargeBatchAcrossGenerations(t *testing.T) {
	n := 12_000
	if raceEnabled {
		n = 9000
	}
	path := filepath.Join(t.TempDir(), "t.db")
	var old, fresh []sdktrace.ReadOnlySpan
	for i := range n {
		old = append(old, stubSpan(uint64(i), uint64(i)))
		fresh = append(fresh, stubSpan(uint64(i), uint64(n+i)), stubSpan(uint64(n+i), uint64(2*n+i)))
	}
	exportAll(t, path, old)
	startGeneration1(t, path)
	exportAll(t, path, fresh)
	checkStored(t, path, append(old, fresh...))

	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	// The traces of the first writer keep their rows in generation 0.
	if g := queryInt(t, db, "SELECT count(*) FROM traces WHERE gen = 1"); g != int64(n) {
		t.Errorf("generation 1 has %d rows; want %d", g, n)
	}
}

// TestTraces_BatchShapes is a property test: batches of random shapes
// (many traces of one span, one trace of many spans, traces spread over
// many batches, some spans sent again by a restarted writer) are stored
// exactly as an independent count of the spans made says.
func TestTraces_BatchShapes(t *testing.T) {
	rounds, maxBatch := 12, 40_000
	if raceEnabled {
		rounds, maxBatch = 4, 9000
	}
	for round := range rounds {
		seed := uint64(round)
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 0x5eed))
			ctx := context.Background()
			path := filepath.Join(t.TempDir(), "t.db")
			var made []sdktrace.ReadOnlySpan
			var nextTrace, nextSpan uint64
			e := mustNew(t, path)
			for range 1 + rng.IntN(6) {
				var batch []sdktrace.ReadOnlySpan
				size := 1 + rng.IntN(maxBatch)
				// The batch's shape: traces of one span, of a few, one trace
				// of the whole batch, or a mix.
				shape := rng.IntN(4)
				for len(batch) < size {
					// A trace of this batch: a new one, or one of an earlier
					// batch, with a run of spans.
					tr := nextTrace
					if nextTrace > 0 && rng.IntN(8) == 0 {
						tr = rng.Uint64N(nextTrace)
					} else {
						nextTrace++
					}
					run := 1
					switch {
					case shape == 1 || shape == 3 && rng.IntN(2) == 0:
						run = 1 + rng.IntN(8)
					case shape == 2:
						run = size
					}
					for range min(run, size-len(batch)) {
						batch = append(batch, stubSpan(tr, nextSpan))
						nextSpan++
					}
				}
				rng.Shuffle(len(batch), func(i, j int) {
					if rng.IntN(2) == 0 {
						batch[i], batch[j] = batch[j], batch[i]
					}
				})
				if err := e.ExportSpans(ctx, batch); err != nil {
					t.Fatal(err)
				}
				made = append(made, batch...)
				if rng.IntN(4) == 0 {
					// A writer that starts again knows none of the traces.
					if err := e.Shutdown(ctx); err != nil {
						t.Fatal(err)
					}
					checkWritten(t, e)
					e = mustNew(t, path)
				}
			}
			if err := e.Shutdown(ctx); err != nil {
				t.Fatal(err)
			}
			checkWritten(t, e)
			checkStored(t, path, made)
		})
	}
}

// checkWritten fails when e failed or dropped spans.
func checkWritten(tb testing.TB, e *exporter.Exporter) {
	tb.Helper()
	if st := e.Stats(); st.Failed != 0 || st.Dropped != 0 {
		tb.Fatalf("failed %d, dropped %d spans (last error %v)", st.Failed, st.Dropped, st.LastError)
	}
}
