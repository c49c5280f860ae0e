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
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/lonelytrace/lonelytrace/viewer"
)

func runView(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("view", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:8080", "address to listen on; loopback only")
	prefix := fs.String("prefix", "/stats", "path the viewer is served under")
	if err := fs.Parse(args); err != nil {
		return err
	}
	files, err := needFiles(fs)
	if err != nil {
		return err
	}
	if err := checkLoopback(*addr); err != nil {
		return err
	}
	p := "/" + strings.Trim(*prefix, "/")
	if p == "/" {
		p = ""
	}
	v, err := viewer.Open(files...)
	if err != nil {
		return err
	}
	defer v.Close()
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	v.Register(e.Group(p))
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           e,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      viewer.DefaultRequestTimeout + 10*time.Second,
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    64 << 10,
	}
	fmt.Fprintf(stdout, "lonelytrace: viewing %d file(s) at http://%s%s/\n", len(files), ln.Addr(), p)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
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

// checkLoopback refuses addresses other machines can reach: the viewer
// shows every topic and attribute and has no access control of its own.
func checkLoopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("view: bad -addr %q: %w", addr, err)
	}
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	return fmt.Errorf("view: -addr %q is not a loopback address; the viewer has no access control, so it listens on 127.0.0.1 or ::1 only", addr)
}
