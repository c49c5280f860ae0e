package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/instrumentation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/lonelytrace/lonelytrace/exporter"
	"github.com/lonelytrace/lonelytrace/schema"
	"github.com/lonelytrace/lonelytrace/viewer"
	"github.com/lonelytrace/lonelytrace/viewer/model"
)

// The writer process: the test re-runs its own binary with envWriter set
// to a path, and the child writes traces there flat out until killed.
const envWriter = "LONELYTRACE_TEST_COPY_WRITER"

// writerTrace returns trace seq as the writer writes it, in one
// ExportSpans call: a notify (topic "a" when seq%3 == 0, else "b") and
// two phases, all starting in the last minute.
func writerTrace(seq int, now time.Time) []sdktrace.ReadOnlySpan {
	var tid trace.TraceID
	binary.BigEndian.PutUint64(tid[8:], uint64(seq)+1)
	sid := func(i int) (s trace.SpanID) { binary.BigEndian.PutUint64(s[:], uint64(seq)*4+uint64(i)+1); return s }
	sc := func(i int) trace.SpanContext {
		return trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid(i), TraceFlags: trace.FlagsSampled})
	}
	topic := "b"
	if seq%3 == 0 {
		topic = "a"
	}
	res := resource.NewSchemaless(attribute.String("service.name", "writer-"+topic))
	start := now.Add(-time.Minute + time.Duration(seq)*time.Microsecond)
	stubs := tracetest.SpanStubs{{
		Name: "notify", SpanContext: sc(0), SpanKind: trace.SpanKindProducer,
		StartTime: start, EndTime: start.Add(3 * time.Millisecond),
		Attributes: []attribute.KeyValue{schema.Operation(schema.OpNotify), schema.Topic(topic), schema.BodySize(10), schema.Broadcaster("b1"), attribute.Int("seq", seq)},
		Resource:   res, InstrumentationScope: instrumentation.Scope{Name: "copy-test-" + topic},
	}}
	for i, name := range []string{"hash", "send request"} {
		stubs = append(stubs, tracetest.SpanStub{
			Name: name, SpanContext: sc(i + 1), Parent: sc(0),
			StartTime: start.Add(time.Duration(i) * time.Millisecond), EndTime: start.Add(time.Duration(i+1) * time.Millisecond),
			Resource: res, InstrumentationScope: instrumentation.Scope{Name: "copy-test-" + topic},
		})
	}
	return stubs.Snapshots()
}

func TestHelperCopyWriter(t *testing.T) {
	path := os.Getenv(envWriter)
	if path == "" {
		t.Skip("runs only as the writer process of TestCopy_Live")
	}
	e, err := exporter.New(path)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	for seq := 0; ; seq++ {
		if err := e.ExportSpans(context.Background(), writerTrace(seq, now)); err != nil {
			t.Fatal(err)
		}
	}
}

