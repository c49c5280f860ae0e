package otlp_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"

	"github.com/lonelytrace/lonelytrace/internal/otlp"
	"github.com/lonelytrace/lonelytrace/schema"
)

// TestWriter_Stream writes traces in several Writes, as Export does, and
// checks that the stream is byte for byte the request of all of them
// marshalled at once by pdata, and reads back whole.
func TestWriter_Stream(t *testing.T) {
	parts := []ptrace.Traces{richTraces(7, 1), richTraces(1, 2), ptrace.NewTraces(), richTraces(12, 3)}
	all := ptrace.NewTraces()
	for _, p := range parts {
		for i := range p.ResourceSpans().Len() {
			p.ResourceSpans().At(i).CopyTo(all.ResourceSpans().AppendEmpty())
		}
	}
	req := ptraceotlp.NewExportRequestFromTraces(all)
	js, err := req.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	pb, err := req.MarshalProto()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		format otlp.Format
		ext    string
		want   []byte
	}{{otlp.FormatJSON, ".json", append(js, '\n')}, {otlp.FormatProto, ".pb", pb}} {
		t.Run(string(c.format), func(t *testing.T) {
			var buf bytes.Buffer
			w := otlp.NewWriter(&buf, c.format)
			for i, p := range parts {
				before := buf.Len()
				if err := w.Write(p); err != nil {
					t.Fatal(err)
				}
				// Streaming: what Write is given goes out at once, not at Close.
				if p.SpanCount() > 0 && buf.Len() == before {
					t.Fatalf("Write %d of %d spans wrote nothing", i, p.SpanCount())
				}
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(buf.Bytes(), c.want) {
				t.Fatalf("stream = %d bytes, differs from the request marshalled whole (%d bytes)", buf.Len(), len(c.want))
			}
			path := filepath.Join(t.TempDir(), "all"+c.ext)
			if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
				t.Fatal(err)
			}
			spans := 0
			if err := otlp.ReadFile(path, func(td ptrace.Traces, _ int) error { spans += td.SpanCount(); return nil }); err != nil {
				t.Fatal(err)
			}
			if spans != all.SpanCount() {
				t.Fatalf("read back %d spans; want %d", spans, all.SpanCount())
			}
		})
	}
	t.Run("Empty", func(t *testing.T) {
		for _, f := range []otlp.Format{otlp.FormatJSON, otlp.FormatProto} {
			var buf bytes.Buffer
			w := otlp.NewWriter(&buf, f)
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			b, _ := ptraceotlp.NewExportRequest().MarshalProto()
			if f == otlp.FormatJSON {
				b, _ = ptraceotlp.NewExportRequest().MarshalJSON()
				b = append(b, '\n')
			}
			if !bytes.Equal(buf.Bytes(), b) {
				t.Errorf("%s of nothing = %q; want %q", f, buf.Bytes(), b)
			}
		}
	})
}

// manyResources returns n resourceSpans of per spans each, every span of
// its own trace.
func manyResources(n, per int) ptrace.Traces {
	td := ptrace.NewTraces()
	for r := range n {
		rs := td.ResourceSpans().AppendEmpty()
		rs.Resource().Attributes().PutInt("r", int64(r))
		ss := rs.ScopeSpans().AppendEmpty()
		for i := range per {
			s := ss.Spans().AppendEmpty()
			k := uint64(r*per + i + 1)
			var tid [16]byte
			var sid [8]byte
			for j := range 8 {
				tid[8+j] = byte(k >> (8 * (7 - j)))
				sid[j] = byte(k >> (8 * (7 - j)))
			}
			s.SetTraceID(tid)
			s.SetSpanID(sid)
			s.SetName("s")
			// A start, or the span is rejected and stores nothing.
			s.SetStartTimestamp(pcommon.Timestamp(1_700_000_000_000_000_000 + k))
			s.SetEndTimestamp(pcommon.Timestamp(1_700_000_000_000_000_000 + k + 1000))
		}
	}
	return td
}

