package jaegerquery

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
)

// Errors of Jaeger that callers branch on; the error a call returns
// wraps one of them and says the address, the call and Jaeger's words.
var (
	// ErrUnavailable means Jaeger could not be reached.
	ErrUnavailable = errors.New("jaeger unreachable")
	// ErrTooLarge means a reply message was over the client's limit
	// (WithMaxMessageBytes).
	ErrTooLarge = errors.New("reply over the gRPC message limit")
	// ErrNotFound means Jaeger has no such trace.
	ErrNotFound = errors.New("not found")
	// ErrUnknownService means Jaeger does not know a service asked for.
	ErrUnknownService = errors.New("unknown service")
	// ErrBadReply means a reply could not be decoded.
	ErrBadReply = errors.New("bad reply")
)

// Method names of jaeger.api_v3.QueryService.
const (
	methodGetServices = "/jaeger.api_v3.QueryService/GetServices"
	methodFindTraces  = "/jaeger.api_v3.QueryService/FindTraces"
	methodGetTrace    = "/jaeger.api_v3.QueryService/GetTrace"
)

// Client calls a Jaeger query service's api_v3 over gRPC (plaintext).
// It is safe for concurrent use.
type Client struct {
	addr     string
	conn     *grpc.ClientConn
	maxBytes int
}

// Dial returns a Client of the Jaeger query service at addr (HOST:PORT,
// Jaeger's gRPC query port, 16685 by default). It does not connect yet:
// the first call does, and says if Jaeger is unreachable. Only
// WithMaxMessageBytes applies.
func Dial(addr string, opts ...Option) (*Client, error) {
	c := newConfig(opts)
	conn, err := grpc.NewClient(addr,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.ForceCodec(rawCodec{}), grpc.MaxCallRecvMsgSize(c.maxMessageBytes)))
	if err != nil {
		return nil, fmt.Errorf("jaeger query at %s: %w", addr, err)
	}
	return &Client{addr: addr, conn: conn, maxBytes: c.maxMessageBytes}, nil
}

// Close closes the client's connection.
func (c *Client) Close() error { return c.conn.Close() }

// Services returns the services Jaeger knows.
func (c *Client) Services(ctx context.Context) ([]string, error) {
	var reply []byte
	if err := c.conn.Invoke(ctx, methodGetServices, []byte{}, &reply); err != nil {
		return nil, c.wrap("get services", err)
	}
	s, err := decodeServices(reply)
	if err != nil {
		return nil, fmt.Errorf("jaeger query at %s: get services: %w: %w", c.addr, ErrBadReply, err)
	}
	return s, nil
}

// FindTraces calls fn with each message of FindTraces' reply stream, in
// order; Jaeger sends a trace a message. An error of fn stops the
// stream and is returned as it is. A reply of no traces calls fn never.
func (c *Client) FindTraces(ctx context.Context, q Query, fn func(ptrace.Traces) error) error {
	return c.findTraces(ctx, q, func(td ptrace.Traces, _ int) error { return fn(td) })
}

// findTraces is FindTraces, giving fn each message's size in bytes too.
func (c *Client) findTraces(ctx context.Context, q Query, fn func(td ptrace.Traces, size int) error) error {
	op := fmt.Sprintf("find traces of service %q in [%s, %s)", q.Service, q.StartMin.UTC().Format(time.RFC3339Nano), q.StartMax.UTC().Format(time.RFC3339Nano))
	err := c.stream(ctx, methodFindTraces, encodeFindTraces(q), op, fn)
	if errors.Is(err, ErrNotFound) {
		// Some Jaeger versions answer an empty search with NotFound.
		return nil
	}
	return err
}

// GetTrace calls fn with each message of GetTrace's reply stream for
// the trace with the hex id traceID; raw asks for the trace as stored.
// A trace Jaeger does not hold is an error wrapping ErrNotFound.
func (c *Client) GetTrace(ctx context.Context, traceID string, raw bool, fn func(ptrace.Traces) error) error {
	n := 0
	err := c.stream(ctx, methodGetTrace, encodeGetTrace(traceID, time.Time{}, time.Time{}, raw), "get trace "+traceID, func(td ptrace.Traces, _ int) error {
		n++
		return fn(td)
	})
	if err == nil && n == 0 {
		return fmt.Errorf("jaeger query at %s: get trace %s: %w", c.addr, traceID, ErrNotFound)
	}
	return err
}

func (c *Client) stream(ctx context.Context, method string, req []byte, op string, fn func(ptrace.Traces, int) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // ends the stream if fn stops early
	s, err := c.conn.NewStream(ctx, &grpc.StreamDesc{ServerStreams: true}, method)
	if err != nil {
		return c.wrap(op, err)
	}
	if err := s.SendMsg(req); err != nil && !errors.Is(err, io.EOF) {
		return c.wrap(op, err)
	}
	if err := s.CloseSend(); err != nil {
		return c.wrap(op, err)
	}
	var u ptrace.ProtoUnmarshaler
	var b []byte
	for i := 0; ; i++ {
		if err := s.RecvMsg(&b); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return c.wrap(op, err)
		}
		td, err := u.UnmarshalTraces(b)
		if err != nil {
			return fmt.Errorf("jaeger query at %s: %s: message %d: %w: %w", c.addr, op, i, ErrBadReply, err)
		}
		if err := fn(td, len(b)); err != nil {
			return err
		}
	}
}

// wrap turns a gRPC error into one that says where and what.
func (c *Client) wrap(op string, err error) error {
	st, ok := status.FromError(err)
	if !ok {
		return fmt.Errorf("jaeger query at %s: %s: %w", c.addr, op, err)
	}
	switch st.Code() {
	case codes.Unavailable:
		return fmt.Errorf("jaeger query at %s: %s: %w: %s", c.addr, op, ErrUnavailable, st.Message())
	case codes.ResourceExhausted:
		return fmt.Errorf("jaeger query at %s: %s: %w of %d bytes (%s)", c.addr, op, ErrTooLarge, c.maxBytes, st.Message())
	case codes.NotFound:
		return fmt.Errorf("jaeger query at %s: %s: %w: %s", c.addr, op, ErrNotFound, st.Message())
	}
	return fmt.Errorf("jaeger query at %s: %s: %s: %s", c.addr, op, st.Code(), st.Message())
}
