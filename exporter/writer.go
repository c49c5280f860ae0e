package exporter

import (
	"database/sql"
	"errors"
	"fmt"
	"math"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/sdk/instrumentation"
	"go.opentelemetry.io/otel/sdk/resource"
	"go.opentelemetry.io/otel/trace"

	"github.com/lonelytrace/lonelytrace/internal/sqlitec"
	"github.com/lonelytrace/lonelytrace/schema"
)

// writer owns the file's only connection. It runs on one goroutine, so
// nothing in it is locked. Its state falls in groups, each a type that is
// set or reset whole, so that a reset cannot forget a field: the file it
// has open (fileState, which open sets, with the id caches a failed
// transaction drops, idCaches), the transaction being written (txnState,
// which every transaction starts from zero), and what outlasts both (the
// links to the Exporter, writerCounts, maintenance's state, the run
// loop's jobs and scratch space).
type writer struct {
	path string
	cfg  config
	// jobs is the Exporter's queue and room its bound in bytes, which the
	// writer gives back as it adds jobs' rows to a transaction (queue.go);
	// stats its counters, which the writer updates; enc the encoder it
	// publishes key ids to and gives encoded rows back to (encode.go).
	jobs  <-chan job
	room  *room
	stats *counters
	enc   *encoder

	fileState
	txnState
	writerCounts
	// maint is the state of maintenance (maintain.go).
	maint maintenance

	// The run loop's jobs. A commit goes on with the jobs queued
	// meanwhile (extend): extra are those its transaction took. held is a
	// job it took but left for the next transaction (a control job);
	// closing is set when it found the queue closed.
	extra   []job
	held    *job
	closing bool
	// timer times the waits for more jobs (gather, extend).
	timer *time.Timer

	// Scratch space, kept for its memory. fields are those of a span the
	// writer encodes itself, and arena holds the bytes of the text they
	// point to; keyIDs is w.keyID as a schema.KeyIDFunc, made once rather
	// than a closure per span, and keyErr its failure. refs are the
	// traces.id of a job's spans, in order, and pending and newTraces
	// resolveTraces' own: the job's new traces and their ids. retryJobs
	// and outcomes are settle's: the jobs of a failed transaction and
	// what became of each.
	fields    spanFields
	arena     arena
	keyIDs    schema.KeyIDFunc
	keyErr    error
	refs      []int64
	pending   map[trace.TraceID]int64
	newTraces []trace.TraceID
	retryJobs []job
	outcomes  []error
}

// fileState is the writer's state of the file it has open: its
// connection, its statements, its checkpointer and the ids of its rows.
// open sets it whole; nothing of it carries over to another file.
type fileState struct {
	// conn is the file's connection, through SQLite's C API.
	conn *sqlitec.Conn
	// ckpt copies the WAL of the open file into it, or is nil
	// (checkpoint.go).
	ckpt *checkpointer

	// inserts has a span statement for each combination of column groups.
	inserts [groupAll + 1]spanInsert
	// traceInserts add new traces, traceInserts[i] 1<<i of them;
	// traceKnown finds those already in a generation (traces.go).
	traceInserts                   [traceInsertSizes]*sqlitec.Stmt
	traceKnown                     *sqlitec.Stmt
	keyInsert, keySelect           *sqlitec.Stmt
	resourceSelect, resourceInsert *sqlitec.Stmt
	scopeSelect, scopeInsert       *sqlitec.Stmt
	addMeta, lastIDs, addBatch     *sqlitec.Stmt
	// pageCount, freeCount and pageBytes read the file's pages, free
	// pages and page size, which maintenance checks after every
	// transaction (retention.go). Each is a PRAGMA of its own rather than
	// one SELECT of the pragmas' table-valued functions, which prepare
	// their PRAGMA again every time they run: three prepares cost more
	// than the rest of a one-span transaction's statements together.
	pageCount, freeCount, pageBytes *sqlitec.Stmt
	// firstSpan reads the first span id (beginUse), markUsed marks the
	// rows of each table the transaction used (reclaim.go).
	firstSpan *sqlitec.Stmt
	markUsed  [3]*sqlitec.Stmt

	idCaches
	// lastTxn is the spans of the last transaction (reclaim.go).
	lastTxn int64
}

// idCaches are the ids of the file's rows the writer remembers. They may
// hold ids of a transaction that is later rolled back, so a failed
// transaction drops them all (resetCaches).
type idCaches struct {
	traces, oldTraces map[trace.TraceID]int64
	keys              map[string]int64
	resources         map[*resource.Resource]int64
	scopes            map[instrumentation.Scope]int64
	// keyMarked, resourceMarked and scopeMarked are the last_span the
	// writer gave rows (committed, or in the transaction) (reclaim.go).
	keyMarked, resourceMarked, scopeMarked map[int64]int64
	// keyEpoch is the epoch of the ids in keys; keysChanged is set when
	// keys has ids the encoders have not been given (encode.go explains
	// the scheme).
	keyEpoch    uint64
	keysChanged bool
}