// TestReadFile_Batches reads requests of many resourceSpans in every
// format: every span arrives once, in order, in batches of at most a few
// thousand spans, however large the request.
func TestReadFile_Batches(t *testing.T) {
	td := manyResources(300, 50) // 15,000 spans in one request
	req := ptraceotlp.NewExportRequestFromTraces(td)
	js, _ := req.MarshalJSON()
	pb, _ := req.MarshalProto()
	// An unknown field (15, varint) before and after the elements is
	// skipped, as pdata skips it.
	pbUnknown := append(append([]byte{15 << 3, 0x96, 0x01}, pb...), 15<<3, 1)
	stream := append([]byte{byte(len(pb) >> 24), byte(len(pb) >> 16), byte(len(pb) >> 8), byte(len(pb))}, pb...)
	stream = append(stream, stream...)
	var wantIDs []string
	for i := range td.ResourceSpans().Len() {
		ss := td.ResourceSpans().At(i).ScopeSpans().At(0).Spans()
		for j := range ss.Len() {
			wantIDs = append(wantIDs, ss.At(j).SpanID().String())
		}
	}
	dir := t.TempDir()
	for _, c := range []struct {
		name  string
		data  []byte
		spans int
	}{
		{"one.json", js, 15000},
		{"two.json", append(append(append(js, '\n'), js...), '\n'), 30000},
		{"pretty.json", bytes.ReplaceAll(js, []byte(`,"`), []byte(",\n  \"")), 15000},
		{"null.json", append([]byte(`{"resourceSpans":null}`+"\n"), js...), 15000},
		{"snake.json", bytes.Replace(js, []byte(`"resourceSpans"`), []byte(`"resource_spans"`), 1), 15000},
		{"one.pb", pb, 15000},
		{"unknown.pb", pbUnknown, 15000},
		{"stream.pb", stream, 30000},
		{"lines.jsonl", append(append(append(js, "\n\n \r\n"...), js...), '\n'), 30000},
		{"noeol.jsonl", append(append([]byte("\n"), js...), "\n\n"...)[:len(js)+1], 15000},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := filepath.Join(dir, c.name)
			if err := os.WriteFile(p, c.data, 0o644); err != nil {
				t.Fatal(err)
			}
			var names []string
			largest, calls := 0, 0
			err := otlp.ReadFile(p, func(td ptrace.Traces, _ int) error {
				calls++
				largest = max(largest, td.SpanCount())
				for i := range td.ResourceSpans().Len() {
					ss := td.ResourceSpans().At(i).ScopeSpans().At(0).Spans()
					for j := range ss.Len() {
						names = append(names, ss.At(j).SpanID().String())
					}
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if len(names) != c.spans {
				t.Fatalf("spans = %d; want %d", len(names), c.spans)
			}
			for i, id := range names {
				if want := wantIDs[i%len(wantIDs)]; id != want {
					t.Fatalf("span %d = %s; want %s", i, id, want)
				}
			}
			if largest > 5000 || calls < c.spans/5000 {
				t.Errorf("%d batches, the largest of %d spans; want batches of at most 5,000", calls, largest)
			}
		})
	}
	t.Run("Truncated", func(t *testing.T) {
		for name, data := range map[string][]byte{"cut.pb": pb[:len(pb)/2], "cut.json": js[:len(js)/2], "cutstream.pb": stream[:len(stream)-3],
			"cutline.jsonl": append(append(js, '\n'), js[:len(js)/2]...), "after.jsonl": append(js, " {}\n"...)} {
			p := filepath.Join(dir, name)
			os.WriteFile(p, data, 0o644)
			if err := otlp.ReadFile(p, func(ptrace.Traces, int) error { return nil }); err == nil || !strings.Contains(err.Error(), name) {
				t.Errorf("%s: err = %v; want one naming the file", name, err)
			}
		}
	})
}

// TestExport_SeveralFiles exports a trace whose spans sit in two files,
// some in both: the export of both files holds every span once, and is
// byte for byte the export of one file holding them all.
func TestExport_SeveralFiles(t *testing.T) {
	ctx := context.Background()
	all := richTraces(40, 5)
	store := func(td ptrace.Traces) string {
		path := tempDB(t)
		exp := mustExporter(t, path)
		if _, _, _, err := otlp.Store(ctx, exp, td, otlp.Wait); err != nil {
			t.Fatal(err)
		}
		if err := exp.Shutdown(ctx); err != nil {
			t.Fatal(err)
		}
		return path
	}
	// a holds the spans at even positions and every third; b the rest
	// and every third again.
	keep := func(pick func(i int) bool) ptrace.Traces {
		out := ptrace.NewTraces()
		all.CopyTo(out)
		i := 0
		for _, rs := range out.ResourceSpans().All() {
			for _, ss := range rs.ScopeSpans().All() {
				ss.Spans().RemoveIf(func(ptrace.Span) bool { i++; return !pick(i) })
			}
		}
		return out
	}
	a := store(keep(func(i int) bool { return i%2 == 0 || i%3 == 0 }))
	b := store(keep(func(i int) bool { return i%2 == 1 || i%3 == 0 }))
	whole := store(all)
	for _, f := range []otlp.Format{otlp.FormatJSON, otlp.FormatProto} {
		got, want := exportJSON(t, f, a, b), exportJSON(t, f, whole)
		if !bytes.Equal(got, want) {
			t.Errorf("%s: export of two files = %d bytes, differs from the one file's %d", f, len(got), len(want))
		}
	}
}

// TestExport_Canceled: an export whose context ends stops with its error,
// before it starts or between chunks.
func TestExport_Canceled(t *testing.T) {
	path := tempDB(t)
	exp := mustExporter(t, path)
	if _, _, _, err := otlp.Store(context.Background(), exp, manyResources(40, 100), otlp.Wait); err != nil {
		t.Fatal(err)
	}
	if err := exp.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	sel := schema.TraceSelection{SinceBeginning: true, Until: math.MaxInt64}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, _, err := otlp.Export(ctx, []string{path}, sel, otlp.NewWriter(io.Discard, otlp.FormatJSON)); !errors.Is(err, context.Canceled) {
		t.Errorf("Export with an ended context = %v; want context.Canceled", err)
	}
	// Ended by the writer after the first chunk: the error of the write.
	ctx, cancel = context.WithCancel(context.Background())
	defer cancel()
	w := otlp.NewWriter(cancelWriter{cancel}, otlp.FormatJSON)
	traces, _, err := otlp.Export(ctx, []string{path}, sel, w)
	if !errors.Is(err, context.Canceled) || traces >= 4000 {
		t.Errorf("Export canceled after a chunk = %d traces, %v; want fewer than 4,000, context.Canceled", traces, err)
	}
}

// TestExport_WriteFails: an export whose output fails stops with the
// write's error, and its reading goroutine with it.
func TestExport_WriteFails(t *testing.T) {
	path := tempDB(t)
	exp := mustExporter(t, path)
	if _, _, _, err := otlp.Store(context.Background(), exp, manyResources(40, 100), otlp.Wait); err != nil {
		t.Fatal(err)
	}
	if err := exp.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	sel := schema.TraceSelection{SinceBeginning: true, Until: math.MaxInt64}
	for _, f := range []otlp.Format{otlp.FormatJSON, otlp.FormatJSONL, otlp.FormatProto} {
		w := otlp.NewWriter(&failWriter{after: 2}, f)
		traces, _, err := otlp.Export(context.Background(), []string{path}, sel, w)
		if !errors.Is(err, errFull) || traces >= 4000 {
			t.Errorf("%s: Export to a failing output = %d traces, %v; want fewer than 4,000, errFull", f, traces, err)
		}
	}
}

var errFull = errors.New("disk full")

// failWriter fails from its write number after on.
type failWriter struct{ after, n int }

func (f *failWriter) Write(p []byte) (int, error) {
	if f.n++; f.n > f.after {
		return 0, errFull
	}
	return len(p), nil
}

// cancelWriter cancels its context at its first write.
type cancelWriter struct{ cancel context.CancelFunc }

func (c cancelWriter) Write(p []byte) (int, error) { c.cancel(); return len(p), nil }

// TestReadFile_LongLine reads a line of OTLP/JSON lines, and a
// length-prefixed protobuf request, of 48 MB each: the heap stays far
// below the line's size, as the line is read a resourceSpans element at a
// time (the heap is sampled at each batch; the bound is generous, for
// garbage not collected yet).
func TestReadFile_LongLine(t *testing.T) {
	const size = 48 << 20
	one := manyResources(1, 40)
	for _, s := range one.ResourceSpans().At(0).ScopeSpans().At(0).Spans().All() {
		s.Attributes().PutStr("padding", strings.Repeat("x", 200))
	}
	req := ptraceotlp.NewExportRequestFromTraces(one)
	js, _ := req.MarshalJSON()
	pb, _ := req.MarshalProto() // one resource_spans field
	elem := bytes.TrimSuffix(bytes.TrimPrefix(js, []byte(`{"resourceSpans":[`)), []byte(`]}`))
	if len(elem) == len(js) {
		t.Fatalf("OTLP/JSON %.40q does not start with resourceSpans", js)
	}
	dir := t.TempDir()
	write := func(name string, head []byte, part []byte, sep string, tail []byte) (string, int) {
		f, err := os.Create(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		n := size / (len(part) + len(sep))
		if head == nil { // the length prefix of a request of n parts
			l := n * len(part)
			head = []byte{byte(l >> 24), byte(l >> 16), byte(l >> 8), byte(l)}
		}
		w := bufio.NewWriter(f)
		w.Write(head)
		for i := range n {
			if i > 0 {
				w.WriteString(sep)
			}
			w.Write(part)
		}
		w.Write(tail)
		if err := w.Flush(); err != nil {
			t.Fatal(err)
		}
		return f.Name(), n * 40
	}
	for _, c := range []struct {
		name                  string
		head, part, sep, tail string
	}{
		{"long.jsonl", `{"resourceSpans":[`, string(elem), ",", "]}\n"},
		{"long.pb", "", string(pb), "", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			var head []byte
			if c.head != "" {
				head = []byte(c.head)
			}
			path, want := write(c.name, head, []byte(c.part), c.sep, []byte(c.tail))
			runtime.GC()
			var ms runtime.MemStats
			var peak uint64
			spans := 0
			err := otlp.ReadFile(path, func(td ptrace.Traces, _ int) error {
				spans += td.SpanCount()
				runtime.ReadMemStats(&ms)
				peak = max(peak, ms.HeapAlloc)
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if spans != want {
				t.Fatalf("spans = %d; want %d", spans, want)
			}
			t.Logf("heap at most %.1f MiB reading %d spans", float64(peak)/(1<<20), spans)
			if peak > size/2 {
				t.Errorf("heap = %.1f MiB reading a request of %d MiB; want less than %d MiB", float64(peak)/(1<<20), size>>20, size>>21)
			}
		})
	}
}

// TestReadFile_JSONLMixed reads .jsonl lines that fit the read buffer
// (decoded at once) among one that does not (read an element at a time):
// every span once, in order, each batch with its own line, the last line
// without its '\n'.
func TestReadFile_JSONLMixed(t *testing.T) {
	small, _ := ptraceotlp.NewExportRequestFromTraces(manyResources(2, 10)).MarshalJSON()
	long, _ := ptraceotlp.NewExportRequestFromTraces(manyResources(300, 50)).MarshalJSON()
	if len(long) < 2<<20 {
		t.Fatalf("long line of %d bytes; want more than the 1 MiB buffer", len(long))
	}
	data := bytes.Join([][]byte{small, long, nil, small, long}, []byte("\n"))
	path := filepath.Join(t.TempDir(), "mixed.jsonl")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	perLine := map[int]int{}
	var order []int
	err := otlp.ReadFile(path, func(td ptrace.Traces, line int) error {
		if len(order) == 0 || order[len(order)-1] != line {
			order = append(order, line)
		}
		perLine[line] += td.SpanCount()
		if td.SpanCount() > 5000 {
			t.Errorf("line %d: a batch of %d spans; want at most 5,000", line, td.SpanCount())
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(order) != "[1 2 4 5]" || perLine[1] != 20 || perLine[2] != 15000 || perLine[4] != 20 || perLine[5] != 15000 {
		t.Errorf("lines %v, spans per line %v; want [1 2 4 5], 20, 15000, 20, 15000", order, perLine)
	}
}
