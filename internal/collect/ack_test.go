package collect

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/lonelytrace/lonelytrace/exporter"
	"github.com/lonelytrace/lonelytrace/internal/otlp/otlptest"
)

// answer is what a client was told of one request: its HTTP status (a
// gRPC answer mapped to one), the spans a partial success rejected, and
// the failure's message.
type answer struct {
	code     int
	rejected int64
	msg      string
}

// send exports td to url over HTTP when gc is nil, else over gRPC, and
// reports the answer; it fails only the caller's own goroutine.
func send(url string, gc ptraceotlp.GRPCClient, td ptrace.Traces) (answer, error) {
	if gc != nil {
		resp, err := gc.Export(context.Background(), ptraceotlp.NewExportRequestFromTraces(td))
		switch status.Code(err) {
		case codes.OK:
			return answer{code: http.StatusOK, rejected: resp.PartialSuccess().RejectedSpans()}, nil
		case codes.Unavailable:
			return answer{code: http.StatusServiceUnavailable, msg: err.Error()}, nil
		case codes.InvalidArgument:
			return answer{code: http.StatusBadRequest, msg: err.Error()}, nil
		}
		return answer{}, fmt.Errorf("gRPC export: %w", err)
	}
	b, err := ptraceotlp.NewExportRequestFromTraces(td).MarshalProto()
	if err != nil {
		return answer{}, err
	}
	res, err := http.Post(url+TracesPath, contentProtobuf, bytes.NewReader(b))
	if err != nil {
		return answer{}, err
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		return answer{}, err
	}
	a := answer{code: res.StatusCode, msg: string(raw)}
	if res.StatusCode == http.StatusOK {
		resp := ptraceotlp.NewExportResponse()
		if err := resp.UnmarshalProto(raw); err != nil {
			return answer{}, err
		}
		a.rejected = resp.PartialSuccess().RejectedSpans()
	}
	return a, nil
}

