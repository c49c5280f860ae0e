package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"path"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/lonelytrace/lonelytrace/exporter/spanreturn"
	"github.com/lonelytrace/lonelytrace/otelsetup"
	"github.com/lonelytrace/lonelytrace/schema"
)

// Behaviour of a broadcaster.
const (
	// busyRate is the share of notifies a broadcaster turns away as too
	// busy, so that notifiers retry.
	busyRate = 0.05
	// deliveryAttempts is how often a broadcaster tries to deliver a
	// message to one subscriber before it schedules a missed message.
	deliveryAttempts = 2
	// missedDelay is how long after the failed delivery the missed message
	// goes to the subscriber's recovery URL.
	missedDelay = 50 * time.Millisecond
	// deliveryTimeout bounds one delivery attempt.
	deliveryTimeout = 2 * time.Second
)

// broadcaster stores subscriptions and relays notifies to subscribers.
type broadcaster struct {
	name   string
	secret string
	client *http.Client
	proc   *spanreturn.Processor
	stats  *counters

	mu   sync.Mutex
	subs map[string]*subscription // by receive URL, or "ws:N" for a connection

	wsSeq  atomic.Uint64
	missed sync.WaitGroup
}

// subscription is what a broadcaster knows of one subscriber.
type subscription struct {
	key, url, recovery string
	exact, globs       map[string]bool
	conn               *wsPeer // nil for a stateless subscriber
}

func runBroadcaster(ctx context.Context, cfg childConfig, ctl *control, stdout io.Writer) (err error) {
	// The span-return processor holds the spans of each request that
	// asks until its answer, which carries them home to the subscriber;
	// the spans that do not ride home go to this process's exporters.
	var proc *spanreturn.Processor
	shutdown, err := startTracing(ctx, cfg, otelsetup.WithSpanReturnServer(func(p *spanreturn.Processor) { proc = p }))
	if err != nil {
		return err
	}
	defer func() {
		if e := shutdown(); e != nil && err == nil {
			err = e
		}
	}()

	b := &broadcaster{
		name:   cfg.name,
		secret: cfg.secret,
		client: &http.Client{Transport: newTransport(), Timeout: deliveryTimeout},
		proc:   proc,
		stats:  newCounters("notifies", "busy", "deliveries", "failed_deliveries", "missed_sent", "subscription_changes"),
		subs:   make(map[string]*subscription),
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := newServer(b.handler(otel.GetTracerProvider()))
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()

	out := &syncWriter{w: stdout}
	out.println(lineReady + " http://" + ln.Addr().String())
	rctx, stopReport := context.WithCancel(context.Background())
	reported := make(chan struct{})
	go func() { b.stats.report(rctx, out); close(reported) }()

	select {
	case <-ctx.Done():
	case err = <-serveErr:
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if e := srv.Shutdown(sctx); e != nil && err == nil {
		err = e
	}
	b.closeConns()
	b.missed.Wait()
	stopReport()
	<-reported
	return err
}

func (b *broadcaster) handler(tp trace.TracerProvider) http.Handler {
	// The middleware goes on each route, inside the mux, so that the
	// route's pattern names the request's server span.
	withSpans := func(h http.Handler) http.Handler { return h }
	if b.proc != nil { // nil with OTEL_SDK_DISABLED=true
		withSpans = b.proc.Middleware(tp)
	}
	mux := http.NewServeMux()
	mux.Handle("POST "+pathNotify, withSpans(http.HandlerFunc(b.serveNotify)))
	for op, path := range opPaths {
		mux.Handle("POST "+path, withSpans(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { b.serveSubscription(w, r, op) })))
	}
	// A websocket lives as long as its subscriber: each of its frames gets
	// a server span of its own instead of one for the connection.
	mux.HandleFunc("GET "+pathWebsocket, b.serveWebsocket)
	return mux
}

// opPaths are the broadcaster's paths of the subscription operations.
var opPaths = map[string]string{
	schema.OpSubscribeExact:   pathSubscribeExact,
	schema.OpSubscribeGlob:    pathSubscribeGlob,
	schema.OpUnsubscribeExact: pathUnsubscribeExact,
	schema.OpUnsubscribeGlob:  pathUnsubscribeGlob,
	schema.OpSetSubscriptions: pathSetSubscriptions,
}

func (b *broadcaster) serveNotify(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		http.Error(w, err.Error(), http.StatusRequestEntityTooLarge)
		return
	}
	n, status, err := b.notify(r.Context(), r.Header.Get(headerTopic), body, r.Header.Get(headerHash), r.Header.Get(headerAuth))
	if err != nil {
		fail(trace.SpanFromContext(r.Context()), err)
		http.Error(w, err.Error(), status)
		return
	}
	writeJSON(w, notifyAnswer{Subscribers: n})
}

