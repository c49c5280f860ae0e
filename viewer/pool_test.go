package viewer_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lonelytrace/lonelytrace/schema"
	"github.com/lonelytrace/lonelytrace/viewer"
	"github.com/lonelytrace/lonelytrace/viewer/model"
)

// waitFor polls cond until it holds, failing the test after a bound far
// beyond what the wait needs (it measures no speed).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for range 3000 {
		if cond() {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("gave up waiting for %s", what)
}

// answer is one response of a concurrent request.
type answer struct {
	code       int
	retryAfter string
	body       []byte
}

// getAll fetches every rawQuery of path from base at once.
func getAll(t *testing.T, base, path string, rawQueries []string) []answer {
	t.Helper()
	out := make([]answer, len(rawQueries))
	var wg sync.WaitGroup
	for i, q := range rawQueries {
		wg.Go(func() {
			out[i] = fetch(t, base+path+"?"+q)
		})
	}
	wg.Wait()
	return out
}

func fetch(t *testing.T, u string) answer {
	resp, err := http.Get(u)
	if err != nil {
		t.Error(err)
		return answer{}
	}
	defer resp.Body.Close()
	var b []byte
	buf := make([]byte, 32<<10)
	for {
		n, err := resp.Body.Read(buf)
		b = append(b, buf[:n]...)
		if err != nil {
			break
		}
	}
	return answer{code: resp.StatusCode, retryAfter: resp.Header.Get("Retry-After"), body: b}
}

// TestServe_IdenticalRequestsComputedOnce holds the one computation of a
// summary until every identical request (its parameters in any order)
// waits for it: all get its answer, which counts what an independent count
// of the generated operations says, and the summary is computed once.
func TestServe_IdenticalRequestsComputedOnce(t *testing.T) {
	ops := genOps(11, 500)
	path := writeOps(t, t.TempDir(), "a.db", ops)
	v := mustOpen(t, testNow, path)
	viewer.SetPool(v, 2, 16, time.Minute)
	release := make(chan struct{})
	viewer.SetPoolHold(v, func(context.Context) { <-release })
	base := server(t, v)

	queries := []string{"since=beginning&tz=UTC", "tz=UTC&since=beginning"}
	var all []string
	for i := range 12 {
		all = append(all, queries[i%2])
	}
	var answers []answer
	done := make(chan struct{})
	go func() {
		answers = getAll(t, base, "/api/summary", all)
		close(done)
	}()
	waitFor(t, "every request to join the one computation", func() bool {
		return viewer.PoolCountsOf(v).Joined == int64(len(all)-1)
	})
	close(release)
	<-done

	var want int64
	for _, o := range ops {
		if o.op == schema.OpNotify && o.start.Before(testNow) {
			want++
		}
	}
	for i, a := range answers {
		if a.code != http.StatusOK {
			t.Fatalf("request %d: status %d: %s", i, a.code, a.body)
		}
		if string(a.body) != string(answers[0].body) {
			t.Errorf("request %d: answer differs from the first", i)
		}
	}
	var s model.Summary
	if err := json.Unmarshal(answers[0].body, &s); err != nil {
		t.Fatal(err)
	}
	if got := s.Operations[schema.OpNotify].Count; got != want {
		t.Errorf("notify count = %d; want %d", got, want)
	}
	if c := viewer.PoolCountsOf(v); c.Computed != 1 || c.Refused != 0 {
		t.Errorf("computed %d, refused %d; want 1, 0", c.Computed, c.Refused)
	}
	// Once answered, the same request is computed afresh.
	if a := fetch(t, base+"/api/summary?"+queries[0]); a.code != http.StatusOK {
		t.Fatalf("status %d: %s", a.code, a.body)
	}
	if c := viewer.PoolCountsOf(v).Computed; c != 2 {
		t.Errorf("computed %d after a later request; want 2", c)
	}
}

// TestServe_Overloaded fills the pool (one computation, held, and one
// request queued): a third request is answered 503 with Retry-After at
// once, a queued one 503 when its wait is over, and the held ones 200.
func TestServe_Overloaded(t *testing.T) {
	path := writeOps(t, t.TempDir(), "a.db", genOps(12, 200))
	for _, c := range []struct {
		name string
		wait time.Duration
	}{{"QueueFull", time.Minute}, {"WaitOver", 20 * time.Millisecond}} {
		t.Run(c.name, func(t *testing.T) {
			v := mustOpen(t, testNow, path)
			viewer.SetPool(v, 1, 1, c.wait)
			release := make(chan struct{})
			viewer.SetPoolHold(v, func(context.Context) { <-release })
			base := server(t, v)
			held := make(chan answer, 2)
			go func() { held <- fetch(t, base+"/api/summary?since=beginning") }()
			waitFor(t, "the first computation", func() bool { return viewer.PoolCountsOf(v).Running == 1 })
			queued := make(chan answer, 1)
			go func() { queued <- fetch(t, base+"/api/series?since=beginning") }()
			var busy answer
			if c.wait == time.Minute {
				waitFor(t, "a request in the queue", func() bool { return viewer.PoolCountsOf(v).Queued == 1 })
				busy = fetch(t, base+"/api/breakdown?since=beginning&op=notify&by=topic")
			} else {
				busy = <-queued // its wait is over while the first is held
			}
			if busy.code != http.StatusServiceUnavailable || busy.retryAfter == "" {
				t.Errorf("overloaded: status %d, Retry-After %q; want 503 with Retry-After (%s)", busy.code, busy.retryAfter, busy.body)
			}
			var msg struct{ Message string }
			if err := json.Unmarshal(busy.body, &msg); err != nil || msg.Message == "" {
				t.Errorf("overloaded: body %q; want a JSON message", busy.body)
			}
			close(release)
			if a := <-held; a.code != http.StatusOK {
				t.Errorf("held request: status %d: %s", a.code, a.body)
			}
			if c.wait == time.Minute {
				if a := <-queued; a.code != http.StatusOK {
					t.Errorf("queued request: status %d: %s", a.code, a.body)
				}
			}
			if r := viewer.PoolCountsOf(v).Refused; r != 1 {
				t.Errorf("refused = %d; want 1", r)
			}
		})
	}
}

// TestServe_ConcurrentLoad sends many different heavy requests at once
// (pages, summaries, searches) with the default pool: each is answered
// 200, or 503 with Retry-After; never 500.
func TestServe_ConcurrentLoad(t *testing.T) {
	path := writeOps(t, t.TempDir(), "a.db", genOps(13, 3000))
	v := mustOpen(t, testNow, path)
	base := server(t, v)
	var urls []string
	for i := range 48 {
		since := url.QueryEscape(testNow.Add(-time.Duration(i+1) * time.Hour).Format(time.RFC3339))
		switch i % 4 {
		case 0:
			urls = append(urls, fmt.Sprintf("%s/?since=%s", base, since))
		case 1:
			urls = append(urls, fmt.Sprintf("%s/api/summary?since=%s", base, since))
		case 2:
			urls = append(urls, fmt.Sprintf("%s/api/traces?since=%s&attr=k%d=v", base, since, i))
		default:
			urls = append(urls, fmt.Sprintf("%s/?since=beginning", base)) // identical
		}
	}
	answers := make([]answer, len(urls))
	var wg sync.WaitGroup
	for i, u := range urls {
		wg.Go(func() { answers[i] = fetch(t, u) })
	}
	wg.Wait()
	ok := 0
	for i, a := range answers {
		switch {
		case a.code == http.StatusOK:
			ok++
		case a.code == http.StatusServiceUnavailable && a.retryAfter != "":
		default:
			t.Errorf("%s: status %d, Retry-After %q: %.200s", urls[i], a.code, a.retryAfter, a.body)
		}
	}
	if ok < viewer.DefaultHeavyRequests {
		t.Errorf("%d answered 200; want at least %d", ok, viewer.DefaultHeavyRequests)
	}
	c := viewer.PoolCountsOf(v)
	if c.Running != 0 || c.Queued != 0 {
		t.Errorf("after the answers: %d running, %d queued; want none", c.Running, c.Queued)
	}
	t.Logf("%d of %d answered 200; %d computations, %d joined, %d refused", ok, len(urls), c.Computed, c.Joined, c.Refused)
}

// TestServe_LeaderGone cancels the request whose computation others wait
// for, while it computes: its waiters are answered 503 with Retry-After,
// not 500, and the next identical request is computed afresh.
func TestServe_LeaderGone(t *testing.T) {
	path := writeOps(t, t.TempDir(), "a.db", genOps(14, 300))
	v := mustOpen(t, testNow, path)
	viewer.SetPool(v, 2, 16, time.Minute)
	var computations atomic.Int32
	viewer.SetPoolHold(v, func(ctx context.Context) {
		if computations.Add(1) == 1 { // the first: until its request ends
			<-ctx.Done()
		}
	})
	base := server(t, v)
	u := base + "/?since=beginning"
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	leader := make(chan error, 1)
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		leader <- err
	}()
	waitFor(t, "the first computation", func() bool { return computations.Load() == 1 })
	joiner := make(chan answer, 1)
	go func() { joiner <- fetch(t, u) }()
	waitFor(t, "a request to join it", func() bool { return viewer.PoolCountsOf(v).Joined == 1 })
	cancel()
	<-leader
	if a := <-joiner; a.code != http.StatusServiceUnavailable || a.retryAfter == "" {
		t.Errorf("waiter of a cancelled computation: status %d, Retry-After %q; want 503 with Retry-After (%.200s)", a.code, a.retryAfter, a.body)
	}
	if a := fetch(t, u); a.code != http.StatusOK {
		t.Errorf("the next identical request: status %d; want 200 (%.200s)", a.code, a.body)
	}
}
