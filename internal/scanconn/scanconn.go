// Package scanconn is a read-only SQLite connection for scans of millions
// of rows, through the C API that modernc.org/sqlite/lib exposes in Go.
//
// database/sql and modernc.org/sqlite's driver cost a scan twice what
// SQLite itself does: the driver opens every connection in SQLite's
// serialized mode, so each sqlite3_column_* call takes and gives back the
// connection's mutex, and asks each column's type before its value; and
// database/sql boxes every value in an interface. A Conn is opened
// SQLITE_OPEN_NOMUTEX (SQLite's multi-thread mode: one goroutine at a
// time) and reads the columns it is asked for, typed. The same SQLite
// library serves both, so its file locks and WAL index are shared with
// the connections of database/sql in the same process.
//
// docs/architecture.md says who uses it and why (the viewer's scan of a
// window's operation spans).
package scanconn

import (
	"errors"
	"fmt"
	"time"
	"unsafe"

	"modernc.org/libc"
	sqlite3 "modernc.org/sqlite/lib"
)

// cmem is the memory at p, an address in SQLite's heap (libc's, outside
// Go's: it never moves).
func cmem(p uintptr) unsafe.Pointer { return unsafe.Add(nil, p) }

// Column types, as Stmt.Type returns them.
const (
	Integer = sqlite3.SQLITE_INTEGER
	Float   = sqlite3.SQLITE_FLOAT
	Text    = sqlite3.SQLITE_TEXT
	Blob    = sqlite3.SQLITE_BLOB
	Null    = sqlite3.SQLITE_NULL
)

// transient tells sqlite3_bind_text to copy the text (SQLITE_TRANSIENT).
const transient = ^uintptr(0)

// Conn is a read-only connection to one SQLite file. It is not safe for
// concurrent use: one goroutine at a time, handing it over through
// something that orders the two (a mutex, a channel).
type Conn struct {
	tls *libc.TLS
	db  uintptr
}

// Open opens the database of uri (a "file:" URI, SQLITE_OPEN_URI)
// read-only, waiting for locks up to busyTimeout.
func Open(uri string, busyTimeout time.Duration) (*Conn, error) {
	c := &Conn{tls: libc.NewTLS()}
	curi, err := libc.CString(uri)
	if err != nil {
		c.tls.Close()
		return nil, err
	}
	defer libc.Xfree(c.tls, curi)
	pdb := c.tls.Alloc(int(unsafe.Sizeof(uintptr(0))))
	rc := sqlite3.Xsqlite3_open_v2(c.tls, curi, pdb, sqlite3.SQLITE_OPEN_READONLY|sqlite3.SQLITE_OPEN_NOMUTEX|sqlite3.SQLITE_OPEN_URI, 0)
	c.db = *(*uintptr)(cmem(pdb))
	c.tls.Free(int(unsafe.Sizeof(uintptr(0))))
	if rc != sqlite3.SQLITE_OK {
		err := c.err(rc)
		c.Close()
		return nil, err
	}
	sqlite3.Xsqlite3_extended_result_codes(c.tls, c.db, 1)
	if rc := sqlite3.Xsqlite3_busy_timeout(c.tls, c.db, int32(busyTimeout.Milliseconds())); rc != sqlite3.SQLITE_OK {
		err := c.err(rc)
		c.Close()
		return nil, err
	}
	return c, nil
}

// err describes the result code rc of the last call on c.
func (c *Conn) err(rc int32) error {
	msg := libc.GoString(sqlite3.Xsqlite3_errstr(c.tls, rc))
	if c.db != 0 && sqlite3.Xsqlite3_extended_errcode(c.tls, c.db) == rc {
		msg = libc.GoString(sqlite3.Xsqlite3_errmsg(c.tls, c.db))
	}
	return fmt.Errorf("sqlite: %s (%d)", msg, rc)
}

// Exec runs statements that return no rows, such as a PRAGMA, BEGIN or
// COMMIT.
func (c *Conn) Exec(sql string) error {
	csql, err := libc.CString(sql)
	if err != nil {
		return err
	}
	defer libc.Xfree(c.tls, csql)
	if rc := sqlite3.Xsqlite3_exec(c.tls, c.db, csql, 0, 0, 0); rc != sqlite3.SQLITE_OK {
		return c.err(rc)
	}
	return nil
}

// Close closes c and any statement of it not closed yet.
func (c *Conn) Close() error {
	var err error
	if c.db != 0 {
		if rc := sqlite3.Xsqlite3_close_v2(c.tls, c.db); rc != sqlite3.SQLITE_OK {
			err = c.err(rc)
		}
		c.db = 0
	}
	if c.tls != nil {
		c.tls.Close()
		c.tls = nil
	}
	return err
}

