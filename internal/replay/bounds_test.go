package replay_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/lonelytrace/lonelytrace/exporter"
	"github.com/lonelytrace/lonelytrace/internal/collect"
	"github.com/lonelytrace/lonelytrace/internal/otlp"
	"github.com/lonelytrace/lonelytrace/internal/otlp/otlptest"
	"github.com/lonelytrace/lonelytrace/internal/replay"
	"github.com/lonelytrace/lonelytrace/schema"
)

// bulkyTraces returns n spans, in traces of four, each carrying a string
// attribute of size bytes (the shape of issue 24: 512 spans of 100 KB
// make one 51 MB request).
func bulkyTraces(n, size int, seed byte) ptrace.Traces {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", "bulky")
	ss := rs.ScopeSpans().AppendEmpty()
	ss.Scope().SetName("bulky")
	payload := strings.Repeat("x", size)
	for i := range n {
		p := ss.Spans().AppendEmpty()
		p.SetTraceID(pcommon.TraceID{seed, 1, byte(i / 4 >> 8), byte(i / 4), 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16})
		p.SetSpanID(pcommon.SpanID{seed, 2, byte(i >> 8), byte(i), 5, 6, 7, 8})
		p.SetName(fmt.Sprintf("op %d", i))
		p.SetStartTimestamp(pcommon.Timestamp(1_700_000_000_000_000_000 + int64(i)*1000))
		p.SetEndTimestamp(pcommon.Timestamp(1_700_000_000_000_000_000 + int64(i)*1000 + 500))
		p.Attributes().PutStr("payload", payload)
	}
	return td
}

// sink is a real `lonelytrace collect` receiver on loopback, storing into
// a trace file of its own, that notes the largest request body it was
// sent and how many it refused as too large.
type sink struct {
	srv  *httptest.Server
	exp  *exporter.Exporter
	path string

	mu       sync.Mutex
	largest  int64
	tooLarge int
}

// newSink starts a sink that takes requests of at most limit bytes, on
// l when it is not nil.
func newSink(t *testing.T, limit int64, l net.Listener) *sink {
	t.Helper()
	s := &sink{path: filepath.Join(t.TempDir(), "received.db")}
	var err error
	if s.exp, err = exporter.New(s.path); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.exp.Shutdown(context.Background()) })
	rc := collect.New(collect.FileStore(s.exp), collect.WithMaxRequestBytes(limit))
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rw := &statusWriter{ResponseWriter: w}
		rc.ServeHTTP(rw, r)
		s.mu.Lock()
		defer s.mu.Unlock()
		if rw.status == http.StatusRequestEntityTooLarge {
			s.tooLarge++
		} else {
			s.largest = max(s.largest, r.ContentLength)
		}
	})
	if l == nil {
		s.srv = httptest.NewServer(h)
	} else {
		s.srv = httptest.NewUnstartedServer(h)
		s.srv.Listener.Close()
		s.srv.Listener = l
		s.srv.Start()
	}
	t.Cleanup(s.srv.Close)
	return s
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

// received closes the sink's file and returns its spans as OTLP lines.
func (s *sink) received(t *testing.T) []string {
	t.Helper()
	if err := s.exp.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	return otlptest.SpanLines(t, otlp.Traces(readFile(t, s.path)))
}

// readFile returns every span of the file at path.
func readFile(t *testing.T, path string) []schema.Span {
	t.Helper()
	ctx := context.Background()
	db, err := schema.OpenRead(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	r := schema.NewReader(db)
	var out []schema.Span
	var after int64
	for {
		page, err := r.After(ctx, after, 1000)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			return out
		}
		out = append(out, page...)
		after = page[len(page)-1].ID
	}
}

