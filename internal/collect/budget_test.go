package collect

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"runtime"
	"runtime/metrics"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/status"

	"github.com/lonelytrace/lonelytrace/internal/otlp"
)

// gateStore holds the first Store call until open is closed, then hands
// every call to the file's store: a request kept in flight on purpose.
type gateStore struct {
	*testStore
	entered chan struct{}
	open    chan struct{}
	once    sync.Once
}

func (g *gateStore) Store(ctx context.Context, rec otlp.Records, wait time.Duration) (int, int, string, error) {
	first := false
	g.once.Do(func() { first = true })
	if first {
		close(g.entered)
		select {
		case <-g.open:
		case <-ctx.Done():
			return 0, 0, "", ctx.Err()
		}
	}
	return g.testStore.Store(ctx, rec, wait)
}

// rawClient is a gRPC connection that sends OTLP requests as encoded
// bytes, so that many clients can share one body, as they would their
// own memory elsewhere.
func rawClient(t testing.TB, addr string) *grpc.ClientConn {
	t.Helper()
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()), grpc.WithDefaultCallOptions(grpc.ForceCodecV2(grpcCodec{})))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return cc
}

func rawExport(ctx context.Context, cc *grpc.ClientConn, body []byte) error {
	var out rawMessage
	err := cc.Invoke(ctx, exportMethod, &rawMessage{data: mem.BufferSlice{mem.SliceBuffer(body)}}, &out)
	if out.data != nil {
		out.free()
	}
	return err
}

func serveGRPCAddr(t testing.TB, r *Receiver) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := r.NewGRPCServer()
	go s.Serve(ln)
	t.Cleanup(s.Stop)
	return ln.Addr().String()
}

// TestReceiver_Budget: while a request holds most of the memory budget,
// another large one is told to retry, over either protocol, before its
// body is decoded (HTTP: announced; gRPC: estimated from the requests
// before it); a small one still passes; and every reservation is given
// back, whatever the answer.
func TestReceiver_Budget(t *testing.T) {
	st := mustStore(t)
	gs := &gateStore{testStore: st, entered: make(chan struct{}), open: make(chan struct{})}
	big := protoBody(t, makeTraces(300, 1))
	limit := decodeCost(len(big), false) * 3 / 2 // one big request, not two
	// A request limit of twice the body lets a gRPC request start reading
	// beside the held one, and find out only then that it does not fit.
	r := New(gs, WithMaxInflightBytes(limit), WithMaxRequestBytes(int64(2*len(big))), WithQueueWait(50*time.Millisecond), WithRetryAfter(time.Second))
	url := serve(t, r)
	cc := rawClient(t, serveGRPCAddr(t, r))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	held := make(chan error, 1)
	go func() { held <- rawExport(ctx, cc, big) }()
	select {
	case <-gs.entered:
	case err := <-held:
		t.Fatalf("the held request ended: %v", err)
	}
	if used := r.budget.inUse(); used != decodeCost(len(big), false) {
		t.Errorf("in use while one request is held = %d; want its decode cost %d", used, decodeCost(len(big), false))
	}

	t.Run("HTTPRetry", func(t *testing.T) {
		rep := post(t, url, contentProtobuf, "", bytes.NewReader(protoBody(t, makeTraces(300, 2))))
		if rep.code != http.StatusServiceUnavailable || rep.retryAfter != "1" || rep.status == nil || !strings.Contains(rep.status.Message, "memory budget") {
			t.Errorf("answer = %d, Retry-After %q, %v; want 503 with Retry-After 1 naming the memory budget", rep.code, rep.retryAfter, rep.status)
		}
	})
	t.Run("GRPCRetry", func(t *testing.T) {
		err := rawExport(ctx, cc, protoBody(t, makeTraces(300, 3)))
		s := status.Convert(err)
		var ri *errdetails.RetryInfo
		for _, d := range s.Details() {
			if d, ok := d.(*errdetails.RetryInfo); ok {
				ri = d
			}
		}
		if s.Code() != codes.Unavailable || ri == nil || !strings.Contains(s.Message(), "memory budget") {
			t.Errorf("answer = %v, details %v; want UNAVAILABLE with RetryInfo naming the memory budget", err, s.Details())
		}
	})
	t.Run("SmallPasses", func(t *testing.T) {
		rep := post(t, url, contentJSON, "", bytes.NewReader(jsonBody(t, makeTraces(2, 4))))
		if rep.code != http.StatusOK {
			t.Errorf("small request: %d (%s); want 200 beside the held one", rep.code, rep.raw)
		}
	})
	close(gs.open)
	if err := <-held; err != nil {
		t.Fatalf("held request: %v", err)
	}
	t.Run("BadBodyGivesBack", func(t *testing.T) {
		err := rawExport(ctx, cc, []byte{0xff, 0xff, 0xff})
		if status.Code(err) != codes.InvalidArgument {
			t.Errorf("undecodable request: %v; want INVALID_ARGUMENT", err)
		}
	})
	if used := r.budget.inUse(); used != 0 {
		t.Errorf("in use after every answer = %d; want 0", used)
	}
	if n := st.count(t); n != 302 {
		t.Errorf("stored %d spans; want 302 (the held request's and the small one's)", n)
	}
}

