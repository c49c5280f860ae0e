package main

import (
	"context"
	"flag"
	"io"
	"strings"
	"time"

	"github.com/lonelytrace/lonelytrace/viewer"
)

var summaryCommand = command{
	name:    "summary",
	args:    "FILE...",
	summary: "print the viewer's aggregates as text",
	help:    "The window and filters are the viewer's query parameters (go doc ./viewer ParseQuery). -by adds the breakdowns of /api/breakdown after the summary.",
	flags: func(fs *flag.FlagSet) func(context.Context, []string, io.Writer) error {
		params := windowFlags(fs)
		by := fs.String("by", "", "also print breakdowns of -op by these comma-separated facts: broadcaster, topic, service, subscribers")
		op := fs.String("op", "", "the operation of the breakdowns (default notify)")
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
			q, err := viewer.ParseQuery(params(), time.Now(), time.Local)
			if err != nil {
				return err
			}
			s, err := v.Summary(ctx, q)
			if err != nil {
				return err
			}
			if err := viewer.WriteSummaryText(stdout, s); err != nil {
				return err
			}
			for _, b := range strings.Split(*by, ",") {
				if *by == "" {
					break
				}
				bd, err := v.Breakdown(ctx, viewer.BreakdownQuery{Query: q, By: strings.TrimSpace(b), Op: *op})
				if err != nil {
					return err
				}
				if err := viewer.WriteBreakdownText(stdout, bd); err != nil {
					return err
				}
			}
			return nil
		}
	},
}
