package schema_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/lonelytrace/lonelytrace/internal/fnmatch"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/lonelytrace/lonelytrace/exporter"
	"github.com/lonelytrace/lonelytrace/schema"
)

// selectionFile writes traces through the real exporter, in many small
// transactions, and returns its path and the ids of two traces the
// window [cutSince, cutUntil) cuts: inOp has its notify inside the window
// and a plain span before it; outOp has its notify before the window and
// a plain span inside it.
func selectionFile(t *testing.T) (path string, inOp, outOp trace.TraceID) {
	t.Helper()
	ctx := context.Background()
	path = filepath.Join(t.TempDir(), "sel.db")
	e, err := exporter.New(path)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(7, 11))
	topics := []string{"orders/eu", "orders/eu/paris", "orders/us", "ordersX", "billing/eu", "a]b", ""}
	globs := []string{"orders/*", "[!o]*", "o[rx]*", "*/eu"}
	ops := []string{"", schema.OpNotify, schema.OpReceive, schema.OpSubscribeGlob, schema.OpSubscribeExact}
	brokers := []string{"b1", "b2", ""}
	var pending tracetest.SpanStubs
	flush := func() {
		if err := e.ExportSpans(ctx, pending.Snapshots()); err != nil {
			t.Fatal(err)
		}
		if err := e.ForceFlush(ctx); err != nil {
			t.Fatal(err)
		}
		pending = nil
	}
	sid := uint64(0)
	span := func(tid trace.TraceID, start time.Time, op, topic, glob, broker string) tracetest.SpanStub {
		sid++
		var s trace.SpanID
		binary.BigEndian.PutUint64(s[:], sid)
		var attrs []attribute.KeyValue
		if op != "" {
			attrs = append(attrs, schema.Operation(op))
		}
		if topic != "" {
			attrs = append(attrs, schema.Topic(topic))
		}
		if glob != "" {
			attrs = append(attrs, schema.Glob(glob))
		}
		if broker != "" {
			attrs = append(attrs, schema.Broadcaster(broker))
		}
		return tracetest.SpanStub{
			Name:        fmt.Sprintf("span %d", sid),
			SpanContext: trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: s, TraceFlags: trace.FlagsSampled}),
			StartTime:   start, EndTime: start.Add(time.Millisecond), Attributes: attrs,
		}
	}
	base := time.Unix(1_800_000_000, 0)
	for i := range 400 {
		var tid trace.TraceID
		binary.BigEndian.PutUint64(tid[8:], uint64(i)+1)
		tid[0] = byte(rng.IntN(256)) // trace ids out of order of writing
		at := base.Add(time.Duration(i) * 10 * time.Millisecond)
		for range 1 + rng.IntN(4) {
			// Spans of a trace start up to 150 ms apart, so windows cut traces.
			start := at.Add(time.Duration(rng.IntN(150)) * time.Millisecond)
			op := ops[rng.IntN(len(ops))]
			glob := ""
			if op == schema.OpSubscribeGlob {
				glob = globs[rng.IntN(len(globs))]
			}
			pending = append(pending, span(tid, start, op, topics[rng.IntN(len(topics))], glob, brokers[rng.IntN(len(brokers))]))
			if rng.IntN(5) == 0 {
				flush()
			}
		}
	}
	inOp = trace.TraceID{0xff, 1}
	outOp = trace.TraceID{0xff, 2}
	cut := base.Add(2 * time.Second) // the cut window starts here
	pending = append(pending,
		span(inOp, cut.Add(-time.Millisecond), "", "", "", ""),
		span(outOp, cut.Add(-time.Millisecond), schema.OpNotify, "orders/eu", "", "b1"))
	flush()
	pending = append(pending,
		span(inOp, cut.Add(time.Millisecond), schema.OpNotify, "orders/eu", "", "b1"),
		span(outOp, cut.Add(time.Millisecond), "", "", "", ""))
	flush()
	if err := e.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	return path, inOp, outOp
}

