package viewer

import (
	"github.com/lonelytrace/lonelytrace/viewer/model"

	"cmp"
	"fmt"
	"math"
	"math/big"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"go.opentelemetry.io/otel/attribute"

	"github.com/lonelytrace/lonelytrace/schema"
)

// The search parameters of the trace list (docs/design.md#search), on top
// of the window and filters that every query shares. They narrow the
// trace list only: the aggregates of the page stay those of the window
// and filters, so that a door's count and its list tell the same story.

// Sort orders of the trace list.
const (
	SortNewest  = "newest"
	SortSlowest = "slowest"
)

// maxAttrTerms bounds the attr parameters of one search.
const maxAttrTerms = 8

// maxSearchMs bounds min_ms and max_ms: durations are int64 nanoseconds.
const maxSearchMs = 9_000_000_000_000

// search is the parsed search parameters; the zero value searches all.
type search struct {
	op, service, name string
	// status is "", "error" or "ok" (not Error).
	status string
	// minNs and maxNs bound the duration end−start, in ns: kept when
	// minNs <= d < maxNs; -1 means no bound.
	minNs, maxNs int64
	attrs        []attrTerm
	sort         string
	// raw is the parameters as given, to carry them along in links.
	raw url.Values
}

// attrTerm is one attr=key=value: the span has the attribute key, and its
// value's string form (attrString) is value.
type attrTerm struct{ key, value string }

// parseSearch reads the search parameters of params. A bad value is a
// *ParseError that says what was expected.
func parseSearch(params url.Values) (search, error) {
	s := search{minNs: -1, maxNs: -1, sort: SortNewest, raw: url.Values{}}
	one := func(name string) (string, error) {
		v, err := oneParam(params, name)
		if v != "" {
			s.raw.Set(name, v)
		}
		return v, err
	}
	var err error
	if s.op, err = one("op"); err != nil {
		return s, err
	}
	if _, known := schema.OpIndex(s.op); s.op != "" && !known {
		return s, &ParseError{Param: "op", Value: clip(s.op), Want: "one of " + strings.Join(schema.Operations[:], ", ")}
	}
	if s.service, err = one("service"); err != nil {
		return s, err
	}
	if s.name, err = one("name"); err != nil {
		return s, err
	}
	if s.status, err = one("status"); err != nil {
		return s, err
	}
	if s.status != "" && s.status != "error" && s.status != "ok" {
		return s, &ParseError{Param: "status", Value: clip(s.status), Want: `"error" or "ok" (any status but Error)`}
	}
	for _, b := range []struct {
		name string
		dst  *int64
	}{{"min_ms", &s.minNs}, {"max_ms", &s.maxNs}} {
		v, err := one(b.name)
		if err != nil {
			return s, err
		}
		if v == "" {
			continue
		}
		if *b.dst, err = parseMsBound(b.name, v); err != nil {
			return s, err
		}
	}
	sort, err := one("sort")
	if err != nil {
		return s, err
	}
	switch sort {
	case "", SortNewest:
	case SortSlowest:
		s.sort = SortSlowest
	default:
		return s, &ParseError{Param: "sort", Value: clip(sort), Want: `"newest" or "slowest"`}
	}
	attrs := params["attr"]
	if len(attrs) > maxAttrTerms {
		return s, &ParseError{Param: "attr", Value: clip(strings.Join(attrs, ",")), Want: fmt.Sprintf("at most %d attr parameters", maxAttrTerms)}
	}
	for _, a := range attrs {
		if a == "" {
			continue
		}
		key, value, ok := strings.Cut(a, "=")
		if !ok || key == "" || len(a) > maxFilterLen {
			return s, &ParseError{Param: "attr", Value: clip(a), Want: fmt.Sprintf("key=value, a non-empty key, at most %d bytes", maxFilterLen)}
		}
		s.attrs = append(s.attrs, attrTerm{key: key, value: value})
		s.raw.Add("attr", a)
	}
	return s, nil
}

