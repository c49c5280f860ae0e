// Package model is the vocabulary of the viewer's JSON API: the answers
// of /api/summary (Summary), /api/series (Series), /api/breakdown
// (Breakdown), /api/map (PubSubMap), /api/traces (TraceList) and
// /api/traces/:trace_id (TraceDetail), with the types they hold. The
// page and the terminal summary show the same values.
//
// It imports the standard library only, so that any package (the
// viewer's engine, its page, a client decoding the API) can use it
// without the viewer's storage or its server.
package model

import (
	"encoding/json"
	"time"
)

// Summary is the answer of /api/summary: every aggregate of the window and
// filters, over all the viewer's files.
type Summary struct {
	// Since and Until are the window; with since=beginning, Since is the
	// start of the oldest span stored (Until when there is none).
	Since time.Time `json:"since"`
	Until time.Time `json:"until"`
	// Now is the instant the named times and since_most_recent_ms count
	// from.
	Now time.Time `json:"now"`
	// TZ is the zone of the named instants.
	TZ string `json:"tz"`
	// Filters echoes the filters in force.
	Filters Filters `json:"filters"`
	// Spans counts every stored span whose start is in the window, before
	// the filters (phases included).
	Spans int64 `json:"spans"`
	// Dropped is the exporters' count of spans they never wrote (queue
	// full), and Failed of spans whose write failed, summed over the files
	// for their whole life, not only the window.
	Dropped int64 `json:"dropped"`
	Failed  int64 `json:"failed"`
	// Broadcasters counts the distinct broadcasters of the notifies in the
	// window.
	Broadcasters int `json:"broadcasters"`
	// Operations has one entry for each of schema.Operations, always.
	Operations map[string]*Operation `json:"operations"`
	// AverageTrace has "notify" and "receive".
	AverageTrace map[string]*AverageTrace `json:"average_trace"`
	// Files describes each file read.
	Files []FileSummary `json:"files"`
	// Coverage, over Jaeger only, says what part of the window is
	// fetched whole; when Complete is false every figure is approximate.
	Coverage *Coverage `json:"coverage,omitempty"`
}

// Filters are the operation filters of a query; "" means any.
type Filters struct {
	Broadcaster string `json:"broadcaster"`
	Topic       string `json:"topic"`
	Glob        string `json:"glob"`
}

// FileSummary describes one trace file.
type FileSummary struct {
	Path string `json:"path"`
	// Spans is every span stored, in or out of the window.
	Spans   int64 `json:"spans"`
	Dropped int64 `json:"dropped"`
	Failed  int64 `json:"failed"`
	// Oldest and Newest are the earliest and latest span starts stored;
	// absent for an empty file.
	Oldest *time.Time `json:"oldest,omitempty"`
	Newest *time.Time `json:"newest,omitempty"`
	// Bytes is the size of the file's pages (its WAL aside), WALBytes the
	// size of the WAL beside it: the size limit covers both.
	Bytes    int64 `json:"bytes"`
	WALBytes int64 `json:"wal_bytes"`
	// CheckpointsBlocked counts the episodes in which readers kept the
	// writer's checkpoints from finishing for a second or more (the WAL
	// grows meanwhile).
	CheckpointsBlocked int64 `json:"checkpoints_blocked"`
	// Retention is what the file's exporter keeps: spans older than the
	// max age or beyond the max size are deleted, so Oldest is the oldest
	// span kept. Absent when the exporter recorded none.
	Retention *Retention `json:"retention,omitempty"`
}

