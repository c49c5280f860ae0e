package viewer

import (
	"context"
	"database/sql"
	"encoding/binary"
	"fmt"
	"math"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/lonelytrace/lonelytrace/schema"
)

// Summary is the answer of /api/summary: every aggregate of the window and
// filters, over all the viewer's files.
type Summary struct {
	// Since and Until are the window; with since=beginning, Since is the
	// start of the oldest span stored (Until when there is none).
	Since time.Time `json:"since"`
	Until time.Time `json:"until"`
	// Now is the instant the named times and since_most_recent_ms count
	// from.
	Now time.Time `json:"now"`
	// TZ is the zone of the named instants.
	TZ string `json:"tz"`
	// Filters echoes the filters in force.
	Filters Filters `json:"filters"`
	// Spans counts every stored span whose start is in the window, before
	// the filters (phases included).
	Spans int64 `json:"spans"`
	// Dropped is the exporters' count of spans they never wrote (queue
	// full), and Failed of spans whose write failed, summed over the files
	// for their whole life, not only the window.
	Dropped int64 `json:"dropped"`
	Failed  int64 `json:"failed"`
	// Broadcasters counts the distinct broadcasters of the notifies in the
	// window.
	Broadcasters int `json:"broadcasters"`
	// Operations has one entry for each of schema.Operations, always.
	Operations map[string]*Operation `json:"operations"`
	// AverageTrace has "notify" and "receive".
	AverageTrace map[string]*AverageTrace `json:"average_trace"`
	// Files describes each file read.
	Files []FileSummary `json:"files"`
}

// Filters are the operation filters of a query; "" means any.
type Filters struct {
	Broadcaster string `json:"broadcaster"`
	Topic       string `json:"topic"`
	Glob        string `json:"glob"`
}

// FileSummary describes one trace file.
type FileSummary struct {
	Path string `json:"path"`
	// Spans is every span stored, in or out of the window.
	Spans   int64 `json:"spans"`
	Dropped int64 `json:"dropped"`
	Failed  int64 `json:"failed"`
	// Oldest and Newest are the earliest and latest span starts stored;
	// absent for an empty file.
	Oldest *time.Time `json:"oldest,omitempty"`
	Newest *time.Time `json:"newest,omitempty"`
	// Bytes is the size of the file's pages (its WAL aside).
	Bytes int64 `json:"bytes"`
	// Retention is what the file's exporter keeps: spans older than the
	// max age or beyond the max size are deleted, so Oldest is the oldest
	// span kept. Absent when the exporter recorded none.
	Retention *Retention `json:"retention,omitempty"`
}

// Operation aggregates the spans of one pub/sub operation in the window.
type Operation struct {
	Count int64 `json:"count"`
	// Bytes sums the meaningful bytes; it saturates at 2^64-1.
	Bytes uint64 `json:"bytes"`
	// SinceMostRecentMs is the time from the latest start to Now; nil when
	// there is none in the window.
	SinceMostRecentMs *float64 `json:"since_most_recent_ms"`
	// DurationMs is over every span; SizeBytes over the spans that carry a
	// size. Nil when there is nothing to take percentiles of.
	DurationMs *Percentiles `json:"duration_ms"`
	SizeBytes  *Percentiles `json:"size_bytes"`
	// BySubscribers groups the spans that carry lonelytrace.subscribers.
	BySubscribers []SubscriberGroup `json:"by_subscribers"`
	// BySize lists every bucket from "below 1" up to the largest non-empty
	// one; empty when no span carries a size.
	BySize []SizeBucket `json:"by_size"`
	// Stateless holds spans without lonelytrace.stateful or with false.
	Stateless Split `json:"stateless"`
	Stateful  Split `json:"stateful"`
	// Histogram counts durations in power-of-two bins of microseconds,
	// from the minimum's bin to the maximum's.
	Histogram []HistogramBin `json:"histogram"`
}

