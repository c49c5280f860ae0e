package collect

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"google.golang.org/grpc/codes"
)

func TestReceiver_HTTP(t *testing.T) {
	st := mustStore(t)
	url := serve(t, New(st))
	want := 0
	for _, c := range []struct {
		name, ctype, enc string
		body             []byte
	}{
		{"Protobuf", contentProtobuf, "", protoBody(t, makeTraces(3, 1))},
		{"JSON", contentJSON, "", jsonBody(t, makeTraces(4, 2))},
		{"JSONWithCharset", contentJSON + "; charset=utf-8", "", jsonBody(t, makeTraces(1, 3))},
		{"ProtobufGzip", contentProtobuf, "gzip", gzipped(t, protoBody(t, makeTraces(5, 4)))},
		{"JSONGzip", contentJSON, "gzip", gzipped(t, jsonBody(t, makeTraces(2, 5)))},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := post(t, url, c.ctype, c.enc, bytes.NewReader(c.body))
			if r.code != http.StatusOK {
				t.Fatalf("status = %d (%s); want 200", r.code, r.raw)
			}
			if want := requestEncoding(c.ctype); r.ctype != want {
				t.Errorf("Content-Type = %q; want the request's %q", r.ctype, want)
			}
			if n := r.resp.PartialSuccess().RejectedSpans(); n != 0 {
				t.Errorf("rejected = %d; want 0", n)
			}
		})
	}
	want = 3 + 4 + 1 + 5 + 2
	if n := st.count(t); n != want {
		t.Errorf("stored %d spans; want %d", n, want)
	}
}

func TestReceiver_HTTPPartialSuccess(t *testing.T) {
	st := mustStore(t)
	url := serve(t, New(st))
	td := makeTraces(4, 1)
	spans := td.ResourceSpans().At(0).ScopeSpans().At(0).Spans()
	spans.At(1).SetSpanID(pcommon.SpanID{})
	spans.At(3).SetTraceID(pcommon.TraceID{})
	for _, ct := range []string{contentProtobuf, contentJSON} {
		before := st.count(t)
		body := protoBody(t, td)
		if ct == contentJSON {
			body = jsonBody(t, td)
		}
		r := post(t, url, ct, "", bytes.NewReader(body))
		if r.code != http.StatusOK {
			t.Fatalf("%s: status = %d (%s); want 200 with partial success", ct, r.code, r.raw)
		}
		ps := r.resp.PartialSuccess()
		if ps.RejectedSpans() != 2 || ps.ErrorMessage() == "" {
			t.Errorf("%s: partial success = %d %q; want 2 rejected with a message", ct, ps.RejectedSpans(), ps.ErrorMessage())
		}
		if n := st.count(t) - before; n != 2 {
			t.Errorf("%s: stored %d spans; want 2", ct, n)
		}
	}
	// All rejected: a permanent error.
	for i := range spans.Len() {
		spans.At(i).SetSpanID(pcommon.SpanID{})
	}
	r := post(t, url, contentJSON, "", bytes.NewReader(jsonBody(t, td)))
	if r.code != http.StatusBadRequest || r.status == nil || codes.Code(r.status.Code) != codes.InvalidArgument || !strings.Contains(r.status.Message, "rejected") {
		t.Errorf("all rejected: %d %v; want 400 with an INVALID_ARGUMENT Status", r.code, r.status)
	}
}

