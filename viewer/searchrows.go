package viewer

import (
	"github.com/lonelytrace/lonelytrace/viewer/model"

	"context"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/lonelytrace/lonelytrace/schema"
)

// The second step of a search (searchrank.go): the rows of the
// candidates, read by id, judged on what the operation cache does not
// hold, and described as items.

// serviceNamePath is the JSON path of service.name in resources.attributes.
const serviceNamePath = `$."service.name"`

// searchFile is a search's reads of one file's rows.
type searchFile struct {
	f *file
	// query selects the candidates' rows of the ids in the JSON array
	// ?1 that have the name searched for; args are its other arguments.
	query string
	args  []any
	// attrs are the attr terms, in the order of the query's last columns.
	attrs []attrTerm
	// resources are those whose service.name is the service searched
	// for; nil when the search names none.
	resources map[int64]bool
	// sv sieves the candidates on the row terms (searchsieve.go), by
	// rule; nil without a name or attr term. rare is set once a walk
	// has sieved: the walks after it sieve at once, unless presieved,
	// when the window was sieved before its candidates were ranked and
	// passed holds the ids that passed, in order.
	sv        *sieve
	rule      sieveRule
	rare      bool
	presieved bool
	passed    []int64
}

// prepareSearch returns the reads of s in f, whose walks sieve by rule;
// nil when nothing in f can match: f lacks an attribute key or the
// service searched for.
func (f *file) prepareSearch(ctx context.Context, s *search, rule sieveRule) (*searchFile, error) {
	sf := &searchFile{f: f, attrs: s.attrs, rule: rule}
	var paths []string
	var keyIDs []int64
	for _, t := range s.attrs {
		var id int64
		err := f.db.QueryRowContext(ctx, "SELECT id FROM attribute_keys WHERE key = ?", t.key).Scan(&id)
		if errors.Is(err, sql.ErrNoRows) {
			return nil, nil
		}
		if err != nil {
			return nil, fmt.Errorf("search traces of %s: %w", f.path, err)
		}
		paths = append(paths, `$."`+strconv.FormatInt(id, 10)+`"`)
		keyIDs = append(keyIDs, id)
	}
	sf.query, sf.args = searchRowsQuery(paths, s.name)
	sf.sv = newSieve(s.name, s.attrs, keyIDs)
	if s.service != "" {
		var err error
		if sf.resources, err = f.serviceResources(ctx, s.service); err != nil || len(sf.resources) == 0 {
			return nil, err
		}
	}
	return sf, nil
}

// searchRowsQuery returns the query of the rows of the ids in the JSON
// array ?1 whose span name is name ("" for any), and its other
// arguments: a row's columns as searchRow holds them, the values of the
// attributes of JSON paths attrPaths last.
func searchRowsQuery(attrPaths []string, name string) (string, []any) {
	var b strings.Builder
	b.WriteString("SELECT s.id, (SELECT trace_id FROM traces WHERE traces.id = s.trace), s.name, s.topic, s.broadcaster, s.start_ns, s.end_ns, s.status_code, " +
		"(SELECT json_extract(r.attributes, ?2) FROM resources AS r WHERE r.id = s.resource), s.resource")
	args := []any{serviceNamePath}
	for _, p := range attrPaths {
		args = append(args, p)
		fmt.Fprintf(&b, ", s.attributes -> ?%d", len(args)+1)
	}
	b.WriteString(" FROM spans AS s WHERE s.id IN (SELECT value FROM json_each(?1))")
	if name != "" {
		args = append(args, name)
		fmt.Fprintf(&b, " AND s.name = ?%d", len(args)+1)
	}
	return b.String(), args
}

