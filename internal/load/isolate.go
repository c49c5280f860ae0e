package load

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"slices"
	"strings"
	"time"
)

// DefaultIsolatedRuns is how many times CompareIsolated runs each mode: 3.
const DefaultIsolatedRuns = 3

// IsolatedModes are the modes CompareIsolated runs, each in a process of
// its own: the application storing its spans, and the application
// shipping them to a receiver that is not in it.
var IsolatedModes = [...]Mode{Lonelytrace, OTLP}

// ChildCommand returns the command of one child run of CompareIsolated:
// a process that runs mode (with WithOTLPEndpoint(otlpEndpoint) for OTLP)
// and prints its Result as one JSON document on its standard output, and
// nothing else there. The command line that makes it so is the caller's:
// `lonelytrace load` runs itself.
type ChildCommand func(ctx context.Context, mode Mode, otlpEndpoint string) *exec.Cmd

// Isolation is the result of CompareIsolated.
type Isolation struct {
	// Runs are the children's results in the order they ran, the modes
	// interleaved. For OTLP, Stored is the spans the receiver decoded,
	// ReceiverCPUPerSpan its CPU (in the parent, not in CPUPerSpan), and
	// BytesPerSpan the request bodies' bytes over Stored.
	Runs []Result `json:"runs"`
	// ChildCPUPerSpan holds, for each run, the child's CPU from its start
	// to its exit, as the parent's wait reports it, over its Produced:
	// CPUPerSpan with the process's start-up and exit added.
	ChildCPUPerSpan []time.Duration `json:"child_cpu_ns_per_span"`
	// Medians holds, per mode, the medians over its runs of CPU per span,
	// peak RSS and stored spans/s.
	Medians []IsolatedMedian `json:"medians"`
	// CPUVsOTLP is lonelytrace's median whole-process CPU per span over
	// OTLP's, ChildCPUVsOTLP the same from start to exit, PeakRSSOverOTLP
	// its median peak RSS less OTLP's, in bytes.
	CPUVsOTLP       float64 `json:"cpu_vs_otlp"`
	ChildCPUVsOTLP  float64 `json:"child_cpu_vs_otlp"`
	PeakRSSOverOTLP int64   `json:"peak_rss_over_otlp"`
}

// IsolatedMedian is one mode's medians over its isolated runs.
type IsolatedMedian struct {
	Mode       Mode          `json:"mode"`
	Runs       int           `json:"runs"`
	CPUPerSpan time.Duration `json:"cpu_ns_per_span"`
	// ChildCPUPerSpan is the median of Isolation.ChildCPUPerSpan.
	ChildCPUPerSpan time.Duration `json:"child_cpu_ns_per_span"`
	PeakRSS         int64         `json:"peak_rss"`
	StoredPerSec    float64       `json:"stored_per_s"`
}

// Median returns the medians of mode, and whether it ran.
func (c Isolation) Median(mode Mode) (IsolatedMedian, bool) {
	for _, m := range c.Medians {
		if m.Mode == mode {
			return m, true
		}
	}
	return IsolatedMedian{}, false
}

// CompareIsolated runs each of IsolatedModes runs times (values below 1
// mean DefaultIsolatedRuns), every run in a child process that command
// starts, alternating the modes and which of them goes first, one child
// at a time. The OTLP children send to a receiver in this process on
// 127.0.0.1 that decodes every request, so that a child's CPU and memory
// are the application's alone, as they are when the collector runs
// elsewhere. It checks that every OTLP child's count of spans delivered
// is the receiver's, and stops at the first child that fails, returning
// the runs so far.
func CompareIsolated(ctx context.Context, command ChildCommand, runs int) (Isolation, error) {
	if runs < 1 {
		runs = DefaultIsolatedRuns
	}
	var c Isolation
	rcv, err := newReceiver()
	if err != nil {
		return c, fmt.Errorf("isolated: receiver: %w", err)
	}
	defer rcv.close(context.WithoutCancel(ctx))
	for i := range runs {
		for k := range IsolatedModes {
			if ctx.Err() != nil {
				return c, ctx.Err()
			}
			mode := IsolatedModes[(i+k)%len(IsolatedModes)]
			r, whole, err := runChild(ctx, command, mode, rcv)
			if err != nil {
				return c, fmt.Errorf("isolated: run %d of %s: %w", i+1, mode, err)
			}
			c.Runs, c.ChildCPUPerSpan = append(c.Runs, r), append(c.ChildCPUPerSpan, whole)
		}
	}
	for _, m := range IsolatedModes {
		var cpu, whole, rss, stored []float64
		for i, r := range c.Runs {
			if r.Mode == m {
				cpu, whole = append(cpu, float64(r.CPUPerSpan)), append(whole, float64(c.ChildCPUPerSpan[i]))
				rss, stored = append(rss, float64(r.PeakRSS)), append(stored, r.StoredPerSec)
			}
		}
		c.Medians = append(c.Medians, IsolatedMedian{Mode: m, Runs: len(cpu), CPUPerSpan: time.Duration(median(cpu)),
			ChildCPUPerSpan: time.Duration(median(whole)), PeakRSS: int64(median(rss)), StoredPerSec: median(stored)})
	}
	lt, _ := c.Median(Lonelytrace)
	if o, _ := c.Median(OTLP); o.CPUPerSpan > 0 {
		c.CPUVsOTLP = float64(lt.CPUPerSpan) / float64(o.CPUPerSpan)
		c.ChildCPUVsOTLP = float64(lt.ChildCPUPerSpan) / float64(o.ChildCPUPerSpan)
		c.PeakRSSOverOTLP = lt.PeakRSS - o.PeakRSS
	}
	return c, nil
}

// runChild runs one child and reads its result, and returns besides the
// child's CPU from start to exit over the spans it produced.
func runChild(ctx context.Context, command ChildCommand, mode Mode, rcv *receiver) (r Result, whole time.Duration, err error) {
	endpoint := ""
	if mode == OTLP {
		endpoint = rcv.url()
	}
	spans0, bytes0, cpu0 := rcv.spans.Load(), rcv.bytes.Load(), rcv.cpu.Load()
	cmd := command(ctx, mode, endpoint)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return r, 0, fmt.Errorf("child %s: %w: %s", cmd.Path, err, strings.TrimSpace(stderr.String()))
	}
	if err := json.Unmarshal(stdout.Bytes(), &r); err != nil {
		return r, 0, fmt.Errorf("child %s: its result: %w (it printed %q)", cmd.Path, err, truncate(stdout.String(), 200))
	}
	if r.Mode != mode {
		return r, 0, fmt.Errorf("child ran %q; want %q", r.Mode, mode)
	}
	if r.Produced > 0 {
		whole = (cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()) / time.Duration(r.Produced)
	}
	if mode != OTLP {
		return r, whole, nil
	}
	received := rcv.spans.Load() - spans0
	if received != r.Stored {
		return r, whole, fmt.Errorf("the child delivered %d spans; the receiver decoded %d", r.Stored, received)
	}
	if received > 0 {
		r.BytesPerSpan = float64(rcv.bytes.Load()-bytes0) / float64(received)
	}
	if r.Produced > 0 {
		r.ReceiverCPUPerSpan = time.Duration(rcv.cpu.Load()-cpu0) / time.Duration(r.Produced)
	}
	return r, whole, nil
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
