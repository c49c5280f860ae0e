package main

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// startView runs serveView with args and returns the address it printed
// and a func that stops it and returns its error.
func startView(t *testing.T, args ...string) (string, func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	errc := make(chan error, 1)
	go func() { errc <- serveView(ctx, args, pw); pw.Close() }()
	line, err := bufio.NewReader(pr).ReadString('\n')
	go io.Copy(io.Discard, pr)
	if err != nil {
		cancel()
		t.Fatalf("view printed nothing: %v (%v)", err, <-errc)
	}
	i := strings.Index(line, "http://")
	url := strings.Fields(line[i:])[0]
	url = url[:strings.Index(url, "/stats/")+len("/stats/")]
	// The viewer listens on all addresses; reach it through loopback.
	url = strings.Replace(url, "[::]", "127.0.0.1", 1)
	url = strings.Replace(url, "0.0.0.0", "127.0.0.1", 1)
	var once sync.Once
	var stopErr error
	stop := func() error {
		once.Do(func() {
			cancel()
			select {
			case stopErr = <-errc:
			case <-time.After(10 * time.Second):
				stopErr = context.DeadlineExceeded
			}
		})
		return stopErr
	}
	t.Cleanup(func() { stop() })
	return url, stop
}

func status(t *testing.T, url, bearer string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestView_Token(t *testing.T) {
	path := mustFile(t)
	const tok = "0123456789abcdef0123"
	t.Run("NonLoopbackNeedsToken", func(t *testing.T) {
		t.Setenv(envViewerToken, "")
		for _, addr := range []string{"0.0.0.0:0", ":0", "[::]:0"} {
			err := serveView(context.Background(), []string{"-addr", addr, path}, io.Discard)
			if err == nil || !strings.Contains(err.Error(), "token") {
				t.Errorf("view -addr %s without a token = %v; want a refusal asking for a token", addr, err)
			}
		}
		err := serveView(context.Background(), []string{"-addr", "0.0.0.0:0", "-token", "short", path}, io.Discard)
		if err == nil || !strings.Contains(err.Error(), "at least") {
			t.Errorf("view with a short token = %v; want a refusal", err)
		}
	})
	check := func(t *testing.T, base string) {
		t.Helper()
		if code, _ := status(t, base, ""); code != http.StatusUnauthorized {
			t.Errorf("GET without the token = %d; want 401", code)
		}
		if code, _ := status(t, base+"api/summary?token=wrong-token-wrong-token", ""); code != http.StatusUnauthorized {
			t.Errorf("GET with a wrong token = %d; want 401", code)
		}
		if code, _ := status(t, base+"api/summary", tok+"x"); code != http.StatusUnauthorized {
			t.Errorf("GET with a wrong bearer = %d; want 401", code)
		}
		if code, _ := status(t, base+"api/summary?since=beginning", tok); code != http.StatusOK {
			t.Errorf("GET with the bearer = %d; want 200", code)
		}
		code, page := status(t, base+"?since=beginning&token="+tok, "")
		if code != http.StatusOK {
			t.Fatalf("GET with ?token = %d; want 200", code)
		}
		if !strings.Contains(page, `<input type="hidden" name="token" value="`+tok+`">`) {
			t.Error("the page's form does not carry the token")
		}
		if !regexp.MustCompile(`href="trace/[0-9a-f]{32}\?[^"]*token=` + regexp.QuoteMeta(tok)).MatchString(page) {
			t.Error("the page's trace links do not carry the token")
		}
	}
	t.Run("Flag", func(t *testing.T) {
		t.Setenv(envViewerToken, "")
		base, stop := startView(t, "-addr", "0.0.0.0:0", "-token", tok, path)
		check(t, base)
		if err := stop(); err != nil {
			t.Errorf("view returned %v", err)
		}
	})
	t.Run("Env", func(t *testing.T) {
		t.Setenv(envViewerToken, tok)
		base, _ := startView(t, "-addr", "0.0.0.0:0", path)
		check(t, base)
	})
	t.Run("LoopbackWithoutToken", func(t *testing.T) {
		t.Setenv(envViewerToken, "")
		base, _ := startView(t, "-addr", "127.0.0.1:0", path)
		if code, _ := status(t, base, ""); code != http.StatusOK {
			t.Errorf("GET on loopback without a token = %d; want 200", code)
		}
	})
}
