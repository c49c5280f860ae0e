package otlp

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"

	"github.com/lonelytrace/lonelytrace/schema"
)

// MaxLine is the largest protobuf field, and length-prefixed request,
// that ReadFile reads: a length above it says the file is not OTLP
// protobuf. (Requests are read a resourceSpans element at a time, so this
// bounds the element held in memory, not the request.)
const MaxLine = 256 << 20

// ReadFile calls fn with the traces of the ExportTraceServiceRequests in
// the file at path, in batches of about batchSpans spans, each from one
// request, with the request's line (1-based; for .json the request's
// number, its line in the collector's files; 0 for a .pb file that is
// one request). It reads a resourceSpans element at a time, so that its
// memory does not grow with the file. The extension says the format,
// after a ".gz" that says gzip:
//
//   - .json: one OTLP/JSON request, or one per line as the collector's
//     file exporter writes them;
//   - .jsonl, .ndjson: one OTLP/JSON request per line; empty lines are
//     skipped;
//   - .pb, .binpb: one OTLP protobuf request, or a stream of them each
//     after its length as 4 big-endian bytes (the collector's file
//     exporter's proto format).
//
// A record that does not decode stops the read with an error naming the
// file and line. fn's error stops it too and is returned as is.
func ReadFile(path string, fn func(td ptrace.Traces, line int) error) error {
	return readFile(path, nil, fn, nil)
}

// ReadFileRecords is ReadFile handing fn the records of each batch, as
// RecordsOf converts them, and telling read, when not nil, how many bytes
// of the file (as stored: compressed, for .gz) it has read so far, for a
// progress meter. Protobuf is decoded straight into records
// (DecodeProto), a resourceSpans element at a time; JSON goes through
// pdata.
func ReadFileRecords(path string, read func(n int64), fn func(rec Records, line int) error) error {
	return readFile(path, read, func(td ptrace.Traces, line int) error { return fn(RecordsOf(td), line) }, fn)
}

// readFile is ReadFile telling read how many bytes it has read, with
// protobuf handed to records instead of fn when records is not nil.
func readFile(path string, read func(n int64), fn func(ptrace.Traces, int) error, records func(Records, int) error) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	var src io.Reader = f
	if read != nil {
		src = countingReader{f, read}
	}
	var r io.Reader = bufio.NewReaderSize(src, 1<<20)
	name := strings.ToLower(path)
	if strings.HasSuffix(name, ".gz") {
		zr, err := gzip.NewReader(r)
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		defer zr.Close()
		r, name = zr, strings.TrimSuffix(name, ".gz")
	}
	switch filepath.Ext(name) {
	case ".json":
		return readJSON(path, r, fn)
	case ".jsonl", ".ndjson":
		return readJSONLines(path, r, fn)
	case ".pb", ".binpb":
		if records != nil {
			return readProto(path, r, &recordBatcher{fn: records})
		}
		return readProto(path, r, &pdataElements{newBatcher(fn)})
	}
	return fmt.Errorf("%s: unknown format (want .json, .jsonl, .ndjson, .pb or .binpb, optionally .gz)", path)
}

// countingReader tells read the size of each read.
type countingReader struct {
	r    io.Reader
	read func(int64)
}

func (c countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.read(int64(n))
	return n, err
}

// batchSpans is about how many spans ReadFile hands fn at once: it
// gathers the resourceSpans of a request until they hold this many, so
// that memory holds one batch (and one resourceSpans, however large),
// whatever the file's size.
const batchSpans = 4096

// batcher gathers resourceSpans for fn, a batch at a time, each batch
// from one request.
type batcher struct {
	fn    func(ptrace.Traces, int) error
	td    ptrace.Traces
	spans int
	line  int
}

func newBatcher(fn func(ptrace.Traces, int) error) *batcher {
	return &batcher{fn: fn, td: ptrace.NewTraces()}
}

// add moves the resourceSpans of td, from the request at line, into the
// batch, handing it on when it is full or when the line changes.
func (b *batcher) add(td ptrace.Traces, line int) error {
	if line != b.line {
		if err := b.flush(); err != nil {
			return err
		}
		b.line = line
	}
	b.spans += td.SpanCount()
	td.ResourceSpans().MoveAndAppendTo(b.td.ResourceSpans())
	if b.spans >= batchSpans {
		return b.flush()
	}
	return nil
}

