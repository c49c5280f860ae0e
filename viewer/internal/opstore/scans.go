package opstore

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/lonelytrace/lonelytrace/internal/sqlitec"
	"github.com/lonelytrace/lonelytrace/schema"
)

// The scan of a window's operation spans (readBatches) reads millions of
// rows, and reads them through scan connections (internal/sqlitec)
// rather than database/sql: half the CPU for the same rows. Every other
// query of the viewer, a few rows each, goes through database/sql.

// scanMmapSize is how much of a trace file a scan's connection maps
// while it reads a range of batches (SQLite's most). Reading through the
// map spares a read(2) and a copy of each page, about a tenth of the
// scan's time. Every page of a map that a read touches counts in the
// process's resident set, once per connection that maps it, for as long
// as the map lasts: a connection that kept its map scanned a 1.3 GB file
// into 1.6 GB resident. So the map lasts one read task, and every other
// query reads through SQLite's page cache of a few megabytes per
// connection.
const scanMmapSize = 0x7fff0000

// scanPool keeps the scan connections of one file: at most
// maxConnsPerFile open, those not in use kept for the next read.
type scanPool struct {
	path   string
	slots  chan struct{}
	mu     sync.Mutex
	idle   []*scanConn
	closed bool
}

func newScanPool(path string) *scanPool {
	return &scanPool{path: path, slots: make(chan struct{}, maxConnsPerFile)}
}

// scanConn is a scan connection and its statements, prepared once.
type scanConn struct {
	*sqlitec.Conn
	stmts map[string]*sqlitec.Stmt
}

// stmt returns the statement of query, prepared on c once.
func (c *scanConn) stmt(query string) (*sqlitec.Stmt, error) {
	if s, ok := c.stmts[query]; ok {
		return s, nil
	}
	s, err := c.Prepare(query)
	if err != nil {
		return nil, err
	}
	c.stmts[query] = s
	return s, nil
}

func (c *scanConn) close() {
	for _, s := range c.stmts {
		s.Close()
	}
	c.Conn.Close()
}

// read runs fn on a connection of p in one read transaction, with the
// file mapped (scanMmapSize), and waits for a connection while
// maxConnsPerFile are in use. A connection on which anything failed is
// closed, not kept.
func (p *scanPool) read(ctx context.Context, fn func(c *scanConn) error) error {
	select {
	case p.slots <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-p.slots }()
	c, err := p.get()
	if err != nil {
		return err
	}
	err = c.Exec(fmt.Sprintf("PRAGMA mmap_size = %d", scanMmapSize))
	if err == nil {
		if err = c.Exec("BEGIN"); err == nil {
			err = fn(c)
			for _, s := range c.stmts {
				s.Reset()
			}
			err = errors.Join(err, c.Exec("COMMIT"))
		}
		err = errors.Join(err, c.Exec("PRAGMA mmap_size = 0"))
	}
	p.put(c, err == nil)
	return err
}

// get returns an idle connection, or opens one.
func (p *scanPool) get() (*scanConn, error) {
	p.mu.Lock()
	if n := len(p.idle); n > 0 {
		c := p.idle[n-1]
		p.idle = p.idle[:n-1]
		p.mu.Unlock()
		return c, nil
	}
	p.mu.Unlock()
	conn, err := sqlitec.Open(schema.ReadOnlyURI(p.path), schema.DefaultBusyTimeout)
	if err != nil {
		return nil, err
	}
	return &scanConn{Conn: conn, stmts: make(map[string]*sqlitec.Stmt)}, nil
}

// put keeps c for the next read, or closes it when it is not to be kept.
func (p *scanPool) put(c *scanConn, keep bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !keep || p.closed {
		c.close()
		return
	}
	p.idle = append(p.idle, c)
}

// close closes the idle connections; those in use are closed when
// their read ends.
func (p *scanPool) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.idle {
		c.close()
	}
	p.idle, p.closed = nil, true
}
