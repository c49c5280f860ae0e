package jaegerquery

import (
	"context"
	"errors"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/lonelytrace/lonelytrace/schema"
)

var (
	t0      = time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	windowE = t0.Add(time.Hour)
)

// fileSpans returns the (trace id, span id) pairs the file holds, and
// how many rows of spans it has.
func fileSpans(t *testing.T, path string) (pairs map[string]bool, rows int) {
	t.Helper()
	db, err := schema.OpenRead(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	r, err := db.Query("SELECT t.trace_id, s.span_id FROM " + schema.TracesTable + " AS t JOIN " + schema.SpansTable + " AS s ON s.trace = t.id")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	pairs = make(map[string]bool)
	for r.Next() {
		var tid, sid []byte
		if err := r.Scan(&tid, &sid); err != nil {
			t.Fatal(err)
		}
		pairs[string(tid)+string(sid)] = true
		rows++
	}
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
	return pairs, rows
}

// wantSpans counts the spans of the traces with a span that starts in
// [since, until), the way the test data is made.
func wantSpans(traces []fakeTrace, since, until time.Time) (spans, ntraces int) {
	for _, tr := range traces {
		in := false
		for _, s := range tr.spans {
			if !s.start.Before(since) && s.start.Before(until) {
				in = true
			}
		}
		if in {
			spans += len(tr.spans)
			ntraces++
		}
	}
	return spans, ntraces
}

func TestFetch_Halving(t *testing.T) {
	services := []string{"orders", "billing", "mail"}
	traces := makeTraces(300, services, t0, 10*time.Second) // 50 min
	// A trace of one service with spans 40 minutes apart: two slices of
	// that service find it.
	long := fakeTrace{id: pcommon.TraceID{0xcd, 1}, spans: []fakeSpan{
		{service: "mail", spanID: pcommon.SpanID{0xcd, 1}, start: t0.Add(time.Minute)},
		{service: "mail", spanID: pcommon.SpanID{0xcd, 2}, start: t0.Add(41 * time.Minute)},
	}}
	traces = append(traces, long)
	f := startFake(t, services, traces)
	path := filepath.Join(t.TempDir(), "jaeger.db")
	const depth = 7
	res, err := FetchFile(context.Background(), f.addr, path, t0, windowE, WithSearchDepth(depth))
	if err != nil {
		t.Fatal(err)
	}
	if !res.Complete() || !res.CoveredSince.Equal(t0) {
		t.Errorf("result = %+v; want complete from %s", res, t0)
	}
	want, ntraces := wantSpans(traces, t0, windowE)
	pairs, rows := fileSpans(t, path)
	if rows != want || len(pairs) != want {
		t.Errorf("file holds %d spans (%d distinct); want %d", rows, len(pairs), want)
	}
	if res.Spans != want || res.Traces != ntraces {
		t.Errorf("result counts %d spans, %d traces; want %d, %d", res.Spans, res.Traces, want, ntraces)
	}
	if res.Duplicates == 0 {
		t.Errorf("duplicates = 0; want the traces of two services seen twice")
	}
	qs := f.findQueries()
	if len(qs) != res.Queries || len(qs) < 2*len(traces)/depth {
		t.Errorf("queries = %d (result says %d); want at least %d: slices were not halved", len(qs), res.Queries, 2*len(traces)/depth)
	}
	for _, q := range qs {
		if !q.raw || q.depth != depth {
			t.Fatalf("query %+v: want raw_traces and search_depth %d", q, depth)
		}
	}

	t.Run("Again", func(t *testing.T) {
		res, err := FetchFile(context.Background(), f.addr, path, t0, windowE, WithSearchDepth(depth))
		if err != nil {
			t.Fatal(err)
		}
		if res.Spans != 0 {
			t.Errorf("second fetch stored %d spans; want 0", res.Spans)
		}
		if _, rows := fileSpans(t, path); rows != want {
			t.Errorf("file holds %d spans; want %d", rows, want)
		}
	})
}

func TestFetch_Budget(t *testing.T) {
	services := []string{"orders", "billing"}
	traces := makeTraces(200, services, t0, 15*time.Second)
	f := startFake(t, services, traces)
	path := filepath.Join(t.TempDir(), "jaeger.db")
	res, err := FetchFile(context.Background(), f.addr, path, t0, windowE, WithSearchDepth(10), WithMaxTraces(50))
	if err != nil {
		t.Fatal(err)
	}
	if res.Complete() || !strings.Contains(res.Reason, "trace budget") {
		t.Fatalf("result = %+v; want stopped by the trace budget", res)
	}
	if !res.CoveredSince.After(t0) || res.Traces > 50 {
		t.Fatalf("covered since %s with %d traces; want after %s, at most 50", res.CoveredSince, res.Traces, t0)
	}
	// Every span of every trace with a span in the covered window is in
	// the file.
	pairs, _ := fileSpans(t, path)
	for _, tr := range traces {
		in := false
		for _, s := range tr.spans {
			in = in || (!s.start.Before(res.CoveredSince) && s.start.Before(windowE))
		}
		for _, s := range tr.spans {
			if in && !pairs[string(tr.id[:])+string(s.spanID[:])] {
				t.Fatalf("span %s/%s of the covered window is missing", tr.id, s.spanID)
			}
		}
	}
	if want, n := wantSpans(traces, res.CoveredSince, windowE); n > 50 || len(pairs) < want {
		t.Errorf("file holds %d spans; covered window has %d spans in %d traces", len(pairs), want, n)
	}
}

func TestFetch_ErrorMidStream(t *testing.T) {
	services := []string{"orders", "billing"}
	traces := makeTraces(40, services, t0, time.Minute)
	f := startFake(t, services, traces)
	f.setReply(func(q findQuery, msgs [][]byte) ([][]byte, error) {
		if q.service == "billing" && len(msgs) > 2 {
			return msgs[:2], status.Error(codes.Internal, "cassandra: read timeout")
		}
		return msgs, nil
	})
	path := filepath.Join(t.TempDir(), "jaeger.db")
	res, err := FetchFile(context.Background(), f.addr, path, t0, windowE)
	if err == nil || !strings.Contains(err.Error(), "cassandra: read timeout") || !strings.Contains(err.Error(), `"billing"`) {
		t.Fatalf("err = %v; want Jaeger's error naming the service", err)
	}
	// The slice cut short is not stored: the file holds what the
	// result counts, the traces of orders.
	_, rows := fileSpans(t, path)
	if rows != res.Spans {
		t.Errorf("file holds %d spans; result counts %d", rows, res.Spans)
	}
	var orders []fakeTrace
	for _, tr := range traces {
		if tr.spans[0].service == "orders" || (len(tr.spans) > 1 && tr.spans[1].service == "orders") {
			orders = append(orders, tr)
		}
	}
	if want, _ := wantSpans(orders, t0, windowE); rows != want {
		t.Errorf("file holds %d spans; want the %d of the traces of orders", rows, want)
	}
	if !res.CoveredSince.Equal(windowE) {
		t.Errorf("covered since %s; want %s: billing was not fetched", res.CoveredSince, windowE)
	}
}

func TestFetch_Errors(t *testing.T) {
	t.Run("Unreachable", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		_, err = FetchFile(context.Background(), addr, filepath.Join(t.TempDir(), "j.db"), t0, windowE)
		if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), addr) {
			t.Errorf("err = %v; want ErrUnavailable naming %s", err, addr)
		}
	})
	t.Run("UnknownService", func(t *testing.T) {
		f := startFake(t, []string{"orders"}, nil)
		_, err := FetchFile(context.Background(), f.addr, filepath.Join(t.TempDir(), "j.db"), t0, windowE, WithServices("nope"))
		if !errors.Is(err, ErrUnknownService) || !strings.Contains(err.Error(), `"nope"`) {
			t.Errorf("err = %v; want ErrUnknownService naming it", err)
		}
	})
	t.Run("OverLimit", func(t *testing.T) {
		traces := makeTraces(3, []string{"orders"}, t0, time.Minute)
		traces[1].spans[0].attrs = map[string]string{"payload": strings.Repeat("x", 2<<20)}
		f := startFake(t, []string{"orders"}, traces)
		_, err := FetchFile(context.Background(), f.addr, filepath.Join(t.TempDir(), "j.db"), t0, windowE, WithMaxMessageBytes(1<<20))
		if !errors.Is(err, ErrTooLarge) {
			t.Errorf("err = %v; want ErrTooLarge", err)
		}
	})
	t.Run("StorageError", func(t *testing.T) {
		f := startFake(t, []string{"orders"}, nil)
		f.setReply(func(findQuery, [][]byte) ([][]byte, error) {
			return nil, status.Error(codes.Unknown, "search depth must be greater than 0 and less than max traces")
		})
		_, err := FetchFile(context.Background(), f.addr, filepath.Join(t.TempDir(), "j.db"), t0, windowE)
		if err == nil || !strings.Contains(err.Error(), "search depth must be") || !strings.Contains(err.Error(), f.addr) {
			t.Errorf("err = %v; want Jaeger's words and its address", err)
		}
	})
	t.Run("EmptyWindow", func(t *testing.T) {
		f := startFake(t, []string{"orders"}, nil)
		if _, err := FetchFile(context.Background(), f.addr, filepath.Join(t.TempDir(), "j.db"), windowE, t0); err == nil {
			t.Error("err = nil; want an error for until before since")
		}
	})
}

