package exporter_test

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/lonelytrace/lonelytrace/exporter"
	"github.com/lonelytrace/lonelytrace/internal/otlp/otlptest"
	"github.com/lonelytrace/lonelytrace/schema"
)

// records returns n records named name, with span ids from first on.
func records(n int, name string, first uint64) []schema.Span {
	out := make([]schema.Span, n)
	now := time.Now()
	for i := range out {
		id := first + uint64(i)
		out[i] = schema.Span{
			TraceID:  trace.TraceID{0xcc, 1, byte(id >> 8), byte(id)},
			SpanID:   trace.SpanID{0xdd, 0, 0, byte(id >> 32), byte(id >> 24), byte(id >> 16), byte(id >> 8), byte(id)},
			Name:     name,
			Start:    now,
			End:      now.Add(time.Millisecond),
			Resource: schema.Resource{},
			Scope:    schema.Scope{Name: "pending_test"},
		}
	}
	return out
}

// TestExporter_QueueRecords: Wait returns once the records are committed
// (the file holds them without a ForceFlush, well before the commit
// interval); records the file refuses, in one transaction with SDK spans
// and other records, are the only ones rejected (a RejectedError, with
// the file's reason) and counted failed, the rest written: a batch the
// file refuses whole, and a few bad records among the good ones of
// another.
func TestExporter_QueueRecords(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "t.db")
	e := mustNew(t, path, exporter.WithCommitInterval(time.Hour), exporter.WithBusyTimeout(time.Minute))

	t.Run("Committed", func(t *testing.T) {
		p, err := e.QueueRecords(ctx, records(50, "first", 0), true)
		if err != nil {
			t.Fatal(err)
		}
		if err := p.Wait(ctx); err != nil {
			t.Fatalf("Wait = %v; want nil", err)
		}
		if n := countNamed(t, path, "first"); n != 50 {
			t.Errorf("rows after Wait = %d; want 50", n)
		}
		if err := p.Wait(ctx); err != nil {
			t.Errorf("second Wait = %v; want nil again", err)
		}
	})

	t.Run("Isolated", func(t *testing.T) {
		db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)")
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		if _, err := db.Exec(`CREATE TRIGGER poison BEFORE INSERT ON spans WHEN NEW.name = 'poison'
			BEGIN SELECT RAISE(ABORT, 'poison span refused'); END`); err != nil {
			t.Fatal(err)
		}
		// Everything is queued while another connection holds the lock,
		// so that it all goes into the writer's next transaction.
		hold, err := db.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer hold.Close()
		if _, err := hold.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
			t.Fatal(err)
		}
		before := e.Stats()
		if err := e.ExportSpans(ctx, spans(30)); err != nil {
			t.Fatal(err)
		}
		var pending []*exporter.Pending
		for i, name := range []string{"good", "poison", "good", "good"} {
			recs := records(20, name, uint64(1000+100*i))
			if i == 3 {
				// A few bad records among good ones: only they are left out.
				for _, k := range []int{0, 7, 8, 19} {
					recs[k].Name = "poison"
				}
			}
			p, err := e.QueueRecords(ctx, recs, true)
			if err != nil {
				t.Fatal(err)
			}
			pending = append(pending, p)
		}
		if _, err := hold.ExecContext(ctx, "ROLLBACK"); err != nil {
			t.Fatal(err)
		}
		for i, p := range pending {
			err := p.Wait(ctx)
			var re *exporter.RejectedError
			switch i {
			case 1, 3:
				want := map[int]int{1: 20, 3: 4}[i]
				if !errors.As(err, &re) || !errors.Is(err, exporter.ErrRejected) || re.Spans != want || !strings.Contains(err.Error(), "poison span refused") {
					t.Errorf("Wait of batch %d = %v; want a RejectedError of %d spans with the file's reason", i, err, want)
				}
			default:
				if err != nil {
					t.Errorf("Wait of batch %d = %v; want nil", i, err)
				}
			}
		}
		if err := e.ForceFlush(ctx); err != nil {
			t.Errorf("ForceFlush = %v; want nil: the rest of the transaction was written", err)
		}
		if n, p := countNamed(t, path, "good"), countNamed(t, path, "poison"); n != 56 || p != 0 {
			t.Errorf("good rows = %d, poison rows = %d; want 56 and 0", n, p)
		}
		if n := otlptest.StoredSpans(t, path); n != 50+30+56 {
			t.Errorf("rows = %d; want %d (the SDK's 30 beside the records)", n, 50+30+56)
		}
		s := e.Stats()
		if s.Failed-before.Failed != 24 || s.Written-before.Written != 86 {
			t.Errorf("Stats = %+v; want 24 more failed and 86 more written", s)
		}
		// The next batch goes on as usual: the file is not failing.
		p, err := e.QueueRecords(ctx, records(5, "after", 5000), false)
		if err != nil {
			t.Fatal(err)
		}
		if err := p.Wait(ctx); err != nil {
			t.Errorf("Wait after the rejection = %v; want nil", err)
		}
	})
}
