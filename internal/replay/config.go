package replay

import "time"

// Defaults of Replay.
const (
	// DefaultBatchSize is the number of spans per OTLP request: 512.
	DefaultBatchSize = 512
	// DefaultAttempts is how often one request is tried before Replay
	// gives up: 8.
	DefaultAttempts = 8
	// DefaultMinBackoff and DefaultMaxBackoff bound the wait before a
	// retry, which doubles from the first to the second, with jitter:
	// 250 ms to 10 s.
	DefaultMinBackoff = 250 * time.Millisecond
	DefaultMaxBackoff = 10 * time.Second
	// DefaultTimeout bounds one request: 30 s.
	DefaultTimeout = 30 * time.Second
)

type config struct {
	batchSize  int
	attempts   int
	minBackoff time.Duration
	maxBackoff time.Duration
	timeout    time.Duration
	progress   func(Progress)
	headers    map[string]string
}

func newConfig(opts []Option) config {
	c := config{
		batchSize:  DefaultBatchSize,
		attempts:   DefaultAttempts,
		minBackoff: DefaultMinBackoff,
		maxBackoff: DefaultMaxBackoff,
		timeout:    DefaultTimeout,
	}
	for _, o := range opts {
		c = o.apply(c)
	}
	return c
}

// Option configures Replay.
type Option interface {
	apply(config) config
}

type optionFunc func(config) config

func (f optionFunc) apply(c config) config { return f(c) }

// WithBatchSize sets the spans per request (values below 1 mean 1).
// Default DefaultBatchSize.
func WithBatchSize(n int) Option {
	return optionFunc(func(c config) config { c.batchSize = max(n, 1); return c })
}

// WithAttempts sets how often a request is tried before Replay gives up
// (values below 1 mean 1). Default DefaultAttempts.
func WithAttempts(n int) Option {
	return optionFunc(func(c config) config { c.attempts = max(n, 1); return c })
}

// WithBackoff sets the first and the largest wait before a retry.
// Defaults DefaultMinBackoff and DefaultMaxBackoff.
func WithBackoff(first, largest time.Duration) Option {
	return optionFunc(func(c config) config {
		c.minBackoff, c.maxBackoff = first, max(first, largest)
		return c
	})
}

// WithTimeout bounds one request. Default DefaultTimeout.
func WithTimeout(d time.Duration) Option {
	return optionFunc(func(c config) config { c.timeout = d; return c })
}

// WithHeaders adds HTTP headers to every request (for a collector that
// wants an API key). OTEL_EXPORTER_OTLP_HEADERS works too.
func WithHeaders(h map[string]string) Option {
	return optionFunc(func(c config) config { c.headers = h; return c })
}

// WithProgress calls fn after each request that succeeded and before each
// retry, on Replay's goroutine.
func WithProgress(fn func(Progress)) Option {
	return optionFunc(func(c config) config { c.progress = fn; return c })
}
