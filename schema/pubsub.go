package schema

import (
	"strconv"

	"go.opentelemetry.io/otel/attribute"
)

// PubSub holds the pub/sub fields of one span, extracted from its
// attributes by the rules of the span conventions. The exporter stores them
// in the spans table's indexed columns; the zero value means "not a pub/sub
// operation".
type PubSub struct {
	// Op is one of the Op* constants, or "" when the span is not an
	// operation (it may still be a phase of one).
	Op string
	// Topic and Glob are "" when absent.
	Topic, Glob string
	// Broadcaster is BroadcasterKey, else server.address with
	// ":server.port" appended when the port is set; "" when neither is.
	Broadcaster string
	// BodySize and Subscribers are -1 when absent.
	BodySize, Subscribers int64
	// Stateful is -1 when absent, else 0 or 1.
	Stateful int8
}

// ExtractPubSub reads the pub/sub fields from attrs. A key of an unexpected
// type is ignored rather than guessed at, so a misbehaving instrumentation
// cannot put a string into a size column.
func ExtractPubSub(attrs []attribute.KeyValue) PubSub {
	p := PubSub{BodySize: -1, Subscribers: -1, Stateful: -1}
	var opType, addr string
	var port int64 = -1
	for _, kv := range attrs {
		switch kv.Key {
		case OperationKey:
			if kv.Value.Type() == attribute.STRING && IsOperation(kv.Value.AsString()) {
				p.Op = kv.Value.AsString()
			}
		case OperationTypeKey:
			if kv.Value.Type() == attribute.STRING {
				opType = kv.Value.AsString()
			}
		case TopicKey:
			if kv.Value.Type() == attribute.STRING {
				p.Topic = kv.Value.AsString()
			}
		case GlobKey:
			if kv.Value.Type() == attribute.STRING {
				p.Glob = kv.Value.AsString()
			}
		case BroadcasterKey:
			if kv.Value.Type() == attribute.STRING {
				p.Broadcaster = kv.Value.AsString()
			}
		case ServerAddressKey:
			if kv.Value.Type() == attribute.STRING {
				addr = kv.Value.AsString()
			}
		case ServerPortKey:
			if kv.Value.Type() == attribute.INT64 {
				port = kv.Value.AsInt64()
			}
		case BodySizeKey:
			if kv.Value.Type() == attribute.INT64 {
				p.BodySize = kv.Value.AsInt64()
			}
		case SubscribersKey:
			if kv.Value.Type() == attribute.INT64 {
				p.Subscribers = kv.Value.AsInt64()
			}
		case StatefulKey:
			if kv.Value.Type() == attribute.BOOL {
				p.Stateful = 0
				if kv.Value.AsBool() {
					p.Stateful = 1
				}
			}
		}
	}
	if p.Op == "" {
		switch opType {
		case "send", "publish":
			p.Op = OpNotify
		case "receive", "process":
			p.Op = OpReceive
		}
	}
	if p.Broadcaster == "" && addr != "" {
		p.Broadcaster = addr
		if port >= 0 {
			p.Broadcaster += ":" + strconv.FormatInt(port, 10)
		}
	}
	return p
}

// IsOperation reports whether op is one of the glossary's operations.
func IsOperation(op string) bool {
	_, ok := OpIndex(op)
	return ok
}
