package viewer

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"math/big"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/otel/attribute"

	"github.com/lonelytrace/lonelytrace/schema"
)

// The search parameters of the trace list (docs/design.md#search), on top
// of the window and filters that every query shares. They narrow the
// trace list only: the aggregates of the page stay those of the window
// and filters, so that a door's count and its list tell the same story.

// Sort orders of the trace list.
const (
	SortNewest  = "newest"
	SortSlowest = "slowest"
)

// statusCodeError is the status_code of a span whose status is Error, as
// the file stores OTLP's codes (schema/README.md).
const statusCodeError = 2

// maxAttrTerms bounds the attr parameters of one search.
const maxAttrTerms = 8

// maxSearchMs bounds min_ms and max_ms: durations are int64 nanoseconds.
const maxSearchMs = 9_000_000_000_000

// search is the parsed search parameters; the zero value searches all.
type search struct {
	op, service, name string
	// status is "", "error" or "ok" (not Error).
	status string
	// minNs and maxNs bound the duration end−start, in ns: kept when
	// minNs <= d < maxNs; -1 means no bound.
	minNs, maxNs int64
	attrs        []attrTerm
	sort         string
	// raw is the parameters as given, to carry them along in links.
	raw url.Values
}

// attrTerm is one attr=key=value: the span has the attribute key, and its
// value's string form (attrString) is value.
type attrTerm struct{ key, value string }

// searchParams are the names parseSearch reads.
var searchParams = []string{"op", "service", "status", "min_ms", "max_ms", "attr", "name", "sort"}

// parseSearch reads the search parameters of params. A bad value is a
// *ParseError that says what was expected.
func parseSearch(params url.Values) (search, error) {
	s := search{minNs: -1, maxNs: -1, sort: SortNewest, raw: url.Values{}}
	one := func(name string) (string, error) {
		vs := params[name]
		if len(vs) > 1 {
			return "", &ParseError{Param: name, Value: clip(strings.Join(vs, ",")), Want: "the parameter at most once"}
		}
		if len(vs) == 0 {
			return "", nil
		}
		if len(vs[0]) > maxFilterLen {
			return "", &ParseError{Param: name, Value: clip(vs[0]), Want: fmt.Sprintf("at most %d bytes", maxFilterLen)}
		}
		if vs[0] != "" {
			s.raw.Set(name, vs[0])
		}
		return vs[0], nil
	}
	var err error
	if s.op, err = one("op"); err != nil {
		return s, err
	}
	if _, known := schema.OpIndex(s.op); s.op != "" && !known {
		return s, &ParseError{Param: "op", Value: clip(s.op), Want: "one of " + strings.Join(schema.Operations[:], ", ")}
	}
	if s.service, err = one("service"); err != nil {
		return s, err
	}
	if s.name, err = one("name"); err != nil {
		return s, err
	}
	if s.status, err = one("status"); err != nil {
		return s, err
	}
	if s.status != "" && s.status != "error" && s.status != "ok" {
		return s, &ParseError{Param: "status", Value: clip(s.status), Want: `"error" or "ok" (any status but Error)`}
	}
	for _, b := range []struct {
		name string
		dst  *int64
	}{{"min_ms", &s.minNs}, {"max_ms", &s.maxNs}} {
		v, err := one(b.name)
		if err != nil {
			return s, err
		}
		if v == "" {
			continue
		}
		if *b.dst, err = parseMsBound(b.name, v); err != nil {
			return s, err
		}
	}
	sort, err := one("sort")
	if err != nil {
		return s, err
	}
	switch sort {
	case "", SortNewest:
	case SortSlowest:
		s.sort = SortSlowest
	default:
		return s, &ParseError{Param: "sort", Value: clip(sort), Want: `"newest" or "slowest"`}
	}
	attrs := params["attr"]
	if len(attrs) > maxAttrTerms {
		return s, &ParseError{Param: "attr", Value: clip(strings.Join(attrs, ",")), Want: fmt.Sprintf("at most %d attr parameters", maxAttrTerms)}
	}
	for _, a := range attrs {
		if a == "" {
			continue
		}
		key, value, ok := strings.Cut(a, "=")
		if !ok || key == "" || len(a) > maxFilterLen {
			return s, &ParseError{Param: "attr", Value: clip(a), Want: fmt.Sprintf("key=value, a non-empty key, at most %d bytes", maxFilterLen)}
		}
		s.attrs = append(s.attrs, attrTerm{key: key, value: value})
		s.raw.Add("attr", a)
	}
	return s, nil
}

