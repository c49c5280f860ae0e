package load

import "time"

// Defaults of Run and Compare.
const (
	// DefaultDuration is how long the producers run: 10 s.
	DefaultDuration = 10 * time.Second
	// DefaultProducers is the number of producing goroutines: 1.
	DefaultProducers = 1
	// DefaultTick is how often a paced producer catches up with its rate:
	// 10 ms, so that 50,000 spans/s arrive as 500 spans every tick rather
	// than as one burst a second.
	DefaultTick = 10 * time.Millisecond
	// DefaultShutdownTimeout bounds the flush after the producers stop: 2 min.
	DefaultShutdownTimeout = 2 * time.Minute
)

type config struct {
	rate            float64
	duration        time.Duration
	spans           int64
	producers       int
	tick            time.Duration
	dir             string
	progress        func(Progress)
	shutdownTimeout time.Duration
	otlpEndpoint    string
}

func newConfig(opts []Option) config {
	c := config{
		duration:        DefaultDuration,
		producers:       DefaultProducers,
		tick:            DefaultTick,
		shutdownTimeout: DefaultShutdownTimeout,
	}
	for _, o := range opts {
		c = o.apply(c)
	}
	return c
}

// Option configures Run and Compare.
type Option interface {
	apply(config) config
}

type optionFunc func(config) config

func (f optionFunc) apply(c config) config { return f(c) }

// WithRate sets the spans per second all producers together start; 0 (the
// default) means as fast as they can.
func WithRate(spansPerSecond float64) Option {
	return optionFunc(func(c config) config { c.rate = max(spansPerSecond, 0); return c })
}

// WithDuration sets how long the producers run. Default DefaultDuration;
// 0 means until WithSpans is reached.
func WithDuration(d time.Duration) Option {
	return optionFunc(func(c config) config { c.duration = max(d, 0); return c })
}

// WithSpans stops the producers once they have started n spans (rounded
// up to whole traces), whichever of it and the duration comes first. 0, the
// default, means no limit.
func WithSpans(n int64) Option {
	return optionFunc(func(c config) config { c.spans = max(n, 0); return c })
}

// WithProducers sets the number of producing goroutines (values below 1
// mean 1). Default DefaultProducers.
func WithProducers(n int) Option {
	return optionFunc(func(c config) config { c.producers = max(n, 1); return c })
}

// WithTick sets how often paced producers catch up with the rate. Default
// DefaultTick.
func WithTick(d time.Duration) Option {
	return optionFunc(func(c config) config {
		if d > 0 {
			c.tick = d
		}
		return c
	})
}

// WithDir keeps the files in dir (lonelytrace.db, plain.db), adding to
// them if they exist. Without it they go to a temporary directory that is
// removed after the run.
func WithDir(dir string) Option {
	return optionFunc(func(c config) config { c.dir = dir; return c })
}

// WithProgress calls fn about once a second while a mode runs, on a
// goroutine of its own.
func WithProgress(fn func(Progress)) Option {
	return optionFunc(func(c config) config { c.progress = fn; return c })
}

// WithShutdownTimeout bounds the flush after the producers stop. Default
// DefaultShutdownTimeout.
func WithShutdownTimeout(d time.Duration) Option {
	return optionFunc(func(c config) config {
		if d > 0 {
			c.shutdownTimeout = d
		}
		return c
	})
}

// WithOTLPEndpoint makes the OTLP mode send to url, an OTLP/HTTP traces
// endpoint, instead of to a receiver of its own in this process: then the
// process pays for the export alone. Stored is then the spans whose
// requests the endpoint answered with success.
func WithOTLPEndpoint(url string) Option {
	return optionFunc(func(c config) config { c.otlpEndpoint = url; return c })
}
