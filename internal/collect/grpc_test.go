package collect

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/encoding/gzip"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// serveGRPC runs r's gRPC server on loopback and returns a client of it.
func serveGRPC(t testing.TB, r *Receiver) ptraceotlp.GRPCClient {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := r.NewGRPCServer()
	go s.Serve(ln)
	t.Cleanup(s.Stop)
	cc, err := grpc.NewClient(ln.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return ptraceotlp.NewGRPCClient(cc)
}

func TestReceiver_GRPC(t *testing.T) {
	st := mustStore(t)
	const tok = "0123456789abcdef0123"
	c := serveGRPC(t, New(st, WithToken(tok), WithQueueWait(0), WithRetryAfter(250*time.Millisecond), WithMaxRequestBytes(1<<20)))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	authed := metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+tok)
	req := ptraceotlp.NewExportRequestFromTraces(makeTraces(3, 1))

	t.Run("Token", func(t *testing.T) {
		_, err := c.Export(ctx, req)
		if status.Code(err) != codes.Unauthenticated {
			t.Errorf("without the token: %v; want UNAUTHENTICATED", err)
		}
	})
	t.Run("Stored", func(t *testing.T) {
		resp, err := c.Export(authed, req)
		if err != nil {
			t.Fatal(err)
		}
		if n := resp.PartialSuccess().RejectedSpans(); n != 0 {
			t.Errorf("rejected = %d; want 0", n)
		}
		resp, err = c.Export(authed, ptraceotlp.NewExportRequestFromTraces(makeTraces(2, 2)), grpc.UseCompressor(gzip.Name))
		if err != nil {
			t.Fatalf("gzip: %v", err)
		}
		if n := resp.PartialSuccess().RejectedSpans(); n != 0 {
			t.Errorf("gzip: rejected = %d; want 0", n)
		}
	})
	t.Run("Busy", func(t *testing.T) {
		resume := st.stall(t)
		defer resume()
		_, err := c.Export(authed, req)
		s := status.Convert(err)
		if s.Code() != codes.Unavailable {
			t.Fatalf("stalled: %v; want UNAVAILABLE", err)
		}
		var ri *errdetails.RetryInfo
		for _, d := range s.Details() {
			if d, ok := d.(*errdetails.RetryInfo); ok {
				ri = d
			}
		}
		if ri == nil || ri.RetryDelay.AsDuration() != 250*time.Millisecond {
			t.Errorf("details = %v; want RetryInfo of 250ms", s.Details())
		}
	})
	t.Run("TooLarge", func(t *testing.T) {
		big := makeTraces(1, 3)
		sp := big.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0)
		sp.Attributes().PutStr("blob", string(make([]byte, 2<<20)))
		_, err := c.Export(authed, ptraceotlp.NewExportRequestFromTraces(big))
		if status.Code(err) != codes.ResourceExhausted {
			t.Errorf("2 MiB request: %v; want RESOURCE_EXHAUSTED", err)
		}
	})
	if n := st.count(t); n != 5 {
		t.Errorf("stored %d spans; want 5", n)
	}
}

// TestReceiver_ReuseSpans sends protobuf requests of many sizes from three
// clients, over HTTP and then over gRPC, each client one request after
// another, so that nearly every request is decoded into the span array
// of one already stored: every stored span keeps the name and attributes
// its own request gave it, and no span of an earlier, larger request is
// stored again.
func TestReceiver_ReuseSpans(t *testing.T) {
	const clients, each = 3, 30
	for _, proto := range []string{"HTTP", "gRPC"} {
		t.Run(proto, func(t *testing.T) {
			st := mustStore(t)
			var send func(ptrace.Traces) string
			if proto == "HTTP" {
				url := serve(t, New(st))
				send = func(td ptrace.Traces) string {
					if a := post(t, url, contentProtobuf, "", bytes.NewReader(protoBody(t, td))); a.code != http.StatusOK {
						return "status " + itoa(a.code) + ": " + string(a.raw)
					}
					return ""
				}
			} else {
				c := serveGRPC(t, New(st))
				send = func(td ptrace.Traces) string {
					ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
					defer cancel()
					if _, err := c.Export(ctx, ptraceotlp.NewExportRequestFromTraces(td)); err != nil {
						return err.Error()
					}
					return ""
				}
			}
			want := map[string]int64{} // span name → body size attribute
			reqs := make([][]ptrace.Traces, clients)
			for c := range clients {
				for k := range each {
					seed := byte(c*each + k)
					// Sizes rise and fall, so that a request finds an
					// array both larger and smaller than it needs.
					n := 1 + (k*37+c*11)%300
					td := makeTraces(n, seed)
					ps := td.ResourceSpans().At(0).ScopeSpans().At(0).Spans()
					for i := range ps.Len() {
						name := "op-" + itoa(int(seed)) + "-" + itoa(i)
						ps.At(i).SetName(name)
						ps.At(i).Attributes().PutInt("messaging.message.body.size", int64(n*1000+i))
						want[name] = int64(n*1000 + i)
					}
					reqs[c] = append(reqs[c], td)
				}
			}
			errs := make(chan string, clients)
			for c := range clients {
				go func() {
					for _, td := range reqs[c] {
						if e := send(td); e != "" {
							errs <- e
							return
						}
					}
					errs <- ""
				}()
			}
			for range clients {
				if e := <-errs; e != "" {
					t.Fatal(e)
				}
			}
			st.checkNamesAndSizes(t, want)
		})
	}
}
