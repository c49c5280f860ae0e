package otlp

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/lonelytrace/lonelytrace/internal/sqlitec"
	"github.com/lonelytrace/lonelytrace/schema"
)

// traceReader reads whole traces for Export through a scan connection
// (internal/sqlitec): SQLite's C API without database/sql, whose driver
// takes the connection's mutex for every column and boxes every value.
// Reading the rows was four fifths of an export's CPU, and this cut it by
// a third. It decodes a row exactly as schema.Reader does (the same
// query, the same Span); roundtrip and export tests compare the two. Not
// safe for concurrent use.
type traceReader struct {
	path  string
	conn  *sqlitec.Conn
	stmts map[int]*sqlitec.Stmt // the span query, by its number of trace ids
	keys  map[int64]string
	// Resources and scopes decoded, each map started again when it holds
	// maxCachedRows, as schema.Reader does.
	resources map[int64]schema.Resource
	scopes    map[int64]schema.Scope
	keyStmt   *sqlitec.Stmt
	resStmt   *sqlitec.Stmt
	scopeStmt *sqlitec.Stmt
}

const maxCachedRows = 4096

// openTraceReader opens path, which schema.OpenRead has checked.
func openTraceReader(path string) (*traceReader, error) {
	conn, err := sqlitec.Open(schema.ReadOnlyURI(path), schema.DefaultBusyTimeout)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	r := &traceReader{path: path, conn: conn, stmts: map[int]*sqlitec.Stmt{}}
	for _, p := range []struct {
		stmt **sqlitec.Stmt
		sql  string
	}{
		{&r.keyStmt, "SELECT id, key FROM " + schema.AttributeKeysTable},
		{&r.resStmt, "SELECT schema_url, attributes FROM " + schema.ResourcesTable + " WHERE id = ?1"},
		{&r.scopeStmt, "SELECT name, version, schema_url, attributes FROM " + schema.ScopesTable + " WHERE id = ?1"},
	} {
		if *p.stmt, err = conn.Prepare(p.sql); err != nil {
			r.Close()
			return nil, fmt.Errorf("%s: %w", path, err)
		}
	}
	return r, nil
}

// Close closes r's statements and connection.
func (r *traceReader) Close() error {
	for _, s := range r.stmts {
		s.Close()
	}
	for _, s := range []*sqlitec.Stmt{r.keyStmt, r.resStmt, r.scopeStmt} {
		if s != nil {
			s.Close()
		}
	}
	return r.conn.Close()
}

// tracesSelect is schema.Reader's query of the spans of traces: the row
// id, then every column of schema.SpanColumns, the trace's id in place of
// its traces.id.
var tracesSelect = func() string {
	cols := make([]string, 0, 1+schema.NumSpanColumns)
	cols = append(cols, "s.id")
	for c, name := range schema.SpanColumns {
		if schema.SpanColumn(c) == schema.ColTrace {
			name = "t.trace_id"
		} else {
			name = "s." + name
		}
		cols = append(cols, name)
	}
	return "SELECT " + strings.Join(cols, ", ") + " FROM " + schema.SpansTable + " AS s JOIN " + schema.TracesTable + " AS t ON t.id = s.trace "
}()

// Traces returns every span of the traces ids in the file, in order of
// trace id, then start and row id, as schema.Reader.Traces does. The
// spans and the rows they refer to come from one snapshot.
func (r *traceReader) Traces(ids []trace.TraceID) (spans []schema.Span, err error) {
	if len(ids) == 0 {
		return nil, nil
	}
	st, ok := r.stmts[len(ids)]
	if !ok {
		st, err = r.conn.Prepare(tracesSelect + "WHERE t.trace_id IN (?" + strings.Repeat(",?", len(ids)-1) + ") ORDER BY t.trace_id, s.start_ns, s.id")
		if err != nil {
			return nil, fmt.Errorf("read spans: %w", err)
		}
		r.stmts[len(ids)] = st
	}
	if err := r.conn.Exec("BEGIN"); err != nil {
		return nil, fmt.Errorf("read spans: %w", err)
	}
	defer func() {
		// A statement left mid-run would keep the read transaction open.
		for _, s := range []*sqlitec.Stmt{st, r.keyStmt, r.resStmt, r.scopeStmt} {
			s.Reset()
		}
		if e := r.conn.Exec("COMMIT"); e != nil && err == nil {
			err = fmt.Errorf("read spans: %w", e)
		}
	}()
	args := make([]any, len(ids))
	for i := range ids {
		args[i] = ids[i][:]
	}
	if err := st.Start(args...); err != nil {
		return nil, fmt.Errorf("read spans: %w", err)
	}
	for {
		more, err := st.Next()
		if err != nil {
			return nil, fmt.Errorf("read spans: %w", err)
		}
		if !more {
			return spans, nil
		}
		s, err := r.scan(st)
		if err != nil {
			return nil, err
		}
		spans = append(spans, s)
	}
}