// newIDCaches returns empty caches, of no key epoch yet (forgetKeys
// starts one).
func newIDCaches() idCaches {
	return idCaches{
		traces:         make(map[trace.TraceID]int64),
		keys:           make(map[string]int64),
		resources:      make(map[*resource.Resource]int64),
		scopes:         make(map[instrumentation.Scope]int64),
		keyMarked:      make(map[int64]int64),
		resourceMarked: make(map[int64]int64),
		scopeMarked:    make(map[int64]int64),
	}
}

// txnState is the state of the transaction being written. Every
// transaction starts from zero (reset).
type txnState struct {
	// txnSpans and txnBytes count its spans and queue bytes, added its
	// rows; txnDropped, txnFailed and txnBlocked are the counts it
	// recorded in the meta.
	txnSpans, txnBytes                int64
	added                             int64
	txnDropped, txnFailed, txnBlocked int64
	// traceGen is the traces.gen of the traces the transaction adds, and
	// lastTrace the highest traces.id: holding the write lock, the writer
	// knows the ids SQLite gives the traces it adds.
	traceGen, lastTrace int64
	// minStart and maxStart bound the start times of its rows, for its
	// batches row.
	minStart, maxStart int64
	// keyUse, resourceUse and scopeUse are the ids of the rows its spans
	// refer to, lastResource and lastScope the last ids added to them;
	// markAs is what it gives rows it adds, markBase the span id before
	// it (reclaim.go).
	keyUse, resourceUse, scopeUse map[int64]struct{}
	lastResource, lastScope       int64
	markBase, markAs              int64
	// used is the bytes of the file's pages in use at its end, read
	// before its COMMIT when the size limit needs it (usedKnown is set
	// then): the commit changes no page count, and a read inside the
	// transaction takes no read lock of its own (overSize).
	used      int64
	usedKnown bool
}

// reset starts a transaction: every field zero, but for the bounds of its
// starts, which start empty, and the use sets, which keep their memory.
func (t *txnState) reset() {
	use := [3]map[int64]struct{}{t.keyUse, t.resourceUse, t.scopeUse}
	for i, m := range use {
		if m == nil {
			use[i] = make(map[int64]struct{})
		}
		clear(use[i])
	}
	*t = txnState{
		minStart: math.MaxInt64, maxStart: math.MinInt64,
		keyUse: use[0], resourceUse: use[1], scopeUse: use[2],
	}
}

// writerCounts outlast files and transactions: what the file's meta holds
// of the Exporter's counters, and the episodes the writer is in.
type writerCounts struct {
	// persistedDropped and persistedFailed are the counts of dropped and
	// failed spans recorded in the file's meta; failing is set from a
	// failed transaction's report until spans are written again.
	persistedDropped, persistedFailed int64
	failing                           bool
	// checkpointsBlocked counts the episodes of checkpoints blocked by
	// readers (boundWAL), persistedBlocked those recorded in the meta.
	checkpointsBlocked, persistedBlocked int64
	// busy is set while transactions wait for another writer's lock (an
	// episode reported once).
	busy bool
}

// newWriter returns the writer of the file db, at path, which takes its
// work from jobs.
func newWriter(db *sql.DB, path string, cfg config, jobs <-chan job, room *room, stats *counters, enc *encoder) (*writer, error) {
	w := &writer{path: path, cfg: cfg, jobs: jobs, room: room, stats: stats, enc: enc, timer: time.NewTimer(time.Hour)}
	w.conn = new(sqlitec.Conn) // closed until open succeeds
	w.timer.Stop()
	w.keyIDs = w.keyID
	if err := w.open(db); err != nil {
		return nil, err
	}
	return w, nil
}

