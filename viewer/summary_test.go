package viewer_test

import (
	"cmp"
	"math"
	"math/big"
	"math/rand/v2"
	"net/url"
	"reflect"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/lonelytrace/lonelytrace/internal/fnmatch"
	"github.com/lonelytrace/lonelytrace/schema"
	"github.com/lonelytrace/lonelytrace/viewer"
	"github.com/lonelytrace/lonelytrace/viewer/model"
)

// testNow is the fixed present of the aggregate tests.
var testNow = time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)

// genOps makes n operations of every kind over the three days before
// testNow, with sizes on bucket edges, optional attributes and phases.
func genOps(seed uint64, n int) []opSpec {
	rng := rand.New(rand.NewPCG(seed, 1))
	topics := []string{"orders", "orders/eu", "users.new", "users.old", "a[b]", "x*y"}
	globs := []string{"orders*", "users.?ew", "[!o]*", "x*y"}
	brs := []string{"b1:3003", "b2:3003", "10.0.0.7:443", ""}
	sizes := []int64{0, 1, 2, 3, 4, 7, 8, 1023, 1024, 1<<20 - 1, 1 << 20, 1<<62 - 1, 1 << 62}
	var ops []opSpec
	for i := 0; i < n; i++ {
		op := schema.Operations[rng.IntN(len(schema.Operations))]
		if i%3 == 0 {
			op = schema.OpNotify
		}
		start := testNow.Add(-time.Duration(rng.Int64N(int64(72 * time.Hour))))
		o := newOp(op, start, time.Duration(rng.Int64N(int64(50*time.Millisecond)))+1)
		o.broadcaster = brs[rng.IntN(len(brs))]
		switch op {
		case schema.OpSubscribeGlob, schema.OpUnsubscribeGlob:
			o.glob = globs[rng.IntN(len(globs))]
		default:
			o.topic = topics[rng.IntN(len(topics))]
		}
		if op == schema.OpNotify || op == schema.OpReceive || rng.IntN(4) == 0 {
			o.size = sizes[rng.IntN(len(sizes))]
			if rng.IntN(3) == 0 {
				o.size = rng.Int64N(100_000)
			}
		}
		if op == schema.OpNotify && rng.IntN(5) > 0 {
			o.subs = rng.Int64N(4)
		}
		o.stateful = int8(rng.IntN(3)) - 1
		// Failures come from i, so that the other values stay as they
		// were before failures were generated.
		o.failed = i%7 == 3 || i%11 == 5
		switch op {
		case schema.OpNotify:
			o.phases = []phaseSpec{{name: "hash", off: 0, dur: time.Duration(rng.Int64N(1e6))}}
			send := phaseSpec{name: "send request", off: time.Millisecond, dur: time.Duration(rng.Int64N(5e6)), failed: i%5 == 1,
				kids: []phaseSpec{{name: "find subscribers", off: 2 * time.Millisecond, dur: time.Duration(rng.Int64N(1e6))}}}
			o.phases = append(o.phases, send)
			for r := rng.IntN(3); r > 0; r-- {
				// Of two retries, only the second fails.
				o.phases = append(o.phases, phaseSpec{name: "retry", off: time.Duration(5+r) * time.Millisecond, dur: time.Duration(rng.Int64N(2e6)), failed: r == 2})
			}
		case schema.OpReceive:
			o.phases = []phaseSpec{{name: "verify", off: time.Duration(rng.Int64N(1e5)), dur: time.Duration(rng.Int64N(1e6)), failed: i%4 == 2},
				{name: "handle", off: time.Millisecond, dur: time.Duration(rng.Int64N(3e6))}}
		}
		ops = append(ops, o)
	}
	return ops
}

// oracle is the expected summary, computed from the specs without the
// viewer's code: by filtering, counting and searching sorted slices.
type oracleFilter struct {
	since, until             time.Time
	broadcaster, topic, glob string
}

func (f oracleFilter) window(t time.Time) bool { return !t.Before(f.since) && t.Before(f.until) }

