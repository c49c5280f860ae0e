// Package replay sends the spans stored in lonelytrace trace files to an
// OpenTelemetry collector over OTLP/HTTP, with their original trace and
// span ids, parents, times, attributes, events, links, status, resources
// and instrumentation scopes, so that a history kept in files moves to the
// collector with the application.
//
//	res, err := replay.Replay(ctx, "http://127.0.0.1:4318", []string{"orders.db"})
//
// Requests that fail (a network error or any non-2xx answer) are retried
// with exponential backoff; a span that sits in several files (a
// broadcaster's span that rode home to several subscribers' files, or that
// the broadcaster also kept) is sent once.
package replay

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/url"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/instrumentation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/lonelytrace/lonelytrace/schema"
)

// Progress is what Replay reports as it goes.
type Progress struct {
	// File is the file being read, FileSpans the spans it holds and
	// FileSent those of them sent so far (duplicates of spans already sent
	// count as sent).
	File                string
	FileSpans, FileSent int64
	// Sent is the number of spans sent so far, over all files.
	Sent int64
	// Retry is set before a retry: the attempt about to be made (2 for the
	// first retry), the wait before it, and the error of the last attempt.
	Retry     int
	Wait      time.Duration
	LastError error
}

// Result says what Replay did.
type Result struct {
	Files int
	// Spans is the number of spans sent; Duplicates the spans skipped
	// because a span with the same trace and span id had been sent.
	Spans, Duplicates int64
	// Requests counts the requests that succeeded, Retries the failed
	// attempts that were tried again.
	Requests, Retries int
}

// Replay sends every span of files to the OTLP/HTTP endpoint, a URL such
// as http://127.0.0.1:4318; the traces path /v1/traces is added when the
// URL has no path. It returns what it sent even when it fails part way.
func Replay(ctx context.Context, endpoint string, files []string, opts ...Option) (Result, error) {
	cfg := newConfig(opts)
	var res Result
	u, err := tracesURL(endpoint)
	if err != nil {
		return res, err
	}
	expOpts := []otlptracehttp.Option{
		otlptracehttp.WithEndpointURL(u),
		otlptracehttp.WithTimeout(cfg.timeout),
		// Replay retries itself, so that it can report each retry and
		// retry every failure, not only the codes the exporter deems
		// transient.
		otlptracehttp.WithRetry(otlptracehttp.RetryConfig{Enabled: false}),
	}
	if len(cfg.headers) > 0 {
		expOpts = append(expOpts, otlptracehttp.WithHeaders(cfg.headers))
	}
	exp, err := otlptracehttp.New(ctx, expOpts...)
	if err != nil {
		return res, fmt.Errorf("replay: %w", err)
	}
	defer func() {
		if e := exp.Shutdown(context.WithoutCancel(ctx)); e != nil && err == nil {
			err = fmt.Errorf("replay: %w", e)
		}
	}()

	s := &sender{cfg: cfg, exp: exp, res: &res, sent: make(map[spanKey]struct{}), resources: make(map[string]*resource.Resource)}
	for _, f := range files {
		if err := s.file(ctx, f); err != nil {
			return res, err
		}
		res.Files++
	}
	return res, nil
}

// tracesURL adds the OTLP traces path to a URL without one.
func tracesURL(endpoint string) (string, error) {
	u, err := url.Parse(endpoint)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("replay: endpoint %q: want a URL such as http://127.0.0.1:4318", endpoint)
	}
	if u.Path == "" || u.Path == "/" {
		u.Path = "/v1/traces"
	}
	return u.String(), nil
}

type spanKey struct {
	trace trace.TraceID
	span  trace.SpanID
}

// sender holds the state of one Replay.
type sender struct {
	cfg       config
	exp       sdktrace.SpanExporter
	res       *Result
	sent      map[spanKey]struct{}
	resources map[string]*resource.Resource
}

func (s *sender) file(ctx context.Context, path string) error {
	db, err := schema.OpenRead(ctx, path)
	if err != nil {
		return fmt.Errorf("replay: %w", err)
	}
	defer db.Close()
	p := Progress{File: path}
	if err := db.QueryRowContext(ctx, "SELECT count(*) FROM spans").Scan(&p.FileSpans); err != nil {
		return fmt.Errorf("replay: %s: count spans: %w", path, err)
	}
	r := schema.NewReader(db)
	var after int64
	for {
		rows, err := r.After(ctx, after, s.cfg.batchSize)
		if err != nil {
			return fmt.Errorf("replay: %s: read spans after row %d: %w", path, after, err)
		}
		if len(rows) == 0 {
			return nil
		}
		after = rows[len(rows)-1].ID
		batch := make([]sdktrace.ReadOnlySpan, 0, len(rows))
		var keys []spanKey
		for _, row := range rows {
			k := spanKey{row.TraceID, row.SpanID}
			if _, dup := s.sent[k]; dup {
				s.res.Duplicates++
				continue
			}
			keys = append(keys, k)
			batch = append(batch, s.snapshot(row))
		}
		if len(batch) > 0 {
			if err := s.export(ctx, batch, p); err != nil {
				return fmt.Errorf("replay: %s: spans up to row %d: %w", path, after, err)
			}
			for _, k := range keys {
				s.sent[k] = struct{}{}
			}
			s.res.Spans += int64(len(batch))
		}
		p.FileSent += int64(len(rows))
		p.Sent = s.res.Spans
		if s.cfg.progress != nil {
			s.cfg.progress(p)
		}
	}
}