// Operation aggregates the spans of one pub/sub operation in the window.
type Operation struct {
	Count int64 `json:"count"`
	// Errors counts the operations that failed: their span's status is
	// Error.
	Errors int64 `json:"errors"`
	// Bytes sums the meaningful bytes; it saturates at 2^64-1.
	Bytes uint64 `json:"bytes"`
	// SinceMostRecentMs is the time from the latest start to Now; nil when
	// there is none in the window.
	SinceMostRecentMs *float64 `json:"since_most_recent_ms"`
	// DurationMs is over every span; SizeBytes over the spans that carry a
	// size. Nil when there is nothing to take percentiles of.
	DurationMs *Percentiles `json:"duration_ms"`
	SizeBytes  *Percentiles `json:"size_bytes"`
	// BySubscribers groups the spans that carry lonelytrace.subscribers.
	BySubscribers []SubscriberGroup `json:"by_subscribers"`
	// BySize lists every bucket from "below 1" up to the largest non-empty
	// one; empty when no span carries a size.
	BySize []SizeBucket `json:"by_size"`
	// Stateless holds spans without lonelytrace.stateful or with false.
	Stateless Split `json:"stateless"`
	Stateful  Split `json:"stateful"`
	// Histogram counts durations in power-of-two bins of microseconds,
	// from the minimum's bin to the maximum's.
	Histogram []HistogramBin `json:"histogram"`
	// Approximate is set when DurationMs and SizeBytes come from sketches,
	// within 1 % of the exact values: in windows of more than 1,000,000
	// operations (docs/design.md, "Windows and percentiles").
	Approximate bool `json:"approximate,omitempty"`
}

// SubscriberGroup aggregates the spans that reached the same number of
// subscribers.
type SubscriberGroup struct {
	Subscribers int64        `json:"subscribers"`
	Count       int64        `json:"count"`
	Errors      int64        `json:"errors"`
	DurationMs  *Percentiles `json:"duration_ms"`
	// Approximate is set when DurationMs comes from a sketch.
	Approximate bool `json:"approximate,omitempty"`
}

// SizeBucket counts the sizes in [Below/2, Below) ("below 1" holds 0).
type SizeBucket struct {
	Below string `json:"below"`
	Count int64  `json:"count"`
}

// Split counts the operations of one connection style.
type Split struct {
	Count int64  `json:"count"`
	Bytes uint64 `json:"bytes"`
}

// HistogramBin counts durations in [FromMs, BelowMs).
type HistogramBin struct {
	FromMs  float64 `json:"from_ms"`
	BelowMs float64 `json:"below_ms"`
	Count   int64   `json:"count"`
}

// Retention is what a file's exporter keeps, as it last recorded it in
// the file's meta table.
type Retention struct {
	// MaxAgeNs is how long spans are kept, in nanoseconds; 0 for ever.
	MaxAgeNs int64 `json:"max_age_ns"`
	// MaxBytes is the most bytes the file may take; 0 for no limit.
	MaxBytes int64 `json:"max_bytes"`
	// DeletedSpans counts the spans retention deleted over the file's life.
	DeletedSpans int64 `json:"deleted_spans"`
}

// MaxAge is MaxAgeNs as a duration.
func (r *Retention) MaxAge() time.Duration { return time.Duration(r.MaxAgeNs) }

// AverageTrace describes what typically happens inside one operation: its
// phases (the descendants of its span in the same trace) grouped by name.
type AverageTrace struct {
	// Operations is how many operations the phases are computed from: the
	// most recent ones in the window, at most the sample size.
	Operations int `json:"operations"`
	// Total is how many operations there are in the window.
	Total int64 `json:"total"`
	// Phases are in order of their typical start.
	Phases []Phase `json:"phases"`
}

// Phase aggregates the descendants of the same name.
type Phase struct {
	Name string `json:"name"`
	// StartMs and EndMs are the medians of the start and end offsets from
	// the operation's start.
	StartMs float64 `json:"start_ms"`
	EndMs   float64 `json:"end_ms"`
	// DurationMs is over every occurrence (a phase may occur several
	// times in one operation, such as a retry).
	DurationMs *Percentiles `json:"duration_ms"`
	// Occurrences counts them.
	Occurrences int64 `json:"occurrences"`
	// InPercent is the share of the operations with at least one.
	InPercent float64 `json:"in_percent"`
	// ErrorPercent is the share of the operations in which at least one
	// occurrence failed (its own span's status is Error).
	ErrorPercent float64 `json:"error_percent"`
}

