package spanreturn

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// Processor is the server side: an sdktrace.SpanProcessor that holds back,
// while a request runs, the spans the server ends under that request's
// server span, so that the response can carry them home. Register it with
// the server's TracerProvider and put its Middleware (with Echo,
// spanreturnecho.Middleware) in front of the handlers; for a stateful
// connection call Begin and Finish directly.
//
// A span belongs to a request when it descends, in the request's trace,
// from the server span given to Begin. Spans of other traces, or of the
// same trace outside that server span, are never returned. Spans ending
// after the response started (or cut by the bounds, or belonging to no
// request) go to the processor set by WithNext, the server's own exporter;
// without one the cut and late ones are counted as dropped.
type Processor struct {
	cfg   config
	liveN atomic.Int64 // len(live), read without the lock

	mu   sync.Mutex
	live map[spanKey]*Gather // spans started under a Gather, not yet ended

	requests, returned, cut, late, dropped atomic.Int64
}

var _ sdktrace.SpanProcessor = (*Processor)(nil)

type spanKey struct {
	t trace.TraceID
	s trace.SpanID
}

func keyOf(sc trace.SpanContext) spanKey { return spanKey{sc.TraceID(), sc.SpanID()} }

// NewProcessor returns a Processor configured by opts: WithNext,
// WithMaxBytes, WithMaxSpans, WithClock, WithEnabled.
func NewProcessor(opts ...Option) *Processor {
	return &Processor{cfg: newConfig(opts), live: map[spanKey]*Gather{}}
}

// ProcessorStats counts what a Processor did since it was made.
type ProcessorStats struct {
	// Requests is the number of answers that carried spans.
	Requests int64
	// Returned is the number of spans returned to clients.
	Returned int64
	// Cut is the number of spans left out by WithMaxBytes or WithMaxSpans.
	Cut int64
	// Late is the number of spans that ended after their response started.
	Late int64
	// Dropped is the number of cut or late spans lost for want of WithNext.
	Dropped int64
}

// Stats returns the Processor's counts.
func (p *Processor) Stats() ProcessorStats {
	return ProcessorStats{
		Requests: p.requests.Load(),
		Returned: p.returned.Load(),
		Cut:      p.cut.Load(),
		Late:     p.late.Load(),
		Dropped:  p.dropped.Load(),
	}
}

// OnStart records s as part of a request when its parent is.
func (p *Processor) OnStart(ctx context.Context, s sdktrace.ReadWriteSpan) {
	for _, n := range p.cfg.next {
		n.OnStart(ctx, s)
	}
	if p.liveN.Load() == 0 {
		return
	}
	parent, sc := s.Parent(), s.SpanContext()
	if !parent.IsValid() || parent.TraceID() != sc.TraceID() {
		return
	}
	p.mu.Lock()
	// Children of finished requests are tracked too, to count them late.
	if g := p.live[keyOf(parent)]; g != nil {
		p.live[keyOf(sc)] = g
		p.liveN.Add(1)
	}
	p.mu.Unlock()
}

// OnEnd holds s for its request while the request runs, and forwards it
// otherwise.
func (p *Processor) OnEnd(s sdktrace.ReadOnlySpan) {
	if p.liveN.Load() == 0 {
		p.forward(s)
		return
	}
	k := keyOf(s.SpanContext())
	p.mu.Lock()
	g := p.live[k]
	if g == nil {
		p.mu.Unlock()
		p.forward(s)
		return
	}
	delete(p.live, k)
	p.liveN.Add(-1)
	switch {
	case g.state == stateOpen:
		g.ended = append(g.ended, s)
		p.mu.Unlock()
		return
	case k == g.key && g.state == stateEncoding:
		g.parked = s // Finish decides whether it was returned.
		p.mu.Unlock()
		return
	case k == g.key && g.rootReturned:
		p.mu.Unlock()
		return
	}
	p.mu.Unlock()
	p.late.Add(1)
	p.forwardOrDrop(s)
}

func (p *Processor) forward(s sdktrace.ReadOnlySpan) {
	for _, n := range p.cfg.next {
		n.OnEnd(s)
	}
}

func (p *Processor) forwardOrDrop(s sdktrace.ReadOnlySpan) {
	if len(p.cfg.next) == 0 {
		p.dropped.Add(1)
		return
	}
	p.forward(s)
}

// ForceFlush flushes the WithNext processors, returning the first error.
func (p *Processor) ForceFlush(ctx context.Context) error {
	var err error
	for i, n := range p.cfg.next {
		if e := n.ForceFlush(ctx); e != nil && err == nil {
			err = fmt.Errorf("flush next[%d]: %w", i, e)
		}
	}
	return err
}

