package opstore

import (
	"context"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/otel/codes"

	"github.com/lonelytrace/lonelytrace/schema"
	"github.com/lonelytrace/lonelytrace/viewer/model"
)

// The reads of the trace list's search (viewer/internal/search): the
// files' attribute keys and resources, the candidates' rows by id, the
// sieve of the row terms, and the traces of the operations counted.

// AttributeKeyIDs returns the ids of the attribute keys keys in f, in
// order; ok is false when f lacks one of them (no span of f has it).
func (f *File) AttributeKeyIDs(ctx context.Context, keys []string) (ids []int64, ok bool, err error) {
	for _, k := range keys {
		var id int64
		err := f.db.QueryRowContext(ctx, "SELECT id FROM attribute_keys WHERE key = ?", k).Scan(&id)
		if errors.Is(err, sql.ErrNoRows) {
			return nil, false, nil
		}
		if err != nil {
			return nil, false, fmt.Errorf("search traces of %s: %w", f.path, err)
		}
		ids = append(ids, id)
	}
	return ids, true, nil
}

// ServiceResources returns the resources of f whose service.name is
// service, a string.
func (f *File) ServiceResources(ctx context.Context, service string) (map[int64]bool, error) {
	rows, err := f.db.QueryContext(ctx, "SELECT id FROM resources WHERE json_extract(attributes, ?) = ?", serviceNamePath, service)
	if err != nil {
		return nil, fmt.Errorf("search traces of %s: %w", f.path, err)
	}
	defer rows.Close()
	out := make(map[int64]bool)
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("search traces of %s: %w", f.path, err)
		}
		out[id] = true
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("search traces of %s: %w", f.path, err)
	}
	return out, nil
}

// RowQuery is the query of a search's rows in one file (Rows).
type RowQuery struct {
	// query selects the rows of the ids in the JSON array ?1 that have
	// the name searched for; args are its other arguments.
	query string
	args  []any
	attrs int
}

// NewRowQuery returns the query of the rows whose span name is name (""
// for any), with the values of the attributes of key ids keyIDs.
func NewRowQuery(keyIDs []int64, name string) *RowQuery {
	var b strings.Builder
	b.WriteString("SELECT s.id, " + traceIDOf("s") + ", s.name, s.topic, s.broadcaster, s.start_ns, s.end_ns, s.status_code, " +
		"(SELECT json_extract(r.attributes, ?2) FROM resources AS r WHERE r.id = s.resource), s.resource")
	args := []any{serviceNamePath}
	for _, id := range keyIDs {
		args = append(args, `$."`+strconv.FormatInt(id, 10)+`"`)
		fmt.Fprintf(&b, ", s.attributes -> ?%d", len(args)+1)
	}
	b.WriteString(" FROM spans AS s WHERE s.id IN (SELECT value FROM json_each(?1))")
	if name != "" {
		args = append(args, name)
		fmt.Fprintf(&b, " AND s.name = ?%d", len(args)+1)
	}
	return &RowQuery{query: b.String(), args: args, attrs: len(keyIDs)}
}

// Row is one operation span as a RowQuery selects it.
type Row struct {
	ID                 int64
	TraceID            []byte
	Name               string
	Topic, Broadcaster sql.NullString
	Start, End         int64
	Status             int64
	Service            sql.NullString
	Resource           int64
	// Attrs are the stored JSON values of the query's attributes, in
	// order; nil where the span lacks one.
	Attrs [][]byte
}

// Rows reads, by id, the rows of the spans of ids that q selects.
func (f *File) Rows(ctx context.Context, q *RowQuery, ids []int64) (map[int64]*Row, error) {
	args := append([]any{schema.IDList(ids)}, q.args...)
	rows, err := f.db.QueryContext(ctx, q.query, args...)
	if err != nil {
		return nil, fmt.Errorf("search traces of %s: %w", f.path, err)
	}
	defer rows.Close()
	out := make(map[int64]*Row, len(ids))
	for rows.Next() {
		r := &Row{Attrs: make([][]byte, q.attrs)}
		dests := []any{&r.ID, &r.TraceID, &r.Name, &r.Topic, &r.Broadcaster, &r.Start, &r.End, &r.Status, &r.Service, &r.Resource}
		for i := range r.Attrs {
			dests = append(dests, &r.Attrs[i])
		}
		if err := rows.Scan(dests...); err != nil {
			return nil, fmt.Errorf("search traces of %s: %w", f.path, err)
		}
		out[r.ID] = r
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("search traces of %s: %w", f.path, err)
	}
	return out, nil
}

