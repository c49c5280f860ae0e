package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime/pprof"
	"slices"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/lonelytrace/lonelytrace/internal/load"
)

var loadCommand = command{
	name:    "load",
	summary: "measure the pipeline under load, optionally against the SDK alone, plain inserts and OTLP",
	flags: func(fs *flag.FlagSet) func(context.Context, []string, io.Writer) error {
		var o loadOptions
		o.rate = fs.Float64("rate", 0, "spans per second all producers together start; 0 is flat out")
		o.duration = fs.Duration("duration", load.DefaultDuration, "how long the producers run (0: until -spans)")
		o.producers = fs.Int("producers", load.DefaultProducers, "producing goroutines")
		o.spans = fs.Int64("spans", 0, "stop after this many spans (0: no limit)")
		o.out = fs.String("out", "", "keep the files in this directory, adding to them if they exist (default: a temporary directory, removed)")
		o.compare = fs.Bool("compare", false, "run the same load against the SDK with a discarding exporter, plain SQLite inserts and OTLP/HTTP too")
		o.isolate = fs.Bool("isolate", false, "with -compare: run lonelytrace and OTLP/HTTP export instead, each in a child process of its own (this program again), -runs times each, interleaved, the OTLP receiver in this process; report each child's whole-process CPU per span and peak RSS")
		o.runs = fs.Int("runs", load.DefaultIsolatedRuns, "with -isolate: the child runs of each mode")
		o.asJSON = fs.Bool("json", false, "print the results as JSON as well")
		o.cpuProfile = fs.String("cpuprofile", "", "write a CPU profile of the whole run to this file (go tool pprof reads it)")
		o.memProfile = fs.String("memprofile", "", "write a heap profile to this file each time the resident set reaches a new high (checked once a second), and say where that memory was")
		return o.run
	},
}

type loadOptions struct {
	rate            *float64
	duration        *time.Duration
	producers       *int
	spans           *int64
	out, cpuProfile *string
	memProfile      *string
	compare, asJSON *bool
	isolate         *bool
	runs            *int
}

// The child runs of load -compare -isolate learn their mode, and the
// OTLP receiver to send to, from these variables that the parent sets,
// rather than from flags a user has no reason to see.
const (
	envLoadChild = "LONELYTRACE_LOAD_CHILD"
	envLoadOTLP  = "LONELYTRACE_LOAD_OTLP"
)

func (o loadOptions) run(ctx context.Context, args []string, stdout io.Writer) error {
	if *o.cpuProfile != "" {
		f, err := os.Create(*o.cpuProfile)
		if err != nil {
			return fmt.Errorf("load: %w", err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return fmt.Errorf("load: %w", err)
		}
		defer pprof.StopCPUProfile()
	}
	if len(args) > 0 {
		return fmt.Errorf("load: unexpected arguments %q", args)
	}
	if mode := os.Getenv(envLoadChild); mode != "" {
		return o.child(ctx, load.Mode(mode), stdout)
	}
	if *o.isolate {
		if !*o.compare {
			return errors.New("load: -isolate goes with -compare")
		}
		if *o.memProfile != "" || *o.out != "" {
			return errors.New("load: -isolate keeps neither -memprofile nor -out: its runs are in child processes")
		}
		return o.isolated(ctx, stdout)
	}

	var peak *memPeak
	if *o.memProfile != "" {
		peak = &memPeak{path: *o.memProfile}
		defer peak.report(stdout)
	}
	opts := append(o.options(),
		load.WithProgress(func(p load.Progress) {
			peak.sample(p)
			fmt.Fprintf(stdout, "load: %-11s %3.0fs  produced %9s/s  stored %9s/s (%s in all)  dropped %s  RSS %s\n", p.Mode,
				p.Elapsed.Seconds(), group(int64(p.ProducedPerSec)), group(int64(p.StoredPerSec)), group(p.Stored), group(p.Dropped), mib(p.RSS))
		}))
	var doc any
	var err error
	if *o.compare {
		var c load.Comparison
		c, err = load.Compare(ctx, opts...)
		for _, r := range c.Runs {
			printResult(stdout, r)
		}
		printComparison(stdout, c)
		doc = c
	} else {
		var r load.Result
		r, err = load.Run(ctx, load.Lonelytrace, opts...)
		printResult(stdout, r)
		doc = r
	}
	if *o.asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if e := enc.Encode(doc); e != nil && err == nil {
			err = e
		}
	}
	return err
}

// options are the load's options from the flags, without progress.
func (o loadOptions) options() []load.Option {
	return []load.Option{load.WithRate(*o.rate), load.WithDuration(*o.duration), load.WithProducers(*o.producers),
		load.WithSpans(*o.spans), load.WithDir(*o.out)}
}

