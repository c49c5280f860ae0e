package opstore

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/lonelytrace/lonelytrace/internal/sqlitec"
	"github.com/lonelytrace/lonelytrace/schema"
)

// An operation counts once, however many spans describe it
// (docs/design.md#one-operation-many-spans): a span that carries an
// operation and descends, in the same trace and in any of the files, from
// a span that carries the same operation is a phase of that operation,
// and no operation of its own. The client's span of a subscription and
// the broadcaster's server span under it, brought home by span return or
// kept in the broadcaster's own file, are one subscription.
//
// The rule is applied when a chunk is read (readBatches), within its
// file: an operation span that has a parent has its chain of parents
// climbed, through the chunk's spans or its trace's spans in the file
// (resolvePhases says when each, and when a climb is skipped). A phase
// found so is left out of the chunk, and lends the facts its outermost
// span lacks (topic, glob, broadcaster, size, subscribers) when that
// span is in the chunk too. A chain that leaves
// the file before it meets the operation (the parent is in another
// process's file) is kept as an exit, and with several files the visit
// follows it into the others (Window.settle); what it finds there is
// kept with the chunk once it is final (the chain met the operation, or
// ended at a root), so each exit is followed once.

// spanID is a span id as the file stores it (8 bytes).
type spanID [8]byte

func spanIDOf(b []byte) (id spanID) {
	copy(id[:], b)
	return id
}

// traceNode is what the climb needs of one span of a trace.
type traceNode struct {
	id        int64 // row id
	parent    spanID
	hasParent bool
	op        uint8 // index in schema.Operations; opUnknown for none
}

// traceNodes are the spans of one trace in one file, by span id.
type traceNodes map[spanID]traceNode

// climb walks the chain of parents up from the span from (itself
// included) in t, looking for spans of operation op. phase is set when
// one was found; outer is then the row id of the outermost one. When the
// chain leaves t (a parent that t lacks), leaves is set and at is that
// parent's id.
func (t traceNodes) climb(from spanID, op uint8) (outer int64, phase bool, at spanID, leaves bool) {
	cur := from
	// A chain is at most as long as the trace: more steps is a loop in
	// the ids, which a file may hold (ids are the application's).
	for range len(t) + 1 {
		n, ok := t[cur]
		if !ok {
			return outer, phase, cur, true
		}
		if n.op == op {
			outer, phase = n.id, true
		}
		if !n.hasParent {
			break
		}
		cur = n.parent
	}
	return outer, phase, spanID{}, false
}

// rangeNode is what the climb needs of one span of a range of span ids.
type rangeNode struct {
	traceNode
	trace int64 // the trace's row id
}

// rangeNodes are the spans of a range of span ids, by span id.
type rangeNodes map[spanID]rangeNode

// rangeQuery selects the spans whose ids are in [?1, ?2].
var rangeQuery = "SELECT id, trace, span_id, parent_span_id, " + opCase(3) + " FROM spans WHERE id BETWEEN ?1 AND ?2"

// readRange reads the spans of ids first to last on c.
func readRange(c *scanConn, first, last int64) (rangeNodes, error) {
	stmt, err := c.stmt(rangeQuery)
	if err != nil {
		return nil, err
	}
	defer stmt.Reset()
	if err := stmt.Start(append([]any{first, last}, opArgs()...)...); err != nil {
		return nil, err
	}
	r := make(rangeNodes)
	for {
		more, err := stmt.Next()
		if err != nil {
			return nil, err
		}
		if !more {
			return r, nil
		}
		n := rangeNode{traceNode: traceNode{id: stmt.Int64(0), op: uint8(stmt.Int64(4))}, trace: stmt.Int64(1)}
		if stmt.Type(3) != sqlitec.Null {
			n.parent, n.hasParent = spanIDOf(stmt.Bytes(3)), true
		}
		r[spanIDOf(stmt.Bytes(2))] = n
	}
}

// climb is traceNodes.climb within r, from the span from of the trace of
// row id trace: ended is set when the chain ended at a root in r; when
// it left r, the climb must go on through the trace's spans in the file.
func (r rangeNodes) climb(from spanID, trace int64, op uint8) (outer int64, phase, ended bool) {
	if r == nil {
		return 0, false, false
	}
	cur := from
	for range len(r) + 1 {
		n, ok := r[cur]
		if !ok || n.trace != trace {
			return 0, false, false
		}
		if n.op == op {
			outer, phase = n.id, true
		}
		if !n.hasParent {
			return outer, phase, true
		}
		cur = n.parent
	}
	return 0, false, false
}

