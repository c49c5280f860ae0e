package main

import (
	"context"
	"flag"
	"io"

	"github.com/lonelytrace/lonelytrace/viewer"
)

func runSummary(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("summary", flag.ContinueOnError)
	params := windowFlags(fs)
	if err := fs.Parse(args); err != nil {
		return err
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
	s, err := v.Summary(context.Background(), params())
	if err != nil {
		return err
	}
	return s.WriteText(stdout)
}