// open makes the file now at w.path, which db has checked and
// migrated, the writer's file: it closes db and opens the writer's own
// connection through SQLite's C API, with the pragmas db's had (the file
// has one writing connection at a time), prepares the statements, starts
// with empty id caches and a new key epoch (ids of another file mean
// nothing in this one), notes which file it is, for maintenance, and
// starts its checkpointer. What the writer learnt before carries over:
// the counts, the failure episode, maintenance's clocks; drops and
// failures not yet recorded go to this file's meta with its next
// transaction. On failure the writer is left with a closed connection,
// on which every write fails cleanly.
func (w *writer) open(db *sql.DB) error {
	path := w.path
	if err := db.Close(); err != nil {
		return fmt.Errorf("open %s: %w", path, err)
	}
	conn, err := openConn(path, w.cfg.busyTimeout)
	if err != nil {
		// A Conn never opened is closed: every call on it fails with
		// sqlitec.ErrClosed.
		w.fileState = fileState{conn: new(sqlitec.Conn)}
		w.resetCaches()
		return err
	}
	w.fileState = fileState{conn: conn}
	w.resetCaches()
	stmts := []struct {
		dst **sqlitec.Stmt
		sql string
	}{
		{&w.keyInsert, "INSERT INTO attribute_keys (key, last_span) VALUES (?, ?) ON CONFLICT (key) DO NOTHING RETURNING id"},
		{&w.keySelect, "SELECT id FROM attribute_keys WHERE key = ?"},
		// A resource or scope not cached is added, or found by its unique
		// index when it is there: a conflict writes nothing and returns no
		// row. Most that are not cached are new (a process's each own).
		{&w.resourceInsert, "INSERT INTO resources (schema_url, attributes, last_span) VALUES (?, ?, ?) ON CONFLICT (attributes, schema_url) DO NOTHING RETURNING id"},
		{&w.resourceSelect, "SELECT id FROM resources WHERE attributes = ? AND schema_url = ?"},
		{&w.scopeInsert, "INSERT INTO scopes (name, version, schema_url, attributes, last_span) VALUES (?, ?, ?, ?, ?) ON CONFLICT (name, version, schema_url, attributes) DO NOTHING RETURNING id"},
		{&w.scopeSelect, "SELECT id FROM scopes WHERE name = ? AND version = ? AND schema_url = ? AND attributes = ?"},
		{&w.addMeta, "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = value + excluded.value"},
		{&w.lastIDs, "SELECT (SELECT coalesce(max(id), 0) FROM spans), (SELECT coalesce(max(id), 0) FROM traces)"},
		{&w.addBatch, "INSERT INTO batches (first_span, last_span, spans, min_start_ns, max_start_ns, written_ns) VALUES (?, ?, ?, ?, ?, ?)"},
		{&w.pageCount, "PRAGMA page_count"},
		{&w.freeCount, "PRAGMA freelist_count"},
		{&w.pageBytes, "PRAGMA page_size"},
		{&w.firstSpan, "SELECT coalesce((SELECT id FROM spans ORDER BY id LIMIT 1), ?)"},
		{&w.markUsed[0], markUsedSQL("attribute_keys")},
		{&w.markUsed[1], markUsedSQL("resources")},
		{&w.markUsed[2], markUsedSQL("scopes")},
	}
	for i, s := range stmts {
		if *s.dst, err = conn.Prepare(s.sql); err != nil {
			conn.Close()
			return fmt.Errorf("prepare statement %d on %s: %w", i, path, err)
		}
	}
	if err := w.prepareInserts(); err != nil {
		conn.Close()
		return fmt.Errorf("prepare the span inserts on %s: %w", path, err)
	}
	w.maint.reset(path)
	w.startCheckpointer()
	return nil
}

// openConn opens the writer's connection to the file at path, which
// schema.OpenWrite has checked and migrated, with the busy timeout, and
// sets it up as OpenWrite sets up its own (schema.SetWriteMode: WAL mode,
// checked, and schema.WritePragmas).
func openConn(path string, busyTimeout time.Duration) (*sqlitec.Conn, error) {
	conn, err := sqlitec.OpenWrite(schema.WriteURI(path), busyTimeout)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	err = schema.SetWriteMode(path, func(q string) (mode string, err error) {
		err = conn.Query(q, nil, func(s *sqlitec.Stmt) error {
			mode = string(s.Bytes(0))
			return nil
		})
		return mode, err
	}, conn.Exec)
	if err != nil {
		conn.Close()
		return nil, err
	}
	return conn, nil
}

// closeFile stops the checkpointer and closes the statements and the
// connection, the first error kept.
func (w *writer) closeFile() error {
	w.stopCheckpointer()
	w.freeInserts()
	return w.conn.Close()
}

// resetCaches drops the id caches, marks included (they may be of a
// transaction rolled back), and starts a new key epoch.
func (w *writer) resetCaches() {
	w.idCaches = newIDCaches()
	w.forgetKeys()
}