// TestReplay_TooLarge: 300 spans of 2 KB make one 600 KB request, which
// a collector that takes 64 KiB answers with 413. Replay halves its
// requests until they fit and sends every span once.
func TestReplay_TooLarge(t *testing.T) {
	in := bulkyTraces(300, 2000, 1)
	path := mustStore(t, in)
	const limit = 64 << 10
	s := newSink(t, limit, nil)
	res, err := replay.Replay(context.Background(), s.srv.URL, []string{path})
	if err != nil {
		t.Fatalf("Replay: %v", err)
	}
	if res.Spans != 300 || res.TooLarge == 0 || res.MaxRequestBytes > limit {
		t.Errorf("result = %+v; want 300 spans, requests cut below %d after a 413", res, limit)
	}
	s.mu.Lock()
	if s.tooLarge != res.TooLarge || s.largest > limit {
		t.Errorf("sink refused %d (replay counted %d), took at most %d bytes; want the same count, at most %d", s.tooLarge, res.TooLarge, s.largest, limit)
	}
	s.mu.Unlock()
	otlptest.DiffLines(t, s.received(t), otlptest.SpanLines(t, in))
}

// TestReplay_MaxRequestBytes: requests stay within the bound asked for
// without any 413.
func TestReplay_MaxRequestBytes(t *testing.T) {
	in := bulkyTraces(200, 1000, 2)
	path := mustStore(t, in)
	s := newSink(t, 16<<20, nil)
	const bound = 20_000
	res, err := replay.Replay(context.Background(), s.srv.URL, []string{path}, replay.WithMaxRequestBytes(bound))
	if err != nil {
		t.Fatalf("Replay: %v", err)
	}
	s.mu.Lock()
	largest := s.largest
	s.mu.Unlock()
	// 200 spans of a bit over 1 KB each: at least ten requests.
	if res.Spans != 200 || res.TooLarge != 0 || largest > bound || largest < bound/2 || res.Requests < 10 {
		t.Errorf("result = %+v, largest request %d bytes; want 200 spans in requests of %d to %d bytes", res, largest, bound/2, bound)
	}
	otlptest.DiffLines(t, s.received(t), otlptest.SpanLines(t, in))
}

// TestReplay_SpanTooLarge: one span larger than the collector takes stops
// the replay, with a position that leaves it out; resuming there sends
// the rest.
func TestReplay_SpanTooLarge(t *testing.T) {
	small := bulkyTraces(6, 100, 3)
	big := bulkyTraces(1, 80_000, 4).ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0)
	// The big span third, among the small ones.
	spans := small.ResourceSpans().At(0).ScopeSpans().At(0).Spans()
	all := ptrace.NewTraces()
	small.ResourceSpans().At(0).Resource().CopyTo(all.ResourceSpans().AppendEmpty().Resource())
	ss := all.ResourceSpans().At(0).ScopeSpans().AppendEmpty()
	ss.Scope().SetName("bulky")
	for i := range spans.Len() {
		if i == 2 {
			big.CopyTo(ss.Spans().AppendEmpty())
		}
		spans.At(i).CopyTo(ss.Spans().AppendEmpty())
	}
	path := mustStore(t, all)
	s := newSink(t, 64<<10, nil)
	ctx := context.Background()
	res, err := replay.Replay(ctx, s.srv.URL, []string{path})
	var stopped *replay.StoppedError
	if !errors.As(err, &stopped) || stopped.Skip == nil || !strings.Contains(err.Error(), "too large") {
		t.Fatalf("Replay = %+v, %v; want a StoppedError that offers to skip the span", res, err)
	}
	if stopped.Resume != (replay.Position{File: 1, After: 2}) || *stopped.Skip != (replay.Position{File: 1, After: 3}) || res.Spans != 2 {
		t.Errorf("stopped at %v (skip %v) having sent %d; want at 1:2, skip 1:3, 2 sent", stopped.Resume, *stopped.Skip, res.Spans)
	}
	res, err = replay.Replay(ctx, s.srv.URL, []string{path}, replay.WithResume(*stopped.Skip))
	if err != nil || res.Spans != 4 {
		t.Fatalf("resumed Replay = %+v, %v; want the 4 spans after the big one", res, err)
	}
	otlptest.DiffLines(t, s.received(t), otlptest.SpanLines(t, small))
}

