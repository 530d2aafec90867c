// Loads a report in headless Chromium over the DevTools protocol (Node's
// WebSocket: run with --experimental-websocket on Node 20) and checks it as
// a reader's browser sees it:
//   node --experimental-websocket report_browser.cjs CHROMIUM REPORT.html TWIN.json EXPECT.json SHOT.png
// (REPORT.html may be an http:// URL: the page as `serve` answers it.)
// EXPECT.json: {"key": number, ...} (data-key paths whose shown value must
// equal the Lua API's). Prints one JSON line of findings; exit status 0
// when every check passed, 1 otherwise (the failures are listed).
"use strict";
const { spawn } = require("node:child_process");
const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");
const { pathToFileURL } = require("node:url");

const [chromium, reportPath, twinPath, expectPath, shotPath] = process.argv.slice(2);
const SECTIONS = ["traffic", "quality", "signals", "drift", "curation", "actions"];

function launch() {
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), "cf-chromium-"));
  const proc = spawn(chromium, ["--headless", "--no-sandbox", "--disable-gpu",
    "--disable-dev-shm-usage", "--no-first-run", "--remote-debugging-port=0",
    `--user-data-dir=${profile}`, "about:blank"],
    // its own process group: the renderer and helper processes go with it
    { stdio: ["ignore", "ignore", "pipe"], detached: true });
  return new Promise((resolve, reject) => {
    let err = "";
    const timer = setTimeout(() => reject(new Error("chromium did not start: " + err)), 30000);
    proc.stderr.on("data", (d) => {
      err += d;
      const m = err.match(/DevTools listening on (ws:\/\/\S+)/);
      if (m) { clearTimeout(timer); resolve({ proc, url: m[1], profile }); }
    });
    proc.on("exit", (code) => reject(new Error(`chromium exited (${code}): ${err}`)));
  });
}

// A minimal CDP client: send(method, params, sessionId) -> result; on(event, fn).
function connect(url) {
  const ws = new WebSocket(url);
  let id = 0;
  const pending = new Map(), listeners = [];
  ws.onmessage = (ev) => {
    const msg = JSON.parse(ev.data);
    if (msg.id && pending.has(msg.id)) {
      const { resolve, reject } = pending.get(msg.id);
      pending.delete(msg.id);
      msg.error ? reject(new Error(msg.error.message)) : resolve(msg.result);
    } else if (msg.method) {
      for (const fn of listeners) fn(msg);
    }
  };
  const send = (method, params = {}, sessionId) => new Promise((resolve, reject) => {
    const n = ++id;
    pending.set(n, { resolve, reject });
    ws.send(JSON.stringify({ id: n, method, params, sessionId }));
  });
  return new Promise((resolve, reject) => {
    ws.onopen = () => resolve({ ws, send, on: (fn) => listeners.push(fn) });
    ws.onerror = (e) => reject(new Error("DevTools connection failed: " + e.message));
  });
}

// What the page shows: sections, their readings and charts, key numbers, width.
const INSPECT = `JSON.stringify({
  sections: [...document.querySelectorAll("main > section")].map((s) => ({
    id: s.id,
    reading: (s.querySelector(".reading") || {}).textContent || "",
    charts: [...s.querySelectorAll("svg.chart")].map((c) => ({
      id: c.dataset.chart, marks: c.querySelectorAll(".mark").length,
      width: c.getBoundingClientRect().width })),
  })),
  keys: [...document.querySelectorAll("[data-key][data-value]")].map((e) => ({
    key: e.dataset.key, value: Number(e.dataset.value), text: e.textContent })),
  scripts: document.querySelectorAll("script").length,
  scrollWidth: document.documentElement.scrollWidth,
  height: document.documentElement.scrollHeight,
})`;

function at(doc, key) {
  return key.split(".").reduce((v, k) => (v == null ? undefined : v[/^\d+$/.test(k) ? Number(k) - 1 : k]), doc);
}

async function open(cdp, width, height) {
  const { targetId } = await cdp.send("Target.createTarget", { url: "about:blank" });
  const { sessionId } = await cdp.send("Target.attachToTarget", { targetId, flatten: true });
  const s = (m, p) => cdp.send(m, p, sessionId);
  await s("Emulation.setDeviceMetricsOverride", { width, height, deviceScaleFactor: 1, mobile: width < 500 });
  for (const d of ["Page", "Network", "Runtime", "Log"]) await s(d + ".enable");
  return { s, sessionId };
}

async function load(cdp, tab, url) {
  const loaded = new Promise((resolve) => cdp.on((m) => {
    if (m.sessionId === tab.sessionId && m.method === "Page.loadEventFired") resolve();
  }));
  await tab.s("Page.navigate", { url });
  await loaded;
  const r = await tab.s("Runtime.evaluate", { expression: INSPECT, returnByValue: true });
  return JSON.parse(r.result.value);
}