// Stmt is a prepared statement of a Conn.
type Stmt struct {
	c *Conn
	p uintptr
}

// Prepare compiles the one statement of sql.
func (c *Conn) Prepare(sql string) (*Stmt, error) {
	csql, err := libc.CString(sql)
	if err != nil {
		return nil, err
	}
	defer libc.Xfree(c.tls, csql)
	pst := c.tls.Alloc(int(unsafe.Sizeof(uintptr(0))))
	defer c.tls.Free(int(unsafe.Sizeof(uintptr(0))))
	if rc := sqlite3.Xsqlite3_prepare_v2(c.tls, c.db, csql, -1, pst, 0); rc != sqlite3.SQLITE_OK {
		return nil, c.err(rc)
	}
	s := &Stmt{c: c, p: *(*uintptr)(cmem(pst))}
	if s.p == 0 {
		return nil, errors.New("sqlite: no statement in " + sql)
	}
	return s, nil
}

// Start resets s and binds args to its parameters ?1, ?2, …: int64, int,
// string or []byte (a blob).
func (s *Stmt) Start(args ...any) error {
	t := s.c.tls
	sqlite3.Xsqlite3_reset(t, s.p)
	sqlite3.Xsqlite3_clear_bindings(t, s.p)
	for i, a := range args {
		var rc int32
		switch v := a.(type) {
		case int64:
			rc = sqlite3.Xsqlite3_bind_int64(t, s.p, int32(i+1), v)
		case int:
			rc = sqlite3.Xsqlite3_bind_int64(t, s.p, int32(i+1), int64(v))
		case []byte:
			if len(v) == 0 {
				rc = sqlite3.Xsqlite3_bind_zeroblob(t, s.p, int32(i+1), 0)
				break
			}
			// Through SQLite's heap, as a string goes: Go's memory is
			// not handed to the C API.
			p := libc.Xmalloc(t, libc.Tsize_t(len(v)))
			if p == 0 {
				return errors.New("sqlite: out of memory binding a blob")
			}
			copy(unsafe.Slice((*byte)(cmem(p)), len(v)), v)
			rc = sqlite3.Xsqlite3_bind_blob(t, s.p, int32(i+1), p, int32(len(v)), transient)
			libc.Xfree(t, p)
		case string:
			cs, err := libc.CString(v)
			if err != nil {
				return err
			}
			rc = sqlite3.Xsqlite3_bind_text(t, s.p, int32(i+1), cs, int32(len(v)), transient)
			libc.Xfree(t, cs)
		default:
			return fmt.Errorf("sqlite: cannot bind a %T", a)
		}
		if rc != sqlite3.SQLITE_OK {
			return s.c.err(rc)
		}
	}
	return nil
}

// Next steps to the next row: false when there is none or it failed.
func (s *Stmt) Next() (bool, error) {
	switch rc := sqlite3.Xsqlite3_step(s.c.tls, s.p); rc {
	case sqlite3.SQLITE_ROW:
		return true, nil
	case sqlite3.SQLITE_DONE:
		return false, nil
	default:
		return false, s.c.err(rc)
	}
}

// Type returns the type of the row's column i (from 0).
func (s *Stmt) Type(i int) int {
	return int(sqlite3.Xsqlite3_column_type(s.c.tls, s.p, int32(i)))
}

// Int64 returns the row's column i as an integer.
func (s *Stmt) Int64(i int) int64 {
	return sqlite3.Xsqlite3_column_int64(s.c.tls, s.p, int32(i))
}

// Float returns the row's column i as a float.
func (s *Stmt) Float(i int) float64 {
	return sqlite3.Xsqlite3_column_double(s.c.tls, s.p, int32(i))
}

// Bytes returns the row's column i as text or a blob, in SQLite's memory:
// valid until the next call on s. Copy what must outlive it.
func (s *Stmt) Bytes(i int) []byte {
	// sqlite3_column_blob gives the bytes of a text (as stored, UTF-8)
	// or a blob alike: no call to learn the column's type first.
	t := s.c.tls
	p := sqlite3.Xsqlite3_column_blob(t, s.p, int32(i))
	n := sqlite3.Xsqlite3_column_bytes(t, s.p, int32(i))
	if p == 0 || n == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(cmem(p)), n)
}

// Reset ends the statement's run, so that it holds no snapshot of the
// file: a statement left mid-run keeps the connection's read transaction
// open, and with it the WAL from starting over.
func (s *Stmt) Reset() {
	sqlite3.Xsqlite3_reset(s.c.tls, s.p)
}

// Close finalizes s.
func (s *Stmt) Close() {
	if s.p != 0 {
		sqlite3.Xsqlite3_finalize(s.c.tls, s.p)
		s.p = 0
	}
}