// TestTraceSelection checks the selection rule against an oracle that
// reads every span with a Reader and decides each trace in Go, the glob
// by a regular expression (fnmatchRegexp) rather than GlobPattern.
func TestTraceSelection(t *testing.T) {
	ctx := context.Background()
	path, inOp, outOp := selectionFile(t)
	db, err := schema.OpenRead(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	r := schema.NewReader(db)
	var all []schema.Span
	for after := int64(0); ; {
		got, err := r.After(ctx, after, 1000)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) == 0 {
			break
		}
		all = append(all, got...)
		after = got[len(got)-1].ID
	}
	var batches int
	if err := db.QueryRow("SELECT count(*) FROM batches").Scan(&batches); err != nil || batches < 50 {
		t.Fatalf("the file has %d batches, %v; want many", batches, err)
	}

	oracle := func(sel schema.TraceSelection) []trace.TraceID {
		since := sel.Since
		if sel.SinceBeginning {
			since = math.MinInt64
		}
		filtered := sel.Broadcaster != "" || sel.Topic != "" || sel.Glob != ""
		set := map[trace.TraceID]bool{}
		for _, s := range all {
			start := s.Start.UnixNano()
			if start < since || start >= sel.Until {
				continue
			}
			ps := s.PubSub
			if filtered && (ps.Op == "" ||
				sel.Broadcaster != "" && ps.Broadcaster != sel.Broadcaster ||
				sel.Topic != "" && ps.Topic != sel.Topic ||
				sel.Glob != "" && ps.Glob != sel.Glob && !fnmatch.Regexp(sel.Glob).MatchString(ps.Topic)) {
				continue
			}
			set[s.TraceID] = true
		}
		var out []trace.TraceID
		for id := range set {
			out = append(out, id)
		}
		slices.SortFunc(out, func(a, b trace.TraceID) int { return slices.Compare(a[:], b[:]) })
		return out
	}

	base := int64(1_800_000_000) * 1e9
	cutSince, cutUntil := base+2*int64(time.Second), base+3*int64(time.Second)
	cases := []struct {
		name string
		sel  schema.TraceSelection
		// with and without say which of the cut traces the selection
		// must hold and must not.
		with, without []trace.TraceID
	}{
		{"Everything", schema.TraceSelection{SinceBeginning: true, Until: math.MaxInt64}, []trace.TraceID{inOp, outOp}, nil},
		{"WindowCutsTraces", schema.TraceSelection{Since: cutSince, Until: cutUntil}, []trace.TraceID{inOp, outOp}, nil},
		{"Empty", schema.TraceSelection{Since: cutSince, Until: cutSince}, nil, []trace.TraceID{inOp, outOp}},
		{"Broadcaster", schema.TraceSelection{Since: cutSince, Until: cutUntil, Broadcaster: "b1"}, []trace.TraceID{inOp}, []trace.TraceID{outOp}},
		{"Topic", schema.TraceSelection{SinceBeginning: true, Until: cutUntil, Topic: "orders/eu"}, []trace.TraceID{inOp, outOp}, nil},
		{"TopicCut", schema.TraceSelection{Since: cutSince, Until: cutUntil, Topic: "orders/eu"}, []trace.TraceID{inOp}, []trace.TraceID{outOp}},
		{"StarAcrossSlash", schema.TraceSelection{Since: cutSince, Until: cutUntil, Glob: "orders/*"}, []trace.TraceID{inOp}, []trace.TraceID{outOp}},
		{"StarInside", schema.TraceSelection{SinceBeginning: true, Until: math.MaxInt64, Glob: "*/eu*"}, []trace.TraceID{inOp, outOp}, nil},
		{"NegatedClass", schema.TraceSelection{SinceBeginning: true, Until: math.MaxInt64, Glob: "[!o]*"}, nil, []trace.TraceID{inOp, outOp}},
		{"ClassAndBroadcaster", schema.TraceSelection{Since: base, Until: cutUntil, Glob: "o[rx]*", Broadcaster: "b2"}, nil, []trace.TraceID{inOp, outOp}},
		{"BracketLiteral", schema.TraceSelection{SinceBeginning: true, Until: math.MaxInt64, Glob: "a]*"}, nil, nil},
		{"AnyTopic", schema.TraceSelection{SinceBeginning: true, Until: math.MaxInt64, Glob: "*"}, []trace.TraceID{inOp, outOp}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := c.sel.Traces(ctx, db)
			if err != nil {
				t.Fatal(err)
			}
			want := oracle(c.sel)
			if !slices.Equal(got, want) {
				t.Errorf("%+v selects %d traces; the oracle %d", c.sel, len(got), len(want))
			}
			if c.name != "Empty" && len(want) == 0 {
				t.Errorf("%+v: the oracle selects nothing; the case tests nothing", c.sel)
			}
			for _, id := range c.with {
				if !slices.Contains(got, id) {
					t.Errorf("%+v lacks trace %s", c.sel, id)
				}
			}
			for _, id := range c.without {
				if slices.Contains(got, id) {
					t.Errorf("%+v holds trace %s", c.sel, id)
				}
			}
		})
	}

	t.Run("GlobSubscriptions", func(t *testing.T) {
		// "[!o]*" matches no topic of an "o..." subscription, yet the
		// subscriptions to that very pattern are selected: the oracle
		// must count some traces only by their pattern.
		sel := schema.TraceSelection{SinceBeginning: true, Until: math.MaxInt64, Glob: "[!o]*"}
		byPattern := 0
		for _, s := range all {
			if s.PubSub.Glob == sel.Glob && !fnmatch.Regexp(sel.Glob).MatchString(s.PubSub.Topic) {
				byPattern++
			}
		}
		if byPattern == 0 {
			t.Error("no span is selected by its own pattern alone; the file tests nothing")
		}
	})
}
