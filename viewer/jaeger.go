package viewer

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/lonelytrace/lonelytrace/internal/jaegerquery"
	"github.com/lonelytrace/lonelytrace/viewer/model"
)

// Defaults of a viewer over Jaeger (OpenJaeger).
const (
	// DefaultJaegerWindow is how far back from now the viewer keeps
	// Jaeger's traces: 24 h, the page's default window, so that the
	// default page shows no hour Jaeger was not asked for.
	DefaultJaegerWindow = 24 * time.Hour
	// DefaultJaegerRefresh is the least time between two fetches of
	// what is new: 5 s. A request finding the last fetch older asks
	// Jaeger first; a burst of requests asks once.
	DefaultJaegerRefresh = 5 * time.Second
	// DefaultJaegerRefreshTime is the time budget of one refresh: 10 s,
	// as someone waits for the page meanwhile; what it leaves out is
	// marked as the first fetch's would be.
	DefaultJaegerRefreshTime = 10 * time.Second
)

// refreshOverlap is how far before the end of the last fetch a refresh
// starts: an SDK batches spans for 5 s and a collector queues them, so a
// span may reach Jaeger well after it started. What is asked again is
// not stored twice.
const refreshOverlap = 30 * time.Second

// JaegerOption configures OpenJaeger.
type JaegerOption interface {
	applyJaeger(jaegerConfig) jaegerConfig
}

type jaegerConfig struct {
	file        string
	window      time.Duration
	refresh     time.Duration
	searchDepth int
	maxTraces   int
	maxTime     time.Duration
}

type jaegerOptionFunc func(jaegerConfig) jaegerConfig

func (f jaegerOptionFunc) applyJaeger(c jaegerConfig) jaegerConfig { return f(c) }

// WithJaegerFile names the file the traces are fetched into and kept
// (spans older than the window are deleted from it); by default it is a
// temporary file that Close removes.
func WithJaegerFile(path string) JaegerOption {
	return jaegerOptionFunc(func(c jaegerConfig) jaegerConfig { c.file = path; return c })
}

// WithJaegerWindow sets how far back from now traces are kept
// (DefaultJaegerWindow). Values of 0 or less are ignored.
func WithJaegerWindow(d time.Duration) JaegerOption {
	return jaegerOptionFunc(func(c jaegerConfig) jaegerConfig {
		if d > 0 {
			c.window = d
		}
		return c
	})
}

// WithJaegerRefresh sets the least time between two fetches of what is
// new (DefaultJaegerRefresh); a negative value never fetches again.
func WithJaegerRefresh(d time.Duration) JaegerOption {
	return jaegerOptionFunc(func(c jaegerConfig) jaegerConfig { c.refresh = d; return c })
}

// WithJaegerSearchDepth sets the search_depth of each query
// (jaeger's default: 1,000); a slice of time returning that many traces
// is split. Values of 0 or less are ignored.
func WithJaegerSearchDepth(n int) JaegerOption {
	return jaegerOptionFunc(func(c jaegerConfig) jaegerConfig { c.searchDepth = n; return c })
}

// WithJaegerMaxTraces sets the trace budget of the first fetch (100,000
// by default). Values of 0 or less are ignored.
func WithJaegerMaxTraces(n int) JaegerOption {
	return jaegerOptionFunc(func(c jaegerConfig) jaegerConfig { c.maxTraces = n; return c })
}

// WithJaegerMaxTime sets the time budget of the first fetch (60 s by
// default). Values of 0 or less are ignored.
func WithJaegerMaxTime(d time.Duration) JaegerOption {
	return jaegerOptionFunc(func(c jaegerConfig) jaegerConfig { c.maxTime = d; return c })
}

// jaegerSource is what a viewer over Jaeger fetches with, and what it
// knows of the fetches.
type jaegerSource struct {
	m       *jaegerquery.Mirror
	window  time.Duration
	refresh time.Duration
	// dir is the temporary directory of the file, removed at Close.
	dir string

	mu sync.Mutex // guards the fields below and orders the refreshes
	// cov is the coverage of the fetches so far (Complete unset).
	cov model.Coverage
	// fetched is when the last fetch, good or not, ended.
	fetched time.Time
	err     error
}

