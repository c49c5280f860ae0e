package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/lonelytrace/lonelytrace/schema"
	"github.com/lonelytrace/lonelytrace/viewer"
)

// Defaults of the demo's flags.
const (
	// DefaultDuration is how long the system runs before the viewer opens.
	DefaultDuration = 20 * time.Second
	// DefaultRate is the notifies per second of all subscribers together.
	DefaultRate = 20.0
	// DefaultSubscribers is the number of subscriber processes: one
	// stateful, one flaky, the rest stateless.
	DefaultSubscribers = 4
	// DefaultBroadcasters is the number of broadcaster processes.
	DefaultBroadcasters = 2
	// DefaultOut is the folder of the trace files.
	DefaultOut = "lonelytrace-demo"
	// DefaultAddr is where the viewer listens.
	DefaultAddr = "127.0.0.1:8080"
)

// Timeouts of the children.
const (
	readyTimeout = 30 * time.Second
	stopTimeout  = 15 * time.Second
	// settle is how long the demo waits between stopping the notifiers
	// and stopping the receivers, for missed messages still on their way.
	settle = 500 * time.Millisecond
)

type options struct {
	duration         time.Duration
	rate             float64
	subscribers      int
	broadcasters     int
	out, addr        string
	noServe          bool
	broadcasterFiles bool
}

func parseOptions(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("pubsub", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.DurationVar(&o.duration, "duration", DefaultDuration, "how long the system runs")
	fs.Float64Var(&o.rate, "rate", DefaultRate, "notifies per second, all subscribers together")
	fs.IntVar(&o.subscribers, "subscribers", DefaultSubscribers, "subscriber processes (at least 2: one stateful, one flaky)")
	fs.IntVar(&o.broadcasters, "broadcasters", DefaultBroadcasters, "broadcaster processes")
	fs.StringVar(&o.out, "out", DefaultOut, "folder for the trace files")
	fs.StringVar(&o.addr, "addr", DefaultAddr, "address of the viewer; loopback only")
	fs.BoolVar(&o.noServe, "no-serve", false, "exit once the files are written instead of serving the viewer")
	fs.BoolVar(&o.broadcasterFiles, "broadcaster-files", false, "let broadcasters keep files of their own, of the spans that do not ride home (send missed)")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	switch {
	case fs.NArg() > 0:
		return o, fmt.Errorf("unexpected arguments %q", fs.Args())
	case o.duration <= 0:
		return o, errors.New("-duration must be positive")
	case o.rate <= 0:
		return o, errors.New("-rate must be positive")
	case o.subscribers < 2:
		return o, errors.New("-subscribers must be at least 2")
	case o.broadcasters < 1:
		return o, errors.New("-broadcasters must be at least 1")
	}
	if !o.noServe {
		if err := checkLoopback(o.addr); err != nil {
			return o, err
		}
	}
	return o, nil
}

func checkLoopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("-addr: %w", err)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return fmt.Errorf("-addr %s: the viewer listens on loopback only", addr)
	}
	return nil
}

// run is the demo: start the processes, let them work, stop them in order,
// list the files and serve the viewer until ctx ends. Ending ctx during the
// run stops it early and skips the viewer.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, err := parseOptions(args, stderr)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(o.out, 0o755); err != nil {
		return err
	}
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	secret := make([]byte, 16)
	_, _ = rand.Read(secret)

	exporters := exporterList()
	local := slices.Contains(exporters, "sqlite")
	brExporters := exporters
	if !o.broadcasterFiles {
		brExporters = slices.DeleteFunc(slices.Clone(exporters), func(n string) bool { return n == "sqlite" })
	}
	if len(brExporters) == 0 {
		brExporters = []string{"none"}
	}
	env := childEnv(hex.EncodeToString(secret))

	var children []*child
	defer func() { stopAll(children, stderr) }()
	start := func(c *child) error {
		children = append(children, c)
		// A file from an earlier run would mix two runs' numbers.
		for _, suffix := range []string{"", "-wal", "-shm"} {
			_ = os.Remove(c.db + suffix)
		}
		return c.start(exe, stdout, stderr)
	}

	var brs []string
	for i := 1; i <= o.broadcasters; i++ {
		name := "broadcaster-" + strconv.Itoa(i)
		c := &child{name: name, role: roleBroadcaster, db: filepath.Join(o.out, name+".db"),
			env: append(slices.Clone(env), "OTEL_TRACES_EXPORTER="+strings.Join(brExporters, ","))}
		if err := start(c); err != nil {
			return err
		}
		brs = append(brs, name+"="+c.url)
	}
	for i := 1; i <= o.subscribers; i++ {
		name := "subscriber-" + strconv.Itoa(i)
		args := []string{"-broadcasters", strings.Join(brs, ","), "-rate", strconv.FormatFloat(o.rate/float64(o.subscribers), 'g', -1, 64)}
		switch i {
		case 1:
			name += "-stateful"
			args = append(args, "-stateful")
		case 2:
			name += "-flaky"
			args = append(args, "-flaky")
		}
		c := &child{name: name, role: roleSubscriber, db: filepath.Join(o.out, name+".db"), args: args, env: env}
		if err := start(c); err != nil {
			return err
		}
	}
	fmt.Fprintf(stdout, "pubsub: %d broadcasters and %d subscribers running for %s at %g notifies/s (Ctrl-C stops early)\n",
		o.broadcasters, o.subscribers, o.duration, o.rate)

	began := time.Now()
	interrupted := false
	tick := time.NewTicker(2 * time.Second)
	timer := time.NewTimer(o.duration)
