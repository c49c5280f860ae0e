package jaegerquery

import (
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"
)

// fakeSpan is a span the fake Jaeger holds.
type fakeSpan struct {
	service string
	spanID  pcommon.SpanID
	start   time.Time
	attrs   map[string]string
}

// fakeTrace is a trace the fake Jaeger holds.
type fakeTrace struct {
	id    pcommon.TraceID
	spans []fakeSpan
}

func (t fakeTrace) traces() ptrace.Traces {
	td := ptrace.NewTraces()
	for _, s := range t.spans {
		rs := td.ResourceSpans().AppendEmpty()
		rs.Resource().Attributes().PutStr("service.name", s.service)
		sp := rs.ScopeSpans().AppendEmpty().Spans().AppendEmpty()
		sp.SetTraceID(t.id)
		sp.SetSpanID(s.spanID)
		sp.SetName("op")
		sp.SetKind(ptrace.SpanKindProducer)
		sp.SetStartTimestamp(pcommon.NewTimestampFromTime(s.start))
		sp.SetEndTimestamp(pcommon.NewTimestampFromTime(s.start.Add(time.Millisecond)))
		for k, v := range s.attrs {
			sp.Attributes().PutStr(k, v)
		}
	}
	return td
}

// findQuery is a FindTracesRequest as the fake decodes it, with its own
// decoder rather than the package's encoder.
type findQuery struct {
	service            string
	startMin, startMax time.Time
	depth              int
	raw                bool
	attrs              string // "k=v;" for each attribute, in the order sent
}

// fakeJaeger is a jaeger.api_v3.QueryService on 127.0.0.1 over the
// bytes codec, holding traces in memory.
type fakeJaeger struct {
	addr     string
	services []string
	traces   []fakeTrace
	wire     [][]byte // traces[i] as a TracesData message

	mu      sync.Mutex
	queries []findQuery
	gets    []string // trace ids GetTrace was asked for
	// reply, if set, answers FindTraces instead of the stored traces:
	// it returns the messages to send and the error to end with.
	reply func(q findQuery, msgs [][]byte) ([][]byte, error)
}

func startFake(t testing.TB, services []string, traces []fakeTrace) *fakeJaeger {
	t.Helper()
	f := &fakeJaeger{services: services, traces: traces}
	for _, tr := range traces {
		b, err := (&ptrace.ProtoMarshaler{}).MarshalTraces(tr.traces())
		if err != nil {
			t.Fatal(err)
		}
		f.wire = append(f.wire, b)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f.addr = ln.Addr().String()
	srv := grpc.NewServer(grpc.ForceServerCodec(rawCodec{}), grpc.MaxSendMsgSize(64<<20))
	srv.RegisterService(&grpc.ServiceDesc{
		ServiceName: "jaeger.api_v3.QueryService",
		HandlerType: (*any)(nil),
		Methods: []grpc.MethodDesc{{
			MethodName: "GetServices",
			Handler: func(_ any, _ context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
				var req []byte
				if err := dec(&req); err != nil {
					return nil, err
				}
				var b []byte
				for _, s := range f.services {
					b = protowire.AppendTag(b, 1, protowire.BytesType)
					b = protowire.AppendString(b, s)
				}
				return b, nil
			},
		}},
		Streams: []grpc.StreamDesc{{
			StreamName:    "GetTrace",
			ServerStreams: true,
			Handler: func(_ any, s grpc.ServerStream) error {
				var req []byte
				if err := s.RecvMsg(&req); err != nil {
					return err
				}
				id, err := field(req, 1)
				if err != nil {
					return status.Error(codes.InvalidArgument, err.Error())
				}
				f.mu.Lock()
				f.gets = append(f.gets, string(id))
				f.mu.Unlock()
				for _, tr := range f.traces {
					if tr.id.String() == string(id) {
						b, err := (&ptrace.ProtoMarshaler{}).MarshalTraces(tr.traces())
						if err != nil {
							return err
						}
						return s.SendMsg(b)
					}
				}
				return status.Error(codes.NotFound, "trace not found")
			},
		}, {
			StreamName:    "FindTraces",
			ServerStreams: true,
			Handler: func(_ any, s grpc.ServerStream) error {
				var req []byte
				if err := s.RecvMsg(&req); err != nil {
					return err
				}
				q, err := decodeFindQuery(req)
				if err != nil {
					return status.Error(codes.InvalidArgument, err.Error())
				}
				f.mu.Lock()
				f.queries = append(f.queries, q)
				reply := f.reply
				f.mu.Unlock()
				msgs := f.find(q)
				var end error
				if reply != nil {
					msgs, end = reply(q, msgs)
				}
				for _, m := range msgs {
					if err := s.SendMsg(m); err != nil {
						return err
					}
				}
				return end
			},
		}},
	}, f)
	go srv.Serve(ln)
	t.Cleanup(srv.Stop)
	return f
}

// find returns the stored traces with a span of q's service that
// starts in [startMin, startMax), at most q.depth of them, a message a
// trace as Jaeger sends them.
func (f *fakeJaeger) find(q findQuery) [][]byte {
	var out [][]byte
	for i, tr := range f.traces {
		if len(out) == q.depth {
			break
		}
		for _, s := range tr.spans {
			if s.service == q.service && !s.start.Before(q.startMin) && s.start.Before(q.startMax) {
				out = append(out, f.wire[i])
				break
			}
		}
	}
	return out
}

// setReply sets f.reply; handlers of an earlier fetch may still run.
func (f *fakeJaeger) setReply(fn func(q findQuery, msgs [][]byte) ([][]byte, error)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reply = fn
}

func (f *fakeJaeger) findQueries() []findQuery {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]findQuery(nil), f.queries...)
}