func TestFetch_HostileSpans(t *testing.T) {
	traces := makeTraces(5, []string{"orders"}, t0, time.Minute)
	// A huge attribute under the limit is stored whole.
	huge := strings.Repeat("é", 1<<20)
	traces[2].spans[0].attrs = map[string]string{"payload": huge, strings.Repeat("k", 4096): "v"}
	f := startFake(t, []string{"orders"}, traces)
	var bad ptrace.Traces
	f.setReply(func(q findQuery, msgs [][]byte) ([][]byte, error) {
		// A span with zero ids beside a good one, in one message.
		bad = ptrace.NewTraces()
		rs := bad.ResourceSpans().AppendEmpty()
		rs.Resource().Attributes().PutStr("service.name", "orders")
		ss := rs.ScopeSpans().AppendEmpty().Spans()
		z := ss.AppendEmpty()
		z.SetName("zero ids")
		z.SetStartTimestamp(pcommon.NewTimestampFromTime(t0))
		b, err := (&ptrace.ProtoMarshaler{}).MarshalTraces(bad)
		if err != nil {
			panic(err)
		}
		return append(msgs, b), nil
	})
	path := filepath.Join(t.TempDir(), "jaeger.db")
	res, err := FetchFile(context.Background(), f.addr, path, t0, windowE)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := wantSpans(traces, t0, windowE)
	if _, rows := fileSpans(t, path); rows != want || res.Rejected != 1 || res.RejectMessage == "" {
		t.Errorf("file holds %d spans, result rejected %d (%q); want %d and 1 rejected", rows, res.Rejected, res.RejectMessage, want)
	}

	t.Run("Garbage", func(t *testing.T) {
		f.setReply(func(q findQuery, msgs [][]byte) ([][]byte, error) {
			// A trace id of 3 bytes, and bytes that are no message.
			return [][]byte{{0x0a, 0x07, 0x12, 0x05, 0x12, 0x03, 0x0a, 0x01, 0x01}, {0xff, 0xff, 0xff}}, nil
		})
		path := filepath.Join(t.TempDir(), "jaeger.db")
		_, err := FetchFile(context.Background(), f.addr, path, t0, windowE)
		if !errors.Is(err, ErrBadReply) {
			t.Errorf("err = %v; want ErrBadReply", err)
		}
		if _, rows := fileSpans(t, path); rows != 0 {
			t.Errorf("file holds %d spans; want 0", rows)
		}
	})
}

