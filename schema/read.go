package schema

import (
	"context"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// Span is one row of the spans table, decoded.
type Span struct {
	// ID is the row id, in order of writing.
	ID           int64
	TraceID      trace.TraceID
	SpanID       trace.SpanID
	ParentSpanID trace.SpanID // invalid (zero) for a root span
	ParentRemote bool
	Flags        trace.TraceFlags
	TraceState   string
	Name         string
	Kind         trace.SpanKind
	Start, End   time.Time
	StatusCode   codes.Code
	StatusMsg    string
	Attributes   []attribute.KeyValue
	Events       []Event
	Links        []Link

	DroppedAttributes, DroppedEvents, DroppedLinks, ChildCount int

	Resource Resource
	Scope    Scope
	PubSub   PubSub

	// OTLPFlags is the flags column whole: Flags in bits 0-7 and, for
	// spans that came as OTLP, OTLP's bits 8 and 9 (record.go).
	OTLPFlags uint32
}

// Event is a span event.
type Event struct {
	Name              string
	Time              time.Time
	Attributes        []attribute.KeyValue
	DroppedAttributes int
}

// Link is a span link.
type Link struct {
	TraceID           trace.TraceID
	SpanID            trace.SpanID
	Flags             trace.TraceFlags
	OTLPFlags         uint32 // as Span.OTLPFlags
	TraceState        string
	Remote            bool
	Attributes        []attribute.KeyValue
	DroppedAttributes int
}

// Resource is a row of the resources table.
type Resource struct {
	SchemaURL  string
	Attributes []attribute.KeyValue
}

// Scope is a row of the scopes table (the instrumentation scope).
type Scope struct {
	Name, Version, SchemaURL string
	Attributes               []attribute.KeyValue
}

// Reader decodes spans from a trace file. It caches the small tables
// (attribute keys, and up to maxCachedRows resources and scopes) and
// reloads them when a row refers to an id it has not seen, so it keeps
// working beside a live writer. A Reader is not safe for concurrent use.
type Reader struct {
	db *sql.DB
	// tx is the read transaction of the query under way: the spans and
	// the rows they refer to are read from one snapshot.
	tx        *sql.Tx
	keys      map[int64]string
	resources map[int64]Resource
	scopes    map[int64]Scope
}

// maxCachedRows bounds the resources and the scopes a Reader keeps
// decoded; past it, it starts again with an empty cache. Files hold a few
// of each, unless every span came with its own. Ids are never handed out
// again (a writer's retention keeps each table's highest id), so a cached
// row stays right for as long as it is kept, even once the file no longer
// has it.
const maxCachedRows = 4096

// NewReader returns a Reader of db, a file opened with OpenRead or
// OpenWrite.
func NewReader(db *sql.DB) *Reader {
	return &Reader{db: db}
}

// spanSelect reads the row id, then every column of SpanColumns at its
// position, the trace's id in place of its traces.id.
var spanSelect = func() string {
	cols := make([]string, 0, 1+NumSpanColumns)
	cols = append(cols, "s.id")
	for c, name := range SpanColumns {
		if SpanColumn(c) == ColTrace {
			name = "t.trace_id"
		} else {
			name = "s." + name
		}
		cols = append(cols, name)
	}
	return "SELECT " + strings.Join(cols, ", ") + " FROM " + SpansTable + " AS s JOIN " + TracesTable + " AS t ON t.id = s.trace "
}()

// Trace returns every span of the trace id in the file, in start order.
func (r *Reader) Trace(ctx context.Context, id trace.TraceID) ([]Span, error) {
	return r.query(ctx, spanSelect+"WHERE t.trace_id = ? ORDER BY s.start_ns, s.id", id[:])
}

// Traces returns every span of the traces ids in the file, in order of
// trace id, then start: one query for many traces, for a reader that goes
// through a whole file (export).
func (r *Reader) Traces(ctx context.Context, ids []trace.TraceID) ([]Span, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	args := make([]any, len(ids))
	for i := range ids {
		args[i] = ids[i][:]
	}
	return r.query(ctx, spanSelect+"WHERE t.trace_id IN (?"+strings.Repeat(",?", len(ids)-1)+") ORDER BY t.trace_id, s.start_ns, s.id", args...)
}

// After returns up to limit spans whose row id is greater than after, in row
// order: call it again with the last ID to page through a whole file.
func (r *Reader) After(ctx context.Context, after int64, limit int) ([]Span, error) {
	return r.query(ctx, spanSelect+"WHERE s.id > ? ORDER BY s.id LIMIT ?", after, limit)
}

func (r *Reader) query(ctx context.Context, q string, args ...any) ([]Span, error) {
	// One read transaction for the spans and the rows they refer to: a
	// writer's retention takes a resource, scope or attribute key with
	// the last span that refers to it, and a lookup in a later snapshot
	// than the span's would miss it.
	tx, err := r.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("read spans: %w", err)
	}
	defer tx.Rollback()
	r.tx = tx
	defer func() { r.tx = nil }()
	rows, err := tx.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("read spans: %w", err)
	}
	defer rows.Close()
	var out []Span
	for rows.Next() {
		s, err := r.scan(ctx, rows)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read spans: %w", err)
	}
	return out, nil
}