func (b *batcher) flush() error {
	if b.td.ResourceSpans().Len() == 0 {
		return nil
	}
	td := b.td
	b.td, b.spans = ptrace.NewTraces(), 0
	return b.fn(td, b.line)
}

// readJSON reads a stream of OTLP/JSON requests, most often one, or one
// per line as the collector's file exporter writes them; fn is given the
// request's number, from 1 (its line in the collector's files). It reads
// a resourceSpans element at a time: each is decoded alone, so that
// memory holds one however large the request.
func readJSON(path string, r io.Reader, fn func(ptrace.Traces, int) error) error {
	j := &jsonReader{dec: json.NewDecoder(r), where: path}
	b := newBatcher(fn)
	for n := 0; ; n++ {
		if !j.dec.More() {
			if n == 0 {
				return fmt.Errorf("%s: bad OTLP/JSON: no request in the file", path)
			}
			if _, err := j.dec.Token(); err != io.EOF {
				return j.bad(fmt.Errorf("unexpected %v after request %d", j.dec.InputOffset(), n))
			}
			return b.flush()
		}
		where := path
		if n > 0 {
			where = fmt.Sprintf("%s: request %d", path, n+1)
		}
		if err := j.request(b, n+1, where); err != nil {
			return err
		}
	}
}

// readJSONLines reads one OTLP/JSON request per line, skipping blank
// lines. Each line is read as readJSON reads a request, a resourceSpans
// element at a time, so that a line of any length holds memory to one
// element and one batch.
func readJSONLines(path string, r io.Reader, fn func(ptrace.Traces, int) error) error {
	br, ok := r.(*bufio.Reader)
	if !ok {
		br = bufio.NewReaderSize(r, 1<<20)
	}
	b := newBatcher(fn)
	for n := 1; ; n++ {
		if line, ok := bufferedLine(br); ok {
			// A line whole in the buffer (most are) is decoded at once:
			// half the CPU of the token stream, and its memory is
			// bounded by the buffer's size.
			_, _ = br.Discard(len(line))
			end := len(line) == 0 || line[len(line)-1] != '\n'
			if line = bytes.TrimSpace(line); len(line) > 0 {
				if err := b.flush(); err != nil {
					return err
				}
				td, err := UnmarshalJSON(line)
				if err != nil {
					return fmt.Errorf("%s:%d: %w", path, n, err)
				}
				if err := fn(td, n); err != nil {
					return err
				}
			}
			if end {
				return b.flush()
			}
			continue
		}
		lr := &lineReader{r: br}
		where := fmt.Sprintf("%s:%d", path, n)
		j := &jsonReader{dec: json.NewDecoder(lr), where: where}
		if j.dec.More() {
			if err := j.request(b, n, where); err != nil {
				return err
			}
		}
		// Nothing but white space after the request, or on a blank line.
		if tok, err := j.dec.Token(); err != io.EOF {
			if err == nil {
				err = fmt.Errorf("%v after the request", tok)
			}
			return j.bad(err)
		}
		if lr.end {
			return b.flush()
		}
	}
}

// bufferedLine returns the next line of br, with its '\n', when it fits
// in br's buffer; at the end of the file, the rest (without a '\n', maybe
// empty). ok is false for a longer line, and on a read error.
func bufferedLine(br *bufio.Reader) (line []byte, ok bool) {
	from := 0
	for {
		buf, _ := br.Peek(br.Buffered())
		if i := bytes.IndexByte(buf[from:], '\n'); i >= 0 {
			return buf[:from+i+1], true
		}
		from = len(buf)
		if len(buf) == br.Size() {
			return nil, false
		}
		if _, err := br.Peek(len(buf) + 1); err != nil {
			if err != io.EOF {
				return nil, false
			}
			buf, _ = br.Peek(br.Buffered())
			return buf, true
		}
	}
}

// lineReader reads r up to and with the next '\n', then says io.EOF.
type lineReader struct {
	r    *bufio.Reader
	done bool
	end  bool // r is at its end
}

