package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/lonelytrace/lonelytrace/exporter"
	"github.com/lonelytrace/lonelytrace/internal/jaegerquery"
	"github.com/lonelytrace/lonelytrace/schema"
)

// TestREADME keeps the README true: it runs every shell line of the
// README that runs lonelytrace, as written, against small trace files in
// a temporary folder (the servers on free loopback ports, the replay to
// a local receiver); it requests every URL the README names from the
// viewer its `view` line serves, on the default window; and it checks
// what the other lines name (the demo and its flags, the environment
// variables, the exporters) against the code. A line it does not know
// fails it, so a new example comes with its check.
func TestREADME(t *testing.T) {
	raw, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(raw)
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	t.Chdir(t.TempDir())
	// A day of operations that does not start on a minute, so that the
	// default window's series, whatever now is, needs its whole alignment.
	now := time.Now()
	writeREADMEFile(t, "traces.db", now.Add(-24*time.Hour+1500*time.Millisecond), now.Add(-time.Second))
	writeREADMEFile(t, "other.db", now.Add(-time.Hour), now.Add(-time.Minute))
	if err := run([]string{"export", "-format", "otlp-jsonl", "-o", "spans.jsonl", "other.db"}, io.Discard); err != nil {
		t.Fatalf("make spans.jsonl: %v", err)
	}
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/x-protobuf")
	}))
	defer receiver.Close()

	lines := shellLines(readme)
	if len(lines) < 15 {
		t.Fatalf("found %d shell lines in the README; want its examples", len(lines))
	}
	var viewed bool
	for _, line := range lines {
		t.Logf("README line: %s", line)
		env, argv := splitEnv(line)
		switch {
		case len(argv) >= 3 && argv[0] == "go" && argv[1] == "run" && argv[2] == "./cmd/lonelytrace":
			args := argv[3:]
			switch args[0] {
			case "view":
				if slices.Contains(args, "-jaeger") {
					checkJaegerLine(t, line, args)
					continue
				}
				viewed = true
				serveAndCheck(t, line, append([]string{"view", "-addr", "127.0.0.1:0"}, args[1:]...), func(base string) {
					checkURLs(t, readme, base)
				})
			case "collect":
				args = append([]string{"collect", "-otlp-grpc", "127.0.0.1:0", "-otlp-http", "127.0.0.1:0"}, args[1:]...)
				for i := range args {
					if i > 0 && args[i-1] == "-view" {
						args[i] = "127.0.0.1:0"
					}
				}
				serveAndCheck(t, line, args, nil)
			case "replay":
				for i := range args {
					if i > 0 && args[i-1] == "-endpoint" {
						args[i] = receiver.URL
					}
				}
				fallthrough
			default:
				if err := run(args, io.Discard); err != nil {
					t.Errorf("README: %s: %v", line, err)
				}
			}
		case len(argv) == 3 && argv[0] == "go" && argv[1] == "run" && argv[2] == "./examples/pubsub":
			checkDemo(t, readme, root)
		case strings.Join(argv, " ") == "go test ./...":
			// This test is one of them.
		case len(argv) == 1 && argv[0] == "./yourapp":
			checkExporters(t, line, env, root)
		case argv[0] == "curl":
			// Requested from the view line's server, with the README's URLs.
		case argv[0] == "opentelemetry-instrument" || argv[0] == "node":
			// Another language's SDK, configured by the standard OTLP
			// variables: the collect tests send to it from Node.
		default:
			t.Errorf("README line %q: this test does not know how to check it; teach it", line)
		}
	}
	if !viewed {
		t.Error("README has no view line to request its URLs from")
	}
	for _, f := range []string{"report.html", "bug.db", "traces.json"} {
		if fi, err := os.Stat(f); err != nil || fi.Size() == 0 {
			t.Errorf("README's commands did not write %s: %v", f, err)
		}
	}
	checkEnvNames(t, readme, root)
}

