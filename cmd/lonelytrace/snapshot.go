package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/lonelytrace/lonelytrace/viewer"
)

var snapshotCommand = command{
	name:    "snapshot",
	args:    "FILE...",
	summary: "save the viewer's page as one self-contained HTML file",
	help:    "The window and filters are the viewer's query parameters (go doc ./viewer ParseQuery).",
	flags: func(fs *flag.FlagSet) func(context.Context, []string, io.Writer) error {
		out := fs.String("o", "", "file to write the page to (required)")
		params := windowFlags(fs)
		return func(ctx context.Context, args []string, stdout io.Writer) error {
			if *out == "" {
				return fmt.Errorf("snapshot: -o FILE is required")
			}
			files, err := needFiles("snapshot", args)
			if err != nil {
				return err
			}
			v, err := viewer.Open(files...)
			if err != nil {
				return err
			}
			defer v.Close()
			var buf bytes.Buffer
			if err := v.WritePage(ctx, &buf, params()); err != nil {
				return err
			}
			// Write the whole page at once so that a failure leaves no half file.
			if err := os.WriteFile(*out, buf.Bytes(), 0o644); err != nil {
				return fmt.Errorf("snapshot: %w", err)
			}
			fmt.Fprintf(stdout, "lonelytrace: wrote %s (%d bytes)\n", *out, buf.Len())
			return nil
		}
	},
}