func (l *lineReader) Read(p []byte) (int, error) {
	if l.done {
		return 0, io.EOF
	}
	if l.r.Buffered() == 0 {
		if _, err := l.r.Peek(1); err != nil {
			l.done, l.end = true, true
			return 0, err
		}
	}
	buf, _ := l.r.Peek(min(l.r.Buffered(), len(p)))
	if i := bytes.IndexByte(buf, '\n'); i >= 0 {
		buf, l.done = buf[:i+1], true
	}
	n := copy(p, buf)
	_, _ = l.r.Discard(n)
	return n, nil
}

// jsonReader reads OTLP/JSON requests a token at a time; where names the
// file, or its line, in errors.
type jsonReader struct {
	dec   *json.Decoder
	where string
}

func (j *jsonReader) bad(err error) error {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Errorf("%s: bad OTLP/JSON at byte %d: %w", j.where, se.Offset, err)
	}
	if errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	return fmt.Errorf("%s: bad OTLP/JSON at byte %d: %w", j.where, j.dec.InputOffset(), err)
}

func (j *jsonReader) delim(want json.Delim) error {
	tok, err := j.dec.Token()
	if err != nil {
		return j.bad(err)
	}
	if tok != want {
		return fmt.Errorf("%s: bad OTLP/JSON at byte %d: %v where %v belongs", j.where, j.dec.InputOffset(), tok, want)
	}
	return nil
}

// request reads one request, handing each of its resourceSpans elements,
// decoded alone, to b with line; elemWhere names the request in the
// errors of an element.
func (j *jsonReader) request(b *batcher, line int, elemWhere string) error {
	dec := j.dec
	if err := j.delim('{'); err != nil {
		return err
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return j.bad(err)
		}
		if key, _ := tok.(string); key != "resourceSpans" && key != "resource_spans" {
			var skip json.RawMessage
			if err := dec.Decode(&skip); err != nil {
				return j.bad(err)
			}
			continue
		}
		tok, err = dec.Token()
		if err != nil {
			return j.bad(err)
		}
		if tok == nil {
			continue // "resourceSpans": null, as none
		}
		if tok != json.Delim('[') {
			return fmt.Errorf("%s: bad OTLP/JSON at byte %d: %v where [ belongs", j.where, dec.InputOffset(), tok)
		}
		for dec.More() {
			var raw json.RawMessage
			if err := dec.Decode(&raw); err != nil {
				return j.bad(err)
			}
			td, err := UnmarshalJSON(slices.Concat(jsonHead, raw, jsonTail))
			if err != nil {
				return fmt.Errorf("%s: %w", elemWhere, err)
			}
			if err := b.add(td, line); err != nil {
				return err
			}
		}
		if err := j.delim(']'); err != nil {
			return err
		}
	}
	return j.delim('}')
}

// protoResourceSpans is the tag of ExportTraceServiceRequest's field 1,
// resource_spans (length-delimited): the first byte of a request.
const protoResourceSpans = 1<<3 | 2

// elements takes the resourceSpans elements of protobuf requests, each
// framed as a request of its own, and hands them on in batches of about
// batchSpans spans, each batch from one request: the batcher's job for
// pdata (pdataElements), or the decoder's for records (recordBatcher).
type elements interface {
	// add decodes msg, an element of the request at line; its error is
	// a *badElement when msg does not decode, else fn's.
	add(msg []byte, line int) error
	// flush hands on the batch gathered.
	flush() error
	// none hands on an empty batch, for a file with no request.
	none() error
}

// badElement is why an element did not decode.
type badElement struct{ err error }

func (e *badElement) Error() string { return e.err.Error() }

// pdataElements decodes elements with pdata for a batcher.
type pdataElements struct{ b *batcher }

func (p *pdataElements) add(msg []byte, line int) error {
	td, err := UnmarshalProto(msg)
	if err != nil {
		return &badElement{err}
	}
	return p.b.add(td, line)
}

func (p *pdataElements) flush() error { return p.b.flush() }
func (p *pdataElements) none() error  { return p.b.fn(ptrace.NewTraces(), 0) }

