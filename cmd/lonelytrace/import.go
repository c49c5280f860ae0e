package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"

	"github.com/lonelytrace/lonelytrace/exporter"
	"github.com/lonelytrace/lonelytrace/internal/otlp"
	"github.com/lonelytrace/lonelytrace/internal/outfile"
	"github.com/lonelytrace/lonelytrace/internal/progress"
)

var importCommand = command{
	name:    "import",
	args:    "INPUT...",
	summary: "store OTLP trace files in a trace file",
	help: `Reads OTLP/JSON (.json: one ExportTraceServiceRequest; .jsonl or .ndjson:
one per line, as the collector's file exporter writes them), OTLP protobuf
(.pb, .binpb) and .gz of each, and stores their spans through the
exporter's writer. A span whose trace and span id the file already holds
is skipped, so importing the same input twice stores nothing twice. The
inputs are read a resourceSpans at a time, so memory does not grow with
their size. On a terminal, an import over 2 s shows a progress line on
standard error (-q: none); a bad record is an error naming its file and
line (for .json, the request's number).`,
	flags: func(fs *flag.FlagSet) func(context.Context, []string, io.Writer) error {
		db := fs.String("db", "traces.db", "the trace file to import into (created if missing)")
		quiet := fs.Bool("q", false, "show no progress line (shown only on a terminal, for work over 2 s)")
		return func(ctx context.Context, inputs []string, stdout io.Writer) error {
			if len(inputs) == 0 {
				return fmt.Errorf("import: no input files given (see lonelytrace import -h)")
			}
			m := progress.Start(os.Stderr, *quiet, "import", "bytes")
			defer m.Stop()
			return importFiles(ctx, *db, inputs, stdout, m)
		}
	},
}

// importFiles imports inputs into the file at path, showing its progress
// on m (which may be nil) and printing the totals to stdout.
//
// A file that does not exist yet is written under a private name beside
// path and gets its name only when every input is imported, so that a
// failed import leaves no file behind. A file that exists must not be
// one of the inputs.
func importFiles(ctx context.Context, path string, inputs []string, stdout io.Writer, m *progress.Meter) (err error) {
	if err := outfile.Check(path, true, inputs...); err != nil {
		return fmt.Errorf("import: %w", err)
	}
	if _, err := os.Lstat(path); errors.Is(err, fs.ErrNotExist) {
		tmp, err := outfile.Temp(path)
		if err != nil {
			return fmt.Errorf("import: %w", err)
		}
		defer outfile.Remove(tmp)
		if err := importInto(ctx, tmp, path, inputs, stdout, m); err != nil {
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
	return importInto(ctx, path, path, inputs, stdout, m)
}

// importInto imports inputs into the file at path, named name in what it
// prints.
func importInto(ctx context.Context, path, name string, inputs []string, stdout io.Writer, m *progress.Meter) (err error) {
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

	var stored, dups, rejected int64
	// The total is the inputs' sizes as stored (compressed, for .gz): what
	// the import reads.
	var total int64
	for _, in := range inputs {
		if fi, err := os.Stat(in); err == nil {
			total += fi.Size()
		}
	}
	m.SetTotal(total)
	var firstReject string
	for _, in := range inputs {
		err := otlp.ReadFileRecords(in, m.Add, func(rec otlp.Records, line int) error {
			s, d, r, msg, err := im.ImportRecords(ctx, rec)
			stored += int64(s)
			dups += int64(d)
			rejected += int64(r)
			m.Note(fmt.Sprintf("%s spans stored", group(stored)))
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
	m.Stop()
	fmt.Fprintf(stdout, "imported %s into %s; %s skipped, %d rejected\n", countOf(int(stored), "span", "spans"), name, countOf(int(dups), "duplicate", "duplicates"), rejected)
	if firstReject != "" {
		fmt.Fprintf(stdout, "rejected: %s\n", firstReject)
	}
	return nil
}