// parseMsBound reads a duration bound in milliseconds, a decimal number
// from 0, and returns it in nanoseconds rounded up: a duration d (whole
// ns) is at least x ms exactly when d >= ceil(x·10^6), and below x ms
// exactly when d < ceil(x·10^6). The decimal is read exactly, so that a
// percentile the page shows, followed as min_ms, keeps the operation it
// was computed from.
func parseMsBound(name, v string) (int64, error) {
	bad := &ParseError{Param: name, Value: clip(v), Want: fmt.Sprintf("a number of milliseconds from 0 to %d, such as 12.5", int64(maxSearchMs))}
	if len(v) > 40 || strings.ContainsAny(v, "eE/") {
		return 0, bad
	}
	r, ok := new(big.Rat).SetString(v)
	if !ok || r.Sign() < 0 || r.Cmp(new(big.Rat).SetInt64(maxSearchMs)) > 0 {
		return 0, bad
	}
	r.Mul(r, new(big.Rat).SetInt64(1e6))
	q, m := new(big.Int).QuoRem(r.Num(), r.Denom(), new(big.Int))
	if m.Sign() > 0 {
		q.Add(q, big.NewInt(1))
	}
	return q.Int64(), nil
}

// values returns the parameters that reproduce s.
func (s search) values() url.Values {
	out := url.Values{}
	for k, vs := range s.raw {
		out[k] = slices.Clone(vs)
	}
	return out
}

// durationOK is the Go form of min_ms and max_ms.
func (s *search) durationOK(d int64) bool {
	return (s.minNs < 0 || d >= s.minNs) && (s.maxNs < 0 || d < s.maxNs)
}

// ops returns the operations to search.
func (s *search) ops() []string {
	if s.op != "" {
		return []string{s.op}
	}
	return schema.Operations[:]
}

// attrString is the string form of an attribute value that attr compares:
// a string as it is; an int in decimal; a float as Go's shortest
// representation that reads back the same (strconv 'g': 0.5, 12, 1e+21,
// NaN, +Inf); a bool as true or false; a slice of one of those types as a
// JSON array of its elements (["a","b"], [1,2], [0.5], [true,false]). Any
// other value (bytes, maps, mixed slices) has no string form and matches
// no attr.
func attrString(v attribute.Value) (string, bool) {
	switch v.Type() {
	case attribute.STRING:
		return v.AsString(), true
	case attribute.INT64:
		return strconv.FormatInt(v.AsInt64(), 10), true
	case attribute.FLOAT64:
		return formatFloat(v.AsFloat64()), true
	case attribute.BOOL:
		return strconv.FormatBool(v.AsBool()), true
	case attribute.STRINGSLICE:
		var b []byte
		for i, e := range v.AsStringSlice() {
			b = append(b, ',')
			if i == 0 {
				b = b[:0]
			}
			b = schema.AppendJSONString(b, e)
		}
		return "[" + string(b) + "]", true
	case attribute.INT64SLICE:
		return joinSlice(v.AsInt64Slice(), func(n int64) string { return strconv.FormatInt(n, 10) }), true
	case attribute.FLOAT64SLICE:
		return joinSlice(v.AsFloat64Slice(), formatFloat), true
	case attribute.BOOLSLICE:
		return joinSlice(v.AsBoolSlice(), strconv.FormatBool), true
	}
	return "", false
}

func formatFloat(f float64) string {
	if math.IsInf(f, 1) {
		return "+Inf"
	}
	return strconv.FormatFloat(f, 'g', -1, 64)
}

