package viewer_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lonelytrace/lonelytrace/internal/fnmatch"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/lonelytrace/lonelytrace/schema"
	"github.com/lonelytrace/lonelytrace/viewer/model"
)

// searchSpec is one generated operation span with what search reads.
type searchSpec struct {
	op, name, service, topic, broadcaster string
	start                                 time.Time
	dur                                   time.Duration
	failed                                bool
	// attrs and their string forms, written out by hand.
	attrs []attribute.KeyValue
	forms map[string]string
	// child is an operation span in the same trace, under this one: an
	// operation of its own unless it has this one's operation.
	child *searchSpec
	// traceID is filled in when recorded.
	traceID string
}

// attrChoice is an attribute with its string form as the search defines
// it, written literally rather than computed.
type attrChoice struct {
	kv   attribute.KeyValue
	form string
}

// addAttrs gives s n attributes drawn from choices, each key once (a
// key drawn again is passed over).
func (s *searchSpec) addAttrs(rng *rand.Rand, choices []attrChoice, n int) {
	for range n {
		c := choices[rng.IntN(len(choices))]
		if _, dup := s.forms[string(c.kv.Key)]; dup {
			continue
		}
		s.attrs = append(s.attrs, c.kv)
		s.forms[string(c.kv.Key)] = c.form
	}
}

// attrChoices are the attributes of the search's specs.
var attrChoices = []attrChoice{
	{attribute.String("tenant", "acme"), "acme"},
	{attribute.String("tenant", "o'hara <b>"), "o'hara <b>"},
	{attribute.Int("http.response.status_code", 500), "500"},
	{attribute.Int("http.response.status_code", 200), "200"},
	{attribute.Float64("ratio", 0.5), "0.5"},
	{attribute.Float64("ratio", 2), "2"},
	{attribute.Float64("ratio", 1e21), "1e+21"},
	{attribute.Bool("retry", true), "true"},
	{attribute.Bool("retry", false), "false"},
	{attribute.StringSlice("tags", []string{"a", "b"}), `["a","b"]`},
	{attribute.Int64Slice("codes", []int64{1, 2}), "[1,2]"},
	{attribute.BoolSlice("flags", []bool{true, false}), "[true,false]"},
	{attribute.Float64Slice("weights", []float64{0.25, 3}), "[0.25,3]"},
}

func genSearchSpecs(seed uint64, n int) []*searchSpec {
	rng := rand.New(rand.NewPCG(seed, 7))
	services := []string{"orders", "billing", "edge"}
	names := []string{"publish", "deliver", "sub"}
	topics := []string{"orders", "users.new", "x*y"}
	brs := []string{"b1:3003", "b2:3003"}
	var out []*searchSpec
	for i := 0; i < n; i++ {
		s := &searchSpec{
			op:          schema.Operations[rng.IntN(3)], // notify, receive, subscribe_exact
			name:        names[rng.IntN(len(names))],
			service:     services[rng.IntN(len(services))],
			topic:       topics[rng.IntN(len(topics))],
			broadcaster: brs[rng.IntN(len(brs))],
			start:       testNow.Add(-time.Duration(rng.Int64N(int64(2 * time.Hour)))),
			// Whole microseconds plus a few ns, so that bounds at exact
			// milliseconds fall between and on durations.
			dur:    time.Duration(rng.IntN(40))*time.Millisecond + time.Duration(rng.IntN(3))*500*time.Microsecond,
			failed: rng.IntN(4) == 0,
			forms:  map[string]string{},
		}
		s.addAttrs(rng, attrChoices, rng.IntN(3))
		if i%7 == 0 {
			c := *s
			c.op, c.name, c.forms, c.attrs, c.child = schema.OpReceive, "deliver", map[string]string{}, nil, nil
			c.start = s.start.Add(time.Millisecond)
			c.dur = s.dur / 2
			c.failed = !s.failed
			s.dur += 2 * time.Millisecond
			s.child = &c
		}
		out = append(out, s)
	}
	return out
}

