package viewer

import (
	"time"

	tsearch "github.com/lonelytrace/lonelytrace/viewer/internal/search"
)

// The typed questions of the Go API beyond Query (window.go): each is a
// Query and what its answer needs besides. The handlers parse them from
// their parameters in params.go, which also checks them.

// SeriesQuery is the question of Series: a window and filters, and the
// step of the buckets.
type SeriesQuery struct {
	Query
	// Step is the length of a bucket, from 1s to 24h in whole
	// milliseconds; 0 picks one for the window.
	Step time.Duration
}

// BreakdownQuery is the question of Breakdown: a window and filters, the
// operation whose spans are grouped and the fact they are grouped by.
type BreakdownQuery struct {
	Query
	// By is broadcaster, topic, service or subscribers.
	By string
	// Op is one of schema.Operations; "" is notify.
	Op string
}

// PageQuery is what WritePage shows: the page of a window and filters,
// or of one trace.
type PageQuery struct {
	Query
	// Step is the trends' step as in SeriesQuery.
	Step time.Duration
	// Trace, when set, is the id of the trace whose page is written
	// instead (32 hex digits).
	Trace string
}

// Sort orders of the trace list.
const (
	SortNewest  = tsearch.SortNewest
	SortSlowest = tsearch.SortSlowest
)
