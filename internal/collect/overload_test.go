package collect

import (
	"bytes"
	"context"
	"net/http"
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
)

// uniqueTraces is makeTraces with span ids no other call repeats.
func uniqueTraces(n int, seq *atomic.Uint64) ptrace.Traces {
	td := makeTraces(n, 0)
	spans := td.ResourceSpans().At(0).ScopeSpans().At(0).Spans()
	for i := range spans.Len() {
		v := seq.Add(1)
		spans.At(i).SetSpanID(pcommon.SpanID{0xee, byte(v >> 48), byte(v >> 40), byte(v >> 32), byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
	}
	return td
}

// TestReceiver_Overload has clients send, over HTTP and gRPC at once and
// without pausing, to a receiver whose writer has a small queue and is
// stalled for a while by another connection's write lock. They must be
// told to retry, and every span they were told was accepted, and no
// other, must be in the file.
func TestReceiver_Overload(t *testing.T) {
	st := mustStore(t, exporter.WithQueueSize(2))
	r := New(st, WithQueueWait(20*time.Millisecond), WithMaxConcurrent(4))
	url := serve(t, r)
	gc := serveGRPC(t, r)

	var seq atomic.Uint64
	var accepted, retried, otherErrs atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	const batch = 50
	for w := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				td := uniqueTraces(batch, &seq)
				if w%2 == 0 {
					b, _ := ptraceotlp.NewExportRequestFromTraces(td).MarshalProto()
					req, _ := http.NewRequest("POST", url+TracesPath, bytes.NewReader(b))
					req.Header.Set("Content-Type", contentProtobuf)
					res, err := http.DefaultClient.Do(req)
					if err != nil {
						otherErrs.Add(1)
						continue
					}
					res.Body.Close()
					switch {
					case res.StatusCode == http.StatusOK:
						accepted.Add(batch)
					case res.StatusCode == http.StatusServiceUnavailable && res.Header.Get("Retry-After") != "":
						retried.Add(1)
					default:
						otherErrs.Add(1)
					}
					continue
				}
				resp, err := gc.Export(context.Background(), ptraceotlp.NewExportRequestFromTraces(td))
				switch {
				case err == nil && resp.PartialSuccess().RejectedSpans() == 0:
					accepted.Add(batch)
				case status.Code(err) == codes.Unavailable:
					retried.Add(1)
				default:
					otherErrs.Add(1)
				}
			}
		}()
	}
	time.Sleep(300 * time.Millisecond)
	resume := st.stall(t)
	time.Sleep(time.Second)
	resume()
	time.Sleep(500 * time.Millisecond)
	close(stop)
	wg.Wait()

	if retried.Load() == 0 {
		t.Error("no client was told to retry")
	}
	if n := otherErrs.Load(); n != 0 {
		t.Errorf("%d answers were neither success nor retryable", n)
	}
	if got, want := int64(st.count(t)), accepted.Load(); got != want {
		t.Errorf("file holds %d spans; the clients were told %d were accepted", got, want)
	}
	if s := r.Stats(); s.Accepted != accepted.Load()+int64(0) || s.Retried != retried.Load() {
		t.Errorf("Stats = %+v; want %d accepted, %d retried", s, accepted.Load(), retried.Load())
	}
	t.Logf("%d spans accepted, %d requests told to retry", accepted.Load(), retried.Load())
}
