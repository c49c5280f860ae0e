package schema

import (
	"go.opentelemetry.io/otel/attribute"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
)

// The attribute keys the viewer reads. The OpenTelemetry messaging semantic
// conventions come first; the lonelytrace.* keys exist only where those
// conventions have nothing to say. docs/design.md#span-conventions has the
// table of keys and the rules by which they are read.
const (
	// OperationKey names the pub/sub operation of a span; its values are the
	// Op* constants.
	OperationKey = semconv.MessagingOperationNameKey
	// OperationTypeKey is the conventions' coarse operation type. Spans of
	// other instrumentations that set only this key are still counted:
	// "send" and "publish" as notify, "receive" and "process" as receive.
	OperationTypeKey = semconv.MessagingOperationTypeKey
	// TopicKey is the exact topic of a message or subscription.
	TopicKey = semconv.MessagingDestinationNameKey
	// BodySizeKey is the number of meaningful bytes: the size of the body
	// the user sent, not of topic, headers, signatures or framing.
	BodySizeKey = semconv.MessagingMessageBodySizeKey
	// ServerAddressKey and ServerPortKey name the broadcaster when
	// BroadcasterKey is absent.
	ServerAddressKey = semconv.ServerAddressKey
	ServerPortKey    = semconv.ServerPortKey

	// GlobKey is the fnmatch-style pattern of a glob subscription.
	GlobKey = attribute.Key("lonelytrace.glob")
	// BroadcasterKey names the broadcaster an operation went through.
	BroadcasterKey = attribute.Key("lonelytrace.broadcaster")
	// SubscribersKey is the number of subscribers a notify reached.
	SubscribersKey = attribute.Key("lonelytrace.subscribers")
	// StatefulKey is true when the operation used a stateful (websocket)
	// connection; absent means stateless.
	StatefulKey = attribute.Key("lonelytrace.stateful")
)

// The operations of the pub/sub glossary, the values of OperationKey.
const (
	OpNotify           = "notify"
	OpReceive          = "receive"
	OpSubscribeExact   = "subscribe_exact"
	OpSubscribeGlob    = "subscribe_glob"
	OpUnsubscribeExact = "unsubscribe_exact"
	OpUnsubscribeGlob  = "unsubscribe_glob"
	OpSetSubscriptions = "set_subscriptions"
	OpMissed           = "missed"
)

// Operations lists every operation in the order the viewer shows them; an
// operation's index here is its OpIndex.
var Operations = [...]string{
	OpNotify, OpReceive, OpSubscribeExact, OpSubscribeGlob,
	OpUnsubscribeExact, OpUnsubscribeGlob, OpSetSubscriptions, OpMissed,
}

// The indexes of the two operations the viewer treats specially in
// Operations.
const (
	NotifyIndex  = 0
	ReceiveIndex = 1
)

// OpIndex returns op's index in Operations, and false when op is not one
// of the glossary's operations.
func OpIndex(op string) (int, bool) {
	for i, o := range Operations {
		if o == op {
			return i, true
		}
	}
	return 0, false
}

// Operation returns the attribute that marks a span as the pub/sub
// operation op, for trace.WithAttributes or span.SetAttributes.
func Operation(op string) attribute.KeyValue { return OperationKey.String(op) }

// Topic returns the attribute for the exact topic.
func Topic(topic string) attribute.KeyValue { return TopicKey.String(topic) }

// Glob returns the attribute for a glob pattern.
func Glob(pattern string) attribute.KeyValue { return GlobKey.String(pattern) }

// Broadcaster returns the attribute naming the broadcaster.
func Broadcaster(name string) attribute.KeyValue { return BroadcasterKey.String(name) }

// BodySize returns the attribute for the meaningful bytes of a message.
func BodySize(n int) attribute.KeyValue { return BodySizeKey.Int(n) }

// Subscribers returns the attribute for the subscribers a notify reached.
func Subscribers(n int) attribute.KeyValue { return SubscribersKey.Int(n) }

// Stateful returns the attribute for the connection style.
func Stateful(stateful bool) attribute.KeyValue { return StatefulKey.Bool(stateful) }

// Notify returns the start options of a notify span: the operation, the
// topic, the meaningful bytes and the broadcaster it goes through. Set
// Subscribers on the span when the broadcaster has answered.
func Notify(topic string, bodySize int, broadcaster string) trace.SpanStartOption {
	return trace.WithAttributes(Operation(OpNotify), Topic(topic), BodySize(bodySize), Broadcaster(broadcaster))
}

// Receive returns the start options of a receive span.
func Receive(topic string, bodySize int, broadcaster string) trace.SpanStartOption {
	return trace.WithAttributes(Operation(OpReceive), Topic(topic), BodySize(bodySize), Broadcaster(broadcaster))
}
