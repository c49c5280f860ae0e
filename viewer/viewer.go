package viewer

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
	"go.opentelemetry.io/otel/trace"

	"github.com/lonelytrace/lonelytrace/internal/otlp"

	"github.com/lonelytrace/lonelytrace/viewer/internal/opstore"
	"github.com/lonelytrace/lonelytrace/viewer/internal/page"
	"github.com/lonelytrace/lonelytrace/viewer/internal/quantiles"
	tsearch "github.com/lonelytrace/lonelytrace/viewer/internal/search"
	"github.com/lonelytrace/lonelytrace/viewer/model"
)

// MaxFiles is the most trace files one Viewer reads.
const MaxFiles = 64

// DefaultRequestTimeout bounds the queries of one request.
const DefaultRequestTimeout = 30 * time.Second

// Viewer serves the aggregates of one or more trace files. It only reads
// them: it never writes, so it can sit beside live writers, whose
// uncommitted transactions it does not see and does not wait for.
type Viewer struct {
	// store holds the files (viewer/internal/opstore); files are its
	// files, in order.
	store *opstore.Store
	files []*opstore.File
	// now and loc are the present and the default zone; tests replace now.
	now    func() time.Time
	loc    *time.Location
	sample int
	// exact is the most operations a window may hold for exact
	// percentiles: exactLimit, but for tests.
	exact int64
	// sieve is when a search sieves its row terms: the default rule,
	// but for tests.
	sieve tsearch.Rule
	// pool bounds the requests computed at once (pool.go).
	pool *pool
	// jaeger is set on a viewer over Jaeger (OpenJaeger, jaeger.go).
	jaeger *jaegerSource
}

// Open opens the trace files at paths read-only. A missing file, one that
// is not a lonelytrace file, or one of another schema version is an error
// naming it, and nothing stays open.
func Open(paths ...string) (*Viewer, error) {
	if len(paths) == 0 {
		return nil, errors.New("viewer: no trace files given")
	}
	if len(paths) > MaxFiles {
		return nil, fmt.Errorf("viewer: %d trace files given, at most %d are read", len(paths), MaxFiles)
	}
	store, err := opstore.Open(context.Background(), paths...)
	if err != nil {
		return nil, fmt.Errorf("viewer: %w", err)
	}
	return &Viewer{store: store, files: store.Files(), now: time.Now, loc: time.Local, sample: DefaultSample, exact: quantiles.ExactLimit,
		sieve: tsearch.Rule{Sample: tsearch.DefaultSieveSample, Share: tsearch.DefaultSieveShare},
		pool:  newPool(DefaultHeavyRequests, DefaultHeavyQueue, DefaultHeavyWait)}, nil
}

// Close closes the files. It is safe to call more than once.
func (v *Viewer) Close() error {
	var err error
	if e := v.store.Close(); e != nil {
		err = fmt.Errorf("viewer: %w", e)
	}
	if e := v.jaeger.close(); e != nil && err == nil {
		err = e
	}
	return err
}

// Register mounts the viewer on g: the page at "/" and "/index.html", a
// trace's page at "/trace/:trace_id", and the JSON API at "/api/summary",
// "/api/series", "/api/breakdown", "/api/map", "/api/traces" and
// "/api/traces/:trace_id" (with ?format=otlp, the trace as an OTLP/JSON
// download). A request to the group's bare prefix is
// redirected to the prefix with a slash, so that the page's relative links
// work.
//
// Every route that reads the files runs in the viewer's bounded pool:
// DefaultHeavyRequests computed at once, an identical request in flight
// answered from that computation, and a request that finds no slot within
// DefaultHeavyWait (or DefaultHeavyQueue already waiting) answered 503 with
// Retry-After.
func (v *Viewer) Register(g *echo.Group) {
	// page and api are the middleware of the routes that read the files;
	// over Jaeger they fetch what is new first (jaeger.go), and a
	// trace's routes ask Jaeger for the trace.
	page := []echo.MiddlewareFunc{secure, v.pool.pooled}
	api, tr, trPage := page, page, page
	if v.jaeger != nil {
		page = []echo.MiddlewareFunc{secure, v.jaeger.refreshing(false), v.pool.pooled}
		api = []echo.MiddlewareFunc{secure, v.jaeger.refreshing(true), v.pool.pooled}
		tr = []echo.MiddlewareFunc{secure, v.jaeger.refreshing(true), v.jaeger.fetchingTrace, v.pool.pooled}
		trPage = []echo.MiddlewareFunc{secure, v.jaeger.refreshing(false), v.jaeger.fetchingTrace, v.pool.pooled}
	}
	r := g.GET("/", v.servePage, page...)
	g.GET("/index.html", v.servePage, page...)
	if r.Path != "/" {
		g.GET("", func(c echo.Context) error {
			u := *c.Request().URL
			u.Path += "/"
			return c.Redirect(http.StatusFound, u.RequestURI())
		}, secure)
	}
	g.GET("/api/summary", v.serveSummary, api...)
	g.GET("/api/series", v.serveSeries, api...)
	g.GET("/api/breakdown", v.serveBreakdown, api...)
	g.GET("/api/map", v.serveMap, api...)
	g.GET("/api/traces", v.serveTraces, api...)
	g.GET("/api/traces/:trace_id", v.serveTrace, tr...)
	g.GET("/trace/:trace_id", v.serveTracePage, trPage...)
}

