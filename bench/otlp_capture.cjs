// Captures real OTLP/HTTP protobuf request bodies for bench/serve.sh: the
// OpenTelemetry JS SDK's proto trace exporter sends GenAI chat spans (the
// current semantic conventions, content as span attributes) made from a
// corpus of events to a small local HTTP server, which saves each body.
//   node otlp_capture.cjs NODE_MODULES CORPUS.jsonl OUT BODIES
// BODIES bodies of 100 spans each, written to OUT as "<length>\n<bytes>"
// records. Every span is the root of its own trace; its trace id is
// cfb0a7c4 00000000 <body index> <span index> (hex), so every span of the
// capture has its own id, and a replayer can write a round number over the
// four zero bytes after the cfb0a7c4 marker to send the bodies again as new
// spans.
'use strict';
const fs = require('fs');
const http = require('http');
const path = require('path');

const [mods, corpusPath, outPath, bodiesArg] = process.argv.slice(2);
const wanted = Number(bodiesArg);
const need = (name) => require(path.join(mods, name));
const api = need('@opentelemetry/api');
const base = need('@opentelemetry/sdk-trace-base');
const { resourceFromAttributes } = need('@opentelemetry/resources');
const { OTLPTraceExporter } = need('@opentelemetry/exporter-trace-otlp-proto');

const PER_BODY = 100;
const events = fs.readFileSync(corpusPath, 'utf8').split('\n').filter((l) => l)
  .map((l) => JSON.parse(l));
const hex8 = (n) => n.toString(16).padStart(8, '0');
const ms = (t) => [Math.floor(t / 1000), (t % 1000) * 1e6];

// the span attributes an instrumented chat call carries for one event
function attributes(e) {
  const input = Math.floor((e.token_count || 0) / 3);
  const attrs = {
    'gen_ai.operation.name': 'chat',
    'gen_ai.provider.name': 'openai',
    'gen_ai.request.model': e.model_version_id,
    'gen_ai.response.model': e.model_version_id,
    'gen_ai.usage.input_tokens': input,
    'gen_ai.usage.output_tokens': (e.token_count || 0) - input,
    'gen_ai.input.messages': JSON.stringify([{ role: 'user',
      parts: [{ type: 'text', content: e.prompt }] }]),
    'gen_ai.output.messages': JSON.stringify([{ role: 'assistant',
      parts: [{ type: 'text', content: e.response }], finish_reason: 'stop' }]),
    'user.id': e.user_id,
  };
  for (const [k, v] of Object.entries(e.metadata || {})) {
    attrs['traceloop.association.properties.' + k] = String(v);
  }
  return attrs;
}

const saved = [];
const server = http.createServer((req, res) => {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    saved.push(Buffer.concat(chunks));
    res.writeHead(200, { 'Content-Type': 'application/x-protobuf' });
    res.end();
  });
});

async function capture(url) {
  let traceId = null;
  const random = new base.RandomIdGenerator();
  const provider = new base.BasicTracerProvider({
    idGenerator: { generateTraceId: () => traceId, generateSpanId: () => random.generateSpanId() },
    resource: resourceFromAttributes({ 'service.name': 'support-bot' }),
    spanProcessors: [new base.BatchSpanProcessor(new OTLPTraceExporter({ url }),
      { maxExportBatchSize: PER_BODY, maxQueueSize: 2 * PER_BODY })],
  });
  const tracer = provider.getTracer('crucible-bench');
  const t0 = Date.UTC(2026, 0, 1);
  for (let b = 0; b < wanted; b++) {
    for (let s = 0; s < PER_BODY; s++) {
      const e = events[(b * PER_BODY + s) % events.length];
      traceId = 'cfb0a7c4' + '00000000' + hex8(b) + hex8(s);
      const start = t0 + (b * PER_BODY + s) * 10;
      const span = tracer.startSpan('chat ' + e.model_version_id,
        { attributes: attributes(e), startTime: ms(start), kind: api.SpanKind.CLIENT });
      span.end(ms(start + (e.latency_ms || 0)));
    }
    await provider.forceFlush();
  }
  await provider.shutdown();
}

server.listen(0, '127.0.0.1', async () => {
  try {
    await capture(`http://127.0.0.1:${server.address().port}/v1/traces`);
    if (saved.length !== wanted) throw new Error(`captured ${saved.length} bodies, wanted ${wanted}`);
    const out = fs.openSync(outPath, 'w');
    for (const body of saved) {
      fs.writeSync(out, `${body.length}\n`);
      fs.writeSync(out, body);
    }
    fs.closeSync(out);
    server.close();
  } catch (e) {
    process.stderr.write(String(e && e.stack || e) + '\n');
    process.exit(1);
  }
});