func heapObjects() uint64 {
	s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// heapPeak samples the live heap (as of the last collection, so that
// garbage the collector has not reached yet does not count) until stop is
// closed, and returns the highest.
func heapPeak(stop <-chan struct{}) <-chan uint64 {
	out := make(chan uint64, 1)
	go func() {
		s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
		var peak uint64
		t := time.NewTicker(2 * time.Millisecond)
		defer t.Stop()
		for {
			metrics.Read(s)
			peak = max(peak, s[0].Value.Uint64())
			select {
			case <-stop:
				out <- peak
				return
			case <-t.C:
			}
		}
	}()
	return out
}

// TestReceiver_BudgetLoad: 32 clients, 24 over gRPC and 8 over HTTP,
// each sending a 1 MiB request at once and retrying when told to: every
// span is stored, and the receiver's heap stays near its budget instead
// of growing with the clients (each request decodes into about 8x its
// size: some 250 MiB for all of them at once).
func TestReceiver_BudgetLoad(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("a load test: the race detector slows SQLite tenfold and its figures mean nothing")
	}
	const budgetBytes = 24 << 20
	st := mustStore(t)
	r := New(st, WithMaxInflightBytes(budgetBytes), WithQueueWait(100*time.Millisecond), WithMaxConcurrent(32))
	url := serve(t, r)
	addr := serveGRPCAddr(t, r)
	td := makeTraces(7500, 5)
	body := protoBody(t, td)
	t.Logf("request: %d spans, %d bytes of protobuf", td.SpanCount(), len(body))

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	runtime.GC()
	base := heapObjects()
	stop := make(chan struct{})
	peak := heapPeak(stop)
	var sent, retries atomic.Int64
	var wg sync.WaitGroup
	const clients = 32
	errs := make(chan error, clients)
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var cc *grpc.ClientConn
			if c < 24 {
				cc = rawClient(t, addr)
			}
			for range 1 {
				for {
					var retry bool
					if cc != nil {
						err := rawExport(ctx, cc, body)
						retry = status.Code(err) == codes.Unavailable
						if err != nil && !retry {
							errs <- err
							return
						}
					} else {
						req, _ := http.NewRequestWithContext(ctx, "POST", url+TracesPath, bytes.NewReader(body))
						req.Header.Set("Content-Type", contentProtobuf)
						res, err := http.DefaultClient.Do(req)
						if err != nil {
							errs <- err
							return
						}
						res.Body.Close()
						retry = res.StatusCode == http.StatusServiceUnavailable
						if res.StatusCode != http.StatusOK && !retry {
							errs <- &failure{codes.Unknown, res.Status}
							return
						}
					}
					if !retry {
						sent.Add(1)
						break
					}
					retries.Add(1)
					time.Sleep(50 * time.Millisecond)
				}
			}
		}()
	}
	wg.Wait()
	close(stop)
	p := <-peak
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	grew := p - min(p, base)
	t.Logf("%d requests stored after %d retries; the live heap grew by %d MiB at most (budget %d MiB)", sent.Load(), retries.Load(), grew>>20, budgetBytes>>20)
	if n := st.count(t); n != clients*td.SpanCount() {
		t.Errorf("stored %d spans; want %d", n, clients*td.SpanCount())
	}
	// The budget, the writer's queue and transaction, the clients' side:
	// well under what all the requests at once take (270 MiB measured
	// without the budget).
	if limit := uint64(2*budgetBytes + 16<<20); grew > limit {
		t.Errorf("the live heap grew by %d MiB; want at most %d MiB", grew>>20, limit>>20)
	}
}