// TestReceiver_TwoWritersOneFile has two receivers, each with its own
// writer, store into one file while clients send to both over HTTP and
// gRPC. The busy timeout is short, so each writer often finds the other's
// lock held past it: every span a client was told is accepted must be in
// the file exactly once all the same, and no other span (no client gives
// up on a request, so none is sent twice).
func TestReceiver_TwoWritersOneFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "traces.db")
	var urls [2]string
	var gcs [2]ptraceotlp.GRPCClient
	var exs [2]*exporter.Exporter
	for i := range 2 {
		ex, err := exporter.New(path, exporter.WithBusyTimeout(20*time.Millisecond), exporter.WithRetryBackoff(5*time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		exs[i] = ex
		t.Cleanup(func() { ex.Shutdown(context.Background()) })
		r := New(FileStore(ex), WithQueueWait(time.Second))
		urls[i], gcs[i] = serve(t, r), serveGRPC(t, r)
	}

	const clients, requests, batch = 8, 30, 50
	var seq atomic.Uint64
	var mu sync.Mutex
	acked := make(map[pcommon.SpanID]bool)
	var sent, retried atomic.Int64
	var wg sync.WaitGroup
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			url, gc := urls[c%2], gcs[c%2]
			if c%4 >= 2 {
				gc = nil // HTTP
			}
			for range requests {
				td := uniqueTraces(batch, &seq)
				sent.Add(batch)
				for try := 0; ; try++ {
					a, err := send(url, gc, td)
					if err != nil {
						t.Errorf("client %d: %v", c, err)
						return
					}
					if a.code == http.StatusServiceUnavailable && try < 50 {
						retried.Add(1)
						time.Sleep(20 * time.Millisecond)
						continue
					}
					if a.code != http.StatusOK || a.rejected != 0 {
						t.Errorf("client %d: answer %+v; want 200 with nothing rejected", c, a)
						return
					}
					break
				}
				spans := td.ResourceSpans().At(0).ScopeSpans().At(0).Spans()
				mu.Lock()
				for i := range spans.Len() {
					acked[spans.At(i).SpanID()] = true
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	for _, ex := range exs {
		if err := ex.Shutdown(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	stored := otlptest.StoredSpanIDs(t, path)
	var missing, twice, unasked int
	for id := range acked {
		switch stored[id] {
		case 0:
			missing++
		case 1:
		default:
			twice++
		}
	}
	for id := range stored {
		if !acked[id] {
			unasked++
		}
	}
	if missing != 0 || twice != 0 || unasked != 0 {
		t.Errorf("of %d spans acknowledged, %d are missing from the file and %d stored more than once; %d stored were never acknowledged", len(acked), missing, twice, unasked)
	}
	if int64(len(acked)) != sent.Load() {
		t.Errorf("acknowledged %d spans of %d sent", len(acked), sent.Load())
	}
	s0, s1 := exs[0].Stats(), exs[1].Stats()
	t.Logf("%d spans acknowledged and stored by two writers (%d and %d transactions), %d requests told to retry", len(acked), s0.Transactions, s1.Transactions, retried.Load())
}

// TestReceiver_BadRequestIsolated sends good requests, one with a few
// spans the file refuses (a trigger of the file rejects them) and one with
// nothing else, so that they meet in one transaction: only the refused
// spans are left out, with the file's reason (a partial success for the
// first, 400 for the second), and every good span is answered and stored.
func TestReceiver_BadRequestIsolated(t *testing.T) {
	st := mustStore(t)
	ctx := context.Background()
	db, err := sql.Open("sqlite", "file:"+st.path+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`CREATE TRIGGER poison BEFORE INSERT ON spans WHEN NEW.name = 'poison'
		BEGIN SELECT RAISE(ABORT, 'poison span refused'); END`); err != nil {
		t.Fatal(err)
	}
	// Hold the write lock, so that every request is queued before the
	// writer can begin: then they all go into its next transaction.
	hold, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer hold.Close()
	if _, err := hold.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		t.Fatal(err)
	}
	r := New(st)
	url, gc := serve(t, r), serveGRPC(t, r)

	const good, batch, mixedBad = 6, 20, 5
	var seq atomic.Uint64
	answers := make([]answer, good+2)
	tds := make([]ptrace.Traces, good+2)
	for i := range tds {
		tds[i] = uniqueTraces(batch, &seq)
	}
	// tds[good] has mixedBad poison spans among good ones, tds[good+1]
	// only poison.
	mixed := tds[good].ResourceSpans().At(0).ScopeSpans().At(0).Spans()
	for i := range mixedBad {
		mixed.At(i * 4).SetName("poison")
	}
	spans := tds[good+1].ResourceSpans().At(0).ScopeSpans().At(0).Spans()
	for i := range spans.Len() {
		spans.At(i).SetName("poison")
	}
	before := st.ex.Stats().Batches
	var wg sync.WaitGroup
	for i := range tds {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var g ptraceotlp.GRPCClient
			if i%2 == 1 {
				g = gc
			}
			var err error
			if answers[i], err = send(url, g, tds[i]); err != nil {
				t.Errorf("request %d: %v", i, err)
			}
		}()
	}
	waitUntil(t, "every request queued", func() bool { return st.ex.Stats().Batches == before+good+2 })
	if _, err := hold.ExecContext(ctx, "ROLLBACK"); err != nil {
		t.Fatal(err)
	}
	wg.Wait()

	for i, a := range answers[:good] {
		if a.code != http.StatusOK || a.rejected != 0 {
			t.Errorf("good request %d: answer %+v; want 200 with nothing rejected", i, a)
		}
	}
	if a := answers[good]; a.code != http.StatusOK || a.rejected != mixedBad {
		t.Errorf("request with %d bad spans: answer %+v; want 200 with %d rejected", mixedBad, a, mixedBad)
	}
	if a := answers[good+1]; a.code != http.StatusBadRequest || !strings.Contains(a.msg, "poison span refused") {
		t.Errorf("bad request: answer %+v; want 400 saying the file's reason", a)
	}
	stored := otlptest.StoredSpanIDs(t, st.path)
	for i, td := range tds {
		spans := td.ResourceSpans().At(0).ScopeSpans().At(0).Spans()
		n := 0
		for k := range spans.Len() {
			n += stored[spans.At(k).SpanID()]
		}
		want := map[int]int{good: batch - mixedBad, good + 1: 0}[i]
		if i < good {
			want = batch
		}
		if n != want {
			t.Errorf("request %d: %d spans stored; want %d", i, n, want)
		}
	}
	if s := st.ex.Stats(); s.Failed != batch+mixedBad {
		t.Errorf("exporter Stats = %+v; want the %d bad spans failed", s, batch+mixedBad)
	}
}

// waitUntil waits for cond, at most ten seconds.
func waitUntil(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			tb.Fatalf("waited ten seconds for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
