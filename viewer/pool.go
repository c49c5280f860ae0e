package viewer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/labstack/echo/v4"
)

// Defaults of the bound on the viewer's work (docs/design.md, "Under
// load"). Every request of the page and the JSON API reads the files and
// may hold a window's operations in memory, so the number computed at once
// bounds the viewer's memory: about DefaultHeavyRequests times what one
// request takes, beside the operation cache.
const (
	// DefaultHeavyRequests is how many requests compute at once: 2.
	DefaultHeavyRequests = 2
	// DefaultHeavyQueue is how many more requests wait for one of them:
	// 16. A request beyond that is answered 503 at once.
	DefaultHeavyQueue = 16
	// DefaultHeavyWait is how long a request waits for a computation
	// before it is answered 503: 15 s, half the request's 30 s, so that a
	// request that gets a slot late still has time to compute.
	DefaultHeavyWait = 15 * time.Second
)

// retryAfterSeconds is the Retry-After of a 503 for load.
const retryAfterSeconds = 2

// pool bounds the requests computed at once, and computes identical
// requests once: a request whose normalised form (method, path, sorted
// query) is being computed waits for that computation and gets its answer.
// The rest wait briefly for a slot and are then answered 503 with
// Retry-After, never 500.
type pool struct {
	slots chan struct{} // one token per computation running
	queue chan struct{} // one token per request waiting for a slot
	wait  time.Duration

	mu      sync.Mutex
	flights map[string]*flight

	// computed counts the computations started; joined the requests that
	// took another's answer; refused the 503s for load.
	computed, joined, refused atomic.Int64
	// hold, when set (tests), runs at the start of every computation,
	// with the request's context.
	hold func(context.Context)
}

// flight is one computation and the requests that wait for it.
type flight struct {
	done chan struct{} // closed once res is set
	res  *recorded
}

// recorded is a complete answer, kept to be written to every request
// that waited for it.
type recorded struct {
	status int
	header http.Header
	body   []byte
}

func newPool(slots, queue int, wait time.Duration) *pool {
	return &pool{
		slots:   make(chan struct{}, max(slots, 1)),
		queue:   make(chan struct{}, max(queue, 0)),
		wait:    wait,
		flights: make(map[string]*flight),
	}
}

// errBusy is a request refused for load: every slot busy and the queue
// full, or the wait over.
var errBusy = errors.New("viewer: busy")

// pooled runs next within p: at most cap(p.slots) at once, an identical
// request in flight answered from its computation.
func (p *pool) pooled(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		ctx := c.Request().Context()
		key := requestKey(c.Request())
		p.mu.Lock()
		if f, ok := p.flights[key]; ok {
			p.mu.Unlock()
			p.joined.Add(1)
			select {
			case <-f.done:
				return f.res.writeTo(c)
			case <-ctx.Done():
				return p.busy(ctx.Err()).writeTo(c)
			}
		}
		f := &flight{done: make(chan struct{})}
		p.flights[key] = f
		p.mu.Unlock()
		// The flight ends before its answer is written, so that neither
		// its waiters nor a request arriving later wait on a slow client;
		// deferred too, so that the waiters are let go even if next panics.
		end := sync.OnceFunc(func() {
			if f.res == nil {
				f.res = p.busy(errBusy)
			}
			p.mu.Lock()
			delete(p.flights, key)
			p.mu.Unlock()
			close(f.done)
		})
		defer end()
		f.res = p.run(c, next)
		end()
		return f.res.writeTo(c)
	}
}

// run takes a slot, waiting at most p.wait for one, and computes the
// answer of next for c.
func (p *pool) run(c echo.Context, next echo.HandlerFunc) *recorded {
	ctx := c.Request().Context()
	if err := p.acquire(ctx); err != nil {
		return p.busy(err)
	}
	defer func() { <-p.slots }()
	p.computed.Add(1)
	if p.hold != nil {
		p.hold(ctx)
	}
	return p.record(c, next)
}

// acquire takes a slot: at once if one is free, else after waiting in the
// queue for at most p.wait; errBusy when the queue is full or the wait is
// over, ctx's error when it ends first.
func (p *pool) acquire(ctx context.Context) error {
	select {
	case p.slots <- struct{}{}:
		return nil
	default:
	}
	select {
	case p.queue <- struct{}{}:
	default:
		return errBusy
	}
	defer func() { <-p.queue }()
	t := time.NewTimer(p.wait)
	defer t.Stop()
	select {
	case p.slots <- struct{}{}:
		return nil
	case <-t.C:
		return errBusy
	case <-ctx.Done():
		return ctx.Err()
	}
}

// record runs next with a response that keeps what it writes, and the
// error it returns written by the server's error handler, so that the
// answer can be written to every request that waited for it. A request
// that ran out of time is answered as busy.
func (p *pool) record(c echo.Context, next echo.HandlerFunc) *recorded {
	orig := c.Response()
	rec := &recorder{header: make(http.Header), status: http.StatusOK}
	c.SetResponse(echo.NewResponse(rec, c.Echo()))
	defer c.SetResponse(orig)
	err := next(c)
	// A query cut short by the request's end may fail with SQLite's
	// "interrupted" rather than the context's error: ask the context.
	if ctxErr := c.Request().Context().Err(); err != nil && ctxErr != nil {
		return p.busy(ctxErr)
	}
	if err != nil && (errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled)) {
		return p.busy(err)
	}
	if err != nil {
		c.Echo().HTTPErrorHandler(err, c)
	}
	return &recorded{status: rec.status, header: rec.header, body: rec.body}
}

// busy is the answer to a request refused for load, or whose computation
// ran out of time: 503 with Retry-After.
func (p *pool) busy(cause error) *recorded {
	p.refused.Add(1)
	msg := fmt.Sprintf("the viewer is busy: %d requests are being computed and more are waiting; retry in %d s", cap(p.slots), retryAfterSeconds)
	if errors.Is(cause, context.DeadlineExceeded) {
		msg = fmt.Sprintf("the viewer ran out of time for this request (%s); retry in %d s, or narrow the window", DefaultRequestTimeout, retryAfterSeconds)
	}
	body, _ := json.Marshal(map[string]string{"message": msg})
	h := make(http.Header)
	h.Set(echo.HeaderContentType, echo.MIMEApplicationJSON)
	h.Set(echo.HeaderRetryAfter, strconv.Itoa(retryAfterSeconds))
	return &recorded{status: http.StatusServiceUnavailable, header: h, body: append(body, '\n')}
}

// writeTo writes r to c's response, beside the headers already set on it
// (the security headers).
func (r *recorded) writeTo(c echo.Context) error {
	h := c.Response().Header()
	for k, vs := range r.header {
		h[k] = vs
	}
	c.Response().WriteHeader(r.status)
	_, err := c.Response().Write(r.body)
	return err
}

// requestKey is the normalised form of a request: two requests with the
// same key get the same answer. Query parameters are sorted by name.
func requestKey(r *http.Request) string {
	return r.Method + " " + r.URL.Path + "?" + r.URL.Query().Encode()
}

// recorder is an http.ResponseWriter that keeps the answer in memory.
type recorder struct {
	header http.Header
	status int
	wrote  bool
	body   []byte
}

func (r *recorder) Header() http.Header { return r.header }

func (r *recorder) WriteHeader(status int) {
	if !r.wrote {
		r.status, r.wrote = status, true
	}
}

func (r *recorder) Write(b []byte) (int, error) {
	r.wrote = true
	r.body = append(r.body, b...)
	return len(b), nil
}
