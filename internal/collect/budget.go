package collect

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/encoding"
	grpcproto "google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/status"

	"github.com/lonelytrace/lonelytrace/internal/otlp"
)

// The memory a request takes, as multiples of its decompressed body:
// the body itself and the records decoded from it, alive until the
// answer is written. Measured on spans like the SDK's (a name, two
// attributes): protobuf decodes straight into records of about 7.7x its
// size (otlp.DecodeProto: a copy of the body for the strings, the spans,
// their attributes); JSON, being wordier, into pdata of 1.25x and
// records of 1.8x (docs/design.md, "Collect").
const (
	protoCost = 9
	jsonCost  = 5
)

// budget bounds the bytes that requests in flight take, across OTLP/HTTP
// and OTLP/gRPC alike. A request reserves before its body is read (the
// announced length, or an estimate when it is unknown), grows or shrinks
// the reservation to what its decoding will take once the body's size is
// known, and holds it until its answer is written. A request that finds
// no room waits at most the queue wait, then is told to retry: memory
// stays bounded whatever the number of clients, and the clients' SDKs
// keep the spans meanwhile.
//
// Waiters are served in order, so that a large request is not starved by
// a stream of small ones; a request growing what it holds goes first, as
// its memory is already taken and it is the closest to done.
type budget struct {
	limit   int64
	mu      sync.Mutex
	used    int64
	waiters []*budgetWaiter
	// recent holds the costs of the last requests whose size was not
	// known before reading, newest at next-1: what the next such request
	// reserves is the largest of them, so that it rarely has to grow.
	recent [8]int64
	next   int
}

type budgetWaiter struct {
	n     int64
	ready chan struct{} // closed once the bytes are granted
}

func newBudget(limit int64) *budget {
	return &budget{limit: limit}
}

// reservation is one request's share of a budget.
type reservation struct {
	b *budget
	n int64
}

// errNoRoom is what take returns when the wait for room ended.
var errNoRoom = errors.New("no room")

// take waits, at most wait and until ctx ends, for n more bytes; n is
// clamped to the limit, so that a request larger than the whole budget
// still runs, alone. growing puts the caller at the head of the queue.
func (b *budget) take(ctx context.Context, n int64, wait time.Duration, growing bool) error {
	n = min(n, b.limit)
	b.mu.Lock()
	if n <= 0 || len(b.waiters) == 0 && b.used+n <= b.limit {
		b.used += n
		b.mu.Unlock()
		return nil
	}
	if wait <= 0 {
		b.mu.Unlock()
		return errNoRoom
	}
	w := &budgetWaiter{n: n, ready: make(chan struct{})}
	if growing {
		b.waiters = append([]*budgetWaiter{w}, b.waiters...)
	} else {
		b.waiters = append(b.waiters, w)
	}
	b.grantLocked()
	b.mu.Unlock()
	t := time.NewTimer(wait)
	defer t.Stop()
	var err error
	select {
	case <-w.ready:
		return nil
	case <-t.C:
		err = errNoRoom
	case <-ctx.Done():
		err = ctx.Err()
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	select {
	case <-w.ready:
		return nil // granted while the wait ended: keep it
	default:
	}
	for i, x := range b.waiters {
		if x == w {
			b.waiters = append(b.waiters[:i], b.waiters[i+1:]...)
			break
		}
	}
	// The head may have gone: those behind it may fit now.
	b.grantLocked()
	return err
}

// grantLocked hands room to the waiters at the head of the queue while
// they fit.
func (b *budget) grantLocked() {
	for len(b.waiters) > 0 && b.used+b.waiters[0].n <= b.limit {
		w := b.waiters[0]
		b.waiters = b.waiters[1:]
		b.used += w.n
		close(w.ready)
	}
}

func (b *budget) give(n int64) {
	if n <= 0 {
		return
	}
	b.mu.Lock()
	b.used -= n
	b.grantLocked()
	b.mu.Unlock()
}

// estimate is what a request of unknown size reserves before it is read:
// the largest recent cost, else def.
func (b *budget) estimate(def int64) int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	var m int64
	for _, c := range b.recent {
		m = max(m, c)
	}
	if m == 0 {
		return def
	}
	return m
}

// observe records the cost of a request read without knowing its size.
func (b *budget) observe(cost int64) {
	b.mu.Lock()
	b.recent[b.next] = cost
	b.next = (b.next + 1) % len(b.recent)
	b.mu.Unlock()
}

// inUse returns the bytes reserved now.
func (b *budget) inUse() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.used
}

// reserve takes n bytes for a request about to be read, or answers that
// the receiver is busy.
func (r *Receiver) reserve(ctx context.Context, n int64) (*reservation, *failure) {
	n = min(n, r.budget.limit)
	if err := r.budget.take(ctx, n, r.cfg.queueWait, false); err != nil {
		return nil, r.noRoom(ctx, err)
	}
	return &reservation{b: r.budget, n: n}, nil
}

// resize makes res n bytes: at once when it shrinks, waiting for room like
// reserve when it grows.
func (r *Receiver) resize(ctx context.Context, res *reservation, n int64) *failure {
	n = min(n, r.budget.limit)
	switch {
	case n < res.n:
		res.b.give(res.n - n)
	case n > res.n:
		if err := res.b.take(ctx, n-res.n, r.cfg.queueWait, true); err != nil {
			return r.noRoom(ctx, err)
		}
	}
	res.n = n
	return nil
}

func (res *reservation) release() {
	res.b.give(res.n)
	res.n = 0
}

