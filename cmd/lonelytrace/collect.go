package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime/debug"
	"strings"
	"time"

	"google.golang.org/grpc"

	"github.com/lonelytrace/lonelytrace/exporter"
	"github.com/lonelytrace/lonelytrace/internal/collect"
	"github.com/lonelytrace/lonelytrace/otelsetup"
	"github.com/lonelytrace/lonelytrace/viewer"
)

// collectDrainTimeout bounds the graceful stop: answering the requests in
// flight, then writing what they queued into the file.
const collectDrainTimeout = 30 * time.Second

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
			maxMem:   fs.Int64("max-memory", defaultCollectMemory, "the memory (peak RSS) collect keeps within, in bytes, whatever the number of clients: requests in flight get half of it, and the Go runtime's soft limit is set from it unless $GOMEMLIMIT is set"),
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

// defaultCollectMemory is collect's memory bound: 512 MiB, whatever the
// number of clients (docs/design.md, "Collect").
const defaultCollectMemory = 512 << 20

// collectNonGoMemory is what collect's RSS holds beyond the Go runtime's
// own memory: the program's code and SQLite's page caches and heap.
const collectNonGoMemory = 96 << 20

// serve receives OTLP into a trace file until ctx ends, then stops taking
// requests, drains what it accepted into the file and returns nil.
func (o collectOptions) serve(ctx context.Context, args []string, stdout io.Writer) (err error) {
	db, grpcAddr, httpAddr, viewAddr, prefix, token, maxReq := o.db, o.grpcAddr, o.httpAddr, o.viewAddr, o.prefix, o.token, o.maxReq
	if len(args) > 0 {
		return fmt.Errorf("collect: unexpected argument %q: the file is given with -db", args[0])
	}
	if *grpcAddr == "" && *httpAddr == "" {
		return errors.New("collect: both -otlp-grpc and -otlp-http are empty: nothing to receive on")
	}
	if *o.maxMem <= 0 {
		return fmt.Errorf("collect: -max-memory %d: want a positive number of bytes", *o.maxMem)
	}
	tok, err := tokenFlag("collect", *token)
	if err != nil {
		return err
	}
	for _, a := range []struct{ flag, addr string }{{"-otlp-grpc", *grpcAddr}, {"-otlp-http", *httpAddr}, {"-view", *viewAddr}} {
		if a.addr == "" {
			continue
		}
		if err := checkLoopback("collect", a.flag, a.addr); err != nil && tok == "" {
			return err
		}
	}
	path := *db
	if path == "" {
		path = os.Getenv(otelsetup.EnvDB)
	}
	if path == "" {
		path = otelsetup.DefaultDBPath
	}
	opts, err := otelsetup.ExporterOptions()
	if err != nil {
		return fmt.Errorf("collect: %w", err)
	}
	// The ports are taken before the file is made, so that a port in use
	// leaves no new, empty trace file behind.
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	listen := func(addr string) (net.Listener, error) {
		if addr == "" {
			return nil, nil
		}
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return nil, fmt.Errorf("collect: %w", err)
		}
		lns = append(lns, ln)
		return ln, nil
	}
	gln, err := listen(*grpcAddr)
	if err != nil {
		return err
	}
	hln, err := listen(*httpAddr)
	if err != nil {
		return err
	}
	vln, err := listen(*viewAddr)
	if err != nil {
		return err
	}
	ex, err := exporter.New(path, opts...)
	if err != nil {
		return fmt.Errorf("collect: %w", err)
	}
	// Whatever happens below, what was accepted goes into the file.
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), collectDrainTimeout)
		defer cancel()
		if e := ex.ForceFlush(sctx); e != nil && err == nil {
			err = fmt.Errorf("collect: flush %s: %w", path, e)
		}
		if e := ex.Shutdown(sctx); e != nil && err == nil {
			err = fmt.Errorf("collect: close %s: %w", path, e)
		}
	}()
	// Half for the requests in flight (budget.go counts their decoding),
	// the rest for the writer, SQLite, the viewer and the collector's slack.
	// The Go runtime's soft limit makes the collector work harder rather
	// than exceed the bound; it leaves out what the runtime does not count:
	// SQLite's own allocations and the program's code.
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(max(*o.maxMem-collectNonGoMemory, *o.maxMem/2))
	}
	rcv := collect.New(collect.FileStore(ex), collect.WithToken(tok), collect.WithMaxRequestBytes(*maxReq), collect.WithMaxInflightBytes(*o.maxMem/2))

	var v *viewer.Viewer
	if vln != nil {
		if v, err = viewer.Open(path); err != nil {
			return err
		}
		defer v.Close()
	}

	errc := make(chan error, 3)
	var where []string
	var gsrv *grpc.Server
	if gln != nil {
		gsrv = rcv.NewGRPCServer()
		go func() { errc <- gsrv.Serve(gln) }()
		where = append(where, "otlp-grpc="+gln.Addr().String())
	}
	var hsrv *http.Server
	if hln != nil {
		hsrv = &http.Server{
			Handler:           rcv,
			ReadHeaderTimeout: 5 * time.Second,
			ReadTimeout:       60 * time.Second,
			WriteTimeout:      60 * time.Second,
			IdleTimeout:       120 * time.Second,
			MaxHeaderBytes:    64 << 10,
		}
		go func() { errc <- hsrv.Serve(hln) }()
		where = append(where, "otlp-http=http://"+hln.Addr().String()+collect.TracesPath)
	}
	var vsrv *http.Server
	if vln != nil {
		var p string
		vsrv, p = viewServer(v, *prefix, tok)
		go func() { errc <- vsrv.Serve(vln) }()
		where = append(where, "view=http://"+vln.Addr().String()+p+"/"+tokenHint(tok))
	}
	lns = nil // the servers own them now
	fmt.Fprintf(stdout, "lonelytrace: collecting into %s: %s\n", path, strings.Join(where, " "))

	select {
	case err = <-errc:
		err = fmt.Errorf("collect: %w", err)
	case <-ctx.Done():
	}
	// Stop taking requests and answer those in flight; the deferred flush
	// then writes what they queued.
	sctx, cancel := context.WithTimeout(context.Background(), collectDrainTimeout)
	defer cancel()
	if hsrv != nil {
		if e := hsrv.Shutdown(sctx); e != nil && err == nil {
			err = fmt.Errorf("collect: stop OTLP/HTTP: %w", e)
		}
	}
	if gsrv != nil {
		stopGRPC(sctx, gsrv)
	}
	if vsrv != nil {
		if e := vsrv.Shutdown(sctx); e != nil && err == nil {
			err = fmt.Errorf("collect: stop the viewer: %w", e)
		}
	}
	st := rcv.Stats()
	// Spans and requests apart: a refused request's spans were never counted.
	fmt.Fprintf(stdout, "lonelytrace: collect stopped: %s accepted, %d rejected; %s refused, %d told to retry\n",
		countOf(int(st.Accepted), "span", "spans"), st.Rejected, countOf(int(st.Refused), "request", "requests"), st.Retried)
	return err
}

// stopGRPC lets the calls in flight finish, until ctx ends.
func stopGRPC(ctx context.Context, s *grpc.Server) {
	done := make(chan struct{})
	go func() { s.GracefulStop(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		s.Stop()
		<-done
	}
}
