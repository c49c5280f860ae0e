package collector_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/url"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// startView runs `lonelytrace view` with args on a free loopback port
// and returns the viewer's URL (ending in /stats/) and all it printed
// before it.
func startView(t *testing.T, args ...string) (string, string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin.lonelytrace, append([]string{"view", "-addr", "127.0.0.1:0"}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		_ = cmd.Wait()
	})
	var printed strings.Builder
	r := bufio.NewReader(out)
	for {
		line, err := r.ReadString('\n')
		printed.WriteString(line)
		if i := strings.Index(line, "http://"); i >= 0 {
			go io.Copy(io.Discard, r)
			return strings.Fields(line[i:])[0], printed.String()
		}
		if err != nil {
			t.Fatalf("view %v printed no address: %v\n%s%s", args, err, printed.String(), stderr.String())
		}
	}
}

func getJSON(t *testing.T, u string) map[string]any {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s: %s", u, resp.Status, b)
	}
	var v map[string]any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("GET %s: %v: %s", u, err, b)
	}
	return v
}

// figures drops from a viewer's JSON what differs between two viewers
// of the same spans: the files (paths, sizes, retention), the moment of
// the request, and the coverage of a viewer over Jaeger (checked apart).
func figures(v any) any {
	switch v := v.(type) {
	case map[string]any:
		for _, k := range []string{"files", "now", "since_most_recent_ms", "coverage"} {
			delete(v, k)
		}
		for k, x := range v {
			v[k] = figures(x)
		}
	case []any:
		for i, x := range v {
			v[i] = figures(x)
		}
	}
	return v
}

// answers are the JSON answers compared figure for figure: every API,
// every breakdown, and trace searches of each kind.
var answers = []string{
	"summary", "map", "series", "series?step=1s",
	"breakdown?op=notify&by=broadcaster", "breakdown?op=notify&by=topic", "breakdown?op=notify&by=service", "breakdown?op=notify&by=subscribers",
	"breakdown?op=receive&by=broadcaster", "breakdown?op=receive&by=topic", "breakdown?op=receive&by=service",
	"traces?totals=1&limit=500", "traces?op=notify&status=error&totals=1", "traces?sort=slowest&limit=50&totals=1",
	"traces?op=receive&service=subscriber-2-flaky&totals=1", "traces?op=notify&min_ms=5&totals=1", "traces?name=handle&limit=100",
	"traces?topic=orders.created&totals=1",
}

// sameAnswers compares every answer of the viewer over Jaeger at uj with
// the viewer over files at uf for the window q, and checks that the
// former says its window is whole.
func sameAnswers(t *testing.T, uj, uf, q string) {
	t.Helper()
	for _, a := range answers {
		sep := "?"
		if strings.Contains(a, "?") {
			sep = "&"
		}
		j := getJSON(t, uj+"api/"+a+sep+q)
		if c, _ := j["coverage"].(map[string]any); c == nil || c["complete"] != true {
			t.Errorf("/api/%s over Jaeger: coverage %v; want complete", a, j["coverage"])
		}
		fromJaeger, _ := json.Marshal(figures(j))
		fromFiles, _ := json.Marshal(figures(getJSON(t, uf+"api/"+a+sep+q)))
		if !bytes.Equal(fromJaeger, fromFiles) {
			t.Errorf("/api/%s over Jaeger differs from over the files:\njaeger: %s\nfiles:  %s", a, fromJaeger, fromFiles)
		}
	}
}

// getPage returns the body of u and its status.
func getPage(t *testing.T, u string) (string, int) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b), resp.StatusCode
}

// dbs returns the trace files in dirs.
func dbs(dirs ...string) []string {
	var out []string
	for _, d := range dirs {
		all, _ := filepath.Glob(filepath.Join(d, "*.db"))
		out = append(out, all...)
	}
	return out
}

// TestViewJaeger fetches the demo's traces from a real Jaeger with
// `view -jaeger` and finds the very spans the demo's files hold, each
// once, and the same answers as `view` over those files, figure for
// figure; then what a second run adds, through a refresh.
func TestViewJaeger(t *testing.T) {
	if testing.Short() {
		t.Skip("needs Jaeger")
	}
	j := startJaeger(t)
	testViewJaeger(t, j)
}