func (f oracleFilter) match(o opSpec) bool {
	if !f.window(o.start) {
		return false
	}
	if f.broadcaster != "" && o.broadcaster != f.broadcaster {
		return false
	}
	if f.topic != "" && o.topic != f.topic {
		return false
	}
	if f.glob != "" && o.glob != f.glob && !fnmatch.Regexp(f.glob).MatchString(o.topic) {
		return false
	}
	return true
}

// oraclePct searches for the smallest value with at least p% of the values
// at or below it (the minimum for p0).
func oraclePct(values []float64) *model.Percentiles {
	if len(values) == 0 {
		return nil
	}
	v := slices.Clone(values)
	sort.Float64s(v)
	var p model.Percentiles
	for i, tenths := range []int{0, 250, 500, 750, 950, 990, 999, 1000} {
		p[i] = v[0]
		for j := range v {
			if (j+1)*1000 >= tenths*len(v) {
				p[i] = v[j]
				break
			}
		}
	}
	return &p
}

func oracleBucket(size int64) int {
	k := 0
	for x := size; x > 0; x /= 2 {
		k++
	}
	return k
}

func ms(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e6 }

func oracleSummary(all []opSpec, f oracleFilter, sample int) *model.Summary {
	s := &model.Summary{Operations: map[string]*model.Operation{}, AverageTrace: map[string]*model.AverageTrace{}}
	if !f.since.Equal(time.Unix(0, 0)) {
		s.Since, s.Until = f.since, f.until
	}
	brs := map[string]bool{}
	for _, o := range all {
		if f.window(o.start) {
			s.Spans++
		}
		var count func([]phaseSpec)
		count = func(ps []phaseSpec) {
			for _, p := range ps {
				if f.window(o.start.Add(p.off)) {
					s.Spans++
				}
				count(p.kids)
			}
		}
		count(o.phases)
	}
	for _, op := range schema.Operations {
		e := &model.Operation{BySubscribers: []model.SubscriberGroup{}, BySize: []model.SizeBucket{}}
		var durs, sizes []float64
		bySubs := map[int64][]float64{}
		subsErrors := map[int64]int64{}
		buckets := map[int]int64{}
		top := -1
		var latest time.Time
		total, stateful, stateless := new(big.Int), new(big.Int), new(big.Int)
		for _, o := range all {
			if o.op != op || !f.match(o) {
				continue
			}
			e.Count++
			if o.failed {
				e.Errors++
			}
			if o.start.After(latest) {
				latest = o.start
			}
			durs = append(durs, ms(o.dur))
			if o.stateful == 1 {
				e.Stateful.Count++
			} else {
				e.Stateless.Count++
			}
			if o.size >= 0 {
				sizes = append(sizes, float64(o.size))
				total.Add(total, big.NewInt(o.size))
				if o.stateful == 1 {
					stateful.Add(stateful, big.NewInt(o.size))
				} else {
					stateless.Add(stateless, big.NewInt(o.size))
				}
				k := oracleBucket(o.size)
				buckets[k]++
				top = max(top, k)
			}
			if o.subs >= 0 {
				bySubs[o.subs] = append(bySubs[o.subs], ms(o.dur))
				if o.failed {
					subsErrors[o.subs]++
				}
			}
			if op == schema.OpNotify && o.broadcaster != "" {
				brs[o.broadcaster] = true
			}
		}
		e.Bytes, e.Stateful.Bytes, e.Stateless.Bytes = saturate(total), saturate(stateful), saturate(stateless)
		if e.Count > 0 {
			d := ms(testNow.Sub(latest))
			e.SinceMostRecentMs = &d
		}
		e.DurationMs, e.SizeBytes = oraclePct(durs), oraclePct(sizes)
		for k := 0; k <= top; k++ {
			below := "1"
			if k > 0 {
				below = new(bigPow).of(k)
			}
			e.BySize = append(e.BySize, model.SizeBucket{Below: below, Count: buckets[k]})
		}
		for n := int64(0); n < 1000; n++ {
			if d, ok := bySubs[n]; ok {
				e.BySubscribers = append(e.BySubscribers, model.SubscriberGroup{Subscribers: n, Count: int64(len(d)), Errors: subsErrors[n], DurationMs: oraclePct(d)})
			}
		}
		s.Operations[op] = e
	}
	s.Broadcasters = len(brs)
	for _, op := range []string{schema.OpNotify, schema.OpReceive} {
		s.AverageTrace[op] = oracleAverage(all, f, op, sample)
	}
	return s
}