// SubscriberGroup aggregates the spans that reached the same number of
// subscribers.
type SubscriberGroup struct {
	Subscribers int64        `json:"subscribers"`
	Count       int64        `json:"count"`
	DurationMs  *Percentiles `json:"duration_ms"`
}

// SizeBucket counts the sizes in [Below/2, Below) ("below 1" holds 0).
type SizeBucket struct {
	Below string `json:"below"`
	Count int64  `json:"count"`
}

// Split counts the operations of one connection style.
type Split struct {
	Count int64  `json:"count"`
	Bytes uint64 `json:"bytes"`
}

// HistogramBin counts durations in [FromMs, BelowMs).
type HistogramBin struct {
	FromMs  float64 `json:"from_ms"`
	BelowMs float64 `json:"below_ms"`
	Count   int64   `json:"count"`
}

// summarize computes the Summary of q over every file.
func (v *Viewer) summarize(ctx context.Context, q Query) (*Summary, error) {
	now := v.now()
	s := &Summary{
		Since:        q.Since,
		Until:        q.Until,
		Now:          now.In(q.Location),
		TZ:           q.Location.String(),
		Filters:      Filters{Broadcaster: q.Broadcaster, Topic: q.Topic, Glob: q.Glob},
		Operations:   make(map[string]*Operation, len(schema.Operations)),
		AverageTrace: make(map[string]*AverageTrace, 2),
	}
	lo, hi := q.bounds()
	withKeys := len(v.files) > 1
	topics := q.Topic != "" || q.Glob != ""
	// First each file's totals and the batches of the window; then the
	// operation spans of the batches the cache does not hold, in short
	// read transactions on as many connections as there are CPUs.
	type fileTask struct {
		fs      FileSummary
		n       int64
		batches []batchKey
		plan    *opsPlan
		reads   []*readBatches
		err     error
	}
	files := make([]fileTask, len(v.files))
	runTasks(len(v.files), func(i int) {
		t, f := &files[i], v.files[i]
		if t.fs, t.err = f.describe(ctx); t.err != nil {
			return
		}
		if t.n, t.err = f.countSpans(ctx, q, t.fs); t.err != nil {
			return
		}
		t.batches, t.err = f.windowBatches(ctx, lo, hi)
	})
	type readTask struct {
		file int
		keys []batchKey
		read *readBatches
		err  error
	}
	var reads []*readTask
	for i, f := range v.files {
		t := &files[i]
		if t.err != nil {
			return nil, t.err
		}
		t.plan = f.ops.plan(t.batches, topics)
		var r *readTask
		spans := int64(0)
		for _, k := range t.plan.misses {
			if r == nil || spans >= readTaskSpans {
				r = &readTask{file: i}
				reads = append(reads, r)
				spans = 0
			}
			r.keys = append(r.keys, k)
			spans += k.last - k.first + 1
		}
	}
	runTasks(len(reads), func(i int) {
		r := reads[i]
		r.read, r.err = v.files[r.file].readBatches(ctx, r.keys, topics, withKeys)
	})
	for _, r := range reads {
		if r.err != nil {
			return nil, r.err
		}
		files[r.file].reads = append(files[r.file].reads, r.read)
	}
	var accs [len(schema.Operations)]opAcc
	oldest := int64(math.MaxInt64)
	// The same span can be in two files (a broadcaster's span that rode
	// home to a subscriber, and the broadcaster's own file): count it once.
	seen := make(map[spanKey]struct{})
	broadcasters := make(map[string]struct{})
	for i, f := range v.files {
		t := &files[i]
		s.Files = append(s.Files, t.fs)
		s.Dropped += t.fs.Dropped
		s.Failed += t.fs.Failed
		s.Spans += t.n
		if t.fs.Oldest != nil {
			oldest = min(oldest, t.fs.Oldest.UnixNano())
		}
		f.ops.add(t.plan, t.reads)
		strs := f.ops.strings(t.plan)
		keep := q.opFilter(strs)
		notified := make([]bool, len(strs))
		for _, b := range t.plan.parts {
			inside := b.key.minStart >= lo && b.key.maxStart < hi
			for j := range b.ops {
				o := &b.ops[j]
				if !inside && (o.start < lo || o.start >= hi) || keep != nil && !keep(o) {
					continue
				}
				if withKeys {
					if _, dup := seen[b.keys[j]]; dup {
						continue
					}
					seen[b.keys[j]] = struct{}{}
				}
				accs[o.op].add(o)
				if o.op == notifyIndex {
					notified[o.broadcaster] = true
				}
			}
		}
		for id, ok := range notified {
			if ok && strs[id] != "" {
				broadcasters[strs[id]] = struct{}{}
			}
		}
	}
	if q.SinceBeginning {
		s.Since = s.Until
		if oldest != math.MaxInt64 && oldest < q.Until.UnixNano() {
			s.Since = time.Unix(0, oldest).In(q.Location)
		}
	}
	s.Broadcasters = len(broadcasters)
	for i, op := range schema.Operations {
		s.Operations[op] = accs[i].operation(now)
	}
	avgOps := []string{schema.OpNotify, schema.OpReceive}
	avgs := make([]*AverageTrace, len(avgOps))
	errs := make([]error, len(avgOps))
	runTasks(len(avgOps), func(i int) {
		avgs[i], errs[i] = v.averageTrace(ctx, avgOps[i], q, q.matcher(), s.Operations[avgOps[i]].Count)
	})
	for i, op := range avgOps {
		if errs[i] != nil {
			return nil, errs[i]
		}
		s.AverageTrace[op] = avgs[i]
	}
	return s, nil
}

