package otlp_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/lonelytrace/lonelytrace/internal/otlp/otlptest"

	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"

	"github.com/lonelytrace/lonelytrace/internal/otlp"
	"github.com/lonelytrace/lonelytrace/schema"
)

// importFiles imports inputs into the file at path through a fresh
// exporter and returns the totals.
func importFiles(t testing.TB, path string, inputs ...string) (stored, dups, rejected int) {
	t.Helper()
	ctx := context.Background()
	exp := mustExporter(t, path)
	im, err := otlp.NewImporter(ctx, exp, path)
	if err != nil {
		t.Fatal(err)
	}
	defer im.Close()
	for _, in := range inputs {
		err := otlp.ReadFileRecords(in, nil, func(rec otlp.Records, line int) error {
			s, d, r, _, err := im.ImportRecords(ctx, rec)
			stored, dups, rejected = stored+s, dups+d, rejected+r
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := exp.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	return stored, dups, rejected
}

func exportJSON(t *testing.T, format otlp.Format, files ...string) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := otlp.NewWriter(&buf, format)
	if _, _, err := otlp.Export(context.Background(), files, schema.TraceSelection{SinceBeginning: true, Until: math.MaxInt64}, w); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestImport_CollectorFile(t *testing.T) {
	path := tempDB(t)
	in := filepath.Join("testdata", "collector.jsonl")
	stored, dups, rej := importFiles(t, path, in)
	if stored != 3 || dups != 0 || rej != 0 {
		t.Fatalf("first import = %d stored, %d duplicates, %d rejected; want 3, 0, 0", stored, dups, rej)
	}
	t.Run("Twice", func(t *testing.T) {
		stored, dups, _ := importFiles(t, path, in)
		if stored != 0 || dups != 3 {
			t.Fatalf("second import = %d stored, %d duplicates; want 0, 3", stored, dups)
		}
		if n := len(readAll(t, path)); n != 3 {
			t.Fatalf("spans in the file = %d; want 3", n)
		}
	})
	t.Run("Fields", func(t *testing.T) {
		spans := readAll(t, path)
		byName := map[string]int{}
		for i, s := range spans {
			byName[s.Name] = i
		}
		n := spans[byName["notify"]]
		if n.PubSub.Op != "notify" || n.PubSub.Broadcaster != "broadcaster-1:3003" || n.PubSub.BodySize != 512 || n.PubSub.Subscribers != 3 {
			t.Errorf("notify pubsub = %+v", n.PubSub)
		}
		if n.Resource.Attributes[0].Value.AsString() != "notifier-py" || n.Resource.SchemaURL != "https://opentelemetry.io/schemas/1.26.0" {
			t.Errorf("notify resource = %+v", n.Resource)
		}
		r := spans[byName["receive"]]
		if r.PubSub.Op != "receive" || r.PubSub.Stateful != 1 || !r.ParentRemote || r.OTLPFlags != 769 || r.TraceState != "lps=1" {
			t.Errorf("receive = op %q stateful %d remote %v flags %d state %q", r.PubSub.Op, r.PubSub.Stateful, r.ParentRemote, r.OTLPFlags, r.TraceState)
		}
		if len(r.Links) != 1 || r.Links[0].OTLPFlags != 256 || r.Links[0].DroppedAttributes != 1 || r.DroppedAttributes != 2 {
			t.Errorf("receive links = %+v, dropped %d", r.Links, r.DroppedAttributes)
		}
	})
	t.Run("SameAsInput", func(t *testing.T) {
		var want []string
		if err := otlp.ReadFile(in, func(td ptrace.Traces, _ int) error {
			want = append(want, otlptest.SpanLines(t, td)...)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		got := otlptest.SpanLines(t, otlp.Traces(readAll(t, path)))
		slices.Sort(want)
		otlptest.DiffLines(t, got, want)
	})
}

// TestExport_ImportExportStable: export, import the export into a new
// file, export again: the same bytes, for each format.
func TestExport_ImportExportStable(t *testing.T) {
	src := tempDB(t)
	exp := mustExporter(t, src)
	if _, _, _, err := otlp.Store(context.Background(), exp, richTraces(40, 2), otlp.Wait); err != nil {
		t.Fatal(err)
	}
	exp.Shutdown(context.Background())
	for _, f := range []struct {
		format otlp.Format
		ext    string
	}{{otlp.FormatJSON, ".json"}, {otlp.FormatJSONL, ".jsonl"}, {otlp.FormatProto, ".pb"}} {
		t.Run(string(f.format), func(t *testing.T) {
			first := exportJSON(t, f.format, src)
			in := filepath.Join(t.TempDir(), "export"+f.ext)
			if err := os.WriteFile(in, first, 0o644); err != nil {
				t.Fatal(err)
			}
			dst := tempDB(t)
			if stored, _, _ := importFiles(t, dst, in); stored != 40 {
				t.Fatalf("stored = %d; want 40", stored)
			}
			second := exportJSON(t, f.format, dst)
			if !bytes.Equal(first, second) {
				t.Fatalf("second export differs from the first (%d and %d bytes)", len(first), len(second))
			}
		})
	}
}

func TestReadFile_Formats(t *testing.T) {
	td := richTraces(5, 3)
	req := ptraceotlp.NewExportRequestFromTraces(td)
	js, _ := req.MarshalJSON()
	pb, _ := req.MarshalProto()
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(append(append(js, '\n'), js...))
	zw.Close()
	lenPrefixed := append([]byte{0, 0, byte(len(pb) >> 8), byte(len(pb))}, pb...)
	lenPrefixed = append(lenPrefixed, lenPrefixed...)
	dir := t.TempDir()
	for name, data := range map[string][]byte{
		"one.json": js, "lines.ndjson.gz": gz.Bytes(), "one.binpb": pb, "stream.pb": lenPrefixed,
		"pretty.json": []byte(strings.ReplaceAll(string(js), `,"`, ",\n  \"")),
	} {
		t.Run(name, func(t *testing.T) {
			p := filepath.Join(dir, name)
			os.WriteFile(p, data, 0o644)
			spans := 0
			if err := otlp.ReadFile(p, func(td ptrace.Traces, _ int) error { spans += td.SpanCount(); return nil }); err != nil {
				t.Fatal(err)
			}
			want := 5
			if strings.HasPrefix(name, "lines") || strings.HasPrefix(name, "stream") {
				want = 10
			}
			if spans != want {
				t.Fatalf("spans = %d; want %d", spans, want)
			}
		})
	}
}

func TestReadFile_BadInput(t *testing.T) {
	js, _ := ptraceotlp.NewExportRequestFromTraces(richTraces(2, 4)).MarshalJSON()
	pb, _ := ptraceotlp.NewExportRequestFromTraces(richTraces(2, 4)).MarshalProto()
	dir := t.TempDir()
	for _, c := range []struct {
		name string
		data []byte
		want string
	}{
		{"line3.jsonl", []byte(string(js) + "\n\n{\"resourceSpans\":[{\n" + string(js) + "\n"), "line3.jsonl:3: bad OTLP/JSON"},
		{"truncated.pb", pb[:len(pb)-7], "truncated.pb: bad OTLP protobuf"},
		{"shortid.json", []byte(`{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"5b8e","spanId":"eee19b7ec3c1b174"}]}]}]}`), "shortid.json: bad OTLP/JSON"},
		{"notgzip.json.gz", js, "notgzip.json.gz: gzip"},
		{"x.txt", js, "unknown format"},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := filepath.Join(dir, c.name)
			os.WriteFile(p, c.data, 0o644)
			err := otlp.ReadFile(p, func(ptrace.Traces, int) error { return nil })
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v; want one containing %q", err, c.want)
			}
		})
	}
}

// TestStore_InvalidIDs: spans with an all-zero trace or span id are
// rejected one by one and counted; the others are stored whole.
func TestStore_InvalidIDs(t *testing.T) {
	td := richTraces(6, 5)
	spans := td.ResourceSpans().At(0).ScopeSpans().At(0).Spans()
	spans.At(0).SetTraceID([16]byte{})
	spans.At(1).SetSpanID([8]byte{})
	path := tempDB(t)
	exp := mustExporter(t, path)
	acc, rej, msg, err := otlp.Store(context.Background(), exp, td, otlp.NoWait)
	if err != nil || acc != 4 || rej != 2 || !strings.Contains(msg, "2 spans rejected") || !strings.Contains(msg, "trace id is all zero") {
		t.Fatalf("Store = %d, %d, %q, %v; want 4, 2, a message", acc, rej, msg, err)
	}
	exp.Shutdown(context.Background())
	if n := len(readAll(t, path)); n != 4 {
		t.Fatalf("spans in the file = %d; want 4", n)
	}
}

// TestStore_HugeAttributeCounts: a span with 20,000 attributes (OpenTelemetry SDKs keep 128 by default) and a
// value nested 200 deep is stored and read back whole.
func TestStore_HugeAttributeCounts(t *testing.T) {
	td := richTraces(1, 6)
	p := td.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0)
	for i := range 20_000 {
		p.Attributes().PutInt("k"+strconv.Itoa(i), int64(i))
	}
	v := p.Attributes().PutEmptySlice("deep")
	for range 200 {
		v = v.AppendEmpty().SetEmptySlice()
	}
	want := otlptest.SpanLines(t, td)
	path := tempDB(t)
	exp := mustExporter(t, path)
	if _, _, _, err := otlp.Store(context.Background(), exp, td, otlp.Wait); err != nil {
		t.Fatal(err)
	}
	exp.Shutdown(context.Background())
	otlptest.DiffLines(t, otlptest.SpanLines(t, otlp.Traces(readAll(t, path))), want)
}
