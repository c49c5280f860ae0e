package exporter

import (
	"time"

	"github.com/lonelytrace/lonelytrace/schema"
)

// Defaults of the exporter's settings.
const (
	// DefaultQueueSize is how many batches from ExportSpans may wait for
	// the writer. With the SDK's default batch of 512 spans that is 32,768
	// spans: the bound on the memory the exporter holds.
	DefaultQueueSize = 64
	// DefaultMaxTxnSpans is how many queued spans the writer commits in one
	// transaction at most. Larger transactions amortise the commit; smaller
	// ones let readers see new spans sooner.
	DefaultMaxTxnSpans = 16384
	// DefaultCommitInterval is how long the writer gathers batches into
	// one transaction before it commits, unless the transaction is full or
	// a ForceFlush or Shutdown is waiting. Each commit rewrites the last
	// pages of the table and its indexes and one page per new trace in the
	// trace-id index, so fewer, larger commits write far less.
	DefaultCommitInterval = 500 * time.Millisecond
	// DefaultBusyTimeout is how long a write waits for another process's
	// lock on the same file: schema.DefaultBusyTimeout.
	DefaultBusyTimeout = schema.DefaultBusyTimeout
	// DefaultRetryBackoff is how long the writer waits after a failed
	// transaction before the next one, so that a full or vanished disk
	// does not spin a core.
	DefaultRetryBackoff = 250 * time.Millisecond
	// DefaultMaxAge is how long spans are kept: older ones are deleted, in
	// small steps between batches. 0 keeps spans for ever.
	DefaultMaxAge = 7 * 24 * time.Hour
	// DefaultMaxSize is the most bytes the file's spans may take: beyond
	// it the oldest spans are deleted and the space given back to the file
	// system. 0 sets no limit.
	DefaultMaxSize = 1 << 30
)

type config struct {
	commitEvery  time.Duration
	queueSize    int
	maxTxnSpans  int
	busyTimeout  time.Duration
	retryBackoff time.Duration
	maxAge       time.Duration
	maxSize      int64
	// maintainEvery is how often an idle writer wakes to apply retention
	// and check that its file is still in place; tests shorten it.
	maintainEvery time.Duration
	// retentionStep is the fewest spans one retention step deletes.
	retentionStep int
	// walLimit is the WAL size past which boundWAL truncates it, and its
	// journal_size_limit; tests shrink it.
	walLimit int64
}

func newConfig(opts []Option) config {
	c := config{
		queueSize:    DefaultQueueSize,
		maxTxnSpans:  DefaultMaxTxnSpans,
		commitEvery:  DefaultCommitInterval,
		busyTimeout:  DefaultBusyTimeout,
		retryBackoff: DefaultRetryBackoff,
		maxAge:       DefaultMaxAge,
		maxSize:      DefaultMaxSize,

		maintainEvery: time.Second,
		retentionStep: defaultRetentionStep,
		walLimit:      walLimit,
	}
	for _, o := range opts {
		c = o.apply(c)
	}
	return c
}

// Option configures an Exporter.
type Option interface {
	apply(config) config
}

type optionFunc func(config) config

func (f optionFunc) apply(c config) config { return f(c) }

// WithQueueSize sets how many batches may wait for the writer before
// ExportSpans has to wait (and, once its context ends, drop). Values below
// 1 are ignored.
func WithQueueSize(batches int) Option {
	return optionFunc(func(c config) config {
		if batches >= 1 {
			c.queueSize = batches
		}
		return c
	})
}

// WithMaxTxnSpans sets the most spans the writer commits in one
// transaction. Values below 1 are ignored.
func WithMaxTxnSpans(n int) Option {
	return optionFunc(func(c config) config {
		if n >= 1 {
			c.maxTxnSpans = n
		}
		return c
	})
}

// WithCommitInterval sets how long the writer gathers batches before it
// commits them; 0 commits whatever is queued at once.
func WithCommitInterval(d time.Duration) Option {
	return optionFunc(func(c config) config {
		if d >= 0 {
			c.commitEvery = d
		}
		return c
	})
}

// WithBusyTimeout sets how long a write waits for another process's lock.
func WithBusyTimeout(d time.Duration) Option {
	return optionFunc(func(c config) config {
		if d >= 0 {
			c.busyTimeout = d
		}
		return c
	})
}

// WithRetryBackoff sets the pause after a failed write transaction.
func WithRetryBackoff(d time.Duration) Option {
	return optionFunc(func(c config) config {
		if d >= 0 {
			c.retryBackoff = d
		}
		return c
	})
}

// WithMaxAge sets how long spans are kept, by their start time; 0 keeps
// them for ever. Negative values are ignored.
func WithMaxAge(d time.Duration) Option {
	return optionFunc(func(c config) config {
		if d >= 0 {
			c.maxAge = d
		}
		return c
	})
}

// WithMaxSize sets the most bytes the file's pages may hold (the WAL
// beside it is bounded separately); 0 sets no limit. Limits below 1 MiB
// are raised to 1 MiB, as the schema alone takes tens of kilobytes.
// Negative values are ignored.
func WithMaxSize(bytes int64) Option {
	return optionFunc(func(c config) config {
		switch {
		case bytes == 0:
			c.maxSize = 0
		case bytes > 0:
			c.maxSize = max(bytes, minMaxSize)
		}
		return c
	})
}
