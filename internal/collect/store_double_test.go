package collect

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"go.opentelemetry.io/collector/pdata/ptrace"
)

// testStore is a temporary double of the file store, for the protocol
// work before the OTLP conversion lands. TODO(collect): the real file.
type testStore struct {
	mu      sync.Mutex
	spans   int
	busy    bool
	queue   int // spans queued, stored by flush
	maxQ    int
	invalid func(ptrace.Span) bool
}

func mustStore(t testing.TB) *testStore { return &testStore{maxQ: 1 << 30} }

func (s *testStore) Store(ctx context.Context, td ptrace.Traces, wait bool) (int, int, string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.busy {
		return 0, 0, "", ErrBusy
	}
	acc, rej := 0, 0
	for _, rs := range td.ResourceSpans().All() {
		for _, ss := range rs.ScopeSpans().All() {
			for _, sp := range ss.Spans().All() {
				if sp.TraceID().IsEmpty() || sp.SpanID().IsEmpty() {
					rej++
				} else {
					acc++
				}
			}
		}
	}
	s.spans += acc
	msg := ""
	if rej > 0 {
		msg = fmt.Sprintf("%d spans with an all-zero id", rej)
	}
	return acc, rej, msg, nil
}

func (s *testStore) count(t testing.TB) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.spans
}

func (s *testStore) stall(t testing.TB) (resume func()) {
	s.mu.Lock()
	s.busy = true
	s.mu.Unlock()
	return func() { s.mu.Lock(); s.busy = false; s.mu.Unlock() }
}
