package main

import (
	"context"
	"flag"
	"io"

	"github.com/lonelytrace/lonelytrace/viewer"
)

var summaryCommand = command{
	name:    "summary",
	args:    "FILE...",
	summary: "print the viewer's aggregates as text",
	help:    "The window and filters are the viewer's query parameters (go doc ./viewer ParseQuery).",
	flags: func(fs *flag.FlagSet) func(context.Context, []string, io.Writer) error {
		params := windowFlags(fs)
		return func(ctx context.Context, args []string, stdout io.Writer) error {
			files, err := needFiles("summary", args)
			if err != nil {
				return err
			}
			v, err := viewer.Open(files...)
			if err != nil {
				return err
			}
			defer v.Close()
			s, err := v.Summary(ctx, params())
			if err != nil {
				return err
			}
			return s.WriteText(stdout)
		}
	},
}