// recordBatcher decodes elements into records, a batch at a time: the
// decoder gathers the batch's spans, and numbers its resourceSpans from
// the batch's first, as RecordsOf does a batch's.
type recordBatcher struct {
	fn   func(Records, int) error
	d    decoder
	rs   int // resourceSpans in the batch
	line int
}

func (b *recordBatcher) add(msg []byte, line int) error {
	if line != b.line {
		if err := b.flush(); err != nil {
			return err
		}
		b.line = line
	}
	b.d.input(msg)
	b.d.rsBase = b.rs
	// A batch's spans take one array, sized for a whole batch: grown an
	// element at a time, its copies cost more than the decoding.
	if n := b.d.spanRoom(0, len(msg)); cap(b.d.out)-len(b.d.out) < n {
		out := make([]schema.Span, len(b.d.out), max(batchSpans+batchSpans/4, 2*cap(b.d.out), len(b.d.out)+n))
		copy(out, b.d.out)
		b.d.out = out
	}
	if err := b.d.request(0, len(msg)); err != nil {
		return &badElement{fmt.Errorf("bad OTLP protobuf: %w", err)}
	}
	b.rs++
	if len(b.d.out)+b.d.rejected >= batchSpans {
		return b.flush()
	}
	return nil
}

func (b *recordBatcher) flush() error {
	if b.rs == 0 {
		return nil
	}
	rec := b.d.records()
	b.d.reset(nil, 0)
	b.rs = 0
	return b.fn(rec, b.line)
}

func (b *recordBatcher) none() error { return b.fn(Records{}, 0) }

// readProto reads one OTLP protobuf request, or a stream of them each
// after its length as 4 big-endian bytes (lengthPrefixed tells which), a
// resourceSpans element at a time.
func readProto(path string, r io.Reader, b elements) error {
	br := bufio.NewReaderSize(r, 64<<10)
	if _, err := br.Peek(1); errors.Is(err, io.EOF) {
		return b.none()
	} else if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if !lengthPrefixed(br) {
		if err := readProtoRequest(br, b, 0); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		return b.flush()
	}
	var size [4]byte
	for i := 1; ; i++ {
		if _, err := io.ReadFull(br, size[:]); err != nil {
			if errors.Is(err, io.EOF) && i > 1 {
				return b.flush()
			}
			return fmt.Errorf("%s: request %d: bad OTLP protobuf: neither a request nor a stream of length-prefixed requests: %w", path, i, err)
		}
		n := binary.BigEndian.Uint32(size[:])
		if n > MaxLine {
			return fmt.Errorf("%s: request %d: bad OTLP protobuf: neither a request nor a stream of length-prefixed requests (a length of %d bytes)", path, i, n)
		}
		// Read in place, a resourceSpans element at a time, as a request
		// alone is: the request is never in memory whole.
		lr := &limitedReader{r: br, n: int64(n)}
		if err := readProtoRequest(lr, b, i); err != nil {
			if lr.short {
				return fmt.Errorf("%s: request %d: bad OTLP protobuf: %d bytes announced, the file ends before: %w", path, i, n, err)
			}
			return fmt.Errorf("%s: request %d: %w", path, i, err)
		}
		if err := b.flush(); err != nil {
			return err
		}
	}
}

// lengthPrefixed reports whether the file r begins is a stream of
// length-prefixed requests: it does not begin with the tag of
// resource_spans, and its first 4 bytes are a length of at most MaxLine
// followed by that tag (or by nothing, for an empty request). A request
// that begins with another field is read as one request.
func lengthPrefixed(r *bufio.Reader) bool {
	head, _ := r.Peek(5)
	if len(head) < 4 || head[0] == protoResourceSpans {
		return false
	}
	n := binary.BigEndian.Uint32(head)
	return n <= MaxLine && (n == 0 || len(head) == 5 && head[4] == protoResourceSpans)
}

// limitedReader reads the next n bytes of r, then says io.EOF; should r
// end before, it says io.ErrUnexpectedEOF and sets short.
type limitedReader struct {
	r     *bufio.Reader
	n     int64
	short bool
}

func (l *limitedReader) Read(p []byte) (int, error) {
	if l.n <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > l.n {
		p = p[:l.n]
	}
	n, err := l.r.Read(p)
	l.n -= int64(n)
	return n, l.end(err)
}

