package opstore

import (
	"context"
	"database/sql"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/lonelytrace/lonelytrace/exporter"
	"github.com/lonelytrace/lonelytrace/schema"
)

// writePlanFile writes a small trace file through the exporter: traces
// of a notify with receives under it, and a phase under each, with
// attributes and links, so that every table and index the queries use
// has rows.
func writePlanFile(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "plan.db")
	e, err := exporter.New(path)
	if err != nil {
		t.Fatal(err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(e))
	tracer := tp.Tracer("plan_test")
	now := time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)
	var prev trace.SpanContext
	for i := range 4 {
		start := now.Add(time.Duration(i) * time.Second)
		var opts []trace.SpanStartOption
		if prev.IsValid() {
			opts = append(opts, trace.WithLinks(trace.Link{SpanContext: prev}))
		}
		ctx, notify := tracer.Start(context.Background(), "notify", append(opts, trace.WithTimestamp(start),
			trace.WithAttributes(schema.Operation(schema.OpNotify), schema.Topic("t"), attribute.Int("k", i)))...)
		prev = notify.SpanContext()
		for j := range 50 {
			at := start.Add(time.Duration(j) * time.Millisecond)
			rctx, recv := tracer.Start(ctx, "receive", trace.WithTimestamp(at), trace.WithAttributes(schema.Operation(schema.OpReceive), schema.Topic("t")))
			_, phase := tracer.Start(rctx, "phase", trace.WithTimestamp(at))
			phase.End(trace.WithTimestamp(at.Add(time.Microsecond)))
			recv.End(trace.WithTimestamp(at.Add(time.Millisecond)))
		}
		notify.End(trace.WithTimestamp(start.Add(100 * time.Millisecond)))
	}
	if err := tp.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	return path
}

// planQuery is a query of the store's with arguments, and what its plan
// must contain.
type planQuery struct {
	name, query, want string
	args              []any
}

// TestPage_QueryPlans checks that the series' range walks the operation
// index one step each way and the totals read rows by id: neither scans
// every span.
func TestPage_QueryPlans(t *testing.T) {
	db := openPlanDB(t)
	for _, c := range []planQuery{
		{name: "series range", query: opRangeQuery, args: []any{"notify", 0, 1 << 62}, want: "spans_by_op"},
		{name: "totals' trace ids", query: traceIDsQuery, args: []any{"[1,2,3]"}, want: "SEARCH s USING INTEGER PRIMARY KEY (rowid=?)"},
	} {
		plan := explainPlan(t, db, c.name, c.query, c.args)
		all := strings.Join(plan, "\n")
		if !strings.Contains(all, c.want) {
			t.Errorf("%s: plan\n%s\nwants %q", c.name, all, c.want)
		}
		for _, p := range plan {
			// The JSON list of ids and the one row of the subqueries may be
			// scanned; a table may not.
			if strings.HasPrefix(p, "SCAN") && !strings.Contains(p, "VIRTUAL TABLE") && p != "SCAN CONSTANT ROW" {
				t.Errorf("%s: scans: %s\n%s", c.name, p, all)
			}
		}
	}
}

// TestSearch_QueryPlans checks that the search and backlink queries use
// the operation index and the batches' row id ranges, never a scan of
// every span; and so do the reads of a trace's spans that the rule of
// phases climbs.
func TestSearch_QueryPlans(t *testing.T) {
	db := openPlanDB(t)
	rows := NewRowQuery([]int64{1}, "n")
	sv := NewSieve("n", [][]string{{`"1":"1"`, `"1":1`}, {`"2":"v"`}})
	for _, c := range []planQuery{
		{name: "rows", query: rows.query, args: append([]any{"[1,2,3]"}, rows.args...), want: "SEARCH s USING INTEGER PRIMARY KEY (rowid=?)"},
		{name: "sieve by range", query: sv.byRange, args: append([]any{1, 100}, sv.args...), want: "SEARCH spans USING INTEGER PRIMARY KEY (rowid>? AND rowid<?)"},
		{name: "sieve by list", query: sv.byList, args: append([]any{"[1,2,3]"}, sv.args...), want: "SEARCH spans USING INTEGER PRIMARY KEY (rowid=?)"},
		{name: "backlinks", query: backlinkQuery, args: []any{1, 2, 3, 4, "x"}, want: "SEARCH s USING INTEGER PRIMARY KEY (rowid>? AND rowid<?)"},
		{name: "trace by row", query: traceRowQuery, args: append([]any{1}, opArgs()...), want: "SEARCH spans USING INDEX spans_by_trace (trace=?)"},
		{name: "trace by row's generations", query: traceRowQuery, args: append([]any{1}, opArgs()...), want: "SEARCH t2 USING COVERING INDEX traces_by_gen"},
		{name: "spans of a range", query: rangeQuery, args: append([]any{1, 100}, opArgs()...), want: "SEARCH spans USING INTEGER PRIMARY KEY (rowid>? AND rowid<?)"},
		{name: "trace by id", query: traceIDQuery, args: append([]any{[]byte("0123456789abcdef")}, opArgs()...), want: "SEARCH spans USING INDEX spans_by_trace (trace=?)"},
	} {
		plan := explainPlan(t, db, c.name, c.query, c.args)
		all := strings.Join(plan, "\n")
		if !strings.Contains(all, c.want) {
			t.Errorf("%s: plan\n%s\nwants %q", c.name, all, c.want)
		}
		for _, p := range plan {
			if (strings.HasPrefix(p, "SCAN s") || strings.HasPrefix(p, "SCAN spans")) && !strings.Contains(p, "INDEX") {
				t.Errorf("%s: scans every span: %s", c.name, p)
			}
		}
	}
}

// openPlanDB opens a file of writePlanFile's read-only.
func openPlanDB(t *testing.T) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+writePlanFile(t)+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// explainPlan returns the detail lines of SQLite's plan for query with
// args, on db; name says which query failed.
func explainPlan(t *testing.T, db *sql.DB, name, query string, args []any) []string {
	t.Helper()
	rows, err := db.Query("EXPLAIN QUERY PLAN "+query, args...)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	defer rows.Close()
	var plan []string
	for rows.Next() {
		var id, parent, unused int
		var detail string
		if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
			t.Fatal(err)
		}
		plan = append(plan, detail)
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return plan
}
