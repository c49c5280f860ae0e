package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/lonelytrace/lonelytrace/exporter/spanreturn"
	"github.com/lonelytrace/lonelytrace/otelsetup"
	"github.com/lonelytrace/lonelytrace/schema"
)

// errAppUnavailable is how a flaky subscriber's application fails a
// delivery.
var errAppUnavailable error = UnavailableError{}

// Behaviour of a subscriber.
const (
	// notifyAttempts is how often a notifier tries, each time through the
	// next broadcaster, before it gives up.
	notifyAttempts = 3
	// churnEvery is the pause between two subscription operations.
	churnEvery = 600 * time.Millisecond
	// flakyRate is the share of deliveries a flaky subscriber fails.
	flakyRate = 0.35
	// maxInFlight bounds the notifies one subscriber has under way.
	maxInFlight = 8
	// maxBodyBits makes body sizes log-uniform in [0, 2^maxBodyBits).
	maxBodyBits = 17
)

// The topics and globs of the demo. Topics are dot-separated so that a
// glob's * (which, as in fnmatch and path.Match, stops at a slash) spans a
// whole segment.
var (
	topics = []string{
		"orders.created", "orders.shipped", "orders.cancelled",
		"users.signup", "users.login", "metrics.cpu", "metrics.mem", "chat.general",
	}
	globs = []string{"orders.*", "users.*", "metrics.*", "*.created", "chat.[a-h]*", "users.log?n"}
)

// remote is a broadcaster as a subscriber knows it.
type remote struct {
	name, url string
	peer      *wsPeer // stateful subscribers only
}

// subscriberProc notifies, receives, and changes its subscriptions.
type subscriberProc struct {
	cfg    childConfig
	brs    []*remote
	client *http.Client
	recv   *spanreturn.Receiver // nil when OpenTelemetry is disabled
	self   string
	stats  *counters

	initialExact, initialGlobs []string

	mu           sync.Mutex
	exact, globs map[string]bool
}

func runSubscriber(ctx context.Context, cfg childConfig, ctl *control, stdout io.Writer) (err error) {
	// The broadcasters' spans of our requests ride home in their answers
	// and go, on our clock, wherever our own spans go.
	var recv *spanreturn.Receiver
	shutdown, err := startTracing(ctx, cfg, otelsetup.WithSpanReturnClient(func(r *spanreturn.Receiver) { recv = r }))
	if err != nil {
		return err
	}
	defer func() {
		if e := shutdown(); e != nil && err == nil {
			err = e
		}
	}()

	s := &subscriberProc{
		cfg:   cfg,
		stats: newCounters("notify", "notify_failed", "retries", "receive", "receive_failed", "missed", "subscription_ops"),
	}
	var rt http.RoundTripper = newTransport()
	if recv != nil { // nil with OTEL_SDK_DISABLED=true
		s.recv = recv
		rt = recv.Transport(rt)
		s.stats.poll = func(c *counters) { c.set("spans_returned", recv.Stats().Spans) }
	}
	s.client = &http.Client{Transport: rt, Timeout: 5 * time.Second}
	if s.brs, err = parseBroadcasters(cfg.broadcasters); err != nil {
		return err
	}
	s.initialExact, s.initialGlobs = initialSet(cfg.name)
	s.exact, s.globs = set(s.initialExact), set(s.initialGlobs)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	s.self = "http://" + ln.Addr().String()
	mux := http.NewServeMux()
	if !cfg.stateful {
		mux.HandleFunc("POST "+pathReceive, s.serveReceive)
	}
	mux.HandleFunc("POST "+pathMissed, s.serveMissed)
	srv := newServer(mux)
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if e := srv.Shutdown(sctx); e != nil && err == nil {
			err = e
		}
	}()

	if cfg.stateful {
		// The connections outlive ctx by a little: they close after the
		// loops stop, so that answers in flight still arrive.
		var wg sync.WaitGroup
		defer wg.Wait()
		for _, r := range s.brs {
			c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(r.url, "http")+pathWebsocket, nil)
			if err != nil {
				return fmt.Errorf("connect to %s: %w", r.name, err)
			}
			c.SetReadLimit(2 * maxBody)
			r.peer = newPeer(c, r.name)
			defer r.peer.close(websocket.StatusNormalClosure, "bye")
			wg.Add(1)
			go func() {
				defer wg.Done()
				r.peer.readLoop(context.Background(), func(f frame) { go s.serveFrame(r.peer, f) })
			}()
		}
	}
	for _, r := range s.brs {
		if err := s.setSubscriptions(ctx, r, s.initialExact, s.initialGlobs); err != nil {
			return fmt.Errorf("subscribe at %s: %w", r.name, err)
		}
	}

	out := &syncWriter{w: stdout}
	out.println(lineReady + " " + s.self)
	rctx, stopReport := context.WithCancel(context.Background())
	reported := make(chan struct{})
	go func() { s.stats.report(rctx, out); close(reported) }()
	defer func() { stopReport(); <-reported }()

	loops, stopLoops := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); s.notifyLoop(loops) }()
	go func() { defer wg.Done(); s.churnLoop(loops) }()
	select {
	case <-ctl.quiesce:
	case <-ctx.Done():
	case err = <-serveErr:
	}
	stopLoops()
	wg.Wait()
	out.println(lineQuiesced)
	if err == nil {
		// Keep receiving until the demo has stopped every notifier.
		<-ctx.Done()
	}
	return err
}

