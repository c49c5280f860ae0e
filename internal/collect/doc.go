// Package collect receives OTLP traces over gRPC and HTTP and stores them
// in a lonelytrace file: the receiver behind `lonelytrace collect`.
//
// It follows the OTLP specification's rules for servers: protobuf and
// JSON over HTTP (POST /v1/traces, gzip allowed), the answer in the
// request's encoding, partial success with the count of rejected spans,
// 400 / INVALID_ARGUMENT for payloads that cannot be decoded, and a
// retryable answer (HTTP 503 with Retry-After, gRPC UNAVAILABLE with
// RetryInfo) when the file's writer cannot take more, so that the SDK
// retries instead of losing spans. Nothing waits without bound: a request
// gets a slot among a fixed number, and a bounded wait for room in the
// writer's queue. Each request is limited in size after decompression,
// and all of them together by one memory budget, taken before a body is
// read or decoded and answered retryably when it is spent (budget.go).
//
// Serve runs the receivers over one file, as `lonelytrace collect` does:
// it takes the ports before it makes the file, serves until its context
// ends, then stops taking requests, answers those in flight and flushes
// what they queued into the file. The command only turns its flags into
// a ServeConfig and prints what Serve tells it.
//
// How collect fits into the file's data flow is in docs/design.md
// (section Collect).
package collect
