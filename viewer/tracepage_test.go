package viewer_test

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/lonelytrace/lonelytrace/schema"
	"github.com/lonelytrace/lonelytrace/viewer/model"
)

// linkedFiles writes two files: a.db holds a notify trace; b.db holds a
// "send missed" trace an hour minus a second later whose span links to
// the notify, a span three hours later that links to it too (beyond the
// reach of backlinks), and a copy of the linking span is also in a.db
// (a span in two files counts once).
func linkedFiles(tb testing.TB) (dir string, notify, missed, far trace.SpanContext) {
	tb.Helper()
	dir = tb.TempDir()
	r := newRecorder()
	start := testNow.Add(-2 * time.Hour)
	o := newOp(schema.OpNotify, start, 5*time.Millisecond)
	o.topic, o.broadcaster = "orders", "b1:3003"
	notify = r.record(context.Background(), o)
	aSpans := r.c.take()

	link := trace.Link{SpanContext: notify}
	_, s := r.tracer.Start(context.Background(), "send missed", trace.WithTimestamp(start.Add(time.Hour-time.Second)), trace.WithLinks(link))
	s.RecordError(errTest("subscriber <gone>"), trace.WithTimestamp(start.Add(time.Hour)))
	s.SetStatus(codes.Error, "subscriber <gone>")
	s.End(trace.WithTimestamp(start.Add(time.Hour)))
	missed = s.SpanContext()
	_, s2 := r.tracer.Start(context.Background(), "late", trace.WithTimestamp(start.Add(3*time.Hour)), trace.WithLinks(link))
	s2.End(trace.WithTimestamp(start.Add(3*time.Hour + time.Millisecond)))
	far = s2.SpanContext()
	bSpans := r.c.take()
	writeSpans(tb, filepath.Join(dir, "a.db"), append(aSpans, bSpans[0]))
	writeSpans(tb, filepath.Join(dir, "b.db"), bSpans)
	return dir, notify, missed, far
}

type errTest string

func (e errTest) Error() string { return string(e) }

func traceDetail(tb testing.TB, base, id string) *model.TraceDetail {
	tb.Helper()
	return getJSON[model.TraceDetail](tb, base, "/api/traces/"+id, nil)
}

