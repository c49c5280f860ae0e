package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/lonelytrace/lonelytrace/internal/otlp"
	"github.com/lonelytrace/lonelytrace/internal/outfile"
	"github.com/lonelytrace/lonelytrace/internal/progress"
	"github.com/lonelytrace/lonelytrace/schema"
	"github.com/lonelytrace/lonelytrace/viewer"
)

var exportCommand = command{
	name:    "export",
	args:    "FILE...",
	summary: "write the traces that match the window and filters as OTLP",
	help: `Writes the traces that the window and filters select, whole (every span
of every file with a selected trace id), as one OTLP/JSON
ExportTraceServiceRequest (otlp-json), one request per line (otlp-jsonl,
as the collector's file exporter writes them) or OTLP protobuf
(otlp-proto). Without -since, the window starts at the beginning; without
-until, it ends now. Traces are written in trace-id order, spans in start
order, so the same spans always give the same bytes.

` + selectionHelp,
	flags: func(fs *flag.FlagSet) func(context.Context, []string, io.Writer) error {
		format := fs.String("format", string(otlp.FormatJSON), "otlp-json, otlp-jsonl or otlp-proto")
		out := fs.String("o", "-", "the file to write; - is standard output")
		force := fs.Bool("f", false, "replace the -o file if it exists")
		quiet := fs.Bool("q", false, "show no progress line (shown only on a terminal, for work over 2 s)")
		params := windowFlags(fs)
		return func(ctx context.Context, args []string, stdout io.Writer) error {
			files, err := needFiles("export", args)
			if err != nil {
				return err
			}
			m := progress.Start(os.Stderr, *quiet, "export", "traces")
			defer m.Stop()
			return exportFiles(ctx, files, *format, *out, *force, params(), stdout, m)
		}
	},
}

// exportFiles writes the traces of files that params select to out in
// format. A file out is written beside it and renamed onto it at the end,
// so that a failure leaves it as it was; it must not be one of files and,
// unless force, must not exist.
// m, which may be nil, shows the progress.
func exportFiles(ctx context.Context, files []string, format, out string, force bool, params viewer.QueryText, stdout io.Writer, m *progress.Meter) (err error) {
	f, err := otlp.ParseFormat(format)
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	sel, err := selectionOf(params)
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}

	dst := stdout
	var file *outfile.File
	if out != "-" {
		if file, err = outfile.Create(out, force, files...); err != nil {
			return fmt.Errorf("export: %w", err)
		}
		defer file.Abort()
		dst = file
	}
	bw := bufio.NewWriterSize(dst, 1<<20)
	w := otlp.NewWriter(bw, f)
	traces, spans, err := otlp.ExportCounting(ctx, files, sel, w, m)
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("export: %w", err)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("export: %w", err)
	}
	if file != nil {
		if err := file.Commit(); err != nil {
			return fmt.Errorf("export: %w", err)
		}
		m.Stop()
		fmt.Fprintf(stdout, "exported %d traces (%d spans) to %s\n", traces, spans, out)
	}
	return nil
}

// selectionHelp is the rule of schema.TraceSelection, for the help of
// the commands that select traces.
const selectionHelp = `A trace is selected when one of its spans starts in [since, until) and,
with any of -broadcaster, -topic and -glob, that span is a pub/sub
operation (a span with an op: notify, receive, subscribe_exact, ...; see
schema/README.md) whose broadcaster equals -broadcaster, whose topic
equals -topic, and whose topic matches the -glob pattern or whose own glob
pattern (a glob subscription's) equals it. Patterns are fnmatch-style:
* any run of characters, / included; ? one character; [seq] one character
in seq, [!seq] one not in it. These are the viewer's filters.`

// selectionOf returns the selection of the window and filter flags in
// params, parsed as the viewer parses its query, except that the window
// starts at the beginning when -since is not given: a command that selects
// traces from a file takes all of them unless told otherwise.
func selectionOf(params viewer.QueryText) (schema.TraceSelection, error) {
	if params.Since == "" {
		params.Since = "beginning"
	}
	q, err := viewer.ParseQuery(params, time.Now(), time.Local)
	if err != nil {
		return schema.TraceSelection{}, err
	}
	return schema.TraceSelection{Since: q.Since.UnixNano(), Until: q.Until.UnixNano(), SinceBeginning: q.SinceBeginning,
		Broadcaster: q.Broadcaster, Topic: q.Topic, Glob: q.Glob}, nil
}
