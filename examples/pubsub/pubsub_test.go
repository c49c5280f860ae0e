package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/lonelytrace/lonelytrace/schema"
	"github.com/lonelytrace/lonelytrace/viewer"
)

// TestMain lets the test binary play the demo's children: the demo
// re-executes os.Executable, which under go test is this binary.
func TestMain(m *testing.M) {
	if role := os.Getenv(envRole); role != "" {
		os.Exit(childMain(role, os.Args[1:]))
	}
	os.Exit(m.Run())
}

// demo runs the demo with args until it prints its viewer URL (or exits),
// and returns the URL ("" with -no-serve), a stop function that ends the
// run and returns its error, and everything it printed so far.
func demo(t *testing.T, args ...string) (url string, stop func() error, printed *lockedBuffer) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	errc := make(chan error, 1)
	go func() {
		err := run(ctx, args, pw, &testWriter{t: t})
		pw.CloseWithError(io.EOF)
		errc <- err
	}()
	printed = new(lockedBuffer)
	urlc := make(chan string, 1)
	go func() {
		s := bufio.NewScanner(pr)
		sent := false
		for s.Scan() {
			line := s.Text()
			printed.WriteString(line + "\n")
			if _, rest, ok := strings.Cut(line, "viewer at "); ok && !sent {
				urlc <- strings.Fields(rest)[0]
				sent = true
			}
		}
		close(urlc)
	}()
	select {
	case url = <-urlc:
	case <-time.After(2 * time.Minute):
		cancel()
		t.Fatal("demo did not finish its run within 2 minutes")
	}
	return url, func() error {
		cancel()
		select {
		case err := <-errc:
			return err
		case <-time.After(30 * time.Second):
			t.Fatal("demo did not stop within 30 s of its context ending")
			return nil
		}
	}, printed
}

// lockedBuffer is the demo's output, written by one goroutine and read by
// the test.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) WriteString(s string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.b.WriteString(s)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

type testWriter struct{ t *testing.T }

func (w *testWriter) Write(b []byte) (int, error) {
	w.t.Logf("stderr: %s", strings.TrimRight(string(b), "\n"))
	return len(b), nil
}

// fileSpans reads every span of a trace file.
func fileSpans(t *testing.T, path string) []schema.Span {
	t.Helper()
	ctx := context.Background()
	db, err := schema.OpenRead(ctx, path)
	if err != nil {
		t.Fatalf("open %s: %v", path, err)
	}
	defer db.Close()
	r := schema.NewReader(db)
	var all []schema.Span
	var after int64
	for {
		spans, err := r.After(ctx, after, 1000)
		if err != nil {
			t.Fatalf("read %s: %v", path, err)
		}
		if len(spans) == 0 {
			return all
		}
		all = append(all, spans...)
		after = spans[len(spans)-1].ID
	}
}

func serviceName(s schema.Span) string {
	for _, kv := range s.Resource.Attributes {
		if kv.Key == "service.name" {
			return kv.Value.AsString()
		}
	}
	return ""
}

