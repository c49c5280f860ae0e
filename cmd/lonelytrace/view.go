package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/lonelytrace/lonelytrace/internal/jaegerquery"
	"github.com/lonelytrace/lonelytrace/viewer"
)

// envViewerToken is read when -token is not given.
const envViewerToken = "LONELYTRACE_VIEWER_TOKEN"

// minTokenLen is the shortest token the viewer accepts: a token short
// enough to guess protects nothing.
const minTokenLen = 16

var viewCommand = command{
	name:    "view",
	args:    "FILE... | -jaeger HOST:PORT",
	summary: "serve the viewer over the files, or over a window fetched from Jaeger",
	help: `It listens on 127.0.0.1 unless -addr says otherwise; any other address needs a token.
With -jaeger, it fetches the last -jaeger-window of traces from Jaeger's api_v3 gRPC
query service into a temporary file (or -jaeger-file) at start and serves that; a request
then fetches what is new when the last fetch is older than -jaeger-refresh, and a trace's
page asks Jaeger for the trace. Files may not be given too. When a budget runs out the
page and the JSON say which part of the window is whole and mark the figures approximate.`,
	flags: func(fs *flag.FlagSet) func(context.Context, []string, io.Writer) error {
		o := viewOptions{
			addr:   fs.String("addr", "127.0.0.1:8080", "address to listen on; one that is not loopback needs a token"),
			prefix: fs.String("prefix", "/stats", "path the viewer is served under"),
			token:  fs.String("token", "", "token every request must carry, as ?token= or Authorization: Bearer (default $"+envViewerToken+")"),
			jaeger: jaegerOptions{
				addr: fs.String("jaeger", "", "HOST:PORT of Jaeger's api_v3 gRPC query service (port 16685) to fetch traces from, instead of files"),
				file: fs.String("jaeger-file", "", "file to fetch into and keep (default: a temporary file, removed at the end)"),
				// The page's default window is the last 24 hours: fetching the
				// same keeps it from showing hours Jaeger was not asked for.
				window:    fs.Duration("jaeger-window", 24*time.Hour, "how far back from now to fetch (the page's default window)"),
				depth:     fs.Int("jaeger-search-depth", jaegerquery.DefaultSearchDepth, "search_depth of each query; a slice of time returning this many traces is split"),
				maxTraces: fs.Int("jaeger-max-traces", jaegerquery.DefaultMaxTraces, "the most traces to fetch"),
				maxTime:   fs.Duration("jaeger-max-time", jaegerquery.DefaultMaxDuration, "the longest the first fetch may take"),
				refresh:   fs.Duration("jaeger-refresh", viewer.DefaultJaegerRefresh, "the least time between two fetches of what is new; negative: never"),
			},
		}
		return o.serve
	},
}

// serveView runs the view command with args until ctx ends.
func serveView(ctx context.Context, args []string, stdout io.Writer) error {
	return viewCommand.run(ctx, args, stdout)
}

type viewOptions struct {
	addr, prefix, token *string
	jaeger              jaegerOptions
}

// jaegerOptions are the flags of view -jaeger.
type jaegerOptions struct {
	addr, file               *string
	window, maxTime, refresh *time.Duration
	depth, maxTraces         *int
}