// startWriter starts the writer process on path and waits until the file
// holds at least n spans.
func startWriter(t *testing.T, path string, n int64) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperCopyWriter$", "-test.count=1")
	cmd.Env = append(os.Environ(), envWriter+"="+path)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	deadline := time.Now().Add(60 * time.Second)
	for {
		if r, err := schema.Check(context.Background(), path, true); err == nil && r.Spans >= n {
			return cmd
		}
		if time.Now().After(deadline) {
			t.Fatalf("the writer did not reach %d spans", n)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestCopy_Live(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a writer process")
	}
	dir := t.TempDir()
	src := filepath.Join(dir, "live.db")
	writer := startWriter(t, src, 30_000)

	t.Run("CheckLive", func(t *testing.T) {
		var out bytes.Buffer
		if err := run([]string{"check", src}, &out); err != nil {
			t.Fatalf("check on the live file: %v\n%s", err, out.String())
		}
		for _, want := range []string{": ok", "integrity_check: ok", fmt.Sprintf("version %d, current", schema.Version), "beside a writer"} {
			if !strings.Contains(out.String(), want) {
				t.Errorf("check output lacks %q:\n%s", want, out.String())
			}
		}
	})

	all := filepath.Join(dir, "all.db")
	onlyA := filepath.Join(dir, "a.db")
	var out bytes.Buffer
	if err := run([]string{"copy", src, all}, &out); err != nil {
		t.Fatalf("copy: %v\n%s", err, out.String())
	}
	if err := run([]string{"copy", "-since", "beginning", "-topic", "a", src, onlyA}, &out); err != nil {
		t.Fatalf("copy -topic a: %v\n%s", err, out.String())
	}
	if err := run([]string{"copy", src, onlyA}, &out); err == nil || !strings.Contains(err.Error(), "exists") {
		t.Errorf("copy over an existing file = %v; want a refusal", err)
	}
	// The writer is still writing: the copies are of a live file.
	if writer.ProcessState != nil {
		t.Fatal("the writer exited early")
	}
	writer.Process.Kill()
	writer.Wait()

	for _, p := range []string{all, onlyA} {
		var ok string
		db := openRO(t, p)
		if err := db.QueryRow("PRAGMA integrity_check").Scan(&ok); err != nil || ok != "ok" {
			t.Errorf("%s: integrity_check = %q, %v; want ok", p, ok, err)
		}
		for _, side := range []string{"-wal", "-shm"} {
			if _, err := os.Stat(p + side); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("%s%s exists after copy and check; want none", p, side)
			}
		}
	}

	// Independent count: the writer commits trace seq before seq+1, each in
	// one transaction, so the copy of topic a holds exactly the seqs
	// 0, 3, 6, ... up to the highest it holds, three spans each, and the
	// source (read now, another way: through spans_view's JSON attributes)
	// agrees.
	cp := openRO(t, onlyA)
	var traces, spans, maxSeq, otherTopics, wrongResources int64
	cp.QueryRow("SELECT count(DISTINCT trace_id), count(*) FROM spans_view").Scan(&traces, &spans)
	cp.QueryRow("SELECT max(CAST(attributes->>'seq' AS INTEGER)) FROM spans_view WHERE name = 'notify'").Scan(&maxSeq)
	cp.QueryRow("SELECT count(*) FROM spans_view WHERE topic IS NOT NULL AND topic != 'a'").Scan(&otherTopics)
	cp.QueryRow("SELECT count(*) FROM resources WHERE attributes->>'service.name' != 'writer-a'").Scan(&wrongResources)
	if maxSeq < 300 {
		t.Fatalf("the copy's highest seq is %d; want a copy of thousands of traces", maxSeq)
	}
	t.Logf("copy -topic a: %d traces, %d spans, up to seq %d", traces, spans, maxSeq)
	wantTraces := maxSeq/3 + 1
	if traces != wantTraces || spans != 3*wantTraces || otherTopics != 0 || wrongResources != 0 {
		t.Errorf("copy -topic a holds %d traces, %d spans, %d spans of other topics, %d other resources; want %d, %d, 0, 0",
			traces, spans, otherTopics, wrongResources, wantTraces, 3*wantTraces)
	}
	sdb := openRO(t, src)
	var fromSource int64
	sdb.QueryRow(`SELECT count(DISTINCT trace_id) FROM spans_view
		WHERE name = 'notify' AND json_extract(attributes, '$."messaging.destination.name"') = 'a'
		AND CAST(json_extract(attributes, '$.seq') AS INTEGER) <= ?`, maxSeq).Scan(&fromSource)
	if fromSource != traces {
		t.Errorf("source holds %d topic-a traces up to seq %d; the copy %d", fromSource, maxSeq, traces)
	}
	var allTraces, allMax int64
	openRO(t, all).QueryRow("SELECT count(DISTINCT trace_id), max(CAST(attributes->>'seq' AS INTEGER)) FROM spans_view WHERE name = 'notify'").Scan(&allTraces, &allMax)
	if allTraces != allMax+1 {
		t.Errorf("full copy holds %d traces up to seq %d; want every one, %d", allTraces, allMax, allMax+1)
	}

	t.Run("Viewer", func(t *testing.T) {
		v, err := viewer.Open(onlyA)
		if err != nil {
			t.Fatal(err)
		}
		defer v.Close()
		e := echo.New()
		v.Register(e.Group("/stats"))
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		srv := &http.Server{Handler: e}
		go srv.Serve(ln)
		defer srv.Close()
		resp, err := http.Get("http://" + ln.Addr().String() + "/stats/api/summary?since=beginning")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var s model.Summary
		if err := json.NewDecoder(resp.Body).Decode(&s); err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("summary: %d, %v", resp.StatusCode, err)
		}
		if n := s.Operations["notify"].Count; n != traces {
			t.Errorf("viewer counts %d notifies in the copy; want %d", n, traces)
		}
	})
}