// Item is the trace list's description of r, an operation span of op.
func (r *Row) Item(op string) model.TraceItem {
	return model.TraceItem{
		TraceID:     hex.EncodeToString(r.TraceID),
		Start:       time.Unix(0, r.Start),
		Op:          op,
		Name:        r.Name,
		Topic:       r.Topic.String,
		Broadcaster: r.Broadcaster.String,
		DurationMs:  float64(r.End-r.Start) / 1e6,
		Status:      StatusName(schema.CodeOfStatus(r.Status)),
		Service:     r.Service.String,
	}
}

// StatusName names a span's status as the API does: "ok", "error" or
// "unset".
func StatusName(c codes.Code) string {
	switch c {
	case codes.Ok:
		return "ok"
	case codes.Error:
		return "error"
	}
	return "unset"
}

// Sieve is the queries of a search's row terms in one file: a name, and
// attribute values judged loosely as substrings of the stored attributes
// (viewer/internal/search says which).
type Sieve struct {
	// byRange selects the ids of the operation spans of ids ?1 to ?2
	// that pass the terms; byList those of the ids in the JSON array
	// ?1. args are the terms' arguments, which follow.
	byRange, byList string
	args            []any
}

// NewSieve returns the sieve of the spans named name ("" for any) whose
// stored attributes hold, for each element of needles, one of its
// strings; nil when there is no such term.
func NewSieve(name string, needles [][]string) *Sieve {
	if name == "" && len(needles) == 0 {
		return nil
	}
	var args []any
	if name != "" {
		args = append(args, name)
	}
	for _, ns := range needles {
		for _, n := range ns {
			args = append(args, n)
		}
	}
	// terms writes the terms, their parameters numbered from first.
	terms := func(first int) string {
		var b strings.Builder
		p := first
		if name != "" {
			fmt.Fprintf(&b, " AND name = ?%d", p)
			p++
		}
		for _, ns := range needles {
			b.WriteString(" AND (")
			for j := range ns {
				if j > 0 {
					b.WriteString(" OR ")
				}
				fmt.Fprintf(&b, "instr(attributes, ?%d) > 0", p)
				p++
			}
			b.WriteString(")")
		}
		return b.String()
	}
	return &Sieve{
		byRange: "SELECT id FROM spans WHERE id BETWEEN ?1 AND ?2 AND op IS NOT NULL" + terms(3),
		byList:  "SELECT id FROM spans WHERE id IN (SELECT value FROM json_each(?1))" + terms(2),
		args:    args,
	}
}

// A sieve query reads a chunk's candidates by range or by list, whichever
// costs less: the range reads every span between its first and last
// candidates in page order, about 90 ns a span; the list looks each
// candidate up, about 530 ns. So a chunk's candidates are read by list
// when they are fewer than a sixth of the spans they span (operations
// are a fifth of a pub/sub application's spans: all of a chunk's
// operations are read by range).
const (
	sieveScanCost   = 1
	sieveLookupCost = 6
)

// Sieve returns the ids of ids, in id order, whose rows pass sv. Each
// chunk's ids (chunkShift) are one query, one short read transaction, on
// as many goroutines as there are CPUs (RunTasks).
func (f *File) Sieve(ctx context.Context, sv *Sieve, ids []int64) ([]int64, error) {
	ids = slices.Clone(ids)
	slices.Sort(ids)
	var parts []int // ids[parts[i]:parts[i+1]] is a chunk's
	for i, id := range ids {
		if i == 0 || id>>chunkShift != ids[i-1]>>chunkShift {
			parts = append(parts, i)
		}
	}
	parts = append(parts, len(ids))
	passed := make([][]int64, len(parts)-1)
	errs := make([]error, len(parts)-1)
	RunTasks(len(passed), func(i int) {
		passed[i], errs[i] = f.sieveChunk(ctx, sv, ids[parts[i]:parts[i+1]])
	})
	for _, err := range errs {
		if err != nil {
			return nil, fmt.Errorf("search traces of %s: %w", f.path, err)
		}
	}
	keep := slices.Concat(passed...)
	slices.Sort(keep)
	return keep, nil
}