func TestDemo(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the demo's processes for several seconds")
	}
	dir := t.TempDir()
	url, stop, printed := demo(t, "-duration", "5s", "-rate", "30", "-out", dir, "-addr", "127.0.0.1:0")
	if url == "" {
		t.Fatalf("no viewer URL printed; output:\n%s", printed)
	}

	subscribers := []string{"subscriber-1-stateful", "subscriber-2-flaky", "subscriber-3", "subscriber-4"}
	// Every span, by span id, across files, as the viewer stitches them.
	byID := map[trace.SpanID]schema.Span{}
	notifies := map[trace.SpanID]bool{}
	for _, name := range subscribers {
		path := filepath.Join(dir, name+".db")
		if !strings.Contains(printed.String(), path) {
			t.Errorf("file %s not listed in the output", path)
		}
		spans := fileSpans(t, path)
		ops := map[string]int{}
		returned := 0
		for _, s := range spans {
			byID[s.SpanID] = s
			svc := serviceName(s)
			switch {
			case svc == name:
				ops[s.PubSub.Op]++
				if s.PubSub.Op == schema.OpNotify {
					notifies[s.SpanID] = true
				}
			case strings.HasPrefix(svc, "broadcaster-"):
				returned++
			default:
				t.Errorf("%s: span %q of service %q", name, s.Name, svc)
			}
		}
		want := []string{schema.OpNotify, schema.OpReceive, schema.OpSubscribeExact, schema.OpSubscribeGlob,
			schema.OpUnsubscribeExact, schema.OpUnsubscribeGlob, schema.OpSetSubscriptions}
		if strings.Contains(name, "flaky") {
			want = append(want, schema.OpMissed)
		}
		for _, op := range want {
			if ops[op] == 0 {
				t.Errorf("%s: no %s span of its own (ops %v)", name, op, ops)
			}
		}
		if returned == 0 {
			t.Errorf("%s: no broadcaster spans rode home", name)
		}
		// Read alone, the file's operations are its own spans': the
		// broadcaster's server spans that rode home beside them, which
		// carry the subscription operations too, are their phases.
		counts := fileOperations(t, path)
		for _, op := range schema.Operations {
			if counts[op] != int64(ops[op]) {
				t.Errorf("%s alone: viewer counts %d %s operations; the file holds %d %s spans of its own", name, counts[op], op, ops[op], op)
			}
		}
	}
	for i := 1; i <= 2; i++ {
		if _, err := os.Stat(filepath.Join(dir, "broadcaster-"+strconv.Itoa(i)+".db")); !os.IsNotExist(err) {
			t.Errorf("broadcaster-%d kept a file without -broadcaster-files (stat: %v)", i, err)
		}
	}

	// Cross-process links: broadcaster spans hang from the notifier's send
	// request, and receives (in other files) from the broadcaster's send
	// receive.
	var serverUnderSend, receiveUnderSendReceive int
	for _, s := range byID {
		p, ok := byID[s.ParentSpanID]
		if !ok || s.TraceID != p.TraceID {
			continue
		}
		if strings.HasPrefix(serviceName(s), "broadcaster-") && s.ParentRemote && p.Name == "send request" {
			serverUnderSend++
		}
		if s.PubSub.Op == schema.OpReceive && s.ParentRemote && p.Name == "send receive" {
			receiveUnderSendReceive++
		}
	}
	if serverUnderSend == 0 || receiveUnderSendReceive == 0 {
		t.Errorf("cross-process parents: %d broadcaster spans under send request, %d receives under send receive; want both > 0",
			serverUnderSend, receiveUnderSendReceive)
	}
	checkFailures(t, byID)

	sum := summary(t, url)
	// An operation counts once: the page counts the subscription
	// operations the demo made, though the broadcaster's server span of
	// each carries the operation too and rode home beside the client's.
	made := subscriptionOpsPrinted(t, printed.String())
	var counted int64
	for _, op := range []string{schema.OpSubscribeExact, schema.OpSubscribeGlob, schema.OpUnsubscribeExact,
		schema.OpUnsubscribeGlob, schema.OpSetSubscriptions} {
		counted += sum.Operations[op].Count
	}
	if counted != made {
		t.Errorf("viewer counts %d subscription operations; the demo made %d", counted, made)
	}
	if sum.Broadcasters != 2 {
		t.Errorf("broadcasters = %d; want 2", sum.Broadcasters)
	}
	if got := sum.Operations[schema.OpNotify].Count; got != int64(len(notifies)) {
		t.Errorf("summary notify count = %d; want %d, the notify spans in the files", got, len(notifies))
	}
	for _, op := range schema.Operations {
		o := sum.Operations[op]
		if o == nil || o.Count == 0 || o.DurationMs == nil || o.SinceMostRecentMs == nil || o.Stateless.Count == 0 {
			t.Errorf("summary %s = %+v; want a count, durations, a most recent and stateless ones", op, o)
			continue
		}
		if op != schema.OpMissed && o.Stateful.Count == 0 {
			t.Errorf("summary %s has no stateful ones", op)
		}
	}
	for _, op := range []string{schema.OpNotify, schema.OpReceive} {
		o := sum.Operations[op]
		if o == nil || o.Bytes == 0 || o.SizeBytes == nil || len(o.BySize) < 4 {
			t.Errorf("summary %s sizes = %+v; want bytes, size percentiles and several buckets", op, o)
		}
		avg := sum.AverageTrace[op]
		if avg == nil || avg.Operations == 0 || len(avg.Phases) == 0 {
			t.Errorf("average trace of %s = %+v; want phases", op, avg)
		}
	}
	if o := sum.Operations[schema.OpNotify]; o != nil && len(o.BySubscribers) < 2 {
		t.Errorf("notify by subscribers = %+v; want several subscriber counts", o.BySubscribers)
	}
	phases := map[string]bool{}
	if avg := sum.AverageTrace[schema.OpNotify]; avg != nil {
		for _, p := range avg.Phases {
			phases[p.Name] = true
		}
	}
	for _, name := range []string{"hash", "send request", "auth", "find subscribers", "send receive", "receive confirmed", "response received"} {
		if !phases[name] {
			t.Errorf("average notify trace lacks phase %q (has %v)", name, phases)
		}
	}
	if sum.Dropped != 0 {
		t.Errorf("dropped = %d; want 0", sum.Dropped)
	}

	if err := stop(); err != nil {
		t.Errorf("run: %v", err)
	}
}

