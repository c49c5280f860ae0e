package viewer_test

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/lonelytrace/lonelytrace/exporter"
	"github.com/lonelytrace/lonelytrace/schema"
	"github.com/lonelytrace/lonelytrace/viewer"
	"github.com/lonelytrace/lonelytrace/viewer/model"
)

func fileSum(tb testing.TB, path string) [32]byte {
	tb.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	return sha256.Sum256(b)
}

// injections are SQL meant to escape a string literal, a LIKE or GLOB
// pattern or a number, or to end the statement.
var injections = []string{
	`' OR '1'='1`, `' OR 1=1 --`, `" OR ""="`, `orders' --`, `x'); DROP TABLE spans; --`,
	`1; DELETE FROM meta`, `%`, `_`, `' UNION SELECT name FROM sqlite_schema --`,
	`orders/eu' AND 0=1 UNION ALL SELECT 1,2,3,4,5,6 --`, "\x00' OR 1=1", `\' OR 1=1 #`,
	`'; ATTACH DATABASE '/tmp/x.db' AS x; --`, `') OR ('a'='a`,
}

// TestServe_SQLInjection sends SQL in every parameter: the filters match
// nothing, the others are refused, and the file is not changed by a byte.
func TestServe_SQLInjection(t *testing.T) {
	path := writeOps(t, t.TempDir(), "t.db", genOps(9, 200))
	before := fileSum(t, path)
	base := server(t, mustOpen(t, testNow, path))
	all := summary(t, base, url.Values{"since": {"beginning"}})
	if all.Operations["notify"].Count == 0 {
		t.Fatal("no notifies to hide")
	}
	for _, inj := range injections {
		for _, param := range []string{"broadcaster", "topic", "glob"} {
			s := summary(t, base, url.Values{"since": {"beginning"}, param: {inj}})
			for op, o := range s.Operations {
				if o.Count != 0 {
					t.Errorf("%s=%q: %d %s operations match; want none", param, inj, o.Count, op)
				}
			}
			if s.Spans != all.Spans {
				t.Errorf("%s=%q: spans in window = %d; want %d", param, inj, s.Spans, all.Spans)
			}
			for _, p := range []string{"/api/traces", "/"} {
				if code, _ := get(t, base, p, url.Values{"since": {"beginning"}, param: {inj}}); code != http.StatusOK {
					t.Errorf("GET %s with %s=%q: status %d; want 200", p, param, inj, code)
				}
			}
		}
		for _, param := range []string{"since", "until", "tz", "offset", "limit"} {
			if code, _ := get(t, base, "/api/traces", url.Values{param: {inj}}); code != http.StatusBadRequest {
				t.Errorf("traces with %s=%q: status %d; want 400", param, inj, code)
			}
		}
		// The search's text parameters match nothing; the others are refused.
		for _, p := range []url.Values{{"service": {inj}}, {"name": {inj}}, {"attr": {"tenant=" + inj}}, {"attr": {inj + "=x"}}, {"op": {"notify"}, "name": {inj}, "sort": {"slowest"}}} {
			p.Set("since", "beginning")
			code, body := get(t, base, "/api/traces", p)
			var l model.TraceList
			if err := json.Unmarshal(body, &l); code != http.StatusOK || err != nil || len(l.Traces) != 0 {
				t.Errorf("traces with %s: status %d, %d traces; want 200 and none", p.Encode(), code, len(l.Traces))
			}
			if code, _ := get(t, base, "/", p); code != http.StatusOK {
				t.Errorf("page with %s: status %d; want 200", p.Encode(), code)
			}
		}
		for _, param := range []string{"op", "status", "min_ms", "max_ms", "sort"} {
			if code, _ := get(t, base, "/api/traces", url.Values{param: {inj}}); code != http.StatusBadRequest {
				t.Errorf("traces with %s=%q: status %d; want 400", param, inj, code)
			}
		}
		if code, _ := get(t, base, "/trace/"+url.PathEscape(inj), nil); code != http.StatusBadRequest && code != http.StatusNotFound {
			t.Errorf("trace page %q: status %d; want 400 or 404", inj, code)
		}
		if code, _ := get(t, base, "/api/traces/0123456789abcdef0123456789abcdef", url.Values{"format": {inj}}); code != http.StatusBadRequest {
			t.Errorf("format=%q: status %d; want 400", inj, code)
		}
		for _, c := range []struct{ path, param string }{{"/api/series", "step"}, {"/", "step"}, {"/api/breakdown", "by"}, {"/api/breakdown", "op"}} {
			params := url.Values{"by": {"topic"}, c.param: {inj}}
			if code, _ := get(t, base, c.path, params); code != http.StatusBadRequest {
				t.Errorf("%s with %s=%q: status %d; want 400", c.path, c.param, inj, code)
			}
		}
		for _, param := range []string{"broadcaster", "topic", "glob"} {
			params := url.Values{"since": {"beginning"}, "by": {"topic"}, param: {inj}}
			for _, p := range []string{"/api/series", "/api/breakdown", "/api/map"} {
				code, body := get(t, base, p, params)
				if code != http.StatusOK || strings.Contains(string(body), `"count": 1`) {
					t.Errorf("%s with %s=%q: status %d; want 200 and nothing counted", p, param, inj, code)
				}
			}
		}
		if code, _ := get(t, base, "/", url.Values{"trace": {inj}}); code != http.StatusBadRequest {
			t.Errorf("page with trace=%q: status %d; want 400", inj, code)
		}
		if code, _ := get(t, base, "/api/traces/"+url.PathEscape(inj), nil); code != http.StatusBadRequest && code != http.StatusNotFound {
			t.Errorf("trace route %q: status %d; want 400 or 404", inj, code)
		}
	}
	if again := summary(t, base, url.Values{"since": {"beginning"}}); jsonOf(again) != jsonOf(all) {
		t.Error("the summary changed after the injections")
	}
	if fileSum(t, path) != before {
		t.Error("the trace file changed")
	}
}