// TestReplay_Outage: the collector is down (connections refused) for a
// second and a half, then up; replay waits it out and sends every span
// once. It gave up after 8 attempts before, a few hundred milliseconds
// with this backoff (about 25 s with the default one).
func TestReplay_Outage(t *testing.T) {
	in := bulkyTraces(100, 10, 5)
	path := mustStore(t, in)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()

	var s *sink
	up := make(chan struct{})
	go func() {
		defer close(up)
		time.Sleep(1500 * time.Millisecond)
		l, err := net.Listen("tcp", addr)
		if err != nil {
			t.Error(err)
			return
		}
		s = newSink(t, 16<<20, l)
	}()
	res, err := replay.Replay(context.Background(), "http://"+addr, []string{path},
		replay.WithBackoff(20*time.Millisecond, 100*time.Millisecond), replay.WithBatchSize(30))
	<-up
	if err != nil {
		t.Fatalf("Replay: %v", err)
	}
	if res.Spans != 100 || res.Retries < 5 {
		t.Errorf("result = %+v; want 100 spans after several retries", res)
	}
	otlptest.DiffLines(t, s.received(t), otlptest.SpanLines(t, in))
}

// TestReplay_RetryFor: against a collector that never comes, replay
// retries for the horizon asked, then stops where it can resume.
func TestReplay_RetryFor(t *testing.T) {
	path := mustStore(t, bulkyTraces(10, 10, 6))
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	start := time.Now()
	res, err := replay.Replay(context.Background(), "http://"+addr, []string{path},
		replay.WithBackoff(10*time.Millisecond, 50*time.Millisecond), replay.WithRetryFor(300*time.Millisecond))
	took := time.Since(start)
	var stopped *replay.StoppedError
	if !errors.As(err, &stopped) || stopped.Resume != (replay.Position{File: 1}) || !strings.Contains(err.Error(), "giving up after") {
		t.Fatalf("Replay = %+v, %v; want a StoppedError at 1:0, giving up", res, err)
	}
	if took < 300*time.Millisecond || res.Retries < 3 {
		t.Errorf("gave up after %v and %d retries; want the 300 ms horizon used", took, res.Retries)
	}
}

// TestReplay_Resume: a replay of two files that overlap, the second
// holding some spans twice, stops at a request the collector refuses;
// resumed where its error says, it sends the rest, and the collector has
// every span exactly once over both runs.
func TestReplay_Resume(t *testing.T) {
	want := stubs(1000)
	dir := t.TempDir()
	a := mustFile(t, dir, "a.db", want[:800])
	b := mustFile(t, dir, "b.db", append(want[600:], want[900:950]...))
	files := []string{a, b}
	ctx := context.Background()
	for _, stopAt := range []int{3, 8, 9, 10} {
		t.Run(fmt.Sprint(stopAt), func(t *testing.T) {
			var answers []answer
			for range stopAt - 1 {
				answers = append(answers, answer{})
			}
			rc := newReceiver(t, false, append(answers, answer{status: http.StatusBadRequest, message: "refused once"})...)
			opts := []replay.Option{replay.WithBatchSize(100)}
			res, err := replay.Replay(ctx, rc.srv.URL, files, opts...)
			var stopped *replay.StoppedError
			if !errors.As(err, &stopped) || !strings.Contains(err.Error(), "refused once") {
				t.Fatalf("Replay = %+v, %v; want a StoppedError", res, err)
			}
			first := res.Spans
			res, err = replay.Replay(ctx, rc.srv.URL, files, append(opts, replay.WithResume(stopped.Resume))...)
			if err != nil {
				t.Fatalf("resumed at %v: %v", stopped.Resume, err)
			}
			if first+res.Spans != 1000 {
				t.Errorf("sent %d + %d spans; want 1000 in all", first, res.Spans)
			}
			rc.mu.Lock()
			defer rc.mu.Unlock()
			seen := map[string]int{}
			rss := rc.got.ResourceSpans()
			for i := range rss.Len() {
				sss := rss.At(i).ScopeSpans()
				for j := range sss.Len() {
					ps := sss.At(j).Spans()
					for k := range ps.Len() {
						seen[ps.At(k).SpanID().String()]++
					}
				}
			}
			for _, s := range want {
				if n := seen[s.SpanContext.SpanID().String()]; n != 1 {
					t.Errorf("span %q arrived %d times; want once", s.Name, n)
				}
			}
			if len(seen) != len(want) {
				t.Errorf("collector holds %d spans; want %d", len(seen), len(want))
			}
		})
	}
}