func (l *limitedReader) ReadByte() (byte, error) {
	if l.n <= 0 {
		return 0, io.EOF
	}
	c, err := l.r.ReadByte()
	if err == nil {
		l.n--
	}
	return c, l.end(err)
}

func (l *limitedReader) end(err error) error {
	if errors.Is(err, io.EOF) {
		l.short = true
		return io.ErrUnexpectedEOF
	}
	return err
}

// byteReader is a bufio.Reader, a bytes.Reader or a limitedReader.
type byteReader interface {
	io.Reader
	io.ByteReader
}

// readProtoRequest reads the fields of one ExportTraceServiceRequest from
// r until its end, handing each resource_spans element, decoded alone,
// to b. Other fields are skipped, as a decoder skips unknown fields.
func readProtoRequest(r byteReader, b elements, line int) error {
	p := &protoReader{r: r}
	for {
		start := p.off
		tag, err := binary.ReadUvarint(p)
		if errors.Is(err, io.EOF) && p.off == start {
			return nil // the end of the request, between fields
		}
		if err != nil {
			return p.bad("field tag", err)
		}
		if tag>>3 != 1 {
			if err := p.skip(tag); err != nil {
				return err
			}
			continue
		}
		if tag&7 != 2 {
			return p.bad("resourceSpans", fmt.Errorf("wire type %d, not 2", tag&7))
		}
		n, err := p.length()
		if err != nil {
			return err
		}
		// The element, framed as a request of its own.
		msg := binary.AppendUvarint(binary.AppendUvarint(make([]byte, 0, int(n)+16), tag), n)
		head := len(msg)
		msg = msg[:head+int(n)]
		if _, err := io.ReadFull(p, msg[head:]); err != nil {
			return p.bad("resourceSpans", err)
		}
		if err := b.add(msg, line); err != nil {
			var bad *badElement
			if errors.As(err, &bad) {
				return fmt.Errorf("resourceSpans at byte %d: %w", start, bad.err)
			}
			return err
		}
	}
}

// protoReader reads protobuf fields, counting the bytes it has read for
// the messages of its errors.
type protoReader struct {
	r   byteReader
	off int64
}

func (p *protoReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	p.off += int64(n)
	return n, err
}

func (p *protoReader) ReadByte() (byte, error) {
	c, err := p.r.ReadByte()
	if err == nil {
		p.off++
	}
	return c, err
}

func (p *protoReader) bad(what string, err error) error {
	if errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	return fmt.Errorf("bad OTLP protobuf at byte %d: %s: %w", p.off, what, err)
}

// length reads the length of a length-delimited field, at most MaxLine.
func (p *protoReader) length() (uint64, error) {
	n, err := binary.ReadUvarint(p)
	if err != nil {
		return 0, p.bad("length", err)
	}
	if n > MaxLine {
		return 0, p.bad("length", fmt.Errorf("%d bytes is more than %d", n, MaxLine))
	}
	return n, nil
}

// skip reads past the value of the field tag.
func (p *protoReader) skip(tag uint64) error {
	var n int64
	switch wt := tag & 7; wt {
	case 0: // varint
		if _, err := binary.ReadUvarint(p); err != nil {
			return p.bad("varint", err)
		}
		return nil
	case 1: // fixed64
		n = 8
	case 5: // fixed32
		n = 4
	case 2: // length-delimited
		l, err := p.length()
		if err != nil {
			return err
		}
		n = int64(l)
	case 3, 4:
		// The start and end of a group (deprecated): pdata takes each tag
		// alone, as a field without a value, and so does ReadFile.
		return nil
	default:
		return p.bad("field", fmt.Errorf("wire type %d of field %d", wt, tag>>3))
	}
	if _, err := io.CopyN(io.Discard, p, n); err != nil {
		return p.bad("field", err)
	}
	return nil
}

// UnmarshalJSON decodes one OTLP/JSON ExportTraceServiceRequest.
func UnmarshalJSON(data []byte) (ptrace.Traces, error) {
	req := ptraceotlp.NewExportRequest()
	if err := req.UnmarshalJSON(data); err != nil {
		return ptrace.Traces{}, fmt.Errorf("bad OTLP/JSON: %w", err)
	}
	return req.Traces(), nil
}