// TestTrace_LinkedFrom finds the spans of another file that link into a
// trace, once each, within the documented reach only.
func TestTrace_LinkedFrom(t *testing.T) {
	dir, notify, missed, far := linkedFiles(t)
	base := server(t, mustOpen(t, testNow, filepath.Join(dir, "a.db"), filepath.Join(dir, "b.db")))
	d := traceDetail(t, base, notify.TraceID().String())
	if len(d.Spans) != 1 {
		t.Fatalf("spans = %d; want 1", len(d.Spans))
	}
	want := []model.SpanRef{{TraceID: missed.TraceID().String(), SpanID: missed.SpanID().String()}}
	if got := d.Spans[0].LinkedFrom; len(got) != 1 || got[0] != want[0] {
		t.Errorf("linked_from = %+v; want %+v (and not the span 3 h later, %s)", got, want, far.SpanID())
	}
	if p := d.Spans[0].PubSub; p == nil || p.Op != "notify" || p.Topic != "orders" || p.Broadcaster != "b1:3003" || p.Failed {
		t.Errorf("pubsub = %+v; want an ok notify on orders via b1:3003", p)
	}
	m := traceDetail(t, base, missed.TraceID().String())
	if l := m.Spans[0].Links; len(l) != 1 || l[0].TraceID != notify.TraceID().String() || l[0].SpanID != notify.SpanID().String() {
		t.Errorf("links = %+v; want the notify", l)
	}
	if len(m.Spans[0].LinkedFrom) != 0 {
		t.Errorf("missed span linked_from = %+v; want none", m.Spans[0].LinkedFrom)
	}

	t.Run("Page", func(t *testing.T) {
		code, body := get(t, base, "/trace/"+notify.TraceID().String(), url.Values{"since": {"beginning"}, "topic": {"orders"}, "status": {"error"}})
		page := string(body)
		if code != http.StatusOK {
			t.Fatalf("status %d", code)
		}
		for _, want := range []string{
			`class="link-in" href="` + missed.TraceID().String() + `?since=beginning&amp;status=error&amp;topic=orders#span-` + missed.SpanID().String() + `"`,
			`href="../?since=beginning&amp;status=error&amp;topic=orders#traces" id="back"`,
			`href="../api/traces/` + notify.TraceID().String() + `?format=otlp"`,
		} {
			if !strings.Contains(page, want) {
				t.Errorf("trace page lacks %s", want)
			}
		}
		_, body = get(t, base, "/trace/"+missed.TraceID().String(), nil)
		page = string(body)
		for _, want := range []string{`class="link-out" href="` + notify.TraceID().String() + `?#span-` + notify.SpanID().String(), `subscriber &lt;gone&gt;`, `class="exception"`} {
			if !strings.Contains(page, want) {
				t.Errorf("missed trace page lacks %s", want)
			}
		}
		if strings.Contains(page, "<gone>") {
			t.Error("span data is not escaped")
		}
	})

	t.Run("NotFound", func(t *testing.T) {
		code, body := get(t, base, "/trace/0123456789abcdef0123456789abcdef", url.Values{"since": {"1h-ago"}})
		if code != http.StatusNotFound || !strings.Contains(string(body), `id="not-found"`) || !strings.Contains(string(body), `href="../?since=1h-ago#traces"`) {
			t.Errorf("missing trace: status %d; want 404 with a way back:\n%s", code, body)
		}
		for _, bad := range []string{"nope", "00000000000000000000000000000000", strings.Repeat("g", 32), "%3Cscript%3E"} {
			if code, body := get(t, base, "/trace/"+bad, nil); code != http.StatusBadRequest || !strings.Contains(string(body), "trace_id") || strings.Contains(string(body), "<script>") {
				t.Errorf("trace page %q: status %d; want 400 naming trace_id", bad, code)
			}
		}
	})

	t.Run("OldLinks", func(t *testing.T) {
		c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		resp, err := c.Get(base + "/?trace=" + notify.TraceID().String() + "&since=beginning")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusFound || loc != "trace/"+notify.TraceID().String()+"?since=beginning" {
			t.Errorf("old link: %d to %q; want 302 to the trace page", resp.StatusCode, loc)
		}
	})

	t.Run("OTLP", func(t *testing.T) {
		resp, err := http.Get(base + "/api/traces/" + missed.TraceID().String() + "?format=otlp")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") ||
			resp.Header.Get("Content-Disposition") != `attachment; filename="trace-`+missed.TraceID().String()+`.json"` {
			t.Fatalf("otlp: %d %v", resp.StatusCode, resp.Header)
		}
		req := ptraceotlp.NewExportRequest()
		if err := req.UnmarshalJSON(b); err != nil {
			t.Fatal(err)
		}
		tr := req.Traces()
		if tr.SpanCount() != 1 {
			t.Fatalf("otlp spans = %d; want 1", tr.SpanCount())
		}
		sp := tr.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0)
		if sp.Name() != "send missed" || sp.TraceID().String() != missed.TraceID().String() || sp.Links().Len() != 1 || sp.Events().Len() != 1 {
			t.Errorf("otlp span = %s %s, %d links, %d events", sp.Name(), sp.TraceID(), sp.Links().Len(), sp.Events().Len())
		}
		for _, c := range []struct {
			q    string
			code int
		}{{"format=xml", 400}, {"format=%3Cb%3E", 400}, {"format=json", 200}} {
			if code, _ := get(t, base, "/api/traces/"+missed.TraceID().String()+"?"+c.q, nil); code != c.code {
				t.Errorf("%s: status %d; want %d", c.q, code, c.code)
			}
		}
		if code, _ := get(t, base, "/api/traces/0123456789abcdef0123456789abcdef?format=otlp", nil); code != http.StatusNotFound {
			t.Errorf("otlp of a missing trace: status %d; want 404", code)
		}
	})
}
