package page

import (
	"bytes"
	"fmt"
	"html/template"
	"net/url"
	"strconv"

	"github.com/lonelytrace/lonelytrace/viewer/model"
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

// Trace is what a trace's page shows, the trace read.
type Trace struct {
	// Error is a bad parameter's message; NotFound is set when no file
	// holds the trace.
	Error    string
	NotFound bool
	// TraceID is the trace's id, as given when it is not one.
	TraceID string
	Trace   *model.TraceDetail
	// Carry is the window, filters, search and token the page was given,
	// carried along in its links; Back is the way back to the main
	// page's trace list, Download the trace as OTLP/JSON.
	Carry          url.Values
	Back, Download string
}

// RenderTrace renders the page of one trace.
func RenderTrace(in *Trace) ([]byte, error) {
	m := &tracePageModel{Error: in.Error, NotFound: in.NotFound, TraceID: in.TraceID, Trace: in.Trace, carry: in.Carry,
		// Both are built with url.Values.Encode and url.PathEscape by
		// the caller, so they are safe as URLs.
		Back: template.URL(in.Back), Download: template.URL(in.Download)}
	if m.carry == nil {
		m.carry = url.Values{}
	}
	if m.Trace != nil {
		m.Bars = waterfall(m.Trace)
	}
	var buf bytes.Buffer
	if err := pageTemplate.ExecuteTemplate(&buf, "trace-page", m); err != nil {
		return nil, fmt.Errorf("viewer: render trace page: %w", err)
	}
	return buf.Bytes(), nil
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
