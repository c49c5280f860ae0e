package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"strings"
	"time"

	"github.com/lonelytrace/lonelytrace/internal/replay"
)

var replayCommand = command{
	name:    "replay",
	args:    "FILE...",
	summary: "send stored spans to an OTLP/HTTP collector",
	help: `Sends every span of the files, in order, to an OTLP/HTTP collector, each
span once however many files hold it. Requests hold at most -batch spans
and -max-request-bytes bytes of protobuf; a 413 answer halves the bound. A
request that fails retryably (no answer, 429, 5xx) is tried again with
backoff for up to -retry-for. When replay stops part way, it prints the
command that continues where it stopped (-resume FILE:ROW).`,
	flags: func(fs *flag.FlagSet) func(context.Context, []string, io.Writer) error {
		endpoint := fs.String("endpoint", "", "OTLP/HTTP endpoint, e.g. http://127.0.0.1:4318 (/v1/traces is added when there is no path); default $OTEL_EXPORTER_OTLP_TRACES_ENDPOINT or $OTEL_EXPORTER_OTLP_ENDPOINT")
		batch := fs.Int("batch", replay.DefaultBatchSize, "most spans per request")
		maxBytes := fs.Int("max-request-bytes", replay.DefaultMaxRequestBytes, "most bytes of protobuf (before gzip) per request; halved when the collector answers 413")
		retryFor := fs.Duration("retry-for", replay.DefaultRetryFor, "how long a request that fails retryably is tried again, from its first failure")
		attempts := fs.Int("attempts", 0, "most tries per request (0: as many as -retry-for allows)")
		timeout := fs.Duration("timeout", replay.DefaultTimeout, "timeout of one request")
		resume := fs.String("resume", "", "continue a replay that stopped: FILE:ROW as its error gives it (the file's place among the files, from 1, and the last row sent)")
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
			opts := []replay.Option{replay.WithBatchSize(*batch), replay.WithMaxRequestBytes(*maxBytes),
				replay.WithRetryFor(*retryFor), replay.WithAttempts(*attempts), replay.WithTimeout(*timeout)}
			if *resume != "" {
				p, err := replay.ParsePosition(*resume)
				if err != nil {
					return fmt.Errorf("replay: -resume: %w", err)
				}
				opts = append(opts, replay.WithResume(p))
			}
			// Put back when done, for the tests that run commands in
			// one process.
			if os.Getenv("GOGC") == "" {
				defer debug.SetGCPercent(debug.SetGCPercent(replayGCPercent))
			}
			if os.Getenv("GOMEMLIMIT") == "" {
				defer debug.SetMemoryLimit(debug.SetMemoryLimit(replayMemoryLimit))
			}
			err = runReplay(ctx, *endpoint, files, stdout, opts...)
			var stopped *replay.StoppedError
			if errors.As(err, &stopped) {
				err = fmt.Errorf("%w\nto continue where it stopped, run:\n  %s", err, resumeCommand(fs, stopped.Resume, files))
				if stopped.Skip != nil {
					err = fmt.Errorf("%w\nor, to leave that span out:\n  %s", err, resumeCommand(fs, *stopped.Skip, files))
				}
			}
			return err
		}
	},
}

// replayGCPercent is replay's GOGC unless the environment sets one. Its
// live heap is a page of spans, a few megabytes, while it allocates
// several kilobytes per span read: at the default 100 the collector runs
// so often that 1M spans took 27 s and 14.5 s of CPU, against 12 s and
// 10.4 s at 400, for a peak RSS of 61 MB instead of 38 (both flat in the
// file's size).
const replayGCPercent = 400

// replayMemoryLimit is replay's soft memory limit unless GOMEMLIMIT sets
// one: with large spans a page is megabytes, and GOGC 400 alone would let
// its garbage grow to five times that before a collection.
const replayMemoryLimit = 128 << 20

// resumeCommand is the command line that continues a replay at p: the
// flags given this time, -resume p in place of any -resume, the files.
func resumeCommand(fs *flag.FlagSet, p replay.Position, files []string) string {
	words := []string{"lonelytrace", "replay"}
	fs.Visit(func(f *flag.Flag) {
		if f.Name != "resume" {
			words = append(words, "-"+f.Name, f.Value.String())
		}
	})
	words = append(words, "-resume", p.String())
	words = append(words, files...)
	for i, w := range words {
		words[i] = shellQuote(w)
	}
	return strings.Join(words, " ")
}

// shellQuote quotes s for a POSIX shell when it needs it.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./:=@%+,") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
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
	if res.TooLarge > 0 {
		fmt.Fprintf(stdout, "replay: the collector refused %d requests as too large (413); requests were cut to %d bytes\n", res.TooLarge, res.MaxRequestBytes)
	}
	if res.Repaired > 0 {
		fmt.Fprintf(stdout, "replay: %d strings were not UTF-8 and went with U+FFFD in place of the bad bytes\n", res.Repaired)
	}
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
