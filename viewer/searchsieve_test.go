package viewer_test

import (
	"fmt"
	"math"
	"math/rand/v2"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"

	"github.com/lonelytrace/lonelytrace/schema"
	"github.com/lonelytrace/lonelytrace/viewer"
)

// sieveChoices are attributes with their string forms written out by
// hand: every type, strings that JSON escapes, values whose forms hold
// one another ("acme" and "acme-west", 500 and 5000, 2.5 and 25), and
// values of one form under one key in several types (500 and "500",
// true and "true", NaN and "NaN", [1,2] and "[1,2]").
var sieveChoices = []attrChoice{
	{attribute.String("tenant", "acme"), "acme"},
	{attribute.String("tenant", "acme-west"), "acme-west"},
	{attribute.String("tenant", "west"), "west"},
	{attribute.String("tenant", `say "hi" \ bye`), `say "hi" \ bye`},
	{attribute.String("tenant", "naïve ☃ 日本"), "naïve ☃ 日本"},
	{attribute.String("tenant", "tab\tnew\nline\x01"), "tab\tnew\nline\x01"},
	{attribute.String("tenant", ""), ""},
	{attribute.String("tenant", "bad\xffutf"), "bad\uFFFDutf"},
	{attribute.String("tenant", "' OR '1'='1"), "' OR '1'='1"},
	{attribute.Int("code", 500), "500"},
	{attribute.Int("code", 5000), "5000"},
	{attribute.Int("code", -3), "-3"},
	{attribute.String("code", "500"), "500"},
	{attribute.Float64("ratio", 0.5), "0.5"},
	{attribute.Float64("ratio", 2), "2"},
	{attribute.Float64("ratio", 2.5), "2.5"},
	{attribute.Float64("ratio", 25), "25"},
	{attribute.Float64("ratio", 1e21), "1e+21"},
	{attribute.Float64("ratio", math.NaN()), "NaN"},
	{attribute.Float64("ratio", math.Inf(-1)), "-Inf"},
	{attribute.String("ratio", "NaN"), "NaN"},
	{attribute.Bool("flag", true), "true"},
	{attribute.Bool("flag", false), "false"},
	{attribute.String("flag", "true"), "true"},
	{attribute.StringSlice("list", []string{"a", `b"`}), `["a","b\""]`},
	{attribute.Int64Slice("list", []int64{1, 2}), "[1,2]"},
	{attribute.Float64Slice("list", []float64{0.25, 3}), "[0.25,3]"},
	{attribute.BoolSlice("list", []bool{true, false}), "[true,false]"},
	{attribute.StringSlice("list", []string{}), "[]"},
	{attribute.String("list", "[1,2]"), "[1,2]"},
	{attribute.String("other", "acme"), "acme"},
}

// genSieveSpecs is genSearchSpecs with sieveChoices for attributes, on
// receives too, and a few rare names, one of them a quote and an
// injection.
func genSieveSpecs(seed uint64, n int) []*searchSpec {
	rng := rand.New(rand.NewPCG(seed, 11))
	services := []string{"orders", "billing", "edge"}
	names := []string{"publish", "deliver", "sub", "publish", "deliver", "sub", "publish", "deliver", "sub", "rare", `x'); DROP TABLE spans; --`}
	var out []*searchSpec
	for i := 0; i < n; i++ {
		s := &searchSpec{
			op:          schema.Operations[rng.IntN(3)],
			name:        names[rng.IntN(len(names))],
			service:     services[rng.IntN(len(services))],
			topic:       "orders",
			broadcaster: "b1:3003",
			start:       testNow.Add(-time.Duration(rng.Int64N(int64(2 * time.Hour)))),
			dur:         time.Duration(rng.IntN(40))*time.Millisecond + time.Duration(rng.IntN(3))*500*time.Microsecond,
			failed:      rng.IntN(4) == 0,
			forms:       map[string]string{},
		}
		s.addAttrs(rng, sieveChoices, rng.IntN(4))
		if i%5 == 0 {
			c := &searchSpec{op: schema.OpReceive, name: names[rng.IntN(len(names))], service: s.service, topic: s.topic, broadcaster: s.broadcaster,
				start: s.start.Add(time.Millisecond), dur: s.dur / 2, failed: !s.failed, forms: map[string]string{}}
			c.addAttrs(rng, sieveChoices, rng.IntN(4))
			s.dur += 2 * time.Millisecond
			s.child = c
		}
		out = append(out, s)
	}
	return out
}

