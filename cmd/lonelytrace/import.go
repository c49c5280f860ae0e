package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/lonelytrace/lonelytrace/exporter"
	"github.com/lonelytrace/lonelytrace/internal/otlp"
)

var importCommand = command{
	name:    "import",
	args:    "INPUT...",
	summary: "store OTLP trace files in a trace file",
	help: `Reads OTLP/JSON (.json: one ExportTraceServiceRequest; .jsonl or .ndjson:
one per line, as the collector's file exporter writes them), OTLP protobuf
(.pb, .binpb) and .gz of each, and stores their spans through the
exporter's writer. A span whose trace and span id the file already holds
is skipped, so importing the same input twice stores nothing twice. A
progress line goes to standard error every second; a bad record is an
error naming its file and line.`,
	flags: func(fs *flag.FlagSet) func(context.Context, []string, io.Writer) error {
		db := fs.String("db", "traces.db", "the trace file to import into (created if missing)")
		return func(ctx context.Context, inputs []string, stdout io.Writer) error {
			if len(inputs) == 0 {
				return fmt.Errorf("import: no input files given (see lonelytrace import -h)")
			}
			return importFiles(ctx, *db, inputs, stdout, os.Stderr, time.Second)
		}
	},
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
	fmt.Fprintf(stdout, "imported %s into %s; %s skipped, %d rejected\n", countOf(int(stored.Load()), "span", "spans"), path, countOf(int(dups.Load()), "duplicate", "duplicates"), rejected.Load())
	if firstReject != "" {
		fmt.Fprintf(stdout, "rejected: %s\n", firstReject)
	}
	return nil
}