// opCase is the SQL expression of a span's operation index, opUnknown for
// none or another; its parameters are the operations' names from ?first.
func opCase(first int) string {
	var b strings.Builder
	b.WriteString("(CASE op")
	for i := range schema.Operations {
		fmt.Fprintf(&b, " WHEN ?%d THEN %d", first+i, i)
	}
	fmt.Fprintf(&b, " ELSE %d END)", opUnknown)
	return b.String()
}

// opArgs are the operations' names, as opCase's parameters.
func opArgs() []any {
	args := make([]any, len(schema.Operations))
	for i, op := range schema.Operations {
		args[i] = op
	}
	return args
}

// traceRowQuery selects the spans of the trace of row ?1, in every row
// the traces table has for its trace id (a trace may have two, in two
// generations).
var traceRowQuery = "SELECT id, span_id, parent_span_id, " + opCase(2) +
	" FROM spans WHERE trace IN (SELECT t2.id FROM traces AS t1 JOIN traces AS t2 ON t2.trace_id = t1.trace_id WHERE t1.id = ?1)"

// traceIDQuery selects the spans of the trace of id ?1.
var traceIDQuery = "SELECT id, span_id, parent_span_id, " + opCase(2) +
	" FROM spans WHERE trace IN (SELECT id FROM traces WHERE trace_id = ?1)"

// parented is an operation span of a read that has a parent: its index
// among the read's spans and its parent's id.
type parented struct {
	i      int
	parent spanID
}

// edgeMargin is how far beyond the span ids of a read, in one file, the
// operation spans are read as neighbours: an operation's outermost span
// may be in the chunk beside, a few export batches away.
const edgeMargin = 1024

// neighbour is an operation span just beyond a read's span ids.
type neighbour struct {
	trace      int64
	op         uint8
	start, end int64
}

// maxSame is how many spans of one operation and trace a read may hold
// for resolvePhases to compare their times, rather than read the trace.
const maxSame = 32

// exit is an operation span of a chunk whose chain of parents leaves its
// file before it meets a span of its operation.
type exit struct {
	// i is the span's index among the chunk's.
	i  int32
	op uint8
	// state is exitOpen until the chain is followed to an end: exitPhase
	// (it met the operation) or exitOwn (it ended at a root without).
	state uint8
	// at is the trace id and span id of the parent the file lacks.
	at SpanKey
}

const (
	exitOpen = iota
	exitPhase
	exitOwn
)

// resolvePhases applies the rule within f to the spans read from the
// span ids first to last into out (the phases among them are left out),
// on the read's connection c. traces are the spans' traces' row ids, ps
// those of them that have a parent. withKeys asks for the exits
// (out.keys are read then).
//
// Reading a trace's spans costs a lookup in the table for each, several
// times the scan's cost of a span, so it is read only when the climb may
// find something: with several files, where the chain may leave the file
// and lead to a span of the operation in another; in one file, when
// another span of the same operation and trace, in the read or among its
// neighbours nb, contains the span in time (an ancestor starts no later
// and ends no earlier, on one clock: span return moves the server's spans
// onto the client's). Sibling receives of one notify, the common case of
// several spans of an operation in a trace, do not contain each other.
// So, in one file, an operation whose spans are more than edgeMargin ids
// apart across a chunk's edge, or whose outer span does not contain the
// inner one in time, is counted twice.
func (f *File) resolvePhases(ctx context.Context, c *scanConn, first, last int64, out *readBatches, traces []int64, ps []parented, nb []neighbour, withKeys bool) error {
	if len(ps) == 0 {
		return nil
	}
	// In one file, a span is climbed only when another of its trace and
	// operation contains it in time (same).
	var same sameOps
	if !withKeys {
		same = newSameOps(out.ops, traces, ps, nb)
	}
	// With several files every span with a parent is climbed: first
	// through the spans of the read's own range, read in one scan in
	// page order, and only when the chain leaves the range, through its
	// trace's spans in the file.
	var near rangeNodes
	if withKeys {
		var err error
		if near, err = readRange(c, first, last); err != nil {
			return fmt.Errorf("read spans %d to %d: %w", first, last, err)
		}
	}
	stmt, err := c.stmt(traceRowQuery)
	if err != nil {
		return err
	}
	args := append([]any{int64(0)}, opArgs()...)
	read := make(map[int64]traceNodes)
	ops := out.ops
	phase := make([]bool, len(ops))
	// isPhaseOf marks span i a phase of the span of row id outer, which
	// it lends its facts when the read holds it.
	isPhaseOf := func(i int, outer int64) {
		phase[i] = true
		if a, ok := slices.BinarySearchFunc(ops, outer, func(x Span, id int64) int { return cmp.Compare(x.ID, id) }); ok && !phase[a] {
			lend(&ops[a], &ops[i])
		}
	}
	var exits []exit
	for n, p := range ps {
		if n%256 == 255 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		o := &ops[p.i]
		trace := traces[p.i]
		if same != nil && !same.mayBePhase(out.ops, traces, p.i) {
			continue
		}
		if outer, isPhase, ended := near.climb(p.parent, trace, o.Op); ended {
			if isPhase {
				isPhaseOf(p.i, outer)
			}
			continue
		}
		t, ok := read[trace]
		if !ok {
			args[0] = trace
			if t, err = readTrace(stmt, args); err != nil {
				return fmt.Errorf("read trace %d: %w", trace, err)
			}
			read[trace] = t
		}
		outer, isPhase, at, leaves := t.climb(p.parent, o.Op)
		switch {
		case isPhase:
			isPhaseOf(p.i, outer)
		case leaves && withKeys:
			e := exit{i: int32(p.i), op: o.Op}
			copy(e.at[:16], out.keys[p.i][:16])
			copy(e.at[16:], at[:])
			exits = append(exits, e)
		}
	}
	out.dropPhases(phase, exits, withKeys)
	return nil
}

