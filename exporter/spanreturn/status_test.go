package spanreturn

import (
	"context"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/lonelytrace/lonelytrace/exporter"
	"github.com/lonelytrace/lonelytrace/schema"
)

// TestSpanReturn_ServerStatus: the server span that rides home carries
// the status the HTTP semantic conventions give a server span: Error for
// a 5xx answer, unset for a 4xx or a success, whether the middleware
// started the span or an outer instrumentation did.
func TestSpanReturn_ServerStatus(t *testing.T) {
	for _, tc := range []struct {
		name   string
		code   int
		outer  bool // an outer instrumentation started the server span
		write  bool // the handler writes a body without WriteHeader
		status string
	}{
		{"503", http.StatusServiceUnavailable, false, false, "error"},
		{"500", http.StatusInternalServerError, false, false, "error"},
		{"404", http.StatusNotFound, false, false, "unset"},
		{"429", http.StatusTooManyRequests, false, false, "unset"},
		{"200", http.StatusOK, false, true, "unset"},
		{"503Outer", http.StatusServiceUnavailable, true, false, "error"},
		{"404Outer", http.StatusNotFound, true, false, "unset"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			own := tracetest.NewInMemoryExporter()
			proc := NewProcessor(WithNext(sdktrace.NewSimpleSpanProcessor(own)))
			tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(proc))
			defer tp.Shutdown(context.Background())
			var h http.Handler = proc.Middleware(tp)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if tc.write {
					w.Write([]byte("fine"))
					return
				}
				http.Error(w, "busy", tc.code)
			}))
			if tc.outer {
				// As otelhttp does: a server span around the middleware,
				// whose status it sets only when it ends, after the answer.
				inner := h
				h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					ctx := r.Context()
					ctx, span := tp.Tracer("outer").Start(ctx, "outer server", trace.WithSpanKind(trace.SpanKindServer))
					defer span.End()
					inner.ServeHTTP(w, r.WithContext(ctx))
				})
				h = propagated(h)
			}
			srv := httptest.NewServer(h)
			defer srv.Close()

			path := filepath.Join(t.TempDir(), "subscriber.db")
			exp, err := exporter.New(path)
			if err != nil {
				t.Fatal(err)
			}
			s := newSubscriber(t, exp, nil)
			ctx, span := s.tp.Tracer("subscriber").Start(context.Background(), "notify", trace.WithSpanKind(trace.SpanKindClient))
			req, err := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL+"/v1/notify", strings.NewReader("hello"))
			if err != nil {
				t.Fatal(err)
			}
			resp, err := s.client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			span.End()
			if resp.StatusCode != tc.code {
				t.Fatalf("status code = %d; want %d", resp.StatusCode, tc.code)
			}
			if err := s.tp.Shutdown(context.Background()); err != nil {
				t.Fatal(err)
			}
			if st := s.recv.Stats(); st.Answers != 1 || st.Spans != 1 {
				t.Fatalf("receiver stats = %+v; want 1 answer of 1 span", st)
			}

			want := "POST"
			if tc.outer {
				want = "outer server"
			}
			status, code := serverStatus(t, path, want)
			if status != tc.status || code != tc.code {
				t.Errorf("returned server span: status %q, http.response.status_code %d; want %q, %d", status, code, tc.status, tc.code)
			}
			// The server's own record of a span it started agrees.
			if !tc.outer {
				var mine []codes.Code
				for _, sp := range own.GetSpans() {
					mine = append(mine, sp.Status.Code)
				}
				wantCode := map[string]codes.Code{"error": codes.Error, "unset": codes.Unset}[tc.status]
				if len(mine) != 0 && mine[0] != wantCode {
					t.Errorf("server's own span status = %v; want %v", mine[0], wantCode)
				}
			}
		})
	}
}

// propagated reads the W3C traceparent into the request's context, as an
// outer instrumentation does before it starts its span.
func propagated(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := tracecontext.Extract(r.Context(), propagation.HeaderCarrier(r.Header))
		h.ServeHTTP(w, r.WithContext(ctx))
	})
}

// serverStatus reads the status and HTTP status code of the span named
// name from the file at path.
func serverStatus(t *testing.T, path, name string) (status string, code int) {
	t.Helper()
	ctx := context.Background()
	db, err := schema.OpenRead(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	r := schema.NewReader(db)
	spans, err := r.After(ctx, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range spans {
		if s.Name != name {
			continue
		}
		for _, kv := range s.Attributes {
			if kv.Key == attribute.Key("http.response.status_code") {
				code = int(kv.Value.AsInt64())
			}
		}
		return map[codes.Code]string{codes.Unset: "unset", codes.Ok: "ok", codes.Error: "error"}[s.StatusCode], code
	}
	t.Fatalf("no span named %q in the file", name)
	return "", 0
}