func joinSlice[T any](xs []T, f func(T) string) string {
	parts := make([]string, len(xs))
	for i, x := range xs {
		parts[i] = f(x)
	}
	return "[" + strings.Join(parts, ",") + "]"
}

// attrMatches reports whether the stored JSON form of one attribute
// value (as `attributes -> '$."id"'` selects it) has the string form
// want.
func attrMatches(stored []byte, want string) bool {
	if stored == nil {
		return false
	}
	kvs, err := schema.DecodeAttributes(append(append([]byte(`{"k":`), stored...), '}'), nil)
	if err != nil || len(kvs) != 1 {
		return false
	}
	got, ok := attrString(kvs[0].Value)
	return ok && got == want
}

// compare orders trace items as the list shows them: newest first, or
// slowest first (then newest); the trace id breaks ties.
func (s *search) compare(a, b TraceItem) int {
	if s.sort == SortSlowest {
		if c := cmp.Compare(b.DurationMs, a.DurationMs); c != 0 {
			return c
		}
	}
	return cmp.Or(b.Start.Compare(a.Start), cmp.Compare(a.TraceID, b.TraceID))
}

// serviceNamePath is the JSON path of service.name in resources.attributes.
const serviceNamePath = `$."service.name"`

// searchSQL is a search's SQL over one file, built from fixed text and
// parameters only.
type searchSQL struct {
	// cols selects an item's columns from spans AS s; colArgs are the
	// attr paths it takes.
	cols    string
	colArgs []any
	// index holds the terms the operation index judges alone (operation,
	// window, duration), rest the others that SQL can judge.
	index, rest         string
	indexArgs, restArgs []any
	// keep is the Go form of what SQL cannot judge (the glob's match and
	// the attr values), on a scanned row; nil when SQL judges it all.
	keep func(r *searchRow) bool
}

// searchRow is one operation span as searchSQL.cols selects it.
type searchRow struct {
	id                       int64
	traceID                  []byte
	name                     string
	topic, glob, broadcaster sql.NullString
	start, end               int64
	status                   int64
	service                  sql.NullString
	attrs                    [][]byte
}

// newSearchSQL builds the SQL of op for flt and s; attrPaths are the JSON
// paths, in the file's attributes column, of s.attrs' keys.
func newSearchSQL(op string, flt *filter, s *search, attrPaths []string) *searchSQL {
	q := &searchSQL{}
	q.cols = "s.id, (SELECT trace_id FROM traces WHERE traces.id = s.trace), s.name, s.topic, s.glob, s.broadcaster, s.start_ns, s.end_ns, s.status_code, " +
		"(SELECT json_extract(r.attributes, ?) FROM resources AS r WHERE r.id = s.resource)"
	q.colArgs = []any{serviceNamePath}
	for _, p := range attrPaths {
		q.cols += ", s.attributes -> ?"
		q.colArgs = append(q.colArgs, p)
	}
	var ix, rest strings.Builder
	ix.WriteString("s.op = ? AND s.start_ns >= ? AND s.start_ns < ?")
	q.indexArgs = []any{op, flt.since, flt.until}
	if s.minNs >= 0 {
		ix.WriteString(" AND s.end_ns - s.start_ns >= ?")
		q.indexArgs = append(q.indexArgs, s.minNs)
	}
	if s.maxNs >= 0 {
		ix.WriteString(" AND s.end_ns - s.start_ns < ?")
		q.indexArgs = append(q.indexArgs, s.maxNs)
	}
	and := func(term string, args ...any) {
		if rest.Len() > 0 {
			rest.WriteString(" AND ")
		}
		rest.WriteString(term)
		q.restArgs = append(q.restArgs, args...)
	}
	if flt.broadcaster != "" {
		and("s.broadcaster = ?", flt.broadcaster)
	}
	if flt.topic != "" {
		and("s.topic = ?", flt.topic)
	}
	if s.name != "" {
		and("s.name = ?", s.name)
	}
	switch s.status {
	case "error":
		and("s.status_code = ?", statusCodeError)
	case "ok":
		and("s.status_code != ?", statusCodeError)
	}
	if s.service != "" {
		and("s.resource IN (SELECT r.id FROM resources AS r WHERE json_extract(r.attributes, ?) = ?)", serviceNamePath, s.service)
	}
	for _, p := range attrPaths {
		and("s.attributes -> ? IS NOT NULL", p)
	}
	q.index, q.rest = ix.String(), rest.String()
	globOK := flt.rowTest()
	if globOK != nil || len(s.attrs) > 0 {
		q.keep = func(r *searchRow) bool {
			if globOK != nil && !globOK(r.topic.String, r.glob.String) {
				return false
			}
			for i, a := range s.attrs {
				if !attrMatches(r.attrs[i], a.value) {
					return false
				}
			}
			return true
		}
	}
	return q
}