func oracleAverage(all []opSpec, f oracleFilter, op string, sample int) *model.AverageTrace {
	var ops []opSpec
	for _, o := range all {
		if o.op == op && f.match(o) {
			ops = append(ops, o)
		}
	}
	a := &model.AverageTrace{Total: int64(len(ops)), Phases: []model.Phase{}}
	slices.SortFunc(ops, func(x, y opSpec) int { return y.start.Compare(x.start) })
	ops = ops[:min(len(ops), sample)]
	if a.Total > 0 {
		a.Operations = len(ops)
	}
	type acc struct {
		starts, ends, durs []float64
		in, failedIn       int
	}
	byName := map[string]*acc{}
	for _, o := range ops {
		seen := map[string]bool{}
		failed := map[string]bool{}
		var walk func([]phaseSpec)
		walk = func(ps []phaseSpec) {
			for _, p := range ps {
				x := byName[p.name]
				if x == nil {
					x = &acc{}
					byName[p.name] = x
				}
				x.starts = append(x.starts, ms(p.off))
				x.ends = append(x.ends, ms(p.off+p.dur))
				x.durs = append(x.durs, ms(p.dur))
				if !seen[p.name] {
					seen[p.name] = true
					x.in++
				}
				if p.failed && !failed[p.name] {
					failed[p.name] = true
					x.failedIn++
				}
				walk(p.kids)
			}
		}
		walk(o.phases)
	}
	for name, x := range byName {
		a.Phases = append(a.Phases, model.Phase{Name: name, StartMs: oraclePct(x.starts)[2], EndMs: oraclePct(x.ends)[2],
			DurationMs: oraclePct(x.durs), Occurrences: int64(len(x.durs)), InPercent: 100 * float64(x.in) / float64(len(ops)),
			ErrorPercent: 100 * float64(x.failedIn) / float64(len(ops))})
	}
	slices.SortFunc(a.Phases, func(x, y model.Phase) int {
		return cmp.Or(cmp.Compare(x.StartMs, y.StartMs), cmp.Compare(x.EndMs, y.EndMs), cmp.Compare(x.Name, y.Name))
	})
	return a
}

// saturate clamps n to what the summary's uint64 sums hold.
func saturate(n *big.Int) uint64 {
	if n.IsUint64() {
		return n.Uint64()
	}
	return math.MaxUint64
}

// bigPow writes 2^k in decimal by repeated doubling of a digit string.
type bigPow struct{}

func (bigPow) of(k int) string {
	digits := []byte{1}
	for ; k > 0; k-- {
		carry := byte(0)
		for i := range digits {
			d := digits[i]*2 + carry
			digits[i], carry = d%10, d/10
		}
		if carry > 0 {
			digits = append(digits, carry)
		}
	}
	out := make([]byte, len(digits))
	for i, d := range digits {
		out[len(digits)-1-i] = '0' + d
	}
	return string(out)
}

