// Command pubsub is lonelytrace's demo: a small but real pub/sub system on
// 127.0.0.1, traced with lonelytrace, then shown in the viewer.
//
//	go run ./examples/pubsub [-duration 20s] [-rate 20] [-subscribers 4] [-out ./lonelytrace-demo]
//
// It starts broadcaster processes and subscriber processes (it re-executes
// itself in each role): stateless subscribers that take messages on an
// HTTP endpoint, one stateful subscriber that holds a websocket to each
// broadcaster, and one flaky subscriber whose deliveries often fail, so
// that broadcasters retry and send missed messages to its recovery URL.
// Every subscriber notifies, receives, and changes its subscriptions in a
// cycle of subscribe exact, subscribe glob, unsubscribe exact, unsubscribe
// glob and set subscriptions. Each process sets up OpenTelemetry with
// otelsetup.Start under its own service name and its own trace file;
// broadcasters keep no file of their own by default: their spans ride
// home in their answers (package exporter/spanreturn, switched on with
// otelsetup.WithSpanReturnServer and WithSpanReturnClient) and are stored by
// the subscriber that asked, so each subscriber's file holds whole traces.
// With -broadcaster-files a broadcaster also keeps the spans that cannot
// ride home, those it ends after answering (send missed).
//
// When the run ends it lists the files and serves the viewer over all of
// them at http://127.0.0.1:8080/stats/ until Ctrl-C. The standard
// OpenTelemetry variables apply to every process, so
//
//	OTEL_TRACES_EXPORTER=otlp OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4318 go run ./examples/pubsub
//
// sends the same spans to a collector instead (see examples/collector).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	if role := os.Getenv(envRole); role != "" {
		os.Exit(childMain(role, os.Args[1:]))
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	switch {
	case errors.Is(err, flag.ErrHelp):
	case err != nil:
		fmt.Fprintln(os.Stderr, "pubsub:", err)
		os.Exit(1)
	}
}