// recordSearchSpecs writes specs into a file in dir, each service through
// a tracer provider of its own resource.
func recordSearchSpecs(tb testing.TB, dir string, specs []*searchSpec) string {
	tb.Helper()
	c := &collector{}
	tracers := map[string]trace.Tracer{}
	tracer := func(service string) trace.Tracer {
		if t, ok := tracers[service]; ok {
			return t
		}
		res := resource.NewSchemaless(attribute.String("service.name", service))
		tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(c), sdktrace.WithResource(res))
		tracers[service] = tp.Tracer("search_test")
		return tracers[service]
	}
	var record func(ctx context.Context, s *searchSpec) string
	record = func(ctx context.Context, s *searchSpec) string {
		attrs := append([]attribute.KeyValue{schema.Operation(s.op), schema.Topic(s.topic), schema.Broadcaster(s.broadcaster)}, s.attrs...)
		ctx, span := tracer(s.service).Start(ctx, s.name, trace.WithTimestamp(s.start), trace.WithAttributes(attrs...))
		if s.failed {
			err := errors.New("delivery to <b>'sub'</b> failed")
			span.RecordError(err, trace.WithTimestamp(s.start.Add(s.dur/2)))
			span.SetStatus(codes.Error, err.Error())
		}
		if s.child != nil {
			record(ctx, s.child)
		}
		span.End(trace.WithTimestamp(s.start.Add(s.dur)))
		return span.SpanContext().TraceID().String()
	}
	for _, s := range specs {
		s.traceID = record(context.Background(), s)
		if s.child != nil {
			s.child.traceID = s.traceID
		}
	}
	path := filepath.Join(dir, "search.db")
	writeSpans(tb, path, c.take())
	return path
}

// oracleSearch is the expected list: every operation spec that matches,
// filtered with plain comparisons, the best of each trace by a sort key
// written out in full.
func oracleSearch(specs []*searchSpec, p url.Values) []*searchSpec {
	var all []*searchSpec
	for _, s := range specs {
		all = append(all, s)
		// A child of its parent's operation is a phase of it, no
		// operation of its own (docs/design.md).
		if s.child != nil && s.child.op != s.op {
			all = append(all, s.child)
		}
	}
	since, _ := time.Parse(time.RFC3339Nano, p.Get("since"))
	minD, maxD := time.Duration(-1), time.Duration(-1)
	if v := p.Get("min_ms"); v != "" {
		var f float64
		fmt.Sscan(v, &f)
		minD = time.Duration(math.Ceil(f * 1e6))
	}
	if v := p.Get("max_ms"); v != "" {
		var f float64
		fmt.Sscan(v, &f)
		maxD = time.Duration(math.Ceil(f * 1e6))
	}
	match := func(s *searchSpec) bool {
		if s.start.Before(since) || !s.start.Before(testNow) {
			return false
		}
		for k, want := range map[string]string{"op": s.op, "service": s.service, "name": s.name, "topic": s.topic, "broadcaster": s.broadcaster} {
			if v := p.Get(k); v != "" && v != want {
				return false
			}
		}
		if g := p.Get("glob"); g != "" && !fnmatch.Regexp(g).MatchString(s.topic) {
			return false
		}
		if st := p.Get("status"); st == "error" && !s.failed || st == "ok" && s.failed {
			return false
		}
		if minD >= 0 && s.dur < minD || maxD >= 0 && s.dur >= maxD {
			return false
		}
		for _, a := range p["attr"] {
			k, v, _ := strings.Cut(a, "=")
			if got, ok := s.forms[k]; !ok || got != v {
				return false
			}
		}
		return true
	}
	slowest := p.Get("sort") == "slowest"
	better := func(a, b *searchSpec) bool { // a before b
		if slowest && a.dur != b.dur {
			return a.dur > b.dur
		}
		if !a.start.Equal(b.start) {
			return a.start.After(b.start)
		}
		return a.traceID < b.traceID
	}
	best := map[string]*searchSpec{}
	for _, s := range all {
		if match(s) && (best[s.traceID] == nil || better(s, best[s.traceID])) {
			best[s.traceID] = s
		}
	}
	var out []*searchSpec
	for _, s := range best {
		out = append(out, s)
	}
	slices.SortFunc(out, func(a, b *searchSpec) int {
		if better(a, b) {
			return -1
		}
		return 1
	})
	return out
}

func traceList(tb testing.TB, base string, p url.Values) *model.TraceList {
	tb.Helper()
	return getJSON[model.TraceList](tb, base, "/api/traces", p)
}