// UnmarshalProto decodes one OTLP protobuf ExportTraceServiceRequest.
func UnmarshalProto(data []byte) (ptrace.Traces, error) {
	req := ptraceotlp.NewExportRequest()
	if err := req.UnmarshalProto(data); err != nil {
		return ptrace.Traces{}, fmt.Errorf("bad OTLP protobuf: %w", err)
	}
	return req.Traces(), nil
}

// Format is a form Writer writes.
type Format string

// The formats of Writer, named as `lonelytrace export -format` takes them.
const (
	FormatJSON  Format = "otlp-json"  // one ExportTraceServiceRequest in OTLP/JSON
	FormatJSONL Format = "otlp-jsonl" // one OTLP/JSON request per line, as the collector's file exporter writes
	FormatProto Format = "otlp-proto" // one OTLP protobuf request
)

// ParseFormat checks a -format value.
func ParseFormat(s string) (Format, error) {
	switch f := Format(s); f {
	case FormatJSON, FormatJSONL, FormatProto:
		return f, nil
	}
	return "", fmt.Errorf("unknown format %q (want %s, %s or %s)", s, FormatJSON, FormatJSONL, FormatProto)
}

// Writer writes traces in one of the formats, as a stream: what each
// Write is given goes out at once, so that memory holds one Write's
// traces, however many the whole output has. For FormatJSONL each Write
// is a line of its own. The other formats are one request, whose
// repeated resourceSpans are written one Write after another: OTLP/JSON
// as one document, "{"resourceSpans":[" ... "]}", and protobuf as the
// concatenation of each Write's request, which protobuf reads as one
// request holding every Write's resourceSpans (a repeated field's
// elements may come in any number of runs). The bytes are those of
// marshalling every Write's traces together as one request.
type Writer struct {
	w      io.Writer
	format Format
	// started is true once the JSON document's opening is written.
	started bool
}

// NewWriter returns a Writer of format to w.
func NewWriter(w io.Writer, format Format) *Writer {
	return &Writer{w: w, format: format}
}

// jsonHead and jsonTail frame the resourceSpans of an OTLP/JSON request
// as pdata marshals it.
var jsonHead, jsonTail = []byte(`{"resourceSpans":[`), []byte(`]}`)

// Write writes td.
func (w *Writer) Write(td ptrace.Traces) error {
	if td.ResourceSpans().Len() == 0 {
		return nil
	}
	req := ptraceotlp.NewExportRequestFromTraces(td)
	switch w.format {
	case FormatJSONL:
		if td.SpanCount() == 0 {
			return nil
		}
		b, err := req.MarshalJSON()
		if err != nil {
			return err
		}
		_, err = w.w.Write(append(b, '\n'))
		return err
	case FormatProto:
		b, err := req.MarshalProto()
		if err != nil {
			return err
		}
		_, err = w.w.Write(b)
		return err
	case FormatJSON:
		b, err := req.MarshalJSON()
		if err != nil {
			return err
		}
		if !bytes.HasPrefix(b, jsonHead) || !bytes.HasSuffix(b, jsonTail) {
			return fmt.Errorf("write OTLP/JSON: the request marshals as %.40q..., not as resourceSpans alone", b)
		}
		b = b[len(jsonHead) : len(b)-len(jsonTail)]
		sep := []byte{','}
		if !w.started {
			sep, w.started = jsonHead, true
		}
		if _, err := w.w.Write(sep); err != nil {
			return err
		}
		_, err = w.w.Write(b)
		return err
	}
	return errors.New("unknown format")
}

// Close ends the request that Write began. It does not close the
// underlying writer.
func (w *Writer) Close() error {
	switch w.format {
	case FormatJSONL, FormatProto:
		return nil
	case FormatJSON:
		if !w.started {
			// No traces: the empty request, as pdata marshals it.
			b, err := ptraceotlp.NewExportRequest().MarshalJSON()
			if err != nil {
				return err
			}
			_, err = w.w.Write(append(b, '\n'))
			return err
		}
		_, err := w.w.Write(append(slices.Clone(jsonTail), '\n'))
		return err
	}
	return errors.New("unknown format")
}