// dropPhases leaves out of r the spans that phase marks, and numbers
// exits, found among all of r's spans, among those kept, which become
// r's exits.
func (r *readBatches) dropPhases(phase []bool, exits []exit, withKeys bool) {
	ops := r.ops
	kept := ops[:0]
	var keys []SpanKey
	index := make([]int32, len(ops))
	for i := range ops {
		if phase[i] {
			continue
		}
		index[i] = int32(len(kept))
		kept = append(kept, ops[i])
		if withKeys {
			keys = append(keys, r.keys[i])
		}
	}
	for j := range exits {
		exits[j].i = index[exits[j].i]
	}
	r.ops, r.exits = kept, exits
	if withKeys {
		r.keys = keys
	}
}

// traceOp is a trace, by row id, and an operation.
type traceOp struct {
	trace int64
	op    uint8
}

// during is a span of a read, by its index in the read's spans (-1 for
// a neighbour), and its times.
type during struct {
	i          int32
	start, end int64
}

// sameOps holds, for each trace and operation of the spans of a read that
// have a parent, the spans of that trace and operation, in the read and
// among its neighbours.
type sameOps map[traceOp][]during

// newSameOps returns the sameOps of the read of ops, whose traces' row
// ids are traces, those of which that have a parent ps, and whose
// neighbours are nb.
func newSameOps(ops []Span, traces []int64, ps []parented, nb []neighbour) sameOps {
	same := make(sameOps, len(ps))
	for _, p := range ps {
		same[traceOp{traces[p.i], ops[p.i].Op}] = nil
	}
	for i := range ops {
		k := traceOp{traces[i], ops[i].Op}
		if l, ok := same[k]; ok {
			same[k] = append(l, during{int32(i), ops[i].Start, ops[i].End})
		}
	}
	for _, n := range nb {
		k := traceOp{n.trace, n.op}
		if l, ok := same[k]; ok {
			same[k] = append(l, during{-1, n.start, n.end})
		}
	}
	return same
}

// mayBePhase reports whether a span of span i's trace and operation
// contains it in time; ops and traces are the read's.
func (same sameOps) mayBePhase(ops []Span, traces []int64, i int) bool {
	o := &ops[i]
	l := same[traceOp{traces[i], o.Op}]
	if len(l) > maxSame {
		return true // one read of the trace serves them all
	}
	for _, a := range l {
		if int(a.i) != i && a.start <= o.Start && a.end >= o.End {
			return true
		}
	}
	return false
}

// lend gives the outermost span a of an operation the facts it lacks that
// its phase p has.
func lend(a, p *Span) {
	if a.Topic == 0 {
		a.Topic = p.Topic
	}
	if a.Glob == 0 {
		a.Glob = p.Glob
	}
	if a.Broadcaster == 0 {
		a.Broadcaster = p.Broadcaster
	}
	if a.Size < 0 {
		a.Size = p.Size
	}
	if a.Subs < 0 {
		a.Subs = p.Subs
	}
}

