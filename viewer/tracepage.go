package viewer

import (
	"context"
	"errors"
	"net/http"
	"net/url"

	"github.com/labstack/echo/v4"
	"go.opentelemetry.io/otel/trace"

	"github.com/lonelytrace/lonelytrace/viewer/internal/page"
)

// The page of one trace, at trace/:trace_id beside the main page: the
// trace read here, rendered by the page package.

// renderTracePage renders the page of trace id (as given in the path)
// for r. A bad parameter (perr, the error of parsing r, or the id) is
// rendered with its message and returned as a *ParseError; found is false
// when no file holds the trace.
func (v *Viewer) renderTracePage(ctx context.Context, rawID string, r tracePageRequest, perr error) (out []byte, found bool, err error) {
	in := &page.Trace{TraceID: rawID}
	q, srch, token := r.q, r.srch, r.token
	var id trace.TraceID
	if perr == nil {
		id, perr = parseTraceID(rawID)
	}
	back := url.Values{}
	if token != "" {
		back.Set(TokenParam, token)
	}
	if perr == nil {
		in.Carry = page.Merged(q.values(), srch.values(), back)
		back = in.Carry
		in.TraceID = id.String()
		if in.Trace, err = v.traceDetail(ctx, id, q.Location); err != nil {
			return nil, false, err
		}
		in.NotFound = in.Trace == nil
		dl := url.Values{"format": {"otlp"}}
		if token != "" {
			dl.Set(TokenParam, token)
		}
		in.Download = "../api/traces/" + url.PathEscape(in.TraceID) + "?" + dl.Encode()
	}
	in.Back = "../?" + back.Encode() + "#traces"
	var pe *ParseError
	if perr != nil {
		if !errors.As(perr, &pe) {
			return nil, false, perr
		}
		in.Error = pe.Error()
	}
	b, err := page.RenderTrace(in)
	if err != nil {
		return nil, false, err
	}
	if pe != nil {
		return b, false, pe
	}
	return b, !in.NotFound, nil
}

func (v *Viewer) serveTracePage(c echo.Context) error {
	r, perr := parseTracePage(c.QueryParams(), v.now(), v.loc)
	b, found, err := v.renderTracePage(c.Request().Context(), c.Param("trace_id"), r, perr)
	var pe *ParseError
	switch {
	case errors.As(err, &pe):
		return c.HTMLBlob(http.StatusBadRequest, b)
	case err != nil:
		return err
	case !found:
		return c.HTMLBlob(http.StatusNotFound, b)
	}
	return c.HTMLBlob(http.StatusOK, b)
}
