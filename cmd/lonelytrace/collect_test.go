package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/lonelytrace/lonelytrace/internal/otlp/otlptest"
	"github.com/lonelytrace/lonelytrace/otelsetup"
	"github.com/lonelytrace/lonelytrace/schema"
)

// collector is a running `lonelytrace collect`.
type collector struct {
	path                   string
	grpc, httpBase, viewer string // host:port, http://host:port, http://host:port/stats/
	stop                   func() (string, error)
}

// startCollect runs serveCollect on a new file with every listener on a
// free loopback port, and the viewer; stop ends it as SIGTERM would and
// returns what it printed after the first line.
func startCollect(t *testing.T, args ...string) *collector {
	t.Helper()
	c := &collector{path: filepath.Join(t.TempDir(), "collected.db")}
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	errc := make(chan error, 1)
	args = append([]string{"-db", c.path, "-otlp-grpc", "127.0.0.1:0", "-otlp-http", "127.0.0.1:0", "-view", "127.0.0.1:0"}, args...)
	go func() { errc <- serveCollect(ctx, args, pw); pw.Close() }()
	br := bufio.NewReader(pr)
	line, err := br.ReadString('\n')
	if err != nil {
		cancel()
		t.Fatalf("collect printed nothing: %v (%v)", err, <-errc)
	}
	for _, f := range strings.Fields(line) {
		k, v, _ := strings.Cut(f, "=")
		switch k {
		case "otlp-grpc":
			c.grpc = v
		case "otlp-http":
			c.httpBase = strings.TrimSuffix(v, "/v1/traces")
		case "view":
			c.viewer = v
		}
	}
	if c.grpc == "" || c.httpBase == "" || c.viewer == "" {
		t.Fatalf("collect's first line %q lacks an address", line)
	}
	rest := make(chan string, 1)
	go func() { b, _ := io.ReadAll(br); rest <- string(b) }()
	var once sync.Once
	var out string
	var stopErr error
	c.stop = func() (string, error) {
		once.Do(func() {
			cancel()
			select {
			case stopErr = <-errc:
				out = <-rest
			case <-time.After(time.Minute):
				stopErr = context.DeadlineExceeded
			}
		})
		return out, stopErr
	}
	t.Cleanup(func() { c.stop() })
	return c
}

// pubsubAttrs are the attributes every client puts on its notify spans:
// the pub/sub conventions and one of every type.
func pubsubAttrs(i int) []attribute.KeyValue {
	return []attribute.KeyValue{
		schema.Operation(schema.OpNotify),
		schema.Topic("orders"),
		schema.Broadcaster("b1"),
		schema.BodySize(i * 10),
		schema.Subscribers(3),
		schema.Stateful(i%2 == 0),
		attribute.String("test.string", "héllo <b>"),
		attribute.Int("test.int", 42),
		attribute.Float64("test.double", 2.5),
		attribute.Bool("test.bool", true),
		attribute.StringSlice("test.strings", []string{"a", "b"}),
		attribute.IntSlice("test.ints", []int{1, 2, 3}),
		attribute.Float64Slice("test.doubles", []float64{1.5, 2.5}),
		attribute.BoolSlice("test.bools", []bool{true, false}),
	}
}

// sendGo sends count notify traces (a notify span with a hash child) with
// the Go SDK through exp.
func sendGo(t *testing.T, exp sdktrace.SpanExporter, service string, count int) {
	t.Helper()
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(exp, sdktrace.WithMaxExportBatchSize(64), sdktrace.WithBatchTimeout(50*time.Millisecond)),
		sdktrace.WithResource(resource.NewSchemaless(attribute.String("service.name", service), attribute.String("deployment.environment.name", "test"))),
	)
	tr := tp.Tracer("goclient")
	for i := range count {
		ctx, root := tr.Start(context.Background(), "notify", trace.WithSpanKind(trace.SpanKindProducer), trace.WithAttributes(pubsubAttrs(i)...))
		_, child := tr.Start(ctx, "hash")
		child.AddEvent("hashed", trace.WithAttributes(attribute.String("test.event", "yes")))
		child.End()
		if i%5 == 0 {
			root.SetStatus(codes.Error, "refused")
		} else {
			root.SetStatus(codes.Ok, "")
		}
		root.End()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := tp.Shutdown(ctx); err != nil {
		t.Fatalf("%s: shutdown: %v", service, err)
	}
}

