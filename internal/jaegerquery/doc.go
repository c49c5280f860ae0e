// Package jaegerquery fetches traces from a Jaeger query service into a
// lonelytrace file, so that the viewer can show what Jaeger stores
// (issue 21; docs/design.md, "Fetch from Jaeger").
//
// It speaks Jaeger's api_v3 gRPC service, jaeger.api_v3.QueryService
// (proto/api_v3/query_service.proto in jaegertracing/jaeger-idl): the
// calls GetServices, FindTraces and GetTrace. Jaeger ships no public Go
// types for api_v3, so the package encodes the three small request
// messages with protowire and passes bytes through a gRPC codec that does
// not marshal (codec.go). Generating them instead would commit generated
// code and pull in the proto's imports (google.api annotations, gnostic,
// Jaeger's expression messages) for five fields we send; the replies are
// OTLP TracesData, which pdata's ptrace.ProtoUnmarshaler already reads,
// and GetServicesResponse is a list of strings.
//
// Fetch brings the traces of a window into a file through the same
// conversion and duplicate check `lonelytrace import` uses
// (otlp.Importer):
//
//	c, err := jaegerquery.Dial("127.0.0.1:16685")
//	...
//	res, err := jaegerquery.Fetch(ctx, c, importer, since, until)
//	// res.CoveredSince says how much of [since, until) it really holds.
package jaegerquery
