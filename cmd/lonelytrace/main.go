// Command lonelytrace reads lonelytrace trace files: it serves the viewer,
// prints its aggregates, saves the page as a snapshot, checks and copies
// files, imports and exports OTLP, replays them to a collector and measures
// the pipeline.
//
//	lonelytrace help               lists the commands
//	lonelytrace COMMAND -h         a command's usage and flags
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	_ "time/tzdata" // the tz parameter must work on machines without a zoneinfo database

	"github.com/lonelytrace/lonelytrace/viewer"
)

// A command is one subcommand. Each is declared, with its usage and its
// flags, in its own file (view.go declares viewCommand); to add one, write
// the file and list its command here.
var commands = []command{
	viewCommand,
	summaryCommand,
	snapshotCommand,
	collectCommand,
	importCommand,
	exportCommand,
	replayCommand,
	loadCommand,
	checkCommand,
	copyCommand,
}

type command struct {
	name    string
	args    string // the arguments after the flags, as usage shows them: "FILE..."
	summary string // what the command does, one line
	help    string // more, printed by -h after the summary; may be empty
	// flags declares the command's flags on fs and returns what runs the
	// command once they are parsed, with the arguments left after them.
	flags func(fs *flag.FlagSet) func(ctx context.Context, args []string, stdout io.Writer) error
}

// run parses the command's flags and runs it until it ends or ctx does.
func (c command) run(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet(c.name, flag.ContinueOnError)
	fs.Usage = func() { c.usage(fs) }
	exec := c.flags(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	return exec(ctx, fs.Args(), stdout)
}

func (c command) usage(fs *flag.FlagSet) {
	w := fs.Output()
	fmt.Fprintf(w, "usage: %s\n\n%s\n", strings.TrimSpace("lonelytrace "+c.name+" [flags] "+c.args), c.summary)
	if c.help != "" {
		fmt.Fprintf(w, "\n%s\n", c.help)
	}
	fmt.Fprintln(w, "\nflags:")
	fs.PrintDefaults()
}

// errUsage makes main print the usage and exit with status 2.
var errUsage = errors.New("usage")

func main() {
	err := run(os.Args[1:], os.Stdout)
	switch {
	case errors.Is(err, flag.ErrHelp):
	case errors.Is(err, errUsage):
		usage(os.Stderr)
		os.Exit(2)
	case err != nil:
		fmt.Fprintln(os.Stderr, "lonelytrace:", err)
		os.Exit(1)
	}
}

// run runs the command args name; an interrupt or SIGTERM ends its context.
func run(args []string, stdout io.Writer) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if len(args) == 0 {
		return errUsage
	}
	switch args[0] {
	case "help", "-h", "-help", "--help":
		if len(args) > 1 {
			return run([]string{args[1], "-h"}, stdout)
		}
		usage(stdout)
		return nil
	}
	for _, c := range commands {
		if c.name == args[0] {
			return c.run(ctx, args[1:], stdout)
		}
	}
	return fmt.Errorf("unknown command %q (try lonelytrace help)", args[0])
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: lonelytrace COMMAND [flags] ARGS...")
	fmt.Fprintln(w)
	for _, c := range commands {
		fmt.Fprintf(w, "  %-9s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\n'lonelytrace COMMAND -h' (or 'lonelytrace help COMMAND') lists a command's flags.")
}

// windowFlags adds the window and filter flags the text and snapshot
// commands share, named as the viewer's query parameters.
func windowFlags(fs *flag.FlagSet) func() viewer.QueryText {
	var t viewer.QueryText
	for _, f := range []struct {
		name string
		dst  *string
	}{{"since", &t.Since}, {"until", &t.Until}, {"tz", &t.TZ}, {"broadcaster", &t.Broadcaster}, {"topic", &t.Topic}, {"glob", &t.Glob}} {
		fs.StringVar(f.dst, f.name, "", "the viewer's "+f.name+" parameter")
	}
	return func() viewer.QueryText { return t }
}

// needFiles checks that the command name was given at least one file.
func needFiles(name string, args []string) ([]string, error) {
	if len(args) == 0 {
		return nil, fmt.Errorf("%s: no trace files given (see lonelytrace %s -h)", name, name)
	}
	return args, nil
}

// countOf writes n with the noun's singular or plural: "1 argument",
// "2 arguments".
func countOf(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}