// TestReplay_InvalidUTF8: a span whose name is not UTF-8 (bytes ff c3 28,
// which import takes) goes with U+FFFD, counted, to a collector that
// decodes with protobuf-go, which refuses invalid UTF-8; before, it
// answered 400 and every span after that batch was lost.
func TestReplay_InvalidUTF8(t *testing.T) {
	in := bulkyTraces(30, 10, 7)
	in.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0).SetName("\xff\xc3(")
	path := mustStore(t, in)
	c := newCollector(t, false)
	res, err := replay.Replay(context.Background(), c.srv.URL, []string{path}, replay.WithBatchSize(10))
	if err != nil {
		t.Fatalf("Replay: %v", err)
	}
	if res.Spans != 30 || res.Repaired != 1 {
		t.Errorf("result = %+v; want 30 spans, 1 string repaired", res)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	got, ok := c.spans[in.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0).SpanID().String()]
	if len(c.spans) != 30 || !ok || got.span.Name != "\uFFFD\uFFFD(" {
		t.Errorf("collector holds %d spans, the first named %q; want 30, %q", len(c.spans), got.span.GetName(), "\uFFFD\uFFFD(")
	}
}

// TestReplay_ManyResources: every span in a resource of its own, more
// than the reader keeps decoded, all arrive with their own resource.
func TestReplay_ManyResources(t *testing.T) {
	in := ptrace.NewTraces()
	for i := range 5000 {
		rs := in.ResourceSpans().AppendEmpty()
		rs.Resource().Attributes().PutStr("service.instance.id", fmt.Sprintf("fn-%d", i))
		ss := rs.ScopeSpans().AppendEmpty()
		ss.Scope().SetName(fmt.Sprintf("scope-%d", i%4500))
		p := ss.Spans().AppendEmpty()
		p.SetTraceID(pcommon.TraceID{8, 1, byte(i >> 8), byte(i), 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16})
		p.SetSpanID(pcommon.SpanID{8, 2, byte(i >> 8), byte(i), 5, 6, 7, 8})
		p.SetName("invoke")
		p.SetStartTimestamp(pcommon.Timestamp(1_700_000_000_000_000_000 + int64(i)*1000))
		p.SetEndTimestamp(pcommon.Timestamp(1_700_000_000_000_000_000 + int64(i)*1000 + 500))
	}
	path := mustStore(t, in)
	rc := newReceiver(t, false)
	res, err := replay.Replay(context.Background(), rc.srv.URL, []string{path})
	if err != nil || res.Spans != 5000 {
		t.Fatalf("Replay = %+v, %v; want 5000 spans", res, err)
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	otlptest.DiffLines(t, otlptest.SpanLines(t, rc.got), otlptest.SpanLines(t, in))
}

// TestReplay_CopiesInOnePage: a span stored twice in one file, both
// copies in the same page, goes once (before, a page's copies of each
// other both went).
func TestReplay_CopiesInOnePage(t *testing.T) {
	want := stubs(10)
	path := mustFile(t, t.TempDir(), "a.db", append(want[:10:10], want[3:7]...))
	c := newCollector(t, false)
	res, err := replay.Replay(context.Background(), c.srv.URL, []string{path})
	if err != nil {
		t.Fatalf("Replay: %v", err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if res.Spans != 10 || res.Duplicates != 4 || len(c.spans) != 10 || c.duplicate != 0 {
		t.Errorf("result = %+v; collector holds %d, %d sent twice; want 10 spans sent once, 4 copies skipped", res, len(c.spans), c.duplicate)
	}
}
