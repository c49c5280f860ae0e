package replay_test

import (
	"compress/gzip"
	"context"
	"encoding/pem"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lonelytrace/lonelytrace/internal/otlp/otlptest"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/lonelytrace/lonelytrace/exporter"
	"github.com/lonelytrace/lonelytrace/internal/otlp"
	"github.com/lonelytrace/lonelytrace/internal/replay"
)

// answer is what otlpReceiver says to one request instead of a plain
// success.
type answer struct {
	status     int
	retryAfter string
	message    string // a google.rpc.Status message, for a failure
	rejected   int64  // with status 0: a partial success
}

// otlpReceiver is an OTLP/HTTP trace receiver on loopback that decodes
// requests with the collector's pdata, as a collector does. It gives the
// answers in order, then plain successes.
type otlpReceiver struct {
	srv *httptest.Server

	mu       sync.Mutex
	answers  []answer
	requests []time.Time
	headers  []http.Header
	got      ptrace.Traces
}

func newReceiver(t *testing.T, tls bool, answers ...answer) *otlpReceiver {
	t.Helper()
	r := &otlpReceiver{answers: answers, got: ptrace.NewTraces()}
	if tls {
		r.srv = httptest.NewTLSServer(http.HandlerFunc(r.serve))
	} else {
		r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	}
	t.Cleanup(r.srv.Close)
	return r
}

func (r *otlpReceiver) serve(w http.ResponseWriter, req *http.Request) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.requests = append(r.requests, time.Now())
	r.headers = append(r.headers, req.Header.Clone())
	fail := func(code int, msg string) {
		b, _ := proto.Marshal(&spb.Status{Message: msg})
		w.Header().Set("Content-Type", "application/x-protobuf")
		w.WriteHeader(code)
		_, _ = w.Write(b)
	}
	if req.Method != http.MethodPost || req.URL.Path != "/v1/traces" || req.Header.Get("Content-Type") != "application/x-protobuf" {
		fail(http.StatusBadRequest, "want a POST of protobuf to /v1/traces")
		return
	}
	var body io.Reader = req.Body
	if req.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(req.Body)
		if err != nil {
			fail(http.StatusBadRequest, err.Error())
			return
		}
		body = zr
	}
	data, err := io.ReadAll(body)
	if err != nil {
		fail(http.StatusBadRequest, err.Error())
		return
	}
	er := ptraceotlp.NewExportRequest()
	if err := er.UnmarshalProto(data); err != nil {
		fail(http.StatusBadRequest, err.Error())
		return
	}
	resp := ptraceotlp.NewExportResponse()
	if len(r.answers) > 0 {
		a := r.answers[0]
		r.answers = r.answers[1:]
		if a.status != 0 {
			if a.retryAfter != "" {
				w.Header().Set("Retry-After", a.retryAfter)
			}
			fail(a.status, a.message)
			return
		}
		resp.PartialSuccess().SetRejectedSpans(a.rejected)
		resp.PartialSuccess().SetErrorMessage(a.message)
	}
	er.Traces().ResourceSpans().MoveAndAppendTo(r.got.ResourceSpans())
	b, _ := resp.MarshalProto()
	w.Header().Set("Content-Type", "application/x-protobuf")
	_, _ = w.Write(b)
}