wait:
	for {
		select {
		case <-ctx.Done():
			interrupted = true
			fmt.Fprintln(stdout, "pubsub: interrupted, stopping")
			break wait
		case <-timer.C:
			break wait
		case <-tick.C:
			fmt.Fprintln(stdout, progress(children, time.Since(began)))
		}
	}
	tick.Stop()
	timer.Stop()

	// Stop the notifiers first, then the receivers, then the broadcasters,
	// so that nothing in flight fails for want of its other end.
	subs := slices.DeleteFunc(slices.Clone(children), func(c *child) bool { return c.role != roleSubscriber })
	for _, c := range subs {
		c.quiesce()
	}
	for _, c := range subs {
		c.waitQuiesced(stopTimeout)
	}
	time.Sleep(settle)
	stopAll(subs, stderr)
	stopAll(children, stderr)
	fmt.Fprintln(stdout, progress(children, time.Since(began)))
	for _, c := range children {
		if c.err != nil {
			return fmt.Errorf("%s: %w", c.name, c.err)
		}
	}

	var files []string
	fmt.Fprintln(stdout, "pubsub: trace files written:")
	for _, c := range children {
		n, err := countSpans(c.db)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("%s: %w", c.db, err)
		}
		files = append(files, c.db)
		fmt.Fprintf(stdout, "  %-40s %7d spans\n", c.db, n)
	}
	if !local {
		fmt.Fprintf(stdout, "  none: OTEL_TRACES_EXPORTER=%s has no sqlite; the spans went to %s\n",
			strings.Join(exporters, ","), otlpEndpoint())
		return nil
	}
	if !o.broadcasterFiles {
		fmt.Fprintln(stdout, "  (broadcasters keep no file: their spans rode home into the subscribers' files; -broadcaster-files keeps the rest)")
	}
	fmt.Fprintf(stdout, "pubsub: view them again later with: go run ./cmd/lonelytrace view %s\n", filepath.Join(o.out, "*.db"))
	if o.noServe || interrupted || len(files) == 0 {
		return nil
	}
	return serve(ctx, o.addr, files, stdout)
}

// serve runs the viewer over files until ctx ends.
func serve(ctx context.Context, addr string, files []string, stdout io.Writer) error {
	v, err := viewer.Open(files...)
	if err != nil {
		return err
	}
	defer v.Close()
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	v.Register(e.Group("/stats"))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("viewer: %w (choose another with -addr)", err)
	}
	srv := &http.Server{Handler: e, ReadHeaderTimeout: 5 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	fmt.Fprintf(stdout, "pubsub: viewer at http://%s/stats/ (Ctrl-C to quit)\n", ln.Addr())
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return srv.Shutdown(sctx)
}

// exporterList is OTEL_TRACES_EXPORTER as otelsetup reads it.
func exporterList() []string {
	v := os.Getenv("OTEL_TRACES_EXPORTER")
	if strings.TrimSpace(v) == "" {
		v = "sqlite"
	}
	var names []string
	for _, n := range strings.Split(v, ",") {
		if n = strings.ToLower(strings.TrimSpace(n)); n != "" && !slices.Contains(names, n) {
			names = append(names, n)
		}
	}
	return names
}

func otlpEndpoint() string {
	for _, k := range []string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT"} {
		if v := os.Getenv(k); v != "" {
			return v
		}
	}
	return "the OTLP default endpoint"
}

// childEnv is the environment of every child: the demo's own, less what
// would make the children alike (OTEL_SERVICE_NAME would give them all one
// name), plus the run's secret.
func childEnv(secret string) []string {
	env := slices.DeleteFunc(os.Environ(), func(kv string) bool {
		k, _, _ := strings.Cut(kv, "=")
		return k == "OTEL_SERVICE_NAME" || k == envRole || k == envSecret || k == "OTEL_TRACES_EXPORTER"
	})
	if v, ok := os.LookupEnv("OTEL_TRACES_EXPORTER"); ok {
		env = append(env, "OTEL_TRACES_EXPORTER="+v)
	}
	return append(env, envSecret+"="+secret)
}

func countSpans(path string) (int64, error) {
	if _, err := os.Stat(path); err != nil {
		return 0, err
	}
	ctx := context.Background()
	db, err := schema.OpenRead(ctx, path)
	if err != nil {
		return 0, err
	}
	defer db.Close()
	var n int64
	err = db.QueryRowContext(ctx, "SELECT count(*) FROM spans").Scan(&n)
	return n, err
}