func TestReceiver_HTTPBusy(t *testing.T) {
	st := mustStore(t)
	url := serve(t, New(st, WithQueueWait(0)))
	resume := st.stall(t)
	for _, ct := range []string{contentProtobuf, contentJSON} {
		r := post(t, url, ct, "", bytes.NewReader(protoOrJSON(t, ct, makeTraces(2, 1))))
		if r.code != http.StatusServiceUnavailable || r.retryAfter != "1" {
			t.Fatalf("%s: status = %d, Retry-After %q; want 503 with Retry-After 1", ct, r.code, r.retryAfter)
		}
		if r.status == nil || codes.Code(r.status.Code) != codes.Unavailable {
			t.Errorf("%s: body = %v; want an UNAVAILABLE Status", ct, r.status)
		}
	}
	resume()
	// As a client would: retry until the writer has caught up.
	deadline := time.Now().Add(30 * time.Second)
	for {
		r := post(t, url, contentProtobuf, "", bytes.NewReader(protoBody(t, makeTraces(2, 1))))
		if r.code == http.StatusOK {
			break
		}
		if r.code != http.StatusServiceUnavailable || time.Now().After(deadline) {
			t.Fatalf("after the stall: status = %d; want 200 (after 503s while the writer catches up)", r.code)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if n := st.count(t); n != 2 {
		t.Errorf("stored %d spans; want 2 (none of the refused)", n)
	}
}

func protoOrJSON(t testing.TB, ct string, td interface{ SpanCount() int }) []byte {
	t.Helper()
	tr := makeTraces(td.SpanCount(), 9)
	if ct == contentJSON {
		return jsonBody(t, tr)
	}
	return protoBody(t, tr)
}

// zeros is an endless reader of zero bytes.
type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }

func TestReceiver_HTTPHostile(t *testing.T) {
	st := mustStore(t)
	const limit = 1 << 20
	url := serve(t, New(st, WithMaxRequestBytes(limit)))
	good := protoBody(t, makeTraces(3, 1))

	// A gzip bomb: 64 MiB of zeros in about 64 KiB.
	var bomb bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&bomb, gzip.BestCompression)
	io.CopyN(zw, zeros{}, 64<<20)
	zw.Close()

	// A span with far more attributes than fit in the limit.
	huge := makeTraces(1, 7)
	attrs := huge.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0).Attributes()
	raw := make(map[string]any, 200_000)
	for i := range 200_000 {
		raw["k"+itoa(i)] = int64(i)
	}
	if err := attrs.FromRaw(raw); err != nil {
		t.Fatal(err)
	}

	for _, c := range []struct {
		name, ctype, enc string
		body             io.Reader
		code             int
		grpc             codes.Code
		contains         string
	}{
		{"Truncated", contentProtobuf, "", bytes.NewReader(good[:len(good)-5]), 400, codes.InvalidArgument, "protobuf"},
		{"NotJSON", contentJSON, "", strings.NewReader(`{"resourceSpans": [`), 400, codes.InvalidArgument, "JSON"},
		{"WrongContentType", "text/plain", "", bytes.NewReader(good), 415, 0, "application/x-protobuf"},
		{"NoContentType", "", "", bytes.NewReader(good), 415, 0, "application/x-protobuf"},
		{"BadGzip", contentProtobuf, "gzip", bytes.NewReader(good), 400, codes.InvalidArgument, "gzip"},
		{"UnknownEncoding", contentProtobuf, "br", bytes.NewReader(good), 400, codes.InvalidArgument, "gzip"},
		{"GzipBomb", contentProtobuf, "gzip", bytes.NewReader(bomb.Bytes()), 413, codes.ResourceExhausted, "larger than"},
		// No Content-Length: the limit is found while reading.
		{"LargeChunked", contentProtobuf, "", io.LimitReader(zeros{}, 100<<20), 413, codes.ResourceExhausted, "larger than"},
		{"LargeDeclared", contentProtobuf, "", bytes.NewReader(make([]byte, 100<<20)), 413, codes.ResourceExhausted, "larger than"},
		{"HugeAttributeCount", contentProtobuf, "", bytes.NewReader(protoBody(t, huge)), 413, codes.ResourceExhausted, "larger than"},
		{"WrongIDLength", contentJSON, "", strings.NewReader(`{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"0102","spanId":"0102030405060708","name":"x"}]}]}]}`), 400, codes.InvalidArgument, "JSON"},
	} {
		t.Run(c.name, func(t *testing.T) {
			body := c.body
			if c.name == "LargeChunked" {
				body = io.MultiReader(c.body) // hides the length from net/http
			}
			r := post(t, url, c.ctype, c.enc, body)
			if r.code != c.code {
				t.Fatalf("status = %d (%.200s); want %d", r.code, r.raw, c.code)
			}
			msg := string(r.raw)
			if c.grpc != 0 {
				if r.status == nil || codes.Code(r.status.Code) != c.grpc {
					t.Fatalf("body = %v; want a %s Status", r.status, c.grpc)
				}
				msg = r.status.Message
			}
			if !strings.Contains(msg, c.contains) {
				t.Errorf("message %q does not say %q", msg, c.contains)
			}
		})
	}
	if n := st.count(t); n != 0 {
		t.Errorf("stored %d spans of hostile requests; want 0", n)
	}
	if r := post(t, url, contentProtobuf, "", bytes.NewReader(good)); r.code != 200 {
		t.Errorf("after the hostile requests: status = %d; want 200", r.code)
	}
	if n := st.count(t); n != 3 {
		t.Errorf("stored %d spans; want 3", n)
	}
}

