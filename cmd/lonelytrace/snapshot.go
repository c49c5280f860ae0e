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

func runSnapshot(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("snapshot", flag.ContinueOnError)
	out := fs.String("o", "", "file to write the page to (required)")
	params := windowFlags(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *out == "" {
		return fmt.Errorf("snapshot: -o FILE is required")
	}
	files, err := needFiles(fs)
	if err != nil {
		return err
	}
	v, err := viewer.Open(files...)
	if err != nil {
		return err
	}
	defer v.Close()
	var buf bytes.Buffer
	if err := v.WritePage(context.Background(), &buf, params()); err != nil {
		return err
	}
	// Write the whole page at once so that a failure leaves no half file.
	if err := os.WriteFile(*out, buf.Bytes(), 0o644); err != nil {
		return fmt.Errorf("snapshot: %w", err)
	}
	fmt.Fprintf(stdout, "lonelytrace: wrote %s (%d bytes)\n", *out, buf.Len())
	return nil
}
