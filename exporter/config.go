package exporter

import (
	"time"

	"github.com/lonelytrace/lonelytrace/schema"
)

// Defaults of the exporter's settings.
const (
	// DefaultQueueSize is how many batches from ExportSpans may wait for
	// the writer: 64, with the SDK's default batch of 512 spans 32,768
	// spans. DefaultQueueBytes bounds them too, and is usually reached
	// first.
	DefaultQueueSize = 64
	// DefaultQueueBytes is how many bytes of spans may wait for the
	// writer: 6 MiB. A batch counts as its encoded rows plus an estimate
	// of the spans they came from (about 1 KiB a span of a few
	// attributes), so 6 MiB is some 6,000 such spans. The writer gives a
	// batch's bytes back as soon as its rows are in the transaction, and
	// the transaction goes on with what is queued meanwhile, so the bound
	// holds memory, not the size of transactions. In `lonelytrace load`
	// flat out, 4 MiB stored 5 % fewer spans a second and 8 MiB took
	// 10 MiB more memory (docs/performance.md).
	DefaultQueueBytes = 6 << 20
	// DefaultMaxTxnSpans is how many queued spans the writer commits in one
	// transaction at most. Larger transactions amortise the commit; smaller
	// ones let readers see new spans sooner.
	DefaultMaxTxnSpans = 16384
	// DefaultCommitInterval is how long a transaction of the writer takes
	// batches, from the first, before it commits, unless it is full or
	// a ForceFlush or Shutdown is waiting. Each commit rewrites the last
	// pages of the table and its indexes and one page per new trace in the
	// trace-id index, so fewer, larger commits write far less.
	DefaultCommitInterval = 500 * time.Millisecond
	// DefaultBusyTimeout is how long a write waits for another process's
	// lock on the same file, schema.DefaultBusyTimeout, before the writer
	// pauses and tries again.
	DefaultBusyTimeout = schema.DefaultBusyTimeout
	// DefaultRetryBackoff is how long the writer waits after a failed
	// transaction before the next one, so that a full or vanished disk
	// does not spin a core.
	DefaultRetryBackoff = 250 * time.Millisecond
	// DefaultMaxAge is how long spans are kept: older ones are deleted, in
	// small steps between batches. 0 keeps spans for ever.
	DefaultMaxAge = 7 * 24 * time.Hour
	// DefaultMaxSize is the most bytes the file may take on disk, with its
	// WAL: 1 GiB. Beyond it the oldest spans are deleted and the space
	// given back to the file system; the file, its WAL and its
	// shared-memory index together stay within 1.25 times the limit (see
	// WithMaxSize). 0 sets no limit.
	DefaultMaxSize = 1 << 30
)

type config struct {
	commitEvery  time.Duration
	queueSize    int
	queueBytes   int64
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
	// journal_size_limit: walBound(maxSize) unless a test sets it.
	walLimit int64
}

// walBound is the WAL's own bound under the size limit maxSize: an eighth
// of it, at least minWAL (16 pages of 16 KiB) and at most
// maxWAL, the bound of a file without a limit. Retention keeps the file's
// pages within the limit less the WAL's share, so that the two together
// stay within the limit and the 1.25 times it promised leaves room for a
// transaction in flight.
func walBound(maxSize int64) int64 {
	if maxSize == 0 {
		return maxWAL
	}
	return min(max(maxSize/8, minWAL), maxWAL)
}

func newConfig(opts []Option) config {
	c := config{
		queueSize:    DefaultQueueSize,
		queueBytes:   DefaultQueueBytes,
		maxTxnSpans:  DefaultMaxTxnSpans,
		commitEvery:  DefaultCommitInterval,
		busyTimeout:  DefaultBusyTimeout,
		retryBackoff: DefaultRetryBackoff,
		maxAge:       DefaultMaxAge,
		maxSize:      DefaultMaxSize,

		maintainEvery: time.Second,
		retentionStep: defaultRetentionStep,
	}
	for _, o := range opts {
		c = o.apply(c)
	}
	if c.walLimit == 0 {
		c.walLimit = walBound(c.maxSize)
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

// WithQueueBytes sets how many bytes of spans may wait for the writer
// before ExportSpans has to wait (and, once its context ends, drop): see
// DefaultQueueBytes for how a batch is counted. A batch larger than the
// whole bound is queued alone when nothing else waits. Values below 1
// are ignored.
func WithQueueBytes(bytes int64) Option {
	return optionFunc(func(c config) config {
		if bytes >= 1 {
			c.queueBytes = bytes
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

// WithCommitInterval sets how long a transaction of the writer stays open
// for more batches, from the first, before it commits them; 0 commits
// whatever is queued at once.
func WithCommitInterval(d time.Duration) Option {
	return optionFunc(func(c config) config {
		if d >= 0 {
			c.commitEvery = d
		}
		return c
	})
}

// WithBusyTimeout sets how long a write waits for another process's lock
// before the writer pauses (WithRetryBackoff) and tries the same
// transaction again: a busy file delays spans, it does not fail them.
func WithBusyTimeout(d time.Duration) Option {
	return optionFunc(func(c config) config {
		if d >= 0 {
			c.busyTimeout = d
		}
		return c
	})
}

// WithRetryBackoff sets the pause after a failed write transaction, and
// between tries of a transaction that found the file busy.
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

// WithMaxSize sets the most bytes the file may take on disk; 0 sets no
// limit. The WAL beside the file counts: its own bound is an eighth of the
// limit (at least 256 KiB, at most 64 MiB), retention keeps the file's
// pages within the rest, and the file, WAL and shared-memory index
// together stay within 1.25 times the limit from limits of 16 MiB up,
// unless a reader holds the WAL (a read transaction left open), which
// SQLite cannot start over under it: that is reported through otel.Handle
// and counted in the file's meta. Limits below 1 MiB are raised to 1 MiB,
// as the schema alone takes tens of kilobytes. Negative values are
// ignored.
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
