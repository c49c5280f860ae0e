// Package replay sends the spans stored in lonelytrace trace files to an
// OpenTelemetry collector over OTLP/HTTP (protobuf), as they are in the
// files: the requests hold what internal/otlp's conversion makes of the
// stored spans (otlp.Traces), so ids, parents, flags (OTLP's bits 8 and 9
// included), trace state as written, times, attributes of every type,
// events, links, status, dropped counts, resources and instrumentation
// scopes reach the collector unchanged, except strings that are not UTF-8,
// which go with U+FFFD and are counted (docs/design.md, "Invalid UTF-8").
//
//	res, err := replay.Replay(ctx, "http://127.0.0.1:4318", []string{"orders.db"})
//
// Its memory does not grow with the files: it reads a page of rows at a
// time and remembers no span it sent. A request holds at most
// WithBatchSize spans and WithMaxRequestBytes bytes of protobuf; a 413
// answer halves the bound and the spans go again in smaller requests.
// It follows the OTLP specification's client rules: a request that gets
// no answer, a 429 or a 5xx is sent again with exponential backoff, or
// after the answer's Retry-After, for up to WithRetryFor after its first
// failure; any other failure ends the replay; a partial success is not
// sent again and is counted in Result. A span that sits in several files
// (a broadcaster's span that rode home to several subscribers' files, or
// that the broadcaster also kept) is sent once (dedup.go).
//
// When it stops part way, its error is a *StoppedError that says where:
// Replay with the same files and WithResume continues from there.
package replay

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/lonelytrace/lonelytrace/internal/otlp"
	"github.com/lonelytrace/lonelytrace/schema"
)

// Progress is what Replay reports as it goes.
type Progress struct {
	// File is the file being read, FileSpans the spans it holds (after
	// the resume position, for the file a resume starts in) and FileSent
	// those of them sent so far (duplicates of spans already sent count
	// as sent).
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
	// Files is the number of files done, those a resume skipped included.
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
	// Repaired is the number of strings sent with U+FFFD in place of
	// bytes that are not UTF-8.
	Repaired int64
	// MaxRequestBytes is the bound on a request's protobuf at the end:
	// WithMaxRequestBytes's, or less when the collector answered 413;
	// TooLarge counts those answers.
	MaxRequestBytes, TooLarge int
}