// notifyIndex is the index of notify in schema.Operations.
const notifyIndex = 0

// opFilter returns the test of q's filters on operation spans whose
// strings are numbered in strs, nil when q has none.
func (q Query) opFilter(strs []string) func(*opSpan) bool {
	if !q.filtered() {
		return nil
	}
	// A filter string absent from the table matches no span.
	id := func(s string) int64 {
		for i, t := range strs {
			if t == s {
				return int64(i)
			}
		}
		return -1
	}
	broadcaster, topic, pattern := int64(0), int64(0), int64(-1)
	if q.Broadcaster != "" {
		broadcaster = id(q.Broadcaster)
	}
	if q.Topic != "" {
		topic = id(q.Topic)
	}
	var topicMatch []int8 // per topic: 0 unknown, 1 matches the pattern, -1 not
	var g glob
	if q.Glob != "" {
		pattern = id(q.Glob)
		g = compileGlob(q.Glob)
		topicMatch = make([]int8, len(strs))
	}
	return func(o *opSpan) bool {
		if q.Broadcaster != "" && int64(o.broadcaster) != broadcaster {
			return false
		}
		if q.Topic != "" && int64(o.topic) != topic {
			return false
		}
		if q.Glob == "" || int64(o.glob) == pattern {
			return true
		}
		m := topicMatch[o.topic]
		if m == 0 {
			m = -1
			if g.match([]rune(strs[o.topic])) {
				m = 1
			}
			topicMatch[o.topic] = m
		}
		return m == 1
	}
}

// opAcc gathers the spans of one operation for its aggregates.
type opAcc struct {
	count               int64
	bytes               uint64
	stateless, stateful Split
	durations, sizes    []int64
	bySubs              map[int64][]int64
	buckets             [65]int64
	maxBucket           int
	latest              int64
}

func (a *opAcc) add(o *opSpan) {
	if a.count == 0 {
		a.maxBucket, a.latest = -1, math.MinInt64
		a.bySubs = make(map[int64][]int64)
	}
	a.count++
	a.durations = append(a.durations, o.end-o.start)
	a.latest = max(a.latest, o.start)
	split := &a.stateless
	if o.stateful {
		split = &a.stateful
	}
	split.Count++
	if o.size >= 0 {
		a.sizes = append(a.sizes, o.size)
		a.bytes = addSat(a.bytes, uint64(o.size))
		split.Bytes = addSat(split.Bytes, uint64(o.size))
		k := sizeBucket(o.size)
		a.buckets[k]++
		a.maxBucket = max(a.maxBucket, k)
	}
	if o.subs >= 0 {
		a.bySubs[o.subs] = append(a.bySubs[o.subs], o.end-o.start)
	}
}

