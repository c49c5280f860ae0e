// Package sqlitec is an SQLite connection through the C API that
// modernc.org/sqlite/lib exposes in Go: read-only, for scans of millions
// of rows, or read-write, for the exporter's writer, which binds millions
// of values. It holds the project's only unsafe code that reaches SQLite.
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
// A read-write Conn binds text and blobs from C memory that it owns and
// reuses (SQLITE_STATIC), never from Go's, which the garbage collector may
// move: the bytes are copied once, with no allocation per value, and the
// driver's copy of every value into a fresh C allocation, freed after
// the step, is gone.
//
// docs/architecture.md says who uses it and why (the viewer's scan of a
// window's operation spans; the exporter's writer).
package sqlitec

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

// Result codes, as Error.Code returns them (extended codes: compare
// Code()&0xff with these).
const (
	Busy       = sqlite3.SQLITE_BUSY
	Locked     = sqlite3.SQLITE_LOCKED
	Full       = sqlite3.SQLITE_FULL
	ReadOnly   = sqlite3.SQLITE_READONLY
	Constraint = sqlite3.SQLITE_CONSTRAINT
	TooBig     = sqlite3.SQLITE_TOOBIG
	Mismatch   = sqlite3.SQLITE_MISMATCH
	Range      = sqlite3.SQLITE_RANGE
)

// static tells sqlite3_bind_* that the memory outlives the binding
// (SQLITE_STATIC): SQLite reads it in place, without a copy.
const static = 0

// ErrClosed is returned by every call on a closed Conn or Stmt.
var ErrClosed = errors.New("sqlite: connection closed")

// Error is a failure SQLite reported. Its text is worded as
// modernc.org/sqlite's driver words it, so that messages read the same
// through either.
type Error struct {
	code int
	msg  string
}

func (e *Error) Error() string { return e.msg }

// Code returns SQLite's extended result code; Code()&0xff is the primary
// one (Busy, Full, Constraint, …).
func (e *Error) Code() int { return e.code }

// Conn is a connection to one SQLite file. It is not safe for concurrent
// use: one goroutine at a time, handing it over through something that
// orders the two (a mutex, a channel).
type Conn struct {
	tls   *libc.TLS
	db    uintptr
	stmts map[*Stmt]struct{} // those not closed, closed with the Conn
}

// Open opens the database of uri (a "file:" URI, SQLITE_OPEN_URI)
// read-only, waiting for locks up to busyTimeout.
func Open(uri string, busyTimeout time.Duration) (*Conn, error) {
	return open(uri, sqlite3.SQLITE_OPEN_READONLY, busyTimeout)
}

// OpenWrite opens the database of uri read-write; it must exist (no
// SQLITE_OPEN_CREATE: a file is created, checked and migrated by whoever
// knows its schema). Locks are waited for up to busyTimeout, with
// SQLite's own busy handler.
func OpenWrite(uri string, busyTimeout time.Duration) (*Conn, error) {
	return open(uri, sqlite3.SQLITE_OPEN_READWRITE, busyTimeout)
}

