package main

import (
	"bytes"
	"context"
	"path/filepath"
	"regexp"
	"strconv"
	"sync"
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

// spanKeeper keeps the spans its providers end.
type spanKeeper struct {
	mu    sync.Mutex
	spans []sdktrace.ReadOnlySpan
}

func (k *spanKeeper) OnStart(context.Context, sdktrace.ReadWriteSpan) {}
func (k *spanKeeper) OnEnd(s sdktrace.ReadOnlySpan) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.spans = append(k.spans, s)
}
func (k *spanKeeper) Shutdown(context.Context) error   { return nil }
func (k *spanKeeper) ForceFlush(context.Context) error { return nil }

// writeFile stores spans in a new trace file at path.
func writeFile(t *testing.T, path string, spans []sdktrace.ReadOnlySpan) {
	t.Helper()
	e, err := exporter.New(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.ExportSpans(context.Background(), spans); err != nil {
		t.Fatal(err)
	}
	if err := e.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// TestSummary_OperationCountsOnce checks that `lonelytrace summary`
// counts an operation once when both its client span and the
// broadcaster's server span under it carry it, in one file or two, and
// still counts a server span whose client stored nothing and a receive
// under a notify (docs/design.md, "One operation, many spans").
func TestSummary_OperationCountsOnce(t *testing.T) {
	keeper := &spanKeeper{}
	tracer := func(service string) trace.Tracer {
		tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(keeper),
			sdktrace.WithResource(resource.NewSchemaless(attribute.String("service.name", service))))
		return tp.Tracer("test")
	}
	sub, bc := tracer("sub"), tracer("broadcaster")
	at := time.Now().Add(-time.Minute)
	// The numbers the spans below make, counted by hand.
	const subscribes, failedSubscribes, notifies, receives, serverOnly = 5, 2, 3, 3, 1
	for i := range subscribes {
		start := at.Add(time.Duration(i) * time.Second)
		ctx, c := sub.Start(context.Background(), "subscribe", trace.WithTimestamp(start), trace.WithSpanKind(trace.SpanKindClient),
			trace.WithAttributes(schema.Operation(schema.OpSubscribeExact), schema.Topic("orders"), schema.Broadcaster("b1")))
		_, send := sub.Start(ctx, "send request", trace.WithTimestamp(start))
		_, s := bc.Start(trace.ContextWithRemoteSpanContext(context.Background(), send.SpanContext()), "POST",
			trace.WithTimestamp(start), trace.WithSpanKind(trace.SpanKindServer),
			trace.WithAttributes(schema.Operation(schema.OpSubscribeExact), schema.Broadcaster("b1")))
		// The server failed every one; the client only the first two,
		// which are the subscriptions that failed.
		s.SetStatus(codes.Error, "refused")
		s.End(trace.WithTimestamp(start.Add(time.Millisecond)))
		send.End(trace.WithTimestamp(start.Add(2 * time.Millisecond)))
		if i < failedSubscribes {
			c.SetStatus(codes.Error, "refused")
		}
		c.End(trace.WithTimestamp(start.Add(3 * time.Millisecond)))
	}
	for i := range notifies {
		start := at.Add(time.Duration(10+i) * time.Second)
		ctx, n := sub.Start(context.Background(), "publish", trace.WithTimestamp(start), schema.Notify("orders", 10, "b1"))
		_, s := bc.Start(ctx, "POST", trace.WithTimestamp(start))
		_, r := sub.Start(trace.ContextWithRemoteSpanContext(context.Background(), s.SpanContext()), "deliver",
			trace.WithTimestamp(start.Add(time.Millisecond)), trace.WithAttributes(schema.Operation(schema.OpReceive), schema.Topic("orders")))
		r.End(trace.WithTimestamp(start.Add(2 * time.Millisecond)))
		s.End(trace.WithTimestamp(start.Add(3 * time.Millisecond)))
		n.End(trace.WithTimestamp(start.Add(4 * time.Millisecond)))
	}
	remote := trace.NewSpanContext(trace.SpanContextConfig{TraceID: trace.TraceID{1, 2, 3}, SpanID: trace.SpanID{4, 5, 6}, TraceFlags: trace.FlagsSampled, Remote: true})
	_, s := bc.Start(trace.ContextWithRemoteSpanContext(context.Background(), remote), "POST", trace.WithTimestamp(at), trace.WithSpanKind(trace.SpanKindServer),
		trace.WithAttributes(schema.Operation(schema.OpSubscribeExact), schema.Broadcaster("b2")))
	s.End(trace.WithTimestamp(at.Add(time.Millisecond)))

	dir := t.TempDir()
	one := filepath.Join(dir, "one.db")
	writeFile(t, one, keeper.spans)
	clients, servers := filepath.Join(dir, "clients.db"), filepath.Join(dir, "servers.db")
	var cs, ss []sdktrace.ReadOnlySpan
	for _, s := range keeper.spans {
		if v, _ := s.Resource().Set().Value("service.name"); v.AsString() == "broadcaster" {
			ss = append(ss, s)
		} else {
			cs = append(cs, s)
		}
	}
	writeFile(t, clients, cs)
	writeFile(t, servers, ss)

	counts := regexp.MustCompile(`(?m)^(notify|receive|subscribe exact)\s+(\d+)\s+(\d+)`)
	want := map[string][2]int{
		"notify":          {notifies, 0},
		"receive":         {receives, 0},
		"subscribe exact": {subscribes + serverOnly, failedSubscribes},
	}
	for _, files := range [][]string{{one}, {servers, clients}} {
		var out bytes.Buffer
		args := append([]string{"summary", "-since", "beginning", "-by", "broadcaster,service", "-op", schema.OpSubscribeExact}, files...)
		if err := run(args, &out); err != nil {
			t.Fatal(err)
		}
		got := map[string][2]int{}
		for _, m := range counts.FindAllStringSubmatch(out.String(), -1) {
			total, _ := strconv.Atoi(m[2])
			failed, _ := strconv.Atoi(m[3])
			got[m[1]] = [2]int{total, failed}
		}
		for op, w := range want {
			if got[op] != w {
				t.Errorf("%v: %s total, failed = %v; want %v\n%s", files, op, got[op], w, out.String())
			}
		}
		for _, row := range []string{`(?m)^b1\s+5\s`, `(?m)^b2\s+1\s`, `(?m)^sub\s+5\s`, `(?m)^broadcaster\s+1\s`} {
			if !regexp.MustCompile(row).MatchString(out.String()) {
				t.Errorf("%v: no breakdown row %s\n%s", files, row, out.String())
			}
		}
	}
}
