package replay

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/protobuf/proto"
)

// Content types of OTLP/HTTP.
const (
	contentProto = "application/x-protobuf"
	contentJSON  = "application/json"
)

// maxResponse bounds the part of an answer's body that is read: an
// ExportTraceServiceResponse or a Status is small.
const maxResponse = 1 << 20

// maxRetryAfter bounds a collector's Retry-After, so that a wrong header
// cannot stall a replay for hours.
const maxRetryAfter = time.Minute

// client sends OTLP/HTTP protobuf requests to one URL, the OTLP
// specification's way: POST of an ExportTraceServiceRequest, gzip when
// asked, 429, 502, 503 and 504 retryable (with the answer's Retry-After),
// a 200 possibly a partial success.
type client struct {
	url     string
	http    *http.Client
	headers map[string]string
	gzip    bool
	timeout time.Duration
}

// request is one encoded ExportTraceServiceRequest, ready to be sent
// again.
type request struct {
	body    []byte
	gzipped bool
	size    int // of the protobuf, before gzip: what a collector's bound counts
}

func (c *client) encode(td ptrace.Traces) (request, error) {
	body, err := ptraceotlp.NewExportRequestFromTraces(td).MarshalProto()
	if err != nil {
		return request{}, fmt.Errorf("encode request: %w", err)
	}
	if !c.gzip {
		return request{body: body, size: len(body)}, nil
	}
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(body); err != nil {
		return request{}, fmt.Errorf("gzip request: %w", err)
	}
	if err := zw.Close(); err != nil {
		return request{}, fmt.Errorf("gzip request: %w", err)
	}
	return request{body: buf.Bytes(), gzipped: true, size: len(body)}, nil
}

// partial is an answer's partial success: spans the collector rejected,
// or a warning about spans it took.
type partial struct {
	rejected int64
	message  string
}

// sendError is an attempt that failed. retry says whether the OTLP
// specification allows sending the same request again; after is the
// collector's Retry-After, zero when it gave none; status is the HTTP
// status of the answer, 0 without one.
type sendError struct {
	err    error
	retry  bool
	after  time.Duration
	status int
}

func (e *sendError) Error() string { return e.err.Error() }
func (e *sendError) Unwrap() error { return e.err }

// send makes one attempt. Its error is a *sendError.
func (c *client) send(ctx context.Context, req request) (partial, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url, bytes.NewReader(req.body))
	if err != nil {
		return partial{}, &sendError{err: err}
	}
	for k, v := range c.headers {
		hr.Header.Set(k, v)
	}
	hr.Header.Set("Content-Type", contentProto)
	hr.Header.Set("User-Agent", "lonelytrace-replay")
	if req.gzipped {
		hr.Header.Set("Content-Encoding", "gzip")
	}
	resp, err := c.http.Do(hr)
	if err != nil {
		// No answer (refused, reset, timed out): the specification
		// asks for a retry with backoff. The caller stops when its own
		// ctx is done.
		return partial{}, &sendError{err: err, retry: true}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	if err != nil && resp.StatusCode/100 != 2 {
		return partial{}, &sendError{err: fmt.Errorf("%s; reading the answer: %w", resp.Status, err), retry: true}
	}
	if resp.StatusCode/100 == 2 {
		// The collector took the request: what the body says can only
		// be a partial success, and a body that does not decode is
		// no reason to send the spans twice.
		return partialSuccess(resp.Header.Get("Content-Type"), body), nil
	}
	e := &sendError{err: fmt.Errorf("%s: %s", resp.Status, statusMessage(resp.Header.Get("Content-Type"), body)), status: resp.StatusCode}
	switch {
	case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable:
		e.retry, e.after = true, retryAfter(resp.Header.Get("Retry-After"), time.Now())
	case resp.StatusCode/100 == 5:
		// The specification retries 502 and 504 only; replay also
		// retries the other 5xx, as it always has: they are the
		// server's trouble, not the request's, and a replay is bounded
		// by its retry horizon.
		e.retry = true
	}
	return partial{}, e
}

// partialSuccess reads the partial_success of an
// ExportTraceServiceResponse.
func partialSuccess(contentType string, body []byte) partial {
	if len(body) == 0 {
		return partial{}
	}
	resp := ptraceotlp.NewExportResponse()
	var err error
	switch mediaType(contentType) {
	case contentProto:
		err = resp.UnmarshalProto(body)
	case contentJSON:
		err = resp.UnmarshalJSON(body)
	default:
		return partial{}
	}
	if err != nil {
		return partial{}
	}
	ps := resp.PartialSuccess()
	return partial{rejected: ps.RejectedSpans(), message: ps.ErrorMessage()}
}

// statusMessage is what a failure's body says: the message of a
// google.rpc.Status, as the specification has it, or the start of a
// plain text body, as proxies and simple servers send.
func statusMessage(contentType string, body []byte) string {
	if mediaType(contentType) == contentProto {
		var st spb.Status
		if proto.Unmarshal(body, &st) == nil && st.GetMessage() != "" {
			return st.GetMessage()
		}
	}
	s := strings.TrimSpace(string(body))
	if s == "" {
		return "(no message)"
	}
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}

func mediaType(contentType string) string {
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return ""
	}
	return mt
}

// retryAfter reads a Retry-After header: seconds, or an HTTP date. It is
// 0 when the header is missing or says nothing usable, and at most
// maxRetryAfter.
func retryAfter(h string, now time.Time) time.Duration {
	h = strings.TrimSpace(h)
	if h == "" {
		return 0
	}
	var d time.Duration
	if secs, err := strconv.ParseUint(h, 10, 32); err == nil {
		d = time.Duration(secs) * time.Second
	} else if t, err := http.ParseTime(h); err == nil {
		d = t.Sub(now)
	}
	return min(max(d, 0), maxRetryAfter)
}

// retryable reports whether err, from send, allows another attempt.
func retryable(err error) (ok bool, after time.Duration) {
	var se *sendError
	if errors.As(err, &se) {
		return se.retry, se.after
	}
	return false, 0
}
