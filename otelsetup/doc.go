// Package otelsetup installs the OpenTelemetry SDK with lonelytrace in one
// call, and lets the environment move the same program to a real collector
// later:
//
//	shutdown, err := otelsetup.Start(ctx, otelsetup.WithServiceName("orders"))
//	if err != nil {
//		log.Fatal(err)
//	}
//	defer shutdown(context.Background())
//
// By default spans go to the SQLite file traces.db (or $LONELYTRACE_DB).
// The standard variables choose otherwise, with no change of code:
//
//	OTEL_TRACES_EXPORTER=otlp OTEL_EXPORTER_OTLP_ENDPOINT=http://collector:4318 ./app
//	OTEL_TRACES_EXPORTER=sqlite,otlp ./app    # both, while moving
//	OTEL_TRACES_EXPORTER=console ./app        # spans as JSON on stdout
//	OTEL_TRACES_EXPORTER=none ./app           # context propagates, nothing exported
//	OTEL_SDK_DISABLED=true ./app              # nothing installed at all
//
// OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES, OTEL_TRACES_SAMPLER(_ARG),
// OTEL_PROPAGATORS, OTEL_EXPORTER_OTLP_(TRACES_)PROTOCOL/ENDPOINT/HEADERS and
// OTEL_BSP_* work as the OpenTelemetry specification says.
//
// Importing the package also lets programs that build exporters with
// go.opentelemetry.io/contrib/exporters/autoexport pick lonelytrace with
// OTEL_TRACES_EXPORTER=sqlite, once RegisterAutoexport or Start has run.
package otelsetup