// notify relays one message to every matching subscriber and returns how
// many confirmed it, or an HTTP status and error.
func (b *broadcaster) notify(ctx context.Context, topic string, body []byte, hash, auth string) (int, int, error) {
	b.stats.add("notifies", 1)
	span := trace.SpanFromContext(ctx)
	span.SetAttributes(schema.Topic(topic), schema.BodySize(len(body)), schema.Broadcaster(b.name))
	if rand.Float64() < busyRate {
		b.stats.add("busy", 1)
		span.AddEvent("too busy")
		return 0, http.StatusServiceUnavailable, BusyError{}
	}

	_, auspan := tracer().Start(ctx, "auth")
	ok := verify(b.secret, topic, hash, auth) && bodyHash(body) == hash
	if !ok {
		fail(auspan, errBadSignature)
	}
	auspan.End()
	if !ok {
		return 0, http.StatusUnauthorized, errBadSignature
	}

	_, fspan := tracer().Start(ctx, "find subscribers")
	targets, exact, glob := b.match(topic)
	fspan.SetAttributes(attribute.Int("pubsub.exact_matches", exact), attribute.Int("pubsub.glob_matches", glob))
	fspan.End()

	reached := 0
	for _, s := range targets {
		if b.deliver(ctx, s, topic, body, hash, auth) {
			reached++
		}
	}
	span.SetAttributes(schema.Subscribers(reached))
	return reached, 0, nil
}

// match returns the subscribers of topic, each once, and how many matched
// by an exact topic and by a glob.
func (b *broadcaster) match(topic string) (subs []*subscription, exact, glob int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, s := range b.subs {
		if s.exact[topic] {
			exact++
			subs = append(subs, s)
			continue
		}
		for g := range s.globs {
			if ok, _ := path.Match(g, topic); ok {
				glob++
				subs = append(subs, s)
				break
			}
		}
	}
	slices.SortFunc(subs, func(a, c *subscription) int { return strings.Compare(a.key, c.key) })
	return subs, exact, glob
}

// deliver sends one message to one subscriber, retrying once, and
// schedules a missed message to its recovery URL when every attempt fails.
func (b *broadcaster) deliver(ctx context.Context, s *subscription, topic string, body []byte, hash, auth string) bool {
	for attempt := 1; attempt <= deliveryAttempts; attempt++ {
		b.stats.add("deliveries", 1)
		sctx, span := tracer().Start(ctx, "send receive",
			trace.WithSpanKind(trace.SpanKindProducer),
			trace.WithAttributes(
				attribute.String("pubsub.subscriber", s.key),
				attribute.Int("pubsub.attempt", attempt),
				schema.Stateful(s.conn != nil)))
		var confirm func() error
		var err error
		if s.conn != nil {
			confirm, err = s.conn.deliver(sctx, b.name, topic, body, hash, auth)
		} else {
			confirm, err = b.deliverHTTP(sctx, s.url, topic, body, hash, auth)
		}
		if err != nil {
			fail(span, err)
		}
		span.End()
		if err == nil {
			_, cspan := tracer().Start(ctx, "receive confirmed")
			err = confirm()
			if err != nil {
				fail(cspan, err)
			}
			cspan.End()
			if err == nil {
				return true
			}
		}
		b.stats.add("failed_deliveries", 1)
		if attempt < deliveryAttempts {
			_, wspan := tracer().Start(ctx, "waiting to retry")
			time.Sleep(time.Duration(5+rand.IntN(20)) * time.Millisecond)
			wspan.End()
		}
	}
	_, mspan := tracer().Start(ctx, "schedule missed", trace.WithAttributes(attribute.String("pubsub.recovery", s.recovery)))
	link := trace.Link{SpanContext: mspan.SpanContext()}
	b.missed.Add(1)
	go b.sendMissed(s.recovery, topic, link)
	mspan.End()
	return false
}

// deliverHTTP posts a message to a stateless subscriber and returns how to
// check its confirmation.
func (b *broadcaster) deliverHTTP(ctx context.Context, url, topic string, body []byte, hash, auth string) (func() error, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set(headerTopic, topic)
	req.Header.Set(headerHash, hash)
	req.Header.Set(headerAuth, auth)
	req.Header.Set(headerBroadcaster, b.name)
	injectHeaders(ctx, req.Header)
	resp, err := b.client.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		drain(resp)
		return nil, StatusError{Op: "receive", Status: resp.Status}
	}
	return func() error {
		defer drain(resp)
		var c struct {
			Confirmed bool `json:"confirmed"`
		}
		if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<10)).Decode(&c); err != nil {
			return AnswerError{Op: "receive", Err: err}
		}
		if !c.Confirmed {
			return NotConfirmedError{}
		}
		return nil
	}, nil
}

// sendMissed tells a subscriber, at its recovery URL, that it may have
// missed a message on topic. It runs after the notify was answered, so its
// span starts a trace of its own, linked to the notify's.
func (b *broadcaster) sendMissed(recovery, topic string, link trace.Link) {
	defer b.missed.Done()
	time.Sleep(missedDelay)
	ctx, span := tracer().Start(context.Background(), "send missed",
		trace.WithSpanKind(trace.SpanKindProducer),
		trace.WithLinks(link),
		trace.WithAttributes(schema.Topic(topic), schema.Broadcaster(b.name)))
	defer span.End()
	data, _ := json.Marshal(missedMessage{Topic: topic, Broadcaster: b.name})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, recovery, bytes.NewReader(data))
	if err != nil {
		fail(span, err)
		return
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(headerAuth, sign(b.secret, schema.OpMissed, bodyHash(data)))
	injectHeaders(ctx, req.Header)
	resp, err := b.client.Do(req)
	if err != nil {
		fail(span, err)
		return
	}
	drain(resp)
	if resp.StatusCode != http.StatusOK {
		fail(span, StatusError{Op: "missed", Status: resp.Status})
		return
	}
	b.stats.add("missed_sent", 1)
}

func (b *broadcaster) serveSubscription(w http.ResponseWriter, r *http.Request, op string) {
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 64<<10))
	if err != nil {
		http.Error(w, err.Error(), http.StatusRequestEntityTooLarge)
		return
	}
	var req subscriptionRequest
	if err := json.Unmarshal(data, &req); err != nil || req.URL == "" {
		http.Error(w, "bad subscription request", http.StatusBadRequest)
		return
	}
	ans, status, err := b.subscription(r.Context(), op, req, data, r.Header.Get(headerAuth), nil)
	if err != nil {
		fail(trace.SpanFromContext(r.Context()), err)
		http.Error(w, err.Error(), status)
		return
	}
	writeJSON(w, ans)
}

// subscription applies one subscription operation. data is the request as
// signed; conn is the connection of a stateful subscriber.
func (b *broadcaster) subscription(ctx context.Context, op string, req subscriptionRequest, data []byte, auth string, conn *wsPeer) (setAnswer, int, error) {
	b.stats.add("subscription_changes", 1)
	span := trace.SpanFromContext(ctx)
	span.SetAttributes(schema.Operation(op), schema.Broadcaster(b.name))

	_, auspan := tracer().Start(ctx, "auth")
	ok := verify(b.secret, op, bodyHash(data), auth)
	if !ok {
		fail(auspan, errBadSignature)
	}
	auspan.End()
	if !ok {
		return setAnswer{}, http.StatusUnauthorized, errBadSignature
	}

	key := req.URL
	if conn != nil {
		key = conn.key
	}
	var ans setAnswer
	if op == schema.OpSetSubscriptions {
		_, espan := tracer().Start(ctx, "check etag")
		ans.ETag = etagOf(req.Exact, req.Globs)
		if ans.ETag != req.ETag {
			err := ETagError{Got: req.ETag, Want: ans.ETag}
			fail(espan, err)
			espan.End()
			return setAnswer{}, http.StatusPreconditionFailed, err
		}
		b.mu.Lock()
		if s := b.subs[key]; s != nil && etagOf(keys(s.exact), keys(s.globs)) == ans.ETag {
			ans.Unchanged = true
		}
		b.mu.Unlock()
		espan.SetAttributes(attribute.Bool("pubsub.unchanged", ans.Unchanged))
		espan.End()
	}

	_, sspan := tracer().Start(ctx, "store subscriptions")
	defer sspan.End()
	b.mu.Lock()
	defer b.mu.Unlock()
	s := b.subs[key]
	if s == nil {
		s = &subscription{key: key, url: req.URL, exact: map[string]bool{}, globs: map[string]bool{}, conn: conn}
		b.subs[key] = s
	}
	s.recovery = req.Recovery
	switch op {
	case schema.OpSubscribeExact:
		s.exact[req.Topic] = true
	case schema.OpSubscribeGlob:
		s.globs[req.Glob] = true
	case schema.OpUnsubscribeExact:
		delete(s.exact, req.Topic)
	case schema.OpUnsubscribeGlob:
		delete(s.globs, req.Glob)
	case schema.OpSetSubscriptions:
		s.exact, s.globs = set(req.Exact), set(req.Globs)
	}
	sspan.SetAttributes(attribute.Int("pubsub.exact", len(s.exact)), attribute.Int("pubsub.globs", len(s.globs)))
	return ans, 0, nil
}

