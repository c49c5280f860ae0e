package spanreturn_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/lonelytrace/lonelytrace/exporter/spanreturn"
)

// The broadcaster returns the spans of a notify; the subscriber stores them
// beside its own. In production both exporters are lonelytrace exporters
// (exporter.New) and the broadcaster may have none.
func Example() {
	// Broadcaster.
	proc := spanreturn.NewProcessor()
	btp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(proc),
		sdktrace.WithResource(resource.NewSchemaless(attribute.String("service.name", "broadcaster"))))
	notify := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, span := btp.Tracer("broadcaster").Start(r.Context(), "find subscribers")
		span.End()
		io.WriteString(w, "2")
	})
	srv := httptest.NewServer(proc.Middleware(btp)(notify))
	defer srv.Close()

	// Subscriber.
	exp := tracetest.NewInMemoryExporter()
	recv := spanreturn.NewReceiver(exp)
	stp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp),
		sdktrace.WithResource(resource.NewSchemaless(attribute.String("service.name", "subscriber"))))
	client := &http.Client{Transport: recv.Transport(nil)}

	ctx, span := stp.Tracer("subscriber").Start(context.Background(), "notify")
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL, nil)
	resp, err := client.Do(req)
	if err != nil {
		panic(err)
	}
	resp.Body.Close()
	span.End()

	var names []string
	for _, s := range exp.GetSpans() {
		names = append(names, s.Name+" ("+s.Resource.String()+")")
	}
	slices.Sort(names)
	for _, n := range names {
		fmt.Println(n)
	}
	fmt.Println("answers:", recv.Stats().Answers)
	// Output:
	// POST (service.name=broadcaster)
	// find subscribers (service.name=broadcaster)
	// notify (service.name=subscriber)
	// answers: 1
}

// On a stateful connection the answer's frame carries the field that
// Finish returns; the client hands it to Receive with the times it sent
// the request and got the answer.
func ExampleProcessor_Begin() {
	proc := spanreturn.NewProcessor()
	stp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(proc))
	exp := tracetest.NewInMemoryExporter()
	recv := spanreturn.NewReceiver(exp)
	ctp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))

	// Client: the request frame carries the W3C trace context.
	ctx, notify := ctp.Tracer("subscriber").Start(context.Background(), "notify")
	frame := propagation.MapCarrier{}
	propagation.TraceContext{}.Inject(ctx, frame)
	sent := time.Now()

	// Server: one span per message, gathered until the answer.
	sctx, span := stp.Tracer("broadcaster").Start(
		propagation.TraceContext{}.Extract(context.Background(), frame), "notify",
		trace.WithSpanKind(trace.SpanKindServer))
	g := proc.Begin(span)
	_, phase := stp.Tracer("broadcaster").Start(sctx, "find subscribers")
	phase.End()
	field := g.Finish() // goes in the answer frame
	span.End()

	// Client: the answer frame arrives.
	err := recv.Receive(ctx, notify.SpanContext(), field, sent, time.Now())
	notify.End()
	fmt.Println(err, len(exp.GetSpans()))
	// Output: <nil> 3
}
