package viewer_test

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/lonelytrace/lonelytrace/schema"
)

// TestPage_TrendsBrowser checks in headless Chromium that a trend's bar
// leads where its column does: the bars are drawn over the columns and
// let the pointer through, so the element under a bar is its column's
// door, and a click there lists that step's operations.
func TestPage_TrendsBrowser(t *testing.T) {
	if _, err := os.Stat(chromium); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is missing in CI: %v", chromium, err)
		}
		t.Skipf("%s is missing: %v", chromium, err)
	}
	var ops []opSpec
	for i := range 200 {
		o := newOp(schema.OpNotify, testNow.Add(-20*time.Second+time.Duration(i)*100*time.Millisecond), time.Duration(1+i%9)*time.Millisecond)
		o.topic, o.failed = "orders", i%7 == 0
		ops = append(ops, o)
	}
	base := server(t, mustOpen(t, testNow, writeOps(t, t.TempDir(), "t.db", ops)))
	opts := append(chromedp.DefaultExecAllocatorOptions[:0:0],
		chromedp.ExecPath(chromium),
		chromedp.Flag("headless", true),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 2000),
	)
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancel()
	ctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	if err := chromedp.Do(ctx); err != nil {
		t.Fatal(err)
	}
	tctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	if err := chromedp.Do(tctx, chromedp.Navigate(base+"/"), chromedp.WaitVisible("#trend-notify svg")); err != nil {
		t.Fatal(err)
	}
	// The middle of the tallest count bar, and the door under it.
	under := mustRun(t, tctx, chromedp.Evaluate[[]string](`(() => {
		const svg = document.querySelector("#trend-notify svg");
		const m = svg.getScreenCTM();
		const seg = svg.querySelector("path.b").getAttribute("d").split("M")[1];
		const [x, y] = seg.split("h")[0].split(" ").map(Number);
		const p = new DOMPoint(x + 2, y + 0.5).matrixTransform(m);
		const el = document.elementFromPoint(p.x, p.y);
		const a = el && el.closest("a");
		const col = [...svg.querySelectorAll("a")].find(c => {
			const r = c.querySelector("rect.hit");
			return +r.getAttribute("x") <= x && x < +r.getAttribute("x") + +r.getAttribute("width");
		});
		return [el ? el.tagName + "." + el.getAttribute("class") : "none", a ? a.getAttribute("href") : "", col ? col.getAttribute("href") : ""];
	})()`))
	if under[0] != "rect.hit" || under[1] == "" || under[1] != under[2] {
		t.Fatalf("under a bar: %q, door %q; want the column's door %q", under[0], under[1], under[2])
	}
	if err := chromedp.Do(tctx,
		chromedp.Evaluate[chromedp.Void](`document.body.dataset.old = "1"; document.querySelector("#trend-notify svg a").dispatchEvent(new MouseEvent("click", {bubbles: true}))`),
		chromedp.WaitNotPresent("body[data-old]"), chromedp.WaitVisible("#trace-totals")); err != nil {
		t.Fatal(err)
	}
	loc := mustRun(t, tctx, chromedp.Location())
	if !strings.Contains(loc, "op=notify") || !strings.Contains(loc, "since=") || !strings.Contains(loc, "until=") {
		t.Errorf("a column led to %s; want its step's notifies", loc)
	}
}
