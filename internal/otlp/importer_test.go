package otlp_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"testing"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/lonelytrace/lonelytrace/internal/otlp"
	"github.com/lonelytrace/lonelytrace/schema"
)

// dupTraces returns n traces of 3 spans and one of 100, their spans in a
// random order, with every extra-th span repeated, and the set of
// distinct (trace, span) ids, computed apart from the spans.
func dupTraces(n, extra int, seed uint64) (ptrace.Traces, map[[24]byte]bool) {
	type id struct {
		t pcommon.TraceID
		s pcommon.SpanID
	}
	var ids []id
	for tr := range n + 1 {
		t := pcommon.TraceID{byte(seed), byte(tr >> 8), byte(tr), 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1}
		count := 3
		if tr == n {
			count = 100
		}
		for sp := range count {
			ids = append(ids, id{t, pcommon.SpanID{byte(tr >> 8), byte(tr), byte(sp), 2, 2, 2, 2, 2}})
		}
	}
	distinct := map[[24]byte]bool{}
	for _, x := range ids {
		distinct[[24]byte(append(x.t[:], x.s[:]...))] = true
	}
	for i := 0; i < len(ids); i += extra {
		ids = append(ids, ids[i])
	}
	r := rand.New(rand.NewPCG(seed, 7))
	r.Shuffle(len(ids), func(i, j int) { ids[i], ids[j] = ids[j], ids[i] })
	td := ptrace.NewTraces()
	ss := td.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty()
	for _, x := range ids {
		p := ss.Spans().AppendEmpty()
		p.SetTraceID(x.t)
		p.SetSpanID(x.s)
		p.SetName("op")
		p.SetStartTimestamp(1_700_000_000_000_000_000)
		p.SetEndTimestamp(1_700_000_000_001_000_000)
	}
	return td, distinct
}

// half returns the spans of td whose trace id's third byte is even.
func half(td ptrace.Traces) ptrace.Traces {
	out := ptrace.NewTraces()
	td.CopyTo(out)
	out.ResourceSpans().At(0).ScopeSpans().At(0).Spans().RemoveIf(func(p ptrace.Span) bool { return p.TraceID()[2]%2 == 1 })
	return out
}

func TestImporter_Duplicates(t *testing.T) {
	ctx := context.Background()
	path := tempDB(t)
	all, distinct := dupTraces(700, 17, 1)
	part := half(all)
	partDistinct := map[[24]byte]bool{}
	for _, p := range part.ResourceSpans().At(0).ScopeSpans().At(0).Spans().All() {
		tid, sid := p.TraceID(), p.SpanID()
		partDistinct[[24]byte(append(tid[:], sid[:]...))] = true
	}

	// A file that holds part of the traces already.
	exp := mustExporter(t, path)
	im, err := otlp.NewImporter(ctx, exp, path)
	if err != nil {
		t.Fatal(err)
	}
	stored, dups, _, _, err := im.Import(ctx, part)
	if err != nil || stored != len(partDistinct) || dups != part.SpanCount()-len(partDistinct) {
		t.Fatalf("first Import = %d stored, %d duplicates, %v; want %d, %d", stored, dups, err, len(partDistinct), part.SpanCount()-len(partDistinct))
	}
	im.Close()
	if err := exp.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}

	exp = mustExporter(t, path)
	im, err = otlp.NewImporter(ctx, exp, path)
	if err != nil {
		t.Fatal(err)
	}
	defer im.Close()
	want := len(distinct) - len(partDistinct)
	stored, dups, _, _, err = im.Import(ctx, all)
	if err != nil || stored != want || dups != all.SpanCount()-want {
		t.Fatalf("Import into the file = %d stored, %d duplicates, %v; want %d, %d", stored, dups, err, want, all.SpanCount()-want)
	}
	stored, dups, _, _, err = im.Import(ctx, all)
	if err != nil || stored != 0 || dups != all.SpanCount() {
		t.Fatalf("Import again = %d stored, %d duplicates, %v; want 0, %d", stored, dups, err, all.SpanCount())
	}
	if err := exp.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	got := map[[24]byte]int{}
	for _, s := range readAll(t, path) {
		got[[24]byte(append(s.TraceID[:], s.SpanID[:]...))]++
	}
	if len(got) != len(distinct) {
		t.Errorf("file holds %d distinct spans; want %d", len(got), len(distinct))
	}
	for k, n := range got {
		if n != 1 || !distinct[k] {
			t.Errorf("span %x: %d rows, in the input %v; want 1 row of an input span", k, n, distinct[k])
		}
	}
}

// failingSink fails its first ExportRecords, then hands on to a real
// exporter.
type failingSink struct {
	otlp.Sink
	failed bool
}

func (f *failingSink) ExportRecords(ctx context.Context, spans []schema.Span) error {
	if !f.failed {
		f.failed = true
		return errors.New("disk on fire")
	}
	return f.Sink.ExportRecords(ctx, spans)
}

// TestImporter_FailedExport: spans the sink did not take are not
// duplicates the next time.
func TestImporter_FailedExport(t *testing.T) {
	ctx := context.Background()
	path := tempDB(t)
	exp := mustExporter(t, path)
	im, err := otlp.NewImporter(ctx, &failingSink{Sink: exp}, path)
	if err != nil {
		t.Fatal(err)
	}
	defer im.Close()
	td, distinct := dupTraces(40, 5, 2)
	if _, _, _, _, err := im.Import(ctx, td); err == nil {
		t.Fatal("Import through a failing sink: no error")
	}
	stored, _, _, _, err := im.Import(ctx, td)
	if err != nil || stored != len(distinct) {
		t.Fatalf("Import after the failure = %d stored, %v; want %d", stored, err, len(distinct))
	}
}

// TestImporter_Forget imports shuffled spans with duplicates into a new
// file, in batches, with an Importer that forgets every 50 traces: the
// file answers for the traces it forgot, so every distinct span is
// stored once and every duplicate skipped, as with an Importer that
// remembers everything.
func TestImporter_Forget(t *testing.T) {
	ctx := context.Background()
	path := tempDB(t)
	all, distinct := dupTraces(700, 5, 3)
	exp := mustExporter(t, path)
	im, err := otlp.NewImporter(ctx, exp, path)
	if err != nil {
		t.Fatal(err)
	}
	defer im.Close()
	otlp.SetTraceLimit(im, 50)
	spans := all.ResourceSpans().At(0).ScopeSpans().At(0).Spans()
	var stored, dups int
	for pass := range 2 {
		for lo := 0; lo < spans.Len(); lo += 97 {
			td := ptrace.NewTraces()
			ss := td.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty()
			for i := lo; i < min(lo+97, spans.Len()); i++ {
				spans.At(i).CopyTo(ss.Spans().AppendEmpty())
			}
			s, d, _, _, err := im.Import(ctx, td)
			if err != nil {
				t.Fatalf("pass %d, spans from %d: %v", pass, lo, err)
			}
			stored, dups = stored+s, dups+d
		}
	}
	if want := len(distinct); stored != want || dups != 2*spans.Len()-want {
		t.Errorf("stored %d, duplicates %d; want %d, %d", stored, dups, want, 2*spans.Len()-want)
	}
	if err := exp.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	got := map[[24]byte]int{}
	for _, s := range readAll(t, path) {
		got[[24]byte(append(s.TraceID[:], s.SpanID[:]...))]++
	}
	if len(got) != len(distinct) {
		t.Errorf("file holds %d distinct spans; want %d", len(got), len(distinct))
	}
	for k, n := range got {
		if n != 1 || !distinct[k] {
			t.Errorf("span %x: %d rows; want 1", k, n)
		}
	}
}
