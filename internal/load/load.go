// Package load drives a tracing pipeline with a pub/sub client's spans, at
// a fixed rate or flat out, and measures what it costs: spans produced and
// stored per second, drops, CPU per span, resident memory and bytes on
// disk. Besides lonelytrace's own pipeline (otelsetup.Start with the
// SQLite exporter) it runs the yardsticks of the performance targets: the
// SDK's batch processor with a discarding exporter, plain SQLite inserts
// behind the same processor, and OTLP/HTTP export to a receiver on
// loopback.
//
//	res, err := load.Run(ctx, load.Lonelytrace, load.WithRate(50_000), load.WithDuration(time.Minute))
//	cmp, err := load.Compare(ctx, load.WithDuration(10*time.Second))
//
// It backs the lonelytrace load command and soak tests.
package load

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/lonelytrace/lonelytrace/schema"
)

// Mode names a pipeline Run can drive.
type Mode string

// The pipelines.
const (
	// Lonelytrace is otelsetup.Start with the SQLite exporter, defaults
	// and all.
	Lonelytrace Mode = "lonelytrace"
	// Discard is the SDK batch processor, with otelsetup's settings for
	// SQLite, in front of an exporter that throws the spans away: the
	// SDK's own cost.
	Discard Mode = "discard"
	// Plain is the same processor in front of an exporter that inserts
	// each span as one row, with a prepared statement, into a table of 10
	// columns and no index, 512 rows per transaction, on a goroutine of
	// its own.
	Plain Mode = "plain"
	// OTLP is the SDK's default batch processor in front of the OTLP/HTTP
	// exporter, sending to a receiver in this process on 127.0.0.1 that
	// decodes every request.
	OTLP Mode = "otlp"
)

// Modes lists every mode in the order Compare runs them.
var Modes = [...]Mode{Lonelytrace, Discard, Plain, OTLP}

// Result is what one run measured.
type Result struct {
	Mode      Mode    `json:"mode"`
	Rate      float64 `json:"rate"` // spans/s asked for; 0 is flat out
	Producers int     `json:"producers"`
	// Duration is how long the producers ran; Elapsed runs on until the
	// pipeline's shutdown has stored everything it kept.
	Duration time.Duration `json:"duration_ns"`
	Elapsed  time.Duration `json:"elapsed_ns"`

	// Produced counts the spans started and ended. Stored counts those the
	// pipeline kept: committed rows, spans handed to the discarding
	// exporter, spans the OTLP receiver decoded. Dropped and Failed are
	// the exporter's own counts (a full queue; a failed transaction).
	// SDKDropped is the rest, Produced - Stored - Dropped - Failed after
	// shutdown: the spans the SDK batch processor dropped when its queue
	// was full, which it does not report (and for OTLP, failed requests).
	Produced   int64 `json:"produced"`
	Stored     int64 `json:"stored"`
	Dropped    int64 `json:"dropped"`
	Failed     int64 `json:"failed"`
	SDKDropped int64 `json:"sdk_dropped"`

	// ProducedPerSec is Produced over Duration; StoredPerSec is Stored
	// over Elapsed, so that a queue still draining after the producers
	// stopped does not count as ingest.
	ProducedPerSec float64 `json:"produced_per_s"`
	StoredPerSec   float64 `json:"stored_per_s"`

	// CPUPerSpan is the CPU time of the whole process from the first span
	// to the end of shutdown, over Produced: producers, SDK, exporter,
	// writer and SQLite, garbage collection. For OTLP it includes the
	// in-process receiver, measured apart in ReceiverCPUPerSpan.
	CPUPerSpan         time.Duration `json:"cpu_ns_per_span"`
	ReceiverCPUPerSpan time.Duration `json:"receiver_cpu_ns_per_span,omitempty"`
	// ProducerPerSpan is the wall time the producer goroutines spent in
	// their loops (not in their pauses between ticks), over Produced: what
	// the application waits for per span, preemption by the pipeline's
	// own goroutines included.
	ProducerPerSpan time.Duration `json:"producer_ns_per_span"`
	// ProducerCPUPerSpan is the CPU time of the producers' threads (each
	// producer is locked to one), over Produced: what the application's
	// own threads spend per span, garbage-collection assists included,
	// time spent waiting for a core not. Zero where it cannot be measured.
	ProducerCPUPerSpan time.Duration `json:"producer_cpu_ns_per_span"`

	// PeakRSS is the process's VmHWM at the end; PeakReset says whether it
	// was reset at the start of the run (else it is the peak since the
	// process started). RSSMin, RSSMedian and RSSMax summarise VmRSS
	// sampled every second after the first 5 s of producing.
	PeakRSS    int64 `json:"peak_rss"`
	PeakReset  bool  `json:"peak_reset"`
	RSSSamples int   `json:"rss_samples"`
	RSSMin     int64 `json:"rss_min"`
	RSSMedian  int64 `json:"rss_median"`
	RSSMax     int64 `json:"rss_max"`

	// File is the database written (lonelytrace and plain), FileBytes its
	// size with its -wal after shutdown, FileSpans the rows of its spans
	// table (all runs', and fewer than stored once retention trims), and
	// BytesPerSpan FileBytes over FileSpans. For OTLP, BytesPerSpan is
	// the request bodies' bytes over Stored: the protobuf on the wire.
	File         string  `json:"file,omitempty"`
	FileBytes    int64   `json:"file_bytes,omitempty"`
	FileSpans    int64   `json:"file_spans,omitempty"`
	BytesPerSpan float64 `json:"bytes_per_span"`

	// LoadStart and LoadEnd are the machine's one-minute load averages
	// before and after the run, GOMAXPROCS the Go processors.
	LoadStart  float64 `json:"load_start"`
	LoadEnd    float64 `json:"load_end"`
	GOMAXPROCS int     `json:"gomaxprocs"`
}

