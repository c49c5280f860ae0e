package otelsetup

import (
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/lonelytrace/lonelytrace/exporter"
	"github.com/lonelytrace/lonelytrace/exporter/spanreturn"
)

// The environment variables otelsetup reads, besides the standard OTEL_*
// ones. They are read in this file only.
const (
	// EnvDB names the trace file when WithDBPath is not given.
	EnvDB = "LONELYTRACE_DB"
	// EnvMaxAge is how long the trace file keeps spans: a Go duration
	// ("168h", "90m") or a number of days ("7d", "1.5d"); "0" keeps them
	// for ever. Default exporter.DefaultMaxAge.
	EnvMaxAge = "LONELYTRACE_MAX_AGE"
	// EnvMaxSize is the most bytes the trace file may take: a number of
	// bytes with an optional unit, decimal (kB, MB, GB, TB) or binary
	// (KiB, MiB, GiB, TiB); "0" sets no limit. Default
	// exporter.DefaultMaxSize.
	EnvMaxSize = "LONELYTRACE_MAX_SIZE"
)

// Defaults of the set-up.
const (
	// DefaultDBPath is the trace file when neither WithDBPath nor
	// $LONELYTRACE_DB names one.
	DefaultDBPath = "traces.db"
	// DefaultExporters is used when OTEL_TRACES_EXPORTER is unset.
	DefaultExporters = "sqlite"
	// DefaultSQLiteQueueSize is the span queue of the batch processor in
	// front of the SQLite exporter. It is larger than the SDK's 2048 so that
	// at overload the exporter's own queue fills first and its drops are
	// counted; the SDK's queue drops without telling anyone.
	DefaultSQLiteQueueSize = 16384
	// DefaultSQLiteBatchTimeout is how often the batch processor hands
	// spans to the SQLite exporter when fewer than a batch are waiting;
	// writing locally is cheap, so the viewer sees spans within a second.
	DefaultSQLiteBatchTimeout = time.Second
	// DefaultSQLiteExportTimeout bounds how long ExportSpans waits for room
	// in a full exporter queue before it drops the batch and counts it.
	DefaultSQLiteExportTimeout = 100 * time.Millisecond
)

type config struct {
	serviceName  string
	dbPath       string
	exporterOpts []exporter.Option
	batchOpts    []sdktrace.BatchSpanProcessorOption
	sampler      sdktrace.Sampler
	processors   []sdktrace.SpanProcessor
	onExporter   []func(*exporter.Exporter)
	onServer     []func(*spanreturn.Processor)
	onClient     []func(*spanreturn.Receiver)
	spanReturn   []spanreturn.Option
}

func newConfig(opts []Option) config {
	var c config
	for _, o := range opts {
		c = o.apply(c)
	}
	c.dbPath = DBPath(c.dbPath)
	return c
}

// DBPath returns the trace file that Start writes when WithDBPath names
// path: path, else $LONELYTRACE_DB, else DefaultDBPath. A program that
// builds its own exporter.New calls it to put the file where a Start-ed
// one would: `lonelytrace collect` does, for its -db flag.
func DBPath(path string) string {
	if path == "" {
		path = os.Getenv(EnvDB)
	}
	if path == "" {
		path = DefaultDBPath
	}
	return path
}

// exporterNames returns the names of OTEL_TRACES_EXPORTER, lower-cased,
// without blanks or repeats, in order.
func exporterNames() []string {
	v := os.Getenv("OTEL_TRACES_EXPORTER")
	if strings.TrimSpace(v) == "" {
		v = DefaultExporters
	}
	var names []string
	seen := map[string]bool{}
	for _, n := range strings.Split(v, ",") {
		n = strings.ToLower(strings.TrimSpace(n))
		if n != "" && !seen[n] {
			seen[n] = true
			names = append(names, n)
		}
	}
	return names
}

func sdkDisabled() bool {
	return strings.EqualFold(strings.TrimSpace(os.Getenv("OTEL_SDK_DISABLED")), "true")
}

// otlpProtocol returns the OTLP protocol for traces, as autoexport reads it.
func otlpProtocol() string {
	p := os.Getenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
	if p == "" {
		p = os.Getenv("OTEL_EXPORTER_OTLP_PROTOCOL")
	}
	if p == "" {
		p = "http/protobuf"
	}
	return p
}

// Option configures Start.
type Option interface {
	apply(config) config
}

type optionFunc func(config) config

func (f optionFunc) apply(c config) config { return f(c) }

// WithServiceName sets service.name. OTEL_SERVICE_NAME and a service.name
// in OTEL_RESOURCE_ATTRIBUTES override it, so operators can rename a
// service without a rebuild.
func WithServiceName(name string) Option {
	return optionFunc(func(c config) config { c.serviceName = name; return c })
}

// WithDBPath sets the trace file of the sqlite exporter. Without it the
// file is $LONELYTRACE_DB, else DefaultDBPath.
func WithDBPath(path string) Option {
	return optionFunc(func(c config) config { c.dbPath = path; return c })
}

// WithExporterOptions passes options to the sqlite exporter.
func WithExporterOptions(opts ...exporter.Option) Option {
	return optionFunc(func(c config) config {
		c.exporterOpts = append(c.exporterOpts[:len(c.exporterOpts):len(c.exporterOpts)], opts...)
		return c
	})
}

// WithBatchOptions passes options to the batch processor in front of the
// sqlite exporter, after otelsetup's own defaults.
func WithBatchOptions(opts ...sdktrace.BatchSpanProcessorOption) Option {
	return optionFunc(func(c config) config {
		c.batchOpts = append(c.batchOpts[:len(c.batchOpts):len(c.batchOpts)], opts...)
		return c
	})
}

