package viewer_test

import (
	"context"
	"log"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/lonelytrace/lonelytrace/viewer"
)

// ExampleOpenJaeger mounts the viewer over the last hour of a Jaeger's
// traces in an application's own Echo server.
func ExampleOpenJaeger() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	v, err := viewer.OpenJaeger(ctx, "127.0.0.1:16685", viewer.WithJaegerWindow(time.Hour))
	if err != nil {
		log.Print(err) // Jaeger unreachable, an error of its store, …
		return
	}
	defer v.Close()
	e := echo.New()
	v.Register(e.Group("/stats"))
	srv := &http.Server{Addr: "127.0.0.1:8080", Handler: e}
	_ = srv // srv.ListenAndServe()
}
