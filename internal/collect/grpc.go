package collect

import (
	"context"
	"strings"

	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	_ "google.golang.org/grpc/encoding/gzip" // SDKs may compress: OTEL_EXPORTER_OTLP_COMPRESSION=gzip
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/lonelytrace/lonelytrace/internal/otlp"
)

// NewGRPCServer returns a gRPC server with the OTLP trace service
// registered: messages limited to the request limit (gRPC applies it after
// decompression), read only once the memory budget has room for them
// (budget.go), the token checked when one is set. opts are added after
// the receiver's own.
func (r *Receiver) NewGRPCServer(opts ...grpc.ServerOption) *grpc.Server {
	o := []grpc.ServerOption{
		grpc.MaxRecvMsgSize(int(min(r.cfg.maxRequestBytes, int64(^uint32(0)>>1)))),
		grpc.UnaryInterceptor(r.checkToken),
		grpc.ForceServerCodecV2(grpcCodec{}),
		grpc.StaticStreamWindowSize(grpcWindow),
		grpc.StaticConnWindowSize(grpcWindow),
	}
	s := grpc.NewServer(append(o, opts...)...)
	s.RegisterService(&traceServiceDesc, &grpcTraces{r: r})
	return s
}

func (r *Receiver) checkToken(ctx context.Context, req any, _ *grpc.UnaryServerInfo, next grpc.UnaryHandler) (any, error) {
	if err := r.grpcAuth(ctx); err != nil {
		return nil, err
	}
	return next(ctx, req)
}

// grpcAuth refuses a call without the token, when one is set.
func (r *Receiver) grpcAuth(ctx context.Context) error {
	if r.cfg.token != "" {
		ok := false
		md, _ := metadata.FromIncomingContext(ctx)
		for _, a := range md.Get("authorization") {
			if len(a) > 7 && strings.EqualFold(a[:7], "bearer ") && tokenMatches(r.cfg.token, strings.TrimSpace(a[7:])) {
				ok = true
			}
		}
		if !ok {
			r.refused.Add(1)
			return status.Error(codes.Unauthenticated, "collect: this receiver needs its token: send the metadata authorization: Bearer …")
		}
	}
	return nil
}

// grpcTraces is the OTLP/gRPC trace service.
type grpcTraces struct {
	r *Receiver
}

// Export stores a request's records, decoded by grpcExport (budget.go).
func (g *grpcTraces) Export(ctx context.Context, rec otlp.Records) (ptraceotlp.ExportResponse, error) {
	r := g.r
	if f := r.acquire(ctx); f != nil {
		return ptraceotlp.NewExportResponse(), r.grpcError(f)
	}
	defer r.release()
	resp, f := r.export(ctx, rec)
	if f != nil {
		return resp, r.grpcError(f)
	}
	return resp, nil
}

// grpcError is f as a gRPC status; a retryable one carries RetryInfo, as
// the OTLP specification asks of a server that throttles.
func (r *Receiver) grpcError(f *failure) error {
	st := status.New(f.code, strings.ToValidUTF8(f.msg, "\uFFFD"))
	if f.retryable() {
		if d, err := st.WithDetails(&errdetails.RetryInfo{RetryDelay: durationpb.New(r.cfg.retryAfter)}); err == nil {
			st = d
		}
	}
	return st.Err()
}
