package viewer_test

import (
	"context"
	"net/http"
	"net/url"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/lonelytrace/lonelytrace/schema"
	"github.com/lonelytrace/lonelytrace/viewer/model"
)

// TestTraceList_Totals checks that the trace list says how many
// operations match and in how many traces, in JSON and on the page, when
// traces hold several matching operations, in one file and in two files
// that share every span; and that a search it cannot count says so.
func TestTraceList_Totals(t *testing.T) {
	r := newRecorder()
	wantOps, wantTraces := 0, 0 // failed receives, and their traces
	for i := range 40 {
		start := testNow.Add(-time.Hour + time.Duration(i)*time.Minute)
		ctx, root := r.tracer.Start(context.Background(), "request", trace.WithTimestamp(start))
		failedHere := 0
		for j := range 1 + i%3 { // sibling receives: each its own operation
			o := newOp(schema.OpReceive, start.Add(time.Duration(j)*time.Millisecond), time.Millisecond)
			o.topic, o.failed = "orders", (i+j)%2 == 0
			if o.failed {
				failedHere++
			}
			r.record(ctx, o)
		}
		n := newOp(schema.OpNotify, start, 5*time.Millisecond)
		n.failed = true // another operation: never a failed receive
		r.record(ctx, n)
		root.End(trace.WithTimestamp(start.Add(10 * time.Millisecond)))
		wantOps += failedHere
		if failedHere > 0 {
			wantTraces++
		}
	}
	spans := r.c.take()
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a.db"), filepath.Join(dir, "b.db")
	writeSpans(t, a, spans)
	writeSpans(t, b, spans)
	if wantOps <= wantTraces {
		t.Fatalf("fixture: %d failed receives in %d traces; want more operations than traces", wantOps, wantTraces)
	}
	search := url.Values{"op": {"receive"}, "status": {"error"}, "totals": {"1"}}
	for name, paths := range map[string][]string{"OneFile": {a}, "TwoFilesSharingSpans": {a, b}} {
		t.Run(name, func(t *testing.T) {
			base := server(t, mustOpen(t, testNow, paths...))
			l := getJSON[model.TraceList](t, base, "/api/traces", search)
			if l.TotalOperations == nil || l.TotalTraces == nil {
				t.Fatalf("totals %v, %v; want %d operations in %d traces", l.TotalOperations, l.TotalTraces, wantOps, wantTraces)
			}
			if *l.TotalOperations != int64(wantOps) || *l.TotalTraces != int64(wantTraces) {
				t.Errorf("totals: %d operations in %d traces; want %d in %d", *l.TotalOperations, *l.TotalTraces, wantOps, wantTraces)
			}
			if len(l.Traces) != wantTraces {
				t.Errorf("%d rows; want one per trace, %d", len(l.Traces), wantTraces)
			}
			code, page := get(t, base, "/", search)
			if code != http.StatusOK {
				t.Fatalf("page: status %d", code)
			}
			m := regexp.MustCompile(`<p class="answer" id="trace-totals"><b title="(\d+)">[^<]*</b> operations match, in <b title="(\d+)">`).FindStringSubmatch(string(page))
			if m == nil || m[1] != strconv.Itoa(wantOps) || m[2] != strconv.Itoa(wantTraces) {
				t.Errorf("page totals %q; want %d operations in %d traces", m, wantOps, wantTraces)
			}
			if !regexp.MustCompile(`one row per trace.*so there are fewer rows than operations`).Match(page) {
				t.Error("the page does not say why the rows are fewer than the operations")
			}
		})
	}
	t.Run("NameSearch", func(t *testing.T) {
		base := server(t, mustOpen(t, testNow, a))
		l := getJSON[model.TraceList](t, base, "/api/traces", url.Values{"name": {"receive"}, "totals": {"1"}})
		if l.TotalOperations != nil || l.TotalTraces != nil {
			t.Errorf("name search: totals %v, %v; want null (not counted)", l.TotalOperations, l.TotalTraces)
		}
		if _, page := get(t, base, "/", url.Values{"name": {"receive"}, "totals": {"1"}}); !regexp.MustCompile(`its totals are not counted`).Match(page) {
			t.Error("name search: the page does not say its totals are not counted")
		}
	})
}

// TestTraceList_TotalsBeyondCount checks that past 20,000 matching
// operations the list still counts them, exactly as the summary does,
// and says that it did not count their traces.
func TestTraceList_TotalsBeyondCount(t *testing.T) {
	base := server(t, mustOpen(t, testNow, writeOps(t, t.TempDir(), "many.db", genOps(12, 20_500))))
	params := url.Values{"since": {"beginning"}}
	s := getJSON[model.Summary](t, base, "/api/summary", params)
	var want int64
	for _, o := range s.Operations {
		want += o.Count
	}
	if want <= 20_000 {
		t.Fatalf("fixture: %d operations; want more than 20,000", want)
	}
	l := getJSON[model.TraceList](t, base, "/api/traces", url.Values{"since": {"beginning"}, "totals": {"1"}})
	if l.TotalOperations == nil || *l.TotalOperations != want || l.TotalTraces != nil {
		t.Errorf("totals %v operations, %v traces; want %d operations, traces null", l.TotalOperations, l.TotalTraces, want)
	}
	if _, page := get(t, base, "/", params); !regexp.MustCompile(`more than 20,000 of them, their traces are not counted`).Match(page) {
		t.Error("the page does not say it did not count the traces")
	}
}

// TestTraceList_TotalsWhenAsked checks that /api/traces counts its totals
// only when asked (they read the whole window, the list alone its newest
// chunks), and refuses a totals value it cannot read.
func TestTraceList_TotalsWhenAsked(t *testing.T) {
	base := server(t, mustOpen(t, testNow, writeOps(t, t.TempDir(), "few.db", genOps(3, 40))))
	l := getJSON[model.TraceList](t, base, "/api/traces", url.Values{"since": {"beginning"}})
	if l.TotalOperations != nil || l.TotalTraces != nil {
		t.Errorf("totals %v, %v without totals=1; want null", l.TotalOperations, l.TotalTraces)
	}
	l = getJSON[model.TraceList](t, base, "/api/traces", url.Values{"since": {"beginning"}, "totals": {"true"}})
	if l.TotalOperations == nil || l.TotalTraces == nil {
		t.Errorf("totals %v, %v with totals=true; want counted", l.TotalOperations, l.TotalTraces)
	}
	if code, body := get(t, base, "/api/traces", url.Values{"totals": {"maybe"}}); code != 400 || !strings.Contains(string(body), "totals") {
		t.Errorf("totals=maybe: %d %s; want 400 naming totals", code, body)
	}
}
