package collect

import (
	"compress/gzip"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/lonelytrace/lonelytrace/internal/otlp"
	"github.com/lonelytrace/lonelytrace/schema"
)

// TracesPath is where OTLP/HTTP clients send traces.
const TracesPath = "/v1/traces"

// The request encodings of OTLP/HTTP.
const (
	contentProtobuf = "application/x-protobuf"
	contentJSON     = "application/json"
)

// ServeHTTP serves OTLP/HTTP: POST /v1/traces with a protobuf or JSON
// ExportTraceServiceRequest, optionally gzip-compressed. The answer is in
// the request's encoding: an ExportTraceServiceResponse on success, a
// google.rpc.Status on failure.
func (r *Receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	h := w.Header()
	h.Set("X-Content-Type-Options", "nosniff")
	if req.URL.Path != TracesPath {
		http.Error(w, "collect: OTLP/HTTP traces go to POST "+TracesPath, http.StatusNotFound)
		return
	}
	if req.Method != http.MethodPost {
		h.Set("Allow", http.MethodPost)
		http.Error(w, "collect: "+TracesPath+" takes POST", http.StatusMethodNotAllowed)
		return
	}
	ctype := requestEncoding(req.Header.Get("Content-Type"))
	if ctype == "" {
		r.refused.Add(1)
		http.Error(w, "collect: Content-Type "+strconv.Quote(req.Header.Get("Content-Type"))+" is not OTLP: want "+contentProtobuf+" or "+contentJSON, http.StatusUnsupportedMediaType)
		return
	}
	if !r.authorized(req) {
		h.Set("WWW-Authenticate", `Bearer realm="lonelytrace"`)
		writeFailure(w, ctype, r.refuse(codes.Unauthenticated, "collect: this receiver needs its token: send Authorization: Bearer …"), 0)
		return
	}
	if f := r.acquire(req.Context()); f != nil {
		writeFailure(w, ctype, f, r.cfg.retryAfter)
		return
	}
	defer r.release()
	reserve, known := r.readReserve(req)
	res, f := r.reserve(req.Context(), reserve)
	if f != nil {
		writeFailure(w, ctype, f, r.cfg.retryAfter)
		return
	}
	defer res.release()
	body, f := r.readBody(w, req)
	if f != nil {
		writeFailure(w, ctype, f, r.cfg.retryAfter)
		return
	}
	cost := decodeCost(len(body.b), ctype == contentJSON)
	if !known {
		r.budget.observe(cost)
	}
	if f := r.resize(req.Context(), res, cost); f != nil {
		r.putBody(body)
		writeFailure(w, ctype, f, r.cfg.retryAfter)
		return
	}
	rec, err := r.decodeRequest(body.b, ctype == contentJSON)
	// Both decoders copy what they keep (strings, bytes values), so the
	// body's buffer can serve the next request at once.
	r.putBody(body)
	if err != nil {
		writeFailure(w, ctype, r.refuse(codes.InvalidArgument, "collect: bad %s ExportTraceServiceRequest: %v", encodingName(ctype), err), 0)
		return
	}
	resp, f := r.export(req.Context(), rec)
	if f != nil {
		writeFailure(w, ctype, f, r.cfg.retryAfter)
		return
	}
	// Stored: the store is done with the spans.
	r.putSpans(rec.Spans)
	var out []byte
	if ctype == contentJSON {
		out, err = resp.MarshalJSON()
	} else {
		out, err = resp.MarshalProto()
	}
	if err != nil {
		writeFailure(w, ctype, &failure{codes.Internal, "collect: encode response: " + err.Error()}, 0)
		return
	}
	h.Set("Content-Type", ctype)
	h.Set("Content-Length", strconv.Itoa(len(out)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(out)
}

// decodeRequest decodes an ExportTraceServiceRequest into the records
// the file stores: protobuf straight into them (otlp.DecodeProto), JSON
// through pdata, whose decoder the direct one would not beat by enough
// to be worth a second JSON decoder (docs/design.md, "Collect").
func (r *Receiver) decodeRequest(b []byte, json bool) (otlp.Records, error) {
	if !json {
		return otlp.DecodeProtoInto(b, r.getSpans())
	}
	ereq := ptraceotlp.NewExportRequest()
	if err := ereq.UnmarshalJSON(b); err != nil {
		return otlp.Records{}, jsonError(b, err)
	}
	return otlp.RecordsOf(ereq.Traces()), nil
}

// requestEncoding returns contentProtobuf or contentJSON for an OTLP
// Content-Type, "" for any other.
func requestEncoding(ct string) string {
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return ""
	}
	switch mt {
	case contentProtobuf, "application/protobuf":
		return contentProtobuf
	case contentJSON:
		return contentJSON
	}
	return ""
}

func encodingName(ctype string) string {
	if ctype == contentJSON {
		return "JSON"
	}
	return "protobuf"
}

// authorized reports whether req carries the token, if one is needed.
func (r *Receiver) authorized(req *http.Request) bool {
	if r.cfg.token == "" {
		return true
	}
	a := req.Header.Get("Authorization")
	if len(a) <= 7 || !strings.EqualFold(a[:7], "bearer ") {
		return false
	}
	return tokenMatches(r.cfg.token, strings.TrimSpace(a[7:]))
}

// tokenMatches compares in constant time, of SHA-256 digests so that not
// even the length leaks.
func tokenMatches(want, got string) bool {
	w, g := sha256.Sum256([]byte(want)), sha256.Sum256([]byte(got))
	return got != "" && subtle.ConstantTimeCompare(w[:], g[:]) == 1
}

// body is a request body read into a reusable buffer.
type body struct{ b []byte }

// maxPooledBody is the largest buffer kept for reuse: the rare large
// request does not keep its memory in the pool.
const maxPooledBody = 1 << 20

func (r *Receiver) getBody() *body {
	if b, ok := r.bodies.Get().(*body); ok {
		return b
	}
	return new(body)
}

func (r *Receiver) putBody(b *body) {
	if cap(b.b) <= maxPooledBody {
		b.b = b.b[:0]
		r.bodies.Put(b)
	}
}

// maxPooledSpans is the largest array of decoded spans kept for reuse:
// SDKs send 512 spans a request by default, and a large request does not
// keep its memory in the pool.
const maxPooledSpans = 4096

// getSpans returns an array of spans kept by putSpans, or nil.
func (r *Receiver) getSpans() []schema.Span {
	if p, ok := r.spans.Get().(*[]schema.Span); ok {
		return *p
	}
	return nil
}

// putSpans keeps the array of spans, whose records the store is done
// with, for the next request to be decoded into.
func (r *Receiver) putSpans(spans []schema.Span) {
	if c := cap(spans); c > 0 && c <= maxPooledSpans {
		spans = spans[:0]
		r.spans.Put(&spans)
	}
}

// readBody reads the whole body, decompressed, refusing more than the
// request limit: the limit applies to what gzip expands to, so that a
// small bomb cannot take the memory a large one would. The caller hands
// the body back with r.putBody once it no longer uses its bytes.
func (r *Receiver) readBody(w http.ResponseWriter, req *http.Request) (*body, *failure) {
	max := r.cfg.maxRequestBytes
	if req.ContentLength > max {
		return nil, r.tooLarge()
	}
	var src io.Reader = http.MaxBytesReader(w, req.Body, max)
	switch enc := strings.ToLower(strings.TrimSpace(req.Header.Get("Content-Encoding"))); enc {
	case "", "identity":
	case "gzip", "x-gzip":
		// A gzip.Reader holds some 40 KiB of tables: reuse them.
		zr, _ := r.gzips.Get().(*gzip.Reader)
		var err error
		if zr == nil {
			zr, err = gzip.NewReader(src)
		} else {
			err = zr.Reset(src)
		}
		if err != nil {
			return nil, r.readFailure(err)
		}
		defer r.gzips.Put(zr)
		src = zr
	default:
		return nil, r.refuse(codes.InvalidArgument, "collect: Content-Encoding %q is not supported: send gzip or nothing", enc)
	}
	b := r.getBody()
	// One byte more than the announced length, so that the read that
	// meets the end finds room and the buffer is not grown for it.
	if want := int(req.ContentLength) + 1; req.ContentLength > 0 && cap(b.b) < want {
		b.b = make([]byte, 0, want)
	}
	err := readAll(b, io.LimitReader(src, max+1))
	switch {
	case err != nil:
		r.putBody(b)
		return nil, r.readFailure(err)
	case int64(len(b.b)) > max:
		r.putBody(b)
		return nil, r.tooLarge()
	}
	return b, nil
}

// readAll appends what src has to b.b, as io.ReadAll does.
func readAll(b *body, src io.Reader) error {
	for {
		if len(b.b) == cap(b.b) {
			b.b = append(b.b, 0)[:len(b.b)]
		}
		n, err := src.Read(b.b[len(b.b):cap(b.b)])
		b.b = b.b[:len(b.b)+n]
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

func (r *Receiver) tooLarge() *failure {
	return r.refuse(codes.ResourceExhausted, "collect: request larger than %d bytes (after decompression); send smaller batches", r.cfg.maxRequestBytes)
}

func (r *Receiver) readFailure(err error) *failure {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return r.tooLarge()
	}
	if errors.Is(err, gzip.ErrHeader) || errors.Is(err, gzip.ErrChecksum) || errors.Is(err, io.ErrUnexpectedEOF) || strings.HasPrefix(err.Error(), "flate:") {
		return r.refuse(codes.InvalidArgument, "collect: bad gzip body: %v", err)
	}
	// The client went away or the connection broke while sending.
	return r.refuse(codes.InvalidArgument, "collect: reading the request: %v", err)
}

// httpStatus maps a failure to the status OTLP/HTTP clients act on: 503
// is retried, 4xx are not.
func httpStatus(c codes.Code) int {
	switch c {
	case codes.InvalidArgument:
		return http.StatusBadRequest
	case codes.Unauthenticated:
		return http.StatusUnauthorized
	case codes.ResourceExhausted:
		return http.StatusRequestEntityTooLarge
	case codes.Unavailable:
		return http.StatusServiceUnavailable
	case codes.Canceled:
		return 499 // nobody is listening any more
	}
	return http.StatusInternalServerError
}

// writeFailure answers with a google.rpc.Status in the request's encoding,
// and a Retry-After for retryable failures.
func writeFailure(w http.ResponseWriter, ctype string, f *failure, retryAfter time.Duration) {
	// Decoders quote the bytes they choke on; a Status message must be
	// UTF-8 to be encoded at all.
	st := &status.Status{Code: int32(f.code), Message: strings.ToValidUTF8(f.msg, "\uFFFD")}
	var out []byte
	var err error
	if ctype == contentJSON {
		out, err = protojson.Marshal(st)
	} else {
		out, err = proto.Marshal(st)
	}
	h := w.Header()
	if err != nil {
		http.Error(w, f.msg, httpStatus(f.code))
		return
	}
	if f.retryable() {
		secs := int((retryAfter + time.Second - 1) / time.Second)
		h.Set("Retry-After", strconv.Itoa(max(secs, 1)))
	}
	h.Set("Content-Type", ctype)
	h.Set("Content-Length", strconv.Itoa(len(out)))
	w.WriteHeader(httpStatus(f.code))
	_, _ = w.Write(out)
}