// operation computes the aggregates of the spans added.
func (a *opAcc) operation(now time.Time) *Operation {
	o := &Operation{Count: a.count, BySubscribers: []SubscriberGroup{}, BySize: []SizeBucket{}, Histogram: []HistogramBin{}}
	if a.count == 0 {
		return o
	}
	o.Bytes, o.Stateless, o.Stateful = a.bytes, a.stateless, a.stateful
	since := nsToMs(now.UnixNano() - a.latest)
	o.SinceMostRecentMs = &since
	o.DurationMs = percentilesOf(a.durations, nsToMs)
	o.SizeBytes = percentilesOf(a.sizes, int64ToFloat)
	for k := 0; k <= a.maxBucket; k++ {
		o.BySize = append(o.BySize, SizeBucket{Below: bucketBelow(k), Count: a.buckets[k]})
	}
	for _, n := range slices.Sorted(mapsKeys(a.bySubs)) {
		d := a.bySubs[n]
		o.BySubscribers = append(o.BySubscribers, SubscriberGroup{Subscribers: n, Count: int64(len(d)), DurationMs: percentilesOf(d, nsToMs)})
	}
	o.Histogram = histogram(a.durations)
	return o
}

func mapsKeys[K comparable, V any](m map[K]V) func(func(K) bool) {
	return func(yield func(K) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

func addSat(a, b uint64) uint64 {
	if s := a + b; s >= a {
		return s
	}
	return math.MaxUint64
}

// histogram bins sorted durations (ns) by powers of two of microseconds;
// the first bin holds everything below 1 µs, negative durations included.
func histogram(sorted []int64) []HistogramBin {
	bin := func(ns int64) int {
		if ns < 1000 {
			return 0
		}
		return sizeBucket(ns / 1000) // [2^(k-1), 2^k) µs
	}
	lo, hi := bin(sorted[0]), bin(sorted[len(sorted)-1])
	out := make([]HistogramBin, 0, hi-lo+1)
	for k := lo; k <= hi; k++ {
		b := HistogramBin{}
		if k > 0 {
			b.FromMs = float64(uint64(1)<<(k-1)) / 1000
		}
		b.BelowMs = float64(uint64(1)<<k) / 1000
		out = append(out, b)
	}
	for _, d := range sorted {
		out[bin(d)-lo].Count++
	}
	return out
}

// matcher returns the Go-side filter of q for the rows SQL cannot filter
// (glob); nil when SQL does all of it. Results are cached per topic and
// pattern, as a window holds few distinct topics and many spans.
func (q Query) matcher() func(topic, glob string) bool {
	if q.Glob == "" {
		return nil
	}
	g := compileGlob(q.Glob)
	cache := make(map[string]bool)
	return func(topic, pattern string) bool {
		if pattern == q.Glob {
			return true
		}
		m, ok := cache[topic]
		if !ok {
			m = g.match([]rune(topic))
			if len(cache) < 100_000 {
				cache[topic] = m
			}
		}
		return m
	}
}

// spanKey identifies a span across files: trace id then span id.
type spanKey [24]byte

func makeSpanKey(traceID, spanID []byte) (k spanKey) {
	copy(k[:16], traceID)
	copy(k[16:], spanID)
	return k
}

// rowKey identifies a span within one file: its trace's row id in place
// of the trace id.
func rowKey(trace int64, spanID []byte) (k spanKey) {
	binary.BigEndian.PutUint64(k[:8], uint64(trace))
	copy(k[16:], spanID)
	return k
}

// opFilterSQL returns the WHERE clause and arguments shared by the
// queries over operation spans: the operation, the window and the exact
// filters. Spans that SQL cannot judge (glob) are filtered in Go.
func opFilterSQL(op string, q Query) (string, []any) {
	lo, hi := q.bounds()
	var b strings.Builder
	b.WriteString("op = ? AND start_ns >= ? AND start_ns < ?")
	args := []any{op, lo, hi}
	if q.Broadcaster != "" {
		b.WriteString(" AND broadcaster = ?")
		args = append(args, q.Broadcaster)
	}
	if q.Topic != "" {
		b.WriteString(" AND topic = ?")
		args = append(args, q.Topic)
	}
	return b.String(), args
}

// runTasks runs fn(0..n-1) on up to GOMAXPROCS goroutines (at least two,
// so that one slow query does not hold up the rest) and waits.
func runTasks(n int, fn func(i int)) {
	workers := min(max(runtime.GOMAXPROCS(0), 2), n)
	next := make(chan int)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				fn(i)
			}
		}()
	}
	for i := 0; i < n; i++ {
		next <- i
	}
	close(next)
	wg.Wait()
}

