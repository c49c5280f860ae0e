package exporter

import (
	"fmt"
	"strings"

	"github.com/lonelytrace/lonelytrace/internal/sqlitec"
	"github.com/lonelytrace/lonelytrace/schema"
)

// rowsPerInsert is how many spans one multi-row INSERT carries. One
// statement per 32 rows amortises the per-statement cost of the C API
// calls and of SQLite's statement while staying far below its variable
// limit.
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

// spanInsert writes the spans of one combination of column groups: their
// values are gathered in vals and written rowsPerInsert rows at a time.
type spanInsert struct {
	cols      []schema.SpanColumn // the bound columns, in order
	many, one *sqlitec.Stmt
	vals      *sqlitec.Values // the rows gathered, len(cols) values each
	rows      int
}

// spanInsertSQL is the INSERT of rows spans of the column groups groups.
// OR FAIL, rather than the default ABORT, keeps SQLite from journalling
// the statement's pages to undo it alone: on any error the writer rolls
// the whole transaction back.
func spanInsertSQL(groups, rows int) (sql string, cols []schema.SpanColumn) {
	var names, values []string
	for i, c := range spanColumns {
		names = append(names, schema.SpanColumns[i])
		if c.group == groupAlways || groups&c.group != 0 {
			values = append(values, "?")
			cols = append(cols, schema.SpanColumn(i))
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

// prepareInserts prepares the span and trace inserts on the writer's
// connection.
func (w *writer) prepareInserts() error {
	var err error
	for g := range w.inserts {
		ins := &w.inserts[g]
		manySQL, cols := spanInsertSQL(g, rowsPerInsert)
		oneSQL, _ := spanInsertSQL(g, 1)
		if ins.many, err = w.conn.Prepare(manySQL); err != nil {
			return err
		}
		if ins.one, err = w.conn.Prepare(oneSQL); err != nil {
			return err
		}
		ins.cols = cols
		ins.vals = w.conn.NewValues()
		ins.rows = 0
	}
	for i := range w.traceInserts {
		if w.traceInserts[i], err = w.conn.Prepare(traceInsertSQL(1 << i)); err != nil {
			return err
		}
	}
	if w.traceKnown, err = w.conn.Prepare(traceKnownSQL); err != nil {
		return err
	}
	return nil
}

// freeInserts gives back the C memory of the rows gathered; the
// connection's Close finalizes the statements.
func (w *writer) freeInserts() {
	for g := range w.inserts {
		if v := w.inserts[g].vals; v != nil {
			v.Free()
		}
		w.inserts[g].rows = 0
	}
}

// bindRow adds the row of the span of fields f, whose trace, resource and
// scope are those of ids traceRef, resID and scopeID, to the rows of its
// statement, and writes the statement's rows when there are
// rowsPerInsert. The values are copied into C memory as they are added:
// nothing of the row points into f once bindRow returns.
func (w *writer) bindRow(f *spanFields, traceRef, resID, scopeID int64) error {
	ins := &w.inserts[f.groups]
	v := ins.vals
	for _, c := range ins.cols {
		switch c {
		case schema.ColTrace:
			v.Int64(traceRef)
		case schema.ColSpanID:
			v.Blob(f.spanID[:])
		case schema.ColParentSpanID:
			if f.hasParent {
				v.Blob(f.parentID[:])
			} else {
				v.Null()
			}
		case schema.ColParentRemote:
			v.Int64(boolInt(f.parentRemote))
		case schema.ColFlags:
			v.Int64(int64(f.flags))
		case schema.ColTraceState:
			textOrNull(v, f.traceState)
		case schema.ColName:
			v.Text(f.name)
		case schema.ColKind:
			v.Int64(int64(f.kind))
		case schema.ColStartNs:
			v.Int64(f.start)
		case schema.ColEndNs:
			v.Int64(f.end)
		case schema.ColStatusCode:
			v.Int64(int64(f.status))
		case schema.ColStatusMessage:
			textOrNull(v, f.statusMessage)
		case schema.ColAttributes:
			if f.hasAttrs {
				v.Text(f.attributes)
			} else {
				v.Null()
			}
		case schema.ColEvents:
			textOrNull(v, f.events)
		case schema.ColLinks:
			textOrNull(v, f.links)
		case schema.ColDroppedAttributes:
			v.Int64(f.dropAttrs)
		case schema.ColDroppedEvents:
			v.Int64(f.dropEvents)
		case schema.ColDroppedLinks:
			v.Int64(f.dropLinks)
		case schema.ColChildCount:
			v.Int64(f.childCount)
		case schema.ColResource:
			v.Int64(resID)
		case schema.ColScope:
			v.Int64(scopeID)
		case schema.ColOp:
			textOrNull(v, f.op)
		case schema.ColTopic:
			textOrNull(v, f.topic)
		case schema.ColGlob:
			textOrNull(v, f.glob)
		case schema.ColBroadcaster:
			textOrNull(v, f.broadcaster)
		case schema.ColBodySize:
			intOrNull(v, f.bodySize)
		case schema.ColSubscribers:
			intOrNull(v, f.subscribers)
		case schema.ColStateful:
			intOrNull(v, int64(f.stateful))
		default:
			return fmt.Errorf("insert spans: no value for column %s", schema.SpanColumns[c])
		}
	}
	ins.rows++
	if ins.rows < rowsPerInsert {
		return nil
	}
	ins.rows = 0
	err := runRows(ins.many, v, 0, v.Len())
	v.Reset()
	return err
}

// textOrNull adds s, or NULL when it is empty.
func textOrNull(v *sqlitec.Values, s string) {
	if s == "" {
		v.Null()
		return
	}
	v.Text(s)
}

// intOrNull adds n, or NULL for the -1 that schema.PubSub uses for
// "absent".
func intOrNull(v *sqlitec.Values, n int64) {
	if n < 0 {
		v.Null()
		return
	}
	v.Int64(n)
}

// runRows binds n values of v, from its value from, to s and runs it.
func runRows(s *sqlitec.Stmt, v *sqlitec.Values, from, n int) error {
	if err := s.BindValues(v, from, n); err != nil {
		s.ClearBindings()
		return fmt.Errorf("insert spans: %w", err)
	}
	if err := s.Exec(); err != nil {
		return fmt.Errorf("insert spans: %w", err)
	}
	return nil
}

// flushRows writes the rows left in every statement one at a time.
func (w *writer) flushRows() error {
	for g := range w.inserts {
		ins := &w.inserts[g]
		n := len(ins.cols)
		for i := 0; i < ins.rows; i++ {
			if err := runRows(ins.one, ins.vals, i*n, n); err != nil {
				return err
			}
		}
		ins.rows = 0
		ins.vals.Reset()
	}
	return nil
}

// clearRows forgets the rows gathered, after a failure or once written.
func (w *writer) clearRows() {
	for g := range w.inserts {
		ins := &w.inserts[g]
		ins.rows = 0
		if ins.vals != nil {
			ins.vals.Reset()
		}
	}
	// The fields' text may point into a job's arena, which is reused.
	w.fields = spanFields{}
	w.arena = w.arena[:0]
}