// TestBudget_Order: waiters are served in order, a small request does not
// overtake a queued large one, a grower goes first, and a waiter that
// gives up leaves the queue.
func TestBudget_Order(t *testing.T) {
	ctx := context.Background()
	b := newBudget(10)
	queued := func(n int) {
		t.Helper()
		for range 1000 {
			b.mu.Lock()
			l := len(b.waiters)
			b.mu.Unlock()
			if l == n {
				return
			}
			time.Sleep(time.Millisecond)
		}
		t.Fatalf("the queue never held %d waiters", n)
	}
	if err := b.take(ctx, 8, 0, false); err != nil {
		t.Fatal(err)
	}
	big := make(chan error, 1)
	go func() { big <- b.take(ctx, 5, time.Minute, false) }()
	queued(1)
	if err := b.take(ctx, 1, 0, false); err != errNoRoom {
		t.Errorf("a small take behind a queued large one = %v; want errNoRoom (no overtaking)", err)
	}
	grow := make(chan error, 1)
	go func() { grow <- b.take(ctx, 4, time.Minute, true) }()
	queued(2)
	b.give(4) // used 4: the grower (4) fits first, then the large one (5) does not
	if err := <-grow; err != nil {
		t.Fatalf("grower: %v", err)
	}
	if b.inUse() != 8 {
		t.Errorf("in use = %d; want 8", b.inUse())
	}
	b.give(3) // used 5: the large one fits
	if err := <-big; err != nil {
		t.Fatalf("large: %v", err)
	}
	if err := b.take(ctx, 6, 10*time.Millisecond, false); err != errNoRoom {
		t.Errorf("take beyond the limit for 10ms = %v; want errNoRoom", err)
	}
	queued(0)
	if b.inUse() != 10 {
		t.Errorf("in use = %d; want 10 (the waiter that gave up took nothing)", b.inUse())
	}
	if err := b.take(ctx, 100, 0, false); err != errNoRoom {
		t.Errorf("take of more than the limit while full = %v; want errNoRoom", err)
	}
	b.give(10)
	if err := b.take(ctx, 100, 0, false); err != nil || b.inUse() != 10 {
		t.Errorf("take of more than the limit while empty = %v, in use %d; want it clamped to the limit", err, b.inUse())
	}
}

// TestReceiver_GRPCOtherService: a service registered beside the trace
// service still speaks protobuf through the receiver's codec.
func TestReceiver_GRPCOtherService(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := New(mustStore(t)).NewGRPCServer()
	healthpb.RegisterHealthServer(s, health.NewServer())
	go s.Serve(ln)
	t.Cleanup(s.Stop)
	cc, err := grpc.NewClient(ln.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := healthpb.NewHealthClient(cc).Check(ctx, &healthpb.HealthCheckRequest{})
	if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Errorf("health check = %v, %v; want SERVING", resp, err)
	}
}
