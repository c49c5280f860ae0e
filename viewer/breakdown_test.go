package viewer_test

import (
	"cmp"
	"math/big"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/sdk/resource"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"

	"github.com/lonelytrace/lonelytrace/viewer/model"
)

// genServiceOps is genOps with each operation in one of a few services,
// one of them the SDK's default, and one with markup in it.
func genServiceOps(seed uint64, n int) []opSpec {
	ops := genOps(seed, n)
	services := []string{"orders-api", "billing", "", `<i>"svc"</i>`}
	for i := range ops {
		ops[i].service = services[(i*7+int(seed))%len(services)]
	}
	return ops
}

// oracleBreakdown groups the operations op of the window by the fact by,
// from the specs.
func oracleBreakdown(all []opSpec, f oracleFilter, by, op string) *model.Breakdown {
	type acc struct {
		row   model.BreakdownRow
		bytes *big.Int
		durs  []float64
	}
	groups := map[string]*acc{}
	for _, o := range all {
		if o.op != op || !f.match(o) {
			continue
		}
		var key string
		switch by {
		case "broadcaster":
			key = o.broadcaster
		case "topic":
			key = o.topic
		case "service":
			key = serviceOf(o)
		case "subscribers":
			if o.subs >= 0 {
				key = strconv.FormatInt(o.subs, 10)
			}
		}
		a := groups[key]
		if a == nil {
			a = &acc{row: model.BreakdownRow{Key: key}, bytes: new(big.Int)}
			groups[key] = a
		}
		a.row.Count++
		if o.failed {
			a.row.Errors++
		}
		if o.size >= 0 {
			a.bytes.Add(a.bytes, big.NewInt(o.size))
		}
		a.durs = append(a.durs, ms(o.dur))
	}
	b := &model.Breakdown{By: by, Op: op, Rows: []model.BreakdownRow{}}
	for _, a := range groups {
		a.row.Bytes, a.row.DurationMs = saturate(a.bytes), oraclePct(a.durs)
		b.Rows = append(b.Rows, a.row)
	}
	slices.SortFunc(b.Rows, func(x, y model.BreakdownRow) int {
		if x.Count != y.Count {
			return int(y.Count - x.Count)
		}
		return cmp.Compare(x.Key, y.Key)
	})
	return b
}

// serviceOf is the service.name the SDK gives o's spans: the default
// resource's when o names none.
func serviceOf(o opSpec) string {
	if o.service != "" {
		return o.service
	}
	v, _ := resource.Default().Set().Value(semconv.ServiceNameKey)
	return v.AsString()
}

func breakdownOf(tb testing.TB, base string, params url.Values) *model.Breakdown {
	tb.Helper()
	return getJSON[model.Breakdown](tb, base, "/api/breakdown", params)
}

// TestBreakdown compares every breakdown of generated operations, in one
// file and in three with shared spans, with the oracle.
func TestBreakdown(t *testing.T) {
	ops := genServiceOps(41, 900)
	bases := map[string]string{
		"OneFile":    server(t, mustOpen(t, testNow, writeOps(t, t.TempDir(), "b.db", ops))),
		"ThreeFiles": server(t, mustOpen(t, testNow, writeShared(t, ops)...)),
	}
	begin := time.Unix(0, 0)
	for _, by := range []string{"broadcaster", "topic", "service", "subscribers"} {
		for _, c := range []struct {
			name   string
			params url.Values
			op     string
			f      oracleFilter
		}{
			{"Notify", url.Values{"since": {"beginning"}}, "notify", oracleFilter{since: begin, until: testNow}},
			{"ReceiveGlob", url.Values{"since": {"beginning"}, "op": {"receive"}, "glob": {"orders*"}}, "receive", oracleFilter{since: begin, until: testNow, glob: "orders*"}},
			{"Missed24h", url.Values{"op": {"missed"}}, "missed", oracleFilter{since: testNow.Add(-24 * time.Hour), until: testNow}},
		} {
			want := oracleBreakdown(ops, c.f, by, c.op)
			if len(want.Rows) < 2 && (by != "subscribers" || c.op == "notify") {
				t.Fatalf("%s by %s: %d rows; want a test with more", c.name, by, len(want.Rows))
			}
			for name, base := range bases {
				t.Run(by+"/"+c.name+"/"+name, func(t *testing.T) {
					params := url.Values{"by": {by}}
					for k, v := range c.params {
						params[k] = v
					}
					if got := breakdownOf(t, base, params); jsonOf(got) != jsonOf(want) {
						t.Errorf("got\n%s\nwant\n%s", jsonOf(got), jsonOf(want))
					}
				})
			}
		}
	}
}

// TestBreakdown_BadParameters checks that an unknown by or op is a 400
// that names what was expected.
func TestBreakdown_BadParameters(t *testing.T) {
	base := server(t, mustOpen(t, testNow, writeOps(t, t.TempDir(), "b.db", genOps(3, 20))))
	for _, c := range []struct {
		params url.Values
		want   string
	}{
		{url.Values{}, "want one of broadcaster, topic, service, subscribers"},
		{url.Values{"by": {"Topic"}}, "want one of broadcaster, topic, service, subscribers"},
		{url.Values{"by": {"topic", "service"}}, "at most once"},
		{url.Values{"by": {"topic"}, "op": {"publish"}}, "want one of notify, receive, subscribe_exact"},
		{url.Values{"by": {"topic"}, "op": {`<script>"x"</script>`}}, "want one of notify"},
		{url.Values{"by": {"topic' OR 1=1 --"}}, "want one of broadcaster"},
	} {
		code, body := get(t, base, "/api/breakdown", c.params)
		if code != http.StatusBadRequest || !strings.Contains(string(body), c.want) || strings.Contains(string(body), "<script>") {
			t.Errorf("%s: status %d: %s; want 400 with %q", c.params.Encode(), code, body, c.want)
		}
	}
}
