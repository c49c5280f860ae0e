package main

import (
	"context"
	"encoding/json"
	"sync"
	"sync/atomic"

	"github.com/coder/websocket"
)

// errClosed is the error of a request on a connection that has closed.
var errClosed error = ClosedError{}

// wsPeer is one end of a stateful connection. Either side sends requests
// that the other answers (a subscriber's operations, a broadcaster's
// receives); answers find their request by ID.
type wsPeer struct {
	c   *websocket.Conn
	key string
	seq atomic.Uint64

	mu      sync.Mutex
	pending map[uint64]chan frame
	closed  bool
}

func newPeer(c *websocket.Conn, key string) *wsPeer {
	return &wsPeer{c: c, key: key, pending: make(map[uint64]chan frame)}
}

func (p *wsPeer) write(ctx context.Context, f frame) error {
	data, err := json.Marshal(f)
	if err != nil {
		return err
	}
	return p.c.Write(ctx, websocket.MessageText, data)
}

// request sends f with a fresh ID and waits for its answer.
func (p *wsPeer) request(ctx context.Context, f frame) (frame, error) {
	f.ID = p.seq.Add(1)
	ch := make(chan frame, 1)
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return frame{}, errClosed
	}
	p.pending[f.ID] = ch
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		delete(p.pending, f.ID)
		p.mu.Unlock()
	}()
	if err := p.write(ctx, f); err != nil {
		return frame{}, err
	}
	select {
	case ans, ok := <-ch:
		if !ok {
			return frame{}, errClosed
		}
		return ans, nil
	case <-ctx.Done():
		return frame{}, ctx.Err()
	}
}

// readLoop reads frames until the connection fails, routes answers to
// their requests and hands every other frame to serve.
func (p *wsPeer) readLoop(ctx context.Context, serve func(frame)) {
	defer p.failPending()
	for {
		_, data, err := p.c.Read(ctx)
		if err != nil {
			return
		}
		var f frame
		if err := json.Unmarshal(data, &f); err != nil {
			continue
		}
		if f.Type == frameAnswer || f.Type == frameConfirm {
			p.mu.Lock()
			ch := p.pending[f.ID]
			delete(p.pending, f.ID)
			p.mu.Unlock()
			if ch != nil {
				ch <- f
			}
			continue
		}
		serve(f)
	}
}

func (p *wsPeer) failPending() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	for id, ch := range p.pending {
		close(ch)
		delete(p.pending, id)
	}
}

func (p *wsPeer) close(code websocket.StatusCode, reason string) {
	_ = p.c.Close(code, reason)
}

// deliver sends a message to a stateful subscriber and returns how to check
// its confirmation.
func (p *wsPeer) deliver(ctx context.Context, broadcaster, topic string, body []byte, hash, auth string) (func() error, error) {
	ctx, cancel := context.WithTimeout(ctx, deliveryTimeout)
	defer cancel()
	ans, err := p.request(ctx, frame{
		Type: frameReceive, Trace: injectFrame(ctx),
		Broadcaster: broadcaster, Topic: topic, Body: body, Hash: hash, Auth: auth,
	})
	if err != nil {
		return nil, err
	}
	return func() error {
		if ans.Error != "" {
			return PeerError{Msg: "receive: " + ans.Error}
		}
		return nil
	}, nil
}
