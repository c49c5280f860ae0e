package viewer_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/lonelytrace/lonelytrace/exporter"
	"github.com/lonelytrace/lonelytrace/schema"
)

// The fixture is a file shaped like the demo's (examples/pubsub), at the
// scale of a week of a busy system: publishers notify through
// broadcasters, whose spans ride home into the same file, and every
// matching subscriber receives, each under its own service name. Some
// notifies and receives fail (status Error with an exception event, as
// real instrumentation records them), some deliveries are retried, and a
// twentieth of the operations are subscription changes. It is written
// through the real SDK and exporter, spans in start order, evenly over the
// time before the end instant.

const (
	// fixturePublishers, fixtureBroadcasters, fixtureSubscribers and
	// fixtureTopics are how many of each the fixture has.
	fixturePublishers   = 4
	fixtureBroadcasters = 3
	fixtureSubscribers  = 12
	fixtureTopics       = 40
)

// fixtureGen writes fixture traces into one exporter.
type fixtureGen struct {
	rng    *rand.Rand
	c      *collector
	tracer map[string]trace.Tracer
	e      *exporter.Exporter
	spans  int
	// chunk is how many spans go to the exporter at a time.
	chunk int
}

func newFixtureGen(path string, seed uint64, txnSpans int) (*fixtureGen, error) {
	// No retention: the fixture's times are fixed, and its size is the
	// point.
	opts := []exporter.Option{exporter.WithMaxAge(0), exporter.WithMaxSize(0)}
	if txnSpans > 0 {
		opts = append(opts, exporter.WithMaxTxnSpans(txnSpans))
	}
	e, err := exporter.New(path, opts...)
	if err != nil {
		return nil, err
	}
	g := &fixtureGen{rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), c: &collector{}, tracer: map[string]trace.Tracer{}, e: e, chunk: 512}
	if txnSpans > 0 {
		g.chunk = min(txnSpans, 512)
	}
	var names []string
	for i := range fixturePublishers {
		names = append(names, fmt.Sprintf("publisher-%d", i))
	}
	for i := range fixtureBroadcasters {
		names = append(names, fmt.Sprintf("broadcaster-%d", i))
	}
	for i := range fixtureSubscribers {
		names = append(names, fmt.Sprintf("subscriber-%d", i))
	}
	for _, n := range names {
		res := resource.NewSchemaless(attribute.String("service.name", n))
		tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(g.c), sdktrace.WithSampler(sdktrace.AlwaysSample()), sdktrace.WithResource(res))
		g.tracer[n] = tp.Tracer("fixture")
	}
	return g, nil
}

// span starts a span of service svc at t.
func (g *fixtureGen) span(ctx context.Context, svc, name string, t time.Time, kind trace.SpanKind, attrs ...attribute.KeyValue) (context.Context, trace.Span) {
	return g.tracer[svc].Start(ctx, name, trace.WithTimestamp(t), trace.WithSpanKind(kind), trace.WithAttributes(attrs...))
}

func (g *fixtureGen) end(s trace.Span, t time.Time, err error) {
	if err != nil {
		s.RecordError(err, trace.WithTimestamp(t))
		s.SetStatus(codes.Error, err.Error())
	}
	s.End(trace.WithTimestamp(t))
}

// ms returns a duration of about mean milliseconds with a long tail.
func (g *fixtureGen) ms(mean float64) time.Duration {
	return time.Duration(g.rng.ExpFloat64() * mean * 1e6)
}

