package search

import (
	"context"

	"github.com/lonelytrace/lonelytrace/schema"
	"github.com/lonelytrace/lonelytrace/viewer/internal/opstore"
	"github.com/lonelytrace/lonelytrace/viewer/model"
)

// The second step of a search (rank.go): the rows of the
// candidates, read by id, judged on what the operation cache does not
// hold, and described as items.

// searchFile is a search's reads of one file's rows.
type searchFile struct {
	f *opstore.File
	// rows selects the candidates' rows that have the name searched for,
	// with the values of the attr terms' attributes.
	rows *opstore.RowQuery
	// attrs are the attr terms, in the order of the rows' attributes.
	attrs []Attr
	// resources are those whose service.name is the service searched
	// for; nil when the search names none.
	resources map[int64]bool
	// sv sieves the candidates on the row terms (sieve.go), by rule; nil
	// without a name or attr term. rare is set once a walk has sieved:
	// the walks after it sieve at once, unless presieved, when the
	// window was sieved before its candidates were ranked and passed
	// holds the ids that passed, in order.
	sv        *opstore.Sieve
	rule      Rule
	rare      bool
	presieved bool
	passed    []int64
}

// prepare returns the reads of s in f, whose walks sieve by rule; nil
// when nothing in f can match: f lacks an attribute key or the service
// searched for.
func prepare(ctx context.Context, f *opstore.File, s *Terms, rule Rule) (*searchFile, error) {
	sf := &searchFile{f: f, attrs: s.Attrs, rule: rule}
	keys := make([]string, len(s.Attrs))
	for i, t := range s.Attrs {
		keys[i] = t.Key
	}
	keyIDs, ok, err := f.AttributeKeyIDs(ctx, keys)
	if err != nil || !ok {
		return nil, err
	}
	sf.rows = opstore.NewRowQuery(keyIDs, s.Name)
	sf.sv = newSieve(s.Name, s.Attrs, keyIDs)
	if s.Service != "" {
		if sf.resources, err = f.ServiceResources(ctx, s.Service); err != nil || len(sf.resources) == 0 {
			return nil, err
		}
	}
	return sf, nil
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
// left are sieved first (sieve.go).
func (sf *searchFile) walk(ctx context.Context, s *Terms, cands []candidate, want int) (items []model.TraceItem, ended bool, err error) {
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
		rows, err := sf.read(ctx, cands[:n])
		if err != nil {
			return nil, false, err
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
			it := r.Item(schema.Operations[c.op])
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

// read reads the rows of cands that have the name searched for, by id.
func (sf *searchFile) read(ctx context.Context, cands []candidate) (map[int64]*opstore.Row, error) {
	ids := make([]int64, len(cands))
	for i, c := range cands {
		ids[i] = c.id
	}
	return sf.f.Rows(ctx, sf.rows, ids)
}

// keep judges the terms of the row that SQL left to Go: the attr values
// and the resource's service.name.
func (sf *searchFile) keep(r *opstore.Row) bool {
	if sf.resources != nil && !sf.resources[r.Resource] {
		return false
	}
	for i, a := range sf.attrs {
		if !attrMatches(r.Attrs[i], a.Value) {
			return false
		}
	}
	return true
}
