package exporter

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/instrumentation"
	"go.opentelemetry.io/otel/sdk/resource"

	"github.com/lonelytrace/lonelytrace/schema"
)

// ErrQueueFull is returned by TryExportRecords when the writer's queue has
// no room: the caller should ask its client to retry later.
var ErrQueueFull = errors.New("lonelytrace exporter: queue full")

// ExportRecords queues spans that did not come from the Go SDK (OTLP
// spans from another process, say) for the same writer as ExportSpans,
// every field as the span has it: the whole flags value, the trace state
// as written, every attribute value type. The pub/sub columns come from
// the attributes, as for SDK spans. It queues all of spans or none: when
// the queue is full it waits until ctx is done and then returns ctx's
// error, having queued nothing and dropped nothing. A span with an
// invalid trace or span id is an error, and nothing is queued.
func (e *Exporter) ExportRecords(ctx context.Context, spans []schema.Span) error {
	return e.exportRecords(ctx, spans, true, nil)
}

// TryExportRecords is ExportRecords that does not wait: when the queue
// is full it returns ErrQueueFull at once.
func (e *Exporter) TryExportRecords(spans []schema.Span) error {
	return e.exportRecords(context.Background(), spans, false, nil)
}

// ErrRejected is in the error of Pending.Wait when the file refused some
// of the records themselves (a constraint of the file failed on them,
// say): the writer wrote the rest of their transaction without them, and
// trying them again would fail again. The error is then a
// *RejectedError, which says how many.
var ErrRejected = errors.New("lonelytrace exporter: spans rejected by the file")

// RejectedError is Pending.Wait's error when the file refused Spans of
// the records, for the reason Err; the others are committed.
type RejectedError struct {
	Spans int
	Err   error
}

func (e *RejectedError) Error() string {
	return fmt.Sprintf("lonelytrace exporter: %d spans rejected by the file: %v", e.Spans, e.Err)
}

// Unwrap gives ErrRejected and the file's error.
func (e *RejectedError) Unwrap() []error { return []error{ErrRejected, e.Err} }

// QueueRecords is ExportRecords (TryExportRecords with wait false) that
// also returns a Pending, to wait for the records' commit with: what
// collect needs to answer its clients only once their spans are in the
// file. Records that somebody waits for are committed promptly, in one
// transaction with whatever else is queued then, rather than after the
// commit interval. The writer reads spans until Wait returns nil or a
// *RejectedError, and never after: the caller may then use their array
// again (collect decodes its next request into it).
func (e *Exporter) QueueRecords(ctx context.Context, spans []schema.Span, wait bool) (*Pending, error) {
	p := &Pending{done: make(chan error, 1)}
	if len(spans) == 0 {
		p.done <- nil
		return p, nil
	}
	if err := e.exportRecords(ctx, spans, wait, p.done); err != nil {
		return nil, err
	}
	return p, nil
}

// Pending is records queued by QueueRecords, on their way to the file.
type Pending struct {
	done chan error
	// err is the outcome, once got is set.
	err error
	got bool
}