// contentSecurityPolicy allows nothing from anywhere: the page is one
// file of inline CSS and SVG that needs no script, font or image.
const contentSecurityPolicy = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"

// secure sets the security headers and bounds the request's time.
func secure(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		h := c.Response().Header()
		h.Set("Content-Security-Policy", contentSecurityPolicy)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Cache-Control", "no-store")
		ctx, cancel := context.WithTimeout(c.Request().Context(), DefaultRequestTimeout)
		defer cancel()
		c.SetRequest(c.Request().WithContext(ctx))
		return next(c)
	}
}

func (v *Viewer) serveSummary(c echo.Context) error {
	q, err := parseQuery(c.QueryParams(), v.now(), v.loc)
	if err != nil {
		return answer(c, nil, err)
	}
	s, err := v.summarize(c.Request().Context(), q, newFilter(q))
	return answer(c, s, err)
}

func (v *Viewer) serveSeries(c echo.Context) error {
	q, err := parseSeries(c.QueryParams(), v.now(), v.loc)
	if err != nil {
		return answer(c, nil, err)
	}
	s, err := v.Series(c.Request().Context(), q)
	return answer(c, s, err)
}

func (v *Viewer) serveBreakdown(c echo.Context) error {
	q, err := parseBreakdown(c.QueryParams(), v.now(), v.loc)
	if err != nil {
		return answer(c, nil, err)
	}
	b, err := v.Breakdown(c.Request().Context(), q)
	return answer(c, b, err)
}

func (v *Viewer) serveMap(c echo.Context) error {
	q, err := parseQuery(c.QueryParams(), v.now(), v.loc)
	if err != nil {
		return answer(c, nil, err)
	}
	m, err := v.PubSubMap(c.Request().Context(), q)
	return answer(c, m, err)
}

func (v *Viewer) serveTraces(c echo.Context) error {
	r, err := parseTraces(c.QueryParams(), v.now(), v.loc)
	if err != nil {
		return answer(c, nil, err)
	}
	l, err := v.listTraces(c.Request().Context(), newFilter(r.q), &r.srch, r.q.Location, r.offset, r.limit, r.totals)
	return answer(c, l, err)
}

func (v *Viewer) serveTrace(c echo.Context) error {
	id, err := parseTraceID(c.Param("trace_id"))
	if err != nil {
		return echo.NewHTTPError(http.StatusBadRequest, err.Error())
	}
	asOTLP, err := traceFormat(c.QueryParams())
	if err != nil {
		return answer(c, nil, err)
	}
	if asOTLP {
		return v.serveTraceOTLP(c, id)
	}
	loc, err := parseTZ(c.QueryParam("tz"), v.loc)
	if err != nil {
		return answer(c, nil, err)
	}
	d, err := v.traceDetail(c.Request().Context(), id, loc)
	if err != nil {
		return err
	}
	if d == nil {
		return echo.NewHTTPError(http.StatusNotFound, fmt.Sprintf("trace %s is in none of the files", id))
	}
	return writeJSON(c, d)
}