// fileOperations returns the viewer's count of each operation in the
// trace file at path, read alone.
func fileOperations(t *testing.T, path string) map[string]int64 {
	t.Helper()
	v, err := viewer.Open(path)
	if err != nil {
		t.Fatalf("open %s: %v", path, err)
	}
	defer v.Close()
	sum, err := v.Summary(context.Background(), viewer.Query{SinceBeginning: true, Until: time.Now()})
	if err != nil {
		t.Fatalf("summary of %s: %v", path, err)
	}
	counts := map[string]int64{}
	for op, o := range sum.Operations {
		counts[op] = o.Count
	}
	return counts
}

// subscriptionOpsPrinted returns the subscription operations the demo's
// last progress line says it made.
func subscriptionOpsPrinted(t *testing.T, printed string) int64 {
	t.Helper()
	n := int64(-1)
	for _, line := range strings.Split(printed, "\n") {
		if _, rest, ok := strings.Cut(line, "subscription ops "); ok {
			v, err := strconv.ParseInt(strings.Fields(rest)[0], 10, 64)
			if err != nil {
				t.Fatalf("progress line %q: %v", line, err)
			}
			n = v
		}
	}
	if n <= 0 {
		t.Fatalf("no subscription operations printed:\n%s", printed)
	}
	return n
}

// checkFailures checks that the demo records failures as real
// instrumentation does (docs/design.md#span-conventions): every span the
// demo failed has status Error with a message and an exception event with
// exception.type and the same exception.message; the flaky subscriber's
// failed receives are stored as operations with status Error; and every
// retried notify shows, among its phases, the failed attempt that caused
// each retry.
func checkFailures(t *testing.T, byID map[trace.SpanID]schema.Span) {
	t.Helper()
	children := map[trace.SpanID][]schema.Span{}
	failedOps := map[string]int{}
	failed, exceptions := 0, 0
	types := map[string]int{}
	for _, s := range byID {
		children[s.ParentSpanID] = append(children[s.ParentSpanID], s)
		var exc *schema.Event
		for i, e := range s.Events {
			if e.Name == "exception" {
				exc = &s.Events[i]
			}
		}
		if exc != nil {
			exceptions++
		}
		if s.StatusCode != codes.Error {
			if exc != nil && s.Scope.Name == tracerName {
				t.Errorf("span %s %q has an exception event but status %v", s.SpanID, s.Name, s.StatusCode)
			}
			continue
		}
		failed++
		if s.PubSub.Op != "" {
			failedOps[s.PubSub.Op]++
		}
		if s.Scope.Name != tracerName {
			continue // failed by other instrumentation, such as span return's server span
		}
		if exc == nil {
			t.Errorf("span %s %q of %s: status Error %q without an exception event", s.SpanID, s.Name, serviceName(s), s.StatusMsg)
			continue
		}
		var typ, msg string
		for _, kv := range exc.Attributes {
			switch kv.Key {
			case "exception.type":
				typ = kv.Value.AsString()
			case "exception.message":
				msg = kv.Value.AsString()
			}
		}
		if typ == "" || msg == "" || msg != s.StatusMsg {
			t.Errorf("span %s %q: exception type %q message %q, status message %q; want a type and the status message",
				s.SpanID, s.Name, typ, msg, s.StatusMsg)
		}
		// An anonymous type says nothing of what happened (failures.go);
		// the demo is package main, named by its import path, as is its scope.
		switch typ {
		case "*errors.errorString", "*fmt.wrapError", "*fmt.wrapErrors", "*errors.joinError":
			t.Errorf("span %s %q: exception type %q (message %q); want a type that says what happened", s.SpanID, s.Name, typ, msg)
		}
		types[typ]++
	}
	t.Logf("exception types: %v", types)
	if types[tracerName+".UnavailableError"] == 0 {
		t.Errorf("exception types %v; want %s.UnavailableError among them (the flaky subscriber's failures)", types, tracerName)
	}
	t.Logf("%d spans with status Error, %d exception events, failed operations %v", failed, exceptions, failedOps)
	if failedOps[schema.OpReceive] == 0 || exceptions == 0 {
		t.Errorf("failed receives = %d, exception events = %d; want both > 0 (the flaky subscriber fails a third of its deliveries)",
			failedOps[schema.OpReceive], exceptions)
	}

	retried := 0
	for _, s := range byID {
		if s.PubSub.Op != schema.OpNotify || s.Scope.Name != tracerName {
			continue
		}
		waits, attemptsFailed := 0, 0
		for _, c := range children[s.SpanID] {
			switch {
			case c.Name == "waiting to retry":
				waits++
			case (c.Name == "send request" || c.Name == "response received") && c.StatusCode == codes.Error:
				attemptsFailed++
			}
		}
		if waits > 0 {
			retried++
		}
		if attemptsFailed < waits {
			t.Errorf("notify %s retried %d times after %d failed attempts; want a failed attempt before each retry", s.SpanID, waits, attemptsFailed)
		}
		if s.StatusCode == codes.Error && attemptsFailed == 0 {
			t.Errorf("notify %s failed (%q) with no failed attempt", s.SpanID, s.StatusMsg)
		}
	}
	t.Logf("%d notifies retried", retried)
}