// Progress is reported about once a second during a run.
type Progress struct {
	Mode    Mode
	Elapsed time.Duration
	// Produced, Stored and Dropped are the totals so far (Dropped as the
	// exporter counts them); the rates are over the last interval.
	Produced, Stored, Dropped    int64
	ProducedPerSec, StoredPerSec float64
	RSS                          int64
}

// pipeline is one mode set up and ready for spans.
type pipeline struct {
	tracer trace.Tracer
	// counts returns the spans stored, dropped and failed so far.
	counts   func() (stored, dropped, failed int64)
	shutdown func(context.Context) error
	// file is the database written, if any; wire the OTLP bytes received.
	file        string
	wire        func() int64
	receiverCPU func() time.Duration
}

// Run drives mode for the configured duration (or number of spans) and
// reports what it measured. Lonelytrace mode calls otelsetup.Start, which
// sets the global tracer provider, and needs OTEL_TRACES_EXPORTER unset or
// "sqlite". Cancelling ctx stops the producers early; the result is still
// measured.
func Run(ctx context.Context, mode Mode, opts ...Option) (Result, error) {
	cfg := newConfig(opts)
	if cfg.duration == 0 && cfg.spans == 0 {
		return Result{}, errors.New("load: neither a duration nor a number of spans given")
	}
	dir := cfg.dir
	if dir == "" {
		tmp, err := os.MkdirTemp("", "lonelytrace-load-")
		if err != nil {
			return Result{}, fmt.Errorf("load: %w", err)
		}
		defer os.RemoveAll(tmp)
		dir = tmp
	}
	// Each mode starts from the memory the previous one left behind, not
	// from its garbage.
	runtime.GC()
	debug.FreeOSMemory()

	res := Result{Mode: mode, Rate: cfg.rate, Producers: cfg.producers, GOMAXPROCS: runtime.GOMAXPROCS(0), LoadStart: loadAverage()}
	var p pipeline
	var err error
	switch mode {
	case Lonelytrace:
		p, err = startLonelytrace(ctx, filepath.Join(dir, "lonelytrace.db"))
	case Discard:
		p = startDiscard()
	case Plain:
		p, err = startPlain(filepath.Join(dir, "plain.db"))
	case OTLP:
		if cfg.otlpEndpoint != "" {
			p, err = startOTLPTo(ctx, cfg.otlpEndpoint)
		} else {
			p, err = startOTLP(ctx)
		}
	default:
		return res, fmt.Errorf("load: unknown mode %q (want one of %v)", mode, Modes)
	}
	if err != nil {
		return res, fmt.Errorf("load: start %s: %w", mode, err)
	}
	res.PeakReset = resetPeakRSS()

	w := newWorkload(p.tracer, cfg)
	cpu0 := processCPU()
	start := time.Now()

	// The sampler reports progress and samples the resident set until the
	// pipeline has shut down.
	samplerDone := make(chan struct{})
	var samples []int64
	var samplerWG sync.WaitGroup
	samplerWG.Go(func() {
		t := time.NewTicker(time.Second)
		defer t.Stop()
		var lastProduced, lastStored int64
		last := start
		for {
			select {
			case <-samplerDone:
				return
			case now := <-t.C:
				produced := w.produced()
				stored, dropped, _ := p.counts()
				rss, _ := memory()
				if !w.stopped.Load() && now.Sub(start) > 5*time.Second {
					samples = append(samples, rss)
				}
				if cfg.progress != nil {
					secs := now.Sub(last).Seconds()
					cfg.progress(Progress{Mode: mode, Elapsed: now.Sub(start),
						Produced: produced, Stored: stored, Dropped: dropped,
						ProducedPerSec: float64(produced-lastProduced) / secs,
						StoredPerSec:   float64(stored-lastStored) / secs, RSS: rss})
				}
				last, lastProduced, lastStored = now, produced, stored
			}
		}
	})

	w.run(ctx, start)
	res.Duration = time.Since(start)
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.shutdownTimeout)
	serr := p.shutdown(sctx)
	cancel()
	res.Elapsed = time.Since(start)
	cpu := processCPU() - cpu0
	close(samplerDone)
	samplerWG.Wait()

	res.Produced = w.produced()
	res.Stored, res.Dropped, res.Failed = p.counts()
	res.SDKDropped = res.Produced - res.Stored - res.Dropped - res.Failed
	res.ProducedPerSec = float64(res.Produced) / res.Duration.Seconds()
	res.StoredPerSec = float64(res.Stored) / res.Elapsed.Seconds()
	if res.Produced > 0 {
		res.CPUPerSpan = cpu / time.Duration(res.Produced)
		res.ProducerPerSpan = w.busy() / time.Duration(res.Produced)
		res.ProducerCPUPerSpan = w.cpu() / time.Duration(res.Produced)
		if p.receiverCPU != nil {
			res.ReceiverCPUPerSpan = p.receiverCPU() / time.Duration(res.Produced)
		}
	}
	_, res.PeakRSS = memory()
	if len(samples) > 0 {
		slices.Sort(samples)
		res.RSSSamples = len(samples)
		res.RSSMin, res.RSSMedian, res.RSSMax = samples[0], samples[len(samples)/2], samples[len(samples)-1]
	}
	if p.file != "" {
		if cfg.dir != "" {
			res.File = p.file
		}
		res.FileBytes = fileSize(p.file)
		n, err := countSpans(ctx, p.file)
		if err != nil && serr == nil {
			serr = err
		}
		if res.FileSpans = n; n > 0 {
			res.BytesPerSpan = float64(res.FileBytes) / float64(n)
		}
	}
	if p.wire != nil && res.Stored > 0 {
		res.BytesPerSpan = float64(p.wire()) / float64(res.Stored)
	}
	res.LoadEnd = loadAverage()
	if serr != nil {
		return res, fmt.Errorf("load: shut down %s: %w", mode, serr)
	}
	return res, nil
}

