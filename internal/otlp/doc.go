// Package otlp converts between OTLP traces (the collector's pdata:
// ptrace.Traces, which reads and writes OTLP protobuf and OTLP/JSON) and
// the spans of a lonelytrace file (schema.Span), faithfully: every field
// of an OTLP span survives the trip into the file and back, except what
// the file has no place for (docs/design.md, "Collect"; schema/README.md).
//
// It is what `lonelytrace collect`, `import`, `export` and `replay` share:
//
//	accepted, rejected, msg, err := otlp.Store(ctx, exp, td, otlp.NoWait) // collect
//	td := otlp.Traces(spans)                                            // export, replay
package otlp