// run is the writer goroutine. It gathers the jobs that come for a
// moment without taking the file's write lock (gather), begins a
// transaction with them, adds every job that follows as it comes
// (extend) until the transaction is full, the commit interval has passed
// or somebody waits for the disk, commits, and repeats until the queue is
// closed; then it closes the file and returns the error of that. While no
// job comes it still maintains the file every maintainEvery, unless it is
// quiet (maintain.go).
func (w *writer) run() error {
	idle := time.NewTicker(w.cfg.maintainEvery)
	defer idle.Stop()
	group := make([]job, 0, w.cfg.queueSize)
	for {
		var j job
		var ok bool
		switch {
		case w.held != nil:
			j, ok = *w.held, true
			w.held = nil
		case w.closing:
			return w.close()
		default:
			select {
			case j, ok = <-w.jobs:
			case <-idle.C:
				if len(w.jobs) == 0 && !w.maint.quiet {
					w.commit(nil, time.Time{})
					w.maintain()
				}
				continue
			}
		}
		if !ok {
			return w.close()
		}
		// A flush marker, a control job or a job somebody waits for is
		// answered at once, with what is queued beside it; any other job
		// opens a transaction that waits for more until the commit
		// interval has passed, unless transactions fail: then each tries
		// its one job (extend), so that a disk with a little room again
		// takes a transaction that fits.
		group = append(group[:0], j)
		var until time.Time
		if j.flushed == nil && j.control == nil && j.committed == nil && !w.failing {
			until = time.Now().Add(w.cfg.commitEvery)
			group = w.gather(group, until)
			if last := group[len(group)-1]; last.flushed != nil || last.committed != nil || w.held != nil || w.closing {
				until = time.Time{} // somebody waits: commit what is gathered and queued
			}
		}
		w.commit(group, until)
		w.release(group)
		w.maintain()
	}
}

// lockGap is how long the writer gathers jobs before it takes the write
// lock for a transaction, unless it gathers half the queue's bound first
// (it is behind). Another process that writes the same file, or holds it
// still, waits for the lock in SQLite's busy handler, which tries again
// at most every 100 ms: a gap of that long between the writer's
// transactions lets it in.
const lockGap = 100 * time.Millisecond

// gather adds to group, which holds a job that opens a transaction, the
// jobs that come for lockGap (at most until until), or until they hold
// half the queue's bound in bytes (or half the WAL's, which one
// transaction must leave room in), a flush marker, a control job or a job
// somebody waits for comes, or the queue is closed. The rest of the
// commit interval, the transaction takes the jobs as they come (extend),
// giving each one's room and encoded rows back at once.
func (w *writer) gather(group []job, until time.Time) []job {
	var bytes int64
	for _, j := range group {
		bytes += j.bytes
	}
	end := time.Now().Add(lockGap)
	if until.Before(end) {
		end = until
	}
	w.timer.Reset(time.Until(end))
	defer w.timer.Stop()
	for bytes < min(w.cfg.queueBytes, w.cfg.walLimit)/2 {
		select {
		case j, ok := <-w.jobs:
			if !ok {
				w.closing = true
				return group
			}
			if j.control != nil {
				w.held = &j
				return group
			}
			group = append(group, j)
			if j.flushed != nil || j.committed != nil {
				return group
			}
			bytes += j.bytes
		case <-w.timer.C:
			return group
		}
	}
	return group
}

// done gives back the room and the encoded rows of j, whose rows are
// all added to the transaction, so that ExportSpans can queue more while
// the transaction goes on. j keeps its spans until the transaction ends:
// should it fail, they are written again (settle), encoded by the writer.
func (w *writer) done(j *job) {
	if j.enc != nil {
		// The rows added are copied into the statements' C memory: none
		// points into j's encoded rows.
		w.enc.recycle(j.enc)
		j.enc = nil
	}
	w.room.give(j.bytes)
	j.bytes = 0
}

// release gives back the room and the encoded rows of the jobs of group,
// now committed or failed, and lets their spans be collected.
func (w *writer) release(group []job) {
	for _, j := range group {
		w.room.give(j.bytes)
		w.enc.recycle(j.enc)
	}
	clear(group)
}

