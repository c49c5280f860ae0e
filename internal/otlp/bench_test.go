package otlp_test

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
)

// writeJSONL writes n spans as an OTLP/JSON lines file of 1,000 spans a
// line: traces of 5 spans, a notify and its phases, with the attributes
// a pub/sub instrumentation sets.
func writeJSONL(tb testing.TB, path string, n int) {
	tb.Helper()
	f, err := os.Create(path)
	if err != nil {
		tb.Fatal(err)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	base := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	for done := 0; done < n; {
		td := ptrace.NewTraces()
		ss := pubsubScopeSpans(td)
		for range min(1000, n-done) {
			start := pcommon.NewTimestampFromTime(base.Add(time.Duration(done) * time.Millisecond))
			pubsubSpan(ss.Spans().AppendEmpty(), done, start, "b-1")
			done++
		}
		b, err := ptraceotlp.NewExportRequestFromTraces(td).MarshalJSON()
		if err != nil {
			tb.Fatal(err)
		}
		w.Write(append(b, '\n'))
	}
	if err := w.Flush(); err != nil {
		tb.Fatal(err)
	}
	f.Close()
}

// BenchmarkImport_JSONL1M imports a 1,000,000-span OTLP/JSON lines file
// into a new trace file, as `lonelytrace import` does. cpu-ns/span is the
// process's CPU time per span, all goroutines (the writer's included):
// steadier than spans/s on a busy machine.
func BenchmarkImport_JSONL1M(b *testing.B) {
	const n = 1_000_000
	in := filepath.Join(b.TempDir(), "spans.jsonl")
	writeJSONL(b, in, n)
	b.ResetTimer()
	var cpu int64
	for i := range b.N {
		b.StopTimer()
		path := filepath.Join(b.TempDir(), fmt.Sprintf("import%d.db", i))
		b.StartTimer()
		cpu0 := cpuTime()
		stored, _, _ := importFiles(b, path, in)
		cpu += cpuTime() - cpu0
		if stored != n {
			b.Fatalf("stored = %d; want %d", stored, n)
		}
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "spans/s")
	b.ReportMetric(float64(cpu)/float64(n*b.N), "cpu-ns/span")
}

// BenchmarkImportAgain_JSONL1M imports the 1,000,000 spans of
// BenchmarkImport_JSONL1M a second time into the file that holds them:
// every span is looked up and skipped.
func BenchmarkImportAgain_JSONL1M(b *testing.B) {
	const n = 1_000_000
	in := filepath.Join(b.TempDir(), "spans.jsonl")
	writeJSONL(b, in, n)
	path := filepath.Join(b.TempDir(), "import.db")
	importFiles(b, path, in)
	b.ResetTimer()
	cpu0 := cpuTime()
	for range b.N {
		stored, dups, _ := importFiles(b, path, in)
		if stored != 0 || dups != n {
			b.Fatalf("stored = %d, duplicates = %d; want 0, %d", stored, dups, n)
		}
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "spans/s")
	b.ReportMetric(float64(cpuTime()-cpu0)/float64(n*b.N), "cpu-ns/span")
}

func cpuTime() int64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return ru.Utime.Nano() + ru.Stime.Nano()
}
