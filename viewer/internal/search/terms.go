package search

import (
	"cmp"
	"math"
	"strconv"
	"strings"

	"go.opentelemetry.io/otel/attribute"

	"github.com/lonelytrace/lonelytrace/schema"
	"github.com/lonelytrace/lonelytrace/viewer/internal/opstore"
	"github.com/lonelytrace/lonelytrace/viewer/model"
)

// Sort orders of the trace list.
const (
	SortNewest  = "newest"
	SortSlowest = "slowest"
)

// Terms are a search's terms (docs/design.md#search), parsed by the
// viewer; the zero value but for its bounds searches all: NewTerms'.
type Terms struct {
	// Op is an operation of schema.Operations, "" for any.
	Op      string
	Service string
	// Name is the span name, "" for any.
	Name string
	// Status is "", "error" or "ok" (not Error).
	Status string
	// MinNs and MaxNs bound the duration end−start, in ns: kept when
	// MinNs <= d < MaxNs; -1 means no bound.
	MinNs, MaxNs int64
	Attrs        []Attr
	// Sort is SortNewest or SortSlowest.
	Sort string
}

// NewTerms returns the terms that search all, newest first.
func NewTerms() Terms { return Terms{MinNs: -1, MaxNs: -1, Sort: SortNewest} }

// Attr is one attr=key=value: the span has the attribute key, and its
// value's string form (attrString) is value.
type Attr struct{ Key, Value string }

// durationOK is the Go form of min_ms and max_ms.
func (s *Terms) durationOK(d int64) bool {
	return (s.MinNs < 0 || d >= s.MinNs) && (s.MaxNs < 0 || d < s.MaxNs)
}

// cacheOK is the Go form of the terms the operation cache can judge, but
// the operation's: the status, the duration and the service (serviceOK,
// a memo of the visitor's strings).
func (s *Terms) cacheOK(o *opstore.Span, serviceOK *opstore.StringMemo) bool {
	return !(s.Status == "error" && !o.Failed || s.Status == "ok" && o.Failed ||
		!s.durationOK(o.End-o.Start) || s.Service != "" && !serviceOK.Test(o.Service))
}

// serviceMemo is the memo of the service term over a visitor's strings.
func (s *Terms) serviceMemo(strs []string) *opstore.StringMemo {
	return opstore.NewStringMemo(strs, func(name string) bool { return name == s.Service })
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

// Compare orders trace items as the list shows them: newest first, or
// slowest first (then newest); the trace id breaks ties.
func (s *Terms) Compare(a, b model.TraceItem) int {
	if s.Sort == SortSlowest {
		if c := cmp.Compare(b.DurationMs, a.DurationMs); c != 0 {
			return c
		}
	}
	return cmp.Or(b.Start.Compare(a.Start), cmp.Compare(a.TraceID, b.TraceID))
}
