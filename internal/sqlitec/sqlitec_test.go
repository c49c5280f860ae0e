package sqlitec_test

import (
	"bytes"
	"database/sql"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	_ "modernc.org/sqlite"

	"github.com/lonelytrace/lonelytrace/internal/sqlitec"
)

// newFile writes a WAL-mode file of n rows whose columns hold every type,
// through database/sql, and returns its path and the open writer.
func newFile(t *testing.T, n int) (string, *sql.DB) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "t.db")
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=journal_mode(WAL)")
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(1)
	t.Cleanup(func() { db.Close() })
	if _, err := db.Exec("CREATE TABLE t (id INTEGER PRIMARY KEY, i INTEGER, f REAL, s TEXT, b BLOB, z)"); err != nil {
		t.Fatal(err)
	}
	tx, err := db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	for k := 1; k <= n; k++ {
		_, err := tx.Exec("INSERT INTO t VALUES (?, ?, ?, ?, ?, NULL)", k, int64(k)<<40, float64(k)/4, fmt.Sprintf("row %d ✓", k), []byte{byte(k), 0, byte(k >> 8)})
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	return path, db
}

func open(t *testing.T, path string) *sqlitec.Conn {
	t.Helper()
	c, err := sqlitec.Open("file:"+path+"?mode=ro", time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestRead_EveryType(t *testing.T) {
	path, _ := newFile(t, 1000)
	c := open(t, path)
	s, err := c.Prepare("SELECT id, i, f, s, b, z FROM t WHERE id BETWEEN ?1 AND ?2 AND s != ?3 ORDER BY id")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Start(int64(10), 500, "row 20 ✓"); err != nil {
		t.Fatal(err)
	}
	want := 10
	for {
		more, err := s.Next()
		if err != nil {
			t.Fatal(err)
		}
		if !more {
			break
		}
		if want == 20 {
			want++ // excluded by ?3, a text parameter
		}
		types := []int{s.Type(0), s.Type(1), s.Type(2), s.Type(3), s.Type(4), s.Type(5)}
		if fmt.Sprint(types) != fmt.Sprint([]int{sqlitec.Integer, sqlitec.Integer, sqlitec.Float, sqlitec.Text, sqlitec.Blob, sqlitec.Null}) {
			t.Fatalf("row %d types = %v", want, types)
		}
		if id, i, f := s.Int64(0), s.Int64(1), s.Float(2); id != int64(want) || i != int64(want)<<40 || f != float64(want)/4 {
			t.Fatalf("row %d = %d, %d, %g", want, id, i, f)
		}
		if got := string(s.Bytes(3)); got != fmt.Sprintf("row %d ✓", want) {
			t.Fatalf("row %d text = %q", want, got)
		}
		if got := s.Bytes(4); !bytes.Equal(got, []byte{byte(want), 0, byte(want >> 8)}) {
			t.Fatalf("row %d blob = %v", want, got)
		}
		if s.Bytes(5) != nil {
			t.Fatalf("row %d NULL read as bytes %v", want, s.Bytes(5))
		}
		want++
	}
	if want != 501 {
		t.Errorf("rows up to id %d; want up to 500", want-1)
	}
	// Started again, the statement reads anew.
	if err := s.Start(1, 1, ""); err != nil {
		t.Fatal(err)
	}
	if more, err := s.Next(); !more || err != nil || s.Int64(0) != 1 {
		t.Errorf("restarted statement: %v, %v, id %d", more, err, s.Int64(0))
	}
	s.Reset()
	if err := s.Start(1.5); err == nil || !strings.Contains(err.Error(), "float64") {
		t.Errorf("Start(1.5) = %v; want an error naming the type", err)
	}
}

func TestOpen_BadFiles(t *testing.T) {
	dir := t.TempDir()
	if _, err := sqlitec.Open("file:"+filepath.Join(dir, "missing.db")+"?mode=ro", time.Second); err == nil {
		t.Error("Open of a missing file succeeded")
	}
	garbage := filepath.Join(dir, "garbage.db")
	if err := os.WriteFile(garbage, bytes.Repeat([]byte("not a database "), 500), 0o644); err != nil {
		t.Fatal(err)
	}
	c := open(t, garbage) // SQLite reads nothing until the first statement
	if _, err := c.Prepare("SELECT count(*) FROM sqlite_master"); err == nil || !strings.Contains(err.Error(), "not a database") {
		t.Errorf("Prepare on garbage = %v; want 'not a database'", err)
	}
	path, _ := newFile(t, 1)
	c = open(t, path)
	if err := c.Exec("CREATE TABLE u (x)"); err == nil || !strings.Contains(err.Error(), "readonly") {
		t.Errorf("a write on a read-only connection = %v; want a readonly error", err)
	}
	if _, err := c.Prepare("SELECT x FROM nowhere"); err == nil || !strings.Contains(err.Error(), "no such table") {
		t.Errorf("Prepare of a bad query = %v; want SQLite's message", err)
	}
}

// TestReset_LetsTheWALStartOver checks what the viewer's pool relies on:
// a statement left mid-run holds its snapshot, and the WAL cannot be
// checkpointed to its end; once it is reset, the WAL can.
func TestReset_LetsTheWALStartOver(t *testing.T) {
	path, w := newFile(t, 100)
	c := open(t, path)
	s, err := c.Prepare("SELECT id FROM t")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	if more, err := s.Next(); !more || err != nil {
		t.Fatalf("Next = %v, %v", more, err)
	}
	if _, err := w.Exec("INSERT INTO t (id) VALUES (1000)"); err != nil {
		t.Fatal(err)
	}
	checkpoint := func() (busy, log, done int) {
		t.Helper()
		if err := w.QueryRow("PRAGMA wal_checkpoint(PASSIVE)").Scan(&busy, &log, &done); err != nil {
			t.Fatal(err)
		}
		return busy, log, done
	}
	if _, log, done := checkpoint(); done == log {
		t.Errorf("with a statement mid-run, the checkpoint copied all %d frames; want it held back", log)
	}
	s.Reset()
	if _, log, done := checkpoint(); done != log {
		t.Errorf("after Reset, the checkpoint copied %d of %d frames; want all", done, log)
	}
}

// TestConcurrent reads one file on a connection per goroutine, as the
// viewer's scan does, and checks every sum.
func TestConcurrent(t *testing.T) {
	path, _ := newFile(t, 5000)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := range 8 {
		wg.Go(func() {
			c, err := sqlitec.Open("file:"+path+"?mode=ro", time.Second)
			if err != nil {
				errs <- err
				return
			}
			defer c.Close()
			s, err := c.Prepare("SELECT f FROM t WHERE id % 8 = ?1")
			if err != nil {
				errs <- err
				return
			}
			defer s.Close()
			for range 20 {
				if err := s.Start(g); err != nil {
					errs <- err
					return
				}
				var sum float64
				for {
					more, err := s.Next()
					if err != nil {
						errs <- err
						return
					}
					if !more {
						break
					}
					sum += s.Float(0)
				}
				var want float64
				for k := 1; k <= 5000; k++ {
					if k%8 == g {
						want += float64(k) / 4
					}
				}
				if math.Abs(sum-want) > 1e-9 {
					errs <- fmt.Errorf("goroutine %d: sum %g; want %g", g, sum, want)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestStart_Blob binds blobs, a byte 0 in them, and finds the rows whose
// blob equals them; an empty blob is a blob, not NULL.
func TestStart_Blob(t *testing.T) {
	path, _ := newFile(t, 300)
	c := open(t, path)
	s, err := c.Prepare("SELECT id FROM t WHERE b IN (?1, ?2, ?3) ORDER BY id")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Start([]byte{7, 0, 0}, []byte{44, 0, 1}, []byte{}); err != nil {
		t.Fatal(err)
	}
	var got []int64
	for {
		more, err := s.Next()
		if err != nil {
			t.Fatal(err)
		}
		if !more {
			break
		}
		got = append(got, s.Int64(0))
	}
	if fmt.Sprint(got) != "[7 300]" {
		t.Errorf("rows = %v; want [7 300]", got)
	}
	q, err := c.Prepare("SELECT typeof(?1), length(?1)")
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	if err := q.Start([]byte{}); err != nil {
		t.Fatal(err)
	}
	if more, err := q.Next(); !more || err != nil {
		t.Fatalf("Next = %v, %v", more, err)
	}
	if typ, n := string(q.Bytes(0)), q.Int64(1); typ != "blob" || n != 0 {
		t.Errorf("empty blob binds as %s of %d bytes; want blob of 0", typ, n)
	}
}