func (r *Reader) scan(ctx context.Context, rows *sql.Rows) (Span, error) {
	var (
		s                                  Span
		traceID, spanID, parentID          []byte
		parentRemote                       int64
		flags, kind, startNs, endNs        int64
		statusCode                         int64
		traceState, statusMsg              sql.NullString
		attrs, events, links               sql.NullString
		resID, scopeID                     int64
		op, topic, glob, broadcaster       sql.NullString
		bodySize, subscribers, stateful    sql.NullInt64
		droppedA, droppedE, droppedL, kids int64
	)
	var dest [1 + NumSpanColumns]any
	at := func(c SpanColumn) *any { return &dest[1+c] }
	dest[0] = &s.ID
	*at(ColTrace), *at(ColSpanID), *at(ColParentSpanID), *at(ColParentRemote) = &traceID, &spanID, &parentID, &parentRemote
	*at(ColFlags), *at(ColTraceState), *at(ColName), *at(ColKind) = &flags, &traceState, &s.Name, &kind
	*at(ColStartNs), *at(ColEndNs), *at(ColStatusCode), *at(ColStatusMessage) = &startNs, &endNs, &statusCode, &statusMsg
	*at(ColAttributes), *at(ColEvents), *at(ColLinks) = &attrs, &events, &links
	*at(ColDroppedAttributes), *at(ColDroppedEvents), *at(ColDroppedLinks), *at(ColChildCount) = &droppedA, &droppedE, &droppedL, &kids
	*at(ColResource), *at(ColScope) = &resID, &scopeID
	*at(ColOp), *at(ColTopic), *at(ColGlob), *at(ColBroadcaster) = &op, &topic, &glob, &broadcaster
	*at(ColBodySize), *at(ColSubscribers), *at(ColStateful) = &bodySize, &subscribers, &stateful
	if err := rows.Scan(dest[:]...); err != nil {
		return s, fmt.Errorf("read spans: %w", err)
	}
	copy(s.TraceID[:], traceID)
	copy(s.SpanID[:], spanID)
	copy(s.ParentSpanID[:], parentID)
	s.ParentRemote = parentRemote != 0
	s.Flags, s.OTLPFlags = trace.TraceFlags(flags), uint32(flags)
	s.TraceState = traceState.String
	s.Kind = trace.SpanKind(kind)
	s.Start, s.End = time.Unix(0, startNs), time.Unix(0, endNs)
	s.StatusCode = CodeOfStatus(statusCode)
	s.StatusMsg = statusMsg.String
	s.DroppedAttributes, s.DroppedEvents, s.DroppedLinks, s.ChildCount = int(droppedA), int(droppedE), int(droppedL), int(kids)
	s.PubSub = PubSub{Op: op.String, Topic: topic.String, Glob: glob.String, Broadcaster: broadcaster.String,
		BodySize: nullOr(bodySize), Subscribers: nullOr(subscribers), Stateful: int8(nullOr(stateful))}

	var err error
	if attrs.Valid {
		if s.Attributes, err = DecodeAttributes([]byte(attrs.String), r.keyNames(ctx)); err != nil {
			return s, fmt.Errorf("span %d attributes: %w", s.ID, err)
		}
	}
	if events.Valid {
		if s.Events, err = DecodeEvents([]byte(events.String)); err != nil {
			return s, fmt.Errorf("span %d events: %w", s.ID, err)
		}
	}
	if links.Valid {
		if s.Links, err = DecodeLinks([]byte(links.String)); err != nil {
			return s, fmt.Errorf("span %d links: %w", s.ID, err)
		}
	}
	if s.Resource, err = r.resource(ctx, resID); err != nil {
		return s, err
	}
	if s.Scope, err = r.scope(ctx, scopeID); err != nil {
		return s, err
	}
	return s, nil
}

func nullOr(n sql.NullInt64) int64 {
	if !n.Valid {
		return -1
	}
	return n.Int64
}

// keyNames returns a KeyNameFunc that reloads the keys table once when it
// meets an id it does not know.
func (r *Reader) keyNames(ctx context.Context) KeyNameFunc {
	return func(id int64) (string, bool) {
		if k, ok := r.keys[id]; ok {
			return k, true
		}
		if err := r.loadKeys(ctx); err != nil {
			return "", false
		}
		k, ok := r.keys[id]
		return k, ok
	}
}