// child is one child run of -isolate: the mode alone, its result as JSON
// on stdout and nothing else there.
func (o loadOptions) child(ctx context.Context, mode load.Mode, stdout io.Writer) error {
	if !slices.Contains(load.IsolatedModes[:], mode) {
		return fmt.Errorf("load: $%s=%q: want one of %v", envLoadChild, mode, load.IsolatedModes)
	}
	opts := o.options()
	if mode == load.OTLP {
		url := os.Getenv(envLoadOTLP)
		if url == "" {
			return fmt.Errorf("load: $%s is not set: an isolated OTLP run needs its receiver", envLoadOTLP)
		}
		opts = append(opts, load.WithOTLPEndpoint(url))
	}
	r, err := load.Run(ctx, mode, opts...)
	if err != nil {
		return err
	}
	return json.NewEncoder(stdout).Encode(r)
}

// isolated runs load -compare -isolate: this program again for every
// run, with the same flags.
func (o loadOptions) isolated(ctx context.Context, stdout io.Writer) error {
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("load: -isolate runs this program again: %w", err)
	}
	n := 0
	command := func(ctx context.Context, mode load.Mode, endpoint string) *exec.Cmd {
		n++
		fmt.Fprintf(stdout, "load: child %d of %d: %s\n", n, len(load.IsolatedModes)*max(*o.runs, 1), mode)
		cmd := exec.CommandContext(ctx, exe, "load", "-rate", strconv.FormatFloat(*o.rate, 'f', -1, 64),
			"-duration", o.duration.String(), "-producers", strconv.Itoa(*o.producers), "-spans", strconv.FormatInt(*o.spans, 10))
		cmd.Env = append(os.Environ(), envLoadChild+"="+string(mode), envLoadOTLP+"="+endpoint)
		return cmd
	}
	c, err := load.CompareIsolated(ctx, command, *o.runs)
	printIsolation(stdout, c)
	if *o.asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if e := enc.Encode(c); e != nil && err == nil {
			err = e
		}
	}
	return err
}

func printIsolation(w io.Writer, c load.Isolation) {
	if len(c.Runs) == 0 {
		return
	}
	r0 := c.Runs[0]
	rate := "flat out"
	if r0.Rate > 0 {
		rate = group(int64(r0.Rate)) + " spans/s"
	}
	fmt.Fprintf(w, "\nisolated: %s, %d producer(s), %s, each run a child process; the OTLP receiver in this one\n", rate, r0.Producers, r0.Duration.Round(time.Millisecond))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "mode\tproduced/s\tstored/s\tdropped\tprocess CPU/span\tstart to exit\tpeak RSS\tbytes/span\tload average\t")
	for i, r := range c.Runs {
		var whole time.Duration
		if i < len(c.ChildCPUPerSpan) {
			whole = c.ChildCPUPerSpan[i]
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%.1f\t%.2f → %.2f\t\n", r.Mode, group(int64(r.ProducedPerSec)), group(int64(r.StoredPerSec)),
			group(r.Dropped+r.SDKDropped+r.Failed), nanos(r.CPUPerSpan), nanos(whole), mib(r.PeakRSS), r.BytesPerSpan, r.LoadStart, r.LoadEnd)
	}
	tw.Flush()
	fmt.Fprintln(w, "(process CPU/span: the child's, first span to end of shutdown; start to exit: the same with its start-up and exit)")
	for _, m := range c.Medians {
		fmt.Fprintf(w, "%s, median of %d: process CPU per span %s (start to exit %s), peak RSS %s\n", m.Mode, m.Runs, nanos(m.CPUPerSpan), nanos(m.ChildCPUPerSpan), mib(m.PeakRSS))
	}
	if c.CPUVsOTLP > 0 {
		fmt.Fprintf(w, "lonelytrace/otlp process CPU per span: %.2f (start to exit %.2f)\n", c.CPUVsOTLP, c.ChildCPUVsOTLP)
		fmt.Fprintf(w, "lonelytrace − otlp peak RSS:           %+.1f MiB\n", float64(c.PeakRSSOverOTLP)/(1<<20))
	}
}