// sieveChunk returns the ids of ids, a chunk's in order, whose rows pass
// sv.
func (f *File) sieveChunk(ctx context.Context, sv *Sieve, ids []int64) ([]int64, error) {
	first, last := ids[0], ids[len(ids)-1]
	if int64(len(ids))*sieveLookupCost >= (last-first+1)*sieveScanCost {
		return f.sieveQuery(ctx, sv, sv.byRange, first, last)
	}
	return f.sieveQuery(ctx, sv, sv.byList, schema.IDList(ids))
}

// SieveWindow returns the ids of the operation spans of f's window in
// flt whose rows pass sv, in id order, read by range a chunk at a time;
// ok is false, and nothing read, when that costs more than sieving
// lookups candidates by list.
func (f *File) SieveWindow(ctx context.Context, sv *Sieve, flt *Filter, lookups int64) (ids []int64, ok bool, err error) {
	ranges, spans, err := f.WindowRanges(ctx, flt)
	if err != nil || spans*sieveScanCost > lookups*sieveLookupCost {
		return nil, false, err
	}
	passed := make([][]int64, len(ranges))
	errs := make([]error, len(ranges))
	RunTasks(len(ranges), func(i int) {
		passed[i], errs[i] = f.sieveQuery(ctx, sv, sv.byRange, ranges[i][0], ranges[i][1])
	})
	for _, err := range errs {
		if err != nil {
			return nil, false, fmt.Errorf("search traces of %s: %w", f.path, err)
		}
	}
	ids = slices.Concat(passed...)
	slices.Sort(ids)
	return ids, true, nil
}

// sieveQuery runs query, one of sv's, with the ids' arguments and the
// terms', and returns the ids it selects.
func (f *File) sieveQuery(ctx context.Context, sv *Sieve, query string, ids ...any) ([]int64, error) {
	rows, err := f.db.QueryContext(ctx, query, append(ids, sv.args...)...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		out = append(out, id)
	}
	return out, rows.Err()
}

// traceIDsQuery selects the trace ids of the spans whose row ids are in
// the JSON array ?1.
const traceIDsQuery = `SELECT t.trace_id FROM json_each(?1) AS j
JOIN spans AS s ON s.id = j.value
JOIN traces AS t ON t.id = s.trace`

// idsPerQuery bounds the row ids of one traceIDsQuery.
const idsPerQuery = 10_000

// TraceIDsOf adds to traces the trace ids of the spans of row ids ids.
func (f *File) TraceIDsOf(ctx context.Context, ids []int64, traces map[[16]byte]struct{}) error {
	for len(ids) > 0 {
		n := min(len(ids), idsPerQuery)
		arg, err := json.Marshal(ids[:n])
		if err != nil {
			return fmt.Errorf("count the traces of the search in %s: %w", f.path, err)
		}
		ids = ids[n:]
		rows, err := f.db.QueryContext(ctx, traceIDsQuery, string(arg))
		if err != nil {
			return fmt.Errorf("count the traces of the search in %s: %w", f.path, err)
		}
		for rows.Next() {
			var id []byte
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return fmt.Errorf("count the traces of the search in %s: %w", f.path, err)
			}
			var k [16]byte
			copy(k[:], id)
			traces[k] = struct{}{}
		}
		if err := rows.Close(); err != nil {
			return fmt.Errorf("count the traces of the search in %s: %w", f.path, err)
		}
		if err := rows.Err(); err != nil {
			return fmt.Errorf("count the traces of the search in %s: %w", f.path, err)
		}
	}
	return nil
}
