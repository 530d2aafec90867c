// Sends generations and spans with the Langfuse JS SDK built on
// OpenTelemetry (@langfuse/tracing, exported by @langfuse/otel's span
// processor to <baseUrl>/api/public/otel/v1/traces, as OTLP/JSON with the
// keys as Basic auth), the same attributes the Langfuse Python SDK v3 sets.
//   node langfuse_otel_send.cjs NODE_MODULES REQUEST.json
// REQUEST: {baseUrl, publicKey, secretKey, observations: [{name, type
//           ("generation", "span", ...), attributes: {model, input, output,
//           usageDetails, metadata, ...} set at the start, update: {...} set
//           before the end, trace: {userId, sessionId, metadata} propagated
//           to it}]}
// Output (stdout): {"sent": n}
'use strict';
const path = require('path');
const fs = require('fs');

const mods = process.argv[2];
const req = JSON.parse(fs.readFileSync(process.argv[3], 'utf8'));
const need = (name) => require(path.join(mods, name));

const api = need('@opentelemetry/api');
const base = need('@opentelemetry/sdk-trace-base');
const { AsyncLocalStorageContextManager } = need('@opentelemetry/context-async-hooks');
const { LangfuseSpanProcessor } = need('@langfuse/otel');
const tracing = need('@langfuse/tracing');

(async () => {
  // propagateAttributes carries the trace's user and session in the context
  api.context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  const processor = new LangfuseSpanProcessor({ baseUrl: req.baseUrl, publicKey: req.publicKey,
    secretKey: req.secretKey, exportMode: 'batched', flushAt: 1000 });
  const provider = new base.BasicTracerProvider({ spanProcessors: [processor] });
  tracing.setLangfuseTracerProvider(provider);
  let sent = 0;
  for (const o of req.observations) {
    await tracing.propagateAttributes(o.trace || {}, async () => {
      const obs = tracing.startObservation(o.name, o.attributes || {}, { asType: o.type || 'span' });
      if (o.update) obs.update(o.update);
      obs.end();
      sent++;
    });
  }
  await provider.forceFlush();
  await provider.shutdown();
  process.stdout.write(JSON.stringify({ sent }) + '\n');
})().catch((e) => {
  process.stderr.write(String(e && e.stack || e) + '\n');
  process.exit(1);
});
