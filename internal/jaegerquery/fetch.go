package jaegerquery

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/otel/trace"

	"github.com/lonelytrace/lonelytrace/exporter"
	"github.com/lonelytrace/lonelytrace/internal/otlp"
)

// Store is where Fetch puts traces: an *otlp.Importer over the file's
// writer, which stores each span once however often Jaeger sends it.
type Store interface {
	Import(ctx context.Context, td ptrace.Traces) (stored, duplicates, rejected int, msg string, err error)
}

var _ Store = (*otlp.Importer)(nil)

// Result says what a fetch brought and what of the window it covers.
type Result struct {
	// Since and Until are the window asked for, [Since, Until).
	Since, Until time.Time
	// CoveredSince is where the part of the window fetched for every
	// service starts: [CoveredSince, Until) is whole, up to search_depth
	// (see Dense). It is Since unless a budget ran out (Reason).
	CoveredSince time.Time
	// Reason says why the fetch stopped before Since; empty if it did
	// not.
	Reason string
	// Dense counts the slices of minSlice that still held search_depth
	// traces: they are stored, but may miss traces Jaeger has.
	Dense int
	// Services are the services asked for.
	Services []string
	// Queries counts the FindTraces calls.
	Queries int
	// Traces counts the distinct traces stored.
	Traces int
	// Spans counts the spans stored; Duplicates those Jaeger sent again
	// (a trace of two services, a slice asked again); Rejected those
	// with invalid ids, RejectMessage saying why.
	Spans, Duplicates, Rejected int
	RejectMessage               string
}

// Complete reports whether the result holds the whole window: no budget
// ran out and no slice was too dense to split.
func (r Result) Complete() bool { return r.Reason == "" && r.Dense == 0 }

// slice is a part of the window still to ask for one service.
type slice struct {
	service    string
	start, end time.Time
}

// errTimeBudget is the cause of the fetch's deadline.
var errTimeBudget = errors.New("time budget")

// errSliceLarge stops a reply over WithMaxSliceBytes.
var errSliceLarge = errors.New("slice over its byte bound")

// Fetch stores the traces that Jaeger holds for [since, until) through
// st. For each service (WithServices, each of which Jaeger must know,
// or all Jaeger knows) it asks
// FindTraces for the window with raw_traces; a slice of time whose reply
// holds search_depth traces may miss some (api_v3 has no paging), so its
// reply is dropped and its halves are asked instead, down to minSlice;
// so is a reply over WithMaxSliceBytes, which bounds the memory a slice
// takes before it is stored.
// Slices are asked latest first, across services, so that when the
// trace or time budget runs out the result covers [CoveredSince, Until)
// for every service; a slice is stored whole or not at all.
//
// An error of Jaeger or of the store ends the fetch: the error says
// which, and the Result what was stored before it.
func Fetch(ctx context.Context, c *Client, st Store, since, until time.Time, opts ...Option) (Result, error) {
	cfg := newConfig(opts)
	res := Result{Since: since, Until: until, CoveredSince: until}
	if !since.Before(until) {
		return res, fmt.Errorf("jaeger fetch: empty window [%s, %s)", since.Format(time.RFC3339Nano), until.Format(time.RFC3339Nano))
	}
	deadline := time.Now().Add(cfg.maxDuration)
	bctx, cancel := context.WithDeadlineCause(ctx, deadline, errTimeBudget)
	defer cancel()
	// outOfTime reports whether the time budget, not the caller, ended a
	// call. gRPC enforces the deadline on its own clock, so a call can
	// fail for it a moment before bctx says so.
	outOfTime := func() bool {
		return ctx.Err() == nil && (errors.Is(context.Cause(bctx), errTimeBudget) || !time.Now().Before(deadline))
	}

	known, err := c.Services(bctx)
	if err != nil {
		if outOfTime() {
			return res, fmt.Errorf("jaeger fetch: time budget of %s ran out: %w", cfg.maxDuration, err)
		}
		return res, err
	}
	services := known
	if cfg.services != nil {
		services = cfg.services
		for _, s := range services {
			if !slices.Contains(known, s) {
				return res, fmt.Errorf("jaeger query at %s: service %q: %w (it knows %d)", c.addr, s, ErrUnknownService, len(known))
			}
		}
	}
	res.Services = services
	pending := make([]slice, 0, len(services))
	for _, s := range services {
		pending = append(pending, slice{service: s, start: since, end: until})
	}
	seen := make(map[trace.TraceID]struct{})
	var batch []ptrace.Traces
	for len(pending) > 0 {
		i := latest(pending)
		sl := pending[i]
		if err := ctx.Err(); err != nil {
			return finish(res, pending, since), fmt.Errorf("jaeger fetch: %w", err)
		}
		if bctx.Err() != nil {
			res.Reason = fmt.Sprintf("time budget of %s ran out", cfg.maxDuration)
			break
		}
		batch = batch[:0]
		ids := make(map[trace.TraceID]struct{})
		res.Queries++
		size, large := 0, false
		err := c.findTraces(bctx, Query{Service: sl.service, StartMin: sl.start, StartMax: sl.end, SearchDepth: cfg.searchDepth, RawTraces: true}, func(td ptrace.Traces, n int) error {
			if size += n; size > cfg.maxSliceBytes {
				large = true
				return errSliceLarge
			}
			addIDs(ids, td)
			batch = append(batch, td)
			return nil
		})
		if large {
			if sl.end.Sub(sl.start) <= minSlice {
				return finish(res, pending, since), fmt.Errorf("jaeger fetch: traces of service %q in [%s, %s): over %d bytes in a slice of %s, the smallest",
					sl.service, sl.start.UTC().Format(time.RFC3339Nano), sl.end.UTC().Format(time.RFC3339Nano), cfg.maxSliceBytes, minSlice)
			}
			batch = batch[:0]
			pending = split(pending, i)
			continue
		}
		if err != nil {
			if outOfTime() {
				res.Reason = fmt.Sprintf("time budget of %s ran out", cfg.maxDuration)
				break
			}
			return finish(res, pending, since), err
		}
		if len(ids) >= cfg.searchDepth && sl.end.Sub(sl.start) > minSlice {
			pending = split(pending, i)
			continue
		}
		fresh := 0
		for id := range ids {
			if _, ok := seen[id]; !ok {
				fresh++
			}
		}
		if res.Traces+fresh > cfg.maxTraces {
			res.Reason = fmt.Sprintf("trace budget of %d traces ran out", cfg.maxTraces)
			break
		}
		for _, td := range batch {
			// The store's context is the caller's: a time budget running
			// out does not cut a slice in half.
			s, d, r, msg, err := st.Import(ctx, td)
			res.Spans += s
			res.Duplicates += d
			res.Rejected += r
			if r > 0 && res.RejectMessage == "" {
				res.RejectMessage = msg
			}
			if err != nil {
				return finish(res, pending, since), fmt.Errorf("jaeger fetch: store traces of service %q: %w", sl.service, err)
			}
		}
		for id := range ids {
			seen[id] = struct{}{}
		}
		res.Traces += fresh
		if len(ids) >= cfg.searchDepth {
			res.Dense++
		}
		pending = append(pending[:i], pending[i+1:]...)
	}
	return finish(res, pending, since), nil
}

