package opstore

import (
	"context"
	"database/sql"
	"fmt"
	"sync"

	"go.opentelemetry.io/otel/trace"

	"github.com/lonelytrace/lonelytrace/schema"
)

// maxConnsPerFile bounds the read connections open on one file, of each
// kind (database/sql and scan connections): a few let a summary's queries
// run in parallel, and bound what a burst of requests can open.
const maxConnsPerFile = 4

// Store is a set of open trace files, read-only, in the order they were
// given.
type Store struct {
	files []*File
}

// File is one open trace file.
type File struct {
	path string
	db   *sql.DB
	// scans are the connections of the scan of operation spans (scans.go).
	scans *scanPool
	// mu guards reader, which is not safe for concurrent use.
	mu     sync.Mutex
	reader *schema.Reader
	// ops keeps the operation spans of the batches of recent windows.
	ops opCache
}

// Open opens the trace files at paths read-only, each path once, and
// shares the operation cache's budget (maxCachedBytes) among them. A
// file that cannot be opened is an error naming it, and nothing stays
// open.
func Open(ctx context.Context, paths ...string) (*Store, error) {
	s := &Store{}
	seen := make(map[string]bool)
	for _, p := range paths {
		if seen[p] {
			continue
		}
		seen[p] = true
		db, err := openFile(ctx, p)
		if err != nil {
			s.Close()
			return nil, err
		}
		s.files = append(s.files, &File{path: p, db: db, scans: newScanPool(p), reader: schema.NewReader(db)})
	}
	for _, f := range s.files {
		f.ops.budget = maxCachedBytes / max(len(s.files), 1)
	}
	return s, nil
}

// openFile opens path read-only: schema.OpenRead checks that it is a
// trace file of this version.
func openFile(ctx context.Context, path string) (*sql.DB, error) {
	db, err := schema.OpenRead(ctx, path)
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(maxConnsPerFile)
	db.SetMaxIdleConns(maxConnsPerFile)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	return db, nil
}

// Files returns the files, in order. The slice is the store's own: the
// caller does not change it.
func (s *Store) Files() []*File { return s.files }

// Close closes the files and returns the first error. It is safe to call
// more than once.
func (s *Store) Close() error {
	var err error
	for _, f := range s.files {
		f.scans.close()
		if e := f.db.Close(); e != nil && err == nil {
			err = fmt.Errorf("close %s: %w", f.path, e)
		}
	}
	return err
}

// Path returns the path f was opened by.
func (f *File) Path() string { return f.path }

// Trace reads the spans of trace id in f.
func (f *File) Trace(ctx context.Context, id trace.TraceID) ([]schema.Span, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	spans, err := f.reader.Trace(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("read trace %s from %s: %w", id, f.path, err)
	}
	return spans, nil
}
