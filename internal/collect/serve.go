package collect

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime/debug"
	"time"

	"google.golang.org/grpc"

	"github.com/lonelytrace/lonelytrace/exporter"
)

// DefaultDrainTimeout bounds each half of Serve's stop: answering the
// requests in flight, then writing what they queued into the file.
const DefaultDrainTimeout = 30 * time.Second

// DefaultMaxMemory is the memory Serve keeps within: 512 MiB, whatever
// the number of clients (docs/design.md, "Collect").
const DefaultMaxMemory = 512 << 20

// nonGoMemory is what collect's RSS holds beyond the Go runtime's own
// memory: the program's code and SQLite's page caches and heap.
const nonGoMemory = 96 << 20

// ServeConfig is what Serve runs: the file, the listeners, the memory
// bound and the receiver's options. `lonelytrace collect` fills it from
// its flags and the environment.
type ServeConfig struct {
	// File is the trace file the spans go into; it is created when missing.
	File string
	// ExporterOptions configure the file's writer (its retention).
	ExporterOptions []exporter.Option
	// GRPCAddr and HTTPAddr are where the OTLP/gRPC and OTLP/HTTP
	// receivers listen (host:port); empty for none, but not both.
	GRPCAddr, HTTPAddr string
	// ViewAddr is where the server View returns listens; empty for none.
	ViewAddr string
	// View returns, once the file exists, the server of the viewer over
	// it and what closes the viewer once that server has stopped. Needed
	// when ViewAddr is set; Serve owns neither the viewer nor its routes.
	View func(file string) (*http.Server, io.Closer, error)
	// MaxMemory is the memory collect keeps within, in bytes: the requests
	// in flight get half of it (WithMaxInflightBytes). 0 is
	// DefaultMaxMemory.
	MaxMemory int64
	// SetMemoryLimit sets the Go runtime's soft memory limit from
	// MaxMemory; the caller leaves it false when GOMEMLIMIT says otherwise.
	SetMemoryLimit bool
	// Options configure the receiver (WithToken, WithMaxRequestBytes…);
	// they come after the budget of MaxMemory, and win.
	Options []Option
	// DrainTimeout bounds each half of the stop; 0 is DefaultDrainTimeout.
	DrainTimeout time.Duration
	// Ready, when not nil, is called once every listener serves.
	Ready func(Addrs)
}

// Addrs are the addresses Serve listens on; nil for a listener it has not.
type Addrs struct {
	GRPC, HTTP, View net.Addr
}

// Serve receives OTLP into cfg.File until ctx ends or a server fails,
// then stops taking requests, answers those in flight, writes what they
// queued into the file and closes it. The ports are taken before the file
// is made, so that a port in use leaves no new, empty trace file behind.
// The Stats are those of the receiver when it ran, zero when it did not.
func Serve(ctx context.Context, cfg ServeConfig) (st Stats, err error) {
	if cfg.GRPCAddr == "" && cfg.HTTPAddr == "" {
		return st, errors.New("collect: no address to receive on: give a gRPC or an HTTP address")
	}
	if cfg.ViewAddr != "" && cfg.View == nil {
		return st, errors.New("collect: a viewer address without a viewer")
	}
	if cfg.MaxMemory <= 0 {
		cfg.MaxMemory = DefaultMaxMemory
	}
	if cfg.DrainTimeout <= 0 {
		cfg.DrainTimeout = DefaultDrainTimeout
	}
	lns, err := listen(cfg)
	if err != nil {
		return st, err
	}
	defer lns.close()
	ex, err := exporter.New(cfg.File, cfg.ExporterOptions...)
	if err != nil {
		return st, fmt.Errorf("collect: %w", err)
	}
	// Whatever happens below, what was accepted goes into the file.
	defer func() {
		if e := closeFile(ex, cfg.File, cfg.DrainTimeout); e != nil && err == nil {
			err = e
		}
	}()
	if cfg.SetMemoryLimit {
		debug.SetMemoryLimit(softMemoryLimit(cfg.MaxMemory))
	}
	rcv := New(FileStore(ex), append([]Option{WithMaxInflightBytes(cfg.MaxMemory / 2)}, cfg.Options...)...)
	srv, err := start(cfg, rcv, lns)
	if err != nil {
		return st, err
	}
	err = srv.wait(ctx)
	if e := srv.drain(cfg.DrainTimeout); e != nil && err == nil {
		err = e
	}
	return rcv.Stats(), err
}

