// Package replay sends the spans stored in lonelytrace trace files to an
// OpenTelemetry collector over OTLP/HTTP (protobuf), as they are in the
// files: the requests hold what internal/otlp's conversion makes of the
// stored spans (otlp.Traces), so ids, parents, flags (OTLP's bits 8 and 9
// included), trace state as written, times, attributes of every type,
// events, links, status, dropped counts, resources and instrumentation
// scopes reach the collector unchanged.
//
//	res, err := replay.Replay(ctx, "http://127.0.0.1:4318", []string{"orders.db"})
//
// It follows the OTLP specification's client rules: a request that gets
// no answer, a 429 or a 5xx is sent again with exponential backoff, or
// after the answer's Retry-After; any other failure ends the replay; a
// partial success is not sent again and is counted in Result. A span that
// sits in several files (a broadcaster's span that rode home to several
// subscribers' files, or that the broadcaster also kept) is sent once.
package replay

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/url"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/lonelytrace/lonelytrace/internal/otlp"
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
	// Rejected is the number of sent spans the collector said it
	// rejected (OTLP partial success), and RejectMessage the first
	// message it gave about rejected or accepted spans.
	Rejected      int64
	RejectMessage string
}

// Replay sends every span of files to the OTLP/HTTP endpoint, a URL such
// as http://127.0.0.1:4318; the traces path /v1/traces is added when the
// URL has no path. Headers, compression and TLS also follow the standard
// OTEL_EXPORTER_OTLP_* variables (WithHeaders, WithGzip). It returns what
// it sent even when it fails part way.
func Replay(ctx context.Context, endpoint string, files []string, opts ...Option) (Result, error) {
	cfg := newConfig(opts)
	var res Result
	u, err := tracesURL(endpoint)
	if err != nil {
		return res, err
	}
	cl, err := cfg.newClient(u)
	if err != nil {
		return res, fmt.Errorf("replay: %w", err)
	}
	defer cl.http.CloseIdleConnections()

	s := &sender{cfg: cfg, client: cl, res: &res, sent: make(map[spanKey]struct{})}
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
	cfg    config
	client *client
	res    *Result
	sent   map[spanKey]struct{}
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
		batch := rows[:0:0]
		for _, row := range rows {
			k := spanKey{row.TraceID, row.SpanID}
			if _, dup := s.sent[k]; dup {
				s.res.Duplicates++
				continue
			}
			batch = append(batch, row)
		}
		if len(batch) > 0 {
			if err := s.export(ctx, batch, p); err != nil {
				return fmt.Errorf("replay: %s: spans up to row %d: %w", path, after, err)
			}
			for _, row := range batch {
				s.sent[spanKey{row.TraceID, row.SpanID}] = struct{}{}
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

// export sends one batch as one request, trying again as the OTLP
// specification allows: after the collector's Retry-After when it gave
// one, else after an exponential backoff with jitter.
func (s *sender) export(ctx context.Context, batch []schema.Span, p Progress) error {
	req, err := s.client.encode(otlp.Traces(batch))
	if err != nil {
		return err
	}
	backoff := s.cfg.minBackoff
	for attempt := 1; ; attempt++ {
		ps, err := s.client.send(ctx, req)
		if err == nil {
			s.res.Requests++
			s.res.Rejected += ps.rejected
			if ps.message != "" && s.res.RejectMessage == "" {
				s.res.RejectMessage = ps.message
			}
			return nil
		}
		if ctx.Err() != nil {
			return errors.Join(ctx.Err(), err)
		}
		again, after := retryable(err)
		if !again {
			return fmt.Errorf("not retryable: %w", err)
		}
		if attempt >= s.cfg.attempts {
			return fmt.Errorf("giving up after %d attempts: %w", attempt, err)
		}
		s.res.Retries++
		d := after
		if d == 0 {
			// Full jitter keeps many replays from retrying in step.
			d = backoff/2 + rand.N(backoff/2+1)
		}
		backoff = min(2*backoff, s.cfg.maxBackoff)
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
	}
}