// jsClient returns the directory of the JavaScript client with its
// packages installed (npm ci from the lockfile when they are missing).
func jsClient(t *testing.T) string {
	t.Helper()
	if _, err := exec.LookPath("node"); err != nil {
		t.Skip("node is not installed: the JavaScript SDK test needs Node.js and npm")
	}
	dir, err := filepath.Abs(filepath.Join("testdata", "jsclient"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "@opentelemetry", "sdk-trace")); err != nil {
		if _, err := exec.LookPath("npm"); err != nil {
			t.Skip("npm is not installed: the JavaScript SDK test needs it once to install its packages")
		}
		cmd := exec.Command("npm", "ci", "--no-audit", "--no-fund")
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("npm ci in %s: %v\n%s", dir, err, out)
		}
	}
	return dir
}

// sendJS sends count notify traces with the JavaScript SDK's exporter of
// kind (proto, http, grpc), configured by the standard variables only.
func sendJS(t *testing.T, dir, kind, endpoint, service string, count int) {
	t.Helper()
	cmd := exec.Command("node", "send.js", kind, service, fmt.Sprint(count))
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "OTEL_EXPORTER_OTLP_ENDPOINT="+endpoint, "OTEL_EXPORTER_OTLP_COMPRESSION=gzip")
	out, err := cmd.Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("node send.js %s: %v\n%s%s", kind, err, out, stderr)
	}
	var res struct{ Ended, Failed int }
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("node send.js %s printed %q: %v", kind, out, err)
	}
	if res.Ended != 2*count || res.Failed != 0 {
		t.Fatalf("node send.js %s: %d spans ended, %d failed; want %d, 0", kind, res.Ended, res.Failed, 2*count)
	}
}

