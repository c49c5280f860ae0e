package load

import (
	"context"
	"errors"
	"os"
	"sync/atomic"

	"go.opentelemetry.io/otel"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/lonelytrace/lonelytrace/exporter"
	"github.com/lonelytrace/lonelytrace/otelsetup"
)

const tracerName = "github.com/lonelytrace/lonelytrace/internal/load"

func startLonelytrace(ctx context.Context, path string) (pipeline, error) {
	if err := envExporters(); err != nil {
		return pipeline{}, err
	}
	var exp *exporter.Exporter
	shutdown, err := otelsetup.Start(ctx, otelsetup.WithDBPath(path), otelsetup.WithServiceName("lonelytrace-load"),
		otelsetup.WithSQLiteExporter(func(e *exporter.Exporter) { exp = e }))
	if err != nil {
		return pipeline{}, err
	}
	if exp == nil {
		_ = shutdown(ctx)
		return pipeline{}, errors.New("otelsetup built no sqlite exporter (is OTEL_SDK_DISABLED set?)")
	}
	return pipeline{
		tracer: otel.GetTracerProvider().Tracer(tracerName),
		counts: func() (int64, int64, int64) {
			s := exp.Stats()
			return s.Written, s.Dropped, s.Failed
		},
		shutdown: shutdown,
		file:     path,
	}, nil
}

// sqliteBatcher is the batch processor otelsetup puts in front of the
// SQLite exporter, so that the yardsticks run behind the same one: its
// defaults, giving way to the OTEL_BSP_* variables as otelsetup's do.
func sqliteBatcher(e sdktrace.SpanExporter) sdktrace.SpanProcessor {
	var opts []sdktrace.BatchSpanProcessorOption
	if os.Getenv("OTEL_BSP_MAX_QUEUE_SIZE") == "" {
		opts = append(opts, sdktrace.WithMaxQueueSize(otelsetup.DefaultSQLiteQueueSize))
	}
	if os.Getenv("OTEL_BSP_SCHEDULE_DELAY") == "" {
		opts = append(opts, sdktrace.WithBatchTimeout(otelsetup.DefaultSQLiteBatchTimeout))
	}
	if os.Getenv("OTEL_BSP_EXPORT_TIMEOUT") == "" {
		opts = append(opts, sdktrace.WithExportTimeout(otelsetup.DefaultSQLiteExportTimeout))
	}
	return sdktrace.NewBatchSpanProcessor(e, opts...)
}

var _ sdktrace.SpanExporter = (*discard)(nil)

// discard counts the spans it is handed and keeps none: the SDK's cost
// alone.
type discard struct{ n atomic.Int64 }

func (d *discard) ExportSpans(_ context.Context, spans []sdktrace.ReadOnlySpan) error {
	d.n.Add(int64(len(spans)))
	return nil
}

func (d *discard) Shutdown(context.Context) error { return nil }

func startDiscard() pipeline {
	d := &discard{}
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(sqliteBatcher(d)))
	return pipeline{
		tracer:   tp.Tracer(tracerName),
		counts:   func() (int64, int64, int64) { return d.n.Load(), 0, 0 },
		shutdown: tp.Shutdown,
	}
}
