package exporter

import "time"

// WithMaintainEvery sets how often an idle writer wakes for maintenance
// (one second outside tests), so that tests of retention and of a file
// that vanishes need not wait.
func WithMaintainEvery(d time.Duration) Option {
	return optionFunc(func(c config) config {
		if d > 0 {
			c.maintainEvery = d
		}
		return c
	})
}

// WithRetentionStep sets the fewest spans one retention step deletes.
func WithRetentionStep(n int) Option {
	return optionFunc(func(c config) config {
		if n > 0 {
			c.retentionStep = n
		}
		return c
	})
}

// WithWALLimit sets the WAL size past which the writer truncates it (64
// MiB outside tests).
func WithWALLimit(bytes int64) Option {
	return optionFunc(func(c config) config {
		if bytes > 0 {
			c.walLimit = bytes
		}
		return c
	})
}