// writeREADMEFile writes path with one notify (failed every third) and
// one receive a minute from first to last.
func writeREADMEFile(t *testing.T, path string, first, last time.Time) {
	t.Helper()
	e, err := exporter.New(path)
	if err != nil {
		t.Fatal(err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(e))
	tr := tp.Tracer("readme")
	for i, at := 0, first; !at.After(last); i, at = i+1, at.Add(time.Minute) {
		if at.Add(time.Minute).After(last) {
			at = last
		}
		ctx, n := tr.Start(context.Background(), "notify", trace.WithTimestamp(at), schema.Notify("orders", 42, "b1"))
		if i%3 == 0 {
			n.SetStatus(codes.Error, "failed")
		}
		_, r := tr.Start(ctx, "receive", trace.WithTimestamp(at.Add(time.Millisecond)), trace.WithAttributes(schema.Operation(schema.OpReceive), schema.Topic("orders")))
		r.End(trace.WithTimestamp(at.Add(2 * time.Millisecond)))
		n.End(trace.WithTimestamp(at.Add(60 * time.Millisecond)))
		if at.Equal(last) {
			break
		}
	}
	if err := tp.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// shellLines returns the lines of the README's sh blocks, without their
// comments and a trailing &.
func shellLines(readme string) []string {
	var out []string
	in := false
	sc := bufio.NewScanner(strings.NewReader(readme))
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "```sh"):
			in = true
			continue
		case strings.HasPrefix(line, "```"):
			in = false
			continue
		}
		if !in {
			continue
		}
		if i := strings.Index(line, " #"); i >= 0 {
			line = line[:i]
		}
		line = strings.TrimSuffix(strings.TrimSpace(line), "&")
		if line = strings.TrimSpace(line); line != "" {
			out = append(out, line)
		}
	}
	return out
}

// splitEnv splits a shell line into its leading NAME=value assignments
// and the command's words.
func splitEnv(line string) (map[string]string, []string) {
	env := map[string]string{}
	words := strings.Fields(line)
	for len(words) > 0 {
		name, value, ok := strings.Cut(words[0], "=")
		if !ok || !regexp.MustCompile(`^[A-Z_]+$`).MatchString(name) {
			break
		}
		env[name] = value
		words = words[1:]
	}
	return env, words
}

// serveAndCheck runs a serving command until it says where it listens,
// calls check (when not nil) with the viewer's base URL, then stops it
// and wants it to end cleanly.
func serveAndCheck(t *testing.T, line string, args []string, check func(base string)) {
	t.Helper()
	c := findCommand(t, args[0])
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r, w := io.Pipe()
	done := make(chan error, 1)
	go func() {
		err := c.run(ctx, args[1:], w)
		w.CloseWithError(io.EOF)
		done <- err
	}()
	first, err := bufio.NewReader(r).ReadString('\n')
	go io.Copy(io.Discard, r)
	if err != nil {
		t.Fatalf("README: %s: %v (%v)", line, err, <-done)
	}
	if check != nil {
		m := regexp.MustCompile(`(http://\S+/stats)/`).FindStringSubmatch(first)
		if m == nil {
			t.Fatalf("README: %s printed %q; want the viewer's address", line, first)
		}
		check(m[1])
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("README: %s: %v", line, err)
	}
}

func findCommand(t *testing.T, name string) command {
	for _, c := range commands {
		if c.name == name {
			return c
		}
	}
	t.Fatalf("no command %q", name)
	return command{}
}

// checkURLs requests every path of the viewer the README names, on the
// default window, and the parameters it lists, and wants each answered.
func checkURLs(t *testing.T, readme, base string) {
	t.Helper()
	host := strings.TrimSuffix(base, "/stats")
	var urls []string
	for _, m := range regexp.MustCompile("`([^`]*(?:/api/|/stats/|trace/<id>)[^`]*)`").FindAllStringSubmatch(readme, -1) {
		u := m[1]
		switch {
		case strings.HasPrefix(u, "/api/"):
			urls = append(urls, base+u)
		case strings.HasPrefix(u, "/stats/"):
			urls = append(urls, host+u)
		case strings.HasPrefix(u, "trace/<id>"):
			urls = append(urls, base+"/"+strings.Replace(u, "<id>", firstTraceID(t, base), 1))
		case strings.HasPrefix(u, "http://127.0.0.1:8080/stats/"):
			urls = append(urls, host+strings.TrimPrefix(u, "http://127.0.0.1:8080"))
		}
	}
	for _, m := range regexp.MustCompile(`http://127\.0\.0\.1:8080(/stats/\S*)`).FindAllStringSubmatch(readme, -1) {
		urls = append(urls, host+m[1])
	}
	for _, line := range shellLines(readme) {
		if _, argv := splitEnv(line); len(argv) == 2 && argv[0] == "curl" {
			urls = append(urls, host+strings.TrimPrefix(strings.Trim(argv[1], "'"), "127.0.0.1:8080"))
		}
	}
	// The parameters the README lists, each with a value it accepts.
	urls = append(urls,
		base+"/api/summary?since=1h-ago&until=now&tz=Europe/Paris&broadcaster=b1&topic=orders&glob=ord*",
		base+"/api/traces?service=readme&max_ms=100&name=notify&attr=messaging.destination.name=orders")
	if len(urls) < 8 {
		t.Errorf("found %d URLs in the README; want its examples", len(urls))
	}
	for _, u := range urls {
		t.Logf("README URL: %s", u)
		resp, err := http.Get(u)
		if err != nil {
			t.Errorf("README URL %s: %v", u, err)
			continue
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("README URL %s: status %d: %.300s", u, resp.StatusCode, body)
		}
	}
}