// countSpans counts the spans of f whose start is in q's window. The
// batches table says which span ids each write transaction added and the
// range of their starts: batches wholly inside the window are counted from
// it, and only the rows of batches that straddle an edge are read.
func (f *file) countSpans(ctx context.Context, q Query, fs FileSummary) (int64, error) {
	lo, hi := q.bounds()
	if fs.Oldest == nil {
		return 0, nil
	}
	if fs.Oldest.UnixNano() >= lo && fs.Newest.UnixNano() < hi {
		return fs.Spans, nil
	}
	var n int64
	err := f.db.QueryRowContext(ctx, `
SELECT
	(SELECT coalesce(sum(spans), 0) FROM batches
		WHERE max_start_ns >= ?1 AND min_start_ns >= ?1 AND max_start_ns < ?2)
	+ (SELECT count(*) FROM batches AS b JOIN spans AS s ON s.id BETWEEN b.first_span AND b.last_span
		WHERE b.max_start_ns >= ?1 AND b.min_start_ns < ?2 AND NOT (b.min_start_ns >= ?1 AND b.max_start_ns < ?2)
		AND s.start_ns >= ?1 AND s.start_ns < ?2)`, lo, hi).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("count spans of %s: %w", f.path, err)
	}
	return n, nil
}

// describe reads f's totals: span count, drop counters and the oldest and
// newest starts.
func (f *file) describe(ctx context.Context) (FileSummary, error) {
	fs := FileSummary{Path: f.path}
	var oldest, newest sql.NullInt64
	// The batches table keeps, per write transaction, how many spans it
	// added and the range of their starts, so the totals need no scan.
	err := f.db.QueryRowContext(ctx, "SELECT coalesce(sum(spans), 0), min(min_start_ns), max(max_start_ns) FROM batches").Scan(&fs.Spans, &oldest, &newest)
	if err != nil {
		return fs, fmt.Errorf("describe %s: %w", f.path, err)
	}
	if oldest.Valid {
		o, n := time.Unix(0, oldest.Int64), time.Unix(0, newest.Int64)
		fs.Oldest, fs.Newest = &o, &n
	}
	if fs.Retention, fs.Bytes, err = f.retention(ctx); err != nil {
		return fs, err
	}
	rows, err := f.db.QueryContext(ctx, "SELECT key, value FROM meta WHERE key IN ('dropped_spans', 'failed_spans')")
	if err != nil {
		return fs, fmt.Errorf("read meta of %s: %w", f.path, err)
	}
	defer rows.Close()
	for rows.Next() {
		var key string
		var value any
		if err := rows.Scan(&key, &value); err != nil {
			return fs, fmt.Errorf("read meta of %s: %w", f.path, err)
		}
		n, _ := value.(int64) // meta is ANY; anything but an integer is no count
		switch key {
		case "dropped_spans":
			fs.Dropped = n
		case "failed_spans":
			fs.Failed = n
		}
	}
	if err := rows.Err(); err != nil {
		return fs, fmt.Errorf("read meta of %s: %w", f.path, err)
	}
	return fs, nil
}
