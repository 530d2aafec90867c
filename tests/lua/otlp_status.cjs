// Sends one OTLP/HTTP protobuf traces request and decodes the error body
// as google.rpc.Status, with the protobufjs the OpenTelemetry SDK ships
// and the repository's src/otlp/proto/google/rpc/status.proto.
//   node otlp_status.cjs NODE_MODULES REQUEST.json
// REQUEST: {url, headers: {name: value}, spans: [{name, attributes}],
//           cut: n (send only the first n bytes of the body)}
// The body is the SDK's own ExportTraceServiceRequest of those spans
// (ProtobufTraceSerializer over spans the SDK recorded).
// Output (stdout): {"status": n, "contentType": "...", "code": n,
//                   "message": "...", "bytes": n}
'use strict';
const path = require('path');
const fs = require('fs');
const http = require('http');

const mods = process.argv[2];
const req = JSON.parse(fs.readFileSync(process.argv[3], 'utf8'));
const need = (name) => require(path.join(mods, name));

function body() {
  const base = need('@opentelemetry/sdk-trace-base');
  const { ProtobufTraceSerializer } = need('@opentelemetry/otlp-transformer');
  const memory = new base.InMemorySpanExporter();
  const provider = new base.BasicTracerProvider({
    spanProcessors: [new base.SimpleSpanProcessor(memory)],
    spanLimits: { attributeCountLimit: 1000000 },
  });
  const tracer = provider.getTracer('crucible-test');
  for (const s of req.spans) tracer.startSpan(s.name, { attributes: s.attributes || {} }).end();
  const bytes = Buffer.from(ProtobufTraceSerializer.serializeRequest(memory.getFinishedSpans()));
  return req.cut ? bytes.subarray(0, req.cut) : bytes;
}

function post(url, data) {
  return new Promise((resolve, reject) => {
    const r = http.request(url, { method: 'POST', headers: Object.assign({
      'Content-Type': 'application/x-protobuf', 'Content-Length': data.length }, req.headers || {}) },
    (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ res, data: Buffer.concat(chunks) }));
    });
    r.on('error', reject);
    r.end(data);
  });
}

(async () => {
  const protobuf = need('protobufjs');
  const proto = path.join(__dirname, '..', '..', 'src', 'otlp', 'proto', 'google', 'rpc', 'status.proto');
  const Status = protobuf.loadSync(proto).lookupType('google.rpc.Status');
  const { res, data } = await post(req.url, body());
  const st = Status.decode(data);
  process.stdout.write(JSON.stringify({ status: res.statusCode, contentType: res.headers['content-type'],
    code: st.code, message: st.message, bytes: data.length }) + '\n');
})().catch((e) => {
  process.stderr.write(String(e && e.stack || e) + '\n');
  process.exit(1);
});