func parseBroadcasters(s string) ([]*remote, error) {
	var out []*remote
	for _, part := range strings.Split(s, ",") {
		name, url, ok := strings.Cut(part, "=")
		if !ok || name == "" || url == "" {
			return nil, fmt.Errorf("bad -broadcasters entry %q (want name=url)", part)
		}
		out = append(out, &remote{name: name, url: url})
	}
	return out, nil
}

// initialSet picks a subscriber's first subscriptions from its name, so
// that subscribers differ and notifies reach different numbers of them.
func initialSet(name string) (exact, globsOut []string) {
	h := fnv.New64a()
	h.Write([]byte(name))
	r := rand.New(rand.NewPCG(h.Sum64(), 1))
	for _, i := range r.Perm(len(topics))[:2+r.IntN(2)] {
		exact = append(exact, topics[i])
	}
	globsOut = []string{globs[r.IntN(len(globs))]}
	return exact, globsOut
}

// notifyLoop notifies at the configured rate, with exponential gaps, until
// ctx ends.
func (s *subscriberProc) notifyLoop(ctx context.Context) {
	sem := make(chan struct{}, maxInFlight)
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		gap := time.Duration(rand.ExpFloat64() / s.cfg.rate * float64(time.Second))
		select {
		case <-ctx.Done():
			return
		case <-time.After(gap):
		}
		select {
		case sem <- struct{}{}:
		default:
			continue // too many under way: skip this one rather than queue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			s.notify(context.WithoutCancel(ctx))
		}()
	}
}

// bodySize is log-uniform, so that every size bucket from "below 1" up to
// "below 2^17" sees messages.
func bodySize() int {
	return int(math.Exp2(rand.Float64()*maxBodyBits)) - 1
}

// notify publishes one message through a broadcaster, trying the next one
// when a broadcaster fails or is busy.
func (s *subscriberProc) notify(ctx context.Context) {
	topic := topics[rand.IntN(len(topics))]
	body := make([]byte, bodySize())
	var seed [32]byte
	binary.LittleEndian.PutUint64(seed[:], rand.Uint64())
	_, _ = rand.NewChaCha8(seed).Read(body)
	first := rand.IntN(len(s.brs))
	ctx, span := tracer().Start(ctx, "notify",
		trace.WithSpanKind(trace.SpanKindProducer),
		schema.Notify(topic, len(body), s.brs[first].name),
		trace.WithAttributes(schema.Stateful(s.cfg.stateful)))
	defer span.End()
	s.stats.add("notify", 1)

	_, hspan := tracer().Start(ctx, "hash")
	hash := bodyHash(body)
	auth := sign(s.cfg.secret, topic, hash)
	hspan.End()

	var err error // the last attempt's
	for attempt := 1; attempt <= notifyAttempts; attempt++ {
		r := s.brs[(first+attempt-1)%len(s.brs)]
		span.SetAttributes(schema.Broadcaster(r.name))
		sctx, send := tracer().Start(ctx, "send request",
			trace.WithSpanKind(trace.SpanKindClient),
			trace.WithAttributes(schema.Broadcaster(r.name), attribute.Int("pubsub.attempt", attempt)))
		var answer func() (int, error)
		answer, err = s.sendNotify(sctx, r, topic, body, hash, auth)
		if err != nil {
			fail(send, err)
		}
		send.End()
		if err == nil {
			_, rspan := tracer().Start(ctx, "response received")
			var n int
			n, err = answer()
			if err != nil {
				fail(rspan, err)
			}
			rspan.End()
			if err == nil {
				span.SetAttributes(schema.Subscribers(n))
				return
			}
		}
		if attempt < notifyAttempts {
			s.stats.add("retries", 1)
			_, wspan := tracer().Start(ctx, "waiting to retry")
			time.Sleep(time.Duration(attempt*10+rand.IntN(10)) * time.Millisecond)
			wspan.End()
		}
	}
	s.stats.add("notify_failed", 1)
	fail(span, RetriesExhaustedError{Attempts: notifyAttempts, Err: err})
}

