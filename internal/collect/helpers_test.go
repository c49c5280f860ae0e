package collect

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// makeTraces builds n spans of one trace, each with a distinct span id.
func makeTraces(n int, seed byte) ptrace.Traces {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", "collect-test")
	ss := rs.ScopeSpans().AppendEmpty()
	ss.Scope().SetName("collect_test")
	tid := pcommon.TraceID{1, 2, 3, seed, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}
	for i := range n {
		sp := ss.Spans().AppendEmpty()
		sp.SetTraceID(tid)
		sp.SetSpanID(pcommon.SpanID{seed, 1, byte(i >> 16), byte(i >> 8), byte(i), 6, 7, 8})
		sp.SetName("notify")
		sp.SetStartTimestamp(pcommon.Timestamp(1_700_000_000_000_000_000 + int64(i)*1000))
		sp.SetEndTimestamp(pcommon.Timestamp(1_700_000_000_000_000_000 + int64(i)*1000 + 500))
		sp.Attributes().PutStr("messaging.operation.name", "notify")
		sp.Attributes().PutInt("messaging.message.body.size", int64(i))
	}
	return td
}

func protoBody(t testing.TB, td ptrace.Traces) []byte {
	t.Helper()
	b, err := ptraceotlp.NewExportRequestFromTraces(td).MarshalProto()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func jsonBody(t testing.TB, td ptrace.Traces) []byte {
	t.Helper()
	b, err := ptraceotlp.NewExportRequestFromTraces(td).MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func gzipped(t testing.TB, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(b)
	zw.Close()
	return buf.Bytes()
}

// reply is one OTLP/HTTP answer, decoded.
type reply struct {
	code       int
	ctype      string
	retryAfter string
	resp       ptraceotlp.ExportResponse // on 200
	status     *status.Status            // otherwise, when the body is one
	raw        []byte
}

// post sends body to srv's /v1/traces and decodes the answer in the
// encoding of ctype.
func post(t testing.TB, url, ctype, encoding string, body io.Reader, hdr ...string) reply {
	t.Helper()
	req, err := http.NewRequest("POST", url+TracesPath, body)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", ctype)
	if encoding != "" {
		req.Header.Set("Content-Encoding", encoding)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("POST: %v", err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	r := reply{code: res.StatusCode, ctype: res.Header.Get("Content-Type"), retryAfter: res.Header.Get("Retry-After"), raw: raw}
	json := r.ctype == contentJSON
	if res.StatusCode == http.StatusOK {
		r.resp = ptraceotlp.NewExportResponse()
		if json {
			err = r.resp.UnmarshalJSON(raw)
		} else {
			err = r.resp.UnmarshalProto(raw)
		}
		if err != nil {
			t.Fatalf("200 answer does not decode as %s: %v (%q)", r.ctype, err, raw)
		}
		return r
	}
	st := new(status.Status)
	switch r.ctype {
	case contentJSON:
		err = protojson.Unmarshal(raw, st)
	case contentProtobuf:
		err = proto.Unmarshal(raw, st)
	default:
		return r
	}
	if err != nil {
		t.Fatalf("%d answer does not decode as a google.rpc.Status in %s: %v (%q)", res.StatusCode, r.ctype, err, raw)
	}
	r.status = st
	return r
}

func serve(t testing.TB, r *Receiver) string {
	t.Helper()
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
	return srv.URL
}