func open(uri string, mode int32, busyTimeout time.Duration) (*Conn, error) {
	c := &Conn{tls: libc.NewTLS(), stmts: make(map[*Stmt]struct{})}
	curi, err := libc.CString(uri)
	if err != nil {
		c.tls.Close()
		return nil, err
	}
	defer libc.Xfree(c.tls, curi)
	pdb := c.tls.Alloc(int(unsafe.Sizeof(uintptr(0))))
	rc := sqlite3.Xsqlite3_open_v2(c.tls, curi, pdb, mode|sqlite3.SQLITE_OPEN_NOMUTEX|sqlite3.SQLITE_OPEN_URI, 0)
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

// err describes the result code rc of the last call on c, as the driver
// does: SQLite's text for the code, then the connection's message when it
// says more, then the code.
func (c *Conn) err(rc int32) error {
	str := libc.GoString(sqlite3.Xsqlite3_errstr(c.tls, rc))
	busy := ""
	if rc == sqlite3.SQLITE_BUSY {
		busy = " (SQLITE_BUSY)"
	}
	if c.db == 0 {
		return &Error{code: int(rc), msg: fmt.Sprintf("%s (%v)%s", str, rc, busy)}
	}
	if ext := sqlite3.Xsqlite3_extended_errcode(c.tls, c.db); ext != rc && ext&0xff != rc&0xff {
		// The connection's message is of another call.
		return &Error{code: int(rc), msg: fmt.Sprintf("%s (%v)%s", str, rc, busy)}
	}
	if msg := libc.GoString(sqlite3.Xsqlite3_errmsg(c.tls, c.db)); msg != str {
		return &Error{code: int(rc), msg: fmt.Sprintf("%s: %s (%v)%s", str, msg, rc, busy)}
	}
	return &Error{code: int(rc), msg: fmt.Sprintf("%s (%v)%s", str, rc, busy)}
}

// Exec runs statements that return no rows, such as a PRAGMA, BEGIN or
// COMMIT.
func (c *Conn) Exec(sql string) error {
	if c.db == 0 {
		return ErrClosed
	}
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

// ExecArgs runs sql, one statement, with args bound as Start binds them,
// to its end; rows it returns are not read.
func (c *Conn) ExecArgs(sql string, args ...any) error {
	return c.Query(sql, args, nil)
}

// Query runs sql, one statement, with args bound as Start binds them, and
// calls row, when not nil, on each row it returns, until row fails.
func (c *Conn) Query(sql string, args []any, row func(*Stmt) error) error {
	s, err := c.Prepare(sql)
	if err != nil {
		return err
	}
	defer s.Close()
	if err := s.Start(args...); err != nil {
		return err
	}
	for {
		more, err := s.Step()
		if err != nil || !more {
			return err
		}
		if row != nil {
			if err := row(s); err != nil {
				return err
			}
		}
	}
}

// Changes returns the rows the last INSERT, UPDATE or DELETE changed.
func (c *Conn) Changes() int64 {
	if c.db == 0 {
		return 0
	}
	return sqlite3.Xsqlite3_changes64(c.tls, c.db)
}

// LastInsertRowID returns the rowid of the last row inserted.
func (c *Conn) LastInsertRowID() int64 {
	if c.db == 0 {
		return 0
	}
	return sqlite3.Xsqlite3_last_insert_rowid(c.tls, c.db)
}

// Close closes c and every statement of it not closed yet. It may be
// called again.
func (c *Conn) Close() error {
	for s := range c.stmts {
		s.Close()
	}
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
	// mem holds the bytes of the text and blobs bound since the last
	// ClearBindings.
	mem cbuf
}

// Prepare compiles the one statement of sql.
func (c *Conn) Prepare(sql string) (*Stmt, error) {
	if c.db == 0 {
		return nil, ErrClosed
	}
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
	c.stmts[s] = struct{}{}
	return s, nil
}

// Start resets s and binds args to its parameters ?1, ?2, …: int64, int,
// string or []byte (a blob).
func (s *Stmt) Start(args ...any) error {
	if s.p == 0 {
		return ErrClosed
	}
	s.Reset()
	s.ClearBindings()
	for i, a := range args {
		var err error
		switch v := a.(type) {
		case int64:
			err = s.BindInt64(i+1, v)
		case int:
			err = s.BindInt64(i+1, int64(v))
		case []byte:
			if v == nil {
				v = []byte{} // an empty blob, as Start always bound it
			}
			err = s.BindBlob(i+1, v)
		case string:
			err = s.BindText(i+1, v)
		case nil:
			err = s.BindNull(i + 1)
		default:
			return fmt.Errorf("sqlite: cannot bind a %T", a)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// BindInt64 binds v to parameter i (from 1).
func (s *Stmt) BindInt64(i int, v int64) error {
	if s.p == 0 {
		return ErrClosed
	}
	return s.check(sqlite3.Xsqlite3_bind_int64(s.c.tls, s.p, int32(i), v))
}

// BindNull binds NULL to parameter i (from 1).
func (s *Stmt) BindNull(i int) error {
	if s.p == 0 {
		return ErrClosed
	}
	return s.check(sqlite3.Xsqlite3_bind_null(s.c.tls, s.p, int32(i)))
}

// BindText binds a copy of v, as text, to parameter i (from 1): v may
// change once BindText returns. The copy lives in memory of s until
// ClearBindings.
func (s *Stmt) BindText(i int, v string) error {
	if s.p == 0 {
		return ErrClosed
	}
	p, err := putKeep(&s.mem, s.c.tls, v)
	if err != nil {
		return err
	}
	return s.check(sqlite3.Xsqlite3_bind_text(s.c.tls, s.p, int32(i), p, int32(len(v)), static))
}

// BindBlob binds a copy of v, as a blob, to parameter i (from 1); nil is
// NULL, as the driver binds it, and an empty non-nil v an empty blob.
func (s *Stmt) BindBlob(i int, v []byte) error {
	if s.p == 0 {
		return ErrClosed
	}
	if v == nil {
		return s.BindNull(i)
	}
	p, err := putKeep(&s.mem, s.c.tls, v)
	if err != nil {
		return err
	}
	return s.check(sqlite3.Xsqlite3_bind_blob(s.c.tls, s.p, int32(i), p, int32(len(v)), static))
}

// check turns a bind's result code into an error.
func (s *Stmt) check(rc int32) error {
	if rc != sqlite3.SQLITE_OK {
		return s.c.err(rc)
	}
	return nil
}

// BindValues binds n values of v, from its value from, to parameters 1
// to n. The bytes are bound where v holds them: v must not change until
// s is reset and its bindings cleared.
func (s *Stmt) BindValues(v *Values, from, n int) error {
	if s.p == 0 {
		return ErrClosed
	}
	if v.err != nil {
		return v.err
	}
	if from < 0 || n < 0 || from+n > len(v.vals) {
		return fmt.Errorf("sqlite: values %d to %d of %d", from, from+n, len(v.vals))
	}
	t := s.c.tls
	base := v.mem.p
	for k, x := range v.vals[from : from+n] {
		var rc int32
		switch x.kind {
		case Integer:
			rc = sqlite3.Xsqlite3_bind_int64(t, s.p, int32(k+1), x.n)
		case Text:
			rc = sqlite3.Xsqlite3_bind_text(t, s.p, int32(k+1), base+uintptr(x.n), x.len, static)
		case Blob:
			rc = sqlite3.Xsqlite3_bind_blob(t, s.p, int32(k+1), base+uintptr(x.n), x.len, static)
		default:
			rc = sqlite3.Xsqlite3_bind_null(t, s.p, int32(k+1))
		}
		if rc != sqlite3.SQLITE_OK {
			return s.c.err(rc)
		}
	}
	return nil
}

// Step runs s to its next row: true when there is one, false when s is
// done or failed.
func (s *Stmt) Step() (bool, error) {
	if s.p == 0 {
		return false, ErrClosed
	}
	switch rc := sqlite3.Xsqlite3_step(s.c.tls, s.p); rc {
	case sqlite3.SQLITE_ROW:
		return true, nil
	case sqlite3.SQLITE_DONE:
		return false, nil
	default:
		return false, s.c.err(rc)
	}
}

// Next steps to the next row of a query: Step, by the name scans use.
func (s *Stmt) Next() (bool, error) { return s.Step() }

// Exec steps s, a statement that returns no rows or whose rows are not
// wanted, to its end, then resets it and clears its bindings.
func (s *Stmt) Exec() error {
	for {
		row, err := s.Step()
		if err != nil || !row {
			s.Reset()
			s.ClearBindings()
			return err
		}
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
// open, and with it the WAL from starting over. The bindings stay.
func (s *Stmt) Reset() {
	if s.p != 0 {
		sqlite3.Xsqlite3_reset(s.c.tls, s.p)
	}
}

// ClearBindings sets every parameter of s back to NULL and lets the
// memory of the text and blobs bound to it be reused.
func (s *Stmt) ClearBindings() {
	if s.p != 0 {
		sqlite3.Xsqlite3_clear_bindings(s.c.tls, s.p)
		s.mem.reset(s.c.tls)
	}
}

// Close finalizes s.
func (s *Stmt) Close() {
	if s.p != 0 {
		sqlite3.Xsqlite3_finalize(s.c.tls, s.p)
		s.p = 0
		s.mem.free(s.c.tls)
		delete(s.c.stmts, s)
	}
}

// Values holds the values of rows to bind (Stmt.BindValues), typed, with
// the bytes of their text and blobs copied into C memory that it owns and
// reuses: gathering rows costs no allocation once it has grown to its
// size, and binding them copies nothing more.
type Values struct {
	c    *Conn
	vals []value
	mem  cbuf
	err  error // of an add that failed, returned by BindValues
}

// value is a value of Values: an integer n, or len bytes at offset n of
// its memory.
type value struct {
	kind int32
	len  int32
	n    int64
}

// NewValues returns an empty Values for statements of c. Free gives its
// memory back.
func (c *Conn) NewValues() *Values { return &Values{c: c} }

// Len returns how many values v holds.
func (v *Values) Len() int { return len(v.vals) }

// Int64 adds an integer.
func (v *Values) Int64(n int64) { v.vals = append(v.vals, value{kind: Integer, n: n}) }

// Null adds a NULL.
func (v *Values) Null() { v.vals = append(v.vals, value{kind: Null}) }

// Text adds a copy of s as text. An add that fails (no memory, a closed
// Conn) adds a NULL and makes BindValues fail until Reset.
func (v *Values) Text(s string) { addBytes(v, Text, s) }

// Blob adds a copy of b as a blob; nil is NULL.
func (v *Values) Blob(b []byte) {
	if b == nil {
		v.Null()
		return
	}
	addBytes(v, Blob, b)
}

func addBytes[T string | []byte](v *Values, kind int32, b T) {
	if v.c.tls == nil {
		v.fail(ErrClosed)
		return
	}
	at, err := putGrow(&v.mem, v.c.tls, b)
	if err != nil {
		v.fail(err)
		return
	}
	v.vals = append(v.vals, value{kind: kind, len: int32(len(b)), n: int64(at)})
}

func (v *Values) fail(err error) {
	if v.err == nil {
		v.err = err
	}
	v.Null()
}

// Reset empties v, keeping its memory for the next rows.
func (v *Values) Reset() {
	v.vals = v.vals[:0]
	v.mem.n = 0
	v.err = nil
}

// Free gives v's C memory back; v is empty, and may be used again.
func (v *Values) Free() {
	v.vals = v.vals[:0]
	v.err = nil
	if v.c.tls != nil {
		v.mem.free(v.c.tls)
	}
	v.mem = cbuf{}
}

// cbuf is a buffer in C memory: n bytes used of size at p. Buffers it
// outgrew and whose bytes are still bound are kept in old until reset.
type cbuf struct {
	p    uintptr
	n    int
	size int
	old  []uintptr
}

// minBuf is the smallest buffer a cbuf allocates: an empty text or blob
// still needs an address (a NULL pointer binds NULL).
const minBuf = 4096

// alloc makes room for need more bytes. With keep set, the full buffer is
// kept, unchanged, for the values bound into it and a new one started;
// else its bytes are moved to the new one.
func (b *cbuf) alloc(t *libc.TLS, need int, keep bool) error {
	if b.p != 0 && b.n+need <= b.size {
		return nil
	}
	size := max(minBuf, 2*b.size, b.n+need)
	if keep {
		size = max(minBuf, 2*b.size, need)
	}
	p := libc.Xmalloc(t, libc.Tsize_t(size))
	if p == 0 {
		return errors.New("sqlite: out of memory for bound values")
	}
	if b.p != 0 {
		if keep {
			b.old = append(b.old, b.p)
			b.n = 0
		} else {
			copy(unsafe.Slice((*byte)(cmem(p)), b.n), unsafe.Slice((*byte)(cmem(b.p)), b.n))
			libc.Xfree(t, b.p)
		}
	}
	b.p, b.size = p, size
	return nil
}

// putKeep copies v into b and returns its address, which stays valid
// until b is reset.
func putKeep[T string | []byte](b *cbuf, t *libc.TLS, v T) (uintptr, error) {
	if err := b.alloc(t, len(v), true); err != nil {
		return 0, err
	}
	at := b.p + uintptr(b.n)
	copy(unsafe.Slice((*byte)(cmem(at)), len(v)), v)
	b.n += len(v)
	return at, nil
}

// putGrow copies v into b and returns its offset: b's address may change
// as it grows.
func putGrow[T string | []byte](b *cbuf, t *libc.TLS, v T) (int, error) {
	if err := b.alloc(t, len(v), false); err != nil {
		return 0, err
	}
	at := b.n
	copy(unsafe.Slice((*byte)(cmem(b.p+uintptr(at))), len(v)), v)
	b.n += len(v)
	return at, nil
}

// reset frees the buffers outgrown and starts b over.
func (b *cbuf) reset(t *libc.TLS) {
	for _, p := range b.old {
		libc.Xfree(t, p)
	}
	b.old = b.old[:0]
	b.n = 0
}

// free gives all of b's memory back.
func (b *cbuf) free(t *libc.TLS) {
	b.reset(t)
	if b.p != 0 {
		libc.Xfree(t, b.p)
	}
	*b = cbuf{}
}