// firstTraceID returns a trace id of the viewer's list.
func firstTraceID(t *testing.T, base string) string {
	t.Helper()
	resp, err := http.Get(base + "/api/traces?since=beginning&limit=1")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var l struct {
		Traces []struct {
			TraceID string `json:"trace_id"`
		} `json:"traces"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&l); err != nil || len(l.Traces) == 0 {
		t.Fatalf("no trace to follow: %v", err)
	}
	return l.Traces[0].TraceID
}

// checkDemo checks that the demo is a command with the flags the README
// lists.
func checkDemo(t *testing.T, readme, root string) {
	t.Helper()
	src, err := os.ReadFile(filepath.Join(root, "examples/pubsub/parent.go"))
	if err != nil {
		t.Fatalf("README runs ./examples/pubsub: %v", err)
	}
	m := regexp.MustCompile("Flags: ((?:`-[a-z-]+`,?\\s*)+)").FindStringSubmatch(readme)
	if m == nil {
		t.Fatal("README lists no flags of the demo")
	}
	for _, f := range regexp.MustCompile("`-([a-z-]+)`").FindAllStringSubmatch(m[1], -1) {
		if !strings.Contains(string(src), `"`+f[1]+`"`) {
			t.Errorf("README lists the demo's flag -%s, which examples/pubsub does not declare", f[1])
		}
	}
}

// checkExporters checks that every exporter a ./yourapp line names in
// OTEL_TRACES_EXPORTER is one otelsetup knows.
func checkExporters(t *testing.T, line string, env map[string]string, root string) {
	t.Helper()
	src, err := os.ReadFile(filepath.Join(root, "otelsetup/otelsetup.go"))
	if err != nil {
		t.Fatal(err)
	}
	for name := range strings.SplitSeq(env["OTEL_TRACES_EXPORTER"], ",") {
		if name != "" && !strings.Contains(string(src), `case "`+name+`":`) {
			t.Errorf("README: %s: otelsetup knows no exporter %q", line, name)
		}
	}
}

// checkEnvNames checks that every LONELYTRACE_ variable the README names
// is read somewhere in the code.
func checkEnvNames(t *testing.T, readme, root string) {
	t.Helper()
	var code strings.Builder
	err := filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == ".git" || d.Name() == "node_modules" || d.Name() == "testdata") {
			return filepath.SkipDir
		}
		if !d.IsDir() && strings.HasSuffix(path, ".go") && !strings.HasSuffix(path, "_test.go") {
			b, err := os.ReadFile(path)
			code.Write(b)
			return err
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	names := regexp.MustCompile(`LONELYTRACE_[A-Z_]+`).FindAllString(readme, -1)
	if len(names) == 0 {
		t.Fatal("README names no LONELYTRACE_ variable")
	}
	for _, n := range names {
		if !strings.Contains(code.String(), `"`+n+`"`) {
			t.Errorf("README names $%s, which no code reads", n)
		}
	}
}

// checkJaegerLine runs a README line of view -jaeger against a closed
// loopback port instead of its Jaeger: its flags must parse, and it
// must fail saying that Jaeger is unreachable.
func checkJaegerLine(t *testing.T, line string, args []string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()
	args = append([]string{"view", "-addr", "127.0.0.1:0"}, args[1:]...)
	for i := range args {
		if i > 0 && args[i-1] == "-jaeger" {
			args[i] = closed
		}
		if i > 0 && args[i-1] == "-jaeger-file" {
			args[i] = filepath.Join(t.TempDir(), args[i])
		}
	}
	if err := run(args, io.Discard); !errors.Is(err, jaegerquery.ErrUnavailable) {
		t.Errorf("README: %s: %v; want Jaeger unreachable at a closed port", line, err)
	}
}