// hostileSpans records spans whose every string is markup.
func hostileSpans(t *testing.T, path string) trace.TraceID {
	r := newRecorder()
	start := testNow.Add(-time.Hour)
	ctx, op := r.tracer.Start(context.Background(), `<script>alert("name")</script>`, trace.WithTimestamp(start),
		trace.WithAttributes(schema.Operation(schema.OpNotify), schema.Topic(`<script>alert("topic")</script>`),
			schema.Broadcaster(`"><img src=x onerror=alert(1)>`), schema.BodySize(3),
			attribute.String("note", `</td></tr><script>alert("attr")</script>`),
			attribute.String(`<b onmouseover="alert(1)">key</b>`, "v")))
	op.AddEvent(`<iframe src="javascript:alert(1)">`, trace.WithTimestamp(start.Add(time.Millisecond)),
		trace.WithAttributes(attribute.String("e", `<svg onload=alert(1)>`)))
	_, child := r.tracer.Start(ctx, `<style>body{display:none}</style>`, trace.WithTimestamp(start.Add(time.Millisecond)))
	child.SetStatus(codes.Error, `<script>alert("status")</script>`)
	child.End(trace.WithTimestamp(start.Add(2 * time.Millisecond)))
	op.End(trace.WithTimestamp(start.Add(3 * time.Millisecond)))
	writeSpans(t, path, r.c.take())
	return op.SpanContext().TraceID()
}