// FetchFile fetches [since, until) from the Jaeger query service at addr
// into the lonelytrace file at path (created if missing), as Fetch does,
// and closes the file's writer. Spans the file already holds are not
// stored again, and nothing it stores is deleted for its age.
func FetchFile(ctx context.Context, addr, path string, since, until time.Time, opts ...Option) (res Result, err error) {
	c, err := Dial(addr, opts...)
	if err != nil {
		return res, err
	}
	defer c.Close()
	exp, err := exporter.New(path, exporter.WithMaxAge(0))
	if err != nil {
		return res, err
	}
	defer func() {
		if e := exp.Shutdown(context.Background()); e != nil && err == nil {
			err = fmt.Errorf("jaeger fetch: close %s: %w", path, e)
		}
		if err == nil {
			if s := exp.Stats(); s.Failed > 0 {
				err = fmt.Errorf("jaeger fetch: %d spans failed to be written to %s (last error: %v)", s.Failed, path, s.LastError)
			}
		}
	}()
	im, err := otlp.NewImporter(ctx, exp, path)
	if err != nil {
		return res, err
	}
	defer im.Close()
	return Fetch(ctx, c, im, since, until, opts...)
}

// split replaces p[i] by its later half and adds its earlier half.
func split(p []slice, i int) []slice {
	sl := p[i]
	mid := sl.start.Add(sl.end.Sub(sl.start) / 2)
	p[i] = slice{service: sl.service, start: mid, end: sl.end}
	return append(p, slice{service: sl.service, start: sl.start, end: mid})
}

// latest returns the index of the slice that ends last, the first of
// them on a tie.
func latest(p []slice) int {
	j := 0
	for i := range p {
		if p[i].end.After(p[j].end) {
			j = i
		}
	}
	return j
}

// finish sets res.CoveredSince from the slices still pending: each
// service's are the earliest part of the window, so what is done for
// all of them starts at the latest end among them.
func finish(res Result, pending []slice, since time.Time) Result {
	res.CoveredSince = since
	for _, p := range pending {
		if p.end.After(res.CoveredSince) {
			res.CoveredSince = p.end
		}
	}
	return res
}

// addIDs adds the valid trace ids of td's spans to ids.
func addIDs(ids map[trace.TraceID]struct{}, td ptrace.Traces) {
	rss := td.ResourceSpans()
	for i := range rss.Len() {
		sss := rss.At(i).ScopeSpans()
		for j := range sss.Len() {
			spans := sss.At(j).Spans()
			for k := range spans.Len() {
				if id := trace.TraceID(spans.At(k).TraceID()); id.IsValid() {
					ids[id] = struct{}{}
				}
			}
		}
	}
}