func printResult(w io.Writer, r load.Result) {
	if r.Mode == "" {
		return
	}
	rate := "flat out"
	if r.Rate > 0 {
		rate = group(int64(r.Rate)) + " spans/s"
	}
	fmt.Fprintf(w, "\n%s: %s, %d producer(s), %s (%s until stored), GOMAXPROCS %d, load average %.2f → %.2f\n",
		r.Mode, rate, r.Producers, r.Duration.Round(time.Millisecond), r.Elapsed.Round(time.Millisecond), r.GOMAXPROCS, r.LoadStart, r.LoadEnd)
	fmt.Fprintf(w, "  spans produced         %s (%s/s over the producing time)\n", group(r.Produced), group(int64(r.ProducedPerSec)))
	fmt.Fprintf(w, "  spans stored           %s (%s/s until the last was stored)\n", group(r.Stored), group(int64(r.StoredPerSec)))
	fmt.Fprintf(w, "  dropped                %s: %s by the exporter, %s by the SDK batch processor (produced − stored − exporter's dropped − failed, after shutdown), %s failed\n",
		group(r.Dropped+r.SDKDropped+r.Failed), group(r.Dropped), group(r.SDKDropped), group(r.Failed))
	fmt.Fprintf(w, "  process CPU per span   %s (whole process, first span to end of shutdown, over spans produced)\n", nanos(r.CPUPerSpan))
	if r.ReceiverCPUPerSpan > 0 {
		fmt.Fprintf(w, "    of which receiver    %s (the in-process OTLP receiver; %s without it)\n", nanos(r.ReceiverCPUPerSpan), nanos(r.CPUPerSpan-r.ReceiverCPUPerSpan))
	}
	fmt.Fprintf(w, "  producer time per span %s (wall time inside the producers' loops, over spans produced)\n", nanos(r.ProducerPerSpan))
	if r.ProducerCPUPerSpan > 0 {
		fmt.Fprintf(w, "  producer CPU per span  %s (CPU time of the producers' threads, over spans produced)\n", nanos(r.ProducerCPUPerSpan))
	}
	peak := "since the run started"
	if !r.PeakReset {
		peak = "since the process started"
	}
	fmt.Fprintf(w, "  peak RSS               %s (VmHWM, %s)\n", mib(r.PeakRSS), peak)
	if r.RSSSamples > 0 {
		fmt.Fprintf(w, "  RSS after 5 s          min %s, median %s, max %s (%d samples, one a second)\n",
			mib(r.RSSMin), mib(r.RSSMedian), mib(r.RSSMax), r.RSSSamples)
	}
	switch {
	case r.Mode == load.OTLP:
		fmt.Fprintf(w, "  bytes per span         %.1f (OTLP protobuf request bodies)\n", r.BytesPerSpan)
	case r.FileBytes > 0:
		fmt.Fprintf(w, "  bytes per span         %.1f (file and -wal after shutdown: %s for %s spans", r.BytesPerSpan, mib(r.FileBytes), group(r.FileSpans))
		if r.File != "" {
			fmt.Fprintf(w, ", %s", r.File)
		}
		fmt.Fprintln(w, ")")
	}
}

func printComparison(w io.Writer, c load.Comparison) {
	if len(c.Runs) == 0 {
		return
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "mode\tproduced/s\tstored/s\tdropped\tprocess CPU/span\tproducer/span\tproducer CPU/span\tpeak RSS\tbytes/span\t")
	for _, r := range c.Runs {
		cpu := nanos(r.CPUPerSpan)
		if r.ReceiverCPUPerSpan > 0 {
			cpu += "*"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%.1f\t\n", r.Mode, group(int64(r.ProducedPerSec)), group(int64(r.StoredPerSec)),
			group(r.Dropped+r.SDKDropped+r.Failed), cpu, nanos(r.ProducerPerSpan), nanos(r.ProducerCPUPerSpan), mib(r.PeakRSS), r.BytesPerSpan)
	}
	tw.Flush()
	if r, ok := c.Run(load.OTLP); ok && r.ReceiverCPUPerSpan > 0 {
		fmt.Fprintf(w, "* includes the in-process OTLP receiver's %s per span\n", nanos(r.ReceiverCPUPerSpan))
	}
	fmt.Fprintf(w, "lonelytrace/plain stored spans/s:        %.2f\n", c.StoredVsPlain)
	fmt.Fprintf(w, "lonelytrace/discard process CPU per span: %.2f\n", c.CPUVsDiscard)
	fmt.Fprintf(w, "lonelytrace/discard producer time/span:   %.2f\n", c.ProducerVsDiscard)
	if c.ProducerCPUVsDiscard > 0 {
		fmt.Fprintf(w, "lonelytrace/discard producer CPU/span:    %.2f\n", c.ProducerCPUVsDiscard)
	}
}

// group writes n with thousands separators: 1,204,000.
func group(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := n < 0
	if neg {
		s = s[1:]
	}
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	if neg {
		s = "-" + s
	}
	return s
}

func nanos(d time.Duration) string {
	if d >= 10*time.Microsecond {
		return fmt.Sprintf("%.1f µs", float64(d)/1e3)
	}
	return fmt.Sprintf("%d ns", d.Nanoseconds())
}

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }
