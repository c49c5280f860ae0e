package viewer_test

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/lonelytrace/lonelytrace/schema"
)

const chromium = "/usr/bin/chromium"

// TestPage_Browser drives the page in headless Chromium: it fills in and
// submits the form, checks the numbers shown against the JSON API,
// follows the counts table's error count to the failed traces, into one
// trace's page, along its link to the linked trace and back, then back to
// the list, and takes a screenshot of the page and of a trace.
func TestPage_Browser(t *testing.T) {
	if _, err := os.Stat(chromium); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is missing in CI: %v", chromium, err)
		}
		t.Skipf("%s is missing: %v", chromium, err)
	}
	ops := genOps(5, 400)
	for i := range ops {
		ops[i].size %= 70_000 // sizes people send, for the screenshot
	}
	dir := t.TempDir()
	path := writeOps(t, dir, "browser.db", ops)
	writeSpans(t, path, missedSpans(12))
	base := server(t, mustOpen(t, testNow, path))

	opts := append(chromedp.DefaultExecAllocatorOptions[:0:0],
		chromedp.ExecPath(chromium),
		chromedp.Flag("headless", true),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 2000),
	)
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancel()
	ctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	// Start the browser on the untimed context; only later steps time out.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatal(err)
	}
	tctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()

	if err := chromedp.Do(tctx,
		chromedp.Navigate(base+"/"),
		chromedp.WaitVisible("#query"),
		chromedp.SetValue("#since", "beginning"),
		chromedp.SetValue("#topic", "orders"),
		// The old page has a trace list too: mark it, and wait for a
		// document without the mark.
		chromedp.Evaluate[chromedp.Void](`document.body.dataset.old = "1"`),
		chromedp.Click("#apply"),
		chromedp.WaitNotPresent("body[data-old]"),
		chromedp.WaitVisible("#trace-list"),
	); err != nil {
		t.Fatal(err)
	}
	sentence := mustRun(t, tctx, chromedp.Text("#sentence"))
	countCell := mustRun(t, tctx, chromedp.Text("#count-notify td:nth-child(2)"))
	want := summary(t, base, url.Values{"since": {"beginning"}, "topic": {"orders"}})
	n := want.Operations["notify"]
	wantStart := fmt.Sprintf("There were %s notifications to %d broadcasters", fmtThousands(n.Count), want.Broadcasters)
	if !strings.HasPrefix(strings.TrimSpace(sentence), wantStart) {
		t.Errorf("sentence = %q; want it to start %q", sentence, wantStart)
	}
	if countCell != fmtThousands(n.Count) {
		t.Errorf("notify count cell = %q; want %q", countCell, fmtThousands(n.Count))
	}

	// From the counts table's error count of missed to the failed traces.
	wantFailed := summary(t, base, url.Values{"since": {"beginning"}, "topic": {"orders"}}).Operations["missed"].Errors
	if wantFailed == 0 {
		t.Fatal("no failed missed operation to follow")
	}
	errCell := mustRun(t, tctx, chromedp.Text(`a.door-errors[data-op="missed"]`))
	if errCell != fmtThousands(wantFailed) {
		t.Errorf("missed error count = %q; want %q", errCell, fmtThousands(wantFailed))
	}
	if err := chromedp.Do(tctx,
		chromedp.Evaluate[chromedp.Void](`document.body.dataset.old = "1"`),
		chromedp.Click(`a.door-errors[data-op="missed"]`),
		chromedp.WaitNotPresent("body[data-old]"),
		chromedp.WaitVisible("#trace-list"),
	); err != nil {
		t.Fatal(err)
	}
	listURL, _ := url.Parse(mustRun(t, tctx, chromedp.Location()))
	if q := listURL.Query(); q.Get("status") != "error" || q.Get("op") != "missed" || q.Get("topic") != "orders" || q.Get("since") != "beginning" {
		t.Errorf("error door %s lost the window, the filters or the search", listURL)
	}
	rowsShown := mustRun(t, tctx, chromedp.Evaluate[int](`document.querySelectorAll("#trace-list tr.trace-row").length`))
	statuses := mustRun(t, tctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll("#trace-list td.status")].map(td => td.textContent.trim())`))
	if int64(rowsShown) != min(wantFailed, 50) {
		t.Errorf("failed traces listed = %d; want %d", rowsShown, min(wantFailed, 50))
	}
	for i, st := range statuses {
		if st != "error" {
			t.Errorf("row %d status = %q; want error", i, st)
		}
	}

	// Into one failed trace's page: its exception, its link to the
	// notify it missed.
	if err := chromedp.Do(tctx, chromedp.Evaluate[chromedp.Void](`document.body.dataset.old = "1"; document.querySelector("a.trace-link").click()`), chromedp.WaitNotPresent("body[data-old]"), chromedp.WaitVisible("#waterfall")); err != nil {
		t.Fatal(err)
	}
	missedURL := mustRun(t, tctx, chromedp.Location())
	u, err := url.Parse(missedURL)
	if err != nil {
		t.Fatal(err)
	}
	if u.Query().Get("topic") != "orders" || u.Query().Get("status") != "error" {
		t.Errorf("trace link %q lost the filters", missedURL)
	}
	missedID := u.Path[strings.LastIndex(u.Path, "/")+1:]
	d := traceDetail(t, base, missedID)
	rows := mustRun(t, tctx, chromedp.Evaluate[int](`document.querySelectorAll("#waterfall tr.span-row").length`))
	if rows != len(d.Spans) || rows == 0 {
		t.Errorf("waterfall rows = %d; want %d", rows, len(d.Spans))
	}
	exc := mustRun(t, tctx, chromedp.Text(".exception"))
	if !strings.Contains(exc, "missed delivery to") {
		t.Errorf("exception shown = %q", exc)
	}
	if out := mustRun(t, tctx, chromedp.Text("#trace-ops .op-row")); !strings.Contains(out, "failed") || !strings.Contains(out, "orders") {
		t.Errorf("operation facts = %q; want a failed missed on orders", out)
	}
	notifyID := d.Spans[0].Links[0].TraceID
	if err := chromedp.Do(tctx, chromedp.Evaluate[chromedp.Void](`document.body.dataset.old = "1"; document.querySelector("a.link-out").click()`), chromedp.WaitNotPresent("body[data-old]"), chromedp.WaitVisible("#waterfall")); err != nil {
		t.Fatal(err)
	}
	if loc := mustRun(t, tctx, chromedp.Location()); !strings.Contains(loc, "/trace/"+notifyID+"?") {
		t.Errorf("link led to %s; want trace %s", loc, notifyID)
	}
	nd := traceDetail(t, base, notifyID)
	inLinks := mustRun(t, tctx, chromedp.Evaluate[int](`document.querySelectorAll("a.link-in").length`))
	if inLinks != len(nd.Spans[0].LinkedFrom) || inLinks == 0 {
		t.Errorf("linked-from links = %d; want %d", inLinks, len(nd.Spans[0].LinkedFrom))
	}
	// And back, along the link the other way.
	hrefs := mustRun(t, tctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll("a.link-in")].map(a => a.getAttribute("href"))`))
	if len(hrefs) != 1 || !strings.HasPrefix(hrefs[0], missedID+"?") {
		t.Fatalf("linked-from hrefs = %q; want one to %s", hrefs, missedID)
	}
	if err := chromedp.Do(tctx, chromedp.Evaluate[chromedp.Void](`document.body.dataset.old = "1"; document.querySelector("a.link-in").click()`), chromedp.WaitNotPresent("body[data-old]"), chromedp.WaitVisible("#waterfall")); err != nil {
		t.Fatal(err)
	}
	if loc := mustRun(t, tctx, chromedp.Location()); !strings.Contains(loc, "/trace/"+missedID+"?") {
		t.Errorf("back link led to %s; want trace %s", loc, missedID)
	}
	tracePNG := mustRun(t, tctx, chromedp.CaptureScreenshot())
	if err := chromedp.Do(tctx, chromedp.Evaluate[chromedp.Void](`document.body.dataset.old = "1"; document.querySelector("#back").click()`), chromedp.WaitNotPresent("body[data-old]"), chromedp.WaitVisible("#trace-list")); err != nil {
		t.Fatal(err)
	}
	if back, _ := url.Parse(mustRun(t, tctx, chromedp.Location())); back.Query().Get("status") != "error" || back.Query().Get("topic") != "orders" {
		t.Errorf("the way back %s lost the search", back)
	}
	saveScreenshot(t, tracePNG, "trace.png", "LONELYTRACE_TRACE_SCREENSHOT")

	if err := chromedp.Do(tctx, chromedp.Navigate(base+"/?since=beginning"), chromedp.WaitVisible("#durations")); err != nil {
		t.Fatal(err)
	}
	png := mustRun(t, tctx, chromedp.CaptureScreenshot())
	saveScreenshot(t, png, "viewer.png", "LONELYTRACE_SCREENSHOT")
}

