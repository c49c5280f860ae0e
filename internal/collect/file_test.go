package collect

import (
	"context"
	"database/sql"
	"errors"
	"maps"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lonelytrace/lonelytrace/exporter"
	"github.com/lonelytrace/lonelytrace/internal/otlp"
	"github.com/lonelytrace/lonelytrace/schema"
)

// testStore is the real store of a trace file in t.TempDir().
type testStore struct {
	store Store
	ex    *exporter.Exporter
	path  string
	// filler is how many spans stall queued to fill the writer's queue.
	filler int
}

func mustStore(tb testing.TB, opts ...exporter.Option) *testStore {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), "traces.db")
	ex, err := exporter.New(path, append([]exporter.Option{exporter.WithBusyTimeout(time.Minute)}, opts...)...)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := ex.Shutdown(ctx); err != nil {
			tb.Errorf("shutdown: %v", err)
		}
	})
	return &testStore{store: FileStore(ex), ex: ex, path: path}
}

// spans reads every span of the file, after the writer has written all
// it was given.
// checkNamesAndSizes checks that the file holds exactly the spans of
// want, span names each sent once, each with its body size attribute.
func (s *testStore) checkNamesAndSizes(tb testing.TB, want map[string]int64) {
	tb.Helper()
	got := s.spans(tb)
	if len(got) != len(want) {
		tb.Fatalf("stored %d spans; want %d", len(got), len(want))
	}
	left := maps.Clone(want)
	for _, sp := range got {
		size, ok := left[sp.Name]
		if !ok {
			tb.Errorf("stored a span named %q, which was not sent, or twice", sp.Name)
			continue
		}
		if sp.PubSub.BodySize != size {
			tb.Errorf("span %q: body size %d; want %d", sp.Name, sp.PubSub.BodySize, size)
		}
		delete(left, sp.Name)
	}
}

func (s *testStore) spans(tb testing.TB) []schema.Span {
	tb.Helper()
	ctx := context.Background()
	if err := s.ex.ForceFlush(ctx); err != nil {
		tb.Fatalf("flush: %v", err)
	}
	db, err := schema.OpenRead(ctx, s.path)
	if err != nil {
		tb.Fatal(err)
	}
	defer db.Close()
	r := schema.NewReader(db)
	var all []schema.Span
	for after := int64(0); ; {
		page, err := r.After(ctx, after, 1000)
		if err != nil {
			tb.Fatal(err)
		}
		if len(page) == 0 {
			return all
		}
		all = append(all, page...)
		after = page[len(page)-1].ID
	}
}

// count is the number of spans in the file besides stall's filler.
func (s *testStore) count(tb testing.TB) int {
	tb.Helper()
	ctx := context.Background()
	if err := s.ex.ForceFlush(ctx); err != nil {
		tb.Fatalf("flush: %v", err)
	}
	db, err := schema.OpenRead(ctx, s.path)
	if err != nil {
		tb.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRowContext(ctx, "SELECT count(*) FROM spans").Scan(&n); err != nil {
		tb.Fatal(err)
	}
	return n - s.filler
}

// stall stops the writer, holding the file's write lock from another
// connection, and fills its queue, so that stores find it full until
// resume.
func (s *testStore) stall(tb testing.TB) (resume func()) {
	tb.Helper()
	ctx := context.Background()
	db, err := sql.Open("sqlite", "file:"+s.path+"?_pragma=busy_timeout(0)")
	if err != nil {
		tb.Fatal(err)
	}
	conn, err := db.Conn(ctx)
	if err != nil {
		tb.Fatal(err)
	}
	// A writer kept busy by clients that never pause begins its next
	// transaction within microseconds of its commit, and SQLite's busy
	// handler, which polls at up to 100 ms, may then never find the lock
	// free (it failed so, after 10 s, under -race): the lock is asked for
	// again every 100 µs instead, for at most a minute.
	for deadline := time.Now().Add(time.Minute); ; {
		_, err := conn.ExecContext(ctx, "BEGIN IMMEDIATE")
		if err == nil {
			break
		}
		if !strings.Contains(err.Error(), "SQLITE_BUSY") || time.Now().After(deadline) {
			tb.Fatal(err)
		}
		time.Sleep(100 * time.Microsecond)
	}
	// The writer takes jobs off the queue while it gathers a transaction:
	// the queue is full for good once it stays full for longer than the
	// writer gathers. The filler is queued without waiting for its commit,
	// which comes only after resume.
	fill := func() {
		for i := 0; ; i++ {
			if i > 100_000 {
				tb.Fatal("the writer's queue never filled")
			}
			spans, _, _ := otlp.Spans(makeTraces(1, byte(200+i%50)))
			err := s.ex.TryExportRecords(spans)
			if errors.Is(err, exporter.ErrQueueFull) {
				return
			}
			if err != nil {
				tb.Fatal(err)
			}
			s.filler++
		}
	}
	for stable := false; !stable; {
		fill()
		before := s.filler
		time.Sleep(exporter.DefaultCommitInterval + 200*time.Millisecond)
		fill()
		stable = s.filler == before
	}
	var once sync.Once
	resume = func() {
		once.Do(func() {
			conn.ExecContext(ctx, "ROLLBACK")
			conn.Close()
			db.Close()
		})
	}
	tb.Cleanup(resume)
	return resume
}

func (s *testStore) Store(ctx context.Context, rec otlp.Records, wait time.Duration) (int, int, string, error) {
	return s.store.Store(ctx, rec, wait)
}
