package exporter

import (
	"context"
	"database/sql/driver"
	"fmt"
	"strings"

	"github.com/lonelytrace/lonelytrace/schema"
)

// rowsPerInsert is how many spans one multi-row INSERT carries. One
// statement per 32 rows amortises the per-statement cost of the driver
// while staying far below SQLite's variable limit.
const rowsPerInsert = 32

// Column groups. Most spans have no trace state, status message, events,
// links or dropped counts (groupExtra), and most are not pub/sub
// operations (groupPubSub): a span without a group's values is written by
// a statement that has the group's defaults as literals in its SQL, so
// that SQLite is not handed a run of NULLs and zeros one bind at a time.
const (
	groupAlways = 0
	groupExtra  = 1 << 0
	groupPubSub = 1 << 1
	groupAll    = groupExtra | groupPubSub
)

// spanColumns gives each column of schema.SpanColumns, at its position,
// its group and the literal written when the group is absent; the columns
// not listed are groupAlways.
var spanColumns = [schema.NumSpanColumns]struct {
	group  int
	absent string
}{
	schema.ColTraceState:        {groupExtra, "NULL"},
	schema.ColStatusMessage:     {groupExtra, "NULL"},
	schema.ColEvents:            {groupExtra, "NULL"},
	schema.ColLinks:             {groupExtra, "NULL"},
	schema.ColDroppedAttributes: {groupExtra, "0"},
	schema.ColDroppedEvents:     {groupExtra, "0"},
	schema.ColDroppedLinks:      {groupExtra, "0"},
	schema.ColOp:                {groupPubSub, "NULL"},
	schema.ColTopic:             {groupPubSub, "NULL"},
	schema.ColGlob:              {groupPubSub, "NULL"},
	schema.ColBroadcaster:       {groupPubSub, "NULL"},
	schema.ColBodySize:          {groupPubSub, "NULL"},
	schema.ColSubscribers:       {groupPubSub, "NULL"},
	schema.ColStateful:          {groupPubSub, "NULL"},
}

// spanRow holds one span's values, each at its schema.SpanColumns
// position.
type spanRow [schema.NumSpanColumns]driver.Value

// spanInsert writes the spans of one combination of column groups: rows
// are gathered in args and written rowsPerInsert at a time.
type spanInsert struct {
	cols      []int // positions in schema.SpanColumns of the bound columns
	many, one driver.Stmt
	args      []driver.NamedValue // rowsPerInsert rows of len(cols) values
	oneArgs   []driver.NamedValue // one row, for the rows left at the end
	rows      int
}

// spanInsertSQL is the INSERT of rows spans of the column groups groups.
// OR FAIL, rather than the default ABORT, keeps SQLite from journalling
// the statement's pages to undo it alone: on any error the writer rolls
// the whole transaction back.
func spanInsertSQL(groups, rows int) (sql string, cols []int) {
	var names, values []string
	for i, c := range spanColumns {
		names = append(names, schema.SpanColumns[i])
		if c.group == groupAlways || groups&c.group != 0 {
			values = append(values, "?")
			cols = append(cols, i)
		} else {
			values = append(values, c.absent)
		}
	}
	one := "(" + strings.Join(values, ", ") + ")"
	var b strings.Builder
	b.WriteString("INSERT OR FAIL INTO " + schema.SpansTable + " (" + strings.Join(names, ", ") + ") VALUES ")
	for i := 0; i < rows; i++ {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(one)
	}
	return b.String(), cols
}

// namedValues returns n arguments numbered from 1, as the driver expects
// them.
func namedValues(n int) []driver.NamedValue {
	a := make([]driver.NamedValue, n)
	for i := range a {
		a[i].Ordinal = i + 1
	}
	return a
}