// TestCollect_Clients sends spans from the Go SDK's and the JavaScript
// SDK's OTLP exporters, over every transport, to one collect, and reads
// them back from the file and through the viewer's /api/summary.
func TestCollect_Clients(t *testing.T) {
	c := startCollect(t)
	const count = 40
	type client struct {
		service string
		send    func(t *testing.T, service string)
	}
	clients := []client{
		{"go-http", func(t *testing.T, service string) {
			exp, err := otlptracehttp.New(context.Background(), otlptracehttp.WithEndpointURL(c.httpBase+"/v1/traces"), otlptracehttp.WithCompression(otlptracehttp.GzipCompression))
			if err != nil {
				t.Fatal(err)
			}
			sendGo(t, exp, service, count)
		}},
		{"go-grpc", func(t *testing.T, service string) {
			// As any program would: the standard variables only.
			t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://"+c.grpc)
			exp, err := otlptracegrpc.New(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			sendGo(t, exp, service, count)
		}},
	}
	if dir := jsClient(t); dir != "" {
		clients = append(clients,
			client{"js-proto", func(t *testing.T, service string) { sendJS(t, dir, "proto", c.httpBase, service, count) }},
			client{"js-json", func(t *testing.T, service string) { sendJS(t, dir, "http", c.httpBase, service, count) }},
			client{"js-grpc", func(t *testing.T, service string) { sendJS(t, dir, "grpc", "http://"+c.grpc, service, count) }},
		)
	}
	for _, cl := range clients {
		t.Run(cl.service, func(t *testing.T) { cl.send(t, cl.service) })
	}
	if t.Failed() {
		return
	}

	// The viewer, while collect runs: every notify, and its bytes summed
	// here from what the clients sent.
	var sum struct {
		Spans      int64 `json:"spans"`
		Failed     int64 `json:"failed"`
		Operations map[string]struct {
			Count int64  `json:"count"`
			Bytes uint64 `json:"bytes"`
		} `json:"operations"`
	}
	wantBytes := uint64(0)
	for i := range count {
		wantBytes += uint64(i * 10)
	}
	wantBytes *= uint64(len(clients))
	n := len(clients) * count
	deadline := time.Now().Add(30 * time.Second)
	for {
		res, err := http.Get(c.viewer + "api/summary?since=beginning")
		if err != nil {
			t.Fatal(err)
		}
		err = json.NewDecoder(res.Body).Decode(&sum)
		res.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		if sum.Spans == int64(2*n) || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond) // the writer commits every 500 ms
	}
	if sum.Spans != int64(2*n) {
		t.Errorf("/api/summary spans = %d; want %d", sum.Spans, 2*n)
	}
	if op := sum.Operations[schema.OpNotify]; op.Count != int64(n) || op.Bytes != wantBytes {
		t.Errorf("/api/summary notify = %d operations, %d bytes; want %d, %d", op.Count, op.Bytes, n, wantBytes)
	}

	out, err := c.stop()
	if err != nil {
		t.Fatalf("collect: %v", err)
	}
	if want := fmt.Sprintf("%d spans accepted, 0 rejected", 2*n); !strings.Contains(out, want) {
		t.Errorf("collect printed %q; want it to say %q", out, want)
	}

	// The file, after collect has stopped: each client's spans, every
	// attribute as it was sent.
	db, err := schema.OpenRead(context.Background(), c.path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	spans, err := schema.NewReader(db).After(context.Background(), 0, 1_000_000)
	if err != nil {
		t.Fatal(err)
	}
	type key struct{ service, name string }
	got := map[key]int{}
	errs := map[string]int{}
	for _, s := range spans {
		service := ""
		for _, kv := range s.Resource.Attributes {
			if kv.Key == "service.name" {
				service = kv.Value.AsString()
			}
		}
		got[key{service, s.Name}]++
		if s.Name == "hash" {
			if len(s.Events) != 1 || s.Events[0].Name != "hashed" || !s.ParentSpanID.IsValid() {
				t.Errorf("%s hash span: events %v, parent %v; want one event named hashed, and a parent", service, s.Events, s.ParentSpanID)
			}
			continue
		}
		if s.StatusCode == codes.Error {
			errs[service]++
		}
		i := int(s.PubSub.BodySize / 10)
		want := map[attribute.Key]attribute.Value{}
		for _, kv := range pubsubAttrs(i) {
			want[kv.Key] = kv.Value
		}
		have := map[attribute.Key]attribute.Value{}
		for _, kv := range s.Attributes {
			have[kv.Key] = kv.Value
		}
		if !reflect.DeepEqual(have, want) {
			t.Errorf("%s notify span %d: attributes\n%v\nwant\n%v", service, i, have, want)
		}
		if s.PubSub.Topic != "orders" || s.PubSub.Broadcaster != "b1" || s.PubSub.Subscribers != 3 || s.Kind != trace.SpanKindProducer {
			t.Errorf("%s notify span %d: pub/sub %+v, kind %v", service, i, s.PubSub, s.Kind)
		}
	}
	for _, cl := range clients {
		for _, name := range []string{"notify", "hash"} {
			if g := got[key{cl.service, name}]; g != count {
				t.Errorf("%s: %d %s spans in the file; want %d", cl.service, g, name, count)
			}
		}
		if want := (count + 4) / 5; errs[cl.service] != want {
			t.Errorf("%s: %d failed notifies; want %d", cl.service, errs[cl.service], want)
		}
	}
}

// TestCollect_Drain stops collect right after its clients were answered:
// every span it accepted must be in the file, though the writer had not
// committed them yet.
func TestCollect_Drain(t *testing.T) {
	c := startCollect(t)
	exp, err := otlptracehttp.New(context.Background(), otlptracehttp.WithEndpointURL(c.httpBase+"/v1/traces"))
	if err != nil {
		t.Fatal(err)
	}
	const count = 1000
	sendGo(t, exp, "drain", count)
	if _, err := c.stop(); err != nil {
		t.Fatalf("collect: %v", err)
	}
	if n := otlptest.StoredSpans(t, c.path); n != 2*count {
		t.Errorf("file holds %d spans after the stop; want %d", n, 2*count)
	}
}

func TestCollect_Flags(t *testing.T) {
	t.Setenv(envViewerToken, "")
	db := filepath.Join(t.TempDir(), "t.db")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"-db", db, "-otlp-grpc", "0.0.0.0:0"}, "token"},
		{[]string{"-db", db, "-otlp-http", ":0", "-otlp-grpc", ""}, "token"},
		{[]string{"-db", db, "-view", "[::]:0"}, "token"},
		{[]string{"-db", db, "-token", "short"}, "at least"},
		{[]string{"-db", db, "-otlp-grpc", "", "-otlp-http", ""}, "nothing to receive"},
		{[]string{"-db", db, "extra"}, "unexpected argument"},
		{[]string{"-db", db, "-max-memory", "0"}, "-max-memory 0: want a positive number of bytes"},
	} {
		err := serveCollect(context.Background(), c.args, io.Discard)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("collect %q = %v; want an error saying %q", c.args, err, c.want)
		}
	}
	if _, err := os.Stat(db); err == nil {
		t.Errorf("a refused collect created %s", db)
	}
}