// TestTraces_Search checks every search parameter, alone and combined,
// in both orders, against oracleSearch.
func TestTraces_Search(t *testing.T) {
	specs := genSearchSpecs(3, 400)
	base := server(t, mustOpen(t, testNow, recordSearchSpecs(t, t.TempDir(), specs)))
	since := testNow.Add(-90 * time.Minute).Format(time.RFC3339Nano)
	cases := []url.Values{
		{},
		{"op": {"notify"}},
		{"op": {"receive"}},
		{"service": {"billing"}},
		{"service": {"nobody"}},
		{"status": {"error"}},
		{"status": {"ok"}},
		{"min_ms": {"20"}},
		{"min_ms": {"20.5"}},
		{"max_ms": {"10"}},
		{"min_ms": {"5"}, "max_ms": {"5.5"}},
		{"min_ms": {"0.0000001"}},
		{"attr": {"tenant=acme"}},
		{"attr": {"tenant=o'hara <b>"}},
		{"attr": {"http.response.status_code=500"}},
		{"attr": {"ratio=0.5"}},
		{"attr": {"ratio=2"}},
		{"attr": {"ratio=1e+21"}},
		{"attr": {"retry=true"}},
		{"attr": {"tags=[\"a\",\"b\"]"}},
		{"attr": {"codes=[1,2]"}},
		{"attr": {"flags=[true,false]"}},
		{"attr": {"weights=[0.25,3]"}},
		{"attr": {"no.such.key=1"}},
		{"attr": {"tenant=acme", "retry=false"}},
		{"name": {"deliver"}},
		{"topic": {"x*y"}, "glob": {"x*"}},
		{"op": {"notify"}, "status": {"error"}, "min_ms": {"10"}, "service": {"orders"}},
		{"op": {"receive"}, "status": {"ok"}, "max_ms": {"30"}, "name": {"deliver"}, "broadcaster": {"b2:3003"}},
		{"status": {"error"}, "attr": {"http.response.status_code=500"}, "glob": {"*s*"}},
	}
	for _, p := range cases {
		for _, order := range []string{"", "newest", "slowest"} {
			q := url.Values{}
			for k, v := range p {
				q[k] = v
			}
			q.Set("since", since)
			q.Set("limit", "500")
			if order != "" {
				q.Set("sort", order)
			}
			t.Run(q.Encode(), func(t *testing.T) {
				want := oracleSearch(specs, q)
				got := traceList(t, base, q).Traces
				if len(got) != len(want) {
					t.Fatalf("traces = %d; want %d", len(got), len(want))
				}
				for i, w := range want {
					g := got[i]
					wantStatus := "unset"
					if w.failed {
						wantStatus = "error"
					}
					if g.TraceID != w.traceID || g.Op != w.op || g.DurationMs != ms(w.dur) || g.Service != w.service || g.Status != wantStatus || !g.Start.Equal(w.start) {
						t.Fatalf("traces[%d] = %+v; want trace %s op %s %v ms service %s status %s", i, g, w.traceID, w.op, ms(w.dur), w.service, wantStatus)
					}
				}
			})
		}
	}

	t.Run("Pages", func(t *testing.T) {
		// Pages of 7 put together are the whole list, in both orders.
		for _, order := range []string{"newest", "slowest"} {
			q := url.Values{"since": {since}, "sort": {order}, "status": {"error"}, "limit": {"7"}}
			want := oracleSearch(specs, q)
			var got []string
			for off := 0; ; off += 7 {
				q.Set("offset", fmt.Sprint(off))
				l := traceList(t, base, q)
				for _, it := range l.Traces {
					got = append(got, it.TraceID)
				}
				if !l.More {
					break
				}
			}
			if len(got) != len(want) {
				t.Fatalf("%s: paged traces = %d; want %d", order, len(got), len(want))
			}
			for i := range want {
				if got[i] != want[i].traceID {
					t.Fatalf("%s: traces[%d] = %s; want %s", order, i, got[i], want[i].traceID)
				}
			}
		}
	})

	t.Run("Bad", func(t *testing.T) {
		for _, c := range []struct{ param, value, want string }{
			{"op", "publish", "one of notify"},
			{"status", "failed", "any status but Error"},
			{"min_ms", "-1", "a number of milliseconds"},
			{"min_ms", "1e3", "a number of milliseconds"},
			{"max_ms", "soon", "a number of milliseconds"},
			{"max_ms", "99999999999999999999999", "a number of milliseconds"},
			{"attr", "novalue", "key=value"},
			{"attr", "=x", "key=value"},
			{"sort", "oldest", "slowest"},
		} {
			for _, path := range []string{"/api/traces", "/"} {
				code, body := get(t, base, path, url.Values{c.param: {c.value}})
				if code != http.StatusBadRequest || !strings.Contains(string(body), c.want) {
					t.Errorf("GET %s?%s=%s: status %d, body %.200q; want 400 saying %q", path, c.param, c.value, code, body, c.want)
				}
			}
		}
		for _, param := range []string{"op", "service", "status", "min_ms", "max_ms", "name", "sort"} {
			if code, _ := get(t, base, "/api/traces", url.Values{param: {"a", "b"}}); code != http.StatusBadRequest {
				t.Errorf("%s twice: status %d; want 400", param, code)
			}
		}
		// The page shows the message in the form's place.
		_, body := get(t, base, "/", url.Values{"status": {"<script>"}})
		if !strings.Contains(string(body), `id="error"`) || strings.Contains(string(body), "<script>") {
			t.Errorf("page with a bad status: no escaped error message")
		}
	})
}