// compareSummary fails t for every aggregate of got that differs from
// want.
func compareSummary(t *testing.T, got, want *model.Summary) {
	t.Helper()
	if want.Since.IsZero() {
		// since=beginning reports the oldest span stored.
	} else if !got.Since.Equal(want.Since) || !got.Until.Equal(want.Until) {
		t.Errorf("window = %s..%s; want %s..%s", got.Since, got.Until, want.Since, want.Until)
	}
	if got.Spans != want.Spans {
		t.Errorf("spans = %d; want %d", got.Spans, want.Spans)
	}
	if got.Broadcasters != want.Broadcasters {
		t.Errorf("broadcasters = %d; want %d", got.Broadcasters, want.Broadcasters)
	}
	for _, op := range schema.Operations {
		g, w := got.Operations[op], want.Operations[op]
		if g == nil {
			t.Errorf("operations[%s] missing", op)
			continue
		}
		g.Histogram = nil
		if !reflect.DeepEqual(g, w) {
			t.Errorf("operations[%s] =\n%s\nwant\n%s", op, jsonOf(g), jsonOf(w))
		}
	}
	for _, op := range []string{schema.OpNotify, schema.OpReceive} {
		if g, w := got.AverageTrace[op], want.AverageTrace[op]; !reflect.DeepEqual(g, w) {
			t.Errorf("average_trace[%s] =\n%s\nwant\n%s", op, jsonOf(g), jsonOf(w))
		}
	}
}

func TestSummary_Aggregates(t *testing.T) {
	ops := genOps(1, 900)
	path := writeOps(t, t.TempDir(), "a.db", ops)
	v := mustOpen(t, testNow, path)
	base := server(t, v)
	begin := time.Unix(0, 0)
	cases := []struct {
		name   string
		params url.Values
		f      oracleFilter
	}{
		{"Beginning", url.Values{"since": {"beginning"}}, oracleFilter{since: begin, until: testNow}},
		{"Default24h", nil, oracleFilter{since: testNow.Add(-24 * time.Hour), until: testNow}},
		{"RFC3339", url.Values{"since": {"2026-03-08T06:30:00Z"}, "until": {"2026-03-09T18:00:00.5+01:00"}},
			oracleFilter{since: time.Date(2026, 3, 8, 6, 30, 0, 0, time.UTC), until: time.Date(2026, 3, 9, 17, 0, 0, 5e8, time.UTC)}},
		{"Broadcaster", url.Values{"since": {"beginning"}, "broadcaster": {"b1:3003"}}, oracleFilter{since: begin, until: testNow, broadcaster: "b1:3003"}},
		{"Topic", url.Values{"since": {"beginning"}, "topic": {"orders"}}, oracleFilter{since: begin, until: testNow, topic: "orders"}},
		{"TopicWithGlobChars", url.Values{"since": {"beginning"}, "topic": {"a[b]"}}, oracleFilter{since: begin, until: testNow, topic: "a[b]"}},
		{"Glob", url.Values{"since": {"beginning"}, "glob": {"orders*"}}, oracleFilter{since: begin, until: testNow, glob: "orders*"}},
		{"GlobNegated", url.Values{"since": {"beginning"}, "glob": {"[!o]*"}}, oracleFilter{since: begin, until: testNow, glob: "[!o]*"}},
		{"GlobQuestion", url.Values{"since": {"beginning"}, "glob": {"users.?ew"}}, oracleFilter{since: begin, until: testNow, glob: "users.?ew"}},
		{"AllFilters", url.Values{"since": {"48h-ago"}, "broadcaster": {"b2:3003"}, "topic": {"orders/eu"}, "glob": {"orders*"}},
			oracleFilter{since: testNow.Add(-48 * time.Hour), until: testNow, broadcaster: "b2:3003", topic: "orders/eu", glob: "orders*"}},
		{"Empty", url.Values{"since": {"beginning"}, "topic": {"nothing"}}, oracleFilter{since: begin, until: testNow, topic: "nothing"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.name == "AllFilters" {
				c.params.Set("since", "2026-03-08T12:00:00Z")
			}
			want := oracleSummary(ops, c.f, viewer.DefaultSample)
			if c.f.topic == "nothing" || c.f.broadcaster != "" || c.f.topic != "" || c.f.glob != "" {
				// Spans counts the window before the filters.
				want.Spans = oracleSummary(ops, oracleFilter{since: c.f.since, until: c.f.until}, 1).Spans
			}
			compareSummary(t, summary(t, base, c.params), want)
		})
	}
}
