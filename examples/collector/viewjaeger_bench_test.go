package collector_test

import (
	"bufio"
	"context"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// badgerFlags are the flags that make the all-in-one store in Badger
// under dir instead of memory.
func badgerFlags(dir string) []string {
	return []string{
		"--set=extensions.jaeger_storage.backends.badger_store.badger.directories.keys=" + filepath.Join(dir, "keys"),
		"--set=extensions.jaeger_storage.backends.badger_store.badger.directories.values=" + filepath.Join(dir, "values"),
		"--set=extensions.jaeger_storage.backends.badger_store.badger.ephemeral=false",
		"--set=extensions.jaeger_query.storage.traces=badger_store",
		"--set=exporters.jaeger_storage_exporter.trace_storage=badger_store",
	}
}

var fetchedLine = regexp.MustCompile(`fetched (\d+) traces \((\d+) spans\)`)

// BenchmarkViewJaeger measures `view -jaeger` from its start to the
// printed address (the fetch of the window into its file) over 10,000
// traces of `lonelytrace load` replayed into Jaeger's memory and Badger
// stores, in traces and spans per second.
//
//	cd examples/collector && JAEGER_BIN=/path/to/jaeger go test -run '^$' -bench ViewJaeger -benchtime 3x
func BenchmarkViewJaeger(b *testing.B) {
	if testing.Short() {
		b.Skip("needs Jaeger")
	}
	data := b.TempDir()
	for _, args := range [][]string{
		{"load", "-spans", "48000", "-duration", "0", "-out", data},
	} {
		if out, err := exec.Command(bin.lonelytrace, args...).CombinedOutput(); err != nil {
			b.Fatalf("lonelytrace %v: %v\n%s", args, err, out)
		}
	}
	for _, store := range []string{"memory", "badger"} {
		b.Run(store, func(b *testing.B) {
			var extra []string
			if store == "badger" {
				extra = badgerFlags(b.TempDir())
			}
			j := startJaeger(b, extra...)
			if out, err := exec.Command(bin.lonelytrace, "replay", "-endpoint", "http://"+j.otlpHTTP, filepath.Join(data, "lonelytrace.db")).CombinedOutput(); err != nil {
				b.Fatalf("replay: %v\n%s", err, out)
			}
			time.Sleep(2 * time.Second) // Jaeger's batch processor
			var traces, spans int
			dir := b.TempDir()
			for i := 0; b.Loop(); i++ {
				t, s := fetchOnce(b, j.queryGRPC, filepath.Join(dir, strconv.Itoa(i)+".db"))
				traces += t
				spans += s
			}
			sec := b.Elapsed().Seconds()
			b.ReportMetric(float64(traces)/sec, "traces/s")
			b.ReportMetric(float64(spans)/sec, "spans/s")
		})
	}
}

// fetchOnce runs view -jaeger until it prints its address, stops it,
// and returns the traces and spans it said it fetched.
func fetchOnce(b *testing.B, addr, file string) (traces, spans int) {
	b.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cmd := exec.CommandContext(ctx, bin.lonelytrace, "view", "-addr", "127.0.0.1:0", "-jaeger", addr, "-jaeger-window", "1h", "-jaeger-file", file)
	out, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() { cancel(); _ = cmd.Wait() }()
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		line := sc.Text()
		if m := fetchedLine.FindStringSubmatch(line); m != nil {
			traces, _ = strconv.Atoi(m[1])
			spans, _ = strconv.Atoi(m[2])
		}
		if strings.Contains(line, "http://") {
			if traces == 0 {
				b.Fatal("view -jaeger fetched no traces")
			}
			return traces, spans
		}
	}
	b.Fatalf("view -jaeger printed no address: %v", sc.Err())
	return 0, 0
}