// Replay sends every span of files to the OTLP/HTTP endpoint, a URL such
// as http://127.0.0.1:4318; the traces path /v1/traces is added when the
// URL has no path. Headers, compression and TLS also follow the standard
// OTEL_EXPORTER_OTLP_* variables (WithHeaders, WithGzip). It returns what
// it sent even when it fails part way; once it has begun sending, its
// error is then a *StoppedError.
func Replay(ctx context.Context, endpoint string, files []string, opts ...Option) (Result, error) {
	cfg := newConfig(opts)
	res := Result{MaxRequestBytes: cfg.maxBytes}
	from := cfg.resume
	if from.File == 0 {
		from.File = 1
	}
	if len(files) > 0 && from.File > len(files) {
		return res, fmt.Errorf("replay: resume at %s: there are %d files", from, len(files))
	}
	u, err := tracesURL(endpoint)
	if err != nil {
		return res, err
	}
	cl, err := cfg.newClient(u)
	if err != nil {
		return res, fmt.Errorf("replay: %w", err)
	}
	defer cl.http.CloseIdleConnections()

	// Every file is opened before anything is sent, so that a missing
	// one stops the replay before it begins. The files before the one
	// being sent stay open: the spans they hold have been sent, and a
	// span of a later file that they hold is not sent again.
	dbs := make([]*sql.DB, 0, len(files))
	defer func() {
		for _, db := range dbs {
			db.Close()
		}
	}()
	for _, path := range files {
		db, err := schema.OpenRead(ctx, path)
		if err != nil {
			return res, fmt.Errorf("replay: %w", err)
		}
		dbs = append(dbs, db)
	}
	s := &sender{cfg: cfg, client: cl, res: &res}
	for i, path := range files {
		pos := Position{File: i + 1}
		switch {
		case pos.File < from.File:
			res.Files++
			continue
		case pos.File == from.File:
			pos.After = from.After
		}
		if err := s.file(ctx, pos, path, dbs[i], dbs[:i]); err != nil {
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

// firstPageRows bounds the first page read, before any span's size is
// known: 512 spans of 100 KB would be 51 MB decoded.
const firstPageRows = 32

// sender holds the state of one Replay.
type sender struct {
	cfg    config
	client *client
	res    *Result
	// spanBytes is the protobuf bytes per span of the last request, to
	// read pages of about one request's worth.
	spanBytes int
}

// file sends the rows of db after pos, skipping spans that earlier rows
// or files hold.
func (s *sender) file(ctx context.Context, pos Position, path string, db *sql.DB, earlier []*sql.DB) error {
	stop := func(err error) error { return &StoppedError{Resume: pos, File: path, Err: err} }
	p := Progress{File: path}
	if err := db.QueryRowContext(ctx, "SELECT count(*) FROM "+schema.SpansTable+" WHERE id > ?", pos.After).Scan(&p.FileSpans); err != nil {
		return stop(fmt.Errorf("count spans: %w", err))
	}
	r := schema.NewReader(db)
	for {
		// A page is about one request's worth; until a request has
		// said how large spans are, a small one.
		pageRows := min(s.cfg.batchSize, firstPageRows)
		if s.spanBytes > 0 {
			pageRows = max(1, min(s.cfg.batchSize, s.res.MaxRequestBytes/s.spanBytes))
		}
		rows, err := r.After(ctx, pos.After, pageRows)
		if err != nil {
			return stop(fmt.Errorf("read spans: %w", err))
		}
		if len(rows) == 0 {
			return nil
		}
		copies, err := copiesInFile(ctx, db, rows)
		dup := map[spanKey]bool{}
		for _, e := range earlier {
			if err == nil {
				err = inFile(ctx, e, rows, dup)
			}
		}
		if err != nil {
			return stop(err)
		}
		batch := rows[:0:0]
		for _, row := range rows {
			if copies[row.ID] || dup[spanKey{row.TraceID, row.SpanID}] {
				s.res.Duplicates++
				continue
			}
			batch = append(batch, row)
		}
		if err := s.page(ctx, &pos, path, batch, p); err != nil {
			return err
		}
		pos.After = rows[len(rows)-1].ID
		p.FileSent += int64(len(rows))
		p.Sent = s.res.Spans
		if s.cfg.progress != nil {
			s.cfg.progress(p)
		}
	}
}

// page sends rows in requests of at most MaxRequestBytes of protobuf,
// advancing pos past each request that succeeds.
func (s *sender) page(ctx context.Context, pos *Position, path string, rows []schema.Span, p Progress) error {
	for len(rows) > 0 {
		n := len(rows)
		var req request
		var repaired int
		for {
			// Sized before it is encoded: an oversized cut costs a
			// walk of the spans, not a copy of them.
			td, rep := otlp.TracesRepaired(rows[:n])
			size := sizer.TracesSize(td)
			if size <= s.res.MaxRequestBytes || n == 1 {
				var err error
				if req, err = s.client.encode(td); err != nil {
					return &StoppedError{Resume: *pos, File: path, Err: err}
				}
				repaired = rep
				break
			}
			// Fewer spans, in proportion and a tenth under, so that
			// one or two sizings find the cut.
			n = max(1, min(n/2, int(int64(n)*int64(s.res.MaxRequestBytes)/int64(size)*9/10)))
		}
		err := s.export(ctx, req, p)
		if tooLarge(err) {
			s.res.TooLarge++
			if n > 1 {
				// The collector's bound is below ours: halve it, for
				// the rest of the replay.
				s.res.MaxRequestBytes = max(1, min(s.res.MaxRequestBytes, req.size)/2)
				continue
			}
			skip := Position{File: pos.File, After: rows[0].ID}
			return &StoppedError{Resume: *pos, File: path, Skip: &skip,
				Err: fmt.Errorf("the span at row %d alone is %d bytes of protobuf, and the collector refuses it as too large: %w", rows[0].ID, req.size, err)}
		}
		if err != nil {
			return &StoppedError{Resume: *pos, File: path, Err: err}
		}
		s.res.Spans += int64(n)
		s.res.Repaired += int64(repaired)
		s.spanBytes = max(1, req.size/n)
		pos.After = rows[n-1].ID
		rows = rows[n:]
	}
	return nil
}

// sizer gives the bytes of a request's protobuf (an
// ExportTraceServiceRequest is a TracesData on the wire).
var sizer ptrace.ProtoMarshaler

// tooLarge reports whether err is the collector's 413.
func tooLarge(err error) bool {
	var se *sendError
	return errors.As(err, &se) && se.status == http.StatusRequestEntityTooLarge
}

// export sends one request, trying again as the OTLP specification
// allows: after the collector's Retry-After when it gave one, else after
// an exponential backoff with jitter, for up to the retry horizon after
// the first failure.
func (s *sender) export(ctx context.Context, req request, p Progress) error {
	backoff := s.cfg.minBackoff
	var failed time.Time
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
		if failed.IsZero() {
			failed = time.Now()
		}
		if s.cfg.attempts > 0 && attempt >= s.cfg.attempts {
			return fmt.Errorf("giving up after %d attempts: %w", attempt, err)
		}
		left := s.cfg.retryFor - time.Since(failed)
		if left <= 0 {
			return fmt.Errorf("giving up after %d attempts over %s: %w", attempt, time.Since(failed).Round(time.Millisecond), err)
		}
		s.res.Retries++
		d := after
		if d == 0 {
			// Full jitter keeps many replays from retrying in step.
			d = backoff/2 + rand.N(backoff/2+1)
		}
		// The last attempt is made when the horizon ends, not skipped.
		d = min(d, left)
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