// TestTraces_SearchSieve checks searches by name and attr against
// oracleSearch, whole lists and small pages deep in them, with the
// viewer's sieve taken at once, after a batch of rows, and by the
// default rule; over one file, two, and two with a copy of one.
func TestTraces_SearchSieve(t *testing.T) {
	var cases []url.Values
	seen := map[string]bool{}
	for _, c := range sieveChoices {
		if p := string(c.kv.Key) + "=" + c.form; !seen[p] {
			seen[p] = true
			cases = append(cases, url.Values{"attr": {p}})
		}
	}
	cases = append(cases,
		url.Values{"attr": {"tenant=acm"}}, url.Values{"attr": {"tenant=nowhere"}}, url.Values{"attr": {"code=50"}},
		url.Values{"attr": {"ratio=2.0"}}, url.Values{"attr": {"ratio=+Inf"}}, url.Values{"attr": {"flag=TRUE"}},
		url.Values{"attr": {"list=[1, 2]"}}, url.Values{"attr": {"tenant=bad\xffutf"}},
		url.Values{"name": {"rare"}}, url.Values{"name": {"deliver"}}, url.Values{"name": {"nothing"}},
		url.Values{"name": {`x'); DROP TABLE spans; --`}},
		url.Values{"attr": {"tenant=acme", "flag=true"}},
		url.Values{"op": {"notify"}, "attr": {"code=500"}, "status": {"error"}},
		url.Values{"name": {"rare"}, "min_ms": {"10"}},
		url.Values{"op": {"receive"}, "name": {"deliver"}, "attr": {"ratio=2"}, "max_ms": {"30"}},
		url.Values{"service": {"billing"}, "attr": {"list=[1,2]"}, "status": {"ok"}},
		url.Values{"name": {"publish"}, "attr": {"tenant=' OR '1'='1"}},
	)
	rules := []struct {
		name          string
		sample, share int
	}{{"AtOnce", 0, 1}, {"AfterABatch", 16, 1 << 30}, {"Default", -1, -1}}
	if viewer.RaceEnabled {
		rules = rules[:1] // the sieve's goroutines are what the race detector watches
	}
	for _, files := range searchFileSets(t, genSieveSpecs(17, 500), genSieveSpecs(17, 500), 200) {
		for _, r := range rules {
			v := mustOpen(t, testNow, files.paths...)
			if r.sample >= 0 {
				viewer.SetSieveRule(v, r.sample, r.share)
			}
			base := server(t, v)
			t.Run(files.name+"/"+r.name, func(t *testing.T) {
				for _, p := range cases {
					for _, order := range []string{"newest", "slowest"} {
						for _, page := range []struct{ offset, limit int }{{0, 500}, {0, 1}, {3, 2}, {12, 3}} {
							q := url.Values{}
							for k, v := range p {
								q[k] = v
							}
							q.Set("since", testNow.Add(-2*time.Hour).Format(time.RFC3339Nano))
							q.Set("sort", order)
							q.Set("offset", fmt.Sprint(page.offset))
							q.Set("limit", fmt.Sprint(page.limit))
							checkPage(t, files.specs, base, q, page.offset, page.limit)
						}
					}
				}
			})
		}
	}
}

// checkPage checks the page of q against oracleSearch: its traces, the
// operation and duration that describe them, and whether more follow.
func checkPage(t *testing.T, specs []*searchSpec, base string, q url.Values, offset, limit int) {
	t.Helper()
	all := oracleSearch(specs, q)
	var want []string
	if offset < len(all) {
		for _, s := range all[offset:min(offset+limit, len(all))] {
			want = append(want, fmt.Sprintf("%s %s %v", s.traceID, s.op, ms(s.dur)))
		}
	}
	l := traceList(t, base, q)
	var got []string
	for _, it := range l.Traces {
		got = append(got, fmt.Sprintf("%s %s %v", it.TraceID, it.Op, it.DurationMs))
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("%s: traces\n%s\nwant\n%s\n(of %d)", q.Encode(), strings.Join(got, "\n"), strings.Join(want, "\n"), len(all))
	}
	if more := len(all) > offset+limit; l.More != more {
		t.Errorf("%s: more = %v; want %v", q.Encode(), l.More, more)
	}
}

// TestTraces_SearchSieveHostile searches, with the sieve taken at once,
// for names and attr values made of SQL: those that spans hold find
// exactly those spans, the others nothing, and the file is not changed
// by a byte.
func TestTraces_SearchSieveHostile(t *testing.T) {
	specs := genSieveSpecs(29, 300)
	path := recordSearchSpecs(t, t.TempDir(), specs)
	before := fileSum(t, path)
	v := mustOpen(t, testNow, path)
	viewer.SetSieveRule(v, 0, 1)
	base := server(t, v)
	since := testNow.Add(-2 * time.Hour).Format(time.RFC3339Nano)
	values := append(slices.Clone(injections), `x'); DROP TABLE spans; --`, "' OR '1'='1")
	for _, inj := range values {
		for _, p := range []url.Values{{"name": {inj}}, {"attr": {"tenant=" + inj}}, {"attr": {"code=" + inj}}, {"attr": {inj + "=x"}}, {"name": {inj}, "attr": {"tenant=" + inj}}} {
			for _, order := range []string{"newest", "slowest"} {
				p.Set("since", since)
				p.Set("sort", order)
				p.Set("limit", "500")
				checkPage(t, specs, base, p, 0, 500)
			}
		}
	}
	if n := len(oracleSearch(specs, url.Values{"since": {since}, "attr": {"tenant=' OR '1'='1"}})); n == 0 {
		t.Error("no span holds the injection searched for")
	}
	if fileSum(t, path) != before {
		t.Error("the trace file changed")
	}
}
