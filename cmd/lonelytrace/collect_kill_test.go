package main

import (
	"bufio"
	"bytes"
	"context"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"

	"github.com/lonelytrace/lonelytrace/internal/otlp/otlptest"
	"github.com/lonelytrace/lonelytrace/schema"
)

// envCollectChild is the file TestHelperCollect collects into.
const envCollectChild = "LONELYTRACE_TEST_COLLECT_CHILD"

// TestHelperCollect is `lonelytrace collect` as a child process of
// TestCollect_Kill9, over OTLP/HTTP only; it runs until it is killed.
func TestHelperCollect(t *testing.T) {
	path := os.Getenv(envCollectChild)
	if path == "" {
		t.Skip("runs only as the collect process of TestCollect_Kill9")
	}
	if err := run([]string{"collect", "-db", path, "-otlp-grpc", "", "-otlp-http", "127.0.0.1:0"}, os.Stdout); err != nil {
		t.Fatal(err)
	}
}

// killTraces is n spans of one trace, with span ids no other call
// repeats.
func killTraces(n int, seq *atomic.Uint64) ptrace.Traces {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", "kill9")
	ss := rs.ScopeSpans().AppendEmpty()
	ss.Scope().SetName("kill9")
	now := time.Now()
	for range n {
		v := seq.Add(1)
		sp := ss.Spans().AppendEmpty()
		sp.SetTraceID(pcommon.TraceID{0xaa, 1, 2, 3, 4, 5, 6, 7, 0, 0, 0, 0, byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v >> 3)})
		sp.SetSpanID(pcommon.SpanID{0xbb, 0, 0, byte(v >> 32), byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
		sp.SetName("notify")
		sp.SetStartTimestamp(pcommon.NewTimestampFromTime(now))
		sp.SetEndTimestamp(pcommon.NewTimestampFromTime(now.Add(time.Millisecond)))
		sp.Attributes().PutStr("messaging.operation.name", "notify")
	}
	return td
}

// TestCollect_Kill9 SIGKILLs a `lonelytrace collect` child process while
// four clients send to it flat out, at a random moment, a few times over
// one file: every span a client was told is accepted (200) must be in the
// file, exactly once, after each kill.
func TestCollect_Kill9(t *testing.T) {
	if testing.Short() {
		t.Skip("starts collect processes")
	}
	path := filepath.Join(t.TempDir(), "kill9.db")
	var seq atomic.Uint64
	acked := make(map[pcommon.SpanID]bool)
	for round := range 3 {
		cmd := exec.Command(os.Args[0], "-test.run=^TestHelperCollect$", "-test.count=1")
		cmd.Env = append(os.Environ(), envCollectChild+"="+path)
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
		var url string
		for lines := bufio.NewScanner(out); url == "" && lines.Scan(); {
			for _, f := range strings.Fields(lines.Text()) {
				if v, ok := strings.CutPrefix(f, "otlp-http="); ok {
					url = v
				}
			}
		}
		if url == "" {
			t.Fatal("the collect child printed no otlp-http address")
		}
		go func() { _, _ = bufio.NewReader(out).WriteTo(&bytes.Buffer{}) }()

		var mu sync.Mutex
		var n atomic.Int64
		var wg sync.WaitGroup
		for range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					td := killTraces(100, &seq)
					b, _ := ptraceotlp.NewExportRequestFromTraces(td).MarshalProto()
					res, err := http.Post(url, "application/x-protobuf", bytes.NewReader(b))
					if err != nil {
						return // killed
					}
					res.Body.Close()
					if res.StatusCode != http.StatusOK {
						continue
					}
					spans := td.ResourceSpans().At(0).ScopeSpans().At(0).Spans()
					mu.Lock()
					for i := range spans.Len() {
						acked[spans.At(i).SpanID()] = true
					}
					mu.Unlock()
					n.Add(int64(spans.Len()))
				}
			}()
		}
		// Kill after some spans are answered and a random moment more,
		// mostly in the middle of a transaction.
		for deadline := time.Now().Add(30 * time.Second); n.Load() < 2000 && time.Now().Before(deadline); {
			time.Sleep(time.Millisecond)
		}
		time.Sleep(time.Duration(rand.IntN(300)) * time.Millisecond)
		cmd.Process.Kill()
		cmd.Wait()
		wg.Wait()

		stored := killStored(t, path)
		var missing, twice int
		for id := range acked {
			switch stored[id] {
			case 0:
				missing++
			case 1:
			default:
				twice++
			}
		}
		if missing != 0 || twice != 0 {
			t.Fatalf("round %d: of %d spans acknowledged, %d are missing from the file, %d stored twice", round, len(acked), missing, twice)
		}
		t.Logf("round %d: %d spans acknowledged in all, %d stored", round, len(acked), len(stored))
	}
}

// killStored counts the rows of each span id in the file at path, after a
// kill: the file must open, and pass integrity_check.
func killStored(tb testing.TB, path string) map[pcommon.SpanID]int {
	tb.Helper()
	ctx := context.Background()
	db, err := schema.OpenRead(ctx, path)
	if err != nil {
		tb.Fatal(err)
	}
	defer db.Close()
	var ok string
	if err := db.QueryRowContext(ctx, "PRAGMA integrity_check").Scan(&ok); err != nil || ok != "ok" {
		tb.Fatalf("integrity_check = %q, %v", ok, err)
	}
	return otlptest.StoredSpanIDs(tb, path)
}