// commit writes the spans of group in one transaction, which goes on
// with the jobs that come until the time until (extend); should it fail,
// it settles them (settle). Then it answers the jobs that wait: the flush
// markers, and each job somebody waits for with its own outcome.
func (w *writer) commit(group []job, until time.Time) {
	w.usedKnown = false // of an earlier transaction, retention since perhaps
	for _, j := range group {
		if j.control != nil {
			if err := j.control(w.conn); err != nil {
				otel.Handle(fmt.Errorf("lonelytrace exporter: control on %s: %w", w.path, err))
			}
		}
	}
	spans := false
	for _, j := range group {
		spans = spans || len(j.spans) > 0
	}
	var err error
	if spans || w.stats.dropped.Load() != w.persistedDropped || w.stats.failed.Load() != w.persistedFailed || w.checkpointsBlocked != w.persistedBlocked {
		if err = w.transaction(group, until, true); err != nil {
			err = w.settle(group, err)
		} else {
			for _, jobs := range [][]job{group, w.extra} {
				for _, j := range jobs {
					if j.committed != nil {
						j.committed <- nil
					}
				}
			}
		}
	}
	// A flush marker is answered with the error of its transaction or,
	// while writes fail, of the last that failed: the spans before the
	// marker may have gone in a transaction of their own, which failed,
	// before it came.
	answer := err
	if answer == nil && w.failing {
		answer = w.stats.lastErr.Load().err // failing is set where lastErr is
	}
	for _, jobs := range [][]job{group, w.extra} {
		for _, j := range jobs {
			if j.flushed != nil {
				j.flushed <- answer
			}
		}
	}
	w.release(w.extra)
	w.extra = w.extra[:0]
}

// settle writes what it can of the jobs of group and w.extra, whose
// transaction failed with err, answers those that wait for their outcome,
// counts the spans it could not write as failed, and returns the first
// error (nil when everything was written in the end). A busy file
// (another writer holding the lock past the busy timeout) is waited for:
// the same jobs are tried again after the retry backoff, for as long as
// it takes, since an application's spans are never dropped for another
// writer; ExportSpans meanwhile drops what finds the queue full, and
// Shutdown and a waiting Pending give up when their context ends. A
// failure of the jobs' own rows (a constraint, say) is isolated: the jobs
// are tried again in halves, down to the one that fails, which alone is
// rejected (ErrRejected). Any other failure (a full disk, a file gone)
// fails them all, to be tried again by their clients.
//
// A rejected job's own spans are tried again in halves too, so that only
// the spans the file refuses are left out (a RejectedError says how many)
// and the rest of the job is written.
func (w *writer) settle(group []job, err error) error {
	jobs := w.retryJobs[:0]
	for _, g := range [][]job{group, w.extra} {
		for k := range g {
			if len(g[k].spans) > 0 {
				w.done(&g[k]) // the transaction is rolled back: it no longer holds them
				jobs = append(jobs, g[k])
			}
		}
	}
	out := slicesGrow(w.outcomes, len(jobs))
	if len(jobs) > 0 {
		w.retry(jobs, out, err)
	}
	var first, fault error // fault: the first that is not a rejection
	var failed int64
	wrote := false
	for i, j := range jobs {
		e := out[i]
		n := rejectedSpans(e, len(j.spans))
		failed += int64(n)
		wrote = wrote || n < len(j.spans)
		if e != nil {
			if first == nil {
				first = e
			}
			if fault == nil && !errors.Is(e, ErrRejected) {
				fault = e
			}
			if j.committed == nil && errors.Is(e, ErrRejected) {
				otel.Handle(fmt.Errorf("lonelytrace exporter: writing to %s: %w", w.path, e))
			}
		}
		if j.committed != nil {
			j.committed <- out[i]
		}
	}
	clear(jobs)
	clear(out)
	w.retryJobs, w.outcomes = jobs[:0], out[:0]
	if len(jobs) == 0 {
		first, fault = err, err // a transaction of counters alone
	}
	if first == nil {
		return nil
	}
	w.stats.failed.Add(failed)
	w.stats.lastErr.Store(&timedError{err: first, at: time.Now()})
	// Rows the file refuses say nothing of the file, which goes on as
	// before: no failure episode, no pause.
	if wrote || fault == nil {
		return first
	}
	if !w.failing {
		w.failing = true
		otel.Handle(fmt.Errorf("lonelytrace exporter: writing %d spans to %s failed (further failures are counted, not reported, until a write succeeds): %w", failed, w.path, first))
	}
	if w.cfg.retryBackoff > 0 {
		time.Sleep(w.cfg.retryBackoff)
	}
	return first
}

// retry tries jobs, whose transaction failed with err, again, as settle
// says, and sets out[i] to what kept jobs[i] out of the file, or nil.
func (w *writer) retry(jobs []job, out []error, err error) {
	for isBusy(err) {
		if !w.busy {
			w.busy = true
			otel.Handle(fmt.Errorf("lonelytrace exporter: %s is busy, another writer holds it past the busy timeout (%v); the writer tries again until it gets in: %w", w.path, w.cfg.busyTimeout, err))
		}
		if w.cfg.retryBackoff > 0 {
			time.Sleep(w.cfg.retryBackoff)
		}
		if err = w.transaction(jobs, time.Time{}, false); err == nil {
			return
		}
	}
	if !isRejection(err) {
		for i := range out {
			out[i] = err
		}
		return
	}
	if len(jobs) > 1 {
		w.halves(jobs, out)
		return
	}
	// One job: the same again with its spans, so that the file refuses
	// only the spans it cannot take.
	j := jobs[0]
	if len(j.spans) == 1 {
		out[0] = &RejectedError{Spans: 1, Err: err}
		return
	}
	h := len(j.spans) / 2
	parts := []job{{spans: j.spans[:h]}, {spans: j.spans[h:]}}
	sub := make([]error, 2)
	w.halves(parts, sub)
	n := 0
	var cause error
	for i, e := range sub {
		n += rejectedSpans(e, len(parts[i].spans))
		if re, ok := e.(*RejectedError); ok {
			e = re.Err
		}
		if cause == nil {
			cause = e
		}
	}
	if n > 0 {
		out[0] = &RejectedError{Spans: n, Err: cause}
	}
}