// sendNotify sends one notify attempt and returns how to read the answer.
func (s *subscriberProc) sendNotify(ctx context.Context, r *remote, topic string, body []byte, hash, auth string) (func() (int, error), error) {
	if r.peer != nil {
		ans, err := s.wsRequest(ctx, r, frame{Type: frameNotify, Topic: topic, Body: body, Hash: hash, Auth: auth})
		if err != nil {
			return nil, err
		}
		return func() (int, error) { return ans.Subscribers, nil }, nil
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.url+pathNotify, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set(headerTopic, topic)
	req.Header.Set(headerHash, hash)
	req.Header.Set(headerAuth, auth)
	injectHeaders(ctx, req.Header)
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		drain(resp)
		return nil, StatusError{Op: "notify", Status: resp.Status}
	}
	return func() (int, error) {
		defer drain(resp)
		var a notifyAnswer
		if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<10)).Decode(&a); err != nil {
			return 0, AnswerError{Op: "notify", Err: err}
		}
		return a.Subscribers, nil
	}, nil
}

// wsRequest sends a request over a stateful connection and stores the
// broadcaster's spans that come back in the answer.
func (s *subscriberProc) wsRequest(ctx context.Context, r *remote, f frame) (frame, error) {
	f.Trace = injectFrame(ctx)
	f.ReturnSpans = s.recv != nil
	sent := time.Now()
	ans, err := r.peer.request(ctx, f)
	received := time.Now()
	if err != nil {
		return frame{}, err
	}
	if len(ans.Spans) > 0 && s.recv != nil {
		// A dropped answer is counted by the Receiver; the request itself
		// succeeded all the same.
		_ = s.recv.Receive(ctx, trace.SpanContextFromContext(ctx), ans.Spans, sent, received)
	}
	if ans.Error != "" {
		return ans, PeerError{Msg: ans.Error}
	}
	return ans, nil
}

// churnLoop changes the subscriptions in a cycle that goes through every
// subscription operation, at every broadcaster.
func (s *subscriberProc) churnLoop(ctx context.Context) {
	t := time.NewTicker(churnEvery)
	defer t.Stop()
	var addedTopic, addedGlob string
	for step := 0; ; step++ {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		ctx := context.WithoutCancel(ctx)
		switch step % 5 {
		case 0:
			addedTopic = s.pickNot(topics, s.exact)
			s.applyAll(ctx, schema.OpSubscribeExact, subscriptionRequest{Topic: addedTopic})
		case 1:
			addedGlob = s.pickNot(globs, s.globs)
			s.applyAll(ctx, schema.OpSubscribeGlob, subscriptionRequest{Glob: addedGlob})
		case 2:
			s.applyAll(ctx, schema.OpUnsubscribeExact, subscriptionRequest{Topic: addedTopic})
		case 3:
			s.applyAll(ctx, schema.OpUnsubscribeGlob, subscriptionRequest{Glob: addedGlob})
		case 4:
			// Every other time the set changes by one topic; otherwise it is
			// what the broadcaster has, and the etag says so.
			exact := slices.Clone(s.initialExact)
			if step%10 == 4 {
				exact = append(exact, s.pickNot(topics, set(exact)))
			}
			for _, r := range s.brs {
				_ = s.setSubscriptions(ctx, r, exact, s.initialGlobs)
			}
		}
	}
}