// export sends one batch, retrying with backoff.
func (s *sender) export(ctx context.Context, batch []sdktrace.ReadOnlySpan, p Progress) error {
	wait := s.cfg.minBackoff
	for attempt := 1; ; attempt++ {
		err := s.exp.ExportSpans(ctx, batch)
		if err == nil {
			s.res.Requests++
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if attempt >= s.cfg.attempts {
			return fmt.Errorf("giving up after %d attempts: %w", attempt, err)
		}
		s.res.Retries++
		// Full jitter keeps many replays from retrying in step.
		d := wait/2 + rand.N(wait/2+1)
		if s.cfg.progress != nil {
			p.Retry, p.Wait, p.LastError = attempt+1, d, err
			s.cfg.progress(p)
		}
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return errors.Join(ctx.Err(), err)
		case <-t.C:
		}
		wait = min(2*wait, s.cfg.maxBackoff)
	}
}

// snapshot rebuilds the span as the SDK had it when it ended.
func (s *sender) snapshot(row schema.Span) sdktrace.ReadOnlySpan {
	ts, _ := trace.ParseTraceState(row.TraceState)
	sc := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: row.TraceID, SpanID: row.SpanID, TraceFlags: row.Flags, TraceState: ts,
	})
	var parent trace.SpanContext
	if row.ParentSpanID.IsValid() {
		parent = trace.NewSpanContext(trace.SpanContextConfig{
			TraceID: row.TraceID, SpanID: row.ParentSpanID, TraceFlags: row.Flags, Remote: row.ParentRemote,
		})
	}
	events := make([]sdktrace.Event, len(row.Events))
	for i, e := range row.Events {
		events[i] = sdktrace.Event{Name: e.Name, Time: e.Time, Attributes: e.Attributes, DroppedAttributeCount: e.DroppedAttributes}
	}
	links := make([]sdktrace.Link, len(row.Links))
	for i, l := range row.Links {
		lts, _ := trace.ParseTraceState(l.TraceState)
		links[i] = sdktrace.Link{
			SpanContext: trace.NewSpanContext(trace.SpanContextConfig{
				TraceID: l.TraceID, SpanID: l.SpanID, TraceFlags: l.Flags, TraceState: lts, Remote: l.Remote,
			}),
			Attributes:            l.Attributes,
			DroppedAttributeCount: l.DroppedAttributes,
		}
	}
	return tracetest.SpanStub{
		Name:                 row.Name,
		SpanContext:          sc,
		Parent:               parent,
		SpanKind:             row.Kind,
		StartTime:            row.Start,
		EndTime:              row.End,
		Attributes:           row.Attributes,
		Events:               events,
		Links:                links,
		Status:               sdktrace.Status{Code: row.StatusCode, Description: row.StatusMsg},
		DroppedAttributes:    row.DroppedAttributes,
		DroppedEvents:        row.DroppedEvents,
		DroppedLinks:         row.DroppedLinks,
		ChildSpanCount:       row.ChildCount,
		Resource:             s.resource(row.Resource),
		InstrumentationScope: scope(row.Scope),
	}.Snapshot()
}

// resource returns one *Resource per distinct stored resource, so that the
// exporter groups spans by resource as the SDK would.
func (s *sender) resource(r schema.Resource) *resource.Resource {
	set := attribute.NewSet(r.Attributes...)
	key := r.SchemaURL + "\x00" + set.Encoded(attribute.DefaultEncoder())
	if res, ok := s.resources[key]; ok {
		return res
	}
	res := resource.NewWithAttributes(r.SchemaURL, r.Attributes...)
	s.resources[key] = res
	return res
}

func scope(sc schema.Scope) instrumentation.Scope {
	return instrumentation.Scope{
		Name: sc.Name, Version: sc.Version, SchemaURL: sc.SchemaURL,
		Attributes: attribute.NewSet(sc.Attributes...),
	}
}
