package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/lonelytrace/lonelytrace/internal/replay"
)

var replayCommand = command{
	name:    "replay",
	args:    "FILE...",
	summary: "send stored spans to an OTLP/HTTP collector",
	flags: func(fs *flag.FlagSet) func(context.Context, []string, io.Writer) error {
		endpoint := fs.String("endpoint", "", "OTLP/HTTP endpoint, e.g. http://127.0.0.1:4318 (/v1/traces is added when there is no path); default $OTEL_EXPORTER_OTLP_TRACES_ENDPOINT or $OTEL_EXPORTER_OTLP_ENDPOINT")
		batch := fs.Int("batch", replay.DefaultBatchSize, "spans per request")
		attempts := fs.Int("attempts", replay.DefaultAttempts, "tries per request before giving up")
		timeout := fs.Duration("timeout", replay.DefaultTimeout, "timeout of one request")
		return func(ctx context.Context, args []string, stdout io.Writer) error {
			files, err := needFiles("replay", args)
			if err != nil {
				return err
			}
			if *endpoint == "" {
				*endpoint = os.Getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
			}
			if *endpoint == "" {
				*endpoint = os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT")
			}
			if *endpoint == "" {
				return fmt.Errorf("replay: no -endpoint given (for example -endpoint http://127.0.0.1:4318)")
			}
			return runReplay(ctx, *endpoint, files, stdout, replay.WithBatchSize(*batch), replay.WithAttempts(*attempts), replay.WithTimeout(*timeout))
		}
	},
}

// runReplay replays files to endpoint, reporting progress on stdout.
func runReplay(ctx context.Context, endpoint string, files []string, stdout io.Writer, opts ...replay.Option) error {
	var last time.Time
	report := func(p replay.Progress) {
		switch {
		case p.Retry > 0:
			fmt.Fprintf(stdout, "replay: %s: request failed (%s); attempt %d in %s\n",
				p.File, shortError(p.LastError), p.Retry, p.Wait.Round(time.Millisecond))
		case p.FileSent == p.FileSpans || time.Since(last) >= time.Second:
			last = time.Now()
			fmt.Fprintf(stdout, "replay: %s: %d of %d spans done (%d sent in all)\n", p.File, p.FileSent, p.FileSpans, p.Sent)
		}
	}
	start := time.Now()
	res, err := replay.Replay(ctx, endpoint, files, append(opts, replay.WithProgress(report))...)
	fmt.Fprintf(stdout, "replay: sent %d spans from %d of %d files to %s in %d requests (%d retried, %d duplicates skipped) in %s\n",
		res.Spans, res.Files, len(files), endpoint, res.Requests, res.Retries, res.Duplicates, time.Since(start).Round(time.Millisecond))
	if res.Rejected > 0 || res.RejectMessage != "" {
		fmt.Fprintf(stdout, "replay: the collector rejected %d of the spans sent: %s\n", res.Rejected, res.RejectMessage)
	}
	return err
}

// shortError drops the body an OTLP exporter error quotes.
func shortError(err error) string {
	s := err.Error()
	if i := strings.Index(s, " (body:"); i > 0 {
		s = s[:i]
	}
	return s
}