// TestPage_MarkupIsText renders topics, broadcasters, span and event
// names, attribute keys and values and status messages made of markup,
// and checks that all of it is text on the page.
func TestPage_MarkupIsText(t *testing.T) {
	path := filepath.Join(t.TempDir(), "t.db")
	id := hostileSpans(t, path)
	base := server(t, mustOpen(t, testNow, path))
	code, page := get(t, base, "/trace/"+id.String(), url.Values{"since": {"beginning"}})
	if code != http.StatusOK {
		t.Fatalf("status %d: %s", code, page)
	}
	// The list, searched with markup in every text parameter, shows it as
	// text in the form and in the links it builds.
	_, list := get(t, base, "/", url.Values{"since": {"beginning"}, "service": {`"><script>alert(1)</script>`}, "name": {`<img src=x>`}, "attr": {`k=<svg onload=alert(1)>`}})
	page = append(page, list...)
	_, list = get(t, base, "/", url.Values{"since": {"beginning"}})
	page = append(page, list...)
	tags := regexp.MustCompile(`(?i)<(script|img|iframe|svg[^>]*onload|b onmouseover|style>body)`)
	if m := tags.FindAll(page, -1); len(m) > 0 {
		t.Errorf("the page holds live markup from the spans: %q", m)
	}
	for _, want := range []string{`&lt;script&gt;alert(&#34;topic&#34;)&lt;/script&gt;`, `&lt;script&gt;alert(&#34;name&#34;)&lt;/script&gt;`,
		`&lt;/td&gt;&lt;/tr&gt;&lt;script&gt;`, `&lt;iframe`, `&lt;svg onload=alert(1)&gt;`, `&lt;b onmouseover=`, `&lt;script&gt;alert(&#34;status&#34;)`} {
		if !strings.Contains(string(page), want) {
			t.Errorf("the page lacks the escaped text %s", want)
		}
	}
	// The JSON API is JSON, never HTML.
	for _, p := range []string{"/api/summary?since=beginning", "/api/traces?since=beginning", "/api/traces/" + id.String(),
		"/api/series?since=beginning", "/api/breakdown?since=beginning&by=topic", "/api/map?since=beginning"} {
		resp, err := http.Get(base + p)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") || resp.Header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("%s: Content-Type %q, nosniff %q", p, ct, resp.Header.Get("X-Content-Type-Options"))
		}
		if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") {
			t.Errorf("%s: CSP %q", p, csp)
		}
	}
}

// TestPage_Huge renders a 1 MB attribute, a trace of 10,000 spans and a
// chain of 1,000 nested spans, as page and as JSON.
func TestPage_Huge(t *testing.T) {
	path := filepath.Join(t.TempDir(), "t.db")
	r := newRecorder()
	start := testNow.Add(-time.Hour)
	ctx, big := r.tracer.Start(context.Background(), "big", trace.WithTimestamp(start),
		trace.WithAttributes(schema.Operation(schema.OpNotify), schema.Topic("huge"), attribute.String("blob", strings.Repeat("é<", 1<<19))))
	big.End(trace.WithTimestamp(start.Add(time.Millisecond)))
	_ = ctx
	wideCtx, wide := r.tracer.Start(context.Background(), "wide", trace.WithTimestamp(start),
		trace.WithAttributes(schema.Operation(schema.OpReceive), schema.Topic("wide")))
	for i := range 9_999 {
		_, c := r.tracer.Start(wideCtx, "child", trace.WithTimestamp(start.Add(time.Duration(i)*time.Microsecond)))
		c.End(trace.WithTimestamp(start.Add(time.Duration(i+1) * time.Microsecond)))
	}
	wide.End(trace.WithTimestamp(start.Add(20 * time.Millisecond)))
	deepCtx, deep := r.tracer.Start(context.Background(), "deep", trace.WithTimestamp(start),
		trace.WithAttributes(schema.Operation(schema.OpNotify), schema.Topic("deep")))
	var ends []func()
	c := deepCtx
	for i := range 999 {
		var s trace.Span
		c, s = r.tracer.Start(c, "level", trace.WithTimestamp(start.Add(time.Duration(i)*time.Microsecond)))
		ends = append(ends, func() { s.End(trace.WithTimestamp(start.Add(10 * time.Millisecond))) })
	}
	for i := len(ends) - 1; i >= 0; i-- {
		ends[i]()
	}
	deep.End(trace.WithTimestamp(start.Add(11 * time.Millisecond)))
	writeSpans(t, path, r.c.take())
	base := server(t, mustOpen(t, testNow, path))

	for _, tc := range []struct {
		name  string
		id    trace.TraceID
		spans int
	}{{"Attribute1MB", big.SpanContext().TraceID(), 1}, {"Wide10000", wide.SpanContext().TraceID(), 10_000}, {"Deep1000", deep.SpanContext().TraceID(), 1_000}} {
		t.Run(tc.name, func(t *testing.T) {
			began := time.Now()
			code, body := get(t, base, "/api/traces/"+tc.id.String(), nil)
			if code != http.StatusOK {
				t.Fatalf("JSON: status %d", code)
			}
			var d model.TraceDetail
			if err := json.Unmarshal(body, &d); err != nil {
				t.Fatal(err)
			}
			if len(d.Spans) != tc.spans || d.Truncated {
				t.Errorf("JSON: %d spans, truncated %v; want %d", len(d.Spans), d.Truncated, tc.spans)
			}
			code, page := get(t, base, "/", url.Values{"since": {"beginning"}, "trace": {tc.id.String()}})
			if code != http.StatusOK {
				t.Fatalf("page: status %d", code)
			}
			if n := strings.Count(string(page), `class="span-row"`); n != tc.spans {
				t.Errorf("page: %d span rows; want %d", n, tc.spans)
			}
			t.Logf("JSON %d bytes, page %d bytes, in %v", len(body), len(page), time.Since(began).Round(time.Millisecond))
		})
	}
}

