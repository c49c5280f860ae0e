package otlp_test

import (
	"bufio"
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/lonelytrace/lonelytrace/internal/otlp"
	"github.com/lonelytrace/lonelytrace/schema"
)

// benchSpans is the size of the file the export and import benchmarks
// use: large enough that per-file costs vanish, small enough for go test.
// The 1M-span figures with peak RSS come from the CLI (docs/performance.md).
const benchSpans = 200_000

var benchFormats = []struct {
	format otlp.Format
	ext    string
}{{otlp.FormatJSON, ".json"}, {otlp.FormatJSONL, ".jsonl"}, {otlp.FormatProto, ".pb"}}

// benchFile returns a trace file of benchSpans spans in traces of 5.
func benchFile(b *testing.B) string {
	b.Helper()
	dir := b.TempDir()
	in := filepath.Join(dir, "spans.jsonl")
	writeJSONL(b, in, benchSpans)
	path := filepath.Join(dir, "traces.db")
	if stored, _, _ := importFiles(b, path, in); stored != benchSpans {
		b.Fatalf("stored = %d; want %d", stored, benchSpans)
	}
	return path
}

// exportTo writes the whole of the trace file src to path in format.
func exportTo(b *testing.B, src, path string, format otlp.Format) int {
	b.Helper()
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	bw := bufio.NewWriterSize(f, 1<<20)
	w := otlp.NewWriter(bw, format)
	_, spans, err := otlp.Export(context.Background(), []string{src}, schema.TraceSelection{SinceBeginning: true, Until: math.MaxInt64}, w)
	if err == nil {
		err = w.Close()
	}
	if err == nil {
		err = bw.Flush()
	}
	if err != nil {
		b.Fatal(err)
	}
	return spans
}

// BenchmarkExport writes a file of 200,000 spans in each format, as
// `lonelytrace export` does: spans/s written and the process's CPU time
// per span.
func BenchmarkExport(b *testing.B) {
	src := benchFile(b)
	for _, f := range benchFormats {
		b.Run(string(f.format), func(b *testing.B) {
			out := filepath.Join(b.TempDir(), "out"+f.ext)
			cpu0 := cpuTime()
			for range b.N {
				if n := exportTo(b, src, out, f.format); n != benchSpans {
					b.Fatalf("exported %d spans; want %d", n, benchSpans)
				}
			}
			b.ReportMetric(float64(benchSpans)*float64(b.N)/b.Elapsed().Seconds(), "spans/s")
			b.ReportMetric(float64(cpuTime()-cpu0)/float64(benchSpans*b.N), "cpu-ns/span")
		})
	}
}

// BenchmarkImport imports the export of a 200,000-span file in each
// format into a new trace file, as `lonelytrace import` does.
func BenchmarkImport(b *testing.B) {
	src := benchFile(b)
	for _, f := range benchFormats {
		b.Run(string(f.format), func(b *testing.B) {
			in := filepath.Join(b.TempDir(), "in"+f.ext)
			exportTo(b, src, in, f.format)
			b.ResetTimer()
			cpu0 := cpuTime()
			for i := range b.N {
				path := filepath.Join(b.TempDir(), fmt.Sprintf("import%d.db", i))
				if stored, _, _ := importFiles(b, path, in); stored != benchSpans {
					b.Fatalf("stored = %d; want %d", stored, benchSpans)
				}
			}
			b.ReportMetric(float64(benchSpans)*float64(b.N)/b.Elapsed().Seconds(), "spans/s")
			b.ReportMetric(float64(cpuTime()-cpu0)/float64(benchSpans*b.N), "cpu-ns/span")
		})
	}
}
