package otlp

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
)

// MaxLine is the longest line of an OTLP/JSON lines file that ReadFile
// reads: one ExportTraceServiceRequest.
const MaxLine = 256 << 20

// ReadFile calls fn with the traces of each ExportTraceServiceRequest in
// the file at path, and the request's line (1-based; 0 for a file that
// is one request). The extension says the format, after a ".gz" that
// says gzip:
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
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	var r io.Reader = bufio.NewReaderSize(f, 1<<20)
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
		return readProto(path, r, fn)
	}
	return fmt.Errorf("%s: unknown format (want .json, .jsonl, .ndjson, .pb or .binpb, optionally .gz)", path)
}

// readJSON reads one request, or, when the file has more than one line
// that holds something, one per line.
func readJSON(path string, r io.Reader, fn func(ptrace.Traces, int) error) error {
	data, err := io.ReadAll(r)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if bytes.Count(bytes.TrimSpace(data), []byte("\n")) > 0 && isJSONLines(data) {
		return readJSONLines(path, bytes.NewReader(data), fn)
	}
	td, err := UnmarshalJSON(data)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return fn(td, 0)
}

// isJSONLines reports whether every line of data that holds something is
// a whole JSON object on its own, as a lines file's are and a pretty
// printed request's are not.
func isJSONLines(data []byte) bool {
	for line := range bytes.Lines(data) {
		line = bytes.TrimSpace(line)
		if len(line) == 0 {
			continue
		}
		if line[0] != '{' || line[len(line)-1] != '}' {
			return false
		}
	}
	return true
}

func readJSONLines(path string, r io.Reader, fn func(ptrace.Traces, int) error) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 1<<20), MaxLine)
	n := 0
	for sc.Scan() {
		n++
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		td, err := UnmarshalJSON(line)
		if err != nil {
			return fmt.Errorf("%s:%d: %w", path, n, err)
		}
		if err := fn(td, n); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("%s:%d: %w", path, n+1, err)
	}
	return nil
}

func readProto(path string, r io.Reader, fn func(ptrace.Traces, int) error) error {
	data, err := io.ReadAll(r)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	td, err := UnmarshalProto(data)
	if err == nil {
		return fn(td, 0)
	}
	// A stream of length-prefixed requests, else the error of one.
	if stream, ok := splitLengthPrefixed(data); ok {
		for i, msg := range stream {
			td, err := UnmarshalProto(msg)
			if err != nil {
				return fmt.Errorf("%s: request %d: %w", path, i+1, err)
			}
			if err := fn(td, i+1); err != nil {
				return err
			}
		}
		return nil
	}
	return fmt.Errorf("%s: %w", path, err)
}

func splitLengthPrefixed(data []byte) ([][]byte, bool) {
	var out [][]byte
	for len(data) > 0 {
		if len(data) < 4 {
			return nil, false
		}
		n := binary.BigEndian.Uint32(data)
		if uint64(n) > uint64(len(data)-4) {
			return nil, false
		}
		out = append(out, data[4:4+n])
		data = data[4+n:]
	}
	return out, len(out) > 0
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