// TraceList is a page of the traces with an operation in the window that
// matches the filters and the search, in the search's order.
type TraceList struct {
	Traces []TraceItem `json:"traces"`
	Offset int         `json:"offset"`
	Limit  int         `json:"limit"`
	// Sort is the order: "newest" (the operation's start, latest first)
	// or "slowest" (its duration, longest first).
	Sort string `json:"sort"`
	// More is true when there are traces after this page.
	More bool `json:"more"`
	// TotalOperations counts the operations in the window that match the
	// filters and the search, and TotalTraces the traces they are in: the
	// list has one row per trace, so a trace with several matching
	// operations is one row. /api/traces counts them when asked
	// (totals=1). Both are null when not counted, when the search has name
	// or attr terms, and in /api/traces over a window of more than
	// 1,000,000 spans (the page counts them); TotalTraces also when more
	// than 20,000 operations match.
	TotalOperations *int64 `json:"total_operations"`
	TotalTraces     *int64 `json:"total_traces"`
	// Coverage, over Jaeger only, says what part of the window is
	// fetched whole; when Complete is false every figure is approximate.
	Coverage *Coverage `json:"coverage,omitempty"`
}

// TraceItem is one trace of the list, described by its first matching
// operation in the list's order (its newest, or its slowest).
type TraceItem struct {
	TraceID     string    `json:"trace_id"`
	Start       time.Time `json:"start"`
	Op          string    `json:"op"`
	Name        string    `json:"name"`
	Topic       string    `json:"topic"`
	Broadcaster string    `json:"broadcaster"`
	DurationMs  float64   `json:"duration_ms"`
	// Status is the operation span's: "ok", "error" or "unset".
	Status string `json:"status"`
	// Service is its resource's service.name.
	Service string `json:"service"`
}

// TraceDetail is every span of one trace from all files, stitched into
// one tree by parent ids and listed depth first in start order.
type TraceDetail struct {
	TraceID    string     `json:"trace_id"`
	Start      time.Time  `json:"start"`
	DurationMs float64    `json:"duration_ms"`
	Spans      []SpanView `json:"spans"`
	// Truncated is true when the trace had more spans than are shown.
	Truncated bool `json:"truncated"`
}

// SpanView is one span of a TraceDetail.
type SpanView struct {
	SpanID       string `json:"span_id"`
	ParentSpanID string `json:"parent_span_id,omitempty"`
	ParentRemote bool   `json:"parent_remote"`
	// ParentMissing is true when the parent is in none of the files.
	ParentMissing bool        `json:"parent_missing"`
	Depth         int         `json:"depth"`
	Name          string      `json:"name"`
	Kind          string      `json:"kind"`
	Status        string      `json:"status"`
	StatusMessage string      `json:"status_message,omitempty"`
	Start         time.Time   `json:"start"`
	OffsetMs      float64     `json:"offset_ms"`
	DurationMs    float64     `json:"duration_ms"`
	Op            string      `json:"op,omitempty"`
	Service       string      `json:"service"`
	Scope         string      `json:"scope"`
	File          string      `json:"file"`
	Attributes    []KeyValue  `json:"attributes"`
	Events        []EventView `json:"events"`
	Links         []LinkView  `json:"links"`
	// PubSub holds the pub/sub facts of an operation span; absent on
	// other spans.
	PubSub *PubSubFacts `json:"pubsub,omitempty"`
	// LinkedFrom lists the spans, in any file, with a link to this one
	// (docs/design.md#links-both-ways for how far they are looked for).
	LinkedFrom []SpanRef `json:"linked_from"`
}

// PubSubFacts are what the span conventions say of one operation
// (docs/design.md#span-conventions).
type PubSubFacts struct {
	Op          string `json:"op"`
	Topic       string `json:"topic,omitempty"`
	Glob        string `json:"glob,omitempty"`
	Broadcaster string `json:"broadcaster,omitempty"`
	// Subscribers reached and meaningful Bytes; nil when not recorded.
	Subscribers *int64 `json:"subscribers"`
	Bytes       *int64 `json:"bytes"`
	Stateful    bool   `json:"stateful"`
	// Failed is true when the span's status is Error.
	Failed bool `json:"failed"`
}

// SpanRef names a span.
type SpanRef struct {
	TraceID string `json:"trace_id"`
	SpanID  string `json:"span_id"`
}

// KeyValue is an attribute with its value as text.
type KeyValue struct {
	Key   string `json:"key"`
	Value string `json:"value"`
	Type  string `json:"type"`
}

// EventView is a span event.
type EventView struct {
	Name       string     `json:"name"`
	Time       time.Time  `json:"time"`
	OffsetMs   float64    `json:"offset_ms"`
	Attributes []KeyValue `json:"attributes"`
}

// LinkView is a span link.
type LinkView struct {
	TraceID    string     `json:"trace_id"`
	SpanID     string     `json:"span_id"`
	Attributes []KeyValue `json:"attributes"`
}

// Series is the answer of /api/series: the part of the window that has
// operations cut into buckets of one step, and per bucket the measures of
// each operation.
type Series struct {
	// Since and Until are the window, as in the Summary (with
	// since=beginning, Since is the start of the oldest span stored).
	Since time.Time `json:"since"`
	Until time.Time `json:"until"`
	// StepMs is the length of a bucket.
	StepMs int64 `json:"step_ms"`
	// Buckets cover the window's operations: they start at the first
	// operation's start rounded down to a multiple of the step since the
	// Unix epoch, one step apart, up to the last operation (over the
	// whole window when it has none); empty ones included.
	Buckets []SeriesBucket `json:"buckets"`
	// Coverage, over Jaeger only, says what part of the window is
	// fetched whole; when Complete is false every figure is approximate.
	Coverage *Coverage `json:"coverage,omitempty"`
}

// SeriesBucket holds the operations whose start is in the window and in
// [Start, Start+step).
type SeriesBucket struct {
	Start time.Time `json:"start"`
	// Ops has one entry for each of schema.Operations, always.
	Ops map[string]*SeriesPoint `json:"ops"`
}

// SeriesPoint is one operation's measures in one bucket.
type SeriesPoint struct {
	Count  int64  `json:"count"`
	Errors int64  `json:"errors"`
	Bytes  uint64 `json:"bytes"`
	// P50Ms and P99Ms are duration percentiles within the bucket by
	// nearest rank; nil when the bucket has none of the operation.
	P50Ms *float64 `json:"p50_ms"`
	P99Ms *float64 `json:"p99_ms"`
	// Approximate is set when P50Ms and P99Ms come from a sketch.
	Approximate bool `json:"approximate,omitempty"`
}

// Breakdown is the answer of /api/breakdown: the operations of one kind
// in the window, grouped by one of their facts.
type Breakdown struct {
	// By is what the rows group by: broadcaster, topic, service or
	// subscribers.
	By string `json:"by"`
	// Op is the operation.
	Op string `json:"op"`
	// Rows has every group, the largest first, then by key.
	Rows []BreakdownRow `json:"rows"`
	// Coverage, over Jaeger only, says what part of the window is
	// fetched whole; when Complete is false every figure is approximate.
	Coverage *Coverage `json:"coverage,omitempty"`
}

// BreakdownRow aggregates the operations whose fact is Key: "" for
// those without it (no broadcaster, topic, service.name or subscribers
// reached); subscribers in decimal.
type BreakdownRow struct {
	Key    string `json:"key"`
	Count  int64  `json:"count"`
	Errors int64  `json:"errors"`
	// Bytes sums the meaningful bytes; it saturates at 2^64-1.
	Bytes      uint64       `json:"bytes"`
	DurationMs *Percentiles `json:"duration_ms"`
	// Approximate is set when DurationMs comes from a sketch.
	Approximate bool `json:"approximate,omitempty"`
}

// PubSubMap is the answer of /api/map: who publishes to which topic and
// who receives from it in the window. A notify makes an edge from its
// service to its topic, a receive one from its topic to its service;
// operations without a topic are left out.
type PubSubMap struct {
	// Nodes are the services, by name, then the topics, by name.
	Nodes []MapNode `json:"nodes"`
	// Edges are the largest first.
	Edges []MapEdge `json:"edges"`
	// Coverage, over Jaeger only, says what part of the window is
	// fetched whole; when Complete is false every figure is approximate.
	Coverage *Coverage `json:"coverage,omitempty"`
}

// MapNode is a service or a topic.
type MapNode struct {
	// ID is "service:" or "topic:" followed by the label.
	ID string `json:"id"`
	// Kind is "service" or "topic".
	Kind string `json:"kind"`
	// Label is the service's name ("" when its resource has no
	// service.name) or the topic.
	Label string `json:"label"`
}

// MapEdge aggregates the operations of one kind between a service and a
// topic.
type MapEdge struct {
	From   string  `json:"from"`
	To     string  `json:"to"`
	Op     string  `json:"op"`
	Count  int64   `json:"count"`
	Errors int64   `json:"errors"`
	P99Ms  float64 `json:"p99_ms"`
	// Approximate is set when P99Ms comes from a sketch.
	Approximate bool `json:"approximate,omitempty"`
}

// PercentileTenths are the reported percentiles in tenths of a percent,
// so that p99.9 is exact: the rank is computed in integers, as
// 99.9/100*1000 in floating point is 999.0000000000001 and would round up.
var PercentileTenths = [...]int64{0, 250, 500, 750, 950, 990, 999, 1000}

// PercentileNames are the JSON names of PercentileTenths, in order.
var PercentileNames = [...]string{"p0", "p25", "p50", "p75", "p95", "p99", "p99.9", "p100"}

// Percentiles holds p0, p25, p50, p75, p95, p99, p99.9 and p100 of a set
// of values: the value at 1-based rank ceil(p/100·n) of the n sorted
// values, p0 being the minimum.
type Percentiles [len(PercentileTenths)]float64

// MarshalJSON writes the object {"p0": …, …, "p100": …}.
func (p Percentiles) MarshalJSON() ([]byte, error) {
	b := []byte{'{'}
	for i, name := range PercentileNames {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '"')
		b = append(b, name...)
		b = append(b, '"', ':')
		v, err := json.Marshal(p[i])
		if err != nil {
			return nil, err
		}
		b = append(b, v...)
	}
	return append(b, '}'), nil
}

// UnmarshalJSON reads what MarshalJSON writes.
func (p *Percentiles) UnmarshalJSON(b []byte) error {
	var m map[string]float64
	if err := json.Unmarshal(b, &m); err != nil {
		return err
	}
	for i, name := range PercentileNames {
		p[i] = m[name]
	}
	return nil
}

// P25, P50, P75 and P99 name the percentiles the sentences quote.
func (p *Percentiles) P25() float64 { return p[1] }

// P50 is the median.
func (p *Percentiles) P50() float64 { return p[2] }

// P75 is the 75th percentile.
func (p *Percentiles) P75() float64 { return p[3] }

// P99 is the 99th percentile.
func (p *Percentiles) P99() float64 { return p[5] }

// Coverage says what part of the window a viewer over Jaeger holds
// whole. Every answer of such a viewer carries it; when the window
// asked for is not all within [Since, Until), or Dense is not zero, the
// answer's figures are marked approximate.
type Coverage struct {
	// Jaeger is the address of Jaeger's query service.
	Jaeger string `json:"jaeger"`
	// Since and Until bound what is fetched whole: every trace Jaeger
	// had with a span starting in [Since, Until) when it was asked.
	Since time.Time `json:"since"`
	Until time.Time `json:"until"`
	// Complete is set when the answer's window is within [Since, Until)
	// and no slice of time was too dense to fetch whole.
	Complete bool `json:"complete"`
	// Reason says why a fetch stopped short (a budget that ran out).
	Reason string `json:"reason,omitempty"`
	// Dense counts the 1 ms slices that still held search_depth traces:
	// some traces in them may be missing.
	Dense int `json:"dense,omitempty"`
	// Traces and Spans count what the fetches stored.
	Traces int `json:"traces"`
	Spans  int `json:"spans"`
	// Error is the error of the last refresh, when it failed: the
	// figures are then those of the fetch before it.
	Error string `json:"error,omitempty"`
}
