package viewer_test

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"os"
	"path/filepath"

	"github.com/labstack/echo/v4"

	"github.com/lonelytrace/lonelytrace/exporter"
	"github.com/lonelytrace/lonelytrace/viewer"
)

// Mount the viewer on an Echo app at /stats: the page is /stats/ and the
// JSON is under /stats/api/.
func ExampleViewer_Register() {
	dir, _ := os.MkdirTemp("", "example")
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "trace.db")
	makeExampleFile(path)

	v, err := viewer.Open(path)
	if err != nil {
		log.Fatal(err)
	}
	defer v.Close()
	e := echo.New()
	v.Register(e.Group("/stats"))

	// A plain net/http app mounts the same Echo instance as a handler.
	mux := http.NewServeMux()
	mux.Handle("/stats/", e)
	for _, r := range e.Routes() {
		if r.Method == http.MethodGet && r.Path != "/stats" {
			fmt.Println(r.Path)
		}
	}
	// Unordered output:
	// /stats/
	// /stats/index.html
	// /stats/api/summary
	// /stats/api/series
	// /stats/api/breakdown
	// /stats/api/map
	// /stats/api/traces
	// /stats/api/traces/:trace_id
	// /stats/trace/:trace_id
}

func makeExampleFile(path string) {
	r := newRecorder()
	r.record(context.Background(), newOp("notify", testNow, 1))
	e, err := exporter.New(path)
	if err != nil {
		log.Fatal(err)
	}
	if err := e.ExportSpans(context.Background(), r.c.take()); err != nil {
		log.Fatal(err)
	}
	if err := e.Shutdown(context.Background()); err != nil {
		log.Fatal(err)
	}
}
