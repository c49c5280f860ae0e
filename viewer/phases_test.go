package viewer_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/lonelytrace/lonelytrace/schema"
	"github.com/lonelytrace/lonelytrace/viewer/model"
)

// twoSided is what an operation is, by the rule of docs/design.md
// ("One operation, many spans"), written out by the generator as it
// makes the spans, rather than computed from them.
type twoSided struct {
	op, service, topic, glob, broadcaster string
	size, subs                            int64 // -1: absent
	stateful, failed                      bool
	start                                 time.Time
	dur                                   time.Duration
	// lent are the facts the operation has only through its phase on
	// the broadcaster, which lends them only from the same file.
	lent struct {
		topic, glob, broadcaster string
		subs                     int64
	}
	// traceID is the trace's, for the search.
	traceID string
}

// bcService is the broadcaster's service.name: its spans are those span
// return brings home, and those a broadcaster's own file holds.
const bcService = "broadcaster"

// phaseSpans records, through the real SDK, n exchanges of the shapes
// the rule tells apart, and returns their spans and the operations they
// make:
//   - a subscription whose client span and the broadcaster's server span
//     under it (below the client's "send request") both carry the
//     operation: one operation, the client's, with the facts it lacks
//     lent by the server span;
//   - a notify whose server span carries the operation or not, with
//     receives under the broadcaster's "send receive": one notify, and
//     each receive its own operation;
//   - a server span whose client stored nothing (a remote parent): an
//     operation;
//   - a receive with a receive under it, in one service: one receive.
func phaseSpans(seed uint64, n int) ([]sdktrace.ReadOnlySpan, []*twoSided) {
	rng := rand.New(rand.NewPCG(seed, 19))
	r := newRecorder()
	var want []*twoSided
	topics := []string{"orders", "orders/eu", "users.new"}
	globs := []string{"ord*", "users.*"}
	start := func() time.Time {
		return testNow.Add(-time.Duration(1+rng.Int64N(int64(50*time.Minute))) - time.Minute)
	}
	chance := func(k int) bool { return rng.IntN(k) == 0 }
	span := func(ctx context.Context, service, name string, at time.Time, kind trace.SpanKind, attrs ...attribute.KeyValue) (context.Context, trace.Span) {
		return r.tracerOf(service).Start(ctx, name, trace.WithTimestamp(at), trace.WithSpanKind(kind), trace.WithAttributes(attrs...))
	}
	end := func(s trace.Span, at time.Time, failed bool) {
		if failed {
			s.SetStatus(codes.Error, "failed")
		}
		s.End(trace.WithTimestamp(at))
	}
	for i := range n {
		client := fmt.Sprintf("sub-%d", i%3)
		switch i % 4 {
		case 0: // both sides of a subscription
			op := []string{schema.OpSubscribeExact, schema.OpSubscribeGlob, schema.OpSetSubscriptions}[rng.IntN(3)]
			w := &twoSided{op: op, service: client, size: -1, subs: -1, start: start(), dur: time.Duration(4+rng.IntN(40)) * time.Millisecond,
				stateful: chance(2), failed: chance(4)}
			w.lent.subs = -1
			br := fmt.Sprintf("b%d:3003", rng.IntN(2))
			var topic, glob string
			switch op {
			case schema.OpSubscribeExact:
				topic = topics[rng.IntN(len(topics))]
			case schema.OpSubscribeGlob:
				glob = globs[rng.IntN(len(globs))]
			}
			attrs := []attribute.KeyValue{schema.Operation(op), schema.Stateful(w.stateful)}
			// The client span has each fact or not; the server span
			// has them all.
			if chance(2) {
				attrs, w.broadcaster = append(attrs, schema.Broadcaster(br)), br
			} else {
				w.lent.broadcaster = br
			}
			if topic != "" && chance(2) {
				attrs, w.topic = append(attrs, schema.Topic(topic)), topic
			} else {
				w.lent.topic = topic
			}
			if glob != "" && chance(2) {
				attrs, w.glob = append(attrs, schema.Glob(glob)), glob
			} else {
				w.lent.glob = glob
			}
			ctx, cs := span(context.Background(), client, op, w.start, trace.SpanKindClient, attrs...)
			w.traceID = cs.SpanContext().TraceID().String()
			_, send := span(ctx, client, "send request", w.start.Add(time.Millisecond), trace.SpanKindClient)
			battrs := []attribute.KeyValue{schema.Operation(op), schema.Broadcaster(br)}
			if topic != "" {
				battrs = append(battrs, schema.Topic(topic))
			}
			if glob != "" {
				battrs = append(battrs, schema.Glob(glob))
			}
			// The server span is shorter, and fails on its own: the
			// duration and the status must be the client's.
			bctx, bs := span(trace.ContextWithRemoteSpanContext(context.Background(), send.SpanContext()), bcService, "POST", w.start.Add(time.Millisecond), trace.SpanKindServer, battrs...)
			_, auth := span(bctx, bcService, "auth", w.start.Add(time.Millisecond), trace.SpanKindInternal)
			end(auth, w.start.Add(2*time.Millisecond), false)
			end(bs, w.start.Add(w.dur-2*time.Millisecond), chance(3))
			end(send, w.start.Add(w.dur-time.Millisecond), false)
			end(cs, w.start.Add(w.dur), w.failed)
			want = append(want, w)
		case 1: // a notify, its server span, its receives
			topic := topics[rng.IntN(len(topics))]
			w := &twoSided{op: schema.OpNotify, service: client, topic: topic, broadcaster: "b0:3003", size: int64(rng.IntN(5000)), subs: -1,
				start: start(), dur: time.Duration(5+rng.IntN(40)) * time.Millisecond, failed: chance(5)}
			w.lent.subs = -1
			ctx, cs := span(context.Background(), client, "publish", w.start, trace.SpanKindProducer,
				schema.Operation(schema.OpNotify), schema.Topic(topic), schema.Broadcaster(w.broadcaster), schema.BodySizeKey.Int64(w.size))
			w.traceID = cs.SpanContext().TraceID().String()
			_, send := span(ctx, client, "send request", w.start.Add(time.Millisecond), trace.SpanKindClient)
			k := rng.IntN(3)
			battrs := []attribute.KeyValue{schema.Topic(topic), schema.SubscribersKey.Int64(int64(k))}
			withOp := chance(2)
			if withOp {
				battrs = append(battrs, schema.Operation(schema.OpNotify))
				w.lent.subs = int64(k)
			}
			bctx, bs := span(trace.ContextWithRemoteSpanContext(context.Background(), send.SpanContext()), bcService, "POST", w.start.Add(time.Millisecond), trace.SpanKindServer, battrs...)
			for j := range k {
				at := w.start.Add(time.Duration(2+j) * time.Millisecond)
				rctx, sr := span(bctx, bcService, "send receive", at, trace.SpanKindClient)
				rv := &twoSided{op: schema.OpReceive, service: fmt.Sprintf("sub-%d", j), topic: topic, size: w.size, subs: -1, start: at.Add(100 * time.Microsecond),
					dur: time.Duration(1+rng.IntN(3)) * time.Millisecond, failed: chance(4), traceID: w.traceID}
				rv.lent.subs = -1
				_, rs := span(trace.ContextWithRemoteSpanContext(context.Background(), sr.SpanContext()), rv.service, "deliver", rv.start, trace.SpanKindConsumer,
					schema.Operation(schema.OpReceive), schema.Topic(topic), schema.BodySizeKey.Int64(w.size))
				_ = rctx
				end(rs, rv.start.Add(rv.dur), rv.failed)
				end(sr, rv.start.Add(rv.dur+time.Millisecond), false)
				want = append(want, rv)
			}
			end(bs, w.start.Add(w.dur-2*time.Millisecond), chance(2))
			end(send, w.start.Add(w.dur-time.Millisecond), false)
			end(cs, w.start.Add(w.dur), w.failed)
			want = append(want, w)
		case 2: // a server span whose client stored nothing
			topic := topics[rng.IntN(len(topics))]
			w := &twoSided{op: schema.OpUnsubscribeExact, service: bcService, topic: topic, broadcaster: "b1:3003", size: -1, subs: -1,
				start: start(), dur: time.Duration(1+rng.IntN(9)) * time.Millisecond, failed: chance(3)}
			w.lent.subs = -1
			var tid trace.TraceID
			var sid trace.SpanID
			for j := range tid {
				tid[j] = byte(rng.IntN(256))
			}
			for j := range sid {
				sid[j] = byte(1 + rng.IntN(255))
			}
			remote := trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceFlags: trace.FlagsSampled, Remote: true})
			ctx, bs := span(trace.ContextWithRemoteSpanContext(context.Background(), remote), bcService, "POST", w.start, trace.SpanKindServer,
				schema.Operation(w.op), schema.Topic(topic), schema.Broadcaster(w.broadcaster))
			w.traceID = tid.String()
			_, auth := span(ctx, bcService, "auth", w.start, trace.SpanKindInternal)
			end(auth, w.start.Add(time.Millisecond/2), false)
			end(bs, w.start.Add(w.dur), w.failed)
			want = append(want, w)
		case 3: // a receive under a receive, in one process
			topic := topics[rng.IntN(len(topics))]
			w := &twoSided{op: schema.OpReceive, service: client, topic: topic, size: int64(rng.IntN(100)), subs: -1,
				start: start(), dur: time.Duration(1+rng.IntN(9)) * time.Millisecond, stateful: true, failed: chance(3)}
			w.lent.subs = -1
			ctx, rs := span(context.Background(), client, "deliver", w.start, trace.SpanKindConsumer,
				schema.Operation(schema.OpReceive), schema.Topic(topic), schema.BodySizeKey.Int64(w.size), schema.Stateful(true))
			w.traceID = rs.SpanContext().TraceID().String()
			hctx, h := span(ctx, client, "handle", w.start, trace.SpanKindInternal)
			_, in := span(hctx, client, "library receive", w.start, trace.SpanKindConsumer,
				schema.Operation(schema.OpReceive), schema.Topic("elsewhere"), schema.BodySizeKey.Int64(w.size+1))
			end(in, w.start.Add(w.dur/2), !w.failed)
			end(h, w.start.Add(w.dur/2), false)
			end(rs, w.start.Add(w.dur), w.failed)
			want = append(want, w)
		}
	}
	return r.c.take(), want
}

