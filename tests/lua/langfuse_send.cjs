// Sends traces, generations and scores with the real Langfuse JS SDK (v3,
// the `langfuse` npm package) to a Langfuse ingestion endpoint, flushes,
// and prints what the SDK reported.
//   node langfuse_send.cjs NODE_MODULES REQUEST.json
// REQUEST: {baseUrl, publicKey, secretKey, retries (fetchRetryCount, default 0),
//           traces: [{trace: {...trace params},
//                     generations: [{create: {...}, flush: true (flush after the
//                                    create, so the update goes in a later batch),
//                                    update: {...}, end: {...}}],
//                     scores: [{...score params; observation: i (the i-th
//                               generation, from 0) for observationId}]}],
//           scores: [{...langfuse.score params}]}
// Dates: startTime / endTime / completionStartTime given as ISO text become
// Date objects (the SDK's own type).
// Output (stdout): {"warnings": ["..."], "ids": [[trace id, [generation ids]]]}
'use strict';
const path = require('path');
const fs = require('fs');

const mods = process.argv[2];
const req = JSON.parse(fs.readFileSync(process.argv[3], 'utf8'));
const { Langfuse } = require(path.join(mods, 'langfuse'));

function dates(o) {
  if (!o) return o;
  const out = { ...o };
  for (const k of ['startTime', 'endTime', 'completionStartTime', 'timestamp']) {
    if (typeof out[k] === 'string') out[k] = new Date(out[k]);
  }
  return out;
}

async function main() {
  const lf = new Langfuse({
    publicKey: req.publicKey, secretKey: req.secretKey, baseUrl: req.baseUrl,
    flushAt: 1000, flushInterval: 600000, fetchRetryCount: req.retries || 0,
    fetchRetryDelay: 100, requestTimeout: 10000,
  });
  const warnings = [];
  lf.on('warning', (e) => warnings.push(String((e && e.message) || e)));
  lf.on('error', (e) => warnings.push(String((e && e.message) || e)));
  const ids = [];
  for (const t of req.traces || []) {
    const trace = lf.trace(t.trace);
    const gens = [];
    for (const g of t.generations || []) {
      const gen = trace.generation(dates(g.create));
      if (g.flush) await lf.flushAsync();
      if (g.update) gen.update(dates(g.update)); // keeps the endTime given
      if (g.end) gen.end(dates(g.end)); // endTime: now
      gens.push(gen);
    }
    for (const s of t.scores || []) {
      const { observation, ...rest } = s;
      // the trace's score has no observationId; a generation's has its id
      if (observation !== undefined) gens[observation].score(rest);
      else trace.score(rest);
    }
    ids.push([trace.id, gens.map((g) => g.id)]);
  }
  for (const s of req.scores || []) lf.score(s);
  await lf.flushAsync();
  await lf.shutdownAsync();
  process.stdout.write(JSON.stringify({ warnings, ids }));
}

main().catch((e) => {
  process.stderr.write(String((e && e.stack) || e));
  process.exit(1);
});
