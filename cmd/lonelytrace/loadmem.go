package main

import (
	"fmt"
	"io"
	"os"
	"runtime/metrics"
	"runtime/pprof"

	"github.com/lonelytrace/lonelytrace/internal/load"
)

// memPeak keeps, for load -memprofile, a heap profile and the Go runtime's
// memory figures taken when the resident set was at its highest sample.
// The resident set less what the Go runtime has mapped and not released is
// the rest: the binary's text and data, and SQLite's memory, which
// modernc.org/libc takes outside the Go heap.
type memPeak struct {
	path    string
	mode    load.Mode
	rss     int64
	figures []metrics.Sample
	err     error
}

// memMetrics are the runtime/metrics the peak is described by, in the
// order report prints them.
var memMetrics = []string{
	"/memory/classes/total:bytes",
	"/memory/classes/heap/released:bytes",
	"/memory/classes/heap/objects:bytes",
	"/gc/heap/live:bytes",
	"/memory/classes/heap/unused:bytes",
	"/memory/classes/heap/free:bytes",
	"/memory/classes/heap/stacks:bytes",
}

// sample takes the figures and a heap profile when p.RSS is a new high.
// A nil memPeak does nothing.
func (m *memPeak) sample(p load.Progress) {
	if m == nil || p.RSS <= m.rss {
		return
	}
	m.rss, m.mode = p.RSS, p.Mode
	m.figures = make([]metrics.Sample, len(memMetrics))
	for i, name := range memMetrics {
		m.figures[i].Name = name
	}
	metrics.Read(m.figures)
	f, err := os.Create(m.path)
	if err != nil {
		m.err = err
		return
	}
	if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
		m.err = err
	}
	if err := f.Close(); err != nil && m.err == nil {
		m.err = err
	}
}

func (m *memPeak) report(w io.Writer) {
	if m.err != nil {
		fmt.Fprintf(w, "memprofile: %v\n", m.err)
		return
	}
	if m.figures == nil {
		return
	}
	v := func(i int) int64 { return int64(m.figures[i].Value.Uint64()) }
	goMapped := v(0) - v(1)
	fmt.Fprintf(w, "\nmemory at the highest RSS sample (%s, %s; heap profile in %s):\n", m.mode, mib(m.rss), m.path)
	fmt.Fprintf(w, "  Go runtime, mapped less released  %s\n", mib(goMapped))
	fmt.Fprintf(w, "    heap objects                     %s (live after the last collection %s)\n", mib(v(2)), mib(v(3)))
	fmt.Fprintf(w, "    heap free, unused                %s, %s\n", mib(v(5)), mib(v(4)))
	fmt.Fprintf(w, "    stacks                           %s\n", mib(v(6)))
	fmt.Fprintf(w, "  the rest (binary, SQLite's memory) %s\n", mib(m.rss-goMapped))
}
