package collect

import "time"

// Defaults of the receiver's settings.
const (
	// DefaultMaxRequestBytes is the largest request body accepted, counted
	// after decompression: 16 MiB.
	DefaultMaxRequestBytes = 16 << 20
	// DefaultMaxConcurrent is how many requests may be read, decoded and
	// stored at once; others are told to retry. The memory they take is
	// bounded by DefaultMaxInflightBytes, not by this count.
	DefaultMaxConcurrent = 16
	// DefaultMaxInflightBytes bounds the memory of the requests in flight,
	// over both protocols together: 256 MiB. A request counts from before
	// its body is read until it is answered, as about 9x its decompressed
	// protobuf body (5x JSON): the body, its decoding and its rows.
	// Requests beyond it wait, then are told to retry.
	DefaultMaxInflightBytes = 256 << 20
	// DefaultQueueWait is how long a request waits for room in the
	// writer's queue before it is told to retry.
	DefaultQueueWait = 500 * time.Millisecond
	// DefaultRetryAfter is the delay a retryable answer asks for
	// (Retry-After, RetryInfo).
	DefaultRetryAfter = time.Second
)

type config struct {
	maxRequestBytes int64
	maxConcurrent   int
	maxInflight     int64
	queueWait       time.Duration
	retryAfter      time.Duration
	token           string
}

func newConfig(opts []Option) config {
	c := config{
		maxRequestBytes: DefaultMaxRequestBytes,
		maxConcurrent:   DefaultMaxConcurrent,
		maxInflight:     DefaultMaxInflightBytes,
		queueWait:       DefaultQueueWait,
		retryAfter:      DefaultRetryAfter,
	}
	for _, o := range opts {
		c = o.apply(c)
	}
	return c
}

// Option configures a Receiver.
type Option interface {
	apply(config) config
}

type optionFunc func(config) config

func (f optionFunc) apply(c config) config { return f(c) }

// WithMaxRequestBytes sets the largest request body accepted, counted after
// decompression; larger ones are answered 413 / RESOURCE_EXHAUSTED.
// Default DefaultMaxRequestBytes; n <= 0 keeps it.
func WithMaxRequestBytes(n int64) Option {
	return optionFunc(func(c config) config {
		if n > 0 {
			c.maxRequestBytes = n
		}
		return c
	})
}

// WithMaxConcurrent sets how many requests are handled at once. Default
// DefaultMaxConcurrent; n <= 0 keeps it.
func WithMaxConcurrent(n int) Option {
	return optionFunc(func(c config) config {
		if n > 0 {
			c.maxConcurrent = n
		}
		return c
	})
}

// WithMaxInflightBytes sets the memory budget of the requests in flight,
// over both protocols together (see DefaultMaxInflightBytes). Default
// DefaultMaxInflightBytes; n <= 0 keeps it.
func WithMaxInflightBytes(n int64) Option {
	return optionFunc(func(c config) config {
		if n > 0 {
			c.maxInflight = n
		}
		return c
	})
}

// WithQueueWait sets how long a request waits for room in the writer's
// queue before it is told to retry; 0 answers at once. Default
// DefaultQueueWait; a negative d keeps it.
func WithQueueWait(d time.Duration) Option {
	return optionFunc(func(c config) config {
		if d >= 0 {
			c.queueWait = d
		}
		return c
	})
}

// WithRetryAfter sets the delay retryable answers ask clients to wait.
// HTTP's Retry-After counts whole seconds, so it is rounded up there.
// Default DefaultRetryAfter; d <= 0 keeps it.
func WithRetryAfter(d time.Duration) Option {
	return optionFunc(func(c config) config {
		if d > 0 {
			c.retryAfter = d
		}
		return c
	})
}

// WithToken makes every request carry "Authorization: Bearer <token>"
// (gRPC: the authorization metadata); others are answered 401 /
// UNAUTHENTICATED. Default: no token.
func WithToken(token string) Option {
	return optionFunc(func(c config) config {
		c.token = token
		return c
	})
}
