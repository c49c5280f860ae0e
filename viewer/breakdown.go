package viewer

import (
	"cmp"
	"context"
	"slices"
	"strconv"
	"time"

	"github.com/lonelytrace/lonelytrace/schema"
	"github.com/lonelytrace/lonelytrace/viewer/internal/opstore"
	"github.com/lonelytrace/lonelytrace/viewer/internal/quantiles"
	"github.com/lonelytrace/lonelytrace/viewer/model"
)

// breakdownAcc gathers the operations of one kind by one fact.
type breakdownAcc struct {
	by   string
	op   uint8
	rows map[string]*groupAcc
	ex   *quantiles.Exactness
}

func newBreakdownAcc(by string, op int, ex *quantiles.Exactness) *breakdownAcc {
	return &breakdownAcc{by: by, op: uint8(op), rows: make(map[string]*groupAcc), ex: ex}
}

// visitor is the breakdownAcc's opstore.Visitor: it finds each span's
// row once per string of the file, not once per span.
func (a *breakdownAcc) visitor(strs []string) func(*opstore.Span) {
	row := func(key string) *groupAcc {
		g := a.rows[key]
		if g == nil {
			g = newGroupAcc(a.ex)
			a.rows[key] = g
		}
		return g
	}
	if a.by == "subscribers" {
		bySubs := make(map[int64]*groupAcc)
		return func(o *opstore.Span) {
			if o.Op != a.op {
				return
			}
			g := bySubs[o.Subs]
			if g == nil {
				key := ""
				if o.Subs >= 0 {
					key = strconv.FormatInt(o.Subs, 10)
				}
				g = row(key)
				bySubs[o.Subs] = g
			}
			g.add(o)
		}
	}
	field := func(o *opstore.Span) uint32 { return o.Broadcaster }
	switch a.by {
	case "topic":
		field = func(o *opstore.Span) uint32 { return o.Topic }
	case "service":
		field = func(o *opstore.Span) uint32 { return o.Service }
	}
	byID := make([]*groupAcc, len(strs))
	return func(o *opstore.Span) {
		if o.Op != a.op {
			return
		}
		id := field(o)
		g := byID[id]
		if g == nil {
			g = row(strs[id])
			byID[id] = g
		}
		g.add(o)
	}
}

// breakdown returns the rows gathered, the largest first, then by key.
func (a *breakdownAcc) breakdown() *model.Breakdown {
	b := &model.Breakdown{By: a.by, Op: schema.Operations[a.op], Rows: make([]model.BreakdownRow, 0, len(a.rows))}
	for key, g := range a.rows {
		b.Rows = append(b.Rows, model.BreakdownRow{Key: key, Count: g.count, Errors: g.errors, Bytes: g.bytes, DurationMs: g.percentiles(), Approximate: g.approximate()})
	}
	slices.SortFunc(b.Rows, func(x, y model.BreakdownRow) int {
		return cmp.Or(cmp.Compare(y.Count, x.Count), cmp.Compare(x.Key, y.Key))
	})
	return b
}

// Breakdown computes the breakdown of q's operation (notify when none)
// by q's fact over its window and filters (the answer of
// /api/breakdown). A bad query is a *ParseError.
func (v *Viewer) Breakdown(ctx context.Context, q BreakdownQuery) (*model.Breakdown, error) {
	if err := q.Query.check(v.loc); err != nil {
		return nil, err
	}
	op, err := q.check()
	if err != nil {
		return nil, err
	}
	w, err := v.plan(ctx, newFilter(q.Query), q.By == "topic")
	if err != nil {
		return nil, err
	}
	acc := newBreakdownAcc(q.By, op, w.ex)
	if err := w.visit(ctx, acc.visitor); err != nil {
		return nil, err
	}
	b := acc.breakdown()
	b.Coverage = v.jaeger.coverage(time.Unix(0, w.flt.Since))
	return b, nil
}