// TestViewJaeger_Badger is TestViewJaeger over Jaeger's local durable
// store: the all-in-one's configuration with its storage a Badger
// store in a temporary directory instead of memory.
func TestViewJaeger_Badger(t *testing.T) {
	if testing.Short() {
		t.Skip("needs Jaeger")
	}
	dir := t.TempDir()
	j := startJaeger(t, badgerFlags(dir)...)
	testViewJaeger(t, j)
	if vlog, _ := filepath.Glob(filepath.Join(dir, "values", "*.vlog")); len(vlog) == 0 {
		t.Errorf("no Badger value log in %s: Jaeger did not store in Badger", dir)
	}
}

// TestViewJaeger_Gone stops Jaeger under a running viewer: the API
// answers 502 naming Jaeger, and the page shows the error on one line
// above the figures of the last fetch, with status 502.
func TestViewJaeger_Gone(t *testing.T) {
	if testing.Short() {
		t.Skip("needs Jaeger")
	}
	j := startJaeger(t)
	u, _ := startView(t, "-jaeger", j.queryGRPC, "-jaeger-window", "10m", "-jaeger-refresh", "100ms")
	getJSON(t, u+"api/summary")
	j.stop()
	time.Sleep(200 * time.Millisecond) // past -jaeger-refresh
	for _, a := range []string{"api/summary", "api/series", "api/map", "api/breakdown?by=topic", "api/traces"} {
		body, status := getPage(t, u+a)
		if status != http.StatusBadGateway || !strings.Contains(body, "jaeger query at "+j.queryGRPC) {
			t.Errorf("%s with Jaeger gone: %d %s; want 502 naming Jaeger", a, status, body)
		}
	}
	page, status := getPage(t, u)
	if status != http.StatusBadGateway || strings.Count(page, `id="jaeger"`) != 1 || !strings.Contains(page, "could not be asked for what is new") {
		t.Errorf("page with Jaeger gone: status %d; want 502 and one line saying Jaeger could not be asked", status)
	}
}

