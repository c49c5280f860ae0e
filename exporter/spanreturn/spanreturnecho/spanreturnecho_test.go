package spanreturnecho_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/labstack/echo/v4"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/lonelytrace/lonelytrace/exporter/spanreturn"
	"github.com/lonelytrace/lonelytrace/exporter/spanreturn/spanreturnecho"
)

// server is an Echo broadcaster with span return over loopback.
type server struct {
	proc     *spanreturn.Processor
	tp       *sdktrace.TracerProvider
	own      *tracetest.InMemoryExporter
	srv      *httptest.Server
	patterns chan string // r.Pattern as each handler saw it
}

func newServer(t *testing.T) *server {
	t.Helper()
	s := &server{own: tracetest.NewInMemoryExporter(), patterns: make(chan string, 16)}
	s.proc = spanreturn.NewProcessor(spanreturn.WithNext(sdktrace.NewSimpleSpanProcessor(s.own)))
	s.tp = sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(s.proc),
		sdktrace.WithResource(resource.NewSchemaless(attribute.String("service.name", "broadcaster"))))
	e := echo.New()
	e.Use(spanreturnecho.Middleware(s.proc, s.tp))
	tracer := s.tp.Tracer("broadcaster")
	e.POST("/v1/notify", func(c echo.Context) error {
		s.patterns <- c.Request().Pattern
		_, find := tracer.Start(c.Request().Context(), "find subscribers")
		find.End()
		return c.String(http.StatusOK, "2")
	})
	e.POST("/v1/fail", func(c echo.Context) error {
		_, sp := tracer.Start(c.Request().Context(), "bad auth")
		sp.End()
		return echo.NewHTTPError(http.StatusUnauthorized, "bad signature")
	})
	s.srv = httptest.NewServer(e)
	t.Cleanup(func() {
		s.srv.Close()
		s.tp.Shutdown(context.Background())
	})
	return s
}

// client is a subscriber whose Receiver stores returned spans with its own.
type client struct {
	exp  *tracetest.InMemoryExporter
	tp   *sdktrace.TracerProvider
	http *http.Client
}

func newClient(t *testing.T) *client {
	t.Helper()
	c := &client{exp: tracetest.NewInMemoryExporter()}
	c.tp = sdktrace.NewTracerProvider(sdktrace.WithSyncer(c.exp))
	t.Cleanup(func() { c.tp.Shutdown(context.Background()) })
	recv := spanreturn.NewReceiver(c.exp)
	c.http = &http.Client{Transport: recv.Transport(http.DefaultTransport.(*http.Transport).Clone())}
	return c
}

// post sends a request within a client span and returns the status.
func (c *client) post(t *testing.T, url string) int {
	t.Helper()
	ctx, span := c.tp.Tracer("subscriber").Start(context.Background(), "notify")
	defer span.End()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.Header.Get(spanreturn.Header) != "" {
		t.Errorf("%s header left on the response for the caller", spanreturn.Header)
	}
	return resp.StatusCode
}

// stored returns the spans the client stored, by name.
func (c *client) stored() map[string]tracetest.SpanStub {
	m := map[string]tracetest.SpanStub{}
	for _, s := range c.exp.GetSpans() {
		m[s.Name] = s
	}
	return m
}

func TestMiddleware(t *testing.T) {
	t.Run("RouteNamesSpan", func(t *testing.T) {
		s, c := newServer(t), newClient(t)
		if got := c.post(t, s.srv.URL+"/v1/notify"); got != http.StatusOK {
			t.Fatalf("status = %d; want 200", got)
		}
		got := c.stored()
		if _, ok := got["POST /v1/notify"]; !ok {
			t.Errorf("stored %v; want the server span named by the route", keys(got))
		}
		if sp, ok := got["find subscribers"]; !ok || sp.Resource.String() != "service.name=broadcaster" {
			t.Errorf("stored %v; want the returned phase under the broadcaster's resource", keys(got))
		}
		if p := <-s.patterns; p != "" {
			t.Errorf("handler saw Pattern %q; want Echo's request unchanged (empty)", p)
		}
		if n := s.proc.Stats().Requests; n != 1 {
			t.Errorf("requests = %d; want 1", n)
		}
	})
	t.Run("HandlerError", func(t *testing.T) {
		s, c := newServer(t), newClient(t)
		if got := c.post(t, s.srv.URL+"/v1/fail"); got != http.StatusUnauthorized {
			t.Errorf("status = %d; want 401", got)
		}
		got := c.stored()
		sp, ok := got["POST /v1/fail"]
		if !ok {
			t.Fatalf("stored %v; want the error response to carry the server span", keys(got))
		}
		if _, ok := got["bad auth"]; !ok {
			t.Errorf("stored %v; want the handler's span", keys(got))
		}
		var status int64
		for _, kv := range sp.Attributes {
			if kv.Key == "http.response.status_code" {
				status = kv.Value.AsInt64()
			}
		}
		if status != http.StatusUnauthorized {
			t.Errorf("returned http.response.status_code = %d; want 401", status)
		}
	})
	t.Run("NotAsked", func(t *testing.T) {
		s := newServer(t)
		resp, err := http.Post(s.srv.URL+"/v1/notify", "text/plain", nil)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.Header.Get(spanreturn.Header) != "" || string(body) != "2" {
			t.Errorf("answer to a request without trace context: header %q, body %q", resp.Header.Get(spanreturn.Header), body)
		}
		if n := s.proc.Stats().Requests; n != 0 {
			t.Errorf("requests = %d; want 0", n)
		}
	})
	t.Run("Panic", func(t *testing.T) {
		own := tracetest.NewInMemoryExporter()
		proc := spanreturn.NewProcessor(spanreturn.WithNext(sdktrace.NewSimpleSpanProcessor(own)))
		tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(proc))
		defer tp.Shutdown(context.Background())
		e := echo.New()
		var writerAfter http.ResponseWriter
		e.Use(func(next echo.HandlerFunc) echo.HandlerFunc {
			return func(c echo.Context) error {
				defer func() {
					writerAfter = c.Response().Writer
					_ = recover()
				}()
				return next(c)
			}
		})
		e.Use(spanreturnecho.Middleware(proc, tp))
		e.POST("/", func(c echo.Context) error {
			_, sp := tp.Tracer("t").Start(c.Request().Context(), "before panic")
			sp.End()
			panic("boom")
		})
		req := httptest.NewRequest(http.MethodPost, "/", nil)
		req.Header.Set("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
		req.Header.Set(spanreturn.AskHeader, "1")
		rec := httptest.NewRecorder()
		e.ServeHTTP(rec, req)
		if rec.Header().Get(spanreturn.Header) != "" || proc.Stats().Requests != 0 {
			t.Errorf("a panicking handler's spans were returned")
		}
		if n := len(own.GetSpans()); n != 2 {
			t.Errorf("server's own exporter got %d spans; want 2", n)
		}
		if writerAfter != rec {
			t.Errorf("response writer after a panic = %T; want Echo's own restored", writerAfter)
		}
	})
}

func keys(m map[string]tracetest.SpanStub) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	return ks
}
