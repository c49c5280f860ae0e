package collector_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
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
// of the same spans: the files (paths, sizes, retention), and the
// moment of the request.
func figures(v any) any {
	switch v := v.(type) {
	case map[string]any:
		for _, k := range []string{"files", "now", "since_most_recent_ms"} {
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

// TestViewJaeger fetches the demo's traces from a real Jaeger with
// `view -jaeger` and finds the very spans the demo's files hold, each
// once, and the same summary as `view` over those files.
func TestViewJaeger(t *testing.T) {
	if testing.Short() {
		t.Skip("needs Jaeger")
	}
	j := startJaeger(t)
	out := t.TempDir()
	start := time.Now()
	runDemo(t, out, []string{"OTEL_TRACES_EXPORTER=sqlite,otlp", "OTEL_EXPORTER_OTLP_ENDPOINT=http://" + j.otlpHTTP}, "-broadcaster-files")
	files, _ := fileSpans(t, out)
	waitSpans(t, j, start, len(files))

	for _, depth := range []string{"1000", "5"} {
		t.Run("SearchDepth"+depth, func(t *testing.T) {
			keep := t.TempDir()
			u, printed := startView(t, "-jaeger", j.queryGRPC, "-jaeger-window", "10m", "-jaeger-search-depth", depth, "-jaeger-file", filepath.Join(keep, "jaeger.db"))
			if strings.Contains(printed, "partial") {
				t.Errorf("view -jaeger says the fetch is partial:\n%s", printed)
			}
			fetched, rows := fileSpans(t, keep)
			if rows != len(fetched) {
				t.Errorf("fetched file holds %d rows for %d distinct spans; want each once", rows, len(fetched))
			}
			sameIDs(t, files, fetched)

			var dbs []string
			all, _ := filepath.Glob(filepath.Join(out, "*.db"))
			dbs = append(dbs, all...)
			uf, _ := startView(t, dbs...)
			q := url.Values{"since": {start.Add(-time.Minute).UTC().Format(time.RFC3339)}, "until": {time.Now().Add(time.Minute).UTC().Format(time.RFC3339)}}.Encode()
			for _, api := range []string{"summary", "map"} {
				fromJaeger, _ := json.Marshal(figures(getJSON(t, u+"api/"+api+"?"+q)))
				fromFiles, _ := json.Marshal(figures(getJSON(t, uf+"api/"+api+"?"+q)))
				if !bytes.Equal(fromJaeger, fromFiles) {
					t.Errorf("/api/%s over Jaeger differs from over the files:\njaeger: %s\nfiles:  %s", api, fromJaeger, fromFiles)
				}
			}
			t.Logf("%s", printed)
		})
	}

	t.Run("Budget", func(t *testing.T) {
		keep := t.TempDir()
		_, printed := startView(t, "-jaeger", j.queryGRPC, "-jaeger-window", "10m", "-jaeger-search-depth", "5", "-jaeger-max-traces", "20", "-jaeger-file", filepath.Join(keep, "jaeger.db"))
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
		t.Logf("%s", printed)
	})
}