// oddTraces returns n spans using every field of an OTLP span and every
// AnyValue type, with flags and trace states the Go SDK would not keep as
// they are: OTLP's bit 8 without bit 9, bit 9 without bit 8, bits above
// them, trace states that are not W3C-valid or not in canonical form.
func oddTraces(n int) ptrace.Traces {
	flags := []uint32{0, 1, 0x100, 0x101, 0x301, 0x201, 0x300, 0x1000_0401, 0xffff_ffff}
	states := []string{"", "vendor=abc,other=x1", " spaced = yes , k=v ", "UPPER=not-w3c", "k=v,k=again", "=", "a=b\tc"}
	td := ptrace.NewTraces()
	base := time.Date(2026, 3, 29, 1, 30, 0, 123456789, time.UTC)
	for r := range 2 {
		rs := td.ResourceSpans().AppendEmpty()
		rs.SetSchemaUrl(fmt.Sprintf("https://opentelemetry.io/schemas/1.2%d.0", r))
		rs.Resource().Attributes().PutStr("service.name", fmt.Sprintf("svc-%d", r))
		rs.Resource().Attributes().PutEmptyBytes("res.bytes").FromRaw([]byte{byte(r), 0xff})
		for sc := range 2 {
			ss := rs.ScopeSpans().AppendEmpty()
			ss.SetSchemaUrl(fmt.Sprintf("https://example.com/scope/%d", sc))
			ss.Scope().SetName(fmt.Sprintf("lib-%d", sc))
			ss.Scope().SetVersion("1.2.3")
			ss.Scope().Attributes().PutEmptyMap("scope.map").PutInt("n", int64(sc))
		}
	}
	for i := range n {
		rs := td.ResourceSpans().At(i % 2)
		p := rs.ScopeSpans().At(i / 2 % 2).Spans().AppendEmpty()
		p.SetTraceID(pcommon.TraceID{0xab, byte(i / 4 >> 8), byte(i / 4), 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15})
		p.SetSpanID(pcommon.SpanID{0xcd, byte(i >> 8), byte(i), 4, 5, 6, 7, 8})
		if i%4 != 0 {
			p.SetParentSpanID(pcommon.SpanID{0xcd, byte((i - 1) >> 8), byte(i - 1), 4, 5, 6, 7, 8})
		}
		p.SetFlags(flags[i%len(flags)])
		p.TraceState().FromRaw(states[i%len(states)])
		p.SetName(fmt.Sprintf("op %d", i%5))
		p.SetKind(ptrace.SpanKind(i % 6))
		st := base.Add(time.Duration(i) * time.Millisecond)
		p.SetStartTimestamp(pcommon.NewTimestampFromTime(st))
		p.SetEndTimestamp(pcommon.NewTimestampFromTime(st.Add(time.Duration(i+1) * time.Microsecond)))
		p.Status().SetCode(ptrace.StatusCode(i % 3))
		if i%3 != 1 {
			p.Status().SetMessage(fmt.Sprintf("status %d", i))
		}
		a := p.Attributes()
		a.PutStr("messaging.operation.name", "notify")
		a.PutInt("messaging.message.body.size", int64(i))
		a.PutDouble("whole", 2)
		a.PutDouble("inf", math.Inf(1))
		a.PutBool("b", i%2 == 0)
		a.PutEmptyBytes("bytes").FromRaw([]byte{0, byte(i)})
		a.PutEmpty("empty")
		a.PutEmptySlice("mixed").FromRaw([]any{"a", int64(1), 2.5, true, []byte{9}, nil, []any{"x"}, map[string]any{"k": "v"}})
		a.PutEmptySlice("ints").FromRaw([]any{int64(i), int64(-1)})
		a.PutEmptySlice("none")
		a.PutEmptyMap("map").PutEmptyMap("inner").PutStr("s", "v")
		p.SetDroppedAttributesCount(uint32(i % 4))
		p.SetDroppedEventsCount(uint32(i % 5))
		p.SetDroppedLinksCount(uint32(i % 6))
		for e := range i % 3 {
			ev := p.Events().AppendEmpty()
			ev.SetName(fmt.Sprintf("event %d", e))
			ev.SetTimestamp(pcommon.NewTimestampFromTime(st.Add(time.Duration(e) * time.Nanosecond)))
			ev.Attributes().PutEmptyBytes("raw").FromRaw([]byte("hi"))
			ev.SetDroppedAttributesCount(uint32(e))
		}
		for l := range i % 3 {
			ln := p.Links().AppendEmpty()
			ln.SetTraceID(pcommon.TraceID{9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, byte(l), byte(i)})
			ln.SetSpanID(pcommon.SpanID{8, 8, 8, 8, 8, 8, byte(l), byte(i)})
			ln.SetFlags(flags[(i+l+1)%len(flags)])
			ln.TraceState().FromRaw(states[(i+l+1)%len(states)])
			ln.Attributes().PutEmptySlice("l").FromRaw([]any{1.5, 2.5})
			ln.SetDroppedAttributesCount(uint32(l + 1))
		}
	}
	return td
}