// readTrace reads the spans stmt selects with args (traceRowQuery).
func readTrace(stmt *sqlitec.Stmt, args []any) (traceNodes, error) {
	defer stmt.Reset()
	if err := stmt.Start(args...); err != nil {
		return nil, err
	}
	t := make(traceNodes)
	for {
		more, err := stmt.Next()
		if err != nil {
			return nil, err
		}
		if !more {
			return t, nil
		}
		n := traceNode{id: stmt.Int64(0), op: uint8(stmt.Int64(3))}
		if stmt.Type(2) != sqlitec.Null {
			n.parent, n.hasParent = spanIDOf(stmt.Bytes(2)), true
		}
		t[spanIDOf(stmt.Bytes(1))] = n
	}
}

// traceOf reads the spans of the trace of id traceID in f.
func (f *File) traceOf(ctx context.Context, traceID []byte) (traceNodes, error) {
	rows, err := f.db.QueryContext(ctx, traceIDQuery, append([]any{traceID}, opArgs()...)...)
	if err != nil {
		return nil, fmt.Errorf("read a trace of %s: %w", f.path, err)
	}
	defer rows.Close()
	t := make(traceNodes)
	for rows.Next() {
		var n traceNode
		var id, parent []byte
		if err := rows.Scan(&n.id, &id, &parent, &n.op); err != nil {
			return nil, fmt.Errorf("read a trace of %s: %w", f.path, err)
		}
		if parent != nil {
			n.parent, n.hasParent = spanIDOf(parent), true
		}
		t[spanIDOf(id)] = n
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read a trace of %s: %w", f.path, err)
	}
	return t, nil
}

// maxHops bounds the files a chain is followed through: a pub/sub
// operation crosses two processes, a chain of many more is no
// subscription.
const maxHops = 8

// exitMemo keeps what a request learnt of exits, by where they lead and
// their operation, for the chunks that share them.
type exitMemo struct {
	mu    sync.Mutex
	state map[exitKey]uint8
}

type exitKey struct {
	at SpanKey
	op uint8
}

// exitPatience is how long after an operation span's end a chain of
// parents that no file completes is followed again, at each request: the
// span it lacks (the client's, which ends after the server's) reaches its
// file within seconds, through the batch processor and the writer. After
// it, the span is an operation of its own for good: a server span whose
// client stored nothing. Without the bound, every request would follow
// every such chain of the window through every file.
const exitPatience = 2 * time.Minute

// settle follows the open exits of chunk k of f, read from batches of
// print key, through the files, and returns the indices of its spans
// found to be phases, in order. ops are the chunk's spans. The cache
// keeps the states found.
func (w *Window) settle(ctx context.Context, f *File, k int64, key chunkKey, exits []exit, ops []Span) (phases []int32, err error) {
	changed := false
	var now int64
	for j := range exits {
		e := &exits[j]
		if e.state == exitOpen {
			if e.state, err = w.follow(ctx, e.at, e.op); err != nil {
				return nil, err
			}
			if e.state == exitOpen {
				if now == 0 {
					now = w.now().UnixNano()
				}
				if now-ops[e.i].End > int64(exitPatience) {
					e.state = exitOwn
				}
			}
			changed = changed || e.state != exitOpen
		}
		if e.state == exitPhase {
			phases = append(phases, e.i)
		}
	}
	if changed {
		f.ops.settled(k, key, exits)
	}
	return phases, nil
}

// follow climbs from the span at, in whichever file holds it, through
// the files while the chain leaves each, looking for a span of operation
// op: exitPhase when it meets one, exitOwn when the chain ends at a root
// without, exitOpen when no file holds the next span.
func (w *Window) follow(ctx context.Context, at SpanKey, op uint8) (uint8, error) {
	k := exitKey{at, op}
	w.exits.mu.Lock()
	st, ok := w.exits.state[k]
	w.exits.mu.Unlock()
	if ok {
		return st, nil
	}
	st = exitOpen
	for range maxHops {
		next := false
		for _, g := range w.store.files {
			t, err := g.traceOf(ctx, at[:16])
			if err != nil {
				return exitOpen, err
			}
			if _, ok := t[spanID(at[16:])]; !ok {
				continue
			}
			_, phase, to, leaves := t.climb(spanID(at[16:]), op)
			switch {
			case phase:
				st = exitPhase
			case leaves:
				copy(at[16:], to[:])
				next = true
			default:
				st = exitOwn
			}
			break
		}
		if !next {
			break
		}
	}
	w.exits.mu.Lock()
	if w.exits.state == nil {
		w.exits.state = make(map[exitKey]uint8)
	}
	w.exits.state[k] = st
	w.exits.mu.Unlock()
	return st, nil
}