// phaseLayout is how the spans of phaseSpans are spread over files.
type phaseLayout struct {
	name string
	// files returns the spans of each file.
	files func(spans []sdktrace.ReadOnlySpan) [][]sdktrace.ReadOnlySpan
	// lends is set when a phase is in the same file as its operation.
	lends bool
}

func resourceService(s sdktrace.ReadOnlySpan) string {
	for _, kv := range s.Resource().Attributes() {
		if kv.Key == "service.name" {
			return kv.Value.AsString()
		}
	}
	return ""
}

func spansWhere(spans []sdktrace.ReadOnlySpan, keep func(sdktrace.ReadOnlySpan) bool) []sdktrace.ReadOnlySpan {
	var out []sdktrace.ReadOnlySpan
	for _, s := range spans {
		if keep(s) {
			out = append(out, s)
		}
	}
	return out
}

var phaseLayouts = []phaseLayout{
	{"OneFile", func(spans []sdktrace.ReadOnlySpan) [][]sdktrace.ReadOnlySpan {
		return [][]sdktrace.ReadOnlySpan{spans}
	}, true},
	// The broadcaster keeps its own spans in its own file, and the
	// clients theirs: every server span's parent is in the other file.
	{"TwoFiles", func(spans []sdktrace.ReadOnlySpan) [][]sdktrace.ReadOnlySpan {
		isBC := func(s sdktrace.ReadOnlySpan) bool { return resourceService(s) == bcService }
		return [][]sdktrace.ReadOnlySpan{
			spansWhere(spans, isBC),
			spansWhere(spans, func(s sdktrace.ReadOnlySpan) bool { return !isBC(s) }),
		}
	}, false},
	// Span return brought the broadcaster's spans home, and the
	// broadcaster kept them too: the second file comes first, so its
	// copies are the ones the viewer reads.
	{"SpanReturnAndOwnFile", func(spans []sdktrace.ReadOnlySpan) [][]sdktrace.ReadOnlySpan {
		return [][]sdktrace.ReadOnlySpan{
			spansWhere(spans, func(s sdktrace.ReadOnlySpan) bool { return resourceService(s) == bcService }),
			spans,
		}
	}, true},
}

