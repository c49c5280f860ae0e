package spanreturn

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/lonelytrace/lonelytrace/exporter"
	"github.com/lonelytrace/lonelytrace/schema"
)

// broadcaster is a server with span return: its handler records the
// phases of a notify as spans, on the server's clock.
type broadcaster struct {
	proc *Processor
	tp   *sdktrace.TracerProvider
	own  *tracetest.InMemoryExporter // the server's own exporter (WithNext)
	srv  *httptest.Server
	now  func() time.Time
}

// notifyHandler answers a notify: auth, find subscribers with one send
// receive per subscriber, the answer, and a span that ends after it.
func notifyHandler(tp trace.TracerProvider, now func() time.Time, subscribers int) http.Handler {
	tracer := tp.Tracer("broadcaster")
	at := func() trace.SpanEventOption { return trace.WithTimestamp(now()) }
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		_, auth := tracer.Start(ctx, "auth accepted", trace.WithTimestamp(now()))
		auth.End(at())
		fctx, find := tracer.Start(ctx, "find subscribers", trace.WithTimestamp(now()))
		for i := range subscribers {
			_, send := tracer.Start(fctx, "send receive", trace.WithTimestamp(now()),
				trace.WithAttributes(attribute.String("subscriber", fmt.Sprintf("http://127.0.0.1:9/sub/%03d", i))))
			send.End(at())
		}
		find.End(at())
		w.WriteHeader(http.StatusOK)
		io.WriteString(w, fmt.Sprint(subscribers))
		_, late := tracer.Start(ctx, "after answer", trace.WithTimestamp(now()))
		late.End(at())
	})
}

func newBroadcaster(tb testing.TB, subscribers int, opts ...Option) *broadcaster {
	tb.Helper()
	b := &broadcaster{own: tracetest.NewInMemoryExporter(), now: time.Now}
	cfg := newConfig(opts)
	b.now = cfg.now
	b.proc = NewProcessor(append([]Option{WithNext(sdktrace.NewSimpleSpanProcessor(b.own))}, opts...)...)
	b.tp = sdktrace.NewTracerProvider(
		sdktrace.WithSpanProcessor(b.proc),
		sdktrace.WithResource(resource.NewSchemaless(
			attribute.String("service.name", "broadcaster"),
			attribute.String("telemetry.sdk.language", "go"))))
	mux := http.NewServeMux()
	mux.Handle("POST /v1/notify", b.proc.Middleware(b.tp)(notifyHandler(b.tp, b.now, subscribers)))
	b.srv = httptest.NewServer(mux)
	tb.Cleanup(func() {
		b.srv.Close()
		b.tp.Shutdown(context.Background())
	})
	return b
}

// subscriber is a client with span return, its own tracer provider and
// the Receiver storing in the same exporter.
type subscriber struct {
	recv   *Receiver
	tp     *sdktrace.TracerProvider
	client *http.Client
}

func newSubscriber(tb testing.TB, exp sdktrace.SpanExporter, base http.RoundTripper, opts ...Option) *subscriber {
	tb.Helper()
	s := &subscriber{recv: NewReceiver(exp, opts...)}
	s.tp = sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp),
		sdktrace.WithResource(resource.NewSchemaless(attribute.String("service.name", "subscriber"))))
	if base == nil {
		base = http.DefaultTransport.(*http.Transport).Clone()
	}
	s.client = &http.Client{Transport: s.recv.Transport(base)}
	return s
}

// notify sends one notify within a notify span and returns that span.
func (s *subscriber) notify(tb testing.TB, url string) sdktrace.ReadOnlySpan {
	tb.Helper()
	ctx, span := s.tp.Tracer("subscriber").Start(context.Background(), "notify",
		schema.Notify("news", 5, url), trace.WithSpanKind(trace.SpanKindClient))
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url+"/v1/notify", strings.NewReader("hello"))
	if err != nil {
		tb.Fatal(err)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		tb.Fatalf("status = %d; want 200", resp.StatusCode)
	}
	if v := resp.Header.Get(Header); v != "" {
		tb.Errorf("%s header left on the response for the caller", Header)
	}
	span.End()
	return span.(sdktrace.ReadOnlySpan)
}

