package viewer_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/lonelytrace/lonelytrace/viewer"
)

// The scale benchmarks run the viewer in a child process, this test
// binary started again with envScaleChild set to the trace file, so that
// its peak resident set (VmHWM: heap, stacks and the mapped pages of the
// file alike) is the viewer's alone, and so that "cold" is a fresh
// process: nothing kept from an earlier request. The files are the
// fixtures of fixture_test.go, named by LONELYTRACE_BENCH_FILE (and
// LONELYTRACE_BENCH_FILE_1M for the smaller one, LONELYTRACE_BENCH_FILE_SMALL
// for one written in small transactions, as at a low rate); without them
// the benchmarks skip, so that CI stays fast.
//
//	LONELYTRACE_BENCH_FILE=/work/fixtures/10m/lonelytrace.db \
//		go test -run '^$' -bench Scale -benchtime 3x ./viewer

// envScaleChild names the trace file the child serves.
const envScaleChild = "LONELYTRACE_SCALE_CHILD"

// scaleChild serves the file named by envScaleChild on a loopback port,
// prints the port, and exits when its standard input closes. The clock
// is the fixtures' end.
func scaleChild(path string) {
	v, err := viewer.Open(path)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	viewer.SetClock(v, func() time.Time { return fixtureEnd })
	e := echo.New()
	v.Register(e.Group("/stats"))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	go http.Serve(ln, e)
	fmt.Printf("port %d\n", ln.Addr().(*net.TCPAddr).Port)
	bufio.NewReader(os.Stdin).ReadString('\n')
	os.Exit(0)
}

// child is a viewer process.
type child struct {
	cmd  *exec.Cmd
	base string
	stop func()
}

func startChild(b *testing.B, path string) *child {
	b.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), envScaleChild+"="+path)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		cmd.Process.Kill()
		b.Fatalf("viewer child: %v", err)
	}
	port := strings.TrimSpace(strings.TrimPrefix(line, "port "))
	return &child{cmd: cmd, base: "http://127.0.0.1:" + port + "/stats", stop: func() {
		stdin.Close()
		cmd.Wait()
	}}
}

// peakRSS reads the child's VmHWM in bytes.
func (c *child) peakRSS(b *testing.B) int64 {
	b.Helper()
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", c.cmd.Process.Pid))
	if err != nil {
		b.Skipf("no /proc: %v", err)
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			if err != nil {
				b.Fatalf("VmHWM %q: %v", rest, err)
			}
			return kb << 10
		}
	}
	b.Fatal("no VmHWM in /proc/pid/status")
	return 0
}

// cpuTime reads the child's user and system CPU time so far, in clock
// ticks of 10 ms: on a machine that other work keeps busy, the CPU a
// request costs says more than its wall time.
func (c *child) cpuTime(b *testing.B) time.Duration {
	b.Helper()
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", c.cmd.Process.Pid))
	if err != nil {
		b.Skipf("no /proc: %v", err)
	}
	// The command name, in parentheses, may hold spaces: fields count
	// from the last ')'.
	f := strings.Fields(string(raw[strings.LastIndexByte(string(raw), ')')+1:]))
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		b.Fatalf("/proc/%d/stat: %q", c.cmd.Process.Pid, raw)
	}
	return time.Duration(utime+stime) * 10 * time.Millisecond
}

// timeGet fetches path and returns how long it took, failing on any
// status but 200.
func timeGet(b *testing.B, base, path string, params url.Values) time.Duration {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+path+"?"+params.Encode(), nil)
	t0 := time.Now()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	var body strings.Builder
	_, err = bufio.NewReader(resp.Body).WriteTo(&body)
	resp.Body.Close()
	d := time.Since(t0)
	if err != nil || resp.StatusCode != http.StatusOK {
		b.Fatalf("GET %s: %d %v: %.300s", path, resp.StatusCode, err, body.String())
	}
	return d
}

// scaleWarm is how many requests after the first are timed in each
// process.
const scaleWarm = 5

// BenchmarkScale times each endpoint over the big fixtures since the
// beginning: the first request of a fresh viewer process (cold) and the
// median of the scaleWarm after it (warm), and reports the process's peak
// resident set after them all. One iteration is one process.
func BenchmarkScale(b *testing.B) {
	type file struct{ name, env string }
	endpoints := []struct {
		name, path string
		params     url.Values
	}{
		{"summary", "/api/summary", url.Values{"since": {"beginning"}}},
		{"summary-24h", "/api/summary", url.Values{"since": {"24h-ago"}}},
		{"series", "/api/series", url.Values{"since": {"beginning"}}},
		{"breakdown-topic", "/api/breakdown", url.Values{"since": {"beginning"}, "by": {"topic"}}},
		{"map", "/api/map", url.Values{"since": {"beginning"}}},
		{"page", "/", url.Values{"since": {"beginning"}}},
	}
	files := []file{{"10m", "LONELYTRACE_BENCH_FILE"}, {"1m", "LONELYTRACE_BENCH_FILE_1M"}, {"small-batches", "LONELYTRACE_BENCH_FILE_SMALL"}}
	for _, f := range files {
		for _, ep := range endpoints {
			b.Run(fmt.Sprintf("file=%s/%s", f.name, ep.name), func(b *testing.B) {
				path := os.Getenv(f.env)
				if path == "" {
					b.Skipf("%s is not set", f.env)
				}
				spans := fileSpans(b, path)
				var cold, warm, coldCPU, warmCPU []time.Duration
				var peak int64
				for b.Loop() {
					c := startChild(b, path)
					cpu0 := c.cpuTime(b)
					cold = append(cold, timeGet(b, c.base, ep.path, ep.params))
					cpu1 := c.cpuTime(b)
					coldCPU = append(coldCPU, cpu1-cpu0)
					var w []time.Duration
					for range scaleWarm {
						w = append(w, timeGet(b, c.base, ep.path, ep.params))
					}
					warmCPU = append(warmCPU, (c.cpuTime(b)-cpu1)/scaleWarm)
					slices.Sort(w)
					warm = append(warm, w[len(w)/2])
					peak = max(peak, c.peakRSS(b))
					c.stop()
				}
				for _, d := range [][]time.Duration{cold, warm, coldCPU, warmCPU} {
					slices.Sort(d)
				}
				coldMed, warmMed := cold[len(cold)/2], warm[len(warm)/2]
				b.ReportMetric(float64(coldCPU[len(coldCPU)/2].Milliseconds()), "cold-cpu-ms")
				b.ReportMetric(float64(warmCPU[len(warmCPU)/2].Milliseconds()), "warm-cpu-ms")
				b.ReportMetric(float64(coldMed.Microseconds())/1000, "cold-ms")
				b.ReportMetric(float64(warmMed.Microseconds())/1000, "warm-ms")
				b.ReportMetric(float64(peak)/(1<<20), "peak-RSS-MiB")
				b.ReportMetric(float64(coldMed.Nanoseconds())/float64(spans), "cold-ns/span")
				b.ReportMetric(float64(warmMed.Nanoseconds())/float64(spans), "warm-ns/span")
				b.ReportMetric(0, "ns/op")
			})
		}
	}
}

// fileSpans counts the spans of the trace file at path, from its
// summary's file totals.
func fileSpans(b *testing.B, path string) int64 {
	b.Helper()
	v, err := viewer.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	defer v.Close()
	s, err := v.Summary(context.Background(), viewer.QueryOf(b, v, url.Values{"since": {"24h-ago"}}))
	if err != nil {
		b.Fatal(err)
	}
	return s.Files[0].Spans
}
