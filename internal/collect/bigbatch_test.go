package collect

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
)

// distinctTraces builds n spans, each the root of a trace of its own.
func distinctTraces(n int, seed byte) ptrace.Traces {
	td := makeTraces(n, seed)
	spans := td.ResourceSpans().At(0).ScopeSpans().At(0).Spans()
	for i := range spans.Len() {
		spans.At(i).SetTraceID(pcommon.TraceID{seed, 0xb1, 0x9b, byte(i >> 24), byte(i >> 16), byte(i >> 8), byte(i), 8, 9, 10, 11, 12, 13, 14, 15, 16})
	}
	return td
}

// TestReceiver_LargeBatches sends one request of more distinct traces than
// the writer's trace cache holds, over HTTP and gRPC: every span of it is
// stored. Such a request used to be answered 200 and then lost whole.
func TestReceiver_LargeBatches(t *testing.T) {
	sizes := []int{8191, 8192, 8193, 16385, 100_000}
	if raceEnabled {
		sizes = []int{8193, 16385, 33_000}
	}
	for _, n := range sizes {
		for _, proto := range []string{"http", "grpc"} {
			t.Run(fmt.Sprintf("%s/%d", proto, n), func(t *testing.T) {
				st := mustStore(t)
				r := New(st, WithMaxRequestBytes(64<<20))
				td := distinctTraces(n, 7)
				switch proto {
				case "http":
					if rep := post(t, serve(t, r), contentProtobuf, "", bytes.NewReader(protoBody(t, td))); rep.code != 200 || rep.resp.PartialSuccess().RejectedSpans() != 0 {
						t.Fatalf("answer %d, rejected %d (%s)", rep.code, rep.resp.PartialSuccess().RejectedSpans(), rep.raw)
					}
				case "grpc":
					ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
					defer cancel()
					resp, err := serveGRPC(t, r).Export(ctx, ptraceotlp.NewExportRequestFromTraces(td))
					if err != nil || resp.PartialSuccess().RejectedSpans() != 0 {
						t.Fatalf("export: %v, rejected %d", err, resp.PartialSuccess().RejectedSpans())
					}
				}
				if got := st.count(t); got != n {
					t.Errorf("stored %d spans; want %d", got, n)
				}
				if s := st.ex.Stats(); s.Failed != 0 {
					t.Errorf("failed %d spans (last error %v)", s.Failed, s.LastError)
				}
			})
		}
	}
}