function check(page, twin, expect, findings) {
  const fail = (m) => findings.failures.push(m);
  const ids = page.sections.map((s) => s.id);
  for (const id of SECTIONS) {
    const s = page.sections.find((x) => x.id === id);
    if (!s) { fail(`section ${id} missing (have ${ids})`); continue; }
    if (!s.reading.trim()) fail(`section ${id} has no reading`);
    if (id !== "actions" && s.charts.length === 0) fail(`section ${id} has no chart`);
    for (const c of s.charts) if (c.marks === 0) fail(`chart ${c.id} is empty`);
  }
  findings.charts = page.sections.reduce((n, s) => n + s.charts.length, 0);
  findings.keys = page.keys.length;
  for (const k of page.keys) {
    const v = at(twin, k.key);
    if (v !== k.value) fail(`${k.key}: page ${k.value}, JSON twin ${v}`);
  }
  for (const [key, want] of Object.entries(expect)) {
    const k = page.keys.find((x) => x.key === key);
    if (!k) fail(`${key} not shown`);
    else if (k.value !== want) fail(`${key}: page ${k.value}, Lua API ${want}`);
  }
  if (page.scripts !== 0) fail(`${page.scripts} script elements`);
  checkChart(page, twin, findings);
}

// The pass rate of each check per bucket: drawn when the twin has any, one
// dot (keyed to the twin, compared above) per bucket and check that ran.
function checkChart(page, twin, findings) {
  const quality = page.sections.find((x) => x.id === "quality") || { charts: [] };
  const chart = quality.charts.find((c) => c.id === "quality-checks");
  const dots = page.keys.filter((k) => /^quality\.buckets\.\d+\.checks\.\w+\.pass_rate$/.test(k.key));
  let want = 0;
  for (const b of (twin.quality || {}).buckets || []) want += Object.keys(b.checks || {}).length;
  findings.check_dots = dots.length;
  if (want > 0 && !chart) findings.failures.push("chart quality-checks missing");
  if (chart && chart.marks === 0) findings.failures.push("chart quality-checks is empty");
  if (dots.length !== want) findings.failures.push(`quality-checks: ${dots.length} dots, JSON twin ${want}`);
}

async function main() {
  const twin = JSON.parse(fs.readFileSync(twinPath, "utf8"));
  const expect = JSON.parse(fs.readFileSync(expectPath, "utf8"));
  // a file, or a page `serve` answers (http://...)
  const url = /^https?:\/\//.test(reportPath) ? reportPath : pathToFileURL(path.resolve(reportPath)).href;
  const findings = { failures: [], requests: [], errors: [] };
  const { proc, url: wsUrl, profile } = await launch();
  try {
    const cdp = await connect(wsUrl);
    cdp.on((m) => {
      const p = m.params || {};
      if (m.method === "Network.requestWillBeSent" && p.request.url !== url && !p.request.url.startsWith("data:"))
        findings.requests.push(p.request.url);
      if (m.method === "Runtime.exceptionThrown") findings.errors.push(p.exceptionDetails.text);
      if (m.method === "Runtime.consoleAPICalled" && (p.type === "error" || p.type === "warning"))
        findings.errors.push(p.args.map((a) => a.value).join(" "));
      if (m.method === "Log.entryAdded" && p.entry.level === "error") findings.errors.push(p.entry.text);
    });
    const desk = await open(cdp, 1000, 800);
    const page = await load(cdp, desk, url);
    check(page, twin, expect, findings);
    await desk.s("Emulation.setDeviceMetricsOverride", { width: 1000, height: page.height, deviceScaleFactor: 1, mobile: false });
    const shot = await desk.s("Page.captureScreenshot", { format: "png", captureBeyondViewport: true });
    fs.writeFileSync(shotPath, Buffer.from(shot.data, "base64"));
    const phone = await open(cdp, 390, 800);
    const small = await load(cdp, phone, url);
    findings.phone_scroll_width = small.scrollWidth;
    if (small.scrollWidth > 392) findings.failures.push(`on a 390 px phone the page is ${small.scrollWidth} px wide`);
    for (const s of small.sections) for (const c of s.charts)
      if (c.width > 390) findings.failures.push(`chart ${c.id} is ${c.width} px wide on a phone`);
    if (findings.requests.length) findings.failures.push(`network requests: ${findings.requests.join(", ")}`);
    if (findings.errors.length) findings.failures.push(`console errors: ${findings.errors.join(" | ")}`);
    cdp.ws.close();
  } finally {
    // the profile goes once Chromium and its helper processes have exited
    // (they write until then): the whole process group is killed
    const running = proc.exitCode === null && proc.signalCode === null;
    const exited = running ? new Promise((resolve) => proc.once("exit", resolve)) : null;
    try { process.kill(-proc.pid, "SIGKILL"); } catch (e) { if (running) proc.kill("SIGKILL"); }
    if (exited) await exited;
    try {
      fs.rmSync(profile, { recursive: true, force: true, maxRetries: 20, retryDelay: 100 });
    } catch (e) {
      // a leftover temporary profile is not a finding about the page
      process.stderr.write(`could not remove ${profile}: ${e.message}\n`);
    }
  }
  console.log(JSON.stringify(findings));
  process.exit(findings.failures.length ? 1 : 0);
}

main().catch((e) => { console.log(JSON.stringify({ failures: [String(e.stack || e)] })); process.exit(1); });
