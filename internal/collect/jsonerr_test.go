package collect

import (
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
)

// TestReceiver_HTTPBadJSON: a malformed OTLP/JSON body is answered 400 with
// one line saying what was wrong and at which byte, not the decoder's
// internals.
func TestReceiver_HTTPBadJSON(t *testing.T) {
	url := serve(t, New(mustStore(t)))
	pad := strings.Repeat(`{"scopeSpans":[]},`, 8) // puts the fault past the decoder's 50-byte context
	for _, c := range []struct {
		name, body, bad, what string // bad: the text the offset must fall in
	}{
		{"TraceIDLength", `{"resourceSpans":[` + pad + `{"scopeSpans":[{"spans":[{"traceId":"zz"}]}]}]}`, `"zz"`, "length mismatch"},
		{"TraceIDLengthEarly", `{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"zz"}]}]}]}`, `"zz"`, "length mismatch"},
		{"NotAnArray", `{"resourceSpans":{}}`, `{}`, "expect ["},
		{"Number", `{"resourceSpans":[` + pad + `{"scopeSpans":[{"spans":[{"startTimeUnixNano":"abc"}]}]}]}`, `"abc"`, `parsing "abc"`},
		{"Kind", `{"resourceSpans":[{"scopeSpans":[{"spans":[{"kind":"weird"}]}]}]}`, `"weird"`, "unknown string value"},
		{"TrailingComma", `{"resourceSpans":[` + pad + `{"scopeSpans":[{"spans":[{"name":"x",}]}]}]}`, `,}`, "invalid character '}'"},
		{"Truncated", `{"resourceSpans":[{"scopeSpans":[`, ``, "unexpected end of JSON input"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := post(t, url, contentJSON, "", strings.NewReader(c.body))
			if r.code != http.StatusBadRequest || r.status == nil || codes.Code(r.status.Code) != codes.InvalidArgument {
				t.Fatalf("answer = %d %v; want 400 with an INVALID_ARGUMENT Status", r.code, r.status)
			}
			msg := r.status.Message
			t.Logf("%s", msg)
			for _, internal := range []string{"error found in", "bigger context", "Read", "Iter", "\n"} {
				if strings.Contains(msg, internal) {
					t.Errorf("message %q holds %q; want one line without the decoder's internals", msg, internal)
				}
			}
			if !strings.HasPrefix(msg, "collect: bad JSON ExportTraceServiceRequest") || !strings.Contains(msg, c.what) {
				t.Errorf("message %q; want it to say a bad JSON request and %q", msg, c.what)
			}
			if c.bad == "" {
				return
			}
			m := regexp.MustCompile(`at byte (\d+)`).FindStringSubmatch(msg)
			if m == nil {
				t.Fatalf("message %q names no byte offset", msg)
			}
			at, _ := strconv.Atoi(m[1])
			lo := strings.Index(c.body, c.bad)
			if at < lo || at > lo+len(c.bad) {
				t.Errorf("offset %d; want it within %q at bytes %d to %d", at, c.bad, lo, lo+len(c.bad))
			}
		})
	}
}
