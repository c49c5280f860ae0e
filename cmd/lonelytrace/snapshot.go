package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/lonelytrace/lonelytrace/internal/outfile"
	"github.com/lonelytrace/lonelytrace/viewer"
)

var snapshotCommand = command{
	name:    "snapshot",
	args:    "FILE...",
	summary: "save the viewer's page as one self-contained HTML file",
	help:    "The window and filters are the viewer's query parameters (go doc ./viewer ParseQuery).",
	flags: func(fs *flag.FlagSet) func(context.Context, []string, io.Writer) error {
		out := fs.String("o", "", "file to write the page to (required)")
		force := fs.Bool("f", false, "replace the -o file if it exists")
		params := windowFlags(fs)
		return func(ctx context.Context, args []string, stdout io.Writer) error {
			if *out == "" {
				return fmt.Errorf("snapshot: -o FILE is required")
			}
			files, err := needFiles("snapshot", args)
			if err != nil {
				return err
			}
			// Refused outputs are refused before the files are read.
			if err := outfile.Check(*out, *force, files...); err != nil {
				return fmt.Errorf("snapshot: %w", err)
			}
			v, err := viewer.Open(files...)
			if err != nil {
				return err
			}
			defer v.Close()
			var buf bytes.Buffer
			q, err := viewer.ParseQuery(params(), time.Now(), time.Local)
			if err != nil {
				return err
			}
			if err := v.WritePage(ctx, &buf, viewer.PageQuery{Query: q}); err != nil {
				return err
			}
			f, err := outfile.Create(*out, *force, files...)
			if err != nil {
				return fmt.Errorf("snapshot: %w", err)
			}
			defer f.Abort()
			if _, err := f.Write(buf.Bytes()); err != nil {
				return fmt.Errorf("snapshot: write %s: %w", *out, err)
			}
			if err := f.Commit(); err != nil {
				return fmt.Errorf("snapshot: %w", err)
			}
			fmt.Fprintf(stdout, "lonelytrace: wrote %s (%d bytes)\n", *out, buf.Len())
			return nil
		}
	},
}