// decodeFindQuery decodes a FindTracesRequest by walking its fields.
func decodeFindQuery(b []byte) (findQuery, error) {
	var q findQuery
	inner, err := field(b, 1)
	if err != nil {
		return q, err
	}
	for len(inner) > 0 {
		num, typ, n := protowire.ConsumeTag(inner)
		if n < 0 {
			return q, protowire.ParseError(n)
		}
		inner = inner[n:]
		switch {
		case typ == protowire.BytesType:
			v, n := protowire.ConsumeBytes(inner)
			if n < 0 {
				return q, protowire.ParseError(n)
			}
			inner = inner[n:]
			switch num {
			case 1:
				q.service = string(v)
			case 3:
				k, err := field(v, 1)
				if err != nil {
					return q, err
				}
				val, err := field(v, 2)
				if err != nil {
					return q, err
				}
				q.attrs += string(k) + "=" + string(val) + ";"
			case 4, 5:
				ts, err := decodeTimestamp(v)
				if err != nil {
					return q, err
				}
				if num == 4 {
					q.startMin = ts
				} else {
					q.startMax = ts
				}
			}
		case typ == protowire.VarintType:
			v, n := protowire.ConsumeVarint(inner)
			if n < 0 {
				return q, protowire.ParseError(n)
			}
			inner = inner[n:]
			switch num {
			case 8:
				q.depth = int(int32(v))
			case 9:
				q.raw = v != 0
			}
		default:
			return q, fmt.Errorf("field %d: unexpected type %d", num, typ)
		}
	}
	if q.startMin.IsZero() || q.startMax.IsZero() {
		return q, fmt.Errorf("start time min and max are required parameters")
	}
	return q, nil
}

func field(b []byte, want protowire.Number) ([]byte, error) {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return nil, protowire.ParseError(n)
		}
		b = b[n:]
		if num == want && typ == protowire.BytesType {
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return nil, protowire.ParseError(n)
			}
			return v, nil
		}
		n = protowire.ConsumeFieldValue(num, typ, b)
		if n < 0 {
			return nil, protowire.ParseError(n)
		}
		b = b[n:]
	}
	return nil, fmt.Errorf("field %d missing", want)
}

func decodeTimestamp(b []byte) (time.Time, error) {
	var sec, nsec int64
	for len(b) > 0 {
		num, _, n := protowire.ConsumeTag(b)
		if n < 0 {
			return time.Time{}, protowire.ParseError(n)
		}
		b = b[n:]
		v, n := protowire.ConsumeVarint(b)
		if n < 0 {
			return time.Time{}, protowire.ParseError(n)
		}
		b = b[n:]
		if num == 1 {
			sec = int64(v)
		} else {
			nsec = int64(v)
		}
	}
	return time.Unix(sec, nsec), nil
}

// makeTraces returns n traces in [start, start+span), one a step
// apart: each has a span of services[i%len], and every third also a
// span of the next service a millisecond later, so searches of both
// services find it.
func makeTraces(n int, services []string, start time.Time, step time.Duration) []fakeTrace {
	out := make([]fakeTrace, n)
	for i := range out {
		var id pcommon.TraceID
		binary.BigEndian.PutUint64(id[8:], uint64(i+1))
		id[0] = 0xab
		t0 := start.Add(time.Duration(i) * step)
		sid := func(k int) pcommon.SpanID {
			var s pcommon.SpanID
			binary.BigEndian.PutUint32(s[4:], uint32(i*4+k+1))
			return s
		}
		tr := fakeTrace{id: id, spans: []fakeSpan{{service: services[i%len(services)], spanID: sid(0), start: t0}}}
		if i%3 == 0 && len(services) > 1 {
			tr.spans = append(tr.spans, fakeSpan{service: services[(i+1)%len(services)], spanID: sid(1), start: t0.Add(time.Millisecond)})
		}
		out[i] = tr
	}
	return out
}
