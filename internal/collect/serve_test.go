package collect

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/lonelytrace/lonelytrace/internal/otlp/otlptest"
)

// closeCounter is a viewer stand-in's io.Closer that counts its closes.
type closeCounter struct{ n atomic.Int32 }

func (c *closeCounter) Close() error { c.n.Add(1); return nil }

// running is a Serve in a goroutine of the test.
type running struct {
	addrs  Addrs
	cancel context.CancelFunc
	done   chan struct{}
	st     Stats
	err    error
}

// startServe runs Serve with cfg until stop, and waits for it to be ready.
func startServe(t *testing.T, cfg ServeConfig) *running {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{cancel: cancel, done: make(chan struct{})}
	ready := make(chan Addrs, 1)
	cfg.Ready = func(a Addrs) { ready <- a }
	go func() {
		defer close(r.done)
		r.st, r.err = Serve(ctx, cfg)
	}()
	select {
	case r.addrs = <-ready:
	case <-r.done:
		t.Fatalf("Serve returned before it was ready: %v", r.err)
	}
	t.Cleanup(func() { r.stop(t) })
	return r
}

// stop ends Serve as a signal would and waits for it to return.
func (r *running) stop(t *testing.T) (Stats, error) {
	t.Helper()
	r.cancel()
	select {
	case <-r.done:
	case <-time.After(time.Minute):
		t.Fatal("Serve did not return within a minute of its stop")
	}
	return r.st, r.err
}

func TestServe(t *testing.T) {
	t.Run("ReceiveAndDrain", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "served.db")
		viewer := &closeCounter{}
		var viewedFile string
		r := startServe(t, ServeConfig{
			File:     path,
			GRPCAddr: "127.0.0.1:0",
			HTTPAddr: "127.0.0.1:0",
			ViewAddr: "127.0.0.1:0",
			View: func(file string) (*http.Server, io.Closer, error) {
				viewedFile = file
				return &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "viewer") })}, viewer, nil
			},
			MaxMemory: 64 << 20,
		})
		if r.addrs.GRPC == nil || r.addrs.HTTP == nil || r.addrs.View == nil {
			t.Fatalf("ready with %+v; want all three addresses", r.addrs)
		}
		if viewedFile != path {
			t.Errorf("View was given %q; want %q", viewedFile, path)
		}
		if rep := post(t, "http://"+r.addrs.HTTP.String(), contentProtobuf, "", bytes.NewReader(protoBody(t, makeTraces(30, 1)))); rep.code != http.StatusOK {
			t.Fatalf("OTLP/HTTP: %d %q", rep.code, rep.raw)
		}
		cc, err := grpc.NewClient(r.addrs.GRPC.String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			t.Fatal(err)
		}
		defer cc.Close()
		if _, err := ptraceotlp.NewGRPCClient(cc).Export(context.Background(), ptraceotlp.NewExportRequestFromTraces(makeTraces(12, 2))); err != nil {
			t.Fatalf("OTLP/gRPC: %v", err)
		}
		res, err := http.Get("http://" + r.addrs.View.String() + "/")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if string(body) != "viewer" {
			t.Errorf("the view address answered %q; want the View server's %q", body, "viewer")
		}
		st, err := r.stop(t)
		if err != nil {
			t.Fatalf("Serve: %v", err)
		}
		if st.Accepted != 42 || st.Rejected != 0 || st.Refused != 0 || st.Retried != 0 {
			t.Errorf("stats = %+v; want 42 accepted, nothing else", st)
		}
		if n := otlptest.StoredSpans(t, path); n != 42 {
			t.Errorf("file holds %d spans after the stop; want 42", n)
		}
		if n := viewer.n.Load(); n != 1 {
			t.Errorf("the viewer was closed %d times; want once", n)
		}
		if _, err := net.DialTimeout("tcp", r.addrs.HTTP.String(), time.Second); err == nil {
			t.Error("the OTLP/HTTP port still takes connections after the stop")
		}
	})

	t.Run("PortTaken", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		dir := t.TempDir()
		called := false
		st, err := Serve(context.Background(), ServeConfig{
			File: filepath.Join(dir, "never.db"), HTTPAddr: "127.0.0.1:0", GRPCAddr: ln.Addr().String(),
			Ready: func(Addrs) { called = true },
		})
		if err == nil {
			t.Fatal("Serve on a taken port succeeded")
		}
		if called || st != (Stats{}) {
			t.Errorf("Serve that could not listen was ready (%v) with stats %+v", called, st)
		}
		if ents, _ := os.ReadDir(dir); len(ents) > 0 {
			t.Errorf("Serve that could not listen left %d files, the first %s", len(ents), ents[0].Name())
		}
	})

	t.Run("ViewFails", func(t *testing.T) {
		errView := errors.New("no viewer today")
		_, err := Serve(context.Background(), ServeConfig{
			File: filepath.Join(t.TempDir(), "v.db"), HTTPAddr: "127.0.0.1:0", ViewAddr: "127.0.0.1:0",
			View:  func(string) (*http.Server, io.Closer, error) { return nil, nil, errView },
			Ready: func(Addrs) { t.Error("Serve was ready though its viewer failed") },
		})
		if !errors.Is(err, errView) {
			t.Errorf("Serve = %v; want the viewer's error", err)
		}
	})

	t.Run("NothingToReceive", func(t *testing.T) {
		dir := t.TempDir()
		if _, err := Serve(context.Background(), ServeConfig{File: filepath.Join(dir, "n.db"), ViewAddr: "127.0.0.1:0"}); err == nil {
			t.Error("Serve without a receiver address succeeded")
		}
		if ents, _ := os.ReadDir(dir); len(ents) > 0 {
			t.Errorf("a refused Serve left %s", ents[0].Name())
		}
	})
}
