// Package spanreturn sends a server's spans home with its answer, so that
// the client that asked stores the whole trace in its own file: the
// broadcaster of a pub/sub system needs no storage and no collector, and
// every subscriber's file holds its notifies from end to end.
//
// On the server, a Processor registered with the TracerProvider holds back
// the spans that descend from a request's server span while the request
// runs; the Middleware (net/http, or Echo through package spanreturnecho)
// writes them, with the times the request was received (t1) and answered
// (t2), into the Header of the response as it starts. Headers come before the body, so what rides
// home is what has ended by then, bounded by WithMaxBytes (16 KiB by
// default) and cut oldest first, the cut flagged and counted. Larger sets
// and spans ending later go to the server's own exporter (WithNext) when it
// has one. Servers answer only requests that ask (AskHeader) with a
// sampled W3C traceparent, and only with spans of that trace.
//
// On the client, a Receiver's Transport asks for the spans, notes when the
// request left (t0) and the answer came (t3), checks what came back (size,
// counts, ids, times), moves the spans onto the local clock with Cristian's
// estimate of the server's clock offset
//
//	offset = ((t1 - t0) + (t2 - t3)) / 2,   local = remote - offset,
//
// which is off by at most half the round trip minus the server's time
// (ClockErrorKey), and exports them, under the server's resource, to the
// local exporter. Answers that fail a check are dropped whole and counted
// by Reason (Receiver.Stats).
//
// A stateful connection (a websocket) does the same by hand: Begin and
// Finish on the server give the bytes for the frame that answers a request,
// Receiver.Receive stores them on the client.
//
// Setting LONELYTRACE_SPANRETURN=off switches both sides off.
//
// The wire format is a compact versioned binary encoding, specified for
// implementers in docs/design.md#span-return-wire-format (and in encoding.go),
// about 30 bytes of framing plus some 40 bytes a span and the strings it
// adds; each distinct string is sent once per answer.
package spanreturn