// halves tries each half of jobs in a transaction of its own, retrying
// the one that fails (retry), and sets out as retry does.
func (w *writer) halves(jobs []job, out []error) {
	h := len(jobs) / 2
	for _, part := range [2][2]int{{0, h}, {h, len(jobs)}} {
		p := jobs[part[0]:part[1]]
		if e := w.transaction(p, time.Time{}, false); e != nil {
			w.retry(p, out[part[0]:part[1]], e)
		}
	}
}

// rejectedSpans is how many of a job's n spans its outcome e kept out of
// the file.
func rejectedSpans(e error, n int) int {
	if re, ok := e.(*RejectedError); ok {
		return re.Spans
	}
	if e != nil {
		return n
	}
	return 0
}

// isBusy reports whether err is another writer's lock on the file.
func isBusy(err error) bool {
	var se *sqlitec.Error
	if !errors.As(err, &se) {
		return false
	}
	c := se.Code() & 0xff
	return c == sqlitec.Busy || c == sqlitec.Locked
}

// isRejection reports whether err is a failure of the rows written rather
// than of the file: a constraint, a value too large or of the wrong type,
// or an error of the writer's own rather than SQLite's.
func isRejection(err error) bool {
	var se *sqlitec.Error
	if !errors.As(err, &se) {
		return !errors.Is(err, sqlitec.ErrClosed)
	}
	switch se.Code() & 0xff {
	case sqlitec.Constraint, sqlitec.TooBig, sqlitec.Mismatch, sqlitec.Range:
		return true
	}
	return false
}

// transaction writes the spans of jobs, the batches row that maps them,
// and the counters that changed, in one transaction, which goes on with
// the jobs that come until the time until (extend) when more is set. On
// success it counts the spans written; on failure it clears the id
// caches, which may hold ids the rollback took back.
func (w *writer) transaction(jobs []job, until time.Time, more bool) error {
	w.txnState.reset()
	for _, j := range jobs {
		w.txnSpans += int64(len(j.spans))
		w.txnBytes += j.bytes
	}
	err := w.immediateTx(func() error { return w.write(jobs, until, more) })
	if err != nil {
		w.usedKnown = false // read in a transaction rolled back
		w.resetCaches()
		return err
	}
	n := w.txnSpans
	w.busy = false
	w.stats.written.Add(n)
	w.stats.txns.Add(1)
	w.publishKeys()
	w.persistedDropped, w.persistedFailed, w.persistedBlocked = w.txnDropped, w.txnFailed, w.txnBlocked
	// Only spans written prove the fault has cleared: a transaction of
	// counters alone can fit on a disk that is still full.
	if w.failing && n > 0 {
		w.failing = false
		otel.Handle(fmt.Errorf("lonelytrace exporter: writing to %s works again (%d spans failed in all)", w.path, w.stats.failed.Load()))
	}
	return nil
}