func (r *Receiver) noRoom(ctx context.Context, err error) *failure {
	if ctx.Err() != nil {
		return &failure{codes.Canceled, "collect: request ended: " + ctx.Err().Error()}
	}
	return r.busy(fmt.Sprintf("collect: requests in flight hold the memory budget (%.1f MiB)", float64(r.budget.limit)/(1<<20)))
}

// decodeCost is what a request whose body decompresses to n bytes takes
// until it is answered.
func decodeCost(n int, json bool) int64 {
	if json {
		return int64(n) * jsonCost
	}
	return int64(n) * protoCost
}

// readReserve is what an HTTP request reserves before its body is read:
// the announced length of an uncompressed body, else the budget's
// estimate; known says which.
func (r *Receiver) readReserve(req *http.Request) (n int64, known bool) {
	switch strings.ToLower(strings.TrimSpace(req.Header.Get("Content-Encoding"))) {
	case "", "identity":
		if req.ContentLength >= 0 {
			return min(req.ContentLength, r.cfg.maxRequestBytes), true
		}
	}
	return r.budget.estimate(r.cfg.maxRequestBytes), false
}

// The gRPC side. grpc-go reads a unary request's message only when the
// method's handler asks for it (its dec function), and pdata's generated
// handler asks at once. The receiver's own handler first reserves the
// budget's estimate, then has the message read into a rawMessage (the server's
// codec, grpcCodec, keeps the bytes undecoded), resizes the reservation to
// what decoding that many bytes takes, and only then decodes. The
// connection's flow-control windows are fixed (NewGRPCServer), so that
// what clients send before a handler reads is bounded per connection too.

// grpcWindow is the fixed HTTP/2 flow-control window of each stream and
// connection: what a client may send before the receiver reads it.
const grpcWindow = 256 << 10

// rawMessage is a gRPC message's bytes, undecoded: the request, as read,
// or the response, encoded.
type rawMessage struct {
	data mem.BufferSlice
}

func (m *rawMessage) free() {
	m.data.Free()
	m.data = nil
}

// grpcCodec is the codec of the receiver's gRPC server: it moves the
// bytes of rawMessage values as they are, and hands any other message
// (of a service a caller registers beside) to the registered protobuf
// codec.
type grpcCodec struct{}

func (grpcCodec) Name() string { return grpcproto.Name }

func (grpcCodec) Marshal(v any) (mem.BufferSlice, error) {
	if m, ok := v.(*rawMessage); ok {
		return m.data, nil
	}
	return encoding.GetCodecV2(grpcproto.Name).Marshal(v)
}

func (grpcCodec) Unmarshal(data mem.BufferSlice, v any) error {
	m, ok := v.(*rawMessage)
	if !ok {
		return encoding.GetCodecV2(grpcproto.Name).Unmarshal(data, v)
	}
	data.Ref() // gRPC frees its reference when Unmarshal returns
	m.data = data
	return nil
}

// traceServiceDesc is the OTLP trace service with grpcExport as its
// Export: the same service and method names as pdata's registration.
var traceServiceDesc = grpc.ServiceDesc{
	ServiceName: "opentelemetry.proto.collector.trace.v1.TraceService",
	HandlerType: (*any)(nil),
	Methods:     []grpc.MethodDesc{{MethodName: "Export", Handler: grpcExport}},
	Metadata:    "opentelemetry/proto/collector/trace/v1/trace_service.proto",
}

const exportMethod = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"

func grpcExport(srv any, ctx context.Context, dec func(any) error, interceptor grpc.UnaryServerInterceptor) (any, error) {
	g := srv.(*grpcTraces)
	r := g.r
	// Nothing is read before the token is known good and room is found.
	if err := r.grpcAuth(ctx); err != nil {
		return nil, err
	}
	res, f := r.reserve(ctx, r.budget.estimate(r.cfg.maxRequestBytes))
	if f != nil {
		return nil, r.grpcError(f)
	}
	defer res.release()
	var in rawMessage
	if err := dec(&in); err != nil {
		return nil, err
	}
	cost := decodeCost(in.data.Len(), false)
	r.budget.observe(cost)
	if f := r.resize(ctx, res, cost); f != nil {
		in.free()
		return nil, r.grpcError(f)
	}
	buf := in.data.MaterializeToBuffer(mem.DefaultBufferPool())
	req, err := otlp.DecodeProtoInto(buf.ReadOnlyData(), r.getSpans())
	// The decoder copies what it keeps, so the message's buffers go back
	// now.
	buf.Free()
	in.free()
	if err != nil {
		return nil, r.grpcError(r.refuse(codes.InvalidArgument, "collect: bad protobuf ExportTraceServiceRequest: %v", err))
	}
	handler := func(ctx context.Context, req any) (any, error) {
		resp, err := g.Export(ctx, req.(otlp.Records))
		if err != nil {
			return nil, err
		}
		b, err := resp.MarshalProto()
		if err != nil {
			return nil, status.Errorf(codes.Internal, "collect: encode response: %v", err)
		}
		return &rawMessage{data: mem.BufferSlice{mem.SliceBuffer(b)}}, nil
	}
	var out any
	if interceptor == nil {
		out, err = handler(ctx, req)
	} else {
		out, err = interceptor(ctx, req, &grpc.UnaryServerInfo{Server: srv, FullMethod: exportMethod}, handler)
	}
	if err == nil {
		// Stored: the store is done with the spans.
		r.putSpans(req.Spans)
	}
	return out, err
}