// serveTraceOTLP answers trace id as one OTLP/JSON
// ExportTraceServiceRequest, a file to download that Jaeger's and the
// Aspire dashboard's upload read.
func (v *Viewer) serveTraceOTLP(c echo.Context, id trace.TraceID) error {
	spans, _, err := v.traceSpans(c.Request().Context(), id)
	if err != nil {
		return err
	}
	if len(spans) == 0 {
		return echo.NewHTTPError(http.StatusNotFound, fmt.Sprintf("trace %s is in none of the files", id))
	}
	b, err := otlp.TraceJSON(spans)
	if err != nil {
		return fmt.Errorf("viewer: trace %s as OTLP: %w", id, err)
	}
	c.Response().Header().Set(echo.HeaderContentDisposition, fmt.Sprintf(`attachment; filename="trace-%s.json"`, id))
	return c.Blob(http.StatusOK, echo.MIMEApplicationJSON, b)
}

// answer writes v as JSON, or err: a *ParseError as a 400 with its
// message.
func answer(c echo.Context, v any, err error) error {
	var pe *ParseError
	if errors.As(err, &pe) {
		return echo.NewHTTPError(http.StatusBadRequest, pe.Error())
	}
	if err != nil {
		return err
	}
	return writeJSON(c, v)
}

// writeJSON renders into a buffer first, so that an error is still a
// clean 500 and not half a document.
func writeJSON(c echo.Context, v any) error {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", " ")
	if err := enc.Encode(v); err != nil {
		return err
	}
	return c.Blob(http.StatusOK, echo.MIMEApplicationJSON, buf.Bytes())
}

// Summary computes the aggregates of q's window and filters (the answer
// of /api/summary). A bad query is a *ParseError.
func (v *Viewer) Summary(ctx context.Context, q Query) (*model.Summary, error) {
	if err := q.check(v.loc); err != nil {
		return nil, err
	}
	return v.summarize(ctx, q, newFilter(q))
}

// WritePage writes the page of q to w: the same self-contained document
// that "/" serves (or, with q.Trace, that of the trace's page), so that
// it can be saved as a snapshot. A bad query is a *ParseError.
func (v *Viewer) WritePage(ctx context.Context, w io.Writer, q PageQuery) error {
	if err := q.check(v.loc); err != nil {
		return err
	}
	if err := checkStep(q.Step, q.Step.String()); err != nil {
		return err
	}
	if q.Trace != "" {
		b, found, err := v.renderTracePage(ctx, q.Trace, tracePageRequest{q: q.Query, srch: noSearch()}, nil)
		if err == nil && !found {
			err = fmt.Errorf("viewer: trace %s is in none of the files", q.Trace)
		}
		if err != nil {
			return err
		}
		_, err = w.Write(b)
		return err
	}
	b, err := v.renderPage(ctx, pageRequest{q: q.Query, text: q.text(), srch: noSearch(), step: q.Step, queried: true}, nil)
	if err != nil {
		return err
	}
	_, err = w.Write(b)
	return err
}

func (v *Viewer) servePage(c echo.Context) error {
	if vs := c.QueryParams()["trace"]; len(vs) > 0 {
		// The page used to show a trace below the list (?trace=ID); a
		// trace has its own page now, and old links lead there.
		id, err := parseTraceID(vs[0])
		if err != nil {
			return echo.NewHTTPError(http.StatusBadRequest, err.Error())
		}
		rest := page.Merged(c.QueryParams())
		rest.Del("trace")
		return c.Redirect(http.StatusFound, "trace/"+id.String()+"?"+rest.Encode())
	}
	r, perr := parsePage(c.QueryParams(), v.now(), v.loc)
	b, err := v.renderPage(c.Request().Context(), r, perr)
	var pe *ParseError
	if errors.As(err, &pe) {
		// The page with the form and the message, so that the user can
		// correct the value where it was typed.
		return c.HTMLBlob(http.StatusBadRequest, b)
	}
	if err != nil {
		return err
	}
	if v.jaeger.failed() {
		// The page shows Jaeger's error above the figures of the last
		// fetch; the status says it is not a fresh answer.
		return c.HTMLBlob(http.StatusBadGateway, b)
	}
	return c.HTMLBlob(http.StatusOK, b)
}