// summaryJSON is the part of /api/summary the test reads.
type summaryJSON struct {
	Spans        int64 `json:"spans"`
	Dropped      int64 `json:"dropped"`
	Broadcasters int   `json:"broadcasters"`
	Operations   map[string]*struct {
		Count             int64           `json:"count"`
		Bytes             uint64          `json:"bytes"`
		SinceMostRecentMs *float64        `json:"since_most_recent_ms"`
		DurationMs        json.RawMessage `json:"duration_ms"`
		SizeBytes         json.RawMessage `json:"size_bytes"`
		BySubscribers     []struct {
			Subscribers int `json:"subscribers"`
		} `json:"by_subscribers"`
		BySize    []json.RawMessage     `json:"by_size"`
		Stateless struct{ Count int64 } `json:"stateless"`
		Stateful  struct{ Count int64 } `json:"stateful"`
	} `json:"operations"`
	AverageTrace map[string]*struct {
		Operations int `json:"operations"`
		Phases     []struct {
			Name string `json:"name"`
		} `json:"phases"`
	} `json:"average_trace"`
}

func summary(t *testing.T, url string) summaryJSON {
	t.Helper()
	resp, err := http.Get(url + "api/summary?since=beginning")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("summary: %s: %s", resp.Status, b)
	}
	var s summaryJSON
	if err := json.NewDecoder(resp.Body).Decode(&s); err != nil {
		t.Fatal(err)
	}
	// A JSON null decodes into a RawMessage as "null".
	for _, o := range s.Operations {
		if o != nil && string(o.DurationMs) == "null" {
			o.DurationMs = nil
		}
		if o != nil && string(o.SizeBytes) == "null" {
			o.SizeBytes = nil
		}
	}
	return s
}

// TestDemo_BroadcasterFiles checks that with -broadcaster-files the
// broadcasters keep files too, of the spans that did not ride home: those
// ending after the answer, such as send missed.
func TestDemo_BroadcasterFiles(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the demo's processes for several seconds")
	}
	dir := t.TempDir()
	_, stop, printed := demo(t, "-duration", "3s", "-rate", "30", "-subscribers", "2", "-broadcasters", "1",
		"-out", dir, "-no-serve", "-broadcaster-files")
	if err := stop(); err != nil {
		t.Fatalf("run: %v\n%s", err, printed)
	}
	own := map[trace.SpanID]schema.Span{}
	for _, s := range fileSpans(t, filepath.Join(dir, "broadcaster-1.db")) {
		if serviceName(s) != "broadcaster-1" {
			t.Errorf("broadcaster file holds a span of %q", serviceName(s))
		}
		own[s.SpanID] = s
	}
	returned, missed := 0, 0
	for _, name := range []string{"subscriber-1-stateful", "subscriber-2-flaky"} {
		for _, s := range fileSpans(t, filepath.Join(dir, name+".db")) {
			if _, dup := own[s.SpanID]; dup {
				t.Errorf("span %s (%q) is in %s and in the broadcaster's file", s.SpanID, s.Name, name)
			}
			if serviceName(s) == "broadcaster-1" {
				returned++
			}
			if s.PubSub.Op == schema.OpMissed {
				missed++
				if p, ok := own[s.ParentSpanID]; !ok || p.Name != "send missed" {
					t.Errorf("missed span %s: parent %s is no send missed span of the broadcaster's file", s.SpanID, s.ParentSpanID)
				}
			}
		}
	}
	if returned == 0 {
		t.Error("no broadcaster spans rode home")
	}
	t.Logf("%d spans rode home; the broadcaster kept %d, %d missed messages", returned, len(own), missed)
}

func TestParseOptions(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		ok   bool
	}{
		{"Defaults", nil, true},
		{"OneSubscriber", []string{"-subscribers", "1"}, false},
		{"ZeroRate", []string{"-rate", "0"}, false},
		{"NoBroadcaster", []string{"-broadcasters", "0"}, false},
		{"NotLoopback", []string{"-addr", "0.0.0.0:8080"}, false},
		{"NotLoopbackNoServe", []string{"-addr", "0.0.0.0:8080", "-no-serve"}, true},
		{"Extra", []string{"x"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseOptions(tc.args, io.Discard)
			if (err == nil) != tc.ok {
				t.Errorf("parseOptions(%q) error = %v; want ok = %v", tc.args, err, tc.ok)
			}
		})
	}
}