type row struct {
	traceID, spanID, parentID, name, service string
	start, end                               int64
	attrs                                    map[string]string
}

// readFile returns the spans of the file at path, by name.
func readFile(tb testing.TB, path string) map[string][]row {
	tb.Helper()
	ctx := context.Background()
	db, err := schema.OpenRead(ctx, path)
	if err != nil {
		tb.Fatal(err)
	}
	defer db.Close()
	rows, err := db.QueryContext(ctx, `SELECT trace_id, span_id, coalesce(parent_span_id, ''), name,
		coalesce(service_name, ''), start_ns, end_ns, coalesce(attributes, '{}') FROM spans_view`)
	if err != nil {
		tb.Fatal(err)
	}
	defer rows.Close()
	out := map[string][]row{}
	for rows.Next() {
		var r row
		var attrs string
		if err := rows.Scan(&r.traceID, &r.spanID, &r.parentID, &r.name, &r.service, &r.start, &r.end, &attrs); err != nil {
			tb.Fatal(err)
		}
		r.attrs = map[string]string{}
		for _, kv := range strings.Split(strings.Trim(attrs, "{}"), ",") {
			if k, v, ok := strings.Cut(kv, ":"); ok {
				r.attrs[strings.Trim(k, `"`)] = strings.Trim(v, `"`)
			}
		}
		out[r.name] = append(out[r.name], r)
	}
	if err := rows.Err(); err != nil {
		tb.Fatal(err)
	}
	return out
}

func TestSpanReturn_OneTraceInClientFile(t *testing.T) {
	b := newBroadcaster(t, 3)
	path := filepath.Join(t.TempDir(), "subscriber.db")
	exp, err := exporter.New(path)
	if err != nil {
		t.Fatal(err)
	}
	s := newSubscriber(t, exp, nil)
	notify := s.notify(t, b.srv.URL)
	if err := s.tp.Shutdown(context.Background()); err != nil { // flushes and shuts exp down
		t.Fatal(err)
	}

	got := readFile(t, path)
	tid := notify.SpanContext().TraceID().String()
	one := func(name string) row {
		t.Helper()
		if len(got[name]) != 1 {
			t.Fatalf("spans named %q = %d; want 1 (file: %v)", name, len(got[name]), got)
		}
		return got[name][0]
	}
	n, root := one("notify"), one("POST /v1/notify")
	auth, find := one("auth accepted"), one("find subscribers")
	if len(got["send receive"]) != 3 {
		t.Fatalf("send receive spans = %d; want 3", len(got["send receive"]))
	}
	if len(got["after answer"]) != 0 {
		t.Errorf("a span ending after the answer rode home")
	}
	for _, r := range append([]row{n, root, auth, find}, got["send receive"]...) {
		if r.traceID != tid {
			t.Errorf("%s: trace = %s; want %s", r.name, r.traceID, tid)
		}
	}
	links := []struct{ child, parent row }{{root, n}, {auth, root}, {find, root}}
	for _, sr := range got["send receive"] {
		links = append(links, struct{ child, parent row }{sr, find})
	}
	for _, l := range links {
		if l.child.parentID != l.parent.spanID {
			t.Errorf("%s: parent = %s; want %s (%s)", l.child.name, l.child.parentID, l.parent.spanID, l.parent.name)
		}
	}
	if root.service != "broadcaster" || n.service != "subscriber" {
		t.Errorf("services = %q, %q; want broadcaster, subscriber", root.service, n.service)
	}
	if _, ok := root.attrs[string(ClockOffsetKey)]; !ok {
		t.Errorf("server span lacks %s: %v", ClockOffsetKey, root.attrs)
	}
	if root.attrs["http.response.status_code"] != "200" {
		t.Errorf("server span status code = %q; want 200", root.attrs["http.response.status_code"])
	}
	if st := s.recv.Stats(); st.Answers != 1 || st.Spans != 6 {
		t.Errorf("receiver stats = %+v; want 1 answer of 6 spans", st)
	}
	// The late span and the full server span went to the server's own exporter.
	own := map[string]bool{}
	for _, sp := range b.own.GetSpans() {
		own[sp.Name] = true
	}
	if !own["after answer"] || own["find subscribers"] || own["POST /v1/notify"] {
		t.Errorf("server's own exporter got %v; want only the late span", own)
	}
	if st := b.proc.Stats(); st.Requests != 1 || st.Returned != 6 || st.Late != 1 || st.Dropped != 0 {
		t.Errorf("processor stats = %+v", st)
	}
}