// pickNot returns an element of from not in have (any when all are).
func (s *subscriberProc) pickNot(from []string, have map[string]bool) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, i := range rand.Perm(len(from)) {
		if !have[from[i]] {
			return from[i]
		}
	}
	return from[rand.IntN(len(from))]
}

// applyAll applies one subscription operation at every broadcaster (they
// do not share state, so a subscriber subscribes at each).
func (s *subscriberProc) applyAll(ctx context.Context, op string, req subscriptionRequest) {
	s.mu.Lock()
	switch op {
	case schema.OpSubscribeExact:
		s.exact[req.Topic] = true
	case schema.OpSubscribeGlob:
		s.globs[req.Glob] = true
	case schema.OpUnsubscribeExact:
		delete(s.exact, req.Topic)
	case schema.OpUnsubscribeGlob:
		delete(s.globs, req.Glob)
	}
	s.mu.Unlock()
	for _, r := range s.brs {
		_ = s.subscription(ctx, r, op, req)
	}
}

func (s *subscriberProc) setSubscriptions(ctx context.Context, r *remote, exact, globsIn []string) error {
	s.mu.Lock()
	s.exact, s.globs = set(exact), set(globsIn)
	s.mu.Unlock()
	return s.subscription(ctx, r, schema.OpSetSubscriptions, subscriptionRequest{Exact: exact, Globs: globsIn})
}

// subscription performs one subscription operation at one broadcaster.
func (s *subscriberProc) subscription(ctx context.Context, r *remote, op string, req subscriptionRequest) (err error) {
	attrs := []attribute.KeyValue{schema.Operation(op), schema.Broadcaster(r.name), schema.Stateful(s.cfg.stateful)}
	if req.Topic != "" {
		attrs = append(attrs, schema.Topic(req.Topic))
	}
	if req.Glob != "" {
		attrs = append(attrs, schema.Glob(req.Glob))
	}
	ctx, span := tracer().Start(ctx, op, trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(attrs...))
	defer func() {
		if err != nil {
			fail(span, err)
		}
		span.End()
	}()
	s.stats.add("subscription_ops", 1)

	req.Recovery = s.self + pathMissed
	if !s.cfg.stateful {
		req.URL = s.self + pathReceive
	}
	if op == schema.OpSetSubscriptions {
		_, hspan := tracer().Start(ctx, "hash")
		req.ETag = etagOf(req.Exact, req.Globs)
		hspan.SetAttributes(attribute.String("pubsub.etag", req.ETag))
		hspan.End()
	}
	data, err := json.Marshal(req)
	if err != nil {
		return err
	}
	auth := sign(s.cfg.secret, op, bodyHash(data))

	sctx, send := tracer().Start(ctx, "send request",
		trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(schema.Broadcaster(r.name)))
	var answer func() (setAnswer, error)
	if r.peer != nil {
		var ans frame
		ans, err = s.wsRequest(sctx, r, frame{Type: op, Sub: &req, Auth: auth})
		answer = func() (setAnswer, error) { return setAnswer{ETag: ans.ETag}, nil }
	} else {
		answer, err = s.postJSON(sctx, r.url+opPaths[op], data, auth)
	}
	if err != nil {
		fail(send, err)
	}
	send.End()
	if err != nil {
		return err
	}
	_, rspan := tracer().Start(ctx, "response received")
	defer rspan.End()
	ans, err := answer()
	if err == nil && op == schema.OpSetSubscriptions && ans.ETag != req.ETag {
		err = ETagError{Got: ans.ETag, Want: req.ETag}
	}
	if err != nil {
		fail(rspan, err)
	}
	return err
}

func (s *subscriberProc) postJSON(ctx context.Context, url string, data []byte, auth string) (func() (setAnswer, error), error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(data))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(headerAuth, auth)
	injectHeaders(ctx, req.Header)
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		drain(resp)
		return nil, StatusError{Status: resp.Status}
	}
	return func() (setAnswer, error) {
		defer drain(resp)
		var a setAnswer
		err := json.NewDecoder(io.LimitReader(resp.Body, 1<<10)).Decode(&a)
		return a, err
	}, nil
}

