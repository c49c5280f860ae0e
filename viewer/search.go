package viewer

import (
	"fmt"
	"math/big"
	"net/url"
	"slices"
	"strings"

	"github.com/lonelytrace/lonelytrace/schema"
	tsearch "github.com/lonelytrace/lonelytrace/viewer/internal/search"
)

// The search parameters of the trace list (docs/design.md#search), on top
// of the window and filters that every query shares. They narrow the
// trace list only: the aggregates of the page stay those of the window
// and filters, so that a door's count and its list tell the same story.

// Sort orders of the trace list.
const (
	SortNewest  = tsearch.SortNewest
	SortSlowest = tsearch.SortSlowest
)

// maxAttrTerms bounds the attr parameters of one search.
const maxAttrTerms = 8

// maxSearchMs bounds min_ms and max_ms: durations are int64 nanoseconds.
const maxSearchMs = 9_000_000_000_000

// search is the parsed search parameters: the search's terms
// (viewer/internal/search), and the parameters as given, to carry them
// along in links (raw).
type search struct {
	tsearch.Terms
	raw url.Values
}

// parseSearch reads the search parameters of params. A bad value is a
// *ParseError that says what was expected.
func parseSearch(params url.Values) (search, error) {
	s := search{Terms: tsearch.NewTerms(), raw: url.Values{}}
	one := func(name string) (string, error) {
		v, err := oneParam(params, name)
		if v != "" {
			s.raw.Set(name, v)
		}
		return v, err
	}
	var err error
	if s.Op, err = one("op"); err != nil {
		return s, err
	}
	if _, known := schema.OpIndex(s.Op); s.Op != "" && !known {
		return s, &ParseError{Param: "op", Value: clip(s.Op), Want: "one of " + strings.Join(schema.Operations[:], ", ")}
	}
	if s.Service, err = one("service"); err != nil {
		return s, err
	}
	if s.Name, err = one("name"); err != nil {
		return s, err
	}
	if s.Status, err = one("status"); err != nil {
		return s, err
	}
	if s.Status != "" && s.Status != "error" && s.Status != "ok" {
		return s, &ParseError{Param: "status", Value: clip(s.Status), Want: `"error" or "ok" (any status but Error)`}
	}
	for _, b := range []struct {
		name string
		dst  *int64
	}{{"min_ms", &s.MinNs}, {"max_ms", &s.MaxNs}} {
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
		s.Sort = SortSlowest
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
		s.Attrs = append(s.Attrs, tsearch.Attr{Key: key, Value: value})
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
