package collect

import (
	"bytes"
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
)

// badTimes returns 5 spans of which only the first has sane times: the
// others have no start, no end, an end before the start, and neither.
func badTimes(seed byte) ptrace.Traces {
	td := makeTraces(5, seed)
	spans := td.ResourceSpans().At(0).ScopeSpans().At(0).Spans()
	spans.At(1).SetStartTimestamp(0)
	spans.At(2).SetEndTimestamp(0)
	spans.At(3).SetEndTimestamp(spans.At(3).StartTimestamp() - 1)
	spans.At(4).SetStartTimestamp(0)
	spans.At(4).SetEndTimestamp(0)
	return td
}

// TestReceiver_BadTimes: a span with no start, or that ends before it
// starts, is rejected through a partial success that says why, over both
// protocols, and nothing of it reaches the file.
func TestReceiver_BadTimes(t *testing.T) {
	st := mustStore(t)
	rcv := New(st)
	url := serve(t, rcv)
	c := serveGRPC(t, rcv)
	check := func(t *testing.T, ps ptraceotlp.ExportPartialSuccess) {
		t.Helper()
		if ps.RejectedSpans() != 4 {
			t.Errorf("rejected = %d; want 4", ps.RejectedSpans())
		}
		// The first rejected span is spans[1], whose start is unset.
		if msg := ps.ErrorMessage(); !strings.HasPrefix(msg, "4 spans rejected; the first: resourceSpans[0].scopeSpans[0].spans[1]: start time is 0") {
			t.Errorf("message = %q; want the count, the first one's place and its reason", msg)
		}
	}
	seed := byte(1)
	for _, ct := range []string{contentProtobuf, contentJSON} {
		t.Run("HTTP "+encodingName(ct), func(t *testing.T) {
			seed++
			td := badTimes(seed)
			body := protoBody(t, td)
			if ct == contentJSON {
				body = jsonBody(t, td)
			}
			r := post(t, url, ct, "", bytes.NewReader(body))
			if r.code != http.StatusOK {
				t.Fatalf("status = %d (%s); want 200 with a partial success", r.code, r.raw)
			}
			check(t, r.resp.PartialSuccess())
		})
	}
	t.Run("GRPC", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		seed++
		resp, err := c.Export(ctx, ptraceotlp.NewExportRequestFromTraces(badTimes(seed)))
		if err != nil {
			t.Fatal(err)
		}
		check(t, resp.PartialSuccess())
	})
	if s := rcv.Stats(); s.Accepted != 3 || s.Rejected != 12 {
		t.Errorf("stats = %d accepted, %d rejected; want 3, 12", s.Accepted, s.Rejected)
	}
	spans := st.spans(t)
	if len(spans) != 3 {
		t.Fatalf("stored %d spans; want 3", len(spans))
	}
	for _, s := range spans {
		if s.Start.Year() < 2000 || s.End.Before(s.Start) {
			t.Errorf("stored span %s: %v to %v; want the sane one only", s.SpanID, s.Start, s.End)
		}
	}
}
