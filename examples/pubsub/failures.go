package main

import "fmt"

// The demo's failures are types of their own because the SDK names an
// error recorded on a span (exception.type) by its dynamic type: an
// errors.New would read "*errors.errorString" on the trace page, a
// fmt.Errorf "*fmt.wrapError". A value type of this package reads
// "github.com/lonelytrace/lonelytrace/examples/pubsub.SignatureError"
// and the like: what happened, and where it is defined.

// SignatureError is a request or message whose signature does not verify.
type SignatureError struct{}

func (SignatureError) Error() string { return "bad signature" }

// UnavailableError is a flaky subscriber's application failing a delivery.
type UnavailableError struct{}

func (UnavailableError) Error() string { return "application unavailable" }

// BusyError is a broadcaster turning a notify away; the subscriber tries
// another.
type BusyError struct{}

func (BusyError) Error() string { return "broadcaster busy, try another" }

// ClosedError is a request on a stateful connection that has closed.
type ClosedError struct{}

func (ClosedError) Error() string { return "websocket closed" }

// NotConfirmedError is a delivery the subscriber answered without
// confirming it.
type NotConfirmedError struct{}

func (NotConfirmedError) Error() string { return "not confirmed" }

// StatusError is an HTTP answer other than 200 OK to the request Op.
type StatusError struct{ Op, Status string }

func (e StatusError) Error() string {
	if e.Op == "" {
		return e.Status
	}
	return e.Op + ": " + e.Status
}

// AnswerError is an answer to the request Op that does not decode.
type AnswerError struct {
	Op  string
	Err error
}

func (e AnswerError) Error() string { return e.Op + " answer: " + e.Err.Error() }
func (e AnswerError) Unwrap() error { return e.Err }

// ETagError is a subscription set whose etag is not the one expected:
// the set changed on the way, or the two sides disagree on its members.
type ETagError struct{ Got, Want string }

func (e ETagError) Error() string { return fmt.Sprintf("etag %q; want %q", e.Got, e.Want) }

// PeerError is a failure the other side reported in its answer, as it
// reported it.
type PeerError struct{ Msg string }

func (e PeerError) Error() string { return e.Msg }

// RetriesExhaustedError is a notify that failed on every broadcaster it
// tried; Err is the last attempt's failure.
type RetriesExhaustedError struct {
	Attempts int
	Err      error
}

func (e RetriesExhaustedError) Error() string {
	return fmt.Sprintf("retries exhausted after %d attempts: %v", e.Attempts, e.Err)
}
func (e RetriesExhaustedError) Unwrap() error { return e.Err }
