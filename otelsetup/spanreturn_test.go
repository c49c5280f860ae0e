package otelsetup_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"

	"go.opentelemetry.io/otel"

	"github.com/lonelytrace/lonelytrace/exporter/spanreturn"
	"github.com/lonelytrace/lonelytrace/otelsetup"
	"github.com/lonelytrace/lonelytrace/schema"
)

// TestStart_SpanReturn runs both sides of span return under one Start: the
// server's spans must reach the file once, through the client, marked with
// the clock offset.
func TestStart_SpanReturn(t *testing.T) {
	for _, env := range []string{"", "off"} {
		t.Run("LONELYTRACE_SPANRETURN="+env, func(t *testing.T) {
			t.Setenv("OTEL_TRACES_EXPORTER", "sqlite")
			t.Setenv("LONELYTRACE_SPANRETURN", env)
			path := filepath.Join(t.TempDir(), "t.db")
			var handler http.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				_, s := otel.Tracer("broadcaster").Start(r.Context(), "find subscribers")
				s.End()
				w.Write([]byte("ok"))
			})
			client := &http.Client{}
			var proc *spanreturn.Processor
			var recv *spanreturn.Receiver
			shutdown := mustStart(t, otelsetup.WithDBPath(path),
				otelsetup.WithSpanReturnServer(func(p *spanreturn.Processor) {
					handler = p.Middleware(otel.GetTracerProvider())(handler)
					proc = p
				}),
				otelsetup.WithSpanReturnClient(func(r *spanreturn.Receiver) {
					client.Transport = r.Transport(nil)
					recv = r
				}))
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { handler.ServeHTTP(w, r) }))
			defer srv.Close()

			ctx, notify := otel.Tracer("subscriber").Start(context.Background(), "notify")
			req, _ := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL+"/v1/notify", nil)
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			notify.End()
			if err := shutdown(context.Background()); err != nil {
				t.Fatal(err)
			}

			db, err := schema.OpenRead(context.Background(), path)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			var find, finds, withOffset int
			db.QueryRow(`SELECT count(*) FROM spans_view WHERE name = 'find subscribers' AND trace_id = ?`, notify.SpanContext().TraceID().String()).Scan(&find)
			db.QueryRow(`SELECT count(*) FROM spans_view WHERE name = 'find subscribers'`).Scan(&finds)
			db.QueryRow(`SELECT count(*) FROM span_attributes WHERE key = 'lonelytrace.clock_offset_ns'`).Scan(&withOffset)
			if find != 1 || finds != 1 {
				t.Errorf("'find subscribers' spans = %d in the trace, %d in all; want 1 and 1", find, finds)
			}
			if env == "off" && withOffset != 0 {
				t.Errorf("spans with a clock offset = %d; want 0 with span return off", withOffset)
			}
			t.Logf("processor %+v, receiver %+v", proc.Stats(), recv.Stats())
			if env == "" && withOffset < 1 {
				t.Errorf("spans with a clock offset = %d; want the returned ones", withOffset)
			}
		})
	}
}
