package exporter_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/lonelytrace/lonelytrace/exporter"
)

// The exporter behind the SDK's batch processor, without otelsetup.
func Example() {
	dir, _ := os.MkdirTemp("", "example")
	defer os.RemoveAll(dir)

	exp, err := exporter.New(filepath.Join(dir, "traces.db"))
	if err != nil {
		log.Fatal(err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp))

	_, span := tp.Tracer("example").Start(context.Background(), "notify")
	span.End()

	// Shutdown flushes the batch processor, then the exporter's queue.
	if err := tp.Shutdown(context.Background()); err != nil {
		log.Fatal(err)
	}
	s := exp.Stats()
	fmt.Printf("written %d, dropped %d, failed %d\n", s.Written, s.Dropped, s.Failed)
	// Output: written 1, dropped 0, failed 0
}
