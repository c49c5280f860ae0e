package collect

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// jsonError turns the error pdata gave for an OTLP/JSON body into one line
// a person can act on: what was wrong and at which byte, without the
// decoder's function names and its two copies of the surrounding text.
func jsonError(body []byte, err error) error {
	// Bad syntax: encoding/json says where exactly.
	var syn *json.SyntaxError
	if e := json.Unmarshal(body, new(json.RawMessage)); errors.As(e, &syn) {
		return fmt.Errorf("at byte %d%s: %s", syn.Offset, near(body, int(syn.Offset)), syn.Error())
	} else if e != nil {
		return e // unexpected end of JSON input, and the like
	}
	// Well-formed JSON that is not a request: pdata's decoder (jsoniter)
	// writes "Op: what, error found in #N byte of ...|peek|..., bigger
	// context ...|context|...", where peek is up to 10 bytes either side
	// of the failing position and context up to 50.
	msg := err.Error()
	i := strings.Index(msg, ", error found in #")
	if i < 0 {
		return err
	}
	what := msg[:i]
	// Drop the Go names the message starts with ("ReadUint64: ",
	// "strconv.ParseUint: "): they say where in the decoder, not the body.
	for {
		name, after, ok := strings.Cut(what, ": ")
		if !ok || !goName.MatchString(name) {
			break
		}
		what = after
	}
	rest := msg[i+len(", error found in #"):]
	n, rest, ok := strings.Cut(rest, " byte of ...|")
	k, kerr := strconv.Atoi(n)
	peek, rest, ok2 := strings.Cut(rest, "|..., bigger context ...|")
	ctx, ok3 := strings.CutSuffix(rest, "|...")
	if !ok || !ok2 || !ok3 || kerr != nil {
		return errors.New(what)
	}
	// The context occurs where the decoder was: take its first occurrence
	// (a body of identical spans may repeat it). It starts 50 bytes before
	// the position, or at the start of the body.
	c := bytes.Index(body, []byte(ctx))
	var at int
	switch {
	case c < 0:
		return errors.New(what)
	case c > 0:
		at = c + 50
	default:
		p := strings.Index(ctx, peek) // peek starts 10 bytes before, or at 0
		at = max(p, 0) + k
	}
	return fmt.Errorf("at byte %d%s: %s", at, near(body, at), what)
}

var goName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$`)

// near quotes up to 20 bytes of body before at, for the message.
func near(body []byte, at int) string {
	if at <= 0 || at > len(body) {
		return ""
	}
	return ", after " + strconv.Quote(string(body[max(at-20, 0):at]))
}