func testViewJaeger(t *testing.T, j *jaeger) {
	out := t.TempDir()
	start := time.Now()
	runDemo(t, out, []string{"OTEL_TRACES_EXPORTER=sqlite,otlp", "OTEL_EXPORTER_OTLP_ENDPOINT=http://" + j.otlpHTTP}, "-broadcaster-files")
	files, _ := fileSpans(t, out)
	waitSpans(t, j, start, len(files))
	q := func() string {
		return url.Values{"since": {start.Add(-time.Minute).UTC().Format(time.RFC3339)}, "until": {time.Now().Add(time.Minute).UTC().Format(time.RFC3339)}}.Encode()
	}

	for _, depth := range []string{"1000", "5"} {
		t.Run("SearchDepth"+depth, func(t *testing.T) {
			keep := t.TempDir()
			u, printed := startView(t, "-jaeger", j.queryGRPC, "-jaeger-window", "10m", "-jaeger-search-depth", depth, "-jaeger-file", filepath.Join(keep, "jaeger.db"), "-jaeger-refresh", "-1s")
			if strings.Contains(printed, "partial") {
				t.Errorf("view -jaeger says the fetch is partial:\n%s", printed)
			}
			fetched, rows := fileSpans(t, keep)
			if rows != len(fetched) {
				t.Errorf("fetched file holds %d rows for %d distinct spans; want each once", rows, len(fetched))
			}
			sameIDs(t, files, fetched)
			uf, _ := startView(t, dbs(out)...)
			sameAnswers(t, u, uf, q())
			t.Logf("%s", printed)
		})
	}

	// A trace that the budget left out is still whole on its page: the
	// page asks Jaeger for it.
	t.Run("Budget", func(t *testing.T) {
		keep := t.TempDir()
		u, printed := startView(t, "-jaeger", j.queryGRPC, "-jaeger-window", "10m", "-jaeger-search-depth", "5", "-jaeger-max-traces", "20", "-jaeger-file", filepath.Join(keep, "jaeger.db"), "-jaeger-refresh", "-1s")
		if !strings.Contains(printed, "partial: trace budget of 20 traces ran out; only") {
			t.Errorf("view -jaeger does not say the fetch is partial:\n%s", printed)
		}
		fetched, rows := fileSpans(t, keep)
		traces := map[string]bool{}
		for id, s := range fetched {
			if _, ok := files[id]; !ok {
				t.Errorf("span %s/%s fetched is in no file", s.service, s.name)
			}
			traces[s.traceID] = true
		}
		if len(traces) > 20 || rows != len(fetched) {
			t.Errorf("fetched %d traces in %d rows of %d spans; want at most 20, each span once", len(traces), rows, len(fetched))
		}

		// The JSON says which part is whole and marks the figures.
		s := getJSON(t, u+"api/summary?"+q())
		c, _ := s["coverage"].(map[string]any)
		if c == nil || c["complete"] != false || !strings.Contains(fmt.Sprint(c["reason"]), "trace budget of 20 traces ran out") {
			t.Errorf("summary's coverage = %v; want incomplete, saying the trace budget ran out", s["coverage"])
		}
		ops, _ := s["operations"].(map[string]any)
		for name, o := range ops {
			if o.(map[string]any)["approximate"] != true {
				t.Errorf("operation %s not marked approximate in a partial window", name)
			}
		}
		b := getJSON(t, u+"api/breakdown?by=topic&"+q())
		rows2, _ := b["rows"].([]any)
		for _, r := range rows2 {
			if r.(map[string]any)["approximate"] != true {
				t.Errorf("breakdown row %v not marked approximate in a partial window", r)
			}
		}
		if b["coverage"] == nil {
			t.Error("breakdown carries no coverage")
		}
		page, status := getPage(t, u+"?"+q())
		if status != http.StatusOK || !strings.Contains(page, `id="jaeger"`) || !strings.Contains(page, "Partial: only") || !strings.Contains(page, "trace budget of 20 traces ran out") {
			t.Errorf("page (%d) does not say the window is partial", status)
		}

		// A notify that failed to reach a subscriber (its receive failed:
		// the demo's notifies themselves do not fail), in a trace the
		// budget left out, from the files.
		var failed string
		byTrace := map[string]map[string]bool{}
		spans := map[string]int{}
		for _, sp := range files {
			spans[sp.traceID]++
			if byTrace[sp.traceID] == nil {
				byTrace[sp.traceID] = map[string]bool{}
			}
			byTrace[sp.traceID][sp.service+"\x00"+sp.name] = true
		}
		uf, _ := startView(t, dbs(out)...)
		l := getJSON(t, uf+"api/traces?op=receive&status=error&limit=500&"+q())
		for _, it := range l["traces"].([]any) {
			id := it.(map[string]any)["trace_id"].(string)
			if !traces[id] {
				failed = id
				break
			}
		}
		if failed == "" {
			t.Fatal("no failed notify outside the budget's traces")
		}
		page, status = getPage(t, u+"trace/"+failed)
		if status != http.StatusOK {
			t.Fatalf("trace page of %s: status %d; want 200 from Jaeger's GetTrace", failed, status)
		}
		services := map[string]bool{}
		for k := range byTrace[failed] {
			service, name, _ := strings.Cut(k, "\x00")
			services[service] = true
			if !strings.Contains(page, ">"+html.EscapeString(name)) {
				t.Errorf("trace page of %s lacks span %q of %s", failed, name, service)
			}
		}
		for s := range services {
			if !strings.Contains(page, "<td class=\"l\">"+html.EscapeString(s)+"</td>") {
				t.Errorf("trace page of %s lacks service %s", failed, s)
			}
		}
		if len(services) < 2 {
			t.Errorf("failed notify %s has spans of %d services; want several", failed, len(services))
		}
		d := getJSON(t, u+"api/traces/"+failed)
		if n := len(d["spans"].([]any)); n != spans[failed] {
			t.Errorf("trace %s over Jaeger has %d spans; the files hold %d", failed, n, spans[failed])
		}
		t.Logf("%s", printed)
	})

	// A viewer that keeps running sees a second run through a refresh.
	t.Run("Refresh", func(t *testing.T) {
		u, _ := startView(t, "-jaeger", j.queryGRPC, "-jaeger-window", "10m", "-jaeger-refresh", "1s")
		out2 := t.TempDir()
		start2 := time.Now()
		runDemo(t, out2, []string{"OTEL_TRACES_EXPORTER=sqlite,otlp", "OTEL_EXPORTER_OTLP_ENDPOINT=http://" + j.otlpHTTP}, "-broadcaster-files")
		files2, _ := fileSpans(t, out2)
		waitSpans(t, j, start2, len(files2))
		time.Sleep(1100 * time.Millisecond) // past -jaeger-refresh
		uf, _ := startView(t, dbs(out, out2)...)
		sameAnswers(t, u, uf, q())
	})
}