// trace records one trace starting at t, numbered i.
func (g *fixtureGen) trace(i int, t time.Time) {
	ctx := context.Background()
	pub := fmt.Sprintf("publisher-%d", i%fixturePublishers)
	b := fmt.Sprintf("broadcaster-%d", g.rng.IntN(fixtureBroadcasters))
	topic := fmt.Sprintf("orders/region-%d", g.rng.IntN(fixtureTopics))
	if i%20 == 19 {
		// A subscription change: one operation span and its stored phase.
		op := schema.Operations[2+g.rng.IntN(len(schema.Operations)-2)]
		attrs := []attribute.KeyValue{schema.Operation(op), schema.Broadcaster(b), schema.Stateful(i%3 == 0)}
		switch op {
		case schema.OpSubscribeGlob, schema.OpUnsubscribeGlob:
			attrs = append(attrs, schema.Glob("orders/*"))
		case schema.OpMissed:
			attrs = append(attrs, schema.Topic(topic))
		case schema.OpSetSubscriptions:
		default:
			attrs = append(attrs, schema.Topic(topic))
		}
		sub := fmt.Sprintf("subscriber-%d", g.rng.IntN(fixtureSubscribers))
		c, s := g.span(ctx, sub, op, t, trace.SpanKindClient, attrs...)
		_, p := g.span(c, b, "store subscriptions", t.Add(300*time.Microsecond), trace.SpanKindInternal)
		g.end(p, t.Add(300*time.Microsecond+g.ms(0.2)), nil)
		g.end(s, t.Add(time.Millisecond+g.ms(1)), nil)
		return
	}
	size := int(g.rng.ExpFloat64() * 2000)
	var notifyErr error
	if g.rng.IntN(100) == 0 {
		notifyErr = errors.New("broadcaster busy, try another")
	}
	subs := 0
	if notifyErr == nil {
		subs = g.rng.IntN(4)
	}
	nctx, n := g.span(ctx, pub, schema.OpNotify, t, trace.SpanKindProducer,
		schema.Operation(schema.OpNotify), schema.Topic(topic), schema.BodySize(size), schema.Broadcaster(b))
	at := t
	_, h := g.span(nctx, pub, "hash", at, trace.SpanKindInternal)
	at = at.Add(50*time.Microsecond + g.ms(0.05))
	g.end(h, at, nil)
	if g.rng.IntN(50) == 0 { // a retried request
		_, r := g.span(nctx, pub, "send request", at, trace.SpanKindClient, attribute.Int("attempt", 1))
		at = at.Add(g.ms(2))
		g.end(r, at, errors.New("connection reset"))
		_, w := g.span(nctx, pub, "waiting to retry", at, trace.SpanKindInternal)
		at = at.Add(5*time.Millisecond + g.ms(5))
		g.end(w, at, nil)
	}
	sctx, sr := g.span(nctx, pub, "send request", at, trace.SpanKindClient, attribute.Int("attempt", 1))
	bat := at.Add(100*time.Microsecond + g.ms(0.2))
	_, au := g.span(sctx, b, "auth", bat, trace.SpanKindInternal)
	bat = bat.Add(20*time.Microsecond + g.ms(0.02))
	g.end(au, bat, nil)
	if notifyErr == nil {
		_, f := g.span(sctx, b, "find subscribers", bat, trace.SpanKindInternal)
		bat = bat.Add(10*time.Microsecond + g.ms(0.05))
		g.end(f, bat, nil)
		for range subs {
			sub := g.rng.IntN(fixtureSubscribers)
			svc := fmt.Sprintf("subscriber-%d", sub)
			stateful := sub%2 == 0
			dctx, d := g.span(sctx, b, "send receive", bat, trace.SpanKindProducer, schema.Stateful(stateful))
			rat := bat.Add(100*time.Microsecond + g.ms(0.3))
			rctx, r := g.span(dctx, svc, schema.OpReceive, rat, trace.SpanKindConsumer,
				schema.Operation(schema.OpReceive), schema.Topic(topic), schema.BodySize(size), schema.Broadcaster(b), schema.Stateful(stateful))
			_, v := g.span(rctx, svc, "verify", rat, trace.SpanKindInternal)
			rat = rat.Add(30*time.Microsecond + g.ms(0.05))
			g.end(v, rat, nil)
			_, hd := g.span(rctx, svc, "handle", rat, trace.SpanKindInternal)
			rat = rat.Add(g.ms(1))
			var recvErr error
			if g.rng.IntN(50) == 0 {
				recvErr = errors.New("handler failed: flaky subscriber")
			}
			g.end(hd, rat, recvErr)
			rat = rat.Add(20 * time.Microsecond)
			g.end(r, rat, recvErr)
			bat = rat.Add(50*time.Microsecond + g.ms(0.1))
			g.end(d, bat, nil)
			_, cf := g.span(sctx, b, "receive confirmed", bat, trace.SpanKindInternal)
			bat = bat.Add(10 * time.Microsecond)
			g.end(cf, bat, recvErr)
		}
	}
	at = bat.Add(100*time.Microsecond + g.ms(0.2))
	g.end(sr, at, notifyErr)
	if notifyErr == nil {
		n.SetAttributes(schema.Subscribers(subs))
	}
	g.end(n, at.Add(20*time.Microsecond), notifyErr)
}

