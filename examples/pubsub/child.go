package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"os/signal"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/lonelytrace/lonelytrace/otelsetup"
)

// The environment by which the demo re-executes itself in a role. The
// secret is the run's shared key for signing messages; it travels in the
// environment, not on the command line, so that ps does not show it.
const (
	envRole   = "LONELYTRACE_DEMO_ROLE"
	envSecret = "LONELYTRACE_DEMO_SECRET"

	roleBroadcaster = "broadcaster"
	roleSubscriber  = "subscriber"
)

// Lines of the protocol between the demo and its children. A child writes
// lineReady with its URL once it serves, lineStats every second, and
// lineQuiesced once it stopped starting operations. The demo writes
// cmdQuiesce to the child's stdin to ask it to stop starting operations,
// and closes stdin to ask it to shut down (SIGTERM does the same).
const (
	lineReady    = "ready"
	lineStats    = "stats"
	lineQuiesced = "quiesced"
	cmdQuiesce   = "quiesce"
)

// tracerName is the instrumentation scope of the demo's own spans.
const tracerName = "github.com/lonelytrace/lonelytrace/examples/pubsub"

func tracer() trace.Tracer { return otel.Tracer(tracerName) }

// fail records err on span as real instrumentation does, following the
// OpenTelemetry exception conventions: an "exception" event carrying
// exception.type and exception.message, then status Error with the message
// (docs/design.md#span-conventions). Every span the demo fails goes
// through here, with an error of failures.go (or of the library that
// failed), whose type names what happened.
func fail(span trace.Span, err error) {
	span.RecordError(err)
	span.SetStatus(codes.Error, err.Error())
}

// startTracing installs the SDK for a child process under its own service
// name and trace file, with its side of span return. The shutdown it
// returns flushes within 10 s.
func startTracing(ctx context.Context, cfg childConfig, spanReturn otelsetup.Option) (shutdown func() error, err error) {
	stop, err := otelsetup.Start(ctx,
		otelsetup.WithServiceName(cfg.name),
		otelsetup.WithDBPath(cfg.db),
		spanReturn)
	if err != nil {
		return nil, err
	}
	return func() error {
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		return stop(sctx)
	}, nil
}

// childConfig is what the demo tells a child on its command line.
type childConfig struct {
	name         string
	db           string
	broadcasters string // name=url,name=url (subscribers)
	stateful     bool
	flaky        bool
	rate         float64
	secret       string
}

func parseChildFlags(args []string) (childConfig, error) {
	var c childConfig
	fs := flag.NewFlagSet("child", flag.ContinueOnError)
	fs.StringVar(&c.name, "name", "", "service name")
	fs.StringVar(&c.db, "db", "", "trace file")
	fs.StringVar(&c.broadcasters, "broadcasters", "", "name=url,... of the broadcasters")
	fs.BoolVar(&c.stateful, "stateful", false, "hold a websocket to each broadcaster")
	fs.BoolVar(&c.flaky, "flaky", false, "fail many deliveries")
	fs.Float64Var(&c.rate, "rate", 1, "notifies per second")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	c.secret = os.Getenv(envSecret)
	if c.name == "" || c.secret == "" {
		return c, fmt.Errorf("child: -name and $%s are required", envSecret)
	}
	return c, nil
}

// childMain runs the process as a child in role and returns its exit code.
func childMain(role string, args []string) int {
	cfg, err := parseChildFlags(args)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	// The demo handles Ctrl-C and stops its children in order; a terminal
	// sends SIGINT to the whole process group, so children ignore it.
	signal.Ignore(os.Interrupt)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	ctl := watchStdin(os.Stdin)
	go func() {
		<-ctl.closed
		stop()
	}()

	switch role {
	case roleBroadcaster:
		err = runBroadcaster(ctx, cfg, ctl, os.Stdout)
	case roleSubscriber:
		err = runSubscriber(ctx, cfg, ctl, os.Stdout)
	default:
		err = fmt.Errorf("unknown role %q", role)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", cfg.name, err)
		return 1
	}
	return 0
}

// control is what the demo asks of a child through its stdin.
type control struct {
	quiesce chan struct{} // closed on cmdQuiesce
	closed  chan struct{} // closed at EOF: the demo wants us gone, or died
}

func watchStdin(r io.Reader) *control {
	c := &control{quiesce: make(chan struct{}), closed: make(chan struct{})}
	go func() {
		var once sync.Once
		s := bufio.NewScanner(r)
		for s.Scan() {
			if strings.TrimSpace(s.Text()) == cmdQuiesce {
				once.Do(func() { close(c.quiesce) })
			}
		}
		once.Do(func() { close(c.quiesce) })
		close(c.closed)
	}()
	return c
}

// counters are a child's running totals, reported to the demo every second
// as a lineStats line of name=value pairs.
type counters struct {
	mu sync.Mutex
	m  map[string]*atomic.Int64
	// poll, when set, is called before each report, to copy figures kept
	// elsewhere into the counters.
	poll func(c *counters)
}

func newCounters(names ...string) *counters {
	c := &counters{m: make(map[string]*atomic.Int64)}
	for _, n := range names {
		c.m[n] = new(atomic.Int64)
	}
	return c
}

func (c *counters) add(name string, n int64) {
	c.mu.Lock()
	v := c.m[name]
	if v == nil {
		v = new(atomic.Int64)
		c.m[name] = v
	}
	c.mu.Unlock()
	v.Add(n)
}

func (c *counters) set(name string, n int64) {
	c.mu.Lock()
	v := c.m[name]
	if v == nil {
		v = new(atomic.Int64)
		c.m[name] = v
	}
	c.mu.Unlock()
	v.Store(n)
}

func (c *counters) line() string {
	if c.poll != nil {
		c.poll(c)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	var b strings.Builder
	b.WriteString(lineStats)
	for _, k := range slices.Sorted(maps.Keys(c.m)) {
		fmt.Fprintf(&b, " %s=%d", k, c.m[k].Load())
	}
	return b.String()
}

// report writes the counters to w every second until ctx ends, and once
// more then.
func (c *counters) report(ctx context.Context, w *syncWriter) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			w.println(c.line())
			return
		case <-t.C:
			w.println(c.line())
		}
	}
}

// syncWriter serialises the lines a child writes to the demo.
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) println(line string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	fmt.Fprintln(s.w, line)
}
