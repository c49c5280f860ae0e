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

	"github.com/lonelytrace/lonelytrace/viewer"
)

// envViewerToken is read when -token is not given.
const envViewerToken = "LONELYTRACE_VIEWER_TOKEN"

// minTokenLen is the shortest token the viewer accepts: a token short
// enough to guess protects nothing.
const minTokenLen = 16

var viewCommand = command{
	name:    "view",
	args:    "FILE...",
	summary: "serve the viewer over the files",
	help:    "It listens on 127.0.0.1 unless -addr says otherwise; any other address needs a token.",
	flags: func(fs *flag.FlagSet) func(context.Context, []string, io.Writer) error {
		o := viewOptions{
			addr:   fs.String("addr", "127.0.0.1:8080", "address to listen on; one that is not loopback needs a token"),
			prefix: fs.String("prefix", "/stats", "path the viewer is served under"),
			token:  fs.String("token", "", "token every request must carry, as ?token= or Authorization: Bearer (default $"+envViewerToken+")"),
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
}

// serve serves the viewer over files until ctx ends.
func (o viewOptions) serve(ctx context.Context, args []string, stdout io.Writer) error {
	files, err := needFiles("view", args)
	if err != nil {
		return err
	}
	tok, err := tokenFlag("view", *o.token)
	if err != nil {
		return err
	}
	if err := checkLoopback("view", "-addr", *o.addr); err != nil && tok == "" {
		return err
	}
	v, err := viewer.Open(files...)
	if err != nil {
		return err
	}
	defer v.Close()
	srv, p := viewServer(v, *o.prefix, tok)
	ln, err := net.Listen("tcp", *o.addr)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "lonelytrace: viewing %d file(s) at http://%s%s/%s\n", len(files), ln.Addr(), p, tokenHint(tok))
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