// flush hands what the collector holds to the exporter, g.chunk spans at
// a time; ExportSpans waits for room in its queue, so nothing is dropped.
func (g *fixtureGen) flush() error {
	spans := g.c.take()
	g.spans += len(spans)
	for i := 0; i < len(spans); i += g.chunk {
		if err := g.e.ExportSpans(context.Background(), spans[i:min(i+g.chunk, len(spans))]); err != nil {
			return err
		}
	}
	return nil
}

// writeFixture writes a fixture of at least n spans at path, evenly over
// the span of time ending at end, and returns the spans written. With
// txnSpans > 0 the writer commits at most that many spans a transaction,
// as at a low rate (each commit is one batches row); else as many as it
// has queued, up to its default.
func writeFixture(path string, n int, over time.Duration, end time.Time, txnSpans int) (int, error) {
	g, err := newFixtureGen(path, uint64(n), txnSpans)
	if err != nil {
		return 0, err
	}
	// A trace starts at the share of the time that the spans before it
	// are of n, so that the spans spread evenly whatever their number per
	// trace.
	start := end.Add(-over)
	var werr error
	for i := 0; g.spans+len(g.c.spans) < n; i++ {
		t := start.Add(time.Duration(float64(over) * float64(g.spans+len(g.c.spans)) / float64(n)))
		g.trace(i, t)
		if len(g.c.spans) >= 16384 {
			if werr = g.flush(); werr != nil {
				break
			}
		}
	}
	if werr == nil {
		werr = g.flush()
	}
	if err := g.e.Shutdown(context.Background()); err != nil && werr == nil {
		werr = err
	}
	if st := g.e.Stats(); werr == nil && st.Written != int64(g.spans) {
		werr = fmt.Errorf("written = %d; want %d", st.Written, g.spans)
	}
	return g.spans, werr
}

// fixtureEnd is the instant the fixtures end at: testNow.
var fixtureEnd = testNow

// TestWriteFixture writes a fixture file when LONELYTRACE_FIXTURE is set
// to its path, of LONELYTRACE_FIXTURE_SPANS spans (default 1,000,000) over
// the week before testNow, LONELYTRACE_FIXTURE_TXN_SPANS at most per write
// transaction (default: the exporter's); else it checks the generator on a
// small file.
//
//	LONELYTRACE_FIXTURE=/work/fixtures/10m/lonelytrace.db LONELYTRACE_FIXTURE_SPANS=10000000 \
//		go test -run TestWriteFixture -timeout 1h ./viewer
func TestWriteFixture(t *testing.T) {
	path, n := os.Getenv("LONELYTRACE_FIXTURE"), 1_000_000
	if s := os.Getenv("LONELYTRACE_FIXTURE_SPANS"); s != "" {
		var err error
		if n, err = strconv.Atoi(s); err != nil {
			t.Fatalf("LONELYTRACE_FIXTURE_SPANS=%q: %v", s, err)
		}
	}
	txnSpans := 0
	if s := os.Getenv("LONELYTRACE_FIXTURE_TXN_SPANS"); s != "" {
		var err error
		if txnSpans, err = strconv.Atoi(s); err != nil {
			t.Fatalf("LONELYTRACE_FIXTURE_TXN_SPANS=%q: %v", s, err)
		}
	}
	if path == "" {
		path, n = filepath.Join(t.TempDir(), "fixture.db"), 20_000
	} else if _, err := os.Stat(path); err == nil {
		t.Fatalf("%s exists: the fixture is written once, into a new file", path)
	}
	t0 := time.Now()
	written, err := writeFixture(path, n, 7*24*time.Hour, fixtureEnd, txnSpans)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s: %d spans in %v", path, written, time.Since(t0).Round(time.Second))
	if written < n {
		t.Fatalf("written = %d; want at least %d", written, n)
	}
	v := mustOpen(t, testNow, path)
	s := summary(t, server(t, v), map[string][]string{"since": {"beginning"}})
	if s.Spans != int64(written) {
		t.Errorf("spans = %d; want %d", s.Spans, written)
	}
	for _, op := range schema.Operations {
		if s.Operations[op].Count == 0 {
			t.Errorf("no %s in the fixture", op)
		}
	}
}