// delayConn delays every write: the request path of an HTTP/1.1 client.
type delayConn struct {
	net.Conn
	delay time.Duration
}

func (c delayConn) Write(b []byte) (int, error) {
	time.Sleep(c.delay)
	return c.Conn.Write(b)
}

func TestSpanReturn_ClockSkew(t *testing.T) {
	const skew = 250 * time.Millisecond
	const delay = 40 * time.Millisecond
	skewed := func() time.Time { return time.Now().Add(skew) }
	b := newBroadcaster(t, 2, WithClock(skewed))
	dialer := &net.Dialer{}
	base := &http.Transport{
		DisableKeepAlives: true,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := dialer.DialContext(ctx, network, addr)
			return delayConn{c, delay}, err
		},
	}
	exp := tracetest.NewInMemoryExporter()
	s := newSubscriber(t, exp, base)
	notify := s.notify(t, b.srv.URL)

	var top tracetest.SpanStub
	var returned []tracetest.SpanStub
	for _, sp := range exp.GetSpans() {
		if sp.Resource.String() == "service.name=broadcaster" {
			returned = append(returned, sp)
			if sp.Parent.SpanID() == notify.SpanContext().SpanID() {
				top = sp
			}
		}
	}
	if len(returned) != 5 || top.Name == "" {
		t.Fatalf("returned spans = %d (top %q); want 5 under the notify span", len(returned), top.Name)
	}
	attr := func(k attribute.Key) int64 {
		for _, kv := range top.Attributes {
			if kv.Key == k {
				return kv.Value.AsInt64()
			}
		}
		t.Fatalf("no %s on %s", k, top.Name)
		return 0
	}
	t0, t1, t2, t3 := attr(ClientSentKey), attr(ServerReceivedKey), attr(ServerSentKey), attr(ClientReceivedKey)
	offset, bound := attr(ClockOffsetKey), attr(ClockErrorKey)
	t.Logf("offset %v (skew %v), error bound %v, round trip %v, server %v", time.Duration(offset), skew,
		time.Duration(bound), time.Duration(t3-t0), time.Duration(t2-t1))
	// The oracle: the bound is half the round trip minus the server's time.
	if want := ((t3 - t0) - (t2 - t1)) / 2; bound != want {
		t.Errorf("error bound = %d; want %d", bound, want)
	}
	if bound < int64(delay/2) {
		t.Errorf("error bound = %v; want at least half the one-way delay %v", time.Duration(bound), delay/2)
	}
	// The true offset is the skew we injected.
	if e := offset - int64(skew); e < -bound || e > bound {
		t.Errorf("offset error = %v; want within ±%v", time.Duration(e), time.Duration(bound))
	}
	lo := notify.StartTime().Add(-time.Duration(bound))
	hi := notify.EndTime().Add(time.Duration(bound))
	for _, sp := range returned {
		if sp.StartTime.Before(lo) || sp.EndTime.After(hi) || sp.EndTime.Before(sp.StartTime) {
			t.Errorf("%s [%v, %v] outside the notify span [%v, %v] ± %v", sp.Name,
				sp.StartTime.Format(time.StampMicro), sp.EndTime.Format(time.StampMicro),
				notify.StartTime().Format(time.StampMicro), notify.EndTime().Format(time.StampMicro), time.Duration(bound))
		}
	}
	// Uncorrected, the server span would have started after the notify
	// span ended: the correction is what puts it inside.
	if raw := time.Unix(0, t1); !raw.After(notify.EndTime()) {
		t.Errorf("raw t1 %v not after the notify end %v: the skew did not apply", raw, notify.EndTime())
	}
}