// TestCollect_Token listens beyond loopback with a token: requests
// without it are refused, with it stored.
func TestCollect_Token(t *testing.T) {
	const tok = "0123456789abcdef0123"
	t.Setenv(envViewerToken, tok)
	c := startCollect(t, "-otlp-http", "0.0.0.0:0")
	_, port, _ := strings.Cut(strings.TrimPrefix(c.httpBase, "http://"), "]:")
	if port == "" {
		_, port, _ = strings.Cut(strings.TrimPrefix(c.httpBase, "http://"), ":")
	}
	url := "http://127.0.0.1:" + port + "/v1/traces"
	for _, h := range []string{"", "Bearer " + tok} {
		exp, err := otlptracehttp.New(context.Background(), otlptracehttp.WithEndpointURL(url), otlptracehttp.WithHeaders(map[string]string{"Authorization": h}), otlptracehttp.WithRetry(otlptracehttp.RetryConfig{Enabled: false}))
		if err != nil {
			t.Fatal(err)
		}
		tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
		_, s := tp.Tracer("t").Start(context.Background(), "x")
		s.End()
		tp.Shutdown(context.Background())
	}
	out, err := c.stop()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "1 span accepted") || !strings.Contains(out, "1 request refused") {
		t.Errorf("collect printed %q; want 1 span accepted, 1 request refused", out)
	}
}

// TestCollect_DBFromEnv checks that collect without -db writes the file
// $LONELYTRACE_DB names, as otelsetup.Start would.
func TestCollect_DBFromEnv(t *testing.T) {
	t.Setenv(envViewerToken, "")
	path := filepath.Join(t.TempDir(), "from-env.db")
	t.Setenv(otelsetup.EnvDB, path)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pr, pw := io.Pipe()
	errc := make(chan error, 1)
	go func() {
		errc <- serveCollect(ctx, []string{"-otlp-grpc", "", "-otlp-http", "127.0.0.1:0"}, pw)
		pw.Close()
	}()
	line, err := bufio.NewReader(pr).ReadString('\n')
	cancel()
	go io.Copy(io.Discard, pr)
	if err := <-errc; err != nil {
		t.Fatalf("collect: %v", err)
	}
	if err != nil || !strings.HasPrefix(line, "lonelytrace: collecting into "+path+": ") {
		t.Errorf("collect's first line %q (%v); want it to name %s", line, err, path)
	}
	if _, err := os.Stat(path); err != nil {
		t.Errorf("collect without -db: %v; want the file of $%s", err, otelsetup.EnvDB)
	}
}
