package sqlitec_test

import (
	"bytes"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lonelytrace/lonelytrace/internal/sqlitec"
)

// openWrite creates a WAL-mode file with a table v of one column of any
// type through database/sql, closes that, and opens it read-write.
func openWrite(t testing.TB) (*sqlitec.Conn, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "w.db")
	db, err := sql.Open("sqlite", uri(path)+"?_pragma=journal_mode(WAL)")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec("CREATE TABLE v (k INTEGER PRIMARY KEY, x)"); err != nil {
		t.Fatal(err)
	}
	db.Close()
	c, err := sqlitec.OpenWrite(uri(path)+"?mode=rw", time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c, path
}

// uri is the "file:" URI of path: a fuzz test's folder has a '#' in its
// name, which would end the path.
func uri(path string) string {
	return "file:" + strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23").Replace(path)
}

// readBack reads the values of table v in key order through database/sql,
// the driver: an independent reader.
func readBack(t testing.TB, path string) []any {
	t.Helper()
	db, err := sql.Open("sqlite", uri(path)+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query("SELECT x FROM v ORDER BY k")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []any
	for rows.Next() {
		var x any
		if err := rows.Scan(&x); err != nil {
			t.Fatal(err)
		}
		out = append(out, x)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// same reports whether a value read back by the driver is the value
// bound: an int64, a string (text), a []byte (blob, empty included) or
// nil.
func same(got, want any) bool {
	switch w := want.(type) {
	case nil:
		return got == nil
	case int64:
		g, ok := got.(int64)
		return ok && g == w
	case string:
		g, ok := got.(string)
		return ok && g == w
	case []byte:
		g, ok := got.([]byte)
		return ok && bytes.Equal(g, w)
	}
	return false
}

func TestOpenWrite_BindEveryType(t *testing.T) {
	c, path := openWrite(t)
	s, err := c.Prepare("INSERT INTO v (x) VALUES (?1)")
	if err != nil {
		t.Fatal(err)
	}
	long := strings.Repeat("long text ✓ ", 2000) // past the buffer's first size
	want := []any{int64(0), int64(math.MinInt64), int64(math.MaxInt64), "", "héllo\x00world", long, []byte{}, []byte{0, 1, 2, 0}, nil}
	if err := c.Exec("BEGIN IMMEDIATE"); err != nil {
		t.Fatal(err)
	}
	for _, v := range want {
		switch v := v.(type) {
		case int64:
			err = s.BindInt64(1, v)
		case string:
			err = s.BindText(1, v)
		case []byte:
			err = s.BindBlob(1, v)
		case nil:
			err = s.BindNull(1)
		}
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Exec(); err != nil {
			t.Fatal(err)
		}
		if n := c.Changes(); n != 1 {
			t.Errorf("Changes = %d; want 1", n)
		}
	}
	if err := c.Exec("COMMIT"); err != nil {
		t.Fatal(err)
	}
	if id := c.LastInsertRowID(); id != int64(len(want)) {
		t.Errorf("LastInsertRowID = %d; want %d", id, len(want))
	}
	got := readBack(t, path)
	if len(got) != len(want) {
		t.Fatalf("rows = %d; want %d", len(got), len(want))
	}
	for i := range want {
		if !same(got[i], want[i]) {
			t.Errorf("row %d = %#v; want %#v", i, got[i], want[i])
		}
	}
}

// TestBindText_Copies checks that a bound text is SQLite's to read after
// the caller's bytes changed: BindText copies, and several values bound
// to one statement, past one buffer's size, all stay valid until the
// step.
func TestBindText_Copies(t *testing.T) {
	c, path := openWrite(t)
	s, err := c.Prepare("INSERT INTO v (x) VALUES (?1), (?2), (?3)")
	if err != nil {
		t.Fatal(err)
	}
	buf := []byte(strings.Repeat("a", 3000))
	want := []any{}
	for i := 1; i <= 3; i++ {
		if err := s.BindText(i, string(buf)); err != nil {
			t.Fatal(err)
		}
		want = append(want, string(buf))
		for k := range buf {
			buf[k]++ // what the caller does with its buffer next
		}
	}
	if err := s.Exec(); err != nil {
		t.Fatal(err)
	}
	got := readBack(t, path)
	for i := range want {
		if !same(got[i], want[i]) {
			t.Errorf("row %d = %.10q…; want %.10q…", i, got[i], want[i])
		}
	}
}

// TestValues binds rows gathered in a Values, several rows per statement
// and the rest one at a time, and reads them back.
func TestValues(t *testing.T) {
	c, path := openWrite(t)
	many, err := c.Prepare("INSERT INTO v (x) VALUES (?), (?), (?), (?)")
	if err != nil {
		t.Fatal(err)
	}
	one, err := c.Prepare("INSERT INTO v (x) VALUES (?)")
	if err != nil {
		t.Fatal(err)
	}
	v := c.NewValues()
	defer v.Free()
	var want []any
	add := func(i int) {
		switch i % 4 {
		case 0:
			v.Int64(int64(i))
			want = append(want, int64(i))
		case 1:
			s := fmt.Sprintf("text %d %s", i, strings.Repeat("x", i%700))
			v.Text(s)
			want = append(want, s)
		case 2:
			b := bytes.Repeat([]byte{byte(i), 0}, i%300)
			v.Blob(b)
			want = append(want, b)
		default:
			v.Null()
			want = append(want, nil)
		}
	}
	for i := range 1001 {
		add(i)
		if v.Len() == 4 {
			if err := many.BindValues(v, 0, 4); err != nil {
				t.Fatal(err)
			}
			if err := many.Exec(); err != nil {
				t.Fatal(err)
			}
			v.Reset()
		}
	}
	for i := range v.Len() {
		if err := one.BindValues(v, i, 1); err != nil {
			t.Fatal(err)
		}
		if err := one.Exec(); err != nil {
			t.Fatal(err)
		}
	}
	if err := one.BindValues(v, v.Len(), 1); err == nil {
		t.Error("BindValues past the values = nil; want an error")
	}
	got := readBack(t, path)
	if len(got) != len(want) {
		t.Fatalf("rows = %d; want %d", len(got), len(want))
	}
	for i := range want {
		if !same(got[i], want[i]) {
			t.Fatalf("row %d = %#v; want %#v", i, got[i], want[i])
		}
	}
}

// TestError_Codes checks that a failure carries SQLite's extended code and
// the driver's wording, so that the writer tells a busy file, a full one
// and a refused row apart.
func TestError_Codes(t *testing.T) {
	c, path := openWrite(t)
	code := func(err error) int {
		t.Helper()
		var se *sqlitec.Error
		if !errors.As(err, &se) {
			t.Fatalf("error %v is not a *sqlitec.Error", err)
		}
		return se.Code()
	}
	if err := c.Exec("CREATE TABLE u (x UNIQUE); INSERT INTO u VALUES (1)"); err != nil {
		t.Fatal(err)
	}
	err := c.ExecArgs("INSERT INTO u VALUES (?)", 1)
	if code(err)&0xff != sqlitec.Constraint || code(err) == sqlitec.Constraint || !strings.Contains(err.Error(), "UNIQUE constraint failed: u.x") {
		t.Errorf("a duplicate = %v (code %d); want an extended constraint code and SQLite's message", err, code(err))
	}

	// Another connection holds the write lock past the busy timeout.
	other, err := sql.Open("sqlite", uri(path))
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	other.SetMaxOpenConns(1)
	if _, err := other.Exec("BEGIN IMMEDIATE"); err != nil {
		t.Fatal(err)
	}
	if err := c.Exec("PRAGMA busy_timeout = 10"); err != nil {
		t.Fatal(err)
	}
	err = c.Exec("BEGIN IMMEDIATE")
	if code(err)&0xff != sqlitec.Busy || !strings.Contains(err.Error(), "SQLITE_BUSY") {
		t.Errorf("a held lock = %v; want busy", err)
	}
	if _, err := other.Exec("ROLLBACK"); err != nil {
		t.Fatal(err)
	}

	// A full disk, as SQLite sees it: the file may not grow.
	if err := c.Exec("PRAGMA max_page_count = 1"); err != nil {
		t.Fatal(err)
	}
	err = c.ExecArgs("INSERT INTO v (x) VALUES (?)", strings.Repeat("x", 100000))
	if code(err)&0xff != sqlitec.Full || !strings.Contains(err.Error(), "full") {
		t.Errorf("a full file = %v; want full", err)
	}

	if err := c.Exec("PRAGMA query_only = 1"); err != nil {
		t.Fatal(err)
	}
	err = c.ExecArgs("INSERT INTO v (x) VALUES (1)")
	if code(err)&0xff != sqlitec.ReadOnly || !strings.Contains(err.Error(), "readonly") {
		t.Errorf("a query-only connection = %v; want readonly", err)
	}
}

// TestClosed checks that every call on a closed connection, and on its
// statements and values, fails with ErrClosed instead of reaching SQLite.
func TestClosed(t *testing.T) {
	c, _ := openWrite(t)
	s, err := c.Prepare("INSERT INTO v (x) VALUES (?)")
	if err != nil {
		t.Fatal(err)
	}
	v := c.NewValues()
	v.Text("x")
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Errorf("a second Close = %v; want nil", err)
	}
	for name, err := range map[string]error{
		"Exec":       c.Exec("SELECT 1"),
		"ExecArgs":   c.ExecArgs("SELECT ?", 1),
		"BindInt64":  s.BindInt64(1, 1),
		"BindText":   s.BindText(1, "x"),
		"BindBlob":   s.BindBlob(1, []byte{1}),
		"BindNull":   s.BindNull(1),
		"BindValues": s.BindValues(v, 0, 1),
		"Exec stmt":  s.Exec(),
	} {
		if !errors.Is(err, sqlitec.ErrClosed) {
			t.Errorf("%s on a closed connection = %v; want ErrClosed", name, err)
		}
	}
	if _, err := c.Prepare("SELECT 1"); !errors.Is(err, sqlitec.ErrClosed) {
		t.Errorf("Prepare on a closed connection = %v; want ErrClosed", err)
	}
	var never sqlitec.Conn // as the exporter's writer holds one without a file
	if err := never.Exec("SELECT 1"); !errors.Is(err, sqlitec.ErrClosed) {
		t.Errorf("Exec on a Conn never opened = %v; want ErrClosed", err)
	}
	if never.Changes() != 0 || never.LastInsertRowID() != 0 || never.Close() != nil {
		t.Error("a Conn never opened answers as if open")
	}
}

// TestOpenWrite_Missing checks that OpenWrite creates nothing.
func TestOpenWrite_Missing(t *testing.T) {
	path := filepath.Join(t.TempDir(), "missing.db")
	if c, err := sqlitec.OpenWrite(uri(path)+"?mode=rw", time.Second); err == nil {
		c.Close()
		t.Error("OpenWrite of a missing file succeeded")
	}
}

// TestWriters_Concurrent writes one file from a connection per goroutine,
// each in its own transactions, and checks that every row is there.
func TestWriters_Concurrent(t *testing.T) {
	_, path := openWrite(t)
	const writers, rows = 4, 200
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for g := range writers {
		wg.Go(func() {
			c, err := sqlitec.OpenWrite(uri(path)+"?mode=rw", 10*time.Second)
			if err != nil {
				errs <- err
				return
			}
			defer c.Close()
			s, err := c.Prepare("INSERT INTO v (x) VALUES (?1)")
			if err != nil {
				errs <- err
				return
			}
			for k := range rows / 20 {
				if err := c.Exec("BEGIN IMMEDIATE"); err != nil {
					errs <- err
					return
				}
				for i := range 20 {
					if err := s.BindText(1, fmt.Sprintf("g%d-%d", g, k*20+i)); err != nil {
						errs <- err
						return
					}
					if err := s.Exec(); err != nil {
						errs <- err
						return
					}
				}
				if err := c.Exec("COMMIT"); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	seen := make(map[string]bool)
	for _, x := range readBack(t, path) {
		seen[fmt.Sprint(x)] = true
	}
	for g := range writers {
		for i := range rows {
			if !seen[fmt.Sprintf("g%d-%d", g, i)] {
				t.Fatalf("row g%d-%d missing", g, i)
			}
		}
	}
}

// FuzzBind binds random integers, texts, blobs and NULLs, several to a
// statement and as gathered Values, steps them into a table and reads
// them back equal through the driver.
func FuzzBind(f *testing.F) {
	f.Add(int64(0), "", []byte{}, uint8(0))
	f.Add(int64(-1), "héllo\x00", []byte{0, 0, 1}, uint8(7))
	f.Add(int64(math.MaxInt64), strings.Repeat("z", 5000), []byte(nil), uint8(255))
	f.Fuzz(func(t *testing.T, n int64, s string, b []byte, mask uint8) {
		c, path := openWrite(t)
		many, err := c.Prepare("INSERT INTO v (x) VALUES (?), (?), (?), (?)")
		if err != nil {
			t.Fatal(err)
		}
		vals := c.NewValues()
		defer vals.Free()
		// The four values in an order the mask picks, bound one by one,
		// then gathered.
		var want []any
		for i := range 4 {
			switch (int(mask) >> (2 * i)) & 3 {
			case 0:
				want = append(want, n)
			case 1:
				want = append(want, s)
			case 2:
				want = append(want, b)
			default:
				want = append(want, nil)
			}
		}
		for i, w := range want {
			switch w := w.(type) {
			case int64:
				err = many.BindInt64(i+1, w)
				vals.Int64(w)
			case string:
				err = many.BindText(i+1, w)
				vals.Text(w)
			case []byte:
				err = many.BindBlob(i+1, w)
				vals.Blob(w)
			case nil:
				err = many.BindNull(i + 1)
				vals.Null()
			}
			if err != nil {
				t.Fatal(err)
			}
		}
		if err := many.Exec(); err != nil {
			t.Fatal(err)
		}
		if err := many.BindValues(vals, 0, 4); err != nil {
			t.Fatal(err)
		}
		if err := many.Exec(); err != nil {
			t.Fatal(err)
		}
		got := readBack(t, path)
		if len(got) != 8 {
			t.Fatalf("rows = %d; want 8", len(got))
		}
		for i := range 8 {
			w := want[i%4]
			if wb, ok := w.([]byte); ok && wb == nil {
				w = nil // a nil blob binds NULL, as the driver binds it
			}
			if !same(got[i], w) {
				t.Fatalf("row %d = %#v; want %#v", i, got[i], w)
			}
		}
	})
}
