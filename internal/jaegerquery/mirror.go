package jaegerquery

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/lonelytrace/lonelytrace/exporter"
	"github.com/lonelytrace/lonelytrace/internal/otlp"
)

// Mirror keeps a lonelytrace file filled from a Jaeger for as long as a
// viewer reads it: windows fetched again and again (Fetch) and single
// traces (Trace) go through one writer and one duplicate check, so a
// span Jaeger sends twice is stored once. Its methods are safe for
// concurrent use; they run one at a time.
type Mirror struct {
	addr string
	path string
	opts []Option
	c    *Client
	exp  *exporter.Exporter
	im   *otlp.Importer

	mu     sync.Mutex
	closed bool
}

// OpenMirror opens the Jaeger query service at addr and the lonelytrace
// file at path (created if missing) for a Mirror. The file keeps spans
// for maxAge by their start, so a window that moves on drops what left
// it; 0 keeps them for ever. opts apply to every Fetch.
func OpenMirror(ctx context.Context, addr, path string, maxAge time.Duration, opts ...Option) (*Mirror, error) {
	c, err := Dial(addr, opts...)
	if err != nil {
		return nil, err
	}
	exp, err := exporter.New(path, exporter.WithMaxAge(maxAge))
	if err != nil {
		c.Close()
		return nil, err
	}
	im, err := otlp.NewImporter(ctx, exp, path)
	if err != nil {
		exp.Shutdown(context.Background())
		c.Close()
		return nil, err
	}
	return &Mirror{addr: addr, path: path, opts: opts, c: c, exp: exp, im: im}, nil
}

// Addr returns the address of the Jaeger query service.
func (m *Mirror) Addr() string { return m.addr }

// Path returns the file's path.
func (m *Mirror) Path() string { return m.path }

// errClosed is returned by the methods of a closed Mirror.
var errClosed = errors.New("jaeger mirror closed")

// Fetch fetches [since, until) as the package's Fetch does, with
// extra options after those of OpenMirror, and returns once what it
// stored is in the file, for readers to see.
func (m *Mirror) Fetch(ctx context.Context, since, until time.Time, extra ...Option) (Result, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return Result{}, errClosed
	}
	res, err := Fetch(ctx, m.c, m.im, since, until, append(m.opts[:len(m.opts):len(m.opts)], extra...)...)
	if e := m.flush(ctx); e != nil && err == nil {
		err = e
	}
	return res, err
}

// Trace asks Jaeger for the trace with the hex id traceID, as stored
// (raw), stores the spans the file does not hold yet, and returns once
// they are in the file. A trace Jaeger does not hold is an error
// wrapping ErrNotFound.
func (m *Mirror) Trace(ctx context.Context, traceID string) (stored int, err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return 0, errClosed
	}
	err = m.c.GetTrace(ctx, traceID, true, func(td ptrace.Traces) error {
		s, _, _, _, err := m.im.Import(ctx, td)
		stored += s
		if err != nil {
			return fmt.Errorf("jaeger trace %s: store in %s: %w", traceID, m.path, err)
		}
		return nil
	})
	if e := m.flush(ctx); e != nil && err == nil {
		err = e
	}
	return stored, err
}

// flush waits until every span handed to the writer is committed.
func (m *Mirror) flush(ctx context.Context) error {
	if err := m.exp.ForceFlush(ctx); err != nil {
		return fmt.Errorf("jaeger mirror: write %s: %w", m.path, err)
	}
	if s := m.exp.Stats(); s.Failed > 0 {
		return fmt.Errorf("jaeger mirror: %d spans failed to be written to %s (last error: %v)", s.Failed, m.path, s.LastError)
	}
	return nil
}

// Close closes the file's writer, after its last write, and the
// connection to Jaeger. It is safe to call more than once.
func (m *Mirror) Close(ctx context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil
	}
	m.closed = true
	err := m.im.Close()
	if e := m.exp.Shutdown(ctx); e != nil && err == nil {
		err = fmt.Errorf("jaeger mirror: close %s: %w", m.path, e)
	}
	if e := m.c.Close(); e != nil && err == nil {
		err = e
	}
	return err
}
