package otlp_test

import (
	"bytes"
	"context"
	"reflect"
	"slices"
	"testing"

	"go.opentelemetry.io/otel/trace"

	"github.com/lonelytrace/lonelytrace/internal/otlp"
	"github.com/lonelytrace/lonelytrace/schema"
)

// TestReadTraces_SameAsReader: Export's reader (a scan connection) gives
// every span exactly as schema.Reader does, field for field: attributes of
// every type, events, links, resources, scopes, the pub/sub columns, and
// the NULLs among them; in one query for all traces and a trace at a time.
func TestReadTraces_SameAsReader(t *testing.T) {
	path := tempDB(t)
	exp := mustExporter(t, path)
	ctx := context.Background()
	for seed := range byte(3) {
		if _, _, _, err := otlp.Store(ctx, exp, richTraces(40, seed), otlp.Wait); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, _, err := otlp.Store(ctx, exp, manyResources(5, 20), otlp.Wait); err != nil {
		t.Fatal(err)
	}
	if err := exp.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	all := readAll(t, path)
	var ids []trace.TraceID
	for _, s := range all {
		ids = append(ids, s.TraceID)
	}
	slices.SortFunc(ids, func(a, b trace.TraceID) int { return bytes.Compare(a[:], b[:]) })
	ids = slices.Compact(ids)
	if len(all) < 100 || len(ids) < 40 {
		t.Fatalf("file holds %d spans of %d traces; want at least 100 of 40", len(all), len(ids))
	}
	db, err := schema.OpenRead(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	r := schema.NewReader(db)
	for _, set := range [][]trace.TraceID{ids, ids[:1], ids[len(ids)/2 : len(ids)/2+7]} {
		want, err := r.Traces(ctx, set)
		if err != nil {
			t.Fatal(err)
		}
		got, err := otlp.ReadTraces(path, set)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(want) {
			t.Fatalf("%d traces: %d spans; want %d", len(set), len(got), len(want))
		}
		for i := range want {
			if !reflect.DeepEqual(got[i], want[i]) {
				t.Fatalf("%d traces: span %d = %+v\nwant %+v", len(set), i, got[i], want[i])
			}
		}
	}
}