// progress sums what the subscribers reported.
func progress(children []*child, elapsed time.Duration) string {
	sum := map[string]int64{}
	for _, c := range children {
		if c.role != roleSubscriber {
			continue
		}
		for k, v := range c.snapshot() {
			sum[k] += v
		}
	}
	line := fmt.Sprintf("  %5.1fs  notify %d (%d retries, %d failed)  receive %d (%d failed)  missed %d  subscription ops %d",
		elapsed.Seconds(), sum["notify"], sum["retries"], sum["notify_failed"],
		sum["receive"], sum["receive_failed"], sum["missed"], sum["subscription_ops"])
	if n, ok := sum["spans_returned"]; ok {
		line += fmt.Sprintf("  broadcaster spans ridden home %d", n)
	}
	return line
}

// child is one process of the demo.
type child struct {
	name, role, db string
	args, env      []string

	cmd   *exec.Cmd
	stdin io.WriteCloser
	url   string
	err   error // of the exit, once done is closed

	mu       sync.Mutex
	stats    map[string]int64
	quiesced chan struct{}
	done     chan struct{}
	stopped  bool
}

func (c *child) start(exe string, stdout, stderr io.Writer) error {
	c.quiesced = make(chan struct{})
	c.done = make(chan struct{})
	c.cmd = exec.Command(exe, append([]string{"-name", c.name, "-db", c.db}, c.args...)...)
	c.cmd.Env = append(slices.Clone(c.env), envRole+"="+c.role)
	c.cmd.Stderr = &prefixWriter{prefix: c.name + ": ", w: stderr}
	var err error
	if c.stdin, err = c.cmd.StdinPipe(); err != nil {
		return err
	}
	out, err := c.cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := c.cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", c.name, err)
	}
	ready := make(chan string, 1)
	go func() {
		defer close(c.done)
		var once sync.Once
		s := bufio.NewScanner(out)
		s.Buffer(make([]byte, 64<<10), 16<<20)
		for s.Scan() {
			line := s.Text()
			word, rest, _ := strings.Cut(line, " ")
			switch word {
			case lineReady:
				ready <- rest
			case lineStats:
				c.setStats(rest)
			case lineQuiesced:
				once.Do(func() { close(c.quiesced) })
			default:
				// Anything else (OTEL_TRACES_EXPORTER=console) is the user's.
				fmt.Fprintln(stdout, line)
			}
		}
		once.Do(func() { close(c.quiesced) })
		c.err = c.cmd.Wait()
	}()
	select {
	case c.url = <-ready:
		return nil
	case <-c.done:
		return fmt.Errorf("%s exited before it was ready: %v", c.name, c.err)
	case <-time.After(readyTimeout):
		return fmt.Errorf("%s not ready after %s", c.name, readyTimeout)
	}
}

func (c *child) setStats(s string) {
	m := map[string]int64{}
	for _, f := range strings.Fields(s) {
		k, v, _ := strings.Cut(f, "=")
		n, _ := strconv.ParseInt(v, 10, 64)
		m[k] = n
	}
	c.mu.Lock()
	c.stats = m
	c.mu.Unlock()
}

func (c *child) snapshot() map[string]int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stats
}

func (c *child) quiesce() {
	_, _ = io.WriteString(c.stdin, cmdQuiesce+"\n")
}

func (c *child) waitQuiesced(d time.Duration) {
	select {
	case <-c.quiesced:
	case <-time.After(d):
	}
}

// stop asks the child to shut down (it flushes its spans) by closing its
// stdin, and kills it if it has not exited within stopTimeout.
func (c *child) stop(stderr io.Writer) {
	c.mu.Lock()
	already := c.stopped
	c.stopped = true
	c.mu.Unlock()
	if already || c.cmd == nil || c.cmd.Process == nil {
		return
	}
	_ = c.stdin.Close()
	select {
	case <-c.done:
	case <-time.After(stopTimeout):
		fmt.Fprintf(stderr, "pubsub: %s did not stop within %s; killing it\n", c.name, stopTimeout)
		_ = c.cmd.Process.Kill()
		<-c.done
	}
}

// stopAll stops children concurrently and waits for all of them.
func stopAll(children []*child, stderr io.Writer) {
	var wg sync.WaitGroup
	for _, c := range children {
		wg.Go(func() { c.stop(stderr) })
	}
	wg.Wait()
}

// prefixWriter writes each line of a child's stderr with its name.
type prefixWriter struct {
	prefix string
	w      io.Writer
	mu     sync.Mutex
	buf    []byte
}

func (p *prefixWriter) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.buf = append(p.buf, b...)
	for {
		i := slices.Index(p.buf, '\n')
		if i < 0 {
			break
		}
		fmt.Fprintf(p.w, "%s%s\n", p.prefix, p.buf[:i])
		p.buf = p.buf[i+1:]
	}
	return len(b), nil
}