// TestRequireToken checks the middleware on a real server: the bearer
// header and the query parameter pass, anything else is a 401, and an
// empty token lets nothing through.
func TestRequireToken(t *testing.T) {
	path := writeOps(t, t.TempDir(), "t.db", genOps(3, 20))
	v := mustOpen(t, testNow, path)
	serve := func(token string) string {
		e := echo.New()
		v.Register(e.Group("/stats", viewer.RequireToken(token)))
		srv := newLoopbackServer(t, e)
		return srv + "/stats"
	}
	const tok = "s3cret-s3cret-s3cret"
	base := serve(tok)
	for _, tc := range []struct {
		name, path, auth string
		want             int
	}{
		{"None", "/", "", 401}, {"Wrong", "/?token=s3cret", "", 401}, {"WrongBearer", "/api/summary", "Bearer x" + tok, 401},
		{"Basic", "/api/summary", "Basic " + tok, 401}, {"Query", "/?token=" + tok, "", 200},
		{"Bearer", "/api/summary", "Bearer " + tok, 200}, {"BearerLower", "/api/traces", "bearer " + tok, 200},
		{"NotFoundStillGuarded", "/nope", "", 401},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest("GET", base+tc.path, nil)
			if tc.auth != "" {
				req.Header.Set("Authorization", tc.auth)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.want {
				t.Errorf("status %d; want %d", resp.StatusCode, tc.want)
			}
			if tc.want == 401 && !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("401 without WWW-Authenticate: Bearer")
			}
		})
	}
	// The page carries the token in its form and links.
	_, page := get(t, base, "/", url.Values{"since": {"beginning"}, "token": {tok}})
	if !strings.Contains(string(page), `name="token" value="`+tok+`"`) || !strings.Contains(string(page), "token="+tok) {
		t.Error("the page does not carry the token along")
	}
	if code, _ := get(t, serve(""), "/", url.Values{"token": {""}}); code != 401 {
		t.Errorf("empty token: status %d; want 401", code)
	}
}