func itoa(i int) string {
	var b [20]byte
	n := len(b)
	for {
		n--
		b[n] = byte('0' + i%10)
		i /= 10
		if i == 0 {
			return string(b[n:])
		}
	}
}

func TestReceiver_HTTPToken(t *testing.T) {
	st := mustStore(t)
	const tok = "0123456789abcdef0123"
	url := serve(t, New(st, WithToken(tok)))
	body := protoBody(t, makeTraces(1, 1))
	for _, hdr := range [][]string{nil, {"Authorization", "Bearer wrong-token-0123456789"}, {"Authorization", tok}} {
		r := post(t, url, contentProtobuf, "", bytes.NewReader(body), hdr...)
		if r.code != http.StatusUnauthorized || r.status == nil || codes.Code(r.status.Code) != codes.Unauthenticated {
			t.Errorf("%v: status = %d %v; want 401 UNAUTHENTICATED", hdr, r.code, r.status)
		}
	}
	if r := post(t, url, contentProtobuf, "", bytes.NewReader(body), "Authorization", "Bearer "+tok); r.code != 200 {
		t.Errorf("with the token: status = %d; want 200", r.code)
	}
	if n := st.count(t); n != 1 {
		t.Errorf("stored %d spans; want 1", n)
	}
}

func TestReceiver_HTTPRoutes(t *testing.T) {
	url := serve(t, New(mustStore(t)))
	res, err := http.Get(url + TracesPath)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusMethodNotAllowed || res.Header.Get("Allow") != "POST" {
		t.Errorf("GET = %d, Allow %q; want 405, POST", res.StatusCode, res.Header.Get("Allow"))
	}
	res, err = http.Post(url+"/v1/metrics", contentProtobuf, nil)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusNotFound {
		t.Errorf("POST /v1/metrics = %d; want 404", res.StatusCode)
	}
}

// TestReceiver_HTTPReuse sends requests of every encoding at once, a bad
// gzip body among them, to one receiver, which reuses its body buffers
// and gzip readers from request to request: every stored span keeps the
// name and attributes its own request gave it.
func TestReceiver_HTTPReuse(t *testing.T) {
	st := mustStore(t)
	const rounds = 8
	// A slot for every request: each holds its slot until its spans are
	// committed, and the test is of reuse, not of load.
	url := serve(t, New(st, WithMaxConcurrent(rounds*4*2)))
	type sent struct {
		ctype, enc string
		body       []byte
	}
	var reqs []sent
	want := map[string]int64{} // span name → body size attribute
	for seed := range byte(rounds * 4) {
		n := 1 + int(seed)*13%97
		td := makeTraces(n, seed)
		ps := td.ResourceSpans().At(0).ScopeSpans().At(0).Spans()
		for i := range ps.Len() {
			name := "op-" + itoa(int(seed)) + "-" + itoa(i) + strings.Repeat("x", int(seed)%5*40)
			ps.At(i).SetName(name)
			want[name] = int64(i)
		}
		ctype, body := contentProtobuf, protoBody(t, td)
		if seed%2 == 1 {
			ctype, body = contentJSON, jsonBody(t, td)
		}
		enc := ""
		if seed%4 >= 2 {
			enc, body = "gzip", gzipped(t, body)
		}
		reqs = append(reqs, sent{ctype, enc, body})
	}
	errs := make(chan string, len(reqs)*2)
	for _, r := range reqs {
		go func() {
			if a := post(t, url, r.ctype, r.enc, bytes.NewReader(r.body)); a.code != http.StatusOK {
				errs <- "status " + itoa(a.code) + ": " + string(a.raw)
				return
			}
			errs <- ""
		}()
		go func() {
			if a := post(t, url, contentProtobuf, "gzip", strings.NewReader("\x1f\x8bnot gzip at all")); a.code != http.StatusBadRequest {
				errs <- "bad gzip: status " + itoa(a.code) + "; want 400"
				return
			}
			errs <- ""
		}()
	}
	for range len(reqs) * 2 {
		if e := <-errs; e != "" {
			t.Error(e)
		}
	}
	st.checkNamesAndSizes(t, want)
}