// softMemoryLimit is the Go runtime's soft limit within maxMemory. Half
// of maxMemory is for the requests in flight (budget.go counts their
// decoding), the rest for the writer, SQLite, the viewer and the
// collector's slack; the limit makes the collector work harder rather
// than exceed the bound, and leaves out what the runtime does not count:
// SQLite's own allocations and the program's code.
func softMemoryLimit(maxMemory int64) int64 {
	return max(maxMemory-nonGoMemory, maxMemory/2)
}

// listeners are Serve's sockets; a nil one is not asked for.
type listeners struct{ grpc, http, view net.Listener }

// listen takes every address of cfg, or none: on an error those taken
// are closed again.
func listen(cfg ServeConfig) (*listeners, error) {
	l := &listeners{}
	for _, a := range []struct {
		addr string
		ln   *net.Listener
	}{{cfg.GRPCAddr, &l.grpc}, {cfg.HTTPAddr, &l.http}, {cfg.ViewAddr, &l.view}} {
		if a.addr == "" {
			continue
		}
		ln, err := net.Listen("tcp", a.addr)
		if err != nil {
			l.close()
			return nil, fmt.Errorf("collect: %w", err)
		}
		*a.ln = ln
	}
	return l, nil
}

// close closes the listeners no server has taken.
func (l *listeners) close() {
	for _, ln := range []*net.Listener{&l.grpc, &l.http, &l.view} {
		if *ln != nil {
			(*ln).Close()
			*ln = nil
		}
	}
}

// servers are Serve's running servers; a nil one was not asked for.
type servers struct {
	grpc       *grpc.Server
	http, view *http.Server
	viewer     io.Closer
	// errc receives what each server's Serve returns.
	errc chan error
}

// start opens the viewer, when cfg asks for one, and serves every
// listener of lns, which the servers then own; it calls cfg.Ready.
func start(cfg ServeConfig, rcv *Receiver, lns *listeners) (*servers, error) {
	s := &servers{errc: make(chan error, 3)}
	if lns.view != nil {
		var err error
		if s.view, s.viewer, err = cfg.View(cfg.File); err != nil {
			return nil, err
		}
	}
	var addrs Addrs
	if lns.grpc != nil {
		s.grpc = rcv.NewGRPCServer()
		s.serve(func(ln net.Listener) error { return s.grpc.Serve(ln) }, lns.grpc)
		addrs.GRPC = lns.grpc.Addr()
	}
	if lns.http != nil {
		s.http = &http.Server{
			Handler:           rcv,
			ReadHeaderTimeout: 5 * time.Second,
			ReadTimeout:       60 * time.Second,
			WriteTimeout:      60 * time.Second,
			IdleTimeout:       120 * time.Second,
			MaxHeaderBytes:    64 << 10,
		}
		s.serve(s.http.Serve, lns.http)
		addrs.HTTP = lns.http.Addr()
	}
	if lns.view != nil {
		s.serve(s.view.Serve, lns.view)
		addrs.View = lns.view.Addr()
	}
	*lns = listeners{} // the servers own them now
	if cfg.Ready != nil {
		cfg.Ready(addrs)
	}
	return s, nil
}

// serve runs one server's Serve on ln in a goroutine of its own.
func (s *servers) serve(serve func(net.Listener) error, ln net.Listener) {
	go func() { s.errc <- serve(ln) }()
}

// wait returns when ctx ends (nil) or a server fails (its error).
func (s *servers) wait(ctx context.Context) error {
	select {
	case err := <-s.errc:
		return fmt.Errorf("collect: %w", err)
	case <-ctx.Done():
		return nil
	}
}

// drain stops taking requests and answers those in flight, within
// timeout, then closes the viewer; the caller's flush then writes what
// the requests queued.
func (s *servers) drain(timeout time.Duration) (err error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if s.http != nil {
		if e := s.http.Shutdown(ctx); e != nil {
			err = fmt.Errorf("collect: stop OTLP/HTTP: %w", e)
		}
	}
	if s.grpc != nil {
		stopGRPC(ctx, s.grpc)
	}
	if s.view != nil {
		if e := s.view.Shutdown(ctx); e != nil && err == nil {
			err = fmt.Errorf("collect: stop the viewer: %w", e)
		}
	}
	if s.viewer != nil {
		// The viewer only reads: closing it loses nothing collected.
		s.viewer.Close()
	}
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

// closeFile writes what ex holds into the file at path and closes it,
// within timeout.
func closeFile(ex *exporter.Exporter, path string, timeout time.Duration) (err error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if e := ex.ForceFlush(ctx); e != nil {
		err = fmt.Errorf("collect: flush %s: %w", path, e)
	}
	if e := ex.Shutdown(ctx); e != nil && err == nil {
		err = fmt.Errorf("collect: close %s: %w", path, e)
	}
	return err
}