// Shutdown shuts the WithNext processors down, returning the first error.
// Requests still running keep their spans until they finish.
func (p *Processor) Shutdown(ctx context.Context) error {
	var err error
	for i, n := range p.cfg.next {
		if e := n.Shutdown(ctx); e != nil && err == nil {
			err = fmt.Errorf("shut down next[%d]: %w", i, e)
		}
	}
	return err
}

const (
	stateOpen = iota
	stateEncoding
	stateDone
)

// A Gather collects the spans of one request until its answer starts. The
// zero of *Gather (nil) is valid and gathers nothing, so callers need not
// check what Begin returned.
type Gather struct {
	p    *Processor
	root sdktrace.ReadOnlySpan
	key  spanKey
	t1   time.Time

	// Guarded by p.mu.
	state        int
	ended        []sdktrace.ReadOnlySpan
	parked       sdktrace.ReadOnlySpan // root, ended while encoding
	rootReturned bool
}

// Begin starts gathering for the request whose server span is span, and
// reads the request-received time from the clock. It returns nil (a Gather
// that does nothing) when span return is off or span is not a sampled,
// recording span of the OpenTelemetry SDK. The caller decides that the
// client asked: the middleware does so from the request's headers, a
// stateful protocol from its own message. Finish or Cancel must follow.
func (p *Processor) Begin(span trace.Span) *Gather {
	if !p.cfg.enabled || span == nil || !span.IsRecording() || !span.SpanContext().IsSampled() {
		return nil
	}
	ro, ok := span.(sdktrace.ReadOnlySpan)
	if !ok {
		return nil
	}
	g := &Gather{p: p, root: ro, key: keyOf(span.SpanContext()), t1: p.cfg.now()}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.live[g.key] != nil {
		return nil // already gathered by an outer Begin
	}
	p.live[g.key] = g
	p.liveN.Add(1)
	return g
}

// Finish ends the gathering at the response-sent time, read from the
// clock, and returns the answer's encoding: the server span (as it is now,
// ending now if it has not ended) and the spans of the request that have
// ended, oldest first, cut to the bounds. It returns nil for a nil Gather
// and after the first call. The header carries it base64url-encoded (see
// Header); a stateful protocol puts it in the frame that answers the
// request, raw or in the same base64url form.
func (g *Gather) Finish() []byte {
	if g == nil {
		return nil
	}
	p := g.p
	t2 := p.cfg.now()
	p.mu.Lock()
	if g.state != stateOpen {
		p.mu.Unlock()
		return nil
	}
	g.state = stateEncoding
	spans := g.ended
	g.ended = nil
	p.mu.Unlock()

	rootEnded := false
	for _, s := range spans {
		if keyOf(s.SpanContext()) == g.key {
			rootEnded = true
		}
	}
	if !rootEnded {
		spans = append(spans, g.root)
	}
	// Belt and braces: nothing of another trace leaves this function.
	spans = slices.DeleteFunc(spans, func(s sdktrace.ReadOnlySpan) bool { return s.SpanContext().TraceID() != g.key.t })
	orderSpans(g.key.s, spans)
	var res = g.root.Resource().Attributes()
	data, kept := encode(g.key.t, g.t1, t2, res, spans, rawLimit(p.cfg.maxBytes), p.cfg.maxSpans)

	p.mu.Lock()
	g.state = stateDone
	g.rootReturned = kept > 0
	parked := g.parked
	g.parked = nil
	p.mu.Unlock()

	p.requests.Add(1)
	p.returned.Add(int64(kept))
	for _, s := range spans[kept:] {
		if !rootEnded && keyOf(s.SpanContext()) == g.key {
			continue // not ended: OnEnd forwards it when it ends
		}
		p.cut.Add(1)
		p.forwardOrDrop(s)
	}
	if parked != nil && kept == 0 {
		p.late.Add(1)
		p.forwardOrDrop(parked)
	}
	return data
}

// Cancel ends the gathering without an answer, for a request that will
// not be answered: the spans held go to WithNext. It does nothing for a
// nil Gather or after Finish.
func (g *Gather) Cancel() {
	if g == nil {
		return
	}
	p := g.p
	p.mu.Lock()
	if g.state != stateOpen {
		p.mu.Unlock()
		return
	}
	g.state = stateDone
	spans := g.ended
	g.ended = nil
	p.mu.Unlock()
	for _, s := range spans {
		p.forwardOrDrop(s)
	}
}