// countSpans counts the rows of the spans table that both the trace file
// and the plain yardstick have, on a read-only connection of its own.
func countSpans(ctx context.Context, path string) (int64, error) {
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		return 0, err
	}
	defer db.Close()
	var n int64
	if err := db.QueryRowContext(context.WithoutCancel(ctx), "SELECT count(*) FROM spans").Scan(&n); err != nil {
		return 0, fmt.Errorf("count spans in %s: %w", path, err)
	}
	return n, nil
}

// fileSize is the size of a SQLite file with its write-ahead log.
func fileSize(path string) int64 {
	if path == "" {
		return 0
	}
	var n int64
	for _, p := range []string{path, path + "-wal"} {
		if fi, err := os.Stat(p); err == nil {
			n += fi.Size()
		}
	}
	return n
}

// The workload is the one of the exporter's benchmarks: traces of one
// notify span and three child spans, each started, given four attributes
// and ended, as an instrumented pub/sub client does.
const spansPerTrace = 4

var topics = [...]string{"orders/eu", "orders/us", "stock/levels", "users/signup"}

func recordTrace(tr trace.Tracer, n int) {
	ctx, root := tr.Start(context.Background(), "notify", schema.Notify(topics[n%len(topics)], n%4096, "127.0.0.1:3003"))
	for i := 1; i < spansPerTrace; i++ {
		_, s := tr.Start(ctx, "send request")
		s.SetAttributes(attribute.String("http.request.method", "POST"), attribute.Int("http.response.status_code", 200),
			attribute.String("url.full", "http://127.0.0.1:3003/v1/notify"), attribute.Int("attempt", i%3))
		s.End()
	}
	root.End()
}

