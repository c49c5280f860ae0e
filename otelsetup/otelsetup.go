package otelsetup

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"

	"go.opentelemetry.io/contrib/exporters/autoexport"
	"go.opentelemetry.io/contrib/propagators/autoprop"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/exporters/stdout/stdouttrace"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"

	"github.com/lonelytrace/lonelytrace/exporter"
	"github.com/lonelytrace/lonelytrace/exporter/spanreturn"
)

// Start installs the OpenTelemetry SDK for this process in one call: the
// resource (service name, OTEL_RESOURCE_ATTRIBUTES, host and process), the
// sampler (OTEL_TRACES_SAMPLER), the propagators (W3C trace context and
// baggage, or OTEL_PROPAGATORS), and one batch processor per exporter named
// by OTEL_TRACES_EXPORTER (default sqlite; also otlp, console, none, or a
// comma-separated list of them). It sets the global tracer provider and
// propagator and returns a shutdown that flushes and closes everything.
//
// With OTEL_SDK_DISABLED=true it installs nothing and returns a no-op
// shutdown. Start may be called again after shutdown.
func Start(ctx context.Context, opts ...Option) (shutdown func(context.Context) error, err error) {
	noop := func(context.Context) error { return nil }
	if sdkDisabled() {
		return noop, nil
	}
	cfg := newConfig(opts)
	registerAutoexport()
	autoexportSQLite.latest.Store(&cfg)

	res, err := newResource(ctx, cfg.serviceName)
	if err != nil {
		return noop, err
	}
	exporters, err := newExporters(ctx, cfg)
	if err != nil {
		return noop, err
	}

	tpOpts := []sdktrace.TracerProviderOption{sdktrace.WithResource(res)}
	if cfg.sampler != nil {
		tpOpts = append(tpOpts, sdktrace.WithSampler(cfg.sampler))
	}
	for _, sp := range cfg.processors {
		tpOpts = append(tpOpts, sdktrace.WithSpanProcessor(sp))
	}
	batchers := make([]sdktrace.SpanProcessor, len(exporters))
	for i, e := range exporters {
		batchers[i] = newBatcher(e, cfg)
	}
	var server *spanreturn.Processor
	if len(cfg.onServer) > 0 {
		// The span-return processor holds a request's spans back for its
		// response and passes everything else on to the batchers.
		server = spanreturn.NewProcessor(append(cfg.spanReturn, spanreturn.WithNext(batchers...))...)
		tpOpts = append(tpOpts, sdktrace.WithSpanProcessor(server))
	} else {
		for _, b := range batchers {
			tpOpts = append(tpOpts, sdktrace.WithSpanProcessor(b))
		}
	}
	tp := sdktrace.NewTracerProvider(tpOpts...)
	otel.SetTracerProvider(tp)
	otel.SetTextMapPropagator(autoprop.NewTextMapPropagator())

	// The callbacks run once the globals are set: they typically wrap
	// handlers with otel.GetTracerProvider().
	if server != nil {
		for _, fn := range cfg.onServer {
			fn(server)
		}
	}
	if len(cfg.onClient) > 0 {
		// Returned spans join this process's own on their way out, through
		// the same batch processors, so they reach every exporter without
		// the request waiting for any of them.
		r := spanreturn.NewReceiver(processorExporter(batchers), cfg.spanReturn...)
		for _, fn := range cfg.onClient {
			fn(r)
		}
	}
	for _, e := range exporters {
		if le, ok := e.(*exporter.Exporter); ok {
			for _, fn := range cfg.onExporter {
				fn(le)
			}
		}
	}

	var once sync.Once
	var shutdownErr error
	return func(ctx context.Context) error {
		once.Do(func() {
			// Flushes every batch processor, then shuts its exporter down.
			shutdownErr = tp.Shutdown(ctx)
		})
		return shutdownErr
	}, nil
}

func newBatcher(e sdktrace.SpanExporter, cfg config) sdktrace.SpanProcessor {
	if _, ok := e.(*exporter.Exporter); !ok {
		return sdktrace.NewBatchSpanProcessor(e)
	}
	// Our defaults give way to the standard OTEL_BSP_* variables, which
	// the SDK reads itself, and to WithBatchOptions.
	var opts []sdktrace.BatchSpanProcessorOption
	if !envSet("OTEL_BSP_MAX_QUEUE_SIZE") {
		opts = append(opts, sdktrace.WithMaxQueueSize(DefaultSQLiteQueueSize))
	}
	if !envSet("OTEL_BSP_SCHEDULE_DELAY") {
		opts = append(opts, sdktrace.WithBatchTimeout(DefaultSQLiteBatchTimeout))
	}
	if !envSet("OTEL_BSP_EXPORT_TIMEOUT") {
		opts = append(opts, sdktrace.WithExportTimeout(DefaultSQLiteExportTimeout))
	}
	return sdktrace.NewBatchSpanProcessor(e, append(opts, cfg.batchOpts...)...)
}