// scan decodes the row st is on, as schema.Reader's scan does.
func (r *traceReader) scan(st *sqlitec.Stmt) (schema.Span, error) {
	col := func(c schema.SpanColumn) int { return 1 + int(c) }
	str := func(c schema.SpanColumn) string { return string(st.Bytes(col(c))) }
	num := func(c schema.SpanColumn) int64 { return st.Int64(col(c)) }
	orNull := func(c schema.SpanColumn) int64 {
		if st.Type(col(c)) == sqlitec.Null {
			return -1
		}
		return num(c)
	}
	var s schema.Span
	s.ID = st.Int64(0)
	copy(s.TraceID[:], st.Bytes(col(schema.ColTrace)))
	copy(s.SpanID[:], st.Bytes(col(schema.ColSpanID)))
	copy(s.ParentSpanID[:], st.Bytes(col(schema.ColParentSpanID)))
	s.ParentRemote = num(schema.ColParentRemote) != 0
	flags := num(schema.ColFlags)
	s.Flags, s.OTLPFlags = trace.TraceFlags(flags), uint32(flags)
	s.TraceState = str(schema.ColTraceState)
	s.Name = str(schema.ColName)
	s.Kind = trace.SpanKind(num(schema.ColKind))
	s.Start, s.End = time.Unix(0, num(schema.ColStartNs)), time.Unix(0, num(schema.ColEndNs))
	s.StatusCode = schema.CodeOfStatus(num(schema.ColStatusCode))
	s.StatusMsg = str(schema.ColStatusMessage)
	s.DroppedAttributes, s.DroppedEvents = int(num(schema.ColDroppedAttributes)), int(num(schema.ColDroppedEvents))
	s.DroppedLinks, s.ChildCount = int(num(schema.ColDroppedLinks)), int(num(schema.ColChildCount))
	s.PubSub = schema.PubSub{Op: str(schema.ColOp), Topic: str(schema.ColTopic), Glob: str(schema.ColGlob), Broadcaster: str(schema.ColBroadcaster),
		BodySize: orNull(schema.ColBodySize), Subscribers: orNull(schema.ColSubscribers), Stateful: int8(orNull(schema.ColStateful))}

	var err error
	if b := st.Bytes(col(schema.ColAttributes)); len(b) > 0 {
		if s.Attributes, err = schema.DecodeAttributes(b, r.keyName); err != nil {
			return s, fmt.Errorf("span %d attributes: %w", s.ID, err)
		}
	}
	// schema.Reader decodes an empty text too, and fails on it; only NULL
	// is none.
	if st.Type(col(schema.ColEvents)) != sqlitec.Null {
		b := st.Bytes(col(schema.ColEvents))
		if s.Events, err = schema.DecodeEvents(b); err != nil {
			return s, fmt.Errorf("span %d events: %w", s.ID, err)
		}
	}
	if st.Type(col(schema.ColLinks)) != sqlitec.Null {
		b := st.Bytes(col(schema.ColLinks))
		if s.Links, err = schema.DecodeLinks(b); err != nil {
			return s, fmt.Errorf("span %d links: %w", s.ID, err)
		}
	}
	if s.Resource, err = r.resource(num(schema.ColResource)); err != nil {
		return s, err
	}
	if s.Scope, err = r.scope(num(schema.ColScope)); err != nil {
		return s, err
	}
	return s, nil
}

// keyName is the key of an attribute_keys id; it reloads the table once
// when it meets an id it does not know.
func (r *traceReader) keyName(id int64) (string, bool) {
	if k, ok := r.keys[id]; ok {
		return k, true
	}
	if err := r.loadKeys(); err != nil {
		return "", false
	}
	k, ok := r.keys[id]
	return k, ok
}

func (r *traceReader) loadKeys() error {
	st := r.keyStmt
	defer st.Reset()
	if err := st.Start(); err != nil {
		return fmt.Errorf("read attribute_keys: %w", err)
	}
	keys := make(map[int64]string)
	for {
		more, err := st.Next()
		if err != nil {
			return fmt.Errorf("read attribute_keys: %w", err)
		}
		if !more {
			break
		}
		keys[st.Int64(0)] = string(st.Bytes(1))
	}
	r.keys = keys
	return nil
}

// errNoRow is a row of resources or scopes that is not there.
var errNoRow = errors.New("no such row")

func (r *traceReader) resource(id int64) (schema.Resource, error) {
	if res, ok := r.resources[id]; ok {
		return res, nil
	}
	var res schema.Resource
	st := r.resStmt
	defer st.Reset()
	if err := st.Start(id); err != nil {
		return res, fmt.Errorf("read resources[%d]: %w", id, err)
	}
	switch more, err := st.Next(); {
	case err != nil:
		return res, fmt.Errorf("read resources[%d]: %w", id, err)
	case !more:
		return res, fmt.Errorf("read resources[%d]: %w", id, errNoRow)
	}
	res.SchemaURL = string(st.Bytes(0))
	var err error
	if res.Attributes, err = schema.DecodeAttributes(st.Bytes(1), nil); err != nil {
		return res, fmt.Errorf("read resources[%d]: %w", id, err)
	}
	if r.resources == nil || len(r.resources) >= maxCachedRows {
		r.resources = make(map[int64]schema.Resource)
	}
	r.resources[id] = res
	return res, nil
}

func (r *traceReader) scope(id int64) (schema.Scope, error) {
	if sc, ok := r.scopes[id]; ok {
		return sc, nil
	}
	var sc schema.Scope
	st := r.scopeStmt
	defer st.Reset()
	if err := st.Start(id); err != nil {
		return sc, fmt.Errorf("read scopes[%d]: %w", id, err)
	}
	switch more, err := st.Next(); {
	case err != nil:
		return sc, fmt.Errorf("read scopes[%d]: %w", id, err)
	case !more:
		return sc, fmt.Errorf("read scopes[%d]: %w", id, errNoRow)
	}
	sc.Name, sc.Version, sc.SchemaURL = string(st.Bytes(0)), string(st.Bytes(1)), string(st.Bytes(2))
	var err error
	if sc.Attributes, err = schema.DecodeAttributes(st.Bytes(3), nil); err != nil {
		return sc, fmt.Errorf("read scopes[%d]: %w", id, err)
	}
	if r.scopes == nil || len(r.scopes) >= maxCachedRows {
		r.scopes = make(map[int64]schema.Scope)
	}
	r.scopes[id] = sc
	return sc, nil
}