// saveScreenshot writes png to a temporary folder, so that a test run
// leaves the checkout as it was; the variable env (from the repository
// root, say LONELYTRACE_SCREENSHOT=docs/viewer.png) renews a picture of
// the docs.
func saveScreenshot(t *testing.T, png []byte, name, env string) {
	t.Helper()
	if len(png) < 8 || string(png[1:4]) != "PNG" {
		t.Fatalf("%s is not a PNG (%d bytes)", name, len(png))
	}
	out := filepath.Join(t.TempDir(), name)
	if p := os.Getenv(env); p != "" {
		out = filepath.Join("..", p)
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(out, png, 0o644); err != nil {
		t.Fatal(err)
	}
}

// missedSpans makes n notifies on orders and, for each, a missed
// operation in a trace of its own that links to it; every other missed
// fails with an exception, as the demo's do.
func missedSpans(n int) []sdktrace.ReadOnlySpan {
	r := newRecorder()
	for i := range n {
		start := testNow.Add(-time.Duration(i+1) * time.Minute)
		o := newOp(schema.OpNotify, start, 3*time.Millisecond)
		o.topic, o.broadcaster = "orders", "b1:3003"
		notify := r.record(context.Background(), o)
		_, s := r.tracer.Start(context.Background(), "send missed", trace.WithTimestamp(start.Add(time.Second)),
			trace.WithLinks(trace.Link{SpanContext: notify}),
			trace.WithAttributes(schema.Operation(schema.OpMissed), schema.Topic("orders"), schema.Broadcaster("b1:3003")))
		if i%2 == 0 {
			err := fmt.Errorf("missed delivery to subscriber %d: connection refused", i)
			s.RecordError(err, trace.WithTimestamp(start.Add(time.Second+time.Millisecond)))
			s.SetStatus(codes.Error, err.Error())
		}
		s.End(trace.WithTimestamp(start.Add(time.Second + 2*time.Millisecond)))
	}
	return r.c.take()
}

// fmtThousands is the page's count format, written again for the test.
func fmtThousands(n int64) string {
	s := fmt.Sprint(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

func mustRun[T any](tb testing.TB, ctx context.Context, a chromedp.Action[T]) T {
	tb.Helper()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		tb.Fatal(err)
	}
	return v
}