func openRO(t *testing.T, path string) *sql.DB {
	t.Helper()
	db, err := schema.OpenRead(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func TestCheck_Refusals(t *testing.T) {
	dir := t.TempDir()
	good := mustFile(t)
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	goodBytes, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	newer := append([]byte(nil), goodBytes...)
	binary.BigEndian.PutUint32(newer[60:64], schema.Version+1)
	foreignPath := filepath.Join(dir, "foreign.db")
	fdb, err := sql.Open("sqlite", foreignPath)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fdb.Exec("CREATE TABLE recipes (name TEXT); INSERT INTO recipes VALUES ('soup')"); err != nil {
		t.Fatal(err)
	}
	fdb.Close()
	// Corrupt: every page after the first two overwritten with a pattern.
	corrupt := append([]byte(nil), goodBytes...)
	pageSize := int(binary.BigEndian.Uint16(corrupt[16:18]))
	if pageSize == 1 {
		pageSize = 65536
	}
	for i := 2 * pageSize; i < len(corrupt); i++ {
		corrupt[i] = byte(i*7 + 3)
	}
	cases := []struct {
		name, path, verdict string
		is                  error
	}{
		{"Garbage", write("garbage.db", []byte(strings.Repeat("not a database\n", 100))), "not SQLite", schema.ErrNotSQLite},
		{"Newer", write("newer.db", newer), "newer schema", schema.ErrNewerSchema},
		{"Foreign", foreignPath, "foreign SQLite file", schema.ErrNotTraceFile},
		{"Corrupt", write("corrupt.db", corrupt), "corrupt", schema.ErrCorrupt},
	}
	msgs := map[string]string{}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var out bytes.Buffer
			err := run([]string{"check", c.path}, &out)
			if !errors.Is(err, c.is) {
				t.Fatalf("check = %v; want %v", err, c.is)
			}
			if !strings.Contains(out.String(), c.path+": "+c.verdict+"\n") {
				t.Errorf("output lacks %q:\n%s", c.verdict, out.String())
			}
			msgs[c.name] = err.Error()
			t.Logf("%s", err)
			for _, side := range []string{"-wal", "-shm"} {
				if _, err := os.Stat(c.path + side); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("check left %s%s", c.path, side)
				}
			}
		})
	}
	seen := map[string]string{}
	for name, m := range msgs {
		msg := strings.ReplaceAll(m, filepath.Join(dir, ""), "")
		msg = msg[strings.Index(msg, ":")+1:]
		if other, ok := seen[msg]; ok {
			t.Errorf("%s and %s give the same message %q", name, other, msg)
		}
		seen[msg] = name
	}
	t.Run("GoodAndBadTogether", func(t *testing.T) {
		var out bytes.Buffer
		err := run([]string{"check", "-json", good, cases[0].path}, &out)
		if !errors.Is(err, schema.ErrNotSQLite) {
			t.Errorf("check of a good and a garbage file = %v; want the garbage's error", err)
		}
		lines := strings.Split(strings.TrimSpace(out.String()), "\n")
		if len(lines) != 2 || !strings.Contains(lines[0], `"verdict":"ok"`) || !strings.Contains(lines[1], `"verdict":"not SQLite"`) {
			t.Errorf("-json output:\n%s", out.String())
		}
		var doc struct {
			Report schema.CheckReport `json:"report"`
		}
		if err := json.Unmarshal([]byte(lines[0]), &doc); err != nil || doc.Report.Spans != 1 || doc.Report.Traces != 1 {
			t.Errorf("report of the good file = %+v, %v; want 1 span in 1 trace", doc.Report, err)
		}
	})
}

// TestCopyAndExport_Glob checks that copy and export select the same
// traces with -glob, the viewer's rule: a topic matched across '/', a
// subscription to the very pattern, and neither a topic it does not match
// nor a trace without operations.
func TestCopyAndExport_Glob(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src.db")
	e, err := exporter.New(src)
	if err != nil {
		t.Fatal(err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(e))
	start := time.Now().Add(-time.Minute)
	traces := map[string]string{} // name → trace id
	for _, c := range []struct {
		name  string
		attrs []attribute.KeyValue
	}{
		{"deep", []attribute.KeyValue{schema.Operation(schema.OpNotify), schema.Topic("orders/eu/paris")}},
		{"pattern", []attribute.KeyValue{schema.Operation(schema.OpSubscribeGlob), schema.Glob("orders/*")}},
		{"other", []attribute.KeyValue{schema.Operation(schema.OpNotify), schema.Topic("ordersX")}},
		{"plain", []attribute.KeyValue{schema.Topic("orders/eu")}},
	} {
		_, s := tp.Tracer("test").Start(context.Background(), c.name, trace.WithTimestamp(start), trace.WithAttributes(c.attrs...))
		s.End(trace.WithTimestamp(start.Add(time.Millisecond)))
		traces[c.name] = s.SpanContext().TraceID().String()
	}
	if err := tp.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	want := []string{traces["deep"], traces["pattern"]}
	slices.Sort(want)

	dst := filepath.Join(dir, "glob.db")
	var out bytes.Buffer
	if err := run([]string{"copy", "-since", "beginning", "-glob", "orders/*", src, dst}, &out); err != nil {
		t.Fatalf("copy -glob: %v\n%s", err, out.String())
	}
	var copied []string
	rows, err := openRO(t, dst).Query("SELECT DISTINCT lower(hex(trace_id)) FROM traces ORDER BY 1")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id string
		rows.Scan(&id)
		copied = append(copied, id)
	}
	rows.Close()
	if !slices.Equal(copied, want) {
		t.Errorf("copy -glob 'orders/*' holds traces %v; want %v (%v)", copied, want, traces)
	}

	out.Reset()
	if err := run([]string{"export", "-format", "otlp-jsonl", "-glob", "orders/*", src}, &out); err != nil {
		t.Fatalf("export -glob: %v", err)
	}
	var exported []string
	for _, m := range regexp.MustCompile(`"traceId":"([0-9a-f]{32})"`).FindAllStringSubmatch(out.String(), -1) {
		exported = append(exported, m[1])
	}
	slices.Sort(exported)
	if !slices.Equal(exported, want) {
		t.Errorf("export -glob 'orders/*' writes traces %v; want %v (%v)", exported, want, traces)
	}
}
