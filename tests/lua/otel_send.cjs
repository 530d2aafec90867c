// Sends spans (or log records) to an OTLP/HTTP endpoint with the real
// OpenTelemetry JS SDK and exporter, and prints what the exporter reported.
//   node otel_send.cjs NODE_MODULES REQUEST.json
// REQUEST: {url, kind: "traces"|"logs", protocol: "proto"|"json" (both kinds), gzip,
//           resource: {attr: value}, spans: [{name, attributes, start_ms,
//           end_ms, error: "message", extra_attributes: n}], logs: [{eventName,
//           body, attributes, traceId, spanId}]}
// A span's trace_id / span_id (hex), when given, are its ids; a log
// record without traceId is emitted outside any span.
// extra_attributes: n more attributes "x.<i>" = "v<i>" on that span (the
// SDK's attribute count limit is lifted).
// capture: a file; the exporter sends to a local server of this script
// instead of url, which answers 200 and writes the (last) body it got to
// that file, for a test to alter and send itself.
// Output (stdout): {"results": [{"code": 0|1, "error": "..."}]}
'use strict';
const path = require('path');
const fs = require('fs');

const mods = process.argv[2];
const req = JSON.parse(fs.readFileSync(process.argv[3], 'utf8'));
const need = (name) => require(path.join(mods, name));

const api = need('@opentelemetry/api');
const { resourceFromAttributes } = need('@opentelemetry/resources');
const results = [];

// records what each export call reported
function recording(inner) {
  return {
    export(items, done) {
      inner.export(items, (r) => {
        results.push({ code: r.code, error: r.error ? String(r.error.message || r.error) : null });
        done(r);
      });
    },
    shutdown() { return inner.shutdown(); },
    forceFlush() { return inner.forceFlush ? inner.forceFlush() : Promise.resolve(); },
  };
}

const ms = (t) => [Math.floor(t / 1000), (t % 1000) * 1e6];

async function traces(resource, config) {
  const base = need('@opentelemetry/sdk-trace-base');
  const pkg = req.protocol === 'json' ? '@opentelemetry/exporter-trace-otlp-http'
    : '@opentelemetry/exporter-trace-otlp-proto';
  const exporter = recording(new (need(pkg).OTLPTraceExporter)(config));
  // the ids a span asks for, else random ones
  const random = new base.RandomIdGenerator();
  let next = null;
  const idGenerator = {
    generateTraceId: () => (next && next.trace_id) || random.generateTraceId(),
    generateSpanId: () => (next && next.span_id) || random.generateSpanId(),
  };
  const provider = new base.BasicTracerProvider({
    idGenerator,
    resource, spanProcessors: [new base.BatchSpanProcessor(exporter, { maxExportBatchSize: 1000 })],
    spanLimits: { attributeCountLimit: 1000000 },
  });
  const tracer = provider.getTracer('crucible-test');
  for (const s of req.spans) {
    const attributes = s.attributes || {};
    for (let i = 0; i < (s.extra_attributes || 0); i++) attributes['x.' + i] = 'v' + i;
    next = s;
    const span = tracer.startSpan(s.name, { attributes, startTime: ms(s.start_ms),
      kind: api.SpanKind.CLIENT });
    if (s.error) span.setStatus({ code: api.SpanStatusCode.ERROR, message: s.error });
    span.end(ms(s.end_ms));
  }
  await provider.forceFlush();
  await provider.shutdown();
}

// The SDK's OTLP/JSON log exporter: what @opentelemetry/exporter-logs-otlp-http
// builds for node, from the same parts (the export delegate and the SDK's
// JSON serializer), since that package is not in the test cache.
function jsonLogExporter(config) {
  const base = need('@opentelemetry/otlp-exporter-base');
  // (a subpath export: resolved as the package's exports map says)
  const http = require(require.resolve('@opentelemetry/otlp-exporter-base/node-http', { paths: [mods] }));
  const { JsonLogsSerializer } = need('@opentelemetry/otlp-transformer');
  return new base.OTLPExporterBase(http.createOtlpHttpExportDelegate(
    http.convertLegacyHttpOptions(config, 'LOGS', 'v1/logs', { 'Content-Type': 'application/json' }),
    JsonLogsSerializer));
}

async function logs(resource, config) {
  const sdk = need('@opentelemetry/sdk-logs');
  const { OTLPLogExporter } = need('@opentelemetry/exporter-logs-otlp-proto');
  const exporter = recording(req.protocol === 'json' ? jsonLogExporter(config)
    : new OTLPLogExporter(config));
  const provider = new sdk.LoggerProvider({
    resource, processors: [new sdk.BatchLogRecordProcessor(exporter, { maxExportBatchSize: 1000 })],
  });
  const logger = provider.getLogger('crucible-test');
  for (const l of req.logs) {
    const ctx = l.traceId ? api.trace.setSpanContext(api.context.active(),
      { traceId: l.traceId, spanId: l.spanId, traceFlags: 1 }) : api.context.active();
    logger.emit({ eventName: l.eventName, body: l.body, attributes: l.attributes || {},
      context: ctx });
  }
  await provider.forceFlush();
  await provider.shutdown();
}

// A server on a free loopback port that keeps the bodies it gets in file.
function captureServer(file) {
  const http = require('http');
  const server = http.createServer((rq, rs) => {
    const chunks = [];
    rq.on('data', (c) => chunks.push(c));
    rq.on('end', () => {
      fs.writeFileSync(file, Buffer.concat(chunks));
      rs.writeHead(200, { 'Content-Type': rq.headers['content-type'] || 'application/x-protobuf' });
      rs.end();
    });
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

(async () => {
  const resource = resourceFromAttributes(req.resource || {});
  const server = req.capture ? await captureServer(req.capture) : null;
  const url = server ? `http://127.0.0.1:${server.address().port}/v1/${req.kind || 'traces'}` : req.url;
  const config = { url, compression: req.gzip ? 'gzip' : 'none', headers: req.headers || {} };
  if (req.kind === 'logs') await logs(resource, config);
  else await traces(resource, config);
  if (server) server.close();
  process.stdout.write(JSON.stringify({ results }) + '\n');
})().catch((e) => {
  process.stderr.write(String(e && e.stack || e) + '\n');
  process.exit(1);
});
