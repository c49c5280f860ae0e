package jaegerquery

import "time"

// Defaults of the client's and the fetch's settings.
const (
	// DefaultMaxMessageBytes is the largest reply message the client
	// reads: 16 MiB. Jaeger sends one message per trace, so this bounds
	// the largest trace a fetch can bring (gRPC's own default, 4 MiB,
	// is a trace of a few thousand spans).
	DefaultMaxMessageBytes = 16 << 20
	// DefaultSearchDepth is the search_depth of each FindTraces: 1,000
	// traces. A slice of time whose reply holds this many is split. It
	// must not exceed the most traces Jaeger's store allows in a query
	// (the memory store refuses more than its max_traces).
	DefaultSearchDepth = 1000
	// DefaultMaxTraces is the trace budget of a fetch: 100,000 distinct
	// traces, which a lonelytrace file and the memory of the duplicate
	// check hold easily (a few hundred MiB at most).
	DefaultMaxTraces = 100_000
	// DefaultMaxDuration is the time budget of a fetch: 60 s, long
	// enough for the trace budget from a nearby Jaeger, short enough for
	// someone waiting for a page.
	DefaultMaxDuration = 60 * time.Second
	// DefaultMaxSliceBytes is the most bytes of replies a fetch holds
	// for one slice of time before it is stored: 256 MiB. A slice whose
	// reply is larger is halved, as a full one is, so that a store of
	// large traces does not fill memory with search_depth of them.
	DefaultMaxSliceBytes = 256 << 20
)

// minSlice is the shortest slice of time a fetch splits: storage keys
// of Jaeger's stores are in microseconds, and a millisecond holding
// search_depth traces of one service is past what splitting can help.
const minSlice = time.Millisecond

// config holds the settings of a Client and a fetch.
type config struct {
	maxMessageBytes int
	services        []string
	searchDepth     int
	maxTraces       int
	maxDuration     time.Duration
	maxSliceBytes   int
}

func newConfig(opts []Option) config {
	c := config{
		maxMessageBytes: DefaultMaxMessageBytes,
		searchDepth:     DefaultSearchDepth,
		maxTraces:       DefaultMaxTraces,
		maxDuration:     DefaultMaxDuration,
		maxSliceBytes:   DefaultMaxSliceBytes,
	}
	for _, o := range opts {
		c = o.apply(c)
	}
	return c
}

// Option sets a setting of Dial or Fetch.
type Option interface {
	apply(config) config
}

type optionFunc func(config) config

func (f optionFunc) apply(c config) config { return f(c) }

// WithMaxMessageBytes sets the largest reply message Dial's client
// reads (DefaultMaxMessageBytes). Values below 1 are ignored.
func WithMaxMessageBytes(n int) Option {
	return optionFunc(func(c config) config {
		if n > 0 {
			c.maxMessageBytes = n
		}
		return c
	})
}

// WithServices sets the services Fetch asks for; by default it asks
// Jaeger for all of them (GetServices).
func WithServices(services ...string) Option {
	return optionFunc(func(c config) config {
		c.services = append([]string(nil), services...)
		return c
	})
}

// WithSearchDepth sets the search_depth of each FindTraces
// (DefaultSearchDepth). Values below 1 are ignored.
func WithSearchDepth(n int) Option {
	return optionFunc(func(c config) config {
		if n > 0 {
			c.searchDepth = n
		}
		return c
	})
}

// WithMaxTraces sets the trace budget of Fetch (DefaultMaxTraces).
// Values below 1 are ignored.
func WithMaxTraces(n int) Option {
	return optionFunc(func(c config) config {
		if n > 0 {
			c.maxTraces = n
		}
		return c
	})
}

// WithMaxDuration sets the time budget of Fetch (DefaultMaxDuration).
// Values below 1 ns are ignored.
func WithMaxDuration(d time.Duration) Option {
	return optionFunc(func(c config) config {
		if d > 0 {
			c.maxDuration = d
		}
		return c
	})
}

// WithMaxSliceBytes sets the most bytes of replies Fetch holds for one
// slice of time (DefaultMaxSliceBytes). Values below 1 are ignored.
func WithMaxSliceBytes(n int) Option {
	return optionFunc(func(c config) config {
		if n > 0 {
			c.maxSliceBytes = n
		}
		return c
	})
}