func TestFetch_TimeBudget(t *testing.T) {
	services := []string{"orders", "billing"}
	traces := makeTraces(300, services, t0, 10*time.Second)
	f := startFake(t, services, traces)
	f.setReply(func(q findQuery, msgs [][]byte) ([][]byte, error) {
		time.Sleep(20 * time.Millisecond) // a slow store: the budget runs out first
		return msgs, nil
	})
	path := filepath.Join(t.TempDir(), "jaeger.db")
	res, err := FetchFile(context.Background(), f.addr, path, t0, windowE, WithSearchDepth(5), WithMaxDuration(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(res.Reason, "time budget") || !res.CoveredSince.After(t0) {
		t.Fatalf("result = %+v; want stopped by the time budget, covering less than the window", res)
	}
	if _, rows := fileSpans(t, path); rows != res.Spans {
		t.Errorf("file holds %d spans; result counts %d", rows, res.Spans)
	}

	t.Run("Canceled", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		f.setReply(func(q findQuery, msgs [][]byte) ([][]byte, error) {
			cancel()
			time.Sleep(20 * time.Millisecond)
			return msgs, nil
		})
		res, err := FetchFile(ctx, f.addr, filepath.Join(t.TempDir(), "j.db"), t0, windowE)
		if err == nil || res.Reason != "" {
			t.Errorf("err = %v, reason %q; want the cancel as an error, not a budget", err, res.Reason)
		}
	})
}

func TestClient_GetTrace(t *testing.T) {
	traces := makeTraces(3, []string{"orders", "billing"}, t0, time.Minute)
	f := startFake(t, []string{"orders", "billing"}, traces)
	c, err := Dial(f.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var got int
	err = c.GetTrace(context.Background(), traces[0].id.String(), true, func(td ptrace.Traces) error {
		got += td.SpanCount()
		return nil
	})
	if err != nil || got != len(traces[0].spans) {
		t.Errorf("GetTrace: %d spans, err %v; want %d", got, err, len(traces[0].spans))
	}
	err = c.GetTrace(context.Background(), "0123456789abcdef0123456789abcdef", true, func(ptrace.Traces) error { return nil })
	if !errors.Is(err, ErrNotFound) {
		t.Errorf("GetTrace of an unknown trace: err = %v; want ErrNotFound", err)
	}
	stop := errors.New("enough")
	if err := c.GetTrace(context.Background(), traces[1].id.String(), false, func(ptrace.Traces) error { return stop }); err != stop {
		t.Errorf("GetTrace with fn failing: err = %v; want fn's error as it is", err)
	}
}

// cancelStore takes every span and cancels the fetch's context on the
// first.
type cancelStore struct{ cancel context.CancelFunc }

func (s cancelStore) Import(_ context.Context, td ptrace.Traces) (int, int, int, string, error) {
	s.cancel()
	return td.SpanCount(), 0, 0, "", nil
}

func TestFetch_CanceledBetweenQueries(t *testing.T) {
	traces := makeTraces(20, []string{"orders", "billing"}, t0, time.Minute)
	f := startFake(t, []string{"orders", "billing"}, traces)
	c, err := Dial(f.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	res, err := Fetch(ctx, c, cancelStore{cancel}, t0, windowE)
	if !errors.Is(err, context.Canceled) || res.Reason != "" {
		t.Errorf("err = %v, reason %q; want context.Canceled, not a budget", err, res.Reason)
	}
}

func TestFetch_Dense(t *testing.T) {
	// 40 traces at the same instant, search_depth 5: no slice can hold
	// fewer, so halving stops at the smallest slice and says so.
	traces := makeTraces(40, []string{"orders"}, t0.Add(30*time.Minute), 0)
	f := startFake(t, []string{"orders"}, traces)
	path := filepath.Join(t.TempDir(), "jaeger.db")
	res, err := FetchFile(context.Background(), f.addr, path, t0, windowE, WithSearchDepth(5))
	if err != nil {
		t.Fatal(err)
	}
	if res.Complete() || res.Dense != 1 || res.Reason != "" || !res.CoveredSince.Equal(t0) {
		t.Errorf("result = %+v; want one dense slice, the window walked", res)
	}
	// log2(1 h / 1 ms) is under 22: one query per halving, plus the
	// empty halves.
	if res.Queries > 2*22+1 {
		t.Errorf("queries = %d; want at most %d", res.Queries, 2*22+1)
	}
	if _, rows := fileSpans(t, path); rows != 5 {
		t.Errorf("file holds %d spans; want the 5 of the dense slice's reply", rows)
	}
}

func TestFetch_SliceBytes(t *testing.T) {
	traces := makeTraces(40, []string{"orders"}, t0, time.Minute)
	for i := range traces {
		traces[i].spans[0].attrs = map[string]string{"payload": strings.Repeat("p", 50<<10)}
	}
	f := startFake(t, []string{"orders"}, traces)
	path := filepath.Join(t.TempDir(), "jaeger.db")
	res, err := FetchFile(context.Background(), f.addr, path, t0, windowE, WithMaxSliceBytes(300<<10))
	if err != nil {
		t.Fatal(err)
	}
	if !res.Complete() || res.Queries < 8 {
		t.Errorf("result = %+v; want complete, in at least 8 queries (40 traces of 50 KiB, 300 KiB a slice)", res)
	}
	if _, rows := fileSpans(t, path); rows != 40 {
		t.Errorf("file holds %d spans; want 40", rows)
	}

	t.Run("SameInstant", func(t *testing.T) {
		traces := makeTraces(10, []string{"orders"}, t0, 0)
		for i := range traces {
			traces[i].spans[0].attrs = map[string]string{"payload": strings.Repeat("p", 50<<10)}
		}
		f := startFake(t, []string{"orders"}, traces)
		_, err := FetchFile(context.Background(), f.addr, filepath.Join(t.TempDir(), "j.db"), t0, windowE, WithMaxSliceBytes(100<<10))
		if err == nil || !strings.Contains(err.Error(), "the smallest") {
			t.Errorf("err = %v; want the slice too large to split", err)
		}
	})
}