func TestSpanReturn_Truncation(t *testing.T) {
	const maxBytes = 600
	b := newBroadcaster(t, 40, WithMaxBytes(maxBytes))
	exp := tracetest.NewInMemoryExporter()
	var header string
	base := roundTripFunc(func(req *http.Request) (*http.Response, error) {
		resp, err := http.DefaultTransport.RoundTrip(req)
		if err == nil {
			header = resp.Header.Get(Header)
		}
		return resp, err
	})
	s := newSubscriber(t, exp, base)
	s.notify(t, b.srv.URL)

	if header == "" || len(header) > maxBytes {
		t.Fatalf("header length = %d; want 1..%d", len(header), maxBytes)
	}
	data, _ := base64.RawURLEncoding.DecodeString(header)
	if data[1]&flagTruncated == 0 {
		t.Errorf("truncated flag not set")
	}
	ps, rs := b.proc.Stats(), s.recv.Stats()
	// 1 server span + auth + find + 40 send receive.
	if ps.Returned+ps.Cut != 43 || ps.Cut == 0 {
		t.Errorf("processor returned %d, cut %d; want 43 in all, some cut", ps.Returned, ps.Cut)
	}
	if rs.Omitted != ps.Cut || rs.Spans != ps.Returned {
		t.Errorf("receiver omitted %d, stored %d; want %d, %d", rs.Omitted, rs.Spans, ps.Cut, ps.Returned)
	}
	stored := map[trace.SpanID]bool{}
	var omitted int64 = -1
	for _, sp := range exp.GetSpans() {
		stored[sp.SpanContext.SpanID()] = true
		for _, kv := range sp.Attributes {
			if kv.Key == OmittedKey {
				omitted = kv.Value.AsInt64()
			}
		}
	}
	if omitted != ps.Cut {
		t.Errorf("%s = %d; want %d", OmittedKey, omitted, ps.Cut)
	}
	// Oldest first: every span kept has its parent kept (or is the top).
	for _, sp := range exp.GetSpans() {
		if sp.Name == "send receive" && !stored[sp.Parent.SpanID()] {
			t.Errorf("kept %s without its parent", sp.Name)
		}
	}
	// The cut spans went to the server's own exporter.
	if n := len(b.own.GetSpans()); int64(n) != ps.Cut+1 { // + the late span
		t.Errorf("server's own exporter got %d spans; want %d", n, ps.Cut+1)
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestSpanReturn_Off(t *testing.T) {
	t.Run("NoTraceContext", func(t *testing.T) {
		b := newBroadcaster(t, 1)
		resp, err := http.Post(b.srv.URL+"/v1/notify", "text/plain", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.Header.Get(Header) != "" || b.proc.Stats().Requests != 0 {
			t.Errorf("spans returned to a request without trace context")
		}
	})
	t.Run("NotAsked", func(t *testing.T) {
		b := newBroadcaster(t, 1)
		req, _ := http.NewRequest(http.MethodPost, b.srv.URL+"/v1/notify", nil)
		req.Header.Set("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.Header.Get(Header) != "" {
			t.Errorf("spans returned to a client that did not ask")
		}
	})
	t.Run("Unsampled", func(t *testing.T) {
		b := newBroadcaster(t, 1)
		req, _ := http.NewRequest(http.MethodPost, b.srv.URL+"/v1/notify", nil)
		req.Header.Set("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00")
		req.Header.Set(AskHeader, "1")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.Header.Get(Header) != "" {
			t.Errorf("spans returned for an unsampled trace")
		}
	})
	t.Run("EnvVar", func(t *testing.T) {
		t.Setenv(EnvVar, "off")
		b := newBroadcaster(t, 1, WithEnabled(true))
		exp := tracetest.NewInMemoryExporter()
		var asked bool
		base := roundTripFunc(func(req *http.Request) (*http.Response, error) {
			asked = req.Header.Get(AskHeader) != ""
			return http.DefaultTransport.RoundTrip(req)
		})
		s := newSubscriber(t, exp, base)
		s.notify(t, b.srv.URL)
		if asked || b.proc.Stats().Requests != 0 || s.recv.Stats().Answers != 0 {
			t.Errorf("span return ran with %s=off (asked %v)", EnvVar, asked)
		}
	})
	t.Run("Option", func(t *testing.T) {
		b := newBroadcaster(t, 1, WithEnabled(false))
		s := newSubscriber(t, tracetest.NewInMemoryExporter(), nil)
		s.notify(t, b.srv.URL)
		if b.proc.Stats().Requests != 0 {
			t.Errorf("server returned spans with WithEnabled(false)")
		}
	})
}

func TestSpanReturn_Stateful(t *testing.T) {
	// Server: a message answering a request carries Finish's field.
	own := tracetest.NewInMemoryExporter()
	proc := NewProcessor(WithNext(sdktrace.NewSimpleSpanProcessor(own)))
	stp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(proc))
	defer stp.Shutdown(context.Background())
	exp := tracetest.NewInMemoryExporter()
	recv := NewReceiver(exp)
	ctp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	defer ctp.Shutdown(context.Background())

	cctx, notify := ctp.Tracer("subscriber").Start(context.Background(), "notify")
	carrier := propagation.MapCarrier{}
	tracecontext.Inject(cctx, carrier) // rides in the request frame
	t0 := time.Now()

	rctx := tracecontext.Extract(context.Background(), carrier)
	sctx, server := stp.Tracer("broadcaster").Start(rctx, "notify", trace.WithSpanKind(trace.SpanKindServer))
	g := proc.Begin(server)
	_, phase := stp.Tracer("broadcaster").Start(sctx, "find subscribers")
	phase.End()
	field := g.Finish()
	server.End()
	if again := g.Finish(); again != nil {
		t.Errorf("second Finish = %d bytes; want nil", len(again))
	}

	t3 := time.Now()
	if err := recv.Receive(cctx, notify.SpanContext(), field, t0, t3); err != nil {
		t.Fatal(err)
	}
	notify.End()
	if n := len(exp.GetSpans()); n != 3 {
		t.Errorf("stored %d spans; want 3", n)
	}
	if n := len(own.GetSpans()); n != 0 {
		t.Errorf("server's own exporter got %d spans; want 0", n)
	}
}

func TestProcessor_LateWithoutNext(t *testing.T) {
	proc := NewProcessor()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(proc))
	defer tp.Shutdown(context.Background())
	sc := trace.NewSpanContext(trace.SpanContextConfig{TraceID: trace.TraceID{1}, SpanID: trace.SpanID{1}, TraceFlags: trace.FlagsSampled, Remote: true})
	ctx, server := tp.Tracer("t").Start(trace.ContextWithRemoteSpanContext(context.Background(), sc), "server")
	g := proc.Begin(server)
	_, early := tp.Tracer("t").Start(ctx, "early")
	early.End()
	_, late := tp.Tracer("t").Start(ctx, "late")
	data := g.Finish()
	late.End()
	server.End()
	a, err := decode(data, DefaultMaxSpans)
	if err != nil {
		t.Fatal(err)
	}
	if len(a.spans) != 2 || a.spans[0].name != "server" || a.spans[1].name != "early" {
		t.Errorf("answer spans = %+v; want server, early", a.spans)
	}
	if st := proc.Stats(); st.Late != 1 || st.Dropped != 1 {
		t.Errorf("stats = %+v; want 1 late, 1 dropped", st)
	}
	// Another trace's span is never gathered, even under a live request.
	_, other := tp.Tracer("t").Start(context.Background(), "other")
	other.End()
	proc.mu.Lock()
	defer proc.mu.Unlock()
	if proc.live[keyOf(other.SpanContext())] != nil {
		t.Errorf("span of another trace tracked")
	}
}

// hostile is a server that answers every request with header values made
// by craft from the request's trace context.
func hostile(tb testing.TB, craft func(sc trace.SpanContext) []string) string {
	tb.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sc := trace.SpanContextFromContext(tracecontext.Extract(context.Background(), propagation.HeaderCarrier(r.Header)))
		for _, v := range craft(sc) {
			w.Header().Add(Header, v)
		}
	}))
	tb.Cleanup(srv.Close)
	return srv.URL
}