// mustStore writes td into a new trace file through the exporter's
// writer, as `lonelytrace collect` and `import` do.
func mustStore(t *testing.T, td ptrace.Traces) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "otlp.db")
	exp, err := exporter.New(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	acc, rej, msg, err := otlp.Store(ctx, exp, td, otlp.Wait)
	if err != nil || acc != td.SpanCount() || rej != 0 {
		t.Fatalf("Store = %d, %d, %q, %v; want %d stored", acc, rej, msg, err, td.SpanCount())
	}
	if err := exp.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestReplay_Faithful stores OTLP spans in a file, replays the file into
// an OTLP receiver and finds every span there as it was written, field by
// field: flags with OTLP's bits 8, 9 and above, trace states as written,
// every value type.
func TestReplay_Faithful(t *testing.T) {
	in := oddTraces(90)
	want := otlptest.SpanLines(t, in)
	path := mustStore(t, in)

	for _, gz := range []bool{false, true} {
		t.Run(fmt.Sprintf("Gzip=%v", gz), func(t *testing.T) {
			rc := newReceiver(t, false)
			res, err := replay.Replay(context.Background(), rc.srv.URL, []string{path}, replay.WithBatchSize(16), replay.WithGzip(gz))
			if err != nil {
				t.Fatalf("Replay: %v", err)
			}
			if res.Spans != 90 || res.Requests != 6 {
				t.Errorf("result = %+v; want 90 spans in 6 requests", res)
			}
			rc.mu.Lock()
			defer rc.mu.Unlock()
			for i, h := range rc.headers {
				if got := h.Get("Content-Encoding") == "gzip"; got != gz {
					t.Errorf("request %d gzipped = %v; want %v", i, got, gz)
				}
			}
			otlptest.DiffLines(t, otlptest.SpanLines(t, rc.got), want)
		})
	}

	t.Run("Guard", func(t *testing.T) {
		// The comparison sees a flag bit above the W3C byte and a trace
		// state in another form.
		for name, change := range map[string]func(ptrace.Span){
			"Bit8":       func(p ptrace.Span) { p.SetFlags(p.Flags() ^ 0x100) },
			"TraceState": func(p ptrace.Span) { p.TraceState().FromRaw("spaced=yes,k=v") },
			"LinkFlags":  func(p ptrace.Span) { p.Links().At(0).SetFlags(p.Links().At(0).Flags() ^ 0x200) },
			"BytesToStr": func(p ptrace.Span) { p.Attributes().PutStr("bytes", "\x00\x02") },
		} {
			td := oddTraces(90)
			change(td.ResourceSpans().At(0).ScopeSpans().At(1).Spans().At(0)) // span 2
			if slices.Equal(otlptest.SpanLines(t, td), want) {
				t.Errorf("%s: the comparison does not see the change", name)
			}
		}
	})
}

// TestReplay_Answers checks the OTLP client rules against the receiver's
// answers.
func TestReplay_Answers(t *testing.T) {
	in := oddTraces(20)
	path := mustStore(t, in)
	ctx := context.Background()
	fast := replay.WithBackoff(time.Millisecond, time.Millisecond)

	t.Run("RetryAfter", func(t *testing.T) {
		rc := newReceiver(t, false, answer{status: http.StatusTooManyRequests, retryAfter: "1", message: "slow down"},
			answer{status: http.StatusServiceUnavailable})
		var waits []time.Duration
		res, err := replay.Replay(ctx, rc.srv.URL, []string{path}, fast,
			replay.WithProgress(func(p replay.Progress) {
				if p.Retry > 0 {
					waits = append(waits, p.Wait)
				}
			}))
		if err != nil {
			t.Fatalf("Replay: %v", err)
		}
		rc.mu.Lock()
		defer rc.mu.Unlock()
		if res.Spans != 20 || res.Retries != 2 || len(rc.requests) != 3 {
			t.Fatalf("result = %+v after %d requests; want 20 spans, 2 retries, 3 requests", res, len(rc.requests))
		}
		if len(waits) != 2 || waits[0] != time.Second || waits[1] > time.Millisecond {
			t.Errorf("waits = %v; want the 1 s Retry-After, then the 1 ms backoff", waits)
		}
		if gap := rc.requests[1].Sub(rc.requests[0]); gap < time.Second {
			t.Errorf("second request came %v after the first; want at least the 1 s Retry-After", gap)
		}
		otlptest.DiffLines(t, otlptest.SpanLines(t, rc.got), otlptest.SpanLines(t, in))
	})

	t.Run("NotRetryable", func(t *testing.T) {
		// 413 is not among them: replay halves its requests
		// (TestReplay_TooLarge).
		for _, code := range []int{http.StatusBadRequest, http.StatusUnauthorized} {
			rc := newReceiver(t, false, answer{status: code, message: "bad spans here"})
			res, err := replay.Replay(ctx, rc.srv.URL, []string{path}, fast)
			if err == nil || !strings.Contains(err.Error(), "not retryable") || !strings.Contains(err.Error(), "bad spans here") ||
				!strings.Contains(err.Error(), fmt.Sprint(code)) {
				t.Errorf("%d: error = %v; want not retryable, with the code and the Status message", code, err)
			}
			rc.mu.Lock()
			if n := len(rc.requests); n != 1 || res.Retries != 0 || res.Spans != 0 {
				t.Errorf("%d: %d requests, result %+v; want 1 request, no retry, no span sent", code, n, res)
			}
			rc.mu.Unlock()
		}
	})

	t.Run("PartialSuccess", func(t *testing.T) {
		rc := newReceiver(t, false, answer{rejected: 3, message: "3 spans too old"}, answer{rejected: 2, message: "2 more"})
		res, err := replay.Replay(ctx, rc.srv.URL, []string{path}, fast, replay.WithBatchSize(5))
		if err != nil {
			t.Fatalf("Replay: %v", err)
		}
		rc.mu.Lock()
		defer rc.mu.Unlock()
		if res.Requests != 4 || len(rc.requests) != 4 || res.Retries != 0 {
			t.Errorf("%d requests, result %+v; want 4 requests, none sent again", len(rc.requests), res)
		}
		if res.Rejected != 5 || res.RejectMessage != "3 spans too old" || res.Spans != 20 {
			t.Errorf("result = %+v; want 20 spans sent, 5 rejected, the first message", res)
		}
	})

	t.Run("Environment", func(t *testing.T) {
		rc := newReceiver(t, true)
		ca := filepath.Join(t.TempDir(), "ca.pem")
		if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: rc.srv.Certificate().Raw}), 0o600); err != nil {
			t.Fatal(err)
		}
		t.Setenv("OTEL_EXPORTER_OTLP_CERTIFICATE", ca)
		// The traces variable wins over the general one, whole.
		t.Setenv("OTEL_EXPORTER_OTLP_HEADERS", "x-general=1,x-both=general")
		t.Setenv("OTEL_EXPORTER_OTLP_TRACES_HEADERS", "api-key=s%20cret, x-both=traces")
		t.Setenv("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip")
		res, err := replay.Replay(ctx, rc.srv.URL, []string{path}, replay.WithHeaders(map[string]string{"x-option": "o"}))
		if err != nil || res.Spans != 20 {
			t.Fatalf("Replay = %+v, %v; want 20 spans", res, err)
		}
		rc.mu.Lock()
		h := rc.headers[0]
		rc.mu.Unlock()
		for k, want := range map[string]string{"Api-Key": "s cret", "X-Both": "traces", "X-General": "", "X-Option": "o", "Content-Encoding": "gzip"} {
			if got := h.Get(k); got != want {
				t.Errorf("header %s = %q; want %q", k, got, want)
			}
		}

		t.Setenv("OTEL_EXPORTER_OTLP_COMPRESSION", "zstd")
		if _, err := replay.Replay(ctx, rc.srv.URL, []string{path}); err == nil || !strings.Contains(err.Error(), "OTEL_EXPORTER_OTLP_COMPRESSION") {
			t.Errorf("error = %v; want one naming OTEL_EXPORTER_OTLP_COMPRESSION", err)
		}
		t.Setenv("OTEL_EXPORTER_OTLP_COMPRESSION", "")
		t.Setenv("OTEL_EXPORTER_OTLP_TRACES_HEADERS", "novalue")
		if _, err := replay.Replay(ctx, rc.srv.URL, []string{path}); err == nil || !strings.Contains(err.Error(), "OTEL_EXPORTER_OTLP_TRACES_HEADERS") {
			t.Errorf("error = %v; want one naming OTEL_EXPORTER_OTLP_TRACES_HEADERS", err)
		}
	})
}
