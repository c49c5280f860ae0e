package main

import (
	"context"
	"errors"
	"io"
	"net"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lonelytrace/lonelytrace/internal/jaegerquery"
)

func TestView_Jaeger(t *testing.T) {
	t.Run("MixedWithFiles", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "t.db")
		err := serveView(context.Background(), []string{"-addr", "127.0.0.1:0", "-jaeger", "127.0.0.1:16685", path}, io.Discard)
		if err == nil || !strings.Contains(err.Error(), "may not be mixed") {
			t.Errorf("err = %v; want -jaeger and files refused together", err)
		}
	})
	t.Run("Unreachable", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		keep := filepath.Join(t.TempDir(), "jaeger.db")
		err = serveView(context.Background(), []string{"-addr", "127.0.0.1:0", "-jaeger", addr, "-jaeger-file", keep}, io.Discard)
		if !errors.Is(err, jaegerquery.ErrUnavailable) || !strings.HasPrefix(err.Error(), "view: jaeger query at "+addr) {
			t.Errorf("err = %v; want one line saying Jaeger at %s is unreachable", err, addr)
		}
	})
	t.Run("BadWindow", func(t *testing.T) {
		err := serveView(context.Background(), []string{"-addr", "127.0.0.1:0", "-jaeger", "127.0.0.1:16685", "-jaeger-window", "-1h"}, io.Discard)
		if err == nil || !strings.Contains(err.Error(), "-jaeger-window") {
			t.Errorf("err = %v; want the bad window named", err)
		}
	})
}
