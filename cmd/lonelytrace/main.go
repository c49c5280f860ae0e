// Command lonelytrace reads lonelytrace trace files: it serves the viewer,
// prints its aggregates, or saves the page as a snapshot.
//
//	lonelytrace view [-addr 127.0.0.1:8080] [-prefix /stats] FILE...
//	lonelytrace summary [-since 24h-ago] [-until now] [-tz ZONE] FILE...
//	lonelytrace snapshot -o report.html FILE...
//	lonelytrace collect [-db traces.db] [-otlp-grpc 127.0.0.1:4317] [-otlp-http 127.0.0.1:4318] [-view ADDR]
//	lonelytrace import [-db traces.db] INPUT...
//	lonelytrace export [-format otlp-json|otlp-jsonl|otlp-proto] [-o OUT] [window flags] FILE...
//	lonelytrace replay -endpoint http://127.0.0.1:4318 FILE...
//	lonelytrace load [-rate 0] [-duration 10s] [-compare]
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	_ "time/tzdata" // the tz parameter must work on machines without a zoneinfo database
)

// A command runs one subcommand with the arguments after its name. Each
// lives in its own file; to add one, write the file and list it here.
type command struct {
	run   func(args []string, stdout io.Writer) error
	usage string
}

var commands = map[string]command{
	"view":     {runView, "view [-addr 127.0.0.1:8080] [-prefix /stats] [-token T] FILE...  serve the viewer"},
	"summary":  {runSummary, "summary [window flags] FILE...  print the aggregates as text"},
	"snapshot": {runSnapshot, "snapshot -o report.html [window flags] FILE...  save the page"},
	"import":   {runImport, "import [-db traces.db] INPUT...  store OTLP files (.json, .jsonl, .ndjson, .pb, .binpb, .gz of each) in a trace file"},
	"export":   {runExport, "export [-format otlp-json|otlp-jsonl|otlp-proto] [-o OUT] [window flags] FILE...  write the matching traces as OTLP"},
	"collect":  {runCollect, "collect [-db traces.db] [-otlp-grpc 127.0.0.1:4317] [-otlp-http 127.0.0.1:4318] [-view ADDR] [-token T]  receive OTLP traces from any SDK into a trace file"},
	"replay":   {runReplay, "replay -endpoint http://127.0.0.1:4318 FILE...  send stored spans to an OTLP/HTTP collector"},
	"load":     {runLoad, "load [-rate 0] [-duration 10s] [-producers 1] [-spans N] [-out DIR] [-compare] [-json] [-cpuprofile FILE]  measure the pipeline under load"},
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

func run(args []string, stdout io.Writer) error {
	if len(args) == 0 {
		return errUsage
	}
	if args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		usage(stdout)
		return nil
	}
	c, ok := commands[args[0]]
	if !ok {
		return fmt.Errorf("unknown command %q (try lonelytrace help)", args[0])
	}
	return c.run(args[1:], stdout)
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: lonelytrace COMMAND [flags] FILE...")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		fmt.Fprintln(w, "  lonelytrace "+commands[n].usage)
	}
}

// windowFlags adds the window and filter flags the text and snapshot
// commands share, named as the viewer's query parameters.
func windowFlags(fs *flag.FlagSet) func() map[string][]string {
	names := []string{"since", "until", "tz", "broadcaster", "topic", "glob"}
	vals := make([]*string, len(names))
	for i, n := range names {
		vals[i] = fs.String(n, "", "the viewer's "+n+" parameter")
	}
	return func() map[string][]string {
		m := make(map[string][]string)
		for i, n := range names {
			if *vals[i] != "" {
				m[n] = []string{*vals[i]}
			}
		}
		return m
	}
}

// needFiles checks that fs left at least one file argument.
func needFiles(fs *flag.FlagSet) ([]string, error) {
	if fs.NArg() == 0 {
		return nil, fmt.Errorf("%s: no trace files given (see lonelytrace help)", fs.Name())
	}
	return fs.Args(), nil
}