// WithSampler sets the sampler, overriding OTEL_TRACES_SAMPLER.
func WithSampler(s sdktrace.Sampler) Option {
	return optionFunc(func(c config) config { c.sampler = s; return c })
}

// WithSpanProcessor adds a span processor of the caller's to the provider,
// before the exporters' batch processors.
func WithSpanProcessor(sp sdktrace.SpanProcessor) Option {
	return optionFunc(func(c config) config {
		c.processors = append(c.processors[:len(c.processors):len(c.processors)], sp)
		return c
	})
}

// WithSQLiteExporter calls fn with the sqlite exporter once Start has
// created it (not at all when OTEL_TRACES_EXPORTER has no sqlite), for
// reading its Stats or handing it spans from elsewhere.
func WithSQLiteExporter(fn func(*exporter.Exporter)) Option {
	return optionFunc(func(c config) config {
		c.onExporter = append(c.onExporter[:len(c.onExporter):len(c.onExporter)], fn)
		return c
	})
}

// WithSpanReturnServer switches on the server side of span return: the
// spans of each request that asks go back to the client in its response
// (see package spanreturn), and the rest to this process's exporters. fn
// receives the processor, whose Middleware wraps the server's handler
// (spanreturnecho.Middleware(p, tp) for Echo):
//
//	otelsetup.WithSpanReturnServer(func(p *spanreturn.Processor) {
//		handler = p.Middleware(otel.GetTracerProvider())(handler)
//	})
//
// LONELYTRACE_SPANRETURN=off switches it off again without a rebuild.
func WithSpanReturnServer(fn func(*spanreturn.Processor)) Option {
	return optionFunc(func(c config) config {
		c.onServer = append(c.onServer[:len(c.onServer):len(c.onServer)], fn)
		return c
	})
}

// WithSpanReturnClient switches on the client side of span return: fn
// receives a Receiver whose Transport asks servers for their spans and
// stores what comes back with this process's own spans, on its clock:
//
//	otelsetup.WithSpanReturnClient(func(r *spanreturn.Receiver) {
//		client.Transport = r.Transport(client.Transport)
//	})
func WithSpanReturnClient(fn func(*spanreturn.Receiver)) Option {
	return optionFunc(func(c config) config {
		c.onClient = append(c.onClient[:len(c.onClient):len(c.onClient)], fn)
		return c
	})
}

// WithSpanReturnOptions passes options to both sides of span return.
func WithSpanReturnOptions(opts ...spanreturn.Option) Option {
	return optionFunc(func(c config) config {
		c.spanReturn = append(c.spanReturn[:len(c.spanReturn):len(c.spanReturn)], opts...)
		return c
	})
}

func envSet(key string) bool { return os.Getenv(key) != "" }

// sqliteOptions returns the sqlite exporter's options: the retention of
// $LONELYTRACE_MAX_AGE and $LONELYTRACE_MAX_SIZE, then WithExporterOptions,
// which win. A value that does not parse is an error naming the variable.
func sqliteOptions(cfg config) ([]exporter.Option, error) {
	var opts []exporter.Option
	if v := strings.TrimSpace(os.Getenv(EnvMaxAge)); v != "" {
		d, err := parseAge(v)
		if err != nil {
			return nil, fmt.Errorf("otelsetup: %s=%q: %w", EnvMaxAge, v, err)
		}
		opts = append(opts, exporter.WithMaxAge(d))
	}
	if v := strings.TrimSpace(os.Getenv(EnvMaxSize)); v != "" {
		n, err := parseSize(v)
		if err != nil {
			return nil, fmt.Errorf("otelsetup: %s=%q: %w", EnvMaxSize, v, err)
		}
		opts = append(opts, exporter.WithMaxSize(n))
	}
	return append(opts, cfg.exporterOpts...), nil
}

// parseAge reads a Go duration or a number of days ("7d").
func parseAge(s string) (time.Duration, error) {
	if s == "0" {
		return 0, nil
	}
	if days, ok := strings.CutSuffix(s, "d"); ok {
		f, err := strconv.ParseFloat(days, 64)
		if err != nil || f < 0 || f*24 > float64(math.MaxInt64/int64(time.Hour)) || math.IsNaN(f) {
			return 0, fmt.Errorf("want a duration such as 7d, 36h or 90m")
		}
		return time.Duration(f * 24 * float64(time.Hour)), nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("want a duration such as 7d, 36h or 90m")
	}
	return d, nil
}

// sizeUnits are the units parseSize knows, by their lower-case name.
var sizeUnits = map[string]float64{
	"": 1, "b": 1,
	"k": 1 << 10, "kb": 1e3, "kib": 1 << 10,
	"m": 1 << 20, "mb": 1e6, "mib": 1 << 20,
	"g": 1 << 30, "gb": 1e9, "gib": 1 << 30,
	"t": 1 << 40, "tb": 1e12, "tib": 1 << 40,
}

// parseSize reads a number of bytes with an optional unit: "1GiB",
// "500MB", "1048576", "1.5 GiB". A bare K, M, G or T is binary.
func parseSize(s string) (int64, error) {
	i := strings.IndexFunc(s, func(r rune) bool { return (r < '0' || r > '9') && r != '.' })
	num, unit := s, ""
	if i >= 0 {
		num, unit = s[:i], strings.ToLower(strings.TrimSpace(s[i:]))
	}
	f, err := strconv.ParseFloat(num, 64)
	mult, ok := sizeUnits[unit]
	if err != nil || !ok || f < 0 || f*mult >= math.MaxInt64 {
		return 0, fmt.Errorf("want a size such as 1GiB, 500MB or 1048576")
	}
	return int64(f * mult), nil
}