// Wait returns nil once the records are committed to the file. Otherwise
// it returns why they are not: a *RejectedError (ErrRejected) when the
// file refused some of the records themselves, the others committed;
// another write error when the file failed as a whole (a full disk, say;
// the next write may succeed); or ctx's error when ctx ends first, and
// then the records may still be written. A busy file (another process holding its write lock) is not an
// error: the writer tries again until it gets the lock. Wait may be
// called again, from one goroutine at a time.
func (p *Pending) Wait(ctx context.Context) error {
	if p.got {
		return p.err
	}
	select {
	case p.err = <-p.done:
		p.got = true
		return p.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (e *Exporter) exportRecords(ctx context.Context, spans []schema.Span, wait bool, committed chan error) error {
	if len(spans) == 0 {
		return nil
	}
	for i := range spans {
		if !spans[i].TraceID.IsValid() || !spans[i].SpanID.IsValid() {
			return fmt.Errorf("lonelytrace exporter: records[%d]: invalid trace or span id", i)
		}
	}
	switch err := e.queueSpans(ctx, e.records.wrap(spans), wait, committed); err {
	case nil:
	case errQueueFull:
		select {
		case <-e.stopping:
			return ErrShutdown
		default:
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		return ErrQueueFull
	default:
		return err
	}
	return nil
}

// encodeRecord is encodeFields (row.go) for a record: it keeps what an
// SDK span cannot hold (OTLP's flag bits above the W3C byte, a trace
// state as written).
func encodeRecord(f *spanFields, a *arena, s *schema.Span, keyIDs schema.KeyIDFunc) {
	groups := groupAlways
	f.spanID = s.SpanID
	f.parentID, f.hasParent = s.ParentSpanID, s.ParentSpanID.IsValid()
	f.parentRemote = s.ParentRemote
	f.flags = s.StoredFlags()
	f.traceState = s.TraceState
	f.name = s.Name
	f.kind = uint8(s.Kind)
	f.start, f.end = s.Start.UnixNano(), s.End.UnixNano()
	f.status, f.statusMessage = otlpStatus(s.StatusCode), s.StatusMsg

	f.attributes, f.hasAttrs = "", len(s.Attributes) > 0
	if f.hasAttrs {
		at := len(*a)
		*a = schema.AppendAttributes(*a, s.Attributes, keyIDs)
		f.attributes = a.text(at)
	}
	f.events, f.links = "", ""
	if len(s.Events) > 0 {
		at := len(*a)
		*a = schema.AppendSpanEvents(*a, s.Events)
		f.events = a.text(at)
	}
	if len(s.Links) > 0 {
		at := len(*a)
		*a = schema.AppendSpanLinks(*a, s.Links)
		f.links = a.text(at)
	}
	f.dropAttrs, f.dropEvents, f.dropLinks = int64(s.DroppedAttributes), int64(s.DroppedEvents), int64(s.DroppedLinks)
	if f.traceState != "" || f.statusMessage != "" || f.events != "" || f.links != "" || f.dropAttrs != 0 || f.dropEvents != 0 || f.dropLinks != 0 {
		groups |= groupExtra
	}
	f.childCount = int64(s.ChildCount)

	ps := schema.ExtractPubSub(s.Attributes)
	f.op, f.topic, f.glob, f.broadcaster = ps.Op, ps.Topic, ps.Glob, ps.Broadcaster
	f.bodySize, f.subscribers, f.stateful = ps.BodySize, ps.Subscribers, int8(ps.Stateful)
	if ps.Op != "" || ps.Topic != "" || ps.Glob != "" || ps.Broadcaster != "" || ps.BodySize >= 0 || ps.Subscribers >= 0 || ps.Stateful >= 0 {
		groups |= groupPubSub
	}
	f.groups = uint8(groups)
}

// record is a span that did not come from the Go SDK, on its way
// through the writer's queue (queued) beside SDK spans but a type of its
// own: the writer encodes it with encodeRecord and takes its resource
// and scope from here. res is shared by the records of one resource, so
// that the writer, which keeps resource ids by pointer, finds it again.
type record struct {
	span  *schema.Span
	res   *resource.Resource
	scope instrumentation.Scope
}

// recordResources hands out one *resource.Resource per distinct resource
// of the records, since the writer keeps its resource ids by pointer.
type recordResources struct {
	mu   sync.Mutex
	byID map[string]*resource.Resource
	buf  []byte
}

// maxRecordResources bounds recordResources; past it, the map starts over.
const maxRecordResources = 4096

// wrap returns spans as records for the writer's queue.
func (c *recordResources) wrap(spans []schema.Span) []queued {
	out := make([]queued, len(spans))
	recs := make([]record, len(spans))
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.byID == nil || len(c.byID) > maxRecordResources {
		c.byID = make(map[string]*resource.Resource)
	}
	var last *schema.Span
	var lastRes *resource.Resource
	var lastScope instrumentation.Scope
	for i := range spans {
		s := &spans[i]
		r := &recs[i]
		r.span = s
		out[i] = queued{rec: r}
		if last != nil && sameResourceScope(last, s) {
			r.res, r.scope = lastRes, lastScope
			continue
		}
		c.buf = schema.AppendAttributes(append(c.buf[:0], s.Resource.SchemaURL...), s.Resource.Attributes, nil)
		res, ok := c.byID[string(c.buf)]
		if !ok {
			res = resource.NewWithAttributes(s.Resource.SchemaURL, s.Resource.Attributes...)
			c.byID[string(c.buf)] = res
		}
		r.res = res
		r.scope = instrumentation.Scope{Name: s.Scope.Name, Version: s.Scope.Version, SchemaURL: s.Scope.SchemaURL,
			Attributes: attribute.NewSet(s.Scope.Attributes...)}
		last, lastRes, lastScope = s, r.res, r.scope
	}
	return out
}

// sameResourceScope reports whether a and b share resource and scope
// slices, as the spans of one OTLP ScopeSpans do after conversion.
func sameResourceScope(a, b *schema.Span) bool {
	return a.Resource.SchemaURL == b.Resource.SchemaURL && sameSlice(a.Resource.Attributes, b.Resource.Attributes) &&
		a.Scope.Name == b.Scope.Name && a.Scope.Version == b.Scope.Version && a.Scope.SchemaURL == b.Scope.SchemaURL &&
		sameSlice(a.Scope.Attributes, b.Scope.Attributes)
}

func sameSlice(a, b []attribute.KeyValue) bool {
	return len(a) == len(b) && (len(a) == 0 || &a[0] == &b[0])
}
