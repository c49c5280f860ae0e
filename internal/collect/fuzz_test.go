package collect

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"testing"
)

// FuzzServeHTTP sends arbitrary bodies, in both encodings, plain or
// gzip-declared: every answer is 200 or a 4xx with a Status body, and the
// spans stored are exactly those the 200 answers accepted.
func FuzzServeHTTP(f *testing.F) {
	f.Add(protoBody(f, makeTraces(2, 1)), false, false)
	f.Add(jsonBody(f, makeTraces(2, 1)), true, false)
	f.Add(gzipped(f, protoBody(f, makeTraces(1, 2))), false, true)
	f.Add([]byte(`{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"00000000000000000000000000000000","spanId":"0102030405060708"}]}]}]}`), true, false)
	st := mustStore(f)
	r := New(st, WithMaxRequestBytes(1<<20), WithQueueWait(0))
	f.Fuzz(func(t *testing.T, body []byte, json, gz bool) {
		ct := contentProtobuf
		if json {
			ct = contentJSON
		}
		req := httptest.NewRequest("POST", TracesPath, bytes.NewReader(body))
		req.Header.Set("Content-Type", ct)
		if gz {
			req.Header.Set("Content-Encoding", "gzip")
		}
		before := r.Stats().Accepted
		stored := st.count(t)
		w := httptest.NewRecorder()
		r.ServeHTTP(w, req)
		acc := r.Stats().Accepted - before
		switch {
		case w.Code == http.StatusOK:
		case w.Code >= 400 && w.Code < 500:
			if acc != 0 {
				t.Fatalf("status %d with %d spans accepted", w.Code, acc)
			}
			if w.Header().Get("Content-Type") != ct {
				t.Fatalf("status %d answered in %q; want %q", w.Code, w.Header().Get("Content-Type"), ct)
			}
		default:
			t.Fatalf("status %d (%s)", w.Code, w.Body.Bytes())
		}
		if got := int64(st.count(t) - stored); got != acc {
			t.Fatalf("stored %d spans; the answer accepted %d", got, acc)
		}
	})
}
