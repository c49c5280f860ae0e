package opstore

import (
	"strings"

	"github.com/lonelytrace/lonelytrace/schema"
	"github.com/lonelytrace/lonelytrace/viewer/model"
)

// Filter is the window and the operation filters of one request, built
// once by the viewer from its parsed query (NewFilter). Each filter's
// rule is written once, as a method on one column's value; the rules
// have an SQL form (where), for the queries that walk the operation
// index, and a Go form, for what SQL cannot judge (the glob) and for the
// spans the operation cache holds (rowTest and spanTest apply the same
// rules to strings and to the cache's numbered strings).
//
// To add a filter: a field set in NewFilter, its rule as a method, its
// clause in where when SQL can judge it, its test in keep and spanTest,
// and its echo in Echo (and its parameter in the viewer's query).
type Filter struct {
	// Since and Until are the window in Unix ns: a span is in it when its
	// start is in [Since, Until).
	Since, Until int64
	// broadcaster and topic keep the spans whose column equals them; ""
	// keeps all.
	broadcaster, topic string
	// glob keeps the spans whose topic it matches, and the glob
	// subscriptions to that very pattern; "" keeps all. pattern is glob
	// compiled.
	glob    string
	pattern schema.GlobPattern
}

// NewFilter returns the filter of the window [since, until) in Unix ns
// and the filters broadcaster, topic and glob ("" for any).
func NewFilter(since, until int64, broadcaster, topic, glob string) *Filter {
	f := &Filter{Since: since, Until: until, broadcaster: broadcaster, topic: topic, glob: glob}
	if f.glob != "" {
		f.pattern = schema.CompileGlob(f.glob)
	}
	return f
}

// Echo returns the filters as the API reports them.
func (f *Filter) Echo() model.Filters {
	return model.Filters{Broadcaster: f.broadcaster, Topic: f.topic, Glob: f.glob}
}

// none reports whether f keeps every span of its window.
func (f *Filter) none() bool { return f.broadcaster == "" && f.topic == "" && f.glob == "" }

// needsTopics reports whether the Go form reads topic and glob.
func (f *Filter) needsTopics() bool { return f.topic != "" || f.glob != "" }

// The rules, one per filter, on the column values of a span.

// inWindow reports whether a span that starts at start is in the window.
func (f *Filter) inWindow(start int64) bool { return start >= f.Since && start < f.Until }

func (f *Filter) broadcasterOK(broadcaster string) bool {
	return f.broadcaster == "" || broadcaster == f.broadcaster
}

func (f *Filter) topicOK(topic string) bool { return f.topic == "" || topic == f.topic }

// isPattern and topicMatches are the two halves of the glob's rule: a
// span passes when its own pattern is the glob or its topic matches it.
func (f *Filter) isPattern(glob string) bool { return glob == f.glob }

func (f *Filter) topicMatches(topic string) bool { return f.pattern.Match(topic) }

// keep is the Go form on a span's strings, the window aside.
func (f *Filter) keep(broadcaster, topic, glob string) bool {
	return f.broadcasterOK(broadcaster) && f.topicOK(topic) &&
		(f.glob == "" || f.isPattern(glob) || f.topicMatches(topic))
}

// where returns the WHERE clause and arguments of the queries over the
// operation spans of op: the operation, the window and what SQL can judge
// of the filters. Rows that pass it still go through rowTest.
func (f *Filter) where(op string) (string, []any) {
	var b strings.Builder
	b.WriteString("op = ? AND start_ns >= ? AND start_ns < ?")
	args := []any{op, f.Since, f.Until}
	if f.broadcaster != "" {
		b.WriteString(" AND broadcaster = ?")
		args = append(args, f.broadcaster)
	}
	if f.topic != "" {
		b.WriteString(" AND topic = ?")
		args = append(args, f.topic)
	}
	return b.String(), args
}

// rowTest returns the Go form for the rows where selects, by their topic
// and glob: what where leaves out. It is nil when where judges it all.
// Matches are remembered per topic, as a window holds few distinct topics
// and many spans.
func (f *Filter) rowTest() func(topic, glob string) bool {
	if f.glob == "" {
		return nil
	}
	return schema.SpanGlobMatcher(f.glob)
}

// spanTest returns the Go form on cached operation spans whose strings
// are numbered in strs, the window aside; nil when f keeps every span.
// Each rule is applied once per string.
func (f *Filter) spanTest(strs []string) func(*Span) bool {
	if f.none() {
		return nil
	}
	broadcasterOK := NewStringMemo(strs, f.broadcasterOK)
	topicOK := NewStringMemo(strs, f.topicOK)
	isPattern := NewStringMemo(strs, f.isPattern)
	topicMatches := NewStringMemo(strs, f.topicMatches)
	return func(o *Span) bool {
		return broadcasterOK.Test(o.Broadcaster) && topicOK.Test(o.Topic) &&
			(f.glob == "" || isPattern.Test(o.Glob) || topicMatches.Test(o.Topic))
	}
}

// StringMemo remembers a rule's answer for each string a visitor is
// given, so that a rule on a span's string runs once per string, not once
// per span.
type StringMemo struct {
	strs    []string
	rule    func(string) bool
	answers []int8 // 0 not asked yet, 1 true, -1 false
}

// NewStringMemo returns the memo of rule over strs.
func NewStringMemo(strs []string, rule func(string) bool) *StringMemo {
	return &StringMemo{strs: strs, rule: rule, answers: make([]int8, len(strs))}
}

// Test returns rule's answer for the string of id.
func (m *StringMemo) Test(id uint32) bool {
	a := m.answers[id]
	if a == 0 {
		a = -1
		if m.rule(m.strs[id]) {
			a = 1
		}
		m.answers[id] = a
	}
	return a == 1
}
