package schema_test

import (
	"testing"

	"go.opentelemetry.io/otel/attribute"

	"github.com/lonelytrace/lonelytrace/schema"
)

// The attributes of the benchmarks' spans: a notify span's pub/sub fields
// and an HTTP client span's four attributes.
var (
	notifyAttrs = []attribute.KeyValue{
		schema.Operation(schema.OpNotify), schema.Topic("orders/eu"),
		schema.BodySize(1234), schema.Broadcaster("127.0.0.1:3003"),
	}
	clientAttrs = []attribute.KeyValue{
		attribute.String("http.request.method", "POST"), attribute.Int("http.response.status_code", 200),
		attribute.String("url.full", "http://127.0.0.1:3003/v1/notify"), attribute.Int("attempt", 2),
	}
)

// keyIDs numbers keys in order of first sight, as the writer's cache does.
func keyIDs() schema.KeyIDFunc {
	ids := map[string]int64{}
	return func(k string) int64 {
		id, ok := ids[k]
		if !ok {
			id = int64(len(ids) + 1)
			ids[k] = id
		}
		return id
	}
}

// BenchmarkAppendAttributes measures the row encoding of a span's
// attributes, as the writer does it: into a reused buffer, keys as ids.
func BenchmarkAppendAttributes(b *testing.B) {
	for _, bc := range []struct {
		name  string
		attrs []attribute.KeyValue
	}{{"notify", notifyAttrs}, {"client", clientAttrs}} {
		b.Run(bc.name, func(b *testing.B) {
			ids := keyIDs()
			var buf []byte
			b.ReportAllocs()
			for b.Loop() {
				buf = schema.AppendAttributes(buf[:0], bc.attrs, ids)
			}
			b.ReportMetric(float64(len(buf)), "bytes")
		})
	}
}

// BenchmarkExtractPubSub measures reading the pub/sub columns from a
// span's attributes, which the writer does for every span.
func BenchmarkExtractPubSub(b *testing.B) {
	b.ReportAllocs()
	var p schema.PubSub
	for b.Loop() {
		p = schema.ExtractPubSub(notifyAttrs)
	}
	if p.Op != schema.OpNotify || p.BodySize != 1234 {
		b.Fatalf("ExtractPubSub = %+v", p)
	}
}