// parseMsBound reads a duration bound in milliseconds, a decimal number
// from 0, and returns it in nanoseconds rounded up: a duration d (whole
// ns) is at least x ms exactly when d >= ceil(x·10^6), and below x ms
// exactly when d < ceil(x·10^6). The decimal is read exactly, so that a
// percentile the page shows, followed as min_ms, keeps the operation it
// was computed from.
func parseMsBound(name, v string) (int64, error) {
	bad := &ParseError{Param: name, Value: clip(v), Want: fmt.Sprintf("a number of milliseconds from 0 to %d, such as 12.5", int64(maxSearchMs))}
	if len(v) > 40 || strings.ContainsAny(v, "eE/") {
		return 0, bad
	}
	r, ok := new(big.Rat).SetString(v)
	if !ok || r.Sign() < 0 || r.Cmp(new(big.Rat).SetInt64(maxSearchMs)) > 0 {
		return 0, bad
	}
	r.Mul(r, new(big.Rat).SetInt64(1e6))
	q, m := new(big.Int).QuoRem(r.Num(), r.Denom(), new(big.Int))
	if m.Sign() > 0 {
		q.Add(q, big.NewInt(1))
	}
	return q.Int64(), nil
}

// values returns the parameters that reproduce s.
func (s search) values() url.Values {
	out := url.Values{}
	for k, vs := range s.raw {
		out[k] = slices.Clone(vs)
	}
	return out
}

// durationOK is the Go form of min_ms and max_ms.
func (s *search) durationOK(d int64) bool {
	return (s.minNs < 0 || d >= s.minNs) && (s.maxNs < 0 || d < s.maxNs)
}

// attrString is the string form of an attribute value that attr compares:
// a string as it is; an int in decimal; a float as Go's shortest
// representation that reads back the same (strconv 'g': 0.5, 12, 1e+21,
// NaN, +Inf); a bool as true or false; a slice of one of those types as a
// JSON array of its elements (["a","b"], [1,2], [0.5], [true,false]). Any
// other value (bytes, maps, mixed slices) has no string form and matches
// no attr.
func attrString(v attribute.Value) (string, bool) {
	switch v.Type() {
	case attribute.STRING:
		return v.AsString(), true
	case attribute.INT64:
		return strconv.FormatInt(v.AsInt64(), 10), true
	case attribute.FLOAT64:
		return formatFloat(v.AsFloat64()), true
	case attribute.BOOL:
		return strconv.FormatBool(v.AsBool()), true
	case attribute.STRINGSLICE:
		var b []byte
		for i, e := range v.AsStringSlice() {
			b = append(b, ',')
			if i == 0 {
				b = b[:0]
			}
			b = schema.AppendJSONString(b, e)
		}
		return "[" + string(b) + "]", true
	case attribute.INT64SLICE:
		return joinSlice(v.AsInt64Slice(), func(n int64) string { return strconv.FormatInt(n, 10) }), true
	case attribute.FLOAT64SLICE:
		return joinSlice(v.AsFloat64Slice(), formatFloat), true
	case attribute.BOOLSLICE:
		return joinSlice(v.AsBoolSlice(), strconv.FormatBool), true
	}
	return "", false
}

func formatFloat(f float64) string {
	if math.IsInf(f, 1) {
		return "+Inf"
	}
	return strconv.FormatFloat(f, 'g', -1, 64)
}

func joinSlice[T any](xs []T, f func(T) string) string {
	parts := make([]string, len(xs))
	for i, x := range xs {
		parts[i] = f(x)
	}
	return "[" + strings.Join(parts, ",") + "]"
}

// attrMatches reports whether the stored JSON form of one attribute
// value (as `attributes -> '$."id"'` selects it) has the string form
// want.
func attrMatches(stored []byte, want string) bool {
	if stored == nil {
		return false
	}
	kvs, err := schema.DecodeAttributes(append(append([]byte(`{"k":`), stored...), '}'), nil)
	if err != nil || len(kvs) != 1 {
		return false
	}
	got, ok := attrString(kvs[0].Value)
	return ok && got == want
}

// compare orders trace items as the list shows them: newest first, or
// slowest first (then newest); the trace id breaks ties.
func (s *search) compare(a, b model.TraceItem) int {
	if s.sort == SortSlowest {
		if c := cmp.Compare(b.DurationMs, a.DurationMs); c != 0 {
			return c
		}
	}
	return cmp.Or(b.Start.Compare(a.Start), cmp.Compare(a.TraceID, b.TraceID))
}