// where is the whole WHERE clause and its arguments.
func (q *searchSQL) where() (string, []any) {
	if q.rest == "" {
		return q.index, q.indexArgs
	}
	return q.index + " AND " + q.rest, append(slices.Clone(q.indexArgs), q.restArgs...)
}

// newestQuery walks the operation index from the window's end: the rows
// come in the list's order, so the walk stops after the traces it needs.
func (q *searchSQL) newestQuery() (string, []any) {
	where, args := q.where()
	return "SELECT " + q.cols + " FROM spans AS s INDEXED BY spans_by_op WHERE " + where + " ORDER BY s.start_ns DESC",
		append(slices.Clone(q.colArgs), args...)
}

// slowestQuery picks the limit slowest operations of the window by the
// operation index alone (it holds start and end, so no table row is read
// to rank them), then judges the other terms on those rows only: ok is
// whether a row passes them. A caller that finds too few asks again with
// a larger limit.
func (q *searchSQL) slowestQuery(limit int) (string, []any) {
	ok := "1"
	if q.rest != "" {
		ok = "coalesce(" + q.rest + ", 0)"
	}
	// Parameters are numbered in the order of the text: ok's first.
	args := slices.Clone(q.restArgs)
	args = append(args, q.indexArgs...)
	args = append(args, limit)
	return "SELECT c.id, " + ok + " FROM (SELECT s.id AS id, s.end_ns - s.start_ns AS d FROM spans AS s INDEXED BY spans_by_op WHERE " + q.index +
		" ORDER BY d DESC, s.id LIMIT ?) AS c JOIN spans AS s ON s.id = c.id ORDER BY c.d DESC, c.id", args
}

// rowQuery selects one row's columns by id.
func (q *searchSQL) rowQuery() string { return "SELECT " + q.cols + " FROM spans AS s WHERE s.id = ?" }

func (q *searchSQL) scan(row interface{ Scan(...any) error }, r *searchRow) error {
	r.attrs = r.attrs[:0]
	dests := []any{&r.id, &r.traceID, &r.name, &r.topic, &r.glob, &r.broadcaster, &r.start, &r.end, &r.status, &r.service}
	for range len(q.colArgs) - 1 {
		r.attrs = append(r.attrs, nil)
	}
	for i := range r.attrs {
		dests = append(dests, &r.attrs[i])
	}
	return row.Scan(dests...)
}

// searchTraces adds to best the first want traces of f, in s's order,
// that have an operation matching flt and s; each is described by its
// first such operation, and replaces the one in best if it ranks better.
func (f *file) searchTraces(ctx context.Context, flt *filter, s *search, want int, best map[string]TraceItem) error {
	paths, found, err := f.attrPaths(ctx, s.attrs)
	if err != nil || !found {
		return err
	}
	for _, op := range s.ops() {
		q := newSearchSQL(op, flt, s, paths)
		mine := make(map[string]bool)
		add := func(r *searchRow) bool {
			if q.keep != nil && !q.keep(r) {
				return true
			}
			it := r.item(op)
			if mine[it.TraceID] {
				return true
			}
			mine[it.TraceID] = true
			if old, ok := best[it.TraceID]; !ok || s.compare(it, old) < 0 {
				best[it.TraceID] = it
			}
			return len(mine) < want
		}
		if s.sort == SortSlowest {
			err = f.slowest(ctx, q, want, add)
		} else {
			err = f.newest(ctx, q, add)
		}
		if err != nil {
			return fmt.Errorf("search traces of %s: %w", f.path, err)
		}
	}
	return nil
}

