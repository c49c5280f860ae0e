package viewer

import (
	"github.com/lonelytrace/lonelytrace/viewer/model"

	"bytes"
	"context"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"strconv"

	"github.com/labstack/echo/v4"
	"go.opentelemetry.io/otel/trace"
)

// The page of one trace, at trace/:trace_id beside the main page: the
// waterfall with its events, the pub/sub facts of its operations, its
// links to other traces and the links from them, and the OTLP download.

// tracePageModel is everything the trace page shows.
type tracePageModel struct {
	// Error is a bad parameter's message; NotFound is set when no file
	// holds the trace.
	Error    string
	NotFound bool
	TraceID  string
	Trace    *model.TraceDetail
	Bars     []waterfallBar
	// carry is the window, filters, search and token the page was given,
	// carried along in its links.
	carry url.Values
	// Back is the way back to the main page's trace list; Download the
	// trace as OTLP/JSON.
	Back, Download template.URL
}

// TraceLink links another trace's page (the page is at trace/ID, so a
// sibling is ID), carrying the parameters along.
func (m *tracePageModel) TraceLink(id string) template.URL {
	return template.URL(url.PathEscape(id) + "?" + m.carry.Encode())
}

// SpanLink links a span of another trace's page.
func (m *tracePageModel) SpanLink(traceID, spanID string) template.URL {
	return m.TraceLink(traceID) + template.URL("#span-"+url.PathEscape(spanID))
}

// renderTracePage renders the page of trace id (as given in the path)
// with params. A bad parameter is rendered with its message and returned
// as a *ParseError; found is false when no file holds the trace.
func (v *Viewer) renderTracePage(ctx context.Context, rawID string, params url.Values) (page []byte, found bool, err error) {
	m := &tracePageModel{TraceID: rawID, carry: url.Values{}}
	token := params.Get(TokenParam)
	q, perr := ParseQuery(params, v.now(), v.loc)
	var srch search
	if perr == nil {
		srch, perr = parseSearch(params)
	}
	var id trace.TraceID
	if perr == nil {
		id, perr = parseTraceID(rawID)
	}
	back := url.Values{}
	if token != "" {
		back.Set(TokenParam, token)
	}
	if perr == nil {
		m.carry = merged(q.values(), srch.values(), back)
		back = m.carry
		m.TraceID = id.String()
		if m.Trace, err = v.traceDetail(ctx, id, q.Location); err != nil {
			return nil, false, err
		}
		m.NotFound = m.Trace == nil
		if m.Trace != nil {
			m.Bars = waterfall(m.Trace)
		}
		dl := url.Values{"format": {"otlp"}}
		if token != "" {
			dl.Set(TokenParam, token)
		}
		m.Download = template.URL("../api/traces/" + url.PathEscape(m.TraceID) + "?" + dl.Encode())
	}
	m.Back = template.URL("../?" + back.Encode() + "#traces")
	var pe *ParseError
	if perr != nil {
		if !errors.As(perr, &pe) {
			return nil, false, perr
		}
		m.Error = pe.Error()
	}
	var buf bytes.Buffer
	if err := pageTemplate.ExecuteTemplate(&buf, "trace-page", m); err != nil {
		return nil, false, fmt.Errorf("viewer: render trace page: %w", err)
	}
	if pe != nil {
		return buf.Bytes(), false, pe
	}
	return buf.Bytes(), !m.NotFound, nil
}

func (v *Viewer) serveTracePage(c echo.Context) error {
	b, found, err := v.renderTracePage(c.Request().Context(), c.Param("trace_id"), c.QueryParams())
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

// exceptionView is an exception event as the waterfall shows it inline.
type exceptionView struct {
	Type, Message string
	OffsetMs      float64
}

// exceptions returns the exception events of s (OpenTelemetry's
// exception semantic conventions: an event named "exception" with
// exception.type and exception.message).
func exceptions(s model.SpanView) []exceptionView {
	var out []exceptionView
	for _, e := range s.Events {
		if e.Name != "exception" {
			continue
		}
		x := exceptionView{OffsetMs: e.OffsetMs}
		for _, kv := range e.Attributes {
			val := kv.Value
			if u, err := strconv.Unquote(val); err == nil && kv.Type == "STRING" {
				val = u
			}
			switch kv.Key {
			case "exception.type":
				x.Type = val
			case "exception.message":
				x.Message = val
			}
		}
		out = append(out, x)
	}
	return out
}
