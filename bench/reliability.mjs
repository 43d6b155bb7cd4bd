// Reliability under load: the collector on local workerd (state on tmpfs) takes SDK beacons
// from many visitors as fast as this machine sends them; every answer other than 200 is
// retried as the SDK would (after Retry-After), some delivered batches are sent again (a
// lost answer), and at the end the reconciliation check compares, visitor by visitor, the
// distinct events sent with the events stored. Then the same for one hot profile (every
// connection sending for one visitor) and one hot account (every visitor of one company).
//
//   cargo xtask build-worker && cargo build -p portrait-cli && node bench/reliability.mjs [--seconds 60] [--hot-seconds 15]
//
// Prints a Markdown table: events/s held, latency of first attempts, answers other than 200,
// retries, lost and doubled events (targets: 0 and 0).
import { mkdtempSync, rmSync } from "node:fs";
import http from "node:http";
import { DEV_ADMIN_KEYS, startCollector } from "../collector/js/local.mjs";
import { BENCH_CONFIG, EVENTS_PER_BATCH, anonymousId, beaconPath, beaconFor, option, template } from "./support/beacons.mjs";
import { onConnections, percentiles } from "./support/load.mjs";

process.env.CLOUDFLARE_CF_FETCH_ENABLED ??= "false";
const SECONDS = option("seconds", 60);
const HOT_SECONDS = option("hot-seconds", 15);
const CONNECTIONS = option("connections", 16);
/** One delivered batch in this many is sent again, as after an answer lost on the way. */
const RESEND_ONE_IN = 50;

/**
 * Sends for `seconds` from `CONNECTIONS` connections; `pick()` names each batch's visitor and
 * `first(visitor)` whether it is that visitor's first batch. Returns the figures and, per
 * visitor, the events delivered (each batch counted once, whatever the retries).
 */
async function run(url, seconds, pick, first) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: CONNECTIONS });
  const templates = { identify: template({ identify: true }), track: template({ identify: false }) };
  const delivered = new Map();
  const answers = {};
  const latencies = [];
  let retries = 0;
  let resent = 0;
  const post = (body) =>
    new Promise((resolve) => {
      const started = performance.now();
      const req = http.request(
        `${url}${beaconPath()}`,
        { method: "POST", agent, headers: { "content-type": "text/plain", "content-length": body.length } },
        (res) => {
          res.resume();
          res.on("end", () => resolve({ status: res.statusCode, retryAfter: Number(res.headers["retry-after"] ?? 0), ms: performance.now() - started }));
        },
      );
      req.on("error", () => resolve({ status: "network", retryAfter: 0 }));
      req.end(body);
    });
  /** Posts until a 200, as the SDK retries; records the first attempt's latency. */
  const deliver = async (body) => {
    for (let attempt = 0; ; attempt++) {
      const answer = await post(body);
      answers[answer.status] = (answers[answer.status] ?? 0) + 1;
      if (attempt === 0 && answer.status === 200) latencies.push(answer.ms);
      if (answer.status === 200) return;
      if (answer.status !== "network" && answer.status < 500 && answer.status !== 429) throw new Error(`refused: ${answer.status}`);
      retries++;
      await new Promise((resolve) => setTimeout(resolve, answer.retryAfter ? answer.retryAfter * 1000 : 100));
    }
  };
  const elapsed = await onConnections(CONNECTIONS, seconds, async () => {
    const visitor = pick();
    const body = beaconFor(first(visitor) ? templates.identify : templates.track, visitor);
    await deliver(body);
    delivered.set(visitor, (delivered.get(visitor) ?? 0) + EVENTS_PER_BATCH);
    if (Math.random() * RESEND_ONE_IN < 1) {
      resent++;
      await deliver(body);
    }
  });
  agent.destroy();
  const sent = [...delivered.values()].reduce((a, b) => a + b, 0);
  return { eventsPerSecond: sent / elapsed, ...percentiles(latencies), answers, retries, resent, delivered, sent };
}

/** The reconciliation check: per visitor, stored events against delivered ones. */
async function reconcile(url, delivered) {
  let lost = 0;
  let doubled = 0;
  const visitors = [...delivered.entries()];
  for (let i = 0; i < visitors.length; i += 16) {
    await Promise.all(
      visitors.slice(i, i + 16).map(async ([visitor, sent]) => {
        const response = await fetch(`${url}/v1/profiles/anonymous_id/${anonymousId(visitor)}`, {
          headers: { authorization: `Bearer ${DEV_ADMIN_KEYS.PORTRAIT_ADMIN_KEY_DEMO}` },
        });
        const stored = response.status === 200 ? (await response.json()).eventCount : 0;
        lost += Math.max(0, sent - stored);
        doubled += Math.max(0, stored - sent);
      }),
    );
  }
  return { lost, doubled };
}

async function account(url, domain) {
  const response = await fetch(`${url}/v1/accounts/domain/${domain}`, {
    headers: { authorization: `Bearer ${DEV_ADMIN_KEYS.PORTRAIT_ADMIN_KEY_DEMO}` },
  });
  return response.status === 200 ? response.json() : { status: response.status };
}

const persist = mkdtempSync("/dev/shm/portrait-reliability-");
const collector = await startCollector({ persist, config: BENCH_CONFIG });
const rows = [];
try {
  const seen = new Set();
  const firstOf = (visitor) => !seen.has(visitor) && seen.add(visitor);
  const random = (n, offset = 0) => () => offset + Math.floor(Math.random() * n);
  const scenarios = [
    ["sustained: 1,000 visitors", SECONDS, random(1_000), () => false],
    ["hot profile: one visitor on every connection", HOT_SECONDS, () => 5_000, () => false],
    ["hot account: 200 visitors of one company", HOT_SECONDS, random(200, 6_000), firstOf],
  ];
  for (const [name, seconds, pick, first] of scenarios) {
    const result = await run(collector.url, seconds, pick, first);
    const { lost, doubled } = await reconcile(collector.url, result.delivered);
    const other = Object.entries(result.answers)
      .filter(([status]) => status !== "200")
      .map(([status, n]) => `${n} × ${status}`)
      .join(", ");
    rows.push({ name, seconds, ...result, lost, doubled, other: other || "none" });
    console.error(`${name}: done`);
  }
  const members = (await account(collector.url, "hot-account.example")).members?.length;
  // Every visitor of the company that sent (all 200 unless the run was very short).
  const senders = rows.at(-1).delivered.size;
  console.log(`Run ${new Date().toISOString().slice(0, 10)}, ${CONNECTIONS} connections, batches of ${EVENTS_PER_BATCH} events; every answer other than 200 retried.\n`);
  console.log("| load | seconds | events/s held | p50 ms | p99 ms | answers other than 200 | batches resent | events delivered | lost | doubled |");
  console.log("|---|---:|---:|---:|---:|---|---:|---:|---:|---:|");
  for (const r of rows) {
    console.log(
      `| ${r.name} | ${r.seconds} | ${Math.round(r.eventsPerSecond).toLocaleString("en")} | ${r.p50.toFixed(1)} | ${r.p99.toFixed(1)} | ${r.other} | ${r.resent} | ${r.sent.toLocaleString("en")} | ${r.lost} | ${r.doubled} |`,
    );
  }
  console.log("\n| check | expected | found |\n|---|---:|---:|");
  console.log(`| members the hot account lists | ${senders} | ${members ?? "none"} |`);
  if (rows.some((r) => r.lost || r.doubled) || members !== senders) process.exitCode = 1;
} finally {
  await collector.stop();
  rmSync(persist, { recursive: true, force: true });
}