func newResource(ctx context.Context, serviceName string) (*resource.Resource, error) {
	if serviceName == "" {
		serviceName = "unknown_service:" + filepath.Base(os.Args[0])
	}
	// Later sources win: the code's service name, then the environment.
	res, err := resource.New(ctx,
		resource.WithAttributes(semconv.ServiceName(serviceName)),
		resource.WithTelemetrySDK(),
		resource.WithHost(),
		resource.WithProcessPID(),
		resource.WithProcessExecutableName(),
		resource.WithFromEnv(),
	)
	if err != nil && res == nil {
		return nil, fmt.Errorf("otelsetup: resource: %w", err)
	}
	// A partial resource (a detector failed) is still worth using.
	if err != nil {
		otel.Handle(fmt.Errorf("otelsetup: resource: %w", err))
	}
	return res, nil
}

// newExporters builds one exporter per name of OTEL_TRACES_EXPORTER. On an
// error it shuts down those already built.
func newExporters(ctx context.Context, cfg config) (exps []sdktrace.SpanExporter, err error) {
	defer func() {
		if err != nil {
			for _, e := range exps {
				_ = e.Shutdown(ctx)
			}
			exps = nil
		}
	}()
	names := exporterNames()
	for _, name := range names {
		var e sdktrace.SpanExporter
		switch name {
		case "none":
			continue
		case "sqlite":
			ex, err := newSQLiteExporter(cfg)
			if err != nil {
				return exps, err
			}
			e = ex
		case "otlp":
			switch p := otlpProtocol(); p {
			case "grpc":
				e, err = otlptracegrpc.New(ctx)
			case "http/protobuf":
				e, err = otlptracehttp.New(ctx)
			default:
				err = fmt.Errorf("OTLP protocol %q is not supported (want grpc or http/protobuf)", p)
			}
		case "console":
			e, err = stdouttrace.New()
		default:
			if len(names) > 1 {
				return exps, fmt.Errorf("otelsetup: OTEL_TRACES_EXPORTER %q: in a list only sqlite, otlp, console and none are known", name)
			}
			// A single name may be one another package registered with
			// autoexport; it reads OTEL_TRACES_EXPORTER itself.
			e, err = autoexport.NewSpanExporter(ctx)
		}
		if err != nil {
			return exps, fmt.Errorf("otelsetup: exporter %q: %w", name, err)
		}
		exps = append(exps, e)
	}
	return exps, nil
}

// newSQLiteExporter builds the sqlite exporter of cfg: its file, the
// retention of the environment, then WithExporterOptions. Start and the
// autoexport factory both build it here and nowhere else.
func newSQLiteExporter(cfg config) (*exporter.Exporter, error) {
	opts, err := sqliteOptions(cfg)
	if err != nil {
		return nil, err
	}
	e, err := exporter.New(cfg.dbPath, opts...)
	if err != nil {
		return nil, fmt.Errorf("otelsetup: %w", err)
	}
	return e, nil
}

// autoexportSQLite is the only state otelsetup keeps between calls, and it
// cannot be a value passed around: autoexport's registry is process-wide
// and takes each name once (a second registration panics), so the factory
// registered on first use must find the configuration of the latest Start
// here, not that of the first.
var autoexportSQLite struct {
	once   sync.Once
	latest atomic.Pointer[config]
}

// registerAutoexport registers "sqlite" with autoexport, once per process,
// so that programs that build their exporter with
// autoexport.NewSpanExporter can choose lonelytrace with
// OTEL_TRACES_EXPORTER=sqlite alone.
func registerAutoexport() {
	autoexportSQLite.once.Do(func() {
		autoexport.RegisterSpanExporter("sqlite", func(context.Context) (sdktrace.SpanExporter, error) {
			cfg := autoexportSQLite.latest.Load()
			if cfg == nil {
				c := newConfig(nil)
				cfg = &c
			}
			e, err := newSQLiteExporter(*cfg)
			if err != nil {
				return nil, err // not a typed nil in the interface
			}
			return e, nil
		})
	})
}

// RegisterAutoexport makes OTEL_TRACES_EXPORTER=sqlite work for programs
// that call autoexport.NewSpanExporter without calling Start. The file is
// $LONELYTRACE_DB, else DefaultDBPath. Start calls it itself; calling it
// more than once is harmless.
func RegisterAutoexport() { registerAutoexport() }

// processorExporter hands spans to span processors as if they had just
// ended here. OnEnd of a batch processor only queues, so ExportSpans never
// waits for a disk or a network.
type processorExporter []sdktrace.SpanProcessor

func (p processorExporter) ExportSpans(_ context.Context, spans []sdktrace.ReadOnlySpan) error {
	for _, sp := range p {
		for _, s := range spans {
			sp.OnEnd(s)
		}
	}
	return nil
}

// Shutdown does nothing: the provider shuts the processors down.
func (processorExporter) Shutdown(context.Context) error { return nil }
