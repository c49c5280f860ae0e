package spanreturnecho_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/labstack/echo/v4"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/lonelytrace/lonelytrace/exporter/spanreturn"
	"github.com/lonelytrace/lonelytrace/exporter/spanreturn/spanreturnecho"
)

// Echo servers use the Echo middleware; the server span is named by the
// route.
func ExampleMiddleware() {
	own := tracetest.NewInMemoryExporter() // the broadcaster's own exporter, if any
	proc := spanreturn.NewProcessor(spanreturn.WithNext(sdktrace.NewBatchSpanProcessor(own)))
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(proc))
	defer tp.Shutdown(context.Background())

	e := echo.New()
	e.Use(spanreturnecho.Middleware(proc, tp))
	e.POST("/v1/notify", func(c echo.Context) error { return c.String(http.StatusOK, "2") })

	req := httptest.NewRequest(http.MethodPost, "/v1/notify", nil)
	req.Header.Set("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
	req.Header.Set(spanreturn.AskHeader, "1")
	rec := httptest.NewRecorder()
	e.ServeHTTP(rec, req)
	fmt.Println(rec.Header().Get(spanreturn.Header) != "", proc.Stats().Returned)
	// Output: true 1
}
