// Package spanreturnecho is the Echo v4 adapter of span return: the
// net/http Middleware of package spanreturn, named by the Echo route.
//
// It is a package of its own so that only Echo servers import Echo:
// spanreturn, and otelsetup with it, stay free of web frameworks.
package spanreturnecho

import (
	"net/http"

	"github.com/labstack/echo/v4"
	"go.opentelemetry.io/otel/trace"

	"github.com/lonelytrace/lonelytrace/exporter/spanreturn"
)

// Middleware returns p's Middleware for Echo v4. Use it with e.Use, so that
// the route is known and names the server span ("POST /v1/notify"). A
// handler's error is handed to the Echo error handler here, as otelecho
// does, so that the error response is written while the request's spans
// are still held; the error is then returned to outer middleware as usual.
func Middleware(p *spanreturn.Processor, tp trace.TracerProvider) echo.MiddlewareFunc {
	wrap := p.Middleware(tp)
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) (err error) {
			r := c.Request()
			resp := c.Response()
			orig := resp.Writer
			h := wrap(http.HandlerFunc(func(w http.ResponseWriter, rr *http.Request) {
				// The handler sees the request as Echo gave it, with the
				// middleware's context and response writer.
				rr.Pattern = r.Pattern
				c.SetRequest(rr)
				resp.Writer = w
				defer func() { resp.Writer = orig }()
				if err = next(c); err != nil {
					c.Error(err)
				}
			}))
			// spanreturn names the server span by the request's pattern,
			// which an Echo route is in net/http's form: method, space, path.
			named := *r
			named.Pattern = r.Method
			if path := c.Path(); path != "" {
				named.Pattern += " " + path
			}
			h.ServeHTTP(orig, &named)
			return err
		}
	}
}
