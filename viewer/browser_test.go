package viewer_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/lonelytrace/lonelytrace/viewer"
)

const chromium = "/usr/bin/chromium"

// TestPage_Browser drives the page in headless Chromium: it fills in and
// submits the form, checks the numbers shown against the JSON API,
// follows a trace link to the waterfall, and takes a screenshot.
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
	base := server(t, mustOpen(t, testNow, writeOps(t, t.TempDir(), "browser.db", ops)))

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

	if err := chromedp.Do(tctx, chromedp.Click("a.trace-link"), chromedp.WaitVisible("#waterfall")); err != nil {
		t.Fatal(err)
	}
	url1 := mustRun(t, tctx, chromedp.Location())
	rows := mustRun(t, tctx, chromedp.Evaluate[int](`document.querySelectorAll("#waterfall tr.span-row").length`))
	u, err := url.Parse(url1)
	if err != nil {
		t.Fatal(err)
	}
	if u.Query().Get("topic") != "orders" || u.Query().Get("since") != "beginning" {
		t.Errorf("trace link %q lost the filters", url1)
	}
	_, body := get(t, base, "/api/traces/"+u.Query().Get("trace"), nil)
	var d viewer.TraceDetail
	if err := json.Unmarshal(body, &d); err != nil {
		t.Fatal(err)
	}
	if rows != len(d.Spans) || rows == 0 {
		t.Errorf("waterfall rows = %d; want %d", rows, len(d.Spans))
	}

	if err := chromedp.Do(tctx, chromedp.Navigate(base+"/?since=beginning"), chromedp.WaitVisible("#durations")); err != nil {
		t.Fatal(err)
	}
	png := mustRun(t, tctx, chromedp.CaptureScreenshot())
	if len(png) < 8 || string(png[1:4]) != "PNG" {
		t.Fatalf("screenshot is not a PNG (%d bytes)", len(png))
	}
	// The screenshot goes to a temporary folder, so that a test run leaves
	// the checkout as it was; LONELYTRACE_SCREENSHOT=docs/viewer.png (from
	// the repository root) renews the README's picture.
	out := filepath.Join(t.TempDir(), "viewer.png")
	if p := os.Getenv("LONELYTRACE_SCREENSHOT"); p != "" {
		out = filepath.Join("..", p)
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(out, png, 0o644); err != nil {
		t.Fatal(err)
	}
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
