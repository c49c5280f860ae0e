package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/lonelytrace/lonelytrace/exporter"
	"github.com/lonelytrace/lonelytrace/internal/otlp"
)

func runImport(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("import", flag.ContinueOnError)
	db := fs.String("db", "traces.db", "the trace file to import into (created if missing)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	inputs := fs.Args()
	if len(inputs) == 0 {
		return fmt.Errorf("import: no input files given (see lonelytrace help)")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	return importFiles(ctx, *db, inputs, stdout, os.Stderr, time.Second)
}

// importFiles imports inputs into the file at path, printing a progress
// line to progress every interval and the totals to stdout.
func importFiles(ctx context.Context, path string, inputs []string, stdout, progress io.Writer, interval time.Duration) (err error) {
	exp, err := exporter.New(path)
	if err != nil {
		return err
	}
	defer func() {
		if e := exp.Shutdown(context.Background()); e != nil && err == nil {
			err = e
		}
		if err == nil {
			if s := exp.Stats(); s.Failed > 0 {
				err = fmt.Errorf("import: %d spans failed to be written (last error: %v)", s.Failed, s.LastError)
			}
		}
	}()
	im, err := otlp.NewImporter(ctx, exp, path)
	if err != nil {
		return err
	}
	defer im.Close()

	var stored, dups, rejected atomic.Int64
	start := time.Now()
	done := make(chan struct{})
	defer close(done)
	go func() {
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				s := stored.Load()
				fmt.Fprintf(progress, "import: %d spans stored, %d duplicates skipped, %d rejected (%.0f spans/s)\n",
					s, dups.Load(), rejected.Load(), float64(s)/time.Since(start).Seconds())
			}
		}
	}()
	var firstReject string
	for _, in := range inputs {
		err := otlp.ReadFile(in, func(td ptrace.Traces, line int) error {
			s, d, r, msg, err := im.Import(ctx, td)
			stored.Add(int64(s))
			dups.Add(int64(d))
			rejected.Add(int64(r))
			if r > 0 && firstReject == "" {
				firstReject = fmt.Sprintf("%s:%d: %s", in, line, msg)
			}
			if err != nil {
				return fmt.Errorf("%s:%d: %w", in, line, err)
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("import: %w", err)
		}
	}
	fmt.Fprintf(stdout, "imported %d spans into %s; %d duplicates skipped, %d rejected\n", stored.Load(), path, dups.Load(), rejected.Load())
	if firstReject != "" {
		fmt.Fprintf(stdout, "rejected: %s\n", firstReject)
	}
	return nil
}
