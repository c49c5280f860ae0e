package schema_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/lonelytrace/lonelytrace/exporter"
	"github.com/lonelytrace/lonelytrace/schema"
)

// Instrumented code marks a notify with the schema's helpers; the file then
// answers in SQL.
func Example() {
	dir, _ := os.MkdirTemp("", "example")
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "traces.db")

	exp, err := exporter.New(path)
	if err != nil {
		log.Fatal(err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp))
	_, span := tp.Tracer("example").Start(context.Background(), "notify",
		trace.WithSpanKind(trace.SpanKindProducer),
		schema.Notify("orders/eu", 512, "broadcaster-1"))
	span.SetAttributes(schema.Subscribers(3))
	span.End()
	tp.Shutdown(context.Background())

	db, err := schema.OpenRead(context.Background(), path)
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	var op, topic string
	var size, subscribers int
	db.QueryRow(`SELECT op, topic, body_size, subscribers FROM spans_view`).Scan(&op, &topic, &size, &subscribers)
	fmt.Println(op, topic, size, subscribers)
	// Output: notify orders/eu 512 3
}