// OpenJaeger returns a Viewer over the traces of the Jaeger whose api_v3
// gRPC query service is at addr (HOST:PORT, port 16685 by default). It
// fetches the last DefaultJaegerWindow (WithJaegerWindow) into a file
// before it returns; from then on, a request that finds the last fetch
// older than DefaultJaegerRefresh first fetches what is new (and the
// file drops what left the window), and a trace's page and JSON ask
// Jaeger for the trace itself, so that it is whole. When a budget ran
// out, the answers say which part of their window is whole (Coverage)
// and mark their figures approximate; an error of Jaeger in a refresh is
// a 502 from the API and a line on the page. An error of the first
// fetch is returned, and nothing stays open.
func OpenJaeger(ctx context.Context, addr string, opts ...JaegerOption) (_ *Viewer, err error) {
	cfg := jaegerConfig{window: DefaultJaegerWindow, refresh: DefaultJaegerRefresh}
	for _, o := range opts {
		cfg = o.applyJaeger(cfg)
	}
	var fopts []jaegerquery.Option
	if cfg.searchDepth > 0 {
		fopts = append(fopts, jaegerquery.WithSearchDepth(cfg.searchDepth))
	}
	src := &jaegerSource{window: cfg.window, refresh: cfg.refresh}
	path := cfg.file
	if path == "" {
		if src.dir, err = os.MkdirTemp("", "lonelytrace-jaeger-"); err != nil {
			return nil, fmt.Errorf("viewer: %w", err)
		}
		path = filepath.Join(src.dir, "jaeger.db")
	}
	// The errors of the mirror and the fetch name Jaeger's address or
	// the file already.
	if src.m, err = jaegerquery.OpenMirror(ctx, addr, path, cfg.window, fopts...); err != nil {
		src.close()
		return nil, err
	}
	first := fopts[:len(fopts):len(fopts)]
	if cfg.maxTraces > 0 {
		first = append(first, jaegerquery.WithMaxTraces(cfg.maxTraces))
	}
	if cfg.maxTime > 0 {
		first = append(first, jaegerquery.WithMaxDuration(cfg.maxTime))
	}
	until := time.Now()
	src.cov = model.Coverage{Jaeger: addr, Since: until.Add(-cfg.window), Until: until}
	res, err := src.m.Fetch(ctx, src.cov.Since, until, first...)
	if err != nil {
		src.close()
		return nil, err
	}
	src.apply(res, until)
	src.fetched = time.Now()
	v, err := Open(path)
	if err != nil {
		src.close()
		return nil, err
	}
	v.jaeger = src
	return v, nil
}

// Coverage returns what the fetches from Jaeger hold, or nil for a
// viewer over files.
func (v *Viewer) Coverage() *model.Coverage {
	if v.jaeger == nil {
		return nil
	}
	v.jaeger.mu.Lock()
	defer v.jaeger.mu.Unlock()
	c := v.jaeger.cov
	c.Complete = c.Reason == "" && c.Dense == 0
	return &c
}

// apply takes the result of a fetch that ended at until into the
// coverage: a fetch cut short leaves a gap before its CoveredSince, so
// what is whole then starts there.
func (s *jaegerSource) apply(res jaegerquery.Result, until time.Time) {
	if res.Reason != "" {
		s.cov.Since, s.cov.Reason = res.CoveredSince, res.Reason
	}
	s.cov.Dense += res.Dense
	s.cov.Until = until
	s.cov.Traces += res.Traces
	s.cov.Spans += res.Spans
	// A gap that left the window is no longer a gap in what is kept.
	if start := until.Add(-s.window); !s.cov.Since.After(start) {
		s.cov.Since, s.cov.Reason = start, ""
	}
}