func (w *writer) write(group []job, until time.Time, more bool) error {
	// Holding the write lock, the rows we add are exactly those after the
	// last one now.
	var before int64
	if err := queryInts(w.lastIDs, &before, &w.lastTrace); err != nil {
		return fmt.Errorf("read the last span and trace ids: %w", err)
	}
	w.traceGen = (w.lastTrace + 1) >> schema.TraceGenerationShift
	if err := w.beginUse(before); err != nil {
		return err
	}
	defer w.clearRows()
	for k := range group {
		if err := w.addJob(&group[k]); err != nil {
			return err
		}
	}
	if more {
		if err := w.extend(until); err != nil {
			return err
		}
	}
	if err := w.flushRows(); err != nil {
		return err
	}
	// The counts of now: a flush marker the transaction took in extend
	// is answered once they are in the file, drops before it included.
	dropped, failed, blocked := w.stats.dropped.Load(), w.stats.failed.Load(), w.checkpointsBlocked
	w.txnDropped, w.txnFailed, w.txnBlocked = dropped, failed, blocked
	if total := w.added; total > 0 {
		first, last := before+1, before+total
		if err := execStmt(w.addBatch, first, last, total, w.minStart, w.maxStart, time.Now().UnixNano()); err != nil {
			return fmt.Errorf("record batch: %w", err)
		}
		if err := w.markRows(last); err != nil {
			return err
		}
	}
	if d := dropped - w.persistedDropped; d != 0 {
		if err := execStmt(w.addMeta, schema.MetaDroppedSpans, d); err != nil {
			return fmt.Errorf("count dropped spans: %w", err)
		}
	}
	if d := failed - w.persistedFailed; d != 0 {
		if err := execStmt(w.addMeta, schema.MetaFailedSpans, d); err != nil {
			return fmt.Errorf("count failed spans: %w", err)
		}
	}
	if d := blocked - w.persistedBlocked; d != 0 {
		if err := execStmt(w.addMeta, schema.MetaCheckpointsBlocked, d); err != nil {
			return fmt.Errorf("count blocked checkpoints: %w", err)
		}
	}
	if w.sizeChecked() {
		used, _, err := w.pages()
		if err != nil {
			return err
		}
		w.used, w.usedKnown = used, true
	}
	return nil
}

// addJob adds the spans of j to the transaction, and then is done with j.
func (w *writer) addJob(j *job) error {
	if len(j.spans) == 0 {
		return nil
	}
	if err := w.resolveTraces(j.spans); err != nil {
		return err
	}
	enc := j.enc
	if enc != nil && enc.epoch != w.keyEpoch {
		enc = nil // encoded with ids of another epoch
	}
	if enc != nil {
		for id := range enc.used {
			w.keyUse[id] = struct{}{}
		}
	}
	k := 0
	for i, s := range j.spans {
		if s.isNil() {
			continue
		}
		var f *spanFields
		if enc != nil && enc.ok[i] {
			f = &enc.rows[i]
		}
		if err := w.addSpan(s, w.refs[k], f); err != nil {
			return err
		}
		k++
	}
	w.added += int64(k)
	w.done(j)
	return nil
}

// extend goes on with the transaction, adding each job as it comes, up to
// maxTxnSpans spans and half the WAL's bound in queue bytes, until the
// time until (at once when it is zero) and then while jobs are queued.
// While transactions fail it adds nothing: the job that opened the
// transaction is tried alone, the smallest write that tells that the file
// works again, and one that fits in the little room a full disk may have
// got back (a queue's worth did not, behind a producer that keeps the
// queue full).
// A job's rows go into the transaction when it comes, and its room and
// encoded rows are given back then (done): the queue holds only what the
// writer has not reached, and a producer slower than the writer overlaps
// its work with the writer's. Under load the transaction grows as large
// as if the queue held all of it, and its commit is shared by as many
// spans. A flush marker ends it and is answered with it; a job somebody
// waits for ends the wait, the transaction taking only what is queued
// then; a control job ends it and is left for the next (held).
//
// The write lock is held while it waits: another process writing the
// same file waits for it (its busy timeout) at most the commit interval.
func (w *writer) extend(until time.Time) error {
	if w.failing {
		return nil
	}
	limit := w.cfg.walLimit / 2
	for w.txnSpans < int64(w.cfg.maxTxnSpans) && w.txnBytes < limit {
		var j job
		var ok bool
		select {
		case j, ok = <-w.jobs:
		default:
			wait := time.Until(until)
			if wait <= 0 {
				return nil
			}
			w.timer.Reset(wait)
			select {
			case j, ok = <-w.jobs:
				w.timer.Stop()
			case <-w.timer.C:
				return nil
			}
		}
		switch {
		case !ok:
			w.closing = true
			return nil
		case j.control != nil:
			w.held = &j
			return nil
		}
		w.extra = append(w.extra, j)
		if j.flushed != nil {
			return nil
		}
		if j.committed != nil {
			until = time.Time{} // somebody waits: commit with what is queued
		}
		w.txnSpans += int64(len(j.spans))
		w.txnBytes += j.bytes
		if err := w.addJob(&w.extra[len(w.extra)-1]); err != nil {
			return err
		}
	}
	return nil
}

// close checkpoints the WAL into the main file, so that the file is
// complete on its own, and closes it.
func (w *writer) close() error {
	var err error
	// A last transaction persists drops counted since the last commit.
	w.commit(nil, time.Time{})
	// The last checkpoint, which moves the whole WAL into the file, must
	// not meet one of the checkpointer's: SQLite runs one at a time, and
	// the other gives up at once.
	w.stopCheckpointer()
	if e := w.conn.Exec("PRAGMA wal_checkpoint(TRUNCATE)"); e != nil {
		err = fmt.Errorf("lonelytrace exporter: checkpoint %s: %w", w.path, e)
	}
	if e := w.closeFile(); e != nil && err == nil {
		err = fmt.Errorf("lonelytrace exporter: close %s: %w", w.path, e)
	}
	return err
}

