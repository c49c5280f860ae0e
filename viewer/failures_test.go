package viewer_test

import (
	"bytes"
	"context"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lonelytrace/lonelytrace/schema"
	"github.com/lonelytrace/lonelytrace/viewer"
)

// TestPage_Failures checks the failures the page and the terminal show
// against counts made from the specs: the counts table's error count of
// every operation (a door to its failed traces, 0 included) and the
// notify sentence.
func TestPage_Failures(t *testing.T) {
	ops := genOps(21, 500)
	path := writeOps(t, t.TempDir(), "f.db", ops)
	v := mustOpen(t, testNow, path)
	base := server(t, v)
	params := url.Values{"since": {"beginning"}, "topic": {"orders"}}
	want := map[string]int{}
	notifies := 0
	for _, o := range ops {
		if o.topic != "orders" {
			continue
		}
		if o.failed {
			want[o.op]++
		}
		if o.op == schema.OpNotify {
			notifies++
		}
	}
	if want[schema.OpNotify] == 0 || want[schema.OpSubscribeGlob] != 0 {
		t.Fatalf("the generated spans should have failed notifies and no glob subscription to a topic: %v", want)
	}
	code, page := get(t, base, "/", params)
	if code != http.StatusOK {
		t.Fatalf("status %d: %s", code, page)
	}
	doors := regexp.MustCompile(`<a class="door-errors" data-op="([a-z_]+)" href="([^"]+)">([0-9,]+)</a>`).FindAllStringSubmatch(string(page), -1)
	if len(doors) != len(schema.Operations) {
		t.Fatalf("%d error doors on the page; want %d", len(doors), len(schema.Operations))
	}
	for i, d := range doors {
		op := schema.Operations[i]
		if d[1] != op {
			t.Errorf("door %d is for %s; want %s", i, d[1], op)
		}
		if n, _ := strconv.Atoi(strings.ReplaceAll(d[3], ",", "")); n != want[op] {
			t.Errorf("%s: page shows %d failed; want %d", op, n, want[op])
		}
		u, err := url.Parse(html.UnescapeString(d[2]))
		if err != nil {
			t.Fatal(err)
		}
		q := u.Query()
		if q.Get("op") != op || q.Get("status") != "error" || q.Get("since") != "beginning" || q.Get("topic") != "orders" || u.Fragment != "traces" {
			t.Errorf("%s: door %s; want op, status=error, the window and the filters, to #traces", op, d[2])
		}
	}
	sentence := regexp.MustCompile(`(?s)<p class="answer" id="sentence">.*?</p>`).Find(page)
	failed := regexp.MustCompile(`and <a id="sentence-errors" href="[^"]*status=error[^"]*"><b title="(\d+) of (\d+)">`).FindSubmatch(sentence)
	if failed == nil || string(failed[1]) != strconv.Itoa(want[schema.OpNotify]) || string(failed[2]) != strconv.Itoa(notifies) {
		t.Errorf("sentence %s; want %d of %d failed", sentence, want[schema.OpNotify], notifies)
	}

	s, err := v.Summary(context.Background(), viewer.QueryOf(t, v, params))
	if err != nil {
		t.Fatal(err)
	}
	var text bytes.Buffer
	if err := viewer.WriteSummaryText(&text, s); err != nil {
		t.Fatal(err)
	}
	if w := ", and " + strconv.Itoa(want[schema.OpNotify]) + " of them failed."; !strings.Contains(text.String(), w) {
		t.Errorf("text lacks %q:\n%s", w, text.String())
	}

	// No failure at all: the sentence says so.
	quiet := newOp(schema.OpNotify, testNow.Add(-time.Minute), time.Millisecond)
	base = server(t, mustOpen(t, testNow, writeOps(t, t.TempDir(), "q.db", []opSpec{quiet})))
	if _, page := get(t, base, "/", nil); !bytes.Contains(page, []byte(`<span id="sentence-errors">none of them failed</span>`)) {
		t.Errorf("page without failures: sentence %s", regexp.MustCompile(`(?s)<p class="answer".*?</p>`).Find(page))
	}
}