// serveWebsocket holds the connection of a stateful subscriber: its
// requests arrive as frames, and its messages leave as frames.
func (b *broadcaster) serveWebsocket(w http.ResponseWriter, r *http.Request) {
	c, err := websocket.Accept(w, r, nil)
	if err != nil {
		return
	}
	c.SetReadLimit(2 * maxBody)
	p := newPeer(c, "ws:"+strconv.FormatUint(b.wsSeq.Add(1), 10))
	defer func() {
		b.mu.Lock()
		delete(b.subs, p.key)
		b.mu.Unlock()
		p.close(websocket.StatusGoingAway, "bye")
	}()
	b.mu.Lock()
	b.subs[p.key] = &subscription{key: p.key, exact: map[string]bool{}, globs: map[string]bool{}, conn: p}
	b.mu.Unlock()

	ctx := r.Context()
	var wg sync.WaitGroup
	defer wg.Wait()
	p.readLoop(ctx, func(f frame) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			b.serveFrame(ctx, p, f)
		}()
	})
}

// serveFrame answers one request of a stateful subscriber, with the spans
// of the request in the answer when it asked for them.
func (b *broadcaster) serveFrame(ctx context.Context, p *wsPeer, f frame) {
	ctx = extractFrame(ctx, f.Trace)
	ctx, span := tracer().Start(ctx, "ws "+f.Type,
		trace.WithSpanKind(trace.SpanKindServer),
		trace.WithAttributes(schema.Stateful(true)))
	var g *spanreturn.Gather
	if f.ReturnSpans && b.proc != nil {
		g = b.proc.Begin(span)
	}
	ans := frame{Type: frameAnswer, ID: f.ID}
	switch f.Type {
	case frameNotify:
		n, _, err := b.notify(ctx, f.Topic, f.Body, f.Hash, f.Auth)
		ans.Subscribers = n
		if err != nil {
			ans.Error = err.Error()
		}
	default:
		if !schema.IsOperation(f.Type) || f.Sub == nil {
			ans.Error = "unknown request " + strconv.Quote(f.Type)
			break
		}
		data, _ := json.Marshal(f.Sub)
		sa, _, err := b.subscription(ctx, f.Type, *f.Sub, data, f.Auth, p)
		ans.ETag = sa.ETag
		if err != nil {
			ans.Error = err.Error()
		}
	}
	if ans.Error != "" {
		fail(span, PeerError{Msg: ans.Error})
	}
	ans.Spans = g.Finish()
	span.End()
	_ = p.write(ctx, ans)
}

func (b *broadcaster) closeConns() {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, s := range b.subs {
		if s.conn != nil {
			s.conn.close(websocket.StatusGoingAway, "broadcaster shutting down")
		}
	}
}

func set(xs []string) map[string]bool {
	m := make(map[string]bool, len(xs))
	for _, x := range xs {
		m[x] = true
	}
	return m
}

func keys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

func writeJSON(w http.ResponseWriter, v any) {
	data, err := json.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(data)
}

func drain(resp *http.Response) {
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
}

func newTransport() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = 64
	return t
}

func newServer(h http.Handler) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		IdleTimeout:       30 * time.Second,
	}
}