// workload runs the producers.
type workload struct {
	tracer    trace.Tracer
	cfg       config
	counters  []counter
	claimed   atomic.Int64 // spans claimed against cfg.spans
	stopped   atomic.Bool
	stop      chan struct{}
	stopOnce  sync.Once
	producers sync.WaitGroup
}

// counter is one producer's, padded to a cache line of its own so that
// producers do not slow each other down by counting.
type counter struct {
	spans atomic.Int64
	busy  atomic.Int64 // ns in the producing loop
	cpu   atomic.Int64 // ns of CPU of the producer's thread
	_     [40]byte
}

func newWorkload(tr trace.Tracer, cfg config) *workload {
	return &workload{tracer: tr, cfg: cfg, counters: make([]counter, cfg.producers), stop: make(chan struct{})}
}

func (w *workload) produced() int64 {
	var n int64
	for i := range w.counters {
		n += w.counters[i].spans.Load()
	}
	return n
}

func (w *workload) busy() time.Duration {
	var n int64
	for i := range w.counters {
		n += w.counters[i].busy.Load()
	}
	return time.Duration(n)
}

func (w *workload) cpu() time.Duration {
	var n int64
	for i := range w.counters {
		n += w.counters[i].cpu.Load()
	}
	return time.Duration(n)
}

func (w *workload) halt() {
	w.stopOnce.Do(func() {
		w.stopped.Store(true)
		close(w.stop)
	})
}

// run starts the producers and returns when they have stopped: at the
// duration's end, when ctx is done, or when all spans are claimed.
func (w *workload) run(ctx context.Context, start time.Time) {
	for i := range w.counters {
		w.producers.Go(func() { w.produce(&w.counters[i], i, start) })
	}
	finished := make(chan struct{})
	go func() { w.producers.Wait(); close(finished) }()
	var deadline <-chan time.Time
	if w.cfg.duration > 0 {
		t := time.NewTimer(w.cfg.duration - time.Since(start))
		defer t.Stop()
		deadline = t.C
	}
	select {
	case <-deadline:
	case <-ctx.Done():
	case <-finished:
	}
	w.halt()
	<-finished
}

// claim reports whether one more trace may be produced under the span
// limit, and stops everyone once it is reached.
func (w *workload) claim() bool {
	if w.stopped.Load() {
		return false
	}
	if w.cfg.spans > 0 && w.claimed.Add(spansPerTrace)-spansPerTrace >= w.cfg.spans {
		w.halt()
		return false
	}
	return true
}

func (w *workload) produce(c *counter, id int, start time.Time) {
	// Producers number their traces apart, so that topics and body sizes
	// vary alike whatever their number.
	n := id
	step := len(w.counters)
	// Locked to its thread, the producer's CPU time is the thread's.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	cpu0 := threadCPU()
	defer func() { c.cpu.Add(int64(threadCPU() - cpu0)) }()
	if w.cfg.rate == 0 {
		t0 := time.Now()
		for w.claim() {
			recordTrace(w.tracer, n)
			n += step
			c.spans.Add(spansPerTrace)
		}
		c.busy.Add(int64(time.Since(t0)))
		return
	}
	// Paced: at every tick, catch up with where the rate says this
	// producer should be by now. Targets come from the time since start,
	// not from counting ticks, so that late ticks do not lose spans.
	perSecond := w.cfg.rate / float64(len(w.counters))
	tick := time.NewTicker(w.cfg.tick)
	defer tick.Stop()
	var done int64
	for {
		target := int64(perSecond * time.Since(start).Seconds())
		t0 := time.Now()
		for done+spansPerTrace <= target && w.claim() {
			recordTrace(w.tracer, n)
			n += step
			done += spansPerTrace
			c.spans.Add(spansPerTrace)
		}
		c.busy.Add(int64(time.Since(t0)))
		select {
		case <-w.stop:
			return
		case <-tick.C:
		}
	}
}

// envExporters checks that OTEL_TRACES_EXPORTER lets otelsetup build the
// SQLite exporter and nothing else.
func envExporters() error {
	v := strings.ToLower(strings.TrimSpace(os.Getenv("OTEL_TRACES_EXPORTER")))
	if v != "" && v != "sqlite" {
		return fmt.Errorf("OTEL_TRACES_EXPORTER=%q: the load measures the sqlite pipeline alone; unset it or set it to sqlite", v)
	}
	return nil
}
