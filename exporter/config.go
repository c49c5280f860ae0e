package exporter

import "time"

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
	// DefaultBusyTimeout is how long a write waits for another process's
	// lock on the same file.
	DefaultBusyTimeout = 5 * time.Second
	// DefaultRetryBackoff is how long the writer waits after a failed
	// transaction before the next one, so that a full or vanished disk
	// does not spin a core.
	DefaultRetryBackoff = 250 * time.Millisecond
)

type config struct {
	queueSize    int
	maxTxnSpans  int
	busyTimeout  time.Duration
	retryBackoff time.Duration
}

func newConfig(opts []Option) config {
	c := config{
		queueSize:    DefaultQueueSize,
		maxTxnSpans:  DefaultMaxTxnSpans,
		busyTimeout:  DefaultBusyTimeout,
		retryBackoff: DefaultRetryBackoff,
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
