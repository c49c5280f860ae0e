package spanreturn

import (
	"os"
	"slices"
	"strings"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// EnvVar names the environment variable that switches span return off on
// both sides when set to "off": the server middleware then returns nothing
// and the client transport neither asks for spans nor reads them. It wins
// over WithEnabled, so an operator can always turn the feature off.
const EnvVar = "LONELYTRACE_SPANRETURN"

const (
	// DefaultMaxBytes is the default bound on the returned spans: the
	// length of the response header value (base64url), or of the raw frame
	// field for a stateful connection. 16 KiB.
	DefaultMaxBytes = 16 << 10
	// DefaultMaxSpans is the default bound on the number of spans returned
	// for one request, and accepted by the client. 512.
	DefaultMaxSpans = 512
	// DefaultMaxClockOffset is the default largest clock offset the client
	// accepts between itself and a server; answers that need more are
	// dropped as ReasonClockOffset. 1 hour.
	DefaultMaxClockOffset = time.Hour
)

// An Option configures a Processor (server side) or a Receiver (client
// side). Each option says which side reads it.
type Option interface {
	apply(config) config
}

type optionFunc func(config) config

func (f optionFunc) apply(c config) config { return f(c) }

type config struct {
	enabled        bool                     // default true; EnvVar=off forces false
	maxBytes       int                      // default DefaultMaxBytes
	maxSpans       int                      // default DefaultMaxSpans
	maxClockOffset time.Duration            // default DefaultMaxClockOffset
	now            func() time.Time         // default time.Now
	next           []sdktrace.SpanProcessor // default none: cut and late spans are dropped
}

// newConfig applies opts over the defaults, then the environment: EnvVar is
// read here and nowhere else.
func newConfig(opts []Option) config {
	c := config{
		enabled:        true,
		maxBytes:       DefaultMaxBytes,
		maxSpans:       DefaultMaxSpans,
		maxClockOffset: DefaultMaxClockOffset,
		now:            time.Now,
	}
	for _, o := range opts {
		c = o.apply(c)
	}
	if strings.EqualFold(strings.TrimSpace(os.Getenv(EnvVar)), "off") {
		c.enabled = false
	}
	return c
}

// WithEnabled switches span return on or off (both sides). It is on by
// default; EnvVar set to "off" turns it off whatever this option says.
func WithEnabled(on bool) Option {
	return optionFunc(func(c config) config { c.enabled = on; return c })
}

// WithMaxBytes bounds the encoded spans to n bytes (both sides; values
// below 256 are raised to 256). The server cuts the spans to fit, the client
// drops larger answers as ReasonTooLarge. Default DefaultMaxBytes. Mind the
// proxies between the two: many limit response headers to 8 KiB or less.
func WithMaxBytes(n int) Option {
	return optionFunc(func(c config) config { c.maxBytes = max(n, 256); return c })
}

// WithMaxSpans bounds the number of spans per answer (both sides; values
// below 1 are raised to 1). Default DefaultMaxSpans.
func WithMaxSpans(n int) Option {
	return optionFunc(func(c config) config { c.maxSpans = max(n, 1); return c })
}

// WithMaxClockOffset sets the largest clock offset the client accepts
// (client side). Default DefaultMaxClockOffset.
func WithMaxClockOffset(d time.Duration) Option {
	return optionFunc(func(c config) config { c.maxClockOffset = max(d, 0); return c })
}

// WithClock replaces time.Now (both sides): the server reads it for the
// request-received and response-sent times and its own server span, the
// client for the request-sent and answer-received times. For tests.
func WithClock(now func() time.Time) Option {
	return optionFunc(func(c config) config {
		if now != nil {
			c.now = now
		}
		return c
	})
}

// WithNext gives the Processor (server side) the processors of the server's
// own exporters, typically sdktrace.NewBatchSpanProcessor(exp). Every span
// not returned to a client goes there: spans of requests that did not ask,
// spans ending after the response started, spans cut by the bounds. Without
// it the late and cut spans are counted as dropped (ProcessorStats).
// The Processor passes OnStart of every span to next, and OnEnd of those;
// its ForceFlush and Shutdown call theirs. Each call replaces the last.
func WithNext(next ...sdktrace.SpanProcessor) Option {
	return optionFunc(func(c config) config {
		c.next = slices.DeleteFunc(slices.Clone(next), func(p sdktrace.SpanProcessor) bool { return p == nil })
		return c
	})
}