// immediateTx runs fn inside a BEGIN IMMEDIATE transaction on the
// writer's connection (schema.ImmediateTxExec says how it ends).
func (w *writer) immediateTx(fn func() error) error {
	return schema.ImmediateTxExec(w.conn.Exec, fn)
}

// execStmt binds args to s, as sqlitec's Start binds them, and runs it.
func execStmt(s *sqlitec.Stmt, args ...any) error {
	if err := s.Start(args...); err != nil {
		s.ClearBindings()
		return err
	}
	return s.Exec()
}

// queryInts runs s, with args bound as execStmt binds them, and sets dst
// to the integer columns of its first row; errNoRows when it has none. A
// NULL is 0.
func queryInts(s *sqlitec.Stmt, dst ...*int64) error {
	return queryIntsArgs(s, nil, dst...)
}

// queryIntsArgs is queryInts with args.
func queryIntsArgs(s *sqlitec.Stmt, args []any, dst ...*int64) error {
	if err := s.Start(args...); err != nil {
		s.ClearBindings()
		return err
	}
	defer s.ClearBindings()
	defer s.Reset()
	row, err := s.Step()
	if err != nil {
		return err
	}
	if !row {
		return errNoRows
	}
	for i, d := range dst {
		*d = s.Int64(i)
	}
	return nil
}

// errNoRows is a query's that returned no row.
var errNoRows = errors.New("no rows")

// keyID returns the attribute_keys.id of key, inserting it on first sight.
// A failure is kept in w.keyErr, since the attribute encoder cannot return
// one; addSpan checks it after each span.
func (w *writer) keyID(key string) int64 {
	if id, ok := w.keys[key]; ok {
		w.keyUse[id] = struct{}{}
		return id
	}
	var id int64
	err := queryIntsArgs(w.keyInsert, []any{key, w.markAs}, &id)
	if err == nil {
		w.marked(w.keyMarked, id)
	} else if errors.Is(err, errNoRows) {
		err = queryIntsArgs(w.keySelect, []any{key}, &id)
	}
	if err != nil {
		if w.keyErr == nil {
			w.keyErr = fmt.Errorf("attribute key %q: %w", key, err)
		}
		return 0
	}
	if len(w.keys) >= maxCachedKeys {
		w.dropKeyCache()
	}
	w.keys[key] = id
	w.keysChanged = true
	w.keyUse[id] = struct{}{}
	return id
}

func (w *writer) resourceID(r *resource.Resource) (int64, error) {
	if id, ok := w.resources[r]; ok {
		return id, nil
	}
	var attrs []byte
	var schemaURL string
	if r != nil {
		attrs = schema.AppendAttributes(nil, r.Attributes(), nil)
		schemaURL = r.SchemaURL()
	} else {
		attrs = []byte("{}")
	}
	var id int64
	err := queryIntsArgs(w.resourceInsert, []any{schemaURL, string(attrs), w.markAs}, &id)
	if err == nil {
		w.marked(w.resourceMarked, id)
	} else if errors.Is(err, errNoRows) {
		err = queryIntsArgs(w.resourceSelect, []any{string(attrs), schemaURL}, &id)
	}
	if err != nil {
		return 0, fmt.Errorf("resource: %w", err)
	}
	if len(w.resources) >= maxCachedResources {
		clear(w.resources)
	}
	w.resources[r] = id
	return id, nil
}

func (w *writer) scopeID(s instrumentation.Scope) (int64, error) {
	if id, ok := w.scopes[s]; ok {
		return id, nil
	}
	attrs := schema.AppendAttributes(nil, s.Attributes.ToSlice(), nil)
	var id int64
	err := queryIntsArgs(w.scopeInsert, []any{s.Name, s.Version, s.SchemaURL, string(attrs), w.markAs}, &id)
	if err == nil {
		w.marked(w.scopeMarked, id)
	} else if errors.Is(err, errNoRows) {
		err = queryIntsArgs(w.scopeSelect, []any{s.Name, s.Version, s.SchemaURL, string(attrs)}, &id)
	}
	if err != nil {
		return 0, fmt.Errorf("scope %q: %w", s.Name, err)
	}
	if len(w.scopes) >= maxCachedScopes {
		clear(w.scopes)
	}
	w.scopes[s] = id
	return id, nil
}