// prepareInserts prepares the span and trace inserts on the driver's own
// connection. They run without database/sql, whose argument conversion
// and per-call copies cost as much as SQLite's binding of a 28-column row;
// every use is inside conn.Raw, on the writer goroutine.
func (w *writer) prepareInserts(ctx context.Context) error {
	return w.conn.Raw(func(dc any) error {
		prep, ok := dc.(driver.ConnPrepareContext)
		if !ok {
			return fmt.Errorf("driver %T cannot prepare with a context", dc)
		}
		for g := range w.inserts {
			ins := &w.inserts[g]
			manySQL, cols := spanInsertSQL(g, rowsPerInsert)
			oneSQL, _ := spanInsertSQL(g, 1)
			var err error
			if ins.many, err = prep.PrepareContext(ctx, manySQL); err != nil {
				return err
			}
			if ins.one, err = prep.PrepareContext(ctx, oneSQL); err != nil {
				return err
			}
			ins.cols = cols
			ins.args = namedValues(rowsPerInsert * len(cols))
			ins.oneArgs = namedValues(len(cols))
		}
		var err error
		if w.traceInsertOne, err = prep.PrepareContext(ctx, traceInsertSQL(1)); err != nil {
			return err
		}
		if w.traceInsertMany, err = prep.PrepareContext(ctx, traceInsertSQL(tracesPerInsert)); err != nil {
			return err
		}
		w.traceArgsOne, w.traceArgsMany = namedValues(1+1), namedValues(1+tracesPerInsert)
		if w.traceKnown, err = prep.PrepareContext(ctx, traceKnownSQL); err != nil {
			return err
		}
		w.knownArgs, w.traceRow = namedValues(1+tracesPerInsert), make([]driver.Value, 2)
		return nil
	})
}

// closeInserts closes the statements prepareInserts made.
func (w *writer) closeInserts() {
	_ = w.conn.Raw(func(any) error {
		for g := range w.inserts {
			ins := &w.inserts[g]
			for _, s := range []driver.Stmt{ins.many, ins.one} {
				if s != nil {
					s.Close()
				}
			}
			ins.many, ins.one = nil, nil
		}
		for _, s := range []driver.Stmt{w.traceInsertOne, w.traceInsertMany, w.traceKnown} {
			if s != nil {
				s.Close()
			}
		}
		w.traceInsertOne, w.traceInsertMany, w.traceKnown = nil, nil, nil
		return nil
	})
}

// bindRow binds row, whose column groups are groups, as the next row of
// its statement, and writes the statement's rows when there are
// rowsPerInsert.
func (w *writer) bindRow(ctx context.Context, row *spanRow, groups int) error {
	ins := &w.inserts[groups]
	args := ins.args[ins.rows*len(ins.cols):]
	for k, c := range ins.cols {
		args[k].Value = row[c]
	}
	ins.rows++
	if ins.rows < rowsPerInsert {
		return nil
	}
	ins.rows = 0
	return w.execRaw(ctx, ins.many, ins.args)
}

// flushRows writes the rows left in every statement one at a time. The
// transaction's clearRows then drops the references the arguments hold.
func (w *writer) flushRows(ctx context.Context) error {
	for g := range w.inserts {
		ins := &w.inserts[g]
		n := len(ins.cols)
		for i := 0; i < ins.rows; i++ {
			for k := range ins.oneArgs {
				ins.oneArgs[k].Value = ins.args[i*n+k].Value
			}
			if err := w.execRaw(ctx, ins.one, ins.oneArgs); err != nil {
				return err
			}
		}
		ins.rows = 0
	}
	return nil
}

// detachRows copies the text of the rows bound but not yet written that
// may point into a job's arena (attributes, events, links), so that the
// job's encoded rows can be reused; and clears the row being filled.
func (w *writer) detachRows() {
	for g := range w.inserts {
		ins := &w.inserts[g]
		n := len(ins.cols)
		for k, c := range ins.cols {
			if c := schema.SpanColumn(c); c != schema.ColAttributes && c != schema.ColEvents && c != schema.ColLinks {
				continue
			}
			for i := 0; i < ins.rows; i++ {
				if s, ok := ins.args[i*n+k].Value.(string); ok {
					ins.args[i*n+k].Value = strings.Clone(s)
				}
			}
		}
	}
	clear(w.row[:])
}

// clearRows forgets the rows gathered, after a failure or once written,
// so that the arguments keep no span's strings alive.
func (w *writer) clearRows() {
	for g := range w.inserts {
		ins := &w.inserts[g]
		ins.rows = 0
		for k := range ins.args {
			ins.args[k].Value = nil
		}
		for k := range ins.oneArgs {
			ins.oneArgs[k].Value = nil
		}
	}
	// The row's text may point into a job's arena, which is reused.
	clear(w.row[:])
	w.arena = w.arena[:0]
}

func (w *writer) execRaw(ctx context.Context, s driver.Stmt, args []driver.NamedValue) error {
	err := w.conn.Raw(func(any) error {
		_, err := s.(driver.StmtExecContext).ExecContext(ctx, args)
		return err
	})
	if err != nil {
		return fmt.Errorf("insert spans: %w", err)
	}
	return nil
}
