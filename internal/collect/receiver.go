package collect

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/grpc/codes"

	"github.com/lonelytrace/lonelytrace/internal/otlp"
)

// Receiver takes OTLP trace requests, over HTTP (its ServeHTTP) and gRPC
// (NewGRPCServer), and hands their spans to a Store.
type Receiver struct {
	store Store
	cfg   config
	// slots bounds the requests being read, decoded and stored at once.
	slots chan struct{}
	// budget bounds the memory they take (budget.go).
	budget *budget
	// bodies and gzips are request bodies' buffers (*body) and
	// decompressors (*gzip.Reader) for reuse, spans the arrays protobuf
	// requests are decoded into (*[]schema.Span) (http.go).
	bodies, gzips, spans sync.Pool

	accepted, rejected, retried, refused atomic.Int64
}

// Stats are a Receiver's counters since New.
type Stats struct {
	// Accepted and Rejected count spans, as the answers told the clients.
	Accepted, Rejected int64
	// Retried counts requests answered with a retryable status because the
	// writer or the receiver had no room.
	Retried int64
	// Refused counts requests refused for good: undecodable, too large,
	// of an unknown content type or without the token.
	Refused int64
}

// New returns a Receiver that stores through store.
func New(store Store, opts ...Option) *Receiver {
	cfg := newConfig(opts)
	return &Receiver{store: store, cfg: cfg, slots: make(chan struct{}, cfg.maxConcurrent), budget: newBudget(cfg.maxInflight)}
}

// Stats returns the receiver's counters.
func (r *Receiver) Stats() Stats {
	return Stats{
		Accepted: r.accepted.Load(),
		Rejected: r.rejected.Load(),
		Retried:  r.retried.Load(),
		Refused:  r.refused.Load(),
	}
}

// failure is an answer other than success, in gRPC's terms; the HTTP side
// maps the code to a status.
type failure struct {
	code codes.Code
	msg  string
}

func (f *failure) Error() string { return f.msg }

// retryable reports whether the failure asks the client to come back.
func (f *failure) retryable() bool { return f.code == codes.Unavailable }

func (r *Receiver) busy(why string) *failure {
	r.retried.Add(1)
	return &failure{codes.Unavailable, why + "; retry later"}
}

func (r *Receiver) refuse(code codes.Code, format string, args ...any) *failure {
	r.refused.Add(1)
	return &failure{code, fmt.Sprintf(format, args...)}
}

// acquire takes a request slot, waiting at most the queue wait for one.
// The caller calls release when it returns nil.
func (r *Receiver) acquire(ctx context.Context) *failure {
	select {
	case r.slots <- struct{}{}:
		return nil
	default:
	}
	if r.cfg.queueWait > 0 {
		t := time.NewTimer(r.cfg.queueWait)
		defer t.Stop()
		select {
		case r.slots <- struct{}{}:
			return nil
		case <-t.C:
		case <-ctx.Done():
		}
	}
	return r.busy(fmt.Sprintf("collect: %d requests are being stored already", cap(r.slots)))
}

func (r *Receiver) release() { <-r.slots }

// export stores rec, a request's records, and builds the answer, once the spans are in the file
// or could not be stored: the store waits at most the queue wait for room
// in the writer's queue, and then for the commit.
func (r *Receiver) export(ctx context.Context, rec otlp.Records) (ptraceotlp.ExportResponse, *failure) {
	resp := ptraceotlp.NewExportResponse()
	if len(rec.Spans)+rec.Rejected == 0 {
		return resp, nil
	}
	acc, rej, msg, err := r.store.Store(ctx, rec, r.cfg.queueWait)
	switch {
	case errors.Is(err, ErrBusy):
		return resp, r.busy("collect: the trace file's writer is behind")
	case err != nil && ctx.Err() != nil:
		return resp, &failure{codes.Canceled, "collect: request ended: " + ctx.Err().Error()}
	case err != nil:
		// The store is shutting down or its file failed: the spans were
		// not stored, and another try (perhaps at a restarted receiver, or
		// once the disk has room) may succeed.
		r.retried.Add(1)
		return resp, &failure{codes.Unavailable, "collect: " + err.Error()}
	}
	r.accepted.Add(int64(acc))
	r.rejected.Add(int64(rej))
	if acc == 0 && rej > 0 {
		// Nothing of it can be kept: a permanent error, so that the
		// client does not retry it either.
		r.refused.Add(1)
		return resp, &failure{codes.InvalidArgument, fmt.Sprintf("collect: all %d spans rejected: %s", rej, msg)}
	}
	if rej > 0 {
		ps := resp.PartialSuccess()
		ps.SetRejectedSpans(int64(rej))
		ps.SetErrorMessage(strings.ToValidUTF8(msg, "\uFFFD"))
	}
	return resp, nil
}
