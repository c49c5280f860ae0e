package main

import (
	"context"
	"crypto/hmac"
	"crypto/sha512"
	"encoding/hex"
	"net/http"
	"slices"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
)

// The HTTP paths of the two sides. Broadcasters serve the first group,
// stateless subscribers the /v1/receive and every subscriber /v1/missed (its
// recovery URL).
const (
	pathNotify           = "/v1/notify"
	pathSubscribeExact   = "/v1/subscribe/exact"
	pathSubscribeGlob    = "/v1/subscribe/glob"
	pathUnsubscribeExact = "/v1/unsubscribe/exact"
	pathUnsubscribeGlob  = "/v1/unsubscribe/glob"
	pathSetSubscriptions = "/v1/subscriptions"
	pathWebsocket        = "/v1/websocket"
	pathReceive          = "/v1/receive"
	pathMissed           = "/v1/missed"
)

// Headers of a notify or a receive; the body is the message itself, so that
// its length is the meaningful bytes.
const (
	headerTopic = "Pubsub-Topic"
	headerHash  = "Pubsub-Sha512"
	headerAuth  = "Authorization"
	// headerBroadcaster names the broadcaster that delivers a message.
	headerBroadcaster = "Pubsub-Broadcaster"
)

// maxBody bounds a message body; the demo's largest is 128 KiB.
const maxBody = 1 << 20

// subscriptionRequest is the JSON body of the subscription operations, and
// of the stateful frames that carry them.
type subscriptionRequest struct {
	// URL is the subscriber's receive URL; empty for a stateful
	// subscriber, whose connection is its address.
	URL      string `json:"url,omitempty"`
	Recovery string `json:"recovery"`
	Topic    string `json:"topic,omitempty"`
	Glob     string `json:"glob,omitempty"`
	// Exact, Globs and ETag are for set subscriptions: the whole set, and
	// its etag, which the broadcaster recomputes and checks.
	Exact []string `json:"exact,omitempty"`
	Globs []string `json:"globs,omitempty"`
	ETag  string   `json:"etag,omitempty"`
}

// notifyAnswer is the broadcaster's answer to a notify.
type notifyAnswer struct {
	Subscribers int `json:"subscribers"`
}

// setAnswer is the broadcaster's answer to set subscriptions.
type setAnswer struct {
	ETag      string `json:"etag"`
	Unchanged bool   `json:"unchanged"`
}

// missedMessage is the body of a missed message sent to a recovery URL.
type missedMessage struct {
	Topic       string `json:"topic"`
	Broadcaster string `json:"broadcaster"`
}

// frame is one websocket message of a stateful connection, in either
// direction. Requests from the subscriber carry an ID that the answer
// repeats; receives from the broadcaster carry one that the confirmation
// repeats.
type frame struct {
	Type string `json:"type"`
	ID   uint64 `json:"id"`
	// Trace carries the W3C trace context of the frame.
	Trace map[string]string `json:"trace,omitempty"`

	Sub   *subscriptionRequest `json:"sub,omitempty"`
	Topic string               `json:"topic,omitempty"`
	// Broadcaster names the broadcaster of a receive.
	Broadcaster string `json:"broadcaster,omitempty"`
	Hash        string `json:"hash,omitempty"`
	Auth        string `json:"auth,omitempty"`
	Body        []byte `json:"body,omitempty"`

	// ReturnSpans asks the broadcaster for its spans of this request; Spans
	// is the answer's Gather.Finish encoding.
	ReturnSpans bool   `json:"return_spans,omitempty"`
	Spans       []byte `json:"spans,omitempty"`

	Subscribers int    `json:"subscribers,omitempty"`
	ETag        string `json:"etag,omitempty"`
	Error       string `json:"error,omitempty"`
}

// The frame types.
const (
	frameNotify  = "notify"
	frameAnswer  = "answer"
	frameReceive = "receive"
	frameConfirm = "confirm"
	// Subscription frames use the operation names of the schema.
)

// injectHeaders writes ctx's trace context into h with the global
// propagator (W3C trace context and baggage unless OTEL_PROPAGATORS says
// otherwise).
func injectHeaders(ctx context.Context, h http.Header) {
	otel.GetTextMapPropagator().Inject(ctx, propagation.HeaderCarrier(h))
}

// extractHeaders returns ctx with the trace context of h.
func extractHeaders(ctx context.Context, h http.Header) context.Context {
	return otel.GetTextMapPropagator().Extract(ctx, propagation.HeaderCarrier(h))
}

// injectFrame returns ctx's trace context for a frame.
func injectFrame(ctx context.Context) map[string]string {
	m := propagation.MapCarrier{}
	otel.GetTextMapPropagator().Inject(ctx, m)
	return m
}

// extractFrame returns ctx with the trace context of a frame.
func extractFrame(ctx context.Context, m map[string]string) context.Context {
	return otel.GetTextMapPropagator().Extract(ctx, propagation.MapCarrier(m))
}

// bodyHash is the SHA-512 of a message body, hex-encoded, as the original
// pub/sub system (docs/design.md#glossary) sends it.
func bodyHash(body []byte) string {
	sum := sha512.Sum512(body)
	return hex.EncodeToString(sum[:])
}

// sign authenticates a message between processes of the demo: an HMAC of
// the topic and the body's hash under the run's shared secret.
func sign(secret, topic, hash string) string {
	m := hmac.New(sha512.New, []byte(secret))
	m.Write([]byte(topic))
	m.Write([]byte{0})
	m.Write([]byte(hash))
	return "hmac " + hex.EncodeToString(m.Sum(nil))
}

// errBadSignature is the failure of a message whose signature verify
// rejects.
var errBadSignature error = SignatureError{}

// verify checks a signature made by sign.
func verify(secret, topic, hash, auth string) bool {
	return hmac.Equal([]byte(auth), []byte(sign(secret, topic, hash)))
}

// etagOf is the etag of a whole subscription set: the SHA-512 of its sorted
// exact topics and globs. Both sides compute it, so a set subscriptions
// that would change nothing is recognised and a garbled one refused.
func etagOf(exact, globs []string) string {
	exact, globs = slices.Sorted(slices.Values(exact)), slices.Sorted(slices.Values(globs))
	h := sha512.New()
	for _, t := range exact {
		h.Write([]byte("e\x00" + t + "\x00"))
	}
	for _, g := range globs {
		h.Write([]byte("g\x00" + g + "\x00"))
	}
	return `"` + hex.EncodeToString(h.Sum(nil)[:16]) + `"`
}