// facts returns w's facts as the viewer sees them in a layout.
func (w *twoSided) facts(lends bool) (topic, glob, broadcaster string, subs int64) {
	topic, glob, broadcaster, subs = w.topic, w.glob, w.broadcaster, w.subs
	if lends {
		topic, glob, broadcaster = cmpOr(topic, w.lent.topic), cmpOr(glob, w.lent.glob), cmpOr(broadcaster, w.lent.broadcaster)
		if subs < 0 {
			subs = w.lent.subs
		}
	}
	return topic, glob, broadcaster, subs
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// TestPhases_CountOnce checks every aggregate against the operations
// phaseSpans made, counted by hand: the summary (counts, failures,
// duration percentiles, bytes, stateful split, subscriber groups),
// the filters, the series, the breakdowns, the map and the search by
// op, over one file, two, and a file with span return beside the
// broadcaster's own.
func TestPhases_CountOnce(t *testing.T) {
	// Enough spans that most lie further than the viewer's margin from
	// the edges of the file's one chunk.
	spans, want := phaseSpans(23, 800)
	for _, l := range phaseLayouts {
		t.Run(l.name, func(t *testing.T) {
			dir := t.TempDir()
			var paths []string
			for i, fs := range l.files(spans) {
				path := filepath.Join(dir, fmt.Sprintf("f%d.db", i))
				writeSpans(t, path, fs)
				paths = append(paths, path)
			}
			base := server(t, mustOpen(t, testNow, paths...))
			checkPhaseAggregates(t, base, want, l.lends)
		})
	}
}

func checkPhaseAggregates(t *testing.T, base string, want []*twoSided, lends bool) {
	t.Helper()
	type opWant struct {
		count, errors, stateful int64
		bytes                   uint64
		durs                    []time.Duration
		bySubs                  map[int64]int64
	}
	byOp := map[string]*opWant{}
	for _, op := range schema.Operations {
		byOp[op] = &opWant{bySubs: map[int64]int64{}}
	}
	for _, w := range want {
		o := byOp[w.op]
		o.count++
		if w.failed {
			o.errors++
		}
		if w.stateful {
			o.stateful++
		}
		if w.size >= 0 {
			o.bytes += uint64(w.size)
		}
		o.durs = append(o.durs, w.dur)
		if _, _, _, subs := w.facts(lends); subs >= 0 {
			o.bySubs[subs]++
		}
	}

	sum := summary(t, base, nil)
	for _, op := range schema.Operations {
		o, got := byOp[op], sum.Operations[op]
		if got == nil {
			t.Fatalf("summary has no %s", op)
		}
		if got.Count != o.count || got.Errors != o.errors || got.Stateful.Count != o.stateful || got.Bytes != o.bytes {
			t.Errorf("%s: count %d, errors %d, stateful %d, bytes %d; want %d, %d, %d, %d",
				op, got.Count, got.Errors, got.Stateful.Count, got.Bytes, o.count, o.errors, o.stateful, o.bytes)
		}
		if len(o.durs) > 0 {
			slices.Sort(o.durs)
			if got.DurationMs == nil || got.DurationMs[0] != msOf(o.durs[0]) || got.DurationMs[len(got.DurationMs)-1] != msOf(o.durs[len(o.durs)-1]) {
				t.Errorf("%s: durations %v; want from %v to %v (the outermost spans')", op, got.DurationMs, o.durs[0], o.durs[len(o.durs)-1])
			}
		}
		gotSubs := map[int64]int64{}
		for _, g := range got.BySubscribers {
			gotSubs[g.Subscribers] = g.Count
		}
		if fmt.Sprint(gotSubs) != fmt.Sprint(o.bySubs) {
			t.Errorf("%s by subscribers = %v; want %v", op, gotSubs, o.bySubs)
		}
	}

	// The average trace samples operations, not their phases.
	for _, op := range []string{schema.OpNotify, schema.OpReceive} {
		if avg := sum.AverageTrace[op]; avg == nil || int64(avg.Operations) != byOp[op].count {
			t.Errorf("average trace of %s: %+v; want it from all %d operations", op, avg, byOp[op].count)
		}
	}

	// The filters judge the operation by its facts.
	for _, p := range []url.Values{{"topic": {"orders"}}, {"glob": {"ord*"}}, {"broadcaster": {"b1:3003"}}, {"topic": {"elsewhere"}}} {
		wantCounts := map[string]int64{}
		for _, w := range want {
			topic, glob, br, _ := w.facts(lends)
			ok := true
			if v := p.Get("topic"); v != "" {
				ok = topic == v
			}
			if v := p.Get("glob"); v != "" {
				ok = glob == v || strings.HasPrefix(topic, "ord")
			}
			if v := p.Get("broadcaster"); v != "" {
				ok = br == v
			}
			if ok {
				wantCounts[w.op]++
			}
		}
		s := summary(t, base, p)
		for _, op := range schema.Operations {
			if got := s.Operations[op].Count; got != wantCounts[op] {
				t.Errorf("%s: %s count = %d; want %d", p.Encode(), op, got, wantCounts[op])
			}
		}
	}

	// The series holds the same operations.
	series := getJSON[model.Series](t, base, "/api/series", url.Values{"step": {"10m"}})
	for _, op := range schema.Operations {
		var n, errs int64
		for _, b := range series.Buckets {
			n += b.Ops[op].Count
			errs += b.Ops[op].Errors
		}
		if n != byOp[op].count || errs != byOp[op].errors {
			t.Errorf("series %s: count %d, errors %d; want %d, %d", op, n, errs, byOp[op].count, byOp[op].errors)
		}
	}

	// Breakdowns: by service (the outermost span's) and by topic.
	for _, by := range []string{"service", "topic", "broadcaster"} {
		for _, op := range []string{schema.OpSubscribeExact, schema.OpNotify, schema.OpUnsubscribeExact, schema.OpReceive} {
			wantRows := map[string]int64{}
			for _, w := range want {
				if w.op != op {
					continue
				}
				topic, _, br, _ := w.facts(lends)
				wantRows[map[string]string{"service": w.service, "topic": topic, "broadcaster": br}[by]]++
			}
			bd := getJSON[model.Breakdown](t, base, "/api/breakdown", url.Values{"by": {by}, "op": {op}})
			gotRows := map[string]int64{}
			for _, r := range bd.Rows {
				gotRows[r.Key] = r.Count
			}
			if fmt.Sprint(gotRows) != fmt.Sprint(wantRows) {
				t.Errorf("breakdown of %s by %s = %v; want %v", op, by, gotRows, wantRows)
			}
		}
	}

	// The map: a notify from its (outermost) service, a receive to its.
	wantEdges := map[string]int64{}
	for _, w := range want {
		topic, _, _, _ := w.facts(lends)
		switch {
		case topic == "":
		case w.op == schema.OpNotify:
			wantEdges["service:"+w.service+" topic:"+topic+" notify"]++
		case w.op == schema.OpReceive:
			wantEdges["topic:"+topic+" service:"+w.service+" receive"]++
		}
	}
	m := getJSON[model.PubSubMap](t, base, "/api/map", nil)
	gotEdges := map[string]int64{}
	for _, e := range m.Edges {
		gotEdges[e.From+" "+e.To+" "+e.Op] += e.Count
	}
	if fmt.Sprint(gotEdges) != fmt.Sprint(wantEdges) {
		t.Errorf("map edges = %v; want %v", gotEdges, wantEdges)
	}

	// The search by op lists each trace once, by its outermost span.
	for _, op := range []string{schema.OpSubscribeExact, schema.OpSubscribeGlob, schema.OpNotify, schema.OpUnsubscribeExact} {
		wantItems := map[string]string{}
		for _, w := range want {
			if w.op == op {
				status := "unset"
				if w.failed {
					status = "error"
				}
				wantItems[w.traceID] = fmt.Sprintf("%s %s %g", w.service, status, msOf(w.dur))
			}
		}
		list := getJSON[model.TraceList](t, base, "/api/traces", url.Values{"op": {op}, "limit": {"500"}, "totals": {"1"}})
		var wantOps int64
		for _, w := range want {
			if w.op == op {
				wantOps++
			}
		}
		if list.TotalOperations == nil || *list.TotalOperations != wantOps || list.TotalTraces == nil || *list.TotalTraces != int64(len(wantItems)) {
			t.Errorf("search op=%s: totals %v operations in %v traces; want %d in %d", op, list.TotalOperations, list.TotalTraces, wantOps, len(wantItems))
		}
		gotItems := map[string]string{}
		for _, it := range list.Traces {
			gotItems[it.TraceID] = fmt.Sprintf("%s %s %g", it.Service, it.Status, it.DurationMs)
		}
		if fmt.Sprint(gotItems) != fmt.Sprint(wantItems) {
			t.Errorf("search op=%s = %v; want %v", op, gotItems, wantItems)
		}
	}
}

func msOf(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e6 }

// TestPhases_ClientArrivesLater checks a live pair of files: the
// broadcaster's file holds a server span whose client span is not
// written yet, so it counts; once the client's file has it, the server
// span is its phase and the operation counts once, as the client's.
func TestPhases_ClientArrivesLater(t *testing.T) {
	r := newRecorder()
	start := testNow.Add(-time.Minute)
	_, c := r.tracerOf("sub").Start(context.Background(), "subscribe", trace.WithTimestamp(start), trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(schema.Operation(schema.OpSubscribeExact), schema.Topic("orders")))
	_, s := r.tracerOf(bcService).Start(trace.ContextWithRemoteSpanContext(context.Background(), c.SpanContext()), "POST",
		trace.WithTimestamp(start), trace.WithSpanKind(trace.SpanKindServer), trace.WithAttributes(schema.Operation(schema.OpSubscribeExact)))
	s.End(trace.WithTimestamp(start.Add(time.Millisecond)))
	served := r.c.take()
	c.End(trace.WithTimestamp(start.Add(2 * time.Millisecond)))
	client := r.c.take()
	other := writeOps(t, t.TempDir(), "other.db", []opSpec{newOp(schema.OpNotify, start, time.Millisecond)})

	dir := t.TempDir()
	bc, subs := filepath.Join(dir, "bc.db"), filepath.Join(dir, "subs.db")
	writeSpans(t, bc, served)
	writeSpans(t, subs, nil)
	// The clock is 10 s after the server span's end: the client's span
	// may still come.
	v := mustOpen(t, start.Add(10*time.Second), bc, subs, other)
	base := server(t, v)
	count := func() map[string]int64 {
		bd := getJSON[model.Breakdown](t, base, "/api/breakdown", url.Values{"by": {"service"}, "op": {schema.OpSubscribeExact}, "since": {"1h-ago"}})
		got := map[string]int64{}
		for _, row := range bd.Rows {
			got[row.Key] = row.Count
		}
		return got
	}
	if got := count(); fmt.Sprint(got) != fmt.Sprint(map[string]int64{bcService: 1}) {
		t.Errorf("before the client's span: subscriptions by service = %v; want the server's alone", got)
	}
	writeSpansAppend(t, subs, client)
	if got := count(); fmt.Sprint(got) != fmt.Sprint(map[string]int64{"sub": 1}) {
		t.Errorf("after the client's span: subscriptions by service = %v; want the client's alone", got)
	}
}
