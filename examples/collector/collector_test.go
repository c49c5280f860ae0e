package collector_test

import (
	"bufio"
	"context"
	"database/sql"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	_ "modernc.org/sqlite"
)

// bin holds the programs the tests run, built once by TestMain.
var bin struct {
	dir, jaeger, pubsub, lonelytrace string
}

// TestMain builds Jaeger (the Go tool of this module; $JAEGER_BIN names a
// binary already built), the demo and the lonelytrace command (in the main
// module, as users build them).
func TestMain(m *testing.M) {
	flag.Parse()
	if testing.Short() {
		os.Exit(m.Run())
	}
	dir, err := os.MkdirTemp("", "lonelytrace-collector")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	bin.dir = dir
	bin.jaeger = os.Getenv("JAEGER_BIN")
	bin.pubsub = filepath.Join(dir, "pubsub")
	bin.lonelytrace = filepath.Join(dir, "lonelytrace")
	builds := [][]string{
		{"..", "..", "build", "-o", bin.pubsub, "./examples/pubsub"},
		{"..", "..", "build", "-o", bin.lonelytrace, "./cmd/lonelytrace"},
	}
	if bin.jaeger == "" {
		bin.jaeger = filepath.Join(dir, "jaeger")
		builds = append(builds, []string{".", "", "build", "-o", bin.jaeger, "github.com/jaegertracing/jaeger/cmd/jaeger"})
	}
	for _, b := range builds {
		start := time.Now()
		cmd := exec.Command("go", b[2:]...)
		cmd.Dir = filepath.Join(b[0], b[1])
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			fmt.Fprintf(os.Stderr, "go %s: %v\n", strings.Join(b[2:], " "), err)
			os.RemoveAll(dir)
			os.Exit(1)
		}
		fmt.Fprintf(os.Stderr, "built %s in %s\n", filepath.Base(b[len(b)-1]), time.Since(start).Round(time.Second))
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// jaeger is a running Jaeger all-in-one with in-memory storage, every port
// on 127.0.0.1 and free.
type jaeger struct {
	otlpHTTP, query, metrics string // host:port
	queryGRPC                string // host:port of the api_v3 gRPC query service
	// stop stops Jaeger; the test's cleanup does too.
	stop func()
}

func freePort(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func startJaeger(t testing.TB, extra ...string) *jaeger {
	t.Helper()
	j := &jaeger{otlpHTTP: freePort(t), query: freePort(t), metrics: freePort(t), queryGRPC: freePort(t)}
	_, metricsPort, _ := net.SplitHostPort(j.metrics)
	cmd := exec.Command(bin.jaeger, append([]string{
		// The all-in-one configuration, kept on loopback: the query
		// endpoints listen on every interface unless told otherwise, the
		// rest on ${JAEGER_LISTEN_HOST}. Only what the tests use runs.
		"--set=extensions.jaeger_query.http.endpoint=" + j.query,
		"--set=extensions.jaeger_query.grpc.endpoint=" + j.queryGRPC,
		"--set=receivers.otlp.protocols.http.endpoint=" + j.otlpHTTP,
		"--set=receivers.otlp.protocols.grpc.endpoint=" + freePort(t),
		"--set=service.telemetry.metrics.readers=[{pull: {exporter: {prometheus: {host: 127.0.0.1, port: " + metricsPort + "}}}}]",
		"--set=service.extensions=[jaeger_storage, jaeger_query]",
		"--set=service.pipelines.traces.receivers=[otlp]",
	}, extra...)...)
	cmd.Env = append(os.Environ(), "JAEGER_LISTEN_HOST=127.0.0.1")
	logf, err := os.Create(filepath.Join(t.TempDir(), "jaeger.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	j.stop = sync.OnceFunc(func() {
		// Jaeger takes some 10 s to stop gracefully, and its memory holds
		// nothing worth keeping after a test.
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-done:
		case <-time.After(time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	t.Cleanup(func() {
		j.stop()
		logf.Close()
		if t.Failed() {
			data, _ := os.ReadFile(logf.Name())
			t.Logf("jaeger log:\n%s", data)
		}
	})
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get("http://" + j.query + "/api/services")
		if err == nil {
			resp.Body.Close()
			if c, err := net.Dial("tcp", j.otlpHTTP); err == nil && resp.StatusCode == http.StatusOK {
				c.Close()
				return j
			}
		}
		select {
		case <-done:
			data, _ := os.ReadFile(logf.Name())
			t.Fatalf("jaeger exited:\n%s", data)
		case <-time.After(200 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatal("jaeger not ready within 60 s")
		}
	}
}

// The Jaeger query API's JSON, as much as the tests read.
type (
	jTrace struct {
		TraceID   string              `json:"traceID"`
		Spans     []jSpan             `json:"spans"`
		Processes map[string]jProcess `json:"processes"`
	}
	jSpan struct {
		TraceID       string `json:"traceID"`
		SpanID        string `json:"spanID"`
		OperationName string `json:"operationName"`
		References    []struct {
			RefType, TraceID, SpanID string
		} `json:"references"`
		StartTime int64  `json:"startTime"` // µs
		Duration  int64  `json:"duration"`  // µs
		Tags      []jTag `json:"tags"`
		ProcessID string `json:"processID"`
	}
	jTag struct {
		Key   string `json:"key"`
		Type  string `json:"type"`
		Value any    `json:"value"`
	}
	jProcess struct {
		ServiceName string `json:"serviceName"`
	}
)

// span is one span as Jaeger or a file holds it, in common terms.
type span struct {
	traceID, spanID, parentID string
	name, service             string
	startUS                   int64
	tags                      map[string]string
}

func (j *jaeger) get(t *testing.T, path string, v any) {
	t.Helper()
	resp, err := http.Get("http://" + j.query + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("GET %s: %s: %s", path, resp.Status, b)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
}

// spans returns every span Jaeger holds, by span id, found through the
// traces of each service, with how many traces each service has.
func (j *jaeger) spans(t *testing.T, since time.Time) (map[string]span, map[string]int) {
	t.Helper()
	var services struct{ Data []string }
	j.get(t, "/api/services", &services)
	all := map[string]span{}
	traces := map[string]int{}
	for _, svc := range services.Data {
		q := url.Values{
			"service": {svc},
			"limit":   {"100000"},
			"start":   {strconv.FormatInt(since.Add(-time.Minute).UnixMicro(), 10)},
			"end":     {strconv.FormatInt(time.Now().Add(time.Minute).UnixMicro(), 10)},
		}
		var res struct{ Data []jTrace }
		j.get(t, "/api/traces?"+q.Encode(), &res)
		traces[svc] = len(res.Data)
		for _, tr := range res.Data {
			for _, s := range tr.Spans {
				sp := span{
					traceID: pad(s.TraceID, 32), spanID: pad(s.SpanID, 16),
					name: s.OperationName, service: tr.Processes[s.ProcessID].ServiceName,
					startUS: s.StartTime, tags: map[string]string{},
				}
				for _, r := range s.References {
					if r.RefType == "CHILD_OF" && pad(r.TraceID, 32) == sp.traceID {
						sp.parentID = pad(r.SpanID, 16)
					}
				}
				for _, tag := range s.Tags {
					sp.tags[tag.Key] = fmt.Sprint(tag.Value)
				}
				all[sp.spanID] = sp
			}
		}
	}
	return all, traces
}

func pad(id string, n int) string {
	return strings.Repeat("0", max(0, n-len(id))) + id
}

// acceptedSpans reads otelcol_receiver_accepted_spans from Jaeger's
// metrics, summed over its labels.
func (j *jaeger) acceptedSpans(t *testing.T) int64 {
	t.Helper()
	resp, err := http.Get("http://" + j.metrics + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var n float64
	found := false
	s := bufio.NewScanner(resp.Body)
	for s.Scan() {
		line := s.Text()
		if !strings.HasPrefix(line, "otelcol_receiver_accepted_spans") {
			continue
		}
		f := strings.Fields(line)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err != nil {
			t.Fatalf("metric line %q: %v", line, err)
		}
		n += v
		found = true
	}
	if !found {
		t.Fatal("no otelcol_receiver_accepted_spans in Jaeger's metrics")
	}
	return int64(n)
}

// fileSpans reads every span of the trace files in dir through the
// documented spans_view, by span id, and the number of rows read (more
// than the spans when a span is in several files).
func fileSpans(t *testing.T, dir string) (map[string]span, int) {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(dir, "*.db"))
	if len(files) == 0 {
		t.Fatalf("no trace files in %s", dir)
	}
	all := map[string]span{}
	rows := 0
	for _, f := range files {
		db, err := sql.Open("sqlite", "file:"+f+"?mode=ro")
		if err != nil {
			t.Fatal(err)
		}
		r, err := db.Query(`SELECT trace_id, span_id, coalesce(parent_span_id, ''), name, coalesce(service_name, ''), start_ns, attributes FROM spans_view`)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		for r.Next() {
			var s span
			var startNS int64
			var attrs string
			if err := r.Scan(&s.traceID, &s.spanID, &s.parentID, &s.name, &s.service, &startNS, &attrs); err != nil {
				t.Fatal(err)
			}
			s.startUS = startNS / 1000
			var m map[string]any
			if err := json.Unmarshal([]byte(attrs), &m); err != nil {
				t.Fatalf("%s: attributes %q: %v", f, attrs, err)
			}
			s.tags = map[string]string{}
			for k, v := range m {
				s.tags[k] = fmt.Sprint(v)
			}
			rows++
			all[s.spanID] = s
		}
		if err := r.Err(); err != nil {
			t.Fatal(err)
		}
		r.Close()
		db.Close()
	}
	return all, rows
}

// runDemo runs the demo for a few seconds with env and returns its output.
func runDemo(t *testing.T, out string, env []string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin.pubsub, append([]string{"-duration", "4s", "-rate", "30", "-out", out, "-no-serve"}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	data, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("demo: %v\n%s", err, data)
	}
	return string(data)
}

var (
	subscribers  = []string{"subscriber-1-stateful", "subscriber-2-flaky", "subscriber-3", "subscriber-4"}
	broadcasters = []string{"broadcaster-1", "broadcaster-2"}
)

// checkDemoTrace asserts what every run of the demo must show in Jaeger:
// each service's traces, the names and attributes of the operations, and
// parents across processes.
func checkDemoTrace(t *testing.T, spans map[string]span, traces map[string]int) {
	t.Helper()
	for _, svc := range append(slices.Clone(subscribers), broadcasters...) {
		if traces[svc] == 0 {
			t.Errorf("no traces of service %s in Jaeger (services: %v)", svc, traces)
		}
	}
	names := map[string]map[string]bool{}
	for _, s := range spans {
		if names[s.service] == nil {
			names[s.service] = map[string]bool{}
		}
		names[s.service][s.name] = true
	}
	for _, svc := range subscribers {
		want := []string{"notify", "hash", "send request", "response received", "receive", "verify", "handle",
			"subscribe_exact", "subscribe_glob", "unsubscribe_exact", "unsubscribe_glob", "set_subscriptions"}
		if svc == "subscriber-2-flaky" {
			want = append(want, "missed")
		}
		for _, n := range want {
			if !names[svc][n] {
				t.Errorf("%s has no span named %q", svc, n)
			}
		}
	}
	for _, svc := range broadcasters {
		for _, n := range []string{"POST /v1/notify", "ws notify", "auth", "find subscribers", "send receive", "receive confirmed"} {
			if !names[svc][n] {
				t.Errorf("%s has no span named %q", svc, n)
			}
		}
	}

	var notifies, underSend, underSendReceive, missedUnderSend int
	for _, s := range spans {
		if s.name == "notify" {
			notifies++
			for _, k := range []string{"messaging.operation.name", "messaging.destination.name", "messaging.message.body.size", "lonelytrace.broadcaster", "lonelytrace.stateful"} {
				if s.tags[k] == "" {
					t.Errorf("notify span %s lacks attribute %s (has %v)", s.spanID, k, s.tags)
				}
			}
		}
		p, ok := spans[s.parentID]
		if !ok {
			continue
		}
		switch {
		case strings.HasPrefix(s.service, "broadcaster") && strings.HasPrefix(p.service, "subscriber") && p.name == "send request":
			underSend++
		case s.name == "receive" && strings.HasPrefix(p.service, "broadcaster") && p.name == "send receive":
			underSendReceive++
		case s.name == "missed" && strings.HasPrefix(p.service, "broadcaster") && p.name == "send missed":
			missedUnderSend++
		}
	}
	if notifies == 0 || underSend == 0 || underSendReceive == 0 || missedUnderSend == 0 {
		t.Errorf("%d notifies; parents across processes: %d broadcaster spans under a subscriber's send request, %d receives under a broadcaster's send receive, %d missed under send missed; want all > 0",
			notifies, underSend, underSendReceive, missedUnderSend)
	}
}

func TestDemo_OTLP(t *testing.T) {
	if testing.Short() {
		t.Skip("needs Jaeger")
	}
	j := startJaeger(t)
	out := t.TempDir()
	start := time.Now()
	printed := runDemo(t, out, []string{"OTEL_TRACES_EXPORTER=otlp", "OTEL_EXPORTER_OTLP_ENDPOINT=http://" + j.otlpHTTP})
	if files, _ := filepath.Glob(filepath.Join(out, "*.db")); len(files) != 0 {
		t.Errorf("OTEL_TRACES_EXPORTER=otlp wrote files %v", files)
	}
	if !strings.Contains(printed, "has no sqlite") {
		t.Errorf("demo did not say where the spans went:\n%s", printed)
	}
	spans, traces := waitSpans(t, j, start, 0)
	checkDemoTrace(t, spans, traces)
	if n := j.acceptedSpans(t); n != int64(len(spans)) {
		t.Errorf("otelcol_receiver_accepted_spans = %d; want %d, the spans Jaeger holds", n, len(spans))
	}
	t.Logf("otlp: %d spans in Jaeger over %d services", len(spans), len(traces))
}

func TestDemo_SQLiteAndOTLP(t *testing.T) {
	if testing.Short() {
		t.Skip("needs Jaeger")
	}
	j := startJaeger(t)
	out := t.TempDir()
	start := time.Now()
	runDemo(t, out, []string{"OTEL_TRACES_EXPORTER=sqlite,otlp", "OTEL_EXPORTER_OTLP_ENDPOINT=http://" + j.otlpHTTP}, "-broadcaster-files")
	files, rows := fileSpans(t, out)
	spans, traces := waitSpans(t, j, start, len(files))
	checkDemoTrace(t, spans, traces)
	sameIDs(t, files, spans)
	accepted := j.acceptedSpans(t)
	if accepted != int64(len(spans)) {
		t.Errorf("otelcol_receiver_accepted_spans = %d; want %d, the spans Jaeger holds", accepted, len(spans))
	}
	t.Logf("sqlite,otlp: %d rows in the files (%d distinct spans), %d spans in Jaeger, %d accepted", rows, len(files), len(spans), accepted)
}

func TestReplay(t *testing.T) {
	if testing.Short() {
		t.Skip("needs Jaeger")
	}
	out := t.TempDir()
	runDemo(t, out, nil) // sqlite only: the broadcasters' spans ride home
	files, rows := fileSpans(t, out)
	paths, _ := filepath.Glob(filepath.Join(out, "*.db"))

	j := startJaeger(t)
	start := time.Now()
	cmd := exec.Command(bin.lonelytrace, append([]string{"replay", "-endpoint", "http://" + j.otlpHTTP}, paths...)...)
	printed, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("replay: %v\n%s", err, printed)
	}
	if want := fmt.Sprintf("sent %d spans from %d of %d files", len(files), len(paths), len(paths)); !strings.Contains(string(printed), want) {
		t.Errorf("replay output lacks %q:\n%s", want, printed)
	}
	spans, _ := waitSpans(t, j, start.Add(-time.Hour), len(files))
	sameIDs(t, files, spans)
	for id, f := range files {
		g, ok := spans[id]
		if !ok {
			continue
		}
		if g.name != f.name || g.service != f.service || g.startUS != f.startUS || g.parentID != f.parentID || g.traceID != f.traceID {
			t.Errorf("span %s: Jaeger has %s/%q start %d parent %s trace %s; file has %s/%q start %d parent %s trace %s",
				id, g.service, g.name, g.startUS, g.parentID, g.traceID, f.service, f.name, f.startUS, f.parentID, f.traceID)
		}
		for _, k := range []string{"messaging.operation.name", "messaging.destination.name", "messaging.message.body.size", "lonelytrace.subscribers"} {
			if f.tags[k] != g.tags[k] {
				t.Errorf("span %s attribute %s = %q in Jaeger; %q in the file", id, k, g.tags[k], f.tags[k])
			}
		}
	}
	if n := j.acceptedSpans(t); n != int64(len(files)) {
		t.Errorf("otelcol_receiver_accepted_spans = %d; want %d", n, len(files))
	}
	t.Logf("replay: %d rows in %d files (%d distinct spans), %d spans in Jaeger", rows, len(paths), len(files), len(spans))
}

// waitSpans polls Jaeger until it holds at least want spans (any when want
// is 0) and the count has stopped growing.
func waitSpans(t *testing.T, j *jaeger, since time.Time, want int) (map[string]span, map[string]int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	last := -1
	for {
		spans, traces := j.spans(t, since)
		if len(spans) > 0 && len(spans) >= want && len(spans) == last {
			return spans, traces
		}
		if time.Now().After(deadline) {
			return spans, traces
		}
		last = len(spans)
		time.Sleep(time.Second)
	}
}

func sameIDs(t *testing.T, files, jaeger map[string]span) {
	t.Helper()
	var onlyFiles, onlyJaeger []string
	for id, s := range files {
		if _, ok := jaeger[id]; !ok {
			onlyFiles = append(onlyFiles, s.service+"/"+s.name)
		}
	}
	for id, s := range jaeger {
		if _, ok := files[id]; !ok {
			onlyJaeger = append(onlyJaeger, s.service+"/"+s.name)
		}
	}
	if len(onlyFiles) > 0 || len(onlyJaeger) > 0 {
		t.Errorf("span ids differ: %d only in the files (e.g. %v), %d only in Jaeger (e.g. %v); %d in the files, %d in Jaeger",
			len(onlyFiles), first(onlyFiles), len(onlyJaeger), first(onlyJaeger), len(files), len(jaeger))
	}
}

func first(s []string) []string {
	slices.Sort(s)
	return s[:min(len(s), 5)]
}
