package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"

	"github.com/lonelytrace/lonelytrace/internal/collect"
	"github.com/lonelytrace/lonelytrace/otelsetup"
	"github.com/lonelytrace/lonelytrace/viewer"
)

var collectCommand = command{
	name:    "collect",
	summary: "receive OTLP traces from any SDK into a trace file, and serve the viewer over it",
	help: `Listens for OTLP/gRPC and OTLP/HTTP (protobuf or JSON, gzip) and stores
what it receives through the exporter's writer, with the retention of
$LONELYTRACE_MAX_AGE and $LONELYTRACE_MAX_SIZE. Point any OpenTelemetry SDK
at it with OTEL_EXPORTER_OTLP_ENDPOINT. A request is answered once its
spans are committed to the file, so an answered span survives a kill of
collect; concurrent requests share one commit. A full writer, or requests in
flight beyond the memory budget (half of -max-memory), are answered with a
retryable status (HTTP 503 with Retry-After, gRPC UNAVAILABLE with
RetryInfo); bad payloads with 400 / INVALID_ARGUMENT; a request whose spans
are partly rejected with a partial success. It listens on loopback unless
told otherwise; any other address needs a token. SIGINT or SIGTERM stops
it after writing everything it accepted.`,
	flags: func(fs *flag.FlagSet) func(context.Context, []string, io.Writer) error {
		o := collectOptions{
			db:       fs.String("db", "", "trace file to write (default $"+otelsetup.EnvDB+", else "+otelsetup.DefaultDBPath+")"),
			grpcAddr: fs.String("otlp-grpc", "127.0.0.1:4317", "address of the OTLP/gRPC receiver; empty for none"),
			httpAddr: fs.String("otlp-http", "127.0.0.1:4318", "address of the OTLP/HTTP receiver; empty for none"),
			viewAddr: fs.String("view", "", "address to serve the viewer of the file on as well; empty for none"),
			prefix:   fs.String("prefix", "/stats", "path the viewer is served under"),
			token:    fs.String("token", "", "bearer token every request must carry, to the receivers and the viewer (default $"+envViewerToken+"); needed to listen beyond loopback"),
			maxReq:   fs.Int64("max-request-bytes", collect.DefaultMaxRequestBytes, "largest OTLP request accepted, after decompression"),
			maxMem:   fs.Int64("max-memory", collect.DefaultMaxMemory, "the memory (peak RSS) collect keeps within, in bytes, whatever the number of clients: requests in flight get half of it, and the Go runtime's soft limit is set from it unless $GOMEMLIMIT is set"),
		}
		return o.serve
	},
}

// serveCollect runs the collect command with args until ctx ends.
func serveCollect(ctx context.Context, args []string, stdout io.Writer) error {
	return collectCommand.run(ctx, args, stdout)
}

type collectOptions struct {
	db, grpcAddr, httpAddr, viewAddr, prefix, token *string
	maxReq, maxMem                                  *int64
}

// serve receives OTLP into a trace file until ctx ends, then stops taking
// requests, drains what it accepted into the file and returns nil.
func (o collectOptions) serve(ctx context.Context, args []string, stdout io.Writer) error {
	cfg, tok, err := o.config(args)
	if err != nil {
		return err
	}
	var viewPath string
	cfg.View = func(path string) (*http.Server, io.Closer, error) {
		v, err := viewer.Open(path)
		if err != nil {
			return nil, nil, err
		}
		var srv *http.Server
		srv, viewPath = viewServer(v, *o.prefix, tok)
		return srv, v, nil
	}
	ready := false
	cfg.Ready = func(a collect.Addrs) {
		ready = true
		fmt.Fprintf(stdout, "lonelytrace: collecting into %s: %s\n", cfg.File, collectAddrs(a, viewPath, tok))
	}
	st, err := collect.Serve(ctx, cfg)
	if ready {
		// Spans and requests apart: a refused request's spans were never counted.
		fmt.Fprintf(stdout, "lonelytrace: collect stopped: %s accepted, %d rejected; %s refused, %d told to retry\n",
			countOf(int(st.Accepted), "span", "spans"), st.Rejected, countOf(int(st.Refused), "request", "requests"), st.Retried)
	}
	return err
}

// config checks the flags and the environment and returns what collect
// serves, but for the viewer and the ready line, and the token.
func (o collectOptions) config(args []string) (collect.ServeConfig, string, error) {
	var cfg collect.ServeConfig
	if len(args) > 0 {
		return cfg, "", fmt.Errorf("collect: unexpected argument %q: the file is given with -db", args[0])
	}
	if *o.grpcAddr == "" && *o.httpAddr == "" {
		return cfg, "", errors.New("collect: both -otlp-grpc and -otlp-http are empty: nothing to receive on")
	}
	if *o.maxMem <= 0 {
		return cfg, "", fmt.Errorf("collect: -max-memory %d: want a positive number of bytes", *o.maxMem)
	}
	tok, err := tokenFlag("collect", *o.token)
	if err != nil {
		return cfg, "", err
	}
	for _, a := range []struct{ flag, addr string }{{"-otlp-grpc", *o.grpcAddr}, {"-otlp-http", *o.httpAddr}, {"-view", *o.viewAddr}} {
		if a.addr == "" {
			continue
		}
		if err := checkLoopback("collect", a.flag, a.addr); err != nil && tok == "" {
			return cfg, "", err
		}
	}
	opts, err := otelsetup.ExporterOptions()
	if err != nil {
		return cfg, "", fmt.Errorf("collect: %w", err)
	}
	return collect.ServeConfig{
		File:            otelsetup.DBPath(*o.db),
		ExporterOptions: opts,
		GRPCAddr:        *o.grpcAddr,
		HTTPAddr:        *o.httpAddr,
		ViewAddr:        *o.viewAddr,
		MaxMemory:       *o.maxMem,
		// GOMEMLIMIT, when set, is the runtime's soft limit already.
		SetMemoryLimit: os.Getenv("GOMEMLIMIT") == "",
		Options:        []collect.Option{collect.WithToken(tok), collect.WithMaxRequestBytes(*o.maxReq)},
	}, tok, nil
}

// collectAddrs lists the addresses collect listens on as its first line
// says them, which is where clients and tests read the ports from;
// viewPath is the viewer's path prefix.
func collectAddrs(a collect.Addrs, viewPath, tok string) string {
	var where []string
	if a.GRPC != nil {
		where = append(where, "otlp-grpc="+a.GRPC.String())
	}
	if a.HTTP != nil {
		where = append(where, "otlp-http=http://"+a.HTTP.String()+collect.TracesPath)
	}
	if a.View != nil {
		where = append(where, "view=http://"+a.View.String()+viewPath+"/"+tokenHint(tok))
	}
	return strings.Join(where, " ")
}
