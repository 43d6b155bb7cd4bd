// Classifying one page in the browser (wasm), in headless Chromium (see BENCHMARKS.md).
//
//   cargo xtask build-sdk && node bench/topics-browser.mjs [--runs 500]
//
// A realistic article page (title, meta description and keywords, Open Graph and article
// tags, JSON-LD, 12 headings, 3 KB of text) loads the SDK with the script tag; once the topic
// model is in, `portrait.pageTopics({refresh: true})` runs `--runs` times (in batches of 20,
// timed per batch): reading the
// DOM, extracting features and classifying, all of what a page view costs. Reported: median
// and p95 of the batches' time per page, and the same with the visible-text sample on; the
// model's size; and how soon a returning visitor's `data-portrait-show-if` element is shown.
// Prints Markdown tables.
import { readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import zlib from "node:zlib";
import { launchBrowser, newContext, snippetPage, startSite, DIST } from "../tests/support/browser.mjs";

const at = process.argv.indexOf("--runs");
const RUNS = at > 0 ? Number(process.argv[at + 1]) : 500;
const BATCHES = Math.max(1, Math.round(RUNS / 20));

const headings = Array.from({ length: 12 }, (_, i) => `<h${1 + (i % 3)}>Cloud security section ${i}: identity, access and encryption</h${1 + (i % 3)}>`).join("");
const text = "<p>" + "Zero trust networks verify every request; keys rotate and logs are audited. ".repeat(40) + "</p>";
const head = `<meta name="description" content="How to secure cloud workloads: identity, network policy and encryption at rest">
<meta name="keywords" content="cloud security, zero trust, encryption, IAM">
<meta property="og:title" content="Cloud security in practice"><meta property="og:description" content="A field guide">
<meta property="article:section" content="Security"><meta property="article:tag" content="cloud"><meta property="article:tag" content="devops">
<script type="application/ld+json">{"@context":"https://schema.org","@type":"TechArticle","headline":"Cloud security in practice","articleSection":"Security","keywords":["cloud","security","encryption"],"about":{"@type":"Thing","name":"Computer security"}}</script>`;

const site = await startSite();
const browser = await launchBrowser();
try {
  const results = [];
  for (const visibleText of [false, true]) {
    const context = await newContext(browser);
    const page = await context.newPage();
    const html = snippetPage({ collector: "http://127.0.0.1:9", options: { remoteSettings: false, topicsVisibleText: visibleText }, title: "Cloud security in practice", head, body: headings + text });
    await page.goto(site.page("/blog/cloud-security", html));
    await page.waitForFunction(() => window.portrait?.stats?.()?.topicsModel === 1);
    // performance.now() is coarse in Chromium (~0.1 ms): time batches of 20, per page.
    const timings = await page.evaluate((batches) => {
      const times = [];
      for (let b = 0; b < batches; b++) {
        const start = performance.now();
        for (let i = 0; i < 20; i++) window.portrait.pageTopics({ refresh: true });
        times.push((performance.now() - start) / 20);
      }
      return times.sort((a, b) => a - b);
    }, BATCHES);
    const topics = await page.evaluate(() => window.portrait.pageTopics().slice(0, 3).map((t) => `${t.path} ${t.score.toFixed(2)}`));
    results.push({ visibleText, median: timings[Math.floor(BATCHES / 2)], p95: timings[Math.floor(BATCHES * 0.95)], topics });
    await context.close();
  }
  const shown = await showIfLatency(15);
  const model = readFileSync(path.join(DIST, "portrait-topics.bin"));
  const brotli = zlib.brotliCompressSync(model, { params: { [zlib.constants.BROTLI_PARAM_QUALITY]: 11 } }).length;
  // Two Markdown tables (`cargo xtask bench` copies the tables into BENCHMARKS.md).
  console.log("| file | raw | brotli-11 | budget |");
  console.log("|---|---:|---:|---:|");
  console.log(`| \`portrait-topics.bin\` (fetched after \`ready\`) | ${model.length} B | ${brotli} B | ≤ 16 KB brotli |`);
  console.log("");
  console.log(`| page read + classified (wasm, ${BATCHES * 20} runs) | median | p95 | budget | top topics |`);
  console.log("|---|---:|---:|---:|---|");
  for (const r of results) {
    const budget = r.visibleText ? "" : "≤ 1 ms median";
    console.log(`| ${r.visibleText ? "with 2,000 chars of visible text" : "default (no visible text)"} | ${r.median.toFixed(3)} ms | ${r.p95.toFixed(3)} ms | ${budget} | ${r.topics.join("; ")} |`);
  }
  console.log("");
  console.log("| personalisation, returning visitor (15 loads) | median | p95 | of which after \`ready\` (median) |");
  console.log("|---|---:|---:|---:|");
  console.log(`| navigation start → \`data-portrait-show-if\` element shown | ${shown.median.toFixed(1)} ms | ${shown.p95.toFixed(1)} ms | ${shown.afterReady.toFixed(1)} ms |`);
} finally {
  await browser.close();
  await site.stop();
}

/** A page with an element shown only to visitors interested in Sports (`hidden` in the
 * HTML), opened `loads` times in one profile after a first visit that credited Sports: the
 * time from each navigation's start to the element being shown, and its part after `ready`
 * (the interest module's load, its model, the stored profile). */
async function showIfLatency(loads) {
  const context = await newContext(browser);
  const page = await context.newPage();
  const watch = `window.shownAt = undefined;
    new MutationObserver((_, observer) => {
      if (document.getElementById("offer")?.hidden === false) {
        window.shownAt = performance.now();
        observer.disconnect();
      }
    }).observe(document.documentElement, { attributes: true, subtree: true, attributeFilter: ["hidden"] });`;
  const html = snippetPage({
    collector: "http://127.0.0.1:9",
    options: { remoteSettings: false },
    title: "Premier League football scores and results",
    before: watch + `portrait.ready(() => { window.readyAt = performance.now(); });`,
    body: `<h1>Premier League football scores</h1><div id="offer" hidden data-portrait-show-if="interest:/Sports">Season tickets</div>`,
  });
  const url = site.page("/sport/scores", html);
  await page.goto(url);
  await page.waitForFunction(() => window.portrait?.stats?.()?.topicsModel === 1);
  const times = [];
  const afterReady = [];
  for (let i = 0; i < loads; i++) {
    await page.goto(url); // leaving credits Sports; the next view shows the offer
    times.push(await page.waitForFunction(() => window.shownAt).then((shownAt) => shownAt.jsonValue()));
    afterReady.push(times.at(-1) - (await page.evaluate(() => window.readyAt)));
    await page.waitForFunction(() => window.portrait?.stats?.()?.topicsModel === 1);
  }
  await context.close();
  const median = (values) => values.sort((a, b) => a - b)[Math.floor(values.length / 2)];
  return { median: median(times), p95: times[Math.min(loads - 1, Math.floor(loads * 0.95))], afterReady: median(afterReady) };
}
