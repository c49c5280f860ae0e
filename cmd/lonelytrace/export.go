package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"time"

	"github.com/lonelytrace/lonelytrace/internal/otlp"
	"github.com/lonelytrace/lonelytrace/viewer"
)

func runExport(args []string, stdout io.Writer) (err error) {
	fs := flag.NewFlagSet("export", flag.ContinueOnError)
	format := fs.String("format", string(otlp.FormatJSON), "otlp-json, otlp-jsonl or otlp-proto")
	out := fs.String("o", "-", "the file to write; - is standard output")
	params := windowFlags(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	files, err := needFiles(fs)
	if err != nil {
		return err
	}
	f, err := otlp.ParseFormat(*format)
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	p := url.Values(params())
	if p.Get("since") == "" {
		p.Set("since", "beginning")
	}
	q, err := viewer.ParseQuery(p, time.Now(), time.Local)
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	sel := otlp.Selection{Since: q.Since, Until: q.Until, SinceBeginning: q.SinceBeginning,
		Broadcaster: q.Broadcaster, Topic: q.Topic, Glob: q.Glob}

	dst := stdout
	if *out != "-" {
		file, err := os.Create(*out)
		if err != nil {
			return fmt.Errorf("export: %w", err)
		}
		defer func() {
			if e := file.Close(); e != nil && err == nil {
				err = fmt.Errorf("export: %w", e)
			}
		}()
		dst = file
	}
	bw := bufio.NewWriterSize(dst, 1<<20)
	w := otlp.NewWriter(bw, f)
	traces, spans, err := otlp.Export(context.Background(), files, sel, w)
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("export: %w", err)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("export: %w", err)
	}
	if *out != "-" {
		fmt.Fprintf(stdout, "exported %d traces (%d spans) to %s\n", traces, spans, *out)
	}
	return nil
}
