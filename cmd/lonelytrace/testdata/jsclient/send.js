// Sends spans to an OTLP receiver with the OpenTelemetry JavaScript SDK,
// configured only by the standard OTEL_EXPORTER_OTLP_* variables.
//
//	node send.js proto|http|grpc SERVICE COUNT
//
// Each of COUNT traces is a notify span (the pub/sub conventions and one
// attribute of every type) with a "hash" child. It prints the number of
// spans ended once the provider has flushed them.
'use strict';
const api = require('@opentelemetry/api');
const { TracerProvider, BatchSpanProcessor } = require('@opentelemetry/sdk-trace');
const { resourceFromAttributes } = require('@opentelemetry/resources');

async function main() {
  const [kind, service, countArg] = process.argv.slice(2);
  const count = Number(countArg);
  const { OTLPTraceExporter } = require(`@opentelemetry/exporter-trace-otlp-${kind}`);
  let failed = 0;
  const exporter = new OTLPTraceExporter();
  const exportOrig = exporter.export.bind(exporter);
  exporter.export = (spans, done) => exportOrig(spans, (r) => {
    if (r.code !== 0) {
      failed += spans.length;
      console.error(`export of ${spans.length} spans failed: ${r.error}`);
    }
    done(r);
  });
  const provider = new TracerProvider({
    resource: resourceFromAttributes({ 'service.name': service, 'deployment.environment.name': 'test' }),
    spanProcessors: [new BatchSpanProcessor({ exporter, maxExportBatchSize: 64, scheduledDelayMillis: 50 })],
  });
  const tracer = provider.getTracer('jsclient', '1.0.0');
  let ended = 0;
  for (let i = 0; i < count; i++) {
    const root = tracer.startSpan('notify', {
      kind: api.SpanKind.PRODUCER,
      attributes: {
        'messaging.operation.name': 'notify',
        'messaging.destination.name': 'orders',
        'lonelytrace.broadcaster': 'b1',
        'messaging.message.body.size': i * 10,
        'lonelytrace.subscribers': 3,
        'lonelytrace.stateful': i % 2 === 0,
        'test.string': 'héllo <b>',
        'test.int': 42,
        'test.double': 2.5,
        'test.bool': true,
        'test.strings': ['a', 'b'],
        'test.ints': [1, 2, 3],
        'test.doubles': [1.5, 2.5],
        'test.bools': [true, false],
      },
    });
    const ctx = api.trace.setSpan(api.context.active(), root);
    const child = tracer.startSpan('hash', {}, ctx);
    child.addEvent('hashed', { 'test.event': 'yes' });
    child.end();
    root.setStatus({ code: i % 5 === 0 ? api.SpanStatusCode.ERROR : api.SpanStatusCode.OK, message: i % 5 === 0 ? 'refused' : '' });
    root.end();
    ended += 2;
  }
  await provider.forceFlush();
  await provider.shutdown();
  console.log(JSON.stringify({ ended, failed }));
}

main().catch((e) => { console.error(e); process.exit(1); });