// forge encodes spans as a server would, from stubs.
func forge(tid trace.TraceID, t1, t2 time.Time, stubs ...tracetest.SpanStub) string {
	spans := make([]sdktrace.ReadOnlySpan, len(stubs))
	for i, s := range stubs {
		spans[i] = s.Snapshot()
	}
	data, _ := encode(tid, t1, t2, nil, spans, 1<<20, 1<<20)
	return base64.RawURLEncoding.EncodeToString(data)
}

func stub(sc trace.SpanContext, id, parent byte, start, end time.Time) tracetest.SpanStub {
	return tracetest.SpanStub{
		Name:        fmt.Sprint("span ", id),
		SpanContext: trace.NewSpanContext(trace.SpanContextConfig{TraceID: sc.TraceID(), SpanID: trace.SpanID{id}, TraceFlags: trace.FlagsSampled}),
		Parent:      trace.NewSpanContext(trace.SpanContextConfig{TraceID: sc.TraceID(), SpanID: trace.SpanID{parent}}),
		StartTime:   start, EndTime: end,
	}
}

func TestReceiver_Hostile(t *testing.T) {
	b64 := base64.RawURLEncoding.EncodeToString
	top := func(sc trace.SpanContext, start, end time.Time) tracetest.SpanStub {
		s := stub(sc, 1, 0, start, end)
		s.Parent = sc
		return s
	}
	cases := []struct {
		name  string
		craft func(sc trace.SpanContext) []string
		want  Reason
	}{
		{"Garbage", func(trace.SpanContext) []string { return []string{"%%% not base64 %%%"} }, ReasonMalformed},
		{"GarbageBytes", func(trace.SpanContext) []string {
			return []string{b64([]byte("\x01\x00garbage that is not an answer"))}
		}, ReasonMalformed},
		{"Version", func(trace.SpanContext) []string { return []string{b64(append([]byte{9}, make([]byte, 40)...))} }, ReasonMalformed},
		{"TwoHeaders", func(sc trace.SpanContext) []string {
			now := time.Now()
			v := forge(sc.TraceID(), now, now, top(sc, now, now))
			return []string{v, v}
		}, ReasonMalformed},
		{"WrongTrace", func(sc trace.SpanContext) []string {
			now := time.Now()
			other := trace.NewSpanContext(trace.SpanContextConfig{TraceID: trace.TraceID{0xee}, SpanID: sc.SpanID()})
			return []string{forge(other.TraceID(), now, now, top(other, now, now))}
		}, ReasonWrongTrace},
		{"ForeignParent", func(sc trace.SpanContext) []string {
			now := time.Now()
			return []string{forge(sc.TraceID(), now, now, top(sc, now, now), stub(sc, 2, 7, now, now))}
		}, ReasonWrongTrace},
		{"RepeatedID", func(sc trace.SpanContext) []string {
			now := time.Now()
			return []string{forge(sc.TraceID(), now, now, top(sc, now, now), stub(sc, 1, 1, now, now))}
		}, ReasonWrongTrace},
		{"HugeSpanCount", func(sc trace.SpanContext) []string {
			tid := sc.TraceID()
			b := append([]byte{wireVersion, 0}, tid[:]...)
			b = append(b, 1, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x0f)
			return []string{b64(b)}
		}, ReasonTooMany},
		{"CountOverBytes", func(sc trace.SpanContext) []string {
			tid := sc.TraceID()
			b := append([]byte{wireVersion, 0}, tid[:]...)
			b = append(b, 1, 0, 0, 100, 0)
			return []string{b64(b)}
		}, ReasonMalformed},
		{"HugeAttrCount", func(sc trace.SpanContext) []string {
			tid := sc.TraceID()
			b := append([]byte{wireVersion, 0}, tid[:]...)
			b = append(b, 1, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x0f)
			return []string{b64(b)}
		}, ReasonMalformed},
		{"TooLarge", func(sc trace.SpanContext) []string { return []string{strings.Repeat("A", DefaultMaxBytes+1)} }, ReasonTooLarge},
		{"ClockFarOff", func(sc trace.SpanContext) []string {
			then := time.Now().Add(365 * 24 * time.Hour)
			return []string{forge(sc.TraceID(), then, then, top(sc, then, then))}
		}, ReasonClockOffset},
		{"SpanFarOff", func(sc trace.SpanContext) []string {
			now := time.Now()
			return []string{forge(sc.TraceID(), now, now, top(sc, now, now.Add(time.Hour)))}
		}, ReasonBadTime},
		{"BusierThanRoundTrip", func(sc trace.SpanContext) []string {
			now := time.Now()
			return []string{forge(sc.TraceID(), now.Add(-time.Minute), now, top(sc, now, now))}
		}, ReasonBadTime},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			url := hostile(t, c.craft)
			exp := tracetest.NewInMemoryExporter()
			recv := NewReceiver(exp)
			tp := sdktrace.NewTracerProvider() // client spans go nowhere
			client := &http.Client{Transport: recv.Transport(nil)}
			ctx, span := tp.Tracer("subscriber").Start(context.Background(), "notify")
			req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url, nil)
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			span.End()
			if n := len(exp.GetSpans()); n != 0 {
				t.Errorf("stored %d spans; want 0", n)
			}
			st := recv.Stats()
			if st.Dropped[c.want] != 1 || st.Answers != 0 {
				t.Errorf("stats = %+v; want one dropped as %s", st, c.want)
			}
		})
	}
}