func (r *Reader) loadKeys(ctx context.Context) error {
	rows, err := r.tx.QueryContext(ctx, "SELECT id, key FROM attribute_keys")
	if err != nil {
		return fmt.Errorf("read attribute_keys: %w", err)
	}
	defer rows.Close()
	keys := make(map[int64]string)
	for rows.Next() {
		var id int64
		var k string
		if err := rows.Scan(&id, &k); err != nil {
			return fmt.Errorf("read attribute_keys: %w", err)
		}
		keys[id] = k
	}
	r.keys = keys
	return rows.Err()
}

func (r *Reader) resource(ctx context.Context, id int64) (Resource, error) {
	if res, ok := r.resources[id]; ok {
		return res, nil
	}
	var res Resource
	var attrs string
	if err := r.tx.QueryRowContext(ctx, "SELECT schema_url, attributes FROM resources WHERE id = ?", id).Scan(&res.SchemaURL, &attrs); err != nil {
		return res, fmt.Errorf("read resources[%d]: %w", id, err)
	}
	var err error
	if res.Attributes, err = DecodeAttributes([]byte(attrs), nil); err != nil {
		return res, fmt.Errorf("read resources[%d]: %w", id, err)
	}
	if r.resources == nil || len(r.resources) >= maxCachedRows {
		// A fresh map, not a growing one: a file whose every span has a
		// resource of its own must not grow a long reader (replay).
		r.resources = make(map[int64]Resource)
	}
	r.resources[id] = res
	return res, nil
}

func (r *Reader) scope(ctx context.Context, id int64) (Scope, error) {
	if sc, ok := r.scopes[id]; ok {
		return sc, nil
	}
	var sc Scope
	var attrs string
	if err := r.tx.QueryRowContext(ctx, "SELECT name, version, schema_url, attributes FROM scopes WHERE id = ?", id).Scan(&sc.Name, &sc.Version, &sc.SchemaURL, &attrs); err != nil {
		return sc, fmt.Errorf("read scopes[%d]: %w", id, err)
	}
	var err error
	if sc.Attributes, err = DecodeAttributes([]byte(attrs), nil); err != nil {
		return sc, fmt.Errorf("read scopes[%d]: %w", id, err)
	}
	if r.scopes == nil || len(r.scopes) >= maxCachedRows {
		r.scopes = make(map[int64]Scope)
	}
	r.scopes[id] = sc
	return sc, nil
}

type eventJSON struct {
	Name              string          `json:"name"`
	TimeNs            int64           `json:"time_ns"`
	Attributes        json.RawMessage `json:"attributes"`
	DroppedAttributes int             `json:"dropped_attributes"`
}

// DecodeEvents reads what AppendEvents wrote.
func DecodeEvents(data []byte) ([]Event, error) {
	var raw []eventJSON
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, fmt.Errorf("%w: events: %v", ErrBadAttributes, err)
	}
	out := make([]Event, len(raw))
	for i, e := range raw {
		attrs, err := DecodeAttributes(e.Attributes, nil)
		if err != nil {
			return nil, fmt.Errorf("events[%d]: %w", i, err)
		}
		out[i] = Event{Name: e.Name, Time: time.Unix(0, e.TimeNs), Attributes: attrs, DroppedAttributes: e.DroppedAttributes}
	}
	return out, nil
}

type linkJSON struct {
	TraceID           string          `json:"trace_id"`
	SpanID            string          `json:"span_id"`
	Flags             int             `json:"flags"`
	TraceState        string          `json:"trace_state"`
	Remote            bool            `json:"remote"`
	Attributes        json.RawMessage `json:"attributes"`
	DroppedAttributes int             `json:"dropped_attributes"`
}

// DecodeLinks reads what AppendLinks wrote.
func DecodeLinks(data []byte) ([]Link, error) {
	var raw []linkJSON
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, fmt.Errorf("%w: links: %v", ErrBadAttributes, err)
	}
	out := make([]Link, len(raw))
	for i, l := range raw {
		attrs, err := DecodeAttributes(l.Attributes, nil)
		if err != nil {
			return nil, fmt.Errorf("links[%d]: %w", i, err)
		}
		out[i] = Link{Flags: trace.TraceFlags(l.Flags), OTLPFlags: uint32(l.Flags), TraceState: l.TraceState, Remote: l.Remote,
			Attributes: attrs, DroppedAttributes: l.DroppedAttributes}
		if len(l.TraceID) != 32 || len(l.SpanID) != 16 {
			return nil, fmt.Errorf("%w: links[%d]: ids of the wrong length", ErrBadAttributes, i)
		}
		if _, err := hex.Decode(out[i].TraceID[:], []byte(l.TraceID)); err != nil {
			return nil, fmt.Errorf("links[%d] trace_id: %w", i, err)
		}
		if _, err := hex.Decode(out[i].SpanID[:], []byte(l.SpanID)); err != nil {
			return nil, fmt.Errorf("links[%d] span_id: %w", i, err)
		}
	}
	return out, nil
}
