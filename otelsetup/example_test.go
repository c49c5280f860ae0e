package otelsetup_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"go.opentelemetry.io/otel"

	"github.com/lonelytrace/lonelytrace/exporter"
	"github.com/lonelytrace/lonelytrace/otelsetup"
)

// The whole SDK in one call; OTEL_TRACES_EXPORTER could send the same spans
// to a collector instead.
func ExampleStart() {
	dir, _ := os.MkdirTemp("", "example")
	defer os.RemoveAll(dir)

	var exp *exporter.Exporter
	shutdown, err := otelsetup.Start(context.Background(),
		otelsetup.WithServiceName("orders"),
		otelsetup.WithDBPath(filepath.Join(dir, "traces.db")),
		otelsetup.WithSQLiteExporter(func(e *exporter.Exporter) { exp = e }))
	if err != nil {
		log.Fatal(err)
	}
	_, span := otel.Tracer("orders").Start(context.Background(), "notify")
	span.End()
	if err := shutdown(context.Background()); err != nil {
		log.Fatal(err)
	}
	fmt.Println("spans written:", exp.Stats().Written)
	// Output: spans written: 1
}

// A program that builds its own exporter puts the file where Start would:
// the path it was given, else $LONELYTRACE_DB, else traces.db.
func ExampleDBPath() {
	ex, err := exporter.New(otelsetup.DBPath(os.Getenv("ORDERS_TRACE_FILE")))
	if err != nil {
		log.Fatal(err)
	}
	defer ex.Shutdown(context.Background())
}
