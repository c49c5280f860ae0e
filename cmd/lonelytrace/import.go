package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/lonelytrace/lonelytrace/exporter"
	"github.com/lonelytrace/lonelytrace/internal/otlp"
	"github.com/lonelytrace/lonelytrace/internal/outfile"
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
//
// A file that does not exist yet is written under a private name beside
// path and gets its name only when every input is imported, so that a
// failed import leaves no file behind. A file that exists must not be
// one of the inputs.
func importFiles(ctx context.Context, path string, inputs []string, stdout, progress io.Writer, interval time.Duration) (err error) {
	if err := outfile.Check(path, true, inputs...); err != nil {
		return fmt.Errorf("import: %w", err)
	}
	if _, err := os.Lstat(path); errors.Is(err, fs.ErrNotExist) {
		tmp, err := outfile.Temp(path)
		if err != nil {
			return fmt.Errorf("import: %w", err)
		}
		defer outfile.Remove(tmp)
		if err := importInto(ctx, tmp, path, inputs, stdout, progress, interval); err != nil {
			return err
		}
		if _, err := os.Stat(tmp + "-wal"); err == nil {
			return fmt.Errorf("import: %s: the writer left a WAL beside the new file", path)
		}
		if err := outfile.Publish(tmp, path, outfile.DefaultMode, false); err != nil {
			return fmt.Errorf("import: %w", err)
		}
		return nil
	}
	return importInto(ctx, path, path, inputs, stdout, progress, interval)
}

// importInto imports inputs into the file at path, named name in what it
// prints.
func importInto(ctx context.Context, path, name string, inputs []string, stdout, progress io.Writer, interval time.Duration) (err error) {
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
	fmt.Fprintf(stdout, "imported %d spans into %s; %d duplicates skipped, %d rejected\n", stored.Load(), name, dups.Load(), rejected.Load())
	if firstReject != "" {
		fmt.Fprintf(stdout, "rejected: %s\n", firstReject)
	}
	return nil
}