// serveReceive takes one message from a broadcaster (stateless).
func (s *subscriberProc) serveReceive(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		http.Error(w, err.Error(), http.StatusRequestEntityTooLarge)
		return
	}
	ctx := extractHeaders(r.Context(), r.Header)
	status, err := s.receive(ctx, start, r.Header.Get(headerBroadcaster), r.Header.Get(headerTopic), body, r.Header.Get(headerHash), r.Header.Get(headerAuth))
	if err != nil {
		http.Error(w, err.Error(), status)
		return
	}
	writeJSON(w, map[string]bool{"confirmed": true})
}

// serveFrame takes one message from a broadcaster (stateful).
func (s *subscriberProc) serveFrame(p *wsPeer, f frame) {
	if f.Type != frameReceive {
		return
	}
	start := time.Now()
	ctx := extractFrame(context.Background(), f.Trace)
	ans := frame{Type: frameConfirm, ID: f.ID}
	if _, err := s.receive(ctx, start, f.Broadcaster, f.Topic, f.Body, f.Hash, f.Auth); err != nil {
		ans.Error = err.Error()
	}
	wctx, cancel := context.WithTimeout(context.Background(), deliveryTimeout)
	defer cancel()
	_ = p.write(wctx, ans)
}

// receive verifies a message and hands it to the application; a flaky
// subscriber's application often fails.
func (s *subscriberProc) receive(ctx context.Context, start time.Time, broadcaster, topic string, body []byte, hash, auth string) (int, error) {
	ctx, span := tracer().Start(ctx, "receive",
		trace.WithSpanKind(trace.SpanKindConsumer),
		trace.WithTimestamp(start),
		schema.Receive(topic, len(body), broadcaster),
		trace.WithAttributes(schema.Stateful(s.cfg.stateful)))
	defer span.End()
	s.stats.add("receive", 1)

	_, vspan := tracer().Start(ctx, "verify")
	ok := verify(s.cfg.secret, topic, hash, auth) && bodyHash(body) == hash
	if !ok {
		fail(vspan, errBadSignature)
	}
	vspan.End()
	if !ok {
		s.stats.add("receive_failed", 1)
		fail(span, errBadSignature)
		return http.StatusUnauthorized, errBadSignature
	}

	_, hspan := tracer().Start(ctx, "handle")
	defer hspan.End()
	time.Sleep(time.Duration(rand.IntN(2000)) * time.Microsecond) // the application's work
	if s.cfg.flaky && rand.Float64() < flakyRate {
		s.stats.add("receive_failed", 1)
		fail(hspan, errAppUnavailable)
		fail(span, errAppUnavailable)
		return http.StatusServiceUnavailable, errAppUnavailable
	}
	return 0, nil
}

// serveMissed is the recovery URL: a broadcaster says a delivery failed.
func (s *subscriberProc) serveMissed(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 64<<10))
	if err != nil {
		http.Error(w, err.Error(), http.StatusRequestEntityTooLarge)
		return
	}
	var m missedMessage
	_ = json.Unmarshal(data, &m)
	ctx := extractHeaders(r.Context(), r.Header)
	ctx, span := tracer().Start(ctx, "missed",
		trace.WithSpanKind(trace.SpanKindConsumer),
		trace.WithTimestamp(start),
		trace.WithAttributes(schema.Operation(schema.OpMissed), schema.Topic(m.Topic),
			schema.Broadcaster(m.Broadcaster), schema.Stateful(s.cfg.stateful)))
	defer span.End()
	s.stats.add("missed", 1)

	_, vspan := tracer().Start(ctx, "verify")
	ok := verify(s.cfg.secret, schema.OpMissed, bodyHash(data), r.Header.Get(headerAuth))
	if !ok {
		fail(vspan, errBadSignature)
	}
	vspan.End()
	if !ok {
		fail(span, errBadSignature)
		http.Error(w, errBadSignature.Error(), http.StatusUnauthorized)
		return
	}
	_, hspan := tracer().Start(ctx, "handle")
	// A real subscriber would now fetch what it missed from its source of
	// truth; the demo only notes it.
	hspan.AddEvent("recovery needed", trace.WithAttributes(schema.Topic(m.Topic)))
	hspan.End()
	w.WriteHeader(http.StatusOK)
}