// update fetches what is new since the last fetch, unless that was
// less than s.refresh ago, and returns the last fetch's error.
func (s *jaegerSource) update(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.refresh < 0 || time.Since(s.fetched) < s.refresh {
		return s.err
	}
	until := time.Now()
	since := s.cov.Until.Add(-refreshOverlap)
	if start := until.Add(-s.window); since.Before(start) {
		since = start
	}
	// The refresh outlives a request that gives up: it is bounded by its
	// own budget, and the next request wants it done.
	res, err := s.m.Fetch(context.WithoutCancel(ctx), since, until, jaegerquery.WithMaxDuration(DefaultJaegerRefreshTime))
	s.fetched = time.Now()
	s.err = err
	if err == nil {
		s.apply(res, until)
	}
	return err
}

// coverage returns the coverage for the window [since, until); a zero
// since is the beginning.
func (s *jaegerSource) coverage(since time.Time) *model.Coverage {
	if s == nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.cov
	c.Complete = c.Dense == 0 && !since.IsZero() && !since.Before(c.Since)
	if s.err != nil {
		c.Error = s.err.Error()
	}
	return &c
}

// partial reports whether figures over [since, …) are not whole.
func (s *jaegerSource) partial(since time.Time) bool {
	c := s.coverage(since)
	return c != nil && !c.Complete
}

// note is the line the page shows about Jaeger for a window starting at
// since: the refresh's error, or what part of the window is whole; ""
// when there is nothing to say.
func (s *jaegerSource) note(since time.Time) string {
	c := s.coverage(since)
	if c == nil {
		return ""
	}
	const layout = "2006-01-02 15:04:05 MST"
	if c.Error != "" {
		return fmt.Sprintf("Jaeger at %s could not be asked for what is new (figures are from %s): %s", c.Jaeger, c.Until.Format(layout), c.Error)
	}
	if c.Complete {
		return ""
	}
	msg := fmt.Sprintf("Partial: only %s to %s was fetched whole from Jaeger at %s", c.Since.Format(layout), c.Until.Format(layout), c.Jaeger)
	if c.Reason != "" {
		msg += " (" + c.Reason + ")"
	}
	if c.Dense > 0 {
		msg += fmt.Sprintf("; %d slice(s) of 1 ms held search_depth traces, some may be missing", c.Dense)
	}
	return msg + "; every figure of this window is approximate."
}

// failed reports whether the last refresh failed.
func (s *jaegerSource) failed() bool {
	if s == nil {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err != nil
}

// refreshing is the middleware of a viewer over Jaeger: it brings the
// file up to date before the request reads it, and answers an API
// request 502 with Jaeger's error when that fails (a page shows it and
// is served 502 by its handler).
func (s *jaegerSource) refreshing(api bool) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			if err := s.update(c.Request().Context()); err != nil && api {
				return echo.NewHTTPError(http.StatusBadGateway, err.Error())
			}
			return next(c)
		}
	}
}

// fetchingTrace is the middleware of a trace's routes over Jaeger: it
// asks Jaeger for the trace itself and stores it, so that the trace is
// shown whole, not only the spans the window's fetches found. A trace
// Jaeger does not hold is left to the file (it may have left Jaeger's
// store); another error of Jaeger is a 502 naming it.
func (s *jaegerSource) fetchingTrace(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		id, err := parseTraceID(c.Param("trace_id"))
		if err != nil {
			return next(c) // the handler says what is wrong with it
		}
		if _, err := s.m.Trace(c.Request().Context(), id.String()); err != nil && !errors.Is(err, jaegerquery.ErrNotFound) {
			return echo.NewHTTPError(http.StatusBadGateway, err.Error())
		}
		return next(c)
	}
}

// close closes the file's writer and removes a temporary file.
func (s *jaegerSource) close() error {
	if s == nil {
		return nil
	}
	var err error
	if s.m != nil {
		err = s.m.Close(context.Background())
	}
	if s.dir != "" {
		if e := os.RemoveAll(s.dir); e != nil && err == nil {
			err = fmt.Errorf("viewer: remove %s: %w", s.dir, e)
		}
	}
	return err
}