// serviceResources returns the resources of f whose service.name is
// service, a string.
func (f *file) serviceResources(ctx context.Context, service string) (map[int64]bool, error) {
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

// searchRow is one operation span as searchFile.query selects it.
type searchRow struct {
	id                 int64
	traceID            []byte
	name               string
	topic, broadcaster sql.NullString
	start, end         int64
	status             int64
	service            sql.NullString
	resource           int64
	attrs              [][]byte
}

// Batches of rows read: the first as large as the traces wanted, each
// next one as large as the traces still wanted need at the rate of the
// rows read so far, and a quarter more; from minRowBatch to maxRowBatch.
const (
	minRowBatch = 16
	maxRowBatch = 4096
)

// walk reads the rows of cands, the file's candidates in s's order,
// and returns the items of the first want traces among those that pass
// the terms of the row, each described by its first candidate that does,
// and of the traces whose candidates tie with the last of those in the
// list's order (s.tie): the candidates break such a tie by operation and
// row id, the list by trace id. ended is false when the candidates ran
// out before that. A candidate whose row retention deleted since is
// passed over. When few of the rows read pass (sf.rule), the candidates
// left are sieved first (searchsieve.go).
func (sf *searchFile) walk(ctx context.Context, s *search, cands []candidate, want int) (items []model.TraceItem, ended bool, err error) {
	if len(cands) == 0 {
		return nil, false, nil
	}
	mine := make(map[string]bool)
	var last *candidate // the want-th trace's, once found
	// tail is the last candidate as given: when the sieve has taken out
	// those after the want-th trace's, it tells whether one of them did
	// not tie with it (ties are next to each other in s's order).
	tail := cands[len(cands)-1]
	// read counts the rows read and found the traces they gave, since
	// the walk began or sieved.
	read, found := 0, 0
	sieved := false
	batch := max(want, minRowBatch)
	for len(cands) > 0 {
		if sf.sv != nil && !sieved && !sf.presieved && last == nil && len(cands) > minRowBatch &&
			(sf.rare || sf.rule.sieves(read, found, want-len(items), len(cands))) {
			if cands, err = sf.sieve(ctx, cands); err != nil {
				return nil, false, err
			}
			sieved, sf.rare = true, true
			read, found = 0, 0
			batch = min(max(want-len(items), minRowBatch), maxRowBatch)
			continue
		}
		n := min(batch, len(cands))
		if last != nil {
			// Past the want-th trace, only the candidates that tie with it.
			n = 0
			for n < min(len(cands), maxRowBatch) && s.tie(cands[n], *last) {
				n++
			}
			if n == 0 {
				return items, true, nil
			}
		}
		rows, err := sf.rows(ctx, cands[:n])
		if err != nil {
			return nil, false, fmt.Errorf("search traces of %s: %w", sf.f.path, err)
		}
		for i := range cands[:n] {
			c := &cands[i]
			if last != nil && !s.tie(*c, *last) {
				return items, true, nil
			}
			r := rows[c.id]
			if r == nil || !sf.keep(r) {
				continue
			}
			it := r.item(schema.Operations[c.op])
			if mine[it.TraceID] {
				continue
			}
			mine[it.TraceID] = true
			found++
			if items = append(items, it); len(items) == want {
				last = c
			}
		}
		cands, read = cands[n:], read+n
		if found == 0 {
			batch = 4 * read
		} else {
			batch = (want - len(items)) * read / found * 5 / 4
		}
		batch = min(max(batch, minRowBatch), maxRowBatch)
	}
	return items, last != nil && !s.tie(tail, *last), nil
}

// rows reads the rows of cands that have the name searched for, by id.
func (sf *searchFile) rows(ctx context.Context, cands []candidate) (map[int64]*searchRow, error) {
	ids := jsonIDs(len(cands), func(i int) int64 { return cands[i].id })
	args := append([]any{ids}, sf.args...)
	rows, err := sf.f.db.QueryContext(ctx, sf.query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := make(map[int64]*searchRow, len(cands))
	for rows.Next() {
		r := &searchRow{attrs: make([][]byte, len(sf.attrs))}
		dests := []any{&r.id, &r.traceID, &r.name, &r.topic, &r.broadcaster, &r.start, &r.end, &r.status, &r.service, &r.resource}
		for i := range r.attrs {
			dests = append(dests, &r.attrs[i])
		}
		if err := rows.Scan(dests...); err != nil {
			return nil, err
		}
		out[r.id] = r
	}
	return out, rows.Err()
}

// jsonIDs returns the JSON array of the n ids id(0), …, id(n-1).
func jsonIDs(n int, id func(i int) int64) string {
	b := make([]byte, 0, 8*n+2)
	b = append(b, '[')
	for i := range n {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendInt(b, id(i), 10)
	}
	return string(append(b, ']'))
}

// keep judges the terms of the row that SQL left to Go: the attr values
// and the resource's service.name.
func (sf *searchFile) keep(r *searchRow) bool {
	if sf.resources != nil && !sf.resources[r.resource] {
		return false
	}
	for i, a := range sf.attrs {
		if !attrMatches(r.attrs[i], a.value) {
			return false
		}
	}
	return true
}

// item is the list's description of r, an operation span of op.
func (r *searchRow) item(op string) model.TraceItem {
	return model.TraceItem{
		TraceID:     hex.EncodeToString(r.traceID),
		Start:       time.Unix(0, r.start),
		Op:          op,
		Name:        r.name,
		Topic:       r.topic.String,
		Broadcaster: r.broadcaster.String,
		DurationMs:  nsToMs(r.end - r.start),
		Status:      statusName(schema.CodeOfStatus(r.status)),
		Service:     r.service.String,
	}
}
