package collect

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"

	"github.com/lonelytrace/lonelytrace/exporter"
)

// BenchmarkCollectLatency measures the answer time of collect at low
// load: one client sending requests of 10 spans one after another over
// OTLP/HTTP, each answered once its spans are committed. Reported: the
// median and 99th percentile of the answer times.
//
//	go test ./internal/collect -run XXX -bench CollectLatency -benchtime 400x -count 6
func BenchmarkCollectLatency(b *testing.B) {
	ex, err := exporter.New(filepath.Join(b.TempDir(), "traces.db"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { ex.Shutdown(context.Background()) })
	srv := httptest.NewServer(New(FileStore(ex)))
	b.Cleanup(srv.Close)
	var seq atomic.Uint64
	var took []time.Duration
	for b.Loop() {
		body, err := ptraceotlp.NewExportRequestFromTraces(uniqueTraces(10, &seq)).MarshalProto()
		if err != nil {
			b.Fatal(err)
		}
		began := time.Now()
		res, err := http.Post(srv.URL+TracesPath, contentProtobuf, bytes.NewReader(body))
		if err != nil {
			b.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusOK {
			b.Fatalf("status %d", res.StatusCode)
		}
		took = append(took, time.Since(began))
	}
	slices.Sort(took)
	b.ReportMetric(float64(took[len(took)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(took[len(took)*99/100].Microseconds()), "p99-µs")
}