// serve serves the viewer over files until ctx ends.
func (o viewOptions) serve(ctx context.Context, args []string, stdout io.Writer) error {
	if *o.jaeger.addr != "" && len(args) > 0 {
		return fmt.Errorf("view: -jaeger and trace files may not be mixed: give -jaeger HOST:PORT or files, not both")
	}
	var files []string
	var err error
	if *o.jaeger.addr == "" {
		if files, err = needFiles("view", args); err != nil {
			return err
		}
	}
	tok, err := tokenFlag("view", *o.token)
	if err != nil {
		return err
	}
	if err := checkLoopback("view", "-addr", *o.addr); err != nil && tok == "" {
		return err
	}
	var v *viewer.Viewer
	if *o.jaeger.addr != "" {
		v, err = o.jaeger.open(ctx, stdout)
	} else {
		v, err = viewer.Open(files...)
	}
	if err != nil {
		return err
	}
	defer v.Close()
	srv, p := viewServer(v, *o.prefix, tok)
	ln, err := net.Listen("tcp", *o.addr)
	if err != nil {
		return err
	}
	what := fmt.Sprintf("%d file(s)", len(files))
	if *o.jaeger.addr != "" {
		what = "Jaeger at " + *o.jaeger.addr
	}
	fmt.Fprintf(stdout, "lonelytrace: viewing %s at http://%s%s/%s\n", what, ln.Addr(), p, tokenHint(tok))
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return err
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// open opens the viewer over the Jaeger of the -jaeger flags, which
// fetches their window first, and says on stdout what it holds.
func (j jaegerOptions) open(ctx context.Context, stdout io.Writer) (*viewer.Viewer, error) {
	if *j.window <= 0 {
		return nil, fmt.Errorf("view: -jaeger-window %s: want a positive duration", *j.window)
	}
	v, err := viewer.OpenJaeger(ctx, *j.addr, viewer.WithJaegerFile(*j.file), viewer.WithJaegerWindow(*j.window),
		viewer.WithJaegerRefresh(*j.refresh), viewer.WithJaegerSearchDepth(*j.depth),
		viewer.WithJaegerMaxTraces(*j.maxTraces), viewer.WithJaegerMaxTime(*j.maxTime))
	if err != nil {
		return nil, fmt.Errorf("view: %w", err)
	}
	c := v.Coverage()
	const layout = "2006-01-02 15:04:05 MST"
	fmt.Fprintf(stdout, "lonelytrace: fetched %d traces (%d spans) from Jaeger at %s for %s to %s\n",
		c.Traces, c.Spans, *j.addr, c.Until.Add(-*j.window).Format(layout), c.Until.Format(layout))
	if c.Reason != "" {
		fmt.Fprintf(stdout, "lonelytrace: partial: %s; only %s to %s is complete\n", c.Reason, c.Since.Format(layout), c.Until.Format(layout))
	}
	if c.Dense > 0 {
		fmt.Fprintf(stdout, "lonelytrace: partial: %d slice(s) of 1 ms still held -jaeger-search-depth traces; some traces may be missing\n", c.Dense)
	}
	return v, nil
}

// tokenFlag returns the token of cmd's -token flag, else of
// $LONELYTRACE_VIEWER_TOKEN, refusing one too short to protect anything.
func tokenFlag(cmd, flagValue string) (string, error) {
	tok := flagValue
	if tok == "" {
		tok = os.Getenv(envViewerToken)
	}
	if tok != "" && len(tok) < minTokenLen {
		return "", fmt.Errorf("%s: the token is %d bytes; use at least %d (for example: openssl rand -hex 16)", cmd, len(tok), minTokenLen)
	}
	return tok, nil
}

// viewServer returns the HTTP server of v under prefix, behind tok when it
// is not empty, and the path prefix it serves (without a trailing slash).
func viewServer(v *viewer.Viewer, prefix, tok string) (*http.Server, string) {
	p := "/" + strings.Trim(prefix, "/")
	if p == "/" {
		p = ""
	}
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	var mw []echo.MiddlewareFunc
	if tok != "" {
		mw = append(mw, viewer.RequireToken(tok))
	}
	v.Register(e.Group(p, mw...))
	return &http.Server{
		Handler:           e,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      viewer.DefaultRequestTimeout + 10*time.Second,
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    64 << 10,
	}, p
}

// tokenHint is what the printed address ends with when a token guards it.
func tokenHint(tok string) string {
	if tok == "" {
		return ""
	}
	return "?" + viewer.TokenParam + "=<token>"
}

// checkLoopback refuses addresses other machines can reach unless a token
// guards them: the viewer shows every topic and attribute, and a receiver
// would take spans from anyone. cmd and flag name the command and its flag.
func checkLoopback(cmd, flag, addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%s: bad %s %q: %w", cmd, flag, addr, err)
	}
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	return fmt.Errorf("%s: %s %q is not a loopback address: give a token (-token or $%s) that every request must carry, or listen on 127.0.0.1", cmd, flag, addr, envViewerToken)
}