// attrPaths returns the JSON paths of keys in f's attributes column;
// found is false when f lacks one of the keys, so that nothing in it
// matches.
func (f *file) attrPaths(ctx context.Context, terms []attrTerm) (paths []string, found bool, err error) {
	for _, t := range terms {
		var id int64
		err := f.db.QueryRowContext(ctx, "SELECT id FROM attribute_keys WHERE key = ?", t.key).Scan(&id)
		if errors.Is(err, sql.ErrNoRows) {
			return nil, false, nil
		}
		if err != nil {
			return nil, false, fmt.Errorf("search traces of %s: %w", f.path, err)
		}
		paths = append(paths, `$."`+strconv.FormatInt(id, 10)+`"`)
	}
	return paths, true, nil
}

// newest streams q's rows newest first to add until it returns false.
func (f *file) newest(ctx context.Context, q *searchSQL, add func(*searchRow) bool) error {
	query, args := q.newestQuery()
	rows, err := f.db.QueryContext(ctx, query, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	var r searchRow
	for rows.Next() {
		if err := q.scan(rows, &r); err != nil {
			return err
		}
		if !add(&r) {
			break
		}
	}
	return rows.Err()
}

// slowest hands q's rows slowest first to add until it returns false:
// it ranks the slowest 16·want operations, reads those that pass, and
// ranks 16 times as many when they were too few.
func (f *file) slowest(ctx context.Context, q *searchSQL, want int, add func(*searchRow) bool) error {
	conn, err := f.db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	rowStmt, err := conn.PrepareContext(ctx, q.rowQuery())
	if err != nil {
		return err
	}
	defer rowStmt.Close()
	done := 0 // rows of the ranking already handed over
	for limit := 16 * want; ; limit *= 16 {
		query, args := q.slowestQuery(limit)
		ids, n, err := rankedIDs(ctx, conn, query, args, done)
		if err != nil {
			return err
		}
		var r searchRow
		for _, id := range ids {
			if err := q.scan(rowStmt.QueryRowContext(ctx, append(slices.Clone(q.colArgs), id)...), &r); err != nil {
				return err
			}
			if !add(&r) {
				return nil
			}
		}
		if n < limit {
			return nil // the ranking held every operation of the window
		}
		done = n
	}
}

// rankedIDs runs a slowestQuery and returns the ids that pass, after the
// first skip rows, and how many rows there were.
func rankedIDs(ctx context.Context, conn *sql.Conn, query string, args []any, skip int) (ids []int64, n int, err error) {
	rows, err := conn.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, 0, err
	}
	defer rows.Close()
	for rows.Next() {
		var id int64
		var ok bool
		if err := rows.Scan(&id, &ok); err != nil {
			return nil, 0, err
		}
		if n >= skip && ok {
			ids = append(ids, id)
		}
		n++
	}
	return ids, n, rows.Err()
}

// item is the list's description of r, an operation span of op.
func (r *searchRow) item(op string) TraceItem {
	it := TraceItem{
		TraceID:     hex.EncodeToString(r.traceID),
		Start:       time.Unix(0, r.start),
		Op:          op,
		Name:        r.name,
		Topic:       r.topic.String,
		Broadcaster: r.broadcaster.String,
		DurationMs:  nsToMs(r.end - r.start),
		Status:      statusOfCode(r.status),
		Service:     r.service.String,
	}
	return it
}

// statusOfCode names a stored status_code as the API does.
func statusOfCode(c int64) string {
	switch c {
	case 1:
		return "ok"
	case statusCodeError:
		return "error"
	}
	return "unset"
}
