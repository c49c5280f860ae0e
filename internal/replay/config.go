package replay

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"
)

// Defaults of Replay.
const (
	// DefaultBatchSize is the most spans per OTLP request: 512.
	DefaultBatchSize = 512
	// DefaultMaxRequestBytes bounds a request's protobuf, before gzip:
	// 4 MiB, gRPC's default limit on a message and under every
	// collector's HTTP default (the OpenTelemetry Collector's 20 MiB,
	// lonelytrace collect's 16 MiB).
	DefaultMaxRequestBytes = 4 << 20
	// DefaultRetryFor is how long one request is retried after its first
	// failure before Replay gives up: 5 minutes, the OpenTelemetry
	// Collector's exporters' default (max_elapsed_time).
	DefaultRetryFor = 5 * time.Minute
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
	maxBytes   int
	attempts   int // 0: no limit but retryFor
	retryFor   time.Duration
	resume     Position
	minBackoff time.Duration
	maxBackoff time.Duration
	timeout    time.Duration
	progress   func(Progress)
	headers    map[string]string
	gzip       *bool // nil: as the environment says
}

func newConfig(opts []Option) config {
	c := config{
		batchSize:  DefaultBatchSize,
		maxBytes:   DefaultMaxRequestBytes,
		retryFor:   DefaultRetryFor,
		minBackoff: DefaultMinBackoff,
		maxBackoff: DefaultMaxBackoff,
		timeout:    DefaultTimeout,
	}
	for _, o := range opts {
		c = o.apply(c)
	}
	return c
}

// The OTLP exporter variables Replay reads (the endpoint is the caller's):
// each OTEL_EXPORTER_OTLP_TRACES_* variable wins over its
// OTEL_EXPORTER_OTLP_* one.
const (
	envHeaders     = "HEADERS"            // key=value,… with percent-encoded values
	envCompression = "COMPRESSION"        // gzip or none
	envCertificate = "CERTIFICATE"        // PEM file of the CAs to trust
	envClientCert  = "CLIENT_CERTIFICATE" // PEM file of the client's certificate…
	envClientKey   = "CLIENT_KEY"         // …and of its key
)

// getenv returns the OTLP exporter variable of name for traces.
func getenv(name string) (key, value string) {
	for _, key := range []string{"OTEL_EXPORTER_OTLP_TRACES_" + name, "OTEL_EXPORTER_OTLP_" + name} {
		if v, ok := os.LookupEnv(key); ok && strings.TrimSpace(v) != "" {
			return key, strings.TrimSpace(v)
		}
	}
	return "", ""
}

// newClient builds the OTLP/HTTP client of c for url: headers and gzip
// from the environment, then from the options; TLS from the environment.
func (c config) newClient(url string) (*client, error) {
	cl := &client{url: url, timeout: c.timeout, headers: map[string]string{}}
	if key, v := getenv(envHeaders); v != "" {
		h, err := parseHeaders(v)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", key, err)
		}
		maps.Copy(cl.headers, h)
	}
	maps.Copy(cl.headers, c.headers)
	switch key, v := getenv(envCompression); v {
	case "", "none":
	case "gzip":
		cl.gzip = true
	default:
		return nil, fmt.Errorf("%s: %q: want gzip or none", key, v)
	}
	if c.gzip != nil {
		cl.gzip = *c.gzip
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tc, err := tlsConfig()
	if err != nil {
		return nil, err
	}
	if tc != nil {
		tr.TLSClientConfig = tc
	}
	cl.http = &http.Client{Transport: tr}
	return cl, nil
}

// parseHeaders reads the OTEL_EXPORTER_OTLP_HEADERS form:
// key1=value1,key2=value2, values percent-encoded.
func parseHeaders(s string) (map[string]string, error) {
	h := map[string]string{}
	for i, item := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(item, "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" {
			return nil, fmt.Errorf("header %d (%q): want key=value", i+1, strings.TrimSpace(item))
		}
		val, err := url.PathUnescape(strings.TrimSpace(v))
		if err != nil {
			return nil, fmt.Errorf("header %d (%q): %w", i+1, k, err)
		}
		h[k] = val
	}
	return h, nil
}

// tlsConfig is the TLS set-up the environment asks for, or nil.
func tlsConfig() (*tls.Config, error) {
	caKey, ca := getenv(envCertificate)
	certKey, cert := getenv(envClientCert)
	keyKey, key := getenv(envClientKey)
	if ca == "" && cert == "" && key == "" {
		return nil, nil
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if ca != "" {
		pem, err := os.ReadFile(ca)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", caKey, err)
		}
		tc.RootCAs = x509.NewCertPool()
		if !tc.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%s: %s holds no PEM certificate", caKey, ca)
		}
	}
	if cert != "" || key != "" {
		if cert == "" || key == "" {
			return nil, fmt.Errorf("OTEL_EXPORTER_OTLP_[TRACES_]%s and %s: set both or neither", envClientCert, envClientKey)
		}
		pair, err := tls.LoadX509KeyPair(cert, key)
		if err != nil {
			return nil, fmt.Errorf("%s, %s: %w", certKey, keyKey, err)
		}
		tc.Certificates = []tls.Certificate{pair}
	}
	return tc, nil
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

// WithMaxRequestBytes bounds the protobuf of one request, before gzip
// (values below 1 mean 1; a span larger than the bound goes alone).
// Default DefaultMaxRequestBytes.
func WithMaxRequestBytes(n int) Option {
	return optionFunc(func(c config) config { c.maxBytes = max(n, 1); return c })
}

// WithRetryFor sets how long a request that fails retryably is tried
// again, from its first failure. Default DefaultRetryFor.
func WithRetryFor(d time.Duration) Option {
	return optionFunc(func(c config) config { c.retryFor = max(d, 0); return c })
}

// WithAttempts also bounds how often a request is tried (values below 1
// mean no bound but WithRetryFor's, the default).
func WithAttempts(n int) Option {
	return optionFunc(func(c config) config { c.attempts = max(n, 0); return c })
}

// WithResume starts the replay at p, the Resume of a *StoppedError of an
// earlier Replay of the same files: the files before p.File and the rows
// of p.File up to p.After are not sent (their spans still count as sent
// when a later file holds them too).
func WithResume(p Position) Option {
	return optionFunc(func(c config) config { c.resume = p; return c })
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
// wants an API key), over those of OTEL_EXPORTER_OTLP_HEADERS and
// OTEL_EXPORTER_OTLP_TRACES_HEADERS.
func WithHeaders(h map[string]string) Option {
	return optionFunc(func(c config) config { c.headers = h; return c })
}

// WithGzip sets whether request bodies are gzipped. Default: as
// OTEL_EXPORTER_OTLP_TRACES_COMPRESSION or OTEL_EXPORTER_OTLP_COMPRESSION
// say (gzip or none), else none.
func WithGzip(on bool) Option {
	return optionFunc(func(c config) config { c.gzip = &on; return c })
}

// WithProgress calls fn after each page of rows sent and before each
// retry, on Replay's goroutine.
func WithProgress(fn func(Progress)) Option {
	return optionFunc(func(c config) config { c.progress = fn; return c })
}
