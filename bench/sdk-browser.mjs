// The browser SDK against Segment analytics-next, posthog-js and Snowplow's browser tracker,
// side by side in one run of headless Chromium (see BENCHMARKS.md).
//
//   cargo xtask build-sdk && cargo xtask build-worker && node bench/sdk-browser.mjs [--loads 15] [--runs 3] [--only portrait,segment]
//
// `portrait-middleware` is Portrait with a source middleware that edits every event.
//
// Each library is loaded the way a site loads it with a script tag, from a local server, and
// sends to a local endpoint: Portrait to the collector on local workerd (through a counting
// proxy), the others to a sink that counts their events. Per library:
//   - bytes fetched until ready (every GET but the page), raw and brotli-11;
//   - script start → ready, median of `--loads` fresh page loads; and of the page viewed again
//     right after in the same browser profile (a returning visitor: files and settings from
//     the HTTP cache, every library's served as cacheable for an hour, the settings for five
//     minutes as Portrait's collector serves them);
//   - main-thread time (Chrome's TaskDuration) for 1,000 `track()` calls with a small
//     properties object, from the first call until all 1,000 were delivered (median of
//     `--runs` fresh pages);
//   - events delivered of 1,000, and of 1,000 when the page is closed right after the calls;
//   - request bytes per event on the wire; JS heap growth over the run (after GC).
import { createServer } from "node:http";
import { readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import zlib from "node:zlib";
import { launchBrowser, launchCollectorFor, newContext, snippetPage, startSite } from "../tests/support/browser.mjs";
import { startProxy } from "../tests/support/proxy.mjs";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const modules = path.join(root, "node_modules");
const argument = (name, fallback) => {
  const at = process.argv.indexOf(name);
  return at > 0 ? Number(process.argv[at + 1]) : fallback;
};
const LOADS = argument("--loads", 15);
const RUNS = argument("--runs", 3);
const CALLS = 1_000;
const EVENT = "Bench Event";

/** A sink on loopback that accepts any POST and counts the benchmark's events in it. */
async function startSink() {
  let events = 0;
  let bytes = 0;
  const server = createServer(async (req, res) => {
    const chunks = [];
    for await (const chunk of req) chunks.push(chunk);
    const body = Buffer.concat(chunks);
    const cors = {
      "access-control-allow-origin": req.headers.origin ?? "*",
      "access-control-allow-credentials": "true",
      "access-control-allow-headers": req.headers["access-control-request-headers"] ?? "*",
      "access-control-allow-methods": "GET, POST, OPTIONS",
    };
    if (process.env.BENCH_DEBUG) console.error(`sink: ${req.method} ${req.url} ${body.length} B`);
    if (req.method === "POST") {
      bytes += body.length;
      let text = body.toString("utf8");
      if (req.headers["content-encoding"] === "gzip" || body[0] === 0x1f) text = zlib.gunzipSync(body).toString("utf8");
      // posthog-js: `data=<base64 JSON>` when it picks its base64 encoding.
      if (text.startsWith("data=")) text = Buffer.from(decodeURIComponent(text.slice(5)), "base64").toString("utf8");
      events += text.split(EVENT).length - 1;
    }
    if (req.url.startsWith("/flags") || req.url.startsWith("/decide")) {
      res.writeHead(200, { ...cors, "content-type": "application/json" });
      return res.end(JSON.stringify({ featureFlags: {}, sessionRecording: false, supportedCompression: [] }));
    }
    res.writeHead(200, { ...cors, "content-type": "application/json" });
    res.end("{}");
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    events: () => events,
    bytes: () => bytes,
    reset: () => {
      events = 0;
      bytes = 0;
    },
    stop: () => new Promise((resolve) => server.close(resolve)),
  };
}

/** Each library: its script-tag page, how the page calls `track`, and how delivery is counted. */
function libraries({ site, sink, proxy, collector }) {
  const segmentKey = "benchkey";
  site.mount("/segment/", path.join(modules, "@segment/analytics-next/dist/umd"));
  site.mount("/posthog/", path.join(modules, "posthog-js/dist"));
  site.mount("/snowplow/", path.join(modules, "@snowplow/browser-tracker/dist"));
  const settings = JSON.stringify({
    integrations: { "Segment.io": { apiKey: segmentKey, apiHost: sink.url.replace("http://", "") + "/v1", protocol: "http" } },
    plan: { track: { __default: { enabled: true } } },
  });
  site.page(`/v1/projects/${segmentKey}/settings`, settings, { "content-type": "application/json", "cache-control": "public, max-age=300" });
  const timing = `<script>window.__t0 = performance.now(); window.__ready = () => { window.__readyAt = performance.now() - window.__t0; };</script>`;
  const portraitPage = (before = "") =>
    timing + snippetPage({ collector: proxy.url, options: { autocapture: false }, before }).replace(
      "</script></head>",
      "portrait.ready(window.__ready);</script></head>",
    );
  const portrait = {
    html: portraitPage(),
    track: `window.portrait.track(${JSON.stringify(EVENT)}, { plan: "pro", step: i })`,
    delivered: async (anonymousId) => {
      const { json } = await collector.profile("anonymous_id", anonymousId);
      return json?.counters?.[EVENT] ?? 0;
    },
    id: () => window.portrait.user().anonymousId,
    wire: () => proxy.seen.filter((r) => r.url.startsWith("/v1/b")).reduce((sum, r) => sum + r.bytes, 0),
  };
  return {
    portrait,
    // What a page pays for a source middleware: one that adds a property to every event.
    "portrait-middleware": {
      ...portrait,
      html: portraitPage(`portrait.addSourceMiddleware(({ payload, next }) => { payload.obj.properties.via = "mw"; next(payload); });`),
    },
    segment: {
      // Segment's own snippet shape: a stub with _writeKey and _cdn, then the standalone build.
      html: `${timing}<script>
        window.analytics = []; analytics._writeKey = ${JSON.stringify(segmentKey)}; analytics._cdn = ${JSON.stringify(site.origin)};
        ["track","page","identify","ready"].forEach(m => analytics[m] = (...a) => { analytics.push([m, ...a]); return analytics; });
        analytics.ready(window.__ready);
      </script><script async src="/segment/standalone.js"></script>`,
      track: `window.analytics.track(${JSON.stringify(EVENT)}, { plan: "pro", step: i })`,
      delivered: async () => sink.events(),
      wire: () => sink.bytes(),
    },
    posthog: {
      html: `${timing}<script src="/posthog/array.js"></script><script>
        posthog.init("phc_bench", { api_host: ${JSON.stringify(sink.url)}, autocapture: false, capture_pageview: false,
          disable_session_recording: true, disable_surveys: true, advanced_disable_flags: true, advanced_disable_decide: true,
          disable_compression: true, opt_out_useragent_filter: true,
          rate_limiting: { events_per_second: 100000, events_burst_limit: 100000 }, loaded: window.__ready });
      </script>`,
      track: `window.posthog.capture(${JSON.stringify(EVENT)}, { plan: "pro", step: i })`,
      delivered: async () => sink.events(),
      wire: () => sink.bytes(),
    },
    snowplow: {
      html: `${timing}<script src="/snowplow/index.umd.min.js"></script><script>
        snowplowBrowserTracking.newTracker("sp", ${JSON.stringify(sink.url)}, { appId: "bench", encodeBase64: false, eventMethod: "post" });
        window.__ready();
      </script>`,
      track: `window.snowplowBrowserTracking.trackStructEvent({ category: "bench", action: ${JSON.stringify(EVENT)}, label: "pro", value: i })`,
      delivered: async () => sink.events(),
      wire: () => sink.bytes(),
    },
  };
}

const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];
const brotli = (bytes) => zlib.brotliCompressSync(bytes, { params: { [zlib.constants.BROTLI_PARAM_QUALITY]: 11 } }).length;

async function eventuallyCount(read, target, ms = 20_000) {
  const deadline = Date.now() + ms;
  let count = 0;
  while (Date.now() < deadline) {
    count = await read();
    if (count >= target) return count;
    await new Promise((r) => setTimeout(r, 100));
  }
  return count;
}

async function measure(name, library, { browser, site, sink }) {
  const pathname = `/bench-${name}`;
  const url = site.page(pathname, `<!doctype html><html><head><meta charset="utf-8">${library.html}</head><body></body></html>`);
  // Load: bytes fetched until ready, and start → ready.
  const readyTimes = [];
  const repeatTimes = [];
  let loadBytes;
  // One load first, not counted: the servers' first answers (workerd compiling the
  // collector, the settings' first reads) would otherwise be charged to the library measured
  // first.
  for (let load = -1; load < LOADS; load++) {
    const context = await newContext(browser);
    const page = await context.newPage();
    if (process.env.BENCH_DEBUG) page.on("console", (m) => console.error(`${name}: ${m.text()}`));
    const fetched = [];
    page.on("response", (response) => {
      if (response.request().method() === "GET" && !response.url().endsWith(pathname)) fetched.push(response);
    });
    await page.goto(url);
    await page.waitForFunction(() => window.__readyAt !== undefined, null, { timeout: 15_000 });
    if (load >= 0) readyTimes.push(await page.evaluate(() => window.__readyAt));
    if (load === 0) {
      // Only what was requested before ready: the wait above polls, and a library may fetch
      // more right after ready (Portrait's topic model, when the browser is idle).
      const beforeReady = new Set(await page.evaluate(() =>
        performance.getEntriesByType("resource").filter((e) => e.startTime <= window.__t0 + window.__readyAt).map((e) => e.name)));
      const counted = fetched.filter((r) => beforeReady.has(r.url()));
      const bodies = await Promise.all(counted.map((r) => r.body().catch(() => Buffer.alloc(0))));
      loadBytes = { files: counted.length, raw: bodies.reduce((s, b) => s + b.length, 0), brotli: bodies.reduce((s, b) => s + brotli(b), 0) };
    }
    await page.goto(url);
    await page.waitForFunction(() => window.__readyAt !== undefined, null, { timeout: 15_000 });
    if (load >= 0) repeatTimes.push(await page.evaluate(() => window.__readyAt));
    await context.close();
  }
  // 1,000 calls, `--runs` times in fresh pages: main-thread time until delivered, wire
  // bytes, heap growth (medians; delivered: the worst run).
  const runs = [];
  for (let run = 0; run < RUNS; run++) runs.push(await callsRun(library, url, { browser, sink }));
  const delivered = Math.min(...runs.map((r) => r.delivered));
  const mainThreadMs = median(runs.map((r) => r.mainThreadMs));
  const heapGrowth = median(runs.map((r) => r.heapGrowth));
  const wirePerEvent = median(runs.map((r) => r.wirePerEvent));
  // 1,000 calls, then the page is closed at once.
  sink.reset();
  const closing = await newContext(browser);
  const closed = await closing.newPage();
  await closed.goto(url);
  await closed.waitForFunction(() => window.__readyAt !== undefined);
  const closedId = library.id ? await closed.evaluate(library.id) : undefined;
  await closed.evaluate(`for (let i = 0; i < ${CALLS}; i++) ${library.track};`);
  await closed.close({ runBeforeUnload: true });
  const deliveredAfterClose = await eventuallyCount(() => library.delivered(closedId), CALLS, 8_000);
  await closing.close();
  return {
    name,
    loadBytes,
    readyMs: median(readyTimes),
    repeatReadyMs: median(repeatTimes),
    mainThreadMs,
    delivered,
    deliveredAfterClose,
    wirePerEvent,
    heapGrowthKb: heapGrowth / 1024,
  };
}

async function callsRun(library, url, { browser, sink }) {
  sink.reset();
  const context = await newContext(browser);
  const page = await context.newPage();
  const cdp = await context.newCDPSession(page);
  await cdp.send("Performance.enable");
  await page.goto(url);
  await page.waitForFunction(() => window.__readyAt !== undefined);
  await page.waitForTimeout(500);
  const id = library.id ? await page.evaluate(library.id) : undefined;
  const wireBefore = library.wire();
  await cdp.send("HeapProfiler.collectGarbage");
  const heapBefore = (await cdp.send("Runtime.getHeapUsage")).usedSize;
  const taskBefore = await taskDuration(cdp);
  await page.evaluate(`for (let i = 0; i < ${CALLS}; i++) ${library.track};`);
  const delivered = await eventuallyCount(() => library.delivered(id), CALLS);
  const mainThreadMs = ((await taskDuration(cdp)) - taskBefore) * 1000;
  await page.waitForTimeout(300);
  await cdp.send("HeapProfiler.collectGarbage");
  const heapGrowth = (await cdp.send("Runtime.getHeapUsage")).usedSize - heapBefore;
  const wirePerEvent = (library.wire() - wireBefore) / CALLS;
  await context.close();
  return { delivered, mainThreadMs, heapGrowth, wirePerEvent };
}

async function taskDuration(cdp) {
  const { metrics } = await cdp.send("Performance.getMetrics");
  return metrics.find((m) => m.name === "TaskDuration").value;
}

const site = await startSite({ cacheSeconds: 3600 });
const collector = await launchCollectorFor(site.origin);
const proxy = await startProxy(collector.url);
const sink = await startSink();
const browser = await launchBrowser();
try {
  const results = [];
  const all = libraries({ site, sink, proxy, collector });
  const only = process.argv.includes("--only") ? process.argv[process.argv.indexOf("--only") + 1].split(",") : Object.keys(all);
  for (const name of only) {
    results.push(await measure(name, all[name], { browser, site, sink }));
    console.error(`measured ${name}`);
  }
  console.log(`| library | fetched until ready (files, raw, brotli) | start → ready (median of ${LOADS}) | start → ready, viewed again (median of ${LOADS}) | main thread, ${CALLS} calls + delivery (median of ${RUNS}) | delivered | delivered, page closed at once | wire bytes/event | heap growth |`);
  console.log("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
  for (const r of results) {
    const kb = (n) => `${(n / 1024).toFixed(1)} KB`;
    console.log(
      `| ${r.name} | ${r.loadBytes.files}, ${kb(r.loadBytes.raw)}, **${kb(r.loadBytes.brotli)}** | ${r.readyMs.toFixed(1)} ms | ${r.repeatReadyMs.toFixed(1)} ms | ${r.mainThreadMs.toFixed(1)} ms | ${r.delivered}/${CALLS} | ${r.deliveredAfterClose}/${CALLS} | ${r.wirePerEvent.toFixed(1)} | ${r.heapGrowthKb.toFixed(0)} KB |`,
    );
  }
} finally {
  await browser.close();
  await sink.stop();
  await proxy.stop();
  await collector.stop();
  await site.stop();
}