// TestSummary_Retention checks that the summary shows the retention the
// exporter recorded, the file's size and the oldest span kept.
func TestSummary_Retention(t *testing.T) {
	path := filepath.Join(t.TempDir(), "t.db")
	e, err := exporter.New(path, exporter.WithMaxAge(3*24*time.Hour), exporter.WithMaxSize(500e6))
	if err != nil {
		t.Fatal(err)
	}
	r := newRecorder()
	for i := range 5 {
		r.record(context.Background(), newOp(schema.OpNotify, testNow.Add(-time.Duration(i)*time.Hour), time.Millisecond))
	}
	ctx := context.Background()
	if err := e.ExportSpans(ctx, r.c.take()); err != nil {
		t.Fatal(err)
	}
	if err := e.ForceFlush(ctx); err != nil {
		t.Fatal(err)
	}
	if err := e.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	base := server(t, mustOpen(t, testNow, path))
	s := summary(t, base, url.Values{"since": {"beginning"}})
	f := s.Files[0]
	if f.Retention == nil || f.Retention.MaxAgeNs != int64(72*time.Hour) || f.Retention.MaxBytes != 500e6 {
		t.Errorf("retention = %+v; want 3 days and 500 MB", f.Retention)
	}
	if f.Oldest == nil || !f.Oldest.Equal(testNow.Add(-4*time.Hour)) {
		t.Errorf("oldest = %v; want %v", f.Oldest, testNow.Add(-4*time.Hour))
	}
	if f.Bytes <= 0 {
		t.Errorf("bytes = %d; want the file's size", f.Bytes)
	}
	_, page := get(t, base, "/", url.Values{"since": {"beginning"}})
	for _, want := range []string{`<td class="retention-age" title="259200000000000 ns">3 days</td>`, `<td class="retention-size" title="500000000 bytes">`} {
		if !strings.Contains(string(page), want) {
			t.Errorf("page lacks %s", want)
		}
	}
}

func newLoopbackServer(tb testing.TB, h http.Handler) string {
	tb.Helper()
	srv := httptest.NewServer(h)
	tb.Cleanup(srv.Close)
	return srv.URL
}

// FuzzTraceRoute sends any string as the trace id of /api/traces/:id and
// of the page's trace parameter: the answer is the one stored trace, a
// 404 or a 400, never a 500 or another trace.
func FuzzTraceRoute(f *testing.F) {
	dir := f.TempDir()
	r := newRecorder()
	sc := r.record(context.Background(), newOp(schema.OpNotify, testNow.Add(-time.Hour), time.Millisecond))
	path := filepath.Join(dir, "t.db")
	writeSpans(f, path, r.c.take())
	v, err := viewer.Open(path)
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { v.Close() })
	e := echo.New()
	v.Register(e.Group("/stats"))
	srv := httptest.NewServer(e)
	f.Cleanup(srv.Close)
	known := sc.TraceID().String()
	for _, seed := range []string{known, strings.ToUpper(known), "00000000000000000000000000000000", "zz", "", "../../etc/passwd", "%00", known + "0"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, id string) {
		for _, u := range []string{srv.URL + "/stats/api/traces/" + url.PathEscape(id), srv.URL + "/stats/?" + url.Values{"trace": {id}}.Encode()} {
			resp, err := http.Get(u)
			if err != nil {
				t.Fatal(err)
			}
			var body struct {
				TraceID string `json:"trace_id"`
			}
			isAPI := strings.Contains(u, "/api/")
			if isAPI && resp.StatusCode == http.StatusOK {
				json.NewDecoder(resp.Body).Decode(&body)
			}
			resp.Body.Close()
			switch {
			case resp.StatusCode == http.StatusOK && isAPI && strings.EqualFold(id, known) && body.TraceID == known:
			case resp.StatusCode == http.StatusOK && !isAPI:
			case resp.StatusCode == http.StatusNotFound, resp.StatusCode == http.StatusBadRequest:
			case resp.StatusCode == http.StatusMovedPermanently, resp.StatusCode == http.StatusFound:
			default:
				t.Errorf("GET %s: status %d, trace %q", u, resp.StatusCode, body.TraceID)
			}
		}
	})
}
