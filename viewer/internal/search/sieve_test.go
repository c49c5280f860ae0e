package search

import (
	"context"
	"database/sql"
	"fmt"
	"math"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/lonelytrace/lonelytrace/exporter"
	"github.com/lonelytrace/lonelytrace/schema"
	"github.com/lonelytrace/lonelytrace/viewer/internal/opstore"
)

// sieveValues are attribute values of every type, strings that JSON
// escapes, and values whose forms hold one another.
var sieveValues = []attribute.Value{
	attribute.StringValue("acme"), attribute.StringValue("acme-west"), attribute.StringValue("west"),
	attribute.StringValue(`say "hi" \ bye`), attribute.StringValue("naïve ☃ 日本"), attribute.StringValue("tab\tnew\nline"),
	attribute.StringValue("\x01ctl\x7f"), attribute.StringValue(""), attribute.StringValue("bad\xffutf"),
	attribute.StringValue("x\uFFFDy"), attribute.StringValue("500"), attribute.StringValue("NaN"),
	attribute.StringValue("true"), attribute.StringValue("[1,2]"), attribute.StringValue(`"6":1`),
	attribute.StringValue("a\u2028b</script>&"),
	attribute.Int64Value(500), attribute.Int64Value(5000), attribute.Int64Value(-3), attribute.Int64Value(0),
	attribute.Int64Value(math.MaxInt64), attribute.Int64Value(math.MinInt64),
	attribute.Float64Value(0.5), attribute.Float64Value(2), attribute.Float64Value(math.Copysign(0, -1)),
	attribute.Float64Value(1e21), attribute.Float64Value(1e-7), attribute.Float64Value(25), attribute.Float64Value(2.5),
	attribute.Float64Value(math.NaN()), attribute.Float64Value(math.Inf(1)), attribute.Float64Value(math.Inf(-1)),
	attribute.Float64Value(math.MaxFloat64), attribute.Float64Value(math.SmallestNonzeroFloat64),
	attribute.BoolValue(true), attribute.BoolValue(false),
	attribute.StringSliceValue([]string{"a", "b"}), attribute.StringSliceValue([]string{`q"x\`}), attribute.StringSliceValue([]string{}),
	attribute.Int64SliceValue([]int64{1, 2}), attribute.Int64SliceValue([]int64{}),
	attribute.Float64SliceValue([]float64{0.25, 3}), attribute.Float64SliceValue([]float64{math.NaN()}), attribute.Float64SliceValue([]float64{}),
	attribute.BoolSliceValue([]bool{true, false}), attribute.BoolSliceValue([]bool{}),
}

// TestSieve_Needles checks that the sieve never takes out a value that
// attr matches: for every value of sieveValues under one key, the others
// under the other keys, stored as the exporter stores them, and every
// value's string form searched under every key, the needles are in the
// stored text whenever attrMatches matches the member's value as the
// search reads it (attributes -> '$."id"'); by Go and by SQLite's instr
// alike. Where the value searched is a string's (but one with U+FFFD),
// they are there only when it matches: "acme" is not "acme-west".
func TestSieve_Needles(t *testing.T) {
	db, err := sql.Open("sqlite", ":memory:")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	keys := []string{"a", "k", "other", "z"}
	ids := map[string]int64{"a": 1, "k": 6, "other": 16, "z": 61}
	for i, v := range sieveValues {
		for _, key := range keys {
			var kvs []attribute.KeyValue
			for j, k := range keys {
				val := v
				if k != key {
					val = sieveValues[(i+3*j+1)%len(sieveValues)]
				}
				kvs = append(kvs, attribute.KeyValue{Key: attribute.Key(k), Value: val})
			}
			stored := string(schema.AppendAttributes(nil, kvs, func(k string) int64 { return ids[k] }))
			for j, sk := range keys {
				var member []byte
				if err := db.QueryRow("SELECT ? -> ?", stored, fmt.Sprintf(`$."%d"`, ids[sk])).Scan(&member); err != nil {
					t.Fatal(err)
				}
				for _, other := range sieveValues {
					form, _ := attrString(other)
					needles := sieveNeedles(ids[sk], form)
					var inGo, inSQL bool
					for _, n := range needles {
						var pos int
						if err := db.QueryRow("SELECT instr(?, ?)", stored, n).Scan(&pos); err != nil {
							t.Fatal(err)
						}
						inGo, inSQL = inGo || strings.Contains(stored, n), inSQL || pos > 0
					}
					if inGo != inSQL {
						t.Errorf("%s=%q in %s: Go finds the needles %q: %v, SQLite: %v", sk, form, stored, needles, inGo, inSQL)
					}
					matches := attrMatches(member, form)
					if matches && !inGo {
						t.Errorf("%s=%q in %s: attr matches, the needles %q are not there", sk, form, stored, needles)
					}
					if kvs[j].Value.Type() == attribute.STRING && !strings.ContainsRune(form, utf8.RuneError) && inGo != matches {
						t.Errorf("%s=%q in %s: the needles %q are there: %v; want %v, as attr matches", sk, form, stored, needles, inGo, matches)
					}
				}
			}
		}
	}
}

// TestSieve_WalkAgrees walks every operation of a file as the candidates
// of searches by name and attr, without the sieve, with it at once and
// with it after a batch of rows, and checks that the walks that sieve
// did sieve and return the same items; and that the window's sieve keeps
// every operation whose row passes the terms.
func TestSieve_WalkAgrees(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sieve.db")
	e, err := exporter.New(path)
	if err != nil {
		t.Fatal(err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(e))
	tracer := tp.Tracer("sieve_test")
	now := time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)
	names := []string{"publish", "deliver", `x'); DROP TABLE spans; --`, "naïve"}
	// Under the race detector a smaller file and fewer page sizes: the
	// walks' goroutines are what it watches.
	spans, wants := 3000, []int{1, 7, 60, 5000}
	if raceEnabled {
		spans, wants = 600, []int{7}
	}
	for i := range spans {
		start := now.Add(-time.Duration(i) * time.Second)
		attrs := []attribute.KeyValue{schema.Operation(schema.Operations[i%3]), schema.Topic("t")}
		for j, key := range []string{"a", "k", "z"} {
			if (i+j)%3 != 0 {
				attrs = append(attrs, attribute.KeyValue{Key: attribute.Key(key), Value: sieveValues[(i*(j+3)+i/7)%len(sieveValues)]})
			}
		}
		ctx, op := tracer.Start(context.Background(), names[i*i%len(names)], trace.WithTimestamp(start), trace.WithAttributes(attrs...))
		_, phase := tracer.Start(ctx, "phase", trace.WithTimestamp(start), trace.WithAttributes(attribute.String("k", "acme")))
		phase.End(trace.WithTimestamp(start.Add(time.Millisecond)))
		op.End(trace.WithTimestamp(start.Add(time.Duration(i%13) * time.Millisecond)))
	}
	if err := tp.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	store, err := opstore.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	f := store.Files()[0]
	db, err := schema.OpenRead(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var all []candidate
	rows, err := db.Query("SELECT id, start_ns, end_ns, op FROM spans WHERE op IS NOT NULL")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var c candidate
		var op string
		if err := rows.Scan(&c.id, &c.start, &c.end, &op); err != nil {
			t.Fatal(err)
		}
		i, _ := schema.OpIndex(op)
		c.op = uint8(i)
		all = append(all, c)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	rows.Close()
	flt := opstore.NewFilter(math.MinInt64, now.Add(time.Hour).UnixNano(), "", "", "") // since=beginning

	var cases []url.Values
	for _, n := range append(names, "nothing") {
		cases = append(cases, url.Values{"name": {n}})
	}
	for _, val := range sieveValues[:len(sieveValues):len(sieveValues)] {
		form, _ := attrString(val)
		cases = append(cases, url.Values{"attr": {"k=" + form}}, url.Values{"attr": {"a=" + form}, "name": {"deliver"}})
	}
	cases = append(cases, url.Values{"attr": {"k=acm"}}, url.Values{"attr": {"k=2.0"}}, url.Values{"attr": {"k=[1, 2]"}}, url.Values{"attr": {"a=500", "z=acme"}})
	rules := []struct {
		name  string
		rule  Rule
		sieve bool
	}{{"Never", Rule{Sample: math.MaxInt}, false}, {"AtOnce", Rule{Sample: 0, Share: 1}, true}, {"AfterABatch", Rule{Sample: 16, Share: 1 << 30}, true}}
	for _, p := range cases {
		for _, order := range []string{SortNewest, SortSlowest} {
			p.Set("sort", order)
			s := termsOf(p)
			cands := slices.Clone(all)
			slices.SortFunc(cands, func(a, b candidate) int {
				if s.before(a, b) {
					return -1
				}
				return 1
			})
			// All the traces there are, as want, ends the walk on the last
			// that passes: the candidates after it all fail.
			sf, err := prepare(ctx, f, &s, rules[0].rule)
			if err != nil {
				t.Fatal(err)
			}
			every, _, err := sf.walk(ctx, &s, slices.Clone(cands), len(cands))
			if err != nil {
				t.Fatal(err)
			}
			for _, want := range append(wants, max(len(every), 1)) {
				var first string
				for _, r := range rules {
					sf, err := prepare(ctx, f, &s, r.rule)
					if err != nil {
						t.Fatal(err)
					}
					if sf == nil {
						t.Fatalf("%s: no search", p.Encode())
					}
					items, ended, err := sf.walk(ctx, &s, slices.Clone(cands), want)
					if err != nil {
						t.Fatal(err)
					}
					got := fmt.Sprint(ended, items)
					if r.name == "Never" {
						first = got
					} else if got != first {
						t.Errorf("%s, want %d, sieve %s: items differ from the walk without the sieve:\n%s\n%s", p.Encode(), want, r.name, got, first)
					}
					// Walks that sieve at once always do; after a batch, those
					// that run out of candidates without their traces do.
					if sf.rare != r.sieve && (r.name != "AfterABatch" || len(items) < want && want+minRowBatch < len(cands)) {
						t.Errorf("%s, want %d, sieve %s: sieved = %v; want %v", p.Encode(), want, r.name, sf.rare, r.sieve)
					}
				}
			}
			// The window's sieve keeps every operation whose row passes.
			ids, ok, err := sf.sieveWindow(ctx, flt, len(all))
			if err != nil || !ok {
				t.Fatalf("%s: window sieved %v, %v", p.Encode(), ok, err)
			}
			byID, err := sf.read(ctx, all)
			if err != nil {
				t.Fatal(err)
			}
			exact := 0
			for _, c := range all {
				if r := byID[c.id]; r != nil && sf.keep(r) {
					exact++
					if _, ok := slices.BinarySearch(ids, c.id); !ok {
						t.Errorf("%s: the window's sieve takes out operation %d, which passes", p.Encode(), c.id)
					}
				}
			}
			if len(ids) > len(all) {
				t.Errorf("%s: the window's sieve keeps %d ids of %d operations", p.Encode(), len(ids), len(all))
			}
			if exact == 0 && len(ids) > 0 && p.Get("attr") == "" {
				t.Errorf("%s: the window's sieve keeps %d ids; want none", p.Encode(), len(ids))
			}
		}
	}
}

// termsOf returns the terms of the search parameters name, attr and sort
// of p, which are well formed.
func termsOf(p url.Values) Terms {
	s := NewTerms()
	s.Name, s.Sort = p.Get("name"), p.Get("sort")
	for _, a := range p["attr"] {
		key, value, _ := strings.Cut(a, "=")
		s.Attrs = append(s.Attrs, Attr{Key: key, Value: value})
	}
	return s
}