func TestReceiver_DropError(t *testing.T) {
	recv := NewReceiver(tracetest.NewInMemoryExporter())
	sc := trace.NewSpanContext(trace.SpanContextConfig{TraceID: trace.TraceID{1}, SpanID: trace.SpanID{1}, TraceFlags: trace.FlagsSampled})
	err := recv.Receive(context.Background(), sc, []byte{1}, time.Now(), time.Now())
	var de *DropError
	if !errors.As(err, &de) || de.Reason != ReasonMalformed {
		t.Errorf("err = %v; want a *DropError of reason %s", err, ReasonMalformed)
	}
}

func TestSpanReturn_Concurrent(t *testing.T) {
	const n = 20
	b := newBroadcaster(t, 2)
	exp := tracetest.NewInMemoryExporter()
	s := newSubscriber(t, exp, nil)
	errs := make(chan error, n)
	for range n {
		go func() {
			ctx, span := s.tp.Tracer("subscriber").Start(context.Background(), "notify")
			defer span.End()
			req, _ := http.NewRequestWithContext(ctx, http.MethodPost, b.srv.URL+"/v1/notify", nil)
			resp, err := s.client.Do(req)
			if err == nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
			errs <- err
		}()
	}
	for range n {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	st := s.recv.Stats()
	if st.Answers != n || st.Spans != n*5 {
		t.Errorf("stats = %+v; want %d answers of 5 spans", st, n)
	}
	for r, c := range st.Dropped {
		if c != 0 {
			t.Errorf("dropped %d as %s", c, r)
		}
	}
	// Each notify got exactly its own server span.
	perTrace := map[trace.TraceID]int{}
	for _, sp := range exp.GetSpans() {
		if sp.Name == "POST /v1/notify" {
			perTrace[sp.SpanContext.TraceID()]++
		}
	}
	if len(perTrace) != n {
		t.Errorf("server spans in %d traces; want %d", len(perTrace), n)
	}
	// Handlers may still be ending their late spans; then nothing is left.
	for i := 0; b.proc.liveN.Load() != 0 && i < 100; i++ {
		time.Sleep(10 * time.Millisecond)
	}
	if n := b.proc.liveN.Load(); n != 0 {
		t.Errorf("processor still tracks %d spans", n)
	}
}

func TestMiddleware_Panic(t *testing.T) {
	own := tracetest.NewInMemoryExporter()
	proc := NewProcessor(WithNext(sdktrace.NewSimpleSpanProcessor(own)))
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(proc))
	defer tp.Shutdown(context.Background())
	h := proc.Middleware(tp)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, sp := tp.Tracer("t").Start(r.Context(), "before panic")
		sp.End()
		panic(http.ErrAbortHandler)
	}))
	req := httptest.NewRequest(http.MethodPost, "/", nil)
	req.Header.Set("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
	req.Header.Set(AskHeader, "1")
	rec := httptest.NewRecorder()
	func() {
		defer func() { _ = recover() }() // as net/http does
		h.ServeHTTP(rec, req)
	}()
	if rec.Header().Get(Header) != "" || proc.Stats().Requests != 0 {
		t.Errorf("a panicking handler's spans were returned")
	}
	if n := len(own.GetSpans()); n != 2 {
		t.Errorf("server's own exporter got %d spans; want 2", n)
	}
}
