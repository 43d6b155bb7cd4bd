// Collector throughput next to its floor (a trivial Worker + Durable Object that only counts
// requests), both on local workerd with state on tmpfs, under the same load: SDK beacons of
// 20 events, each from one of 10,000 visitors, sent by N concurrent keep-alive connections.
//
//   node bench/collector-load.mjs [--seconds 20] [--rounds 3] [--connections 16] [--profiles 10000] [--audiences 50] [--compare DIR]
//
// Prints a Markdown table (requests/s, events/s, p50/p99 latency, errors, cost per request
// against the floor) and the ratios.
import { startCollector } from "../collector/js/local.mjs";
import { BENCH_CONFIG, EVENTS_PER_BATCH, beaconPath, option, template } from "./support/beacons.mjs";
import { cpuSeconds } from "./support/cpu.mjs";
import { load } from "./support/load.mjs";
import { benchServers, startOnTmpfs } from "./support/servers.mjs";

process.env.CLOUDFLARE_CF_FETCH_ENABLED ??= "false";
const SECONDS = option("seconds", 20);
const CONNECTIONS = option("connections", 16);
const PROFILES = option("profiles", 10_000);
// With --audiences N, a third run: the collector with N audience rules to evaluate per batch.
const AUDIENCES = option("audiences", 0);
const ROUNDS = option("rounds", 3);
const LOAD = { seconds: SECONDS, connections: CONNECTIONS, profiles: PROFILES };

/** N audiences of the shapes the tag benchmark uses (`cargo bench -p portrait-core --bench core -- tags`). */
function audiences(n) {
  const shapes = [
    (i) => `lead_score >= ${i} and intent_stage == "decision"`,
    (i) => `engagement_score > ${i} or active_7d`,
    (i) => `interest("/Computers & Electronics") > 0.${i} and country in ["DE", "FR"]`,
    (i) => `not lifecycle in ["customer", "churned"] and visits_per_week >= ${Math.floor(i / 10)}`,
    (i) => `trait("plan") == "pro" and page_views > ${i}`,
  ];
  return Array.from({ length: n }, (_, i) => `[[workspaces.audiences]]\nname = "a${i}"\nrule = '${shapes[i % 5](i)}'\n`).join("");
}

const beacon = template();
const results = [];
const servers = benchServers();
if (AUDIENCES > 0) {
  const config = BENCH_CONFIG + audiences(AUDIENCES);
  servers.push([`Portrait collector, ${AUDIENCES} audiences`, (persist) => startCollector({ persist, config }), beaconPath]);
}
// Every server runs at once (an idle workerd costs nothing) and is warmed up once; then the
// measured runs alternate between them, ROUNDS times, and each server's run with the median
// throughput is reported. One run each, back to back, swung the ratio by ±15 % between
// identical builds (the floor alone varied 2,750–3,300 requests/s).
const started = [];
for (const [name, start, pathFor] of servers) {
  const { server, pid, stop } = await startOnTmpfs(start);
  await load(server.url, pathFor, beacon, LOAD); // warm-up: compile, create objects
  started.push({ name, server, pathFor, pid, stop, runs: [] });
}
// Each run also measures its workerd's CPU time per answered request.
async function measuredRun({ server, pathFor, pid }) {
  const cpuBefore = cpuSeconds(pid);
  const run = await load(server.url, pathFor, beacon, LOAD);
  return { ...run, cpuUs: ((cpuSeconds(pid) - cpuBefore) * 1e6) / run.ok };
}
for (let round = 0; round < ROUNDS; round++) {
  for (const entry of started) entry.runs.push(await measuredRun(entry));
}
for (const { name, stop, runs } of started) {
  await stop();
  // In the order they ran: a trend shows a cost that grows with the objects' stored history
  // (each server sits idle while the others run, long enough for its objects to be evicted
  // and to read their storage again).
  console.error(`${name}, runs in order: ${runs.map((r) => `${r.rps.toFixed(0)}/s ${r.cpuUs.toFixed(0)} µs`).join(", ")}`);
  runs.sort((a, b) => a.rps - b.rps);
  const median = runs[Math.floor(runs.length / 2)];
  const cpu = runs.map((r) => r.cpuUs).sort((a, b) => a - b);
  results.push({ name, ...median, range: [runs[0].rps, runs[runs.length - 1].rps], cpuUs: cpu[Math.floor(cpu.length / 2)] });
}
console.log(`median of ${ROUNDS} alternating runs of ${SECONDS} s after a ${SECONDS} s warm-up, ${CONNECTIONS} connections, ` +
  `${EVENTS_PER_BATCH}-event beacons from ${PROFILES} visitors, state on /dev/shm\n`);
// The last column is the cost per request against the floor (its throughput over this
// row's): the figure the collector's budget is about, in the table so that
// `cargo xtask bench` (which keeps only the tables) carries it into BENCHMARKS.md.
const [ours, floor] = results;
console.log("| server | requests/s (median) | runs' range | events/s | p50 ms | p99 ms | errors | cost × floor | workerd CPU µs/request (median) | CPU × floor |");
console.log("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
for (const r of results) {
  const detail = r.errors ? ` ${JSON.stringify(r.statuses)}` : "";
  console.log(`| ${r.name} | ${r.rps.toFixed(0)} | ${r.range.map((n) => n.toFixed(0)).join("–")} | ${(r.rps * EVENTS_PER_BATCH).toFixed(0)} | ${r.p50.toFixed(1)} | ${r.p99.toFixed(1)} | ${r.errors}${detail} | ${(floor.rps / r.rps).toFixed(2)}× | ${r.cpuUs.toFixed(0)} | ${(r.cpuUs / floor.cpuUs).toFixed(2)}× |`);
}
console.log(`\ncost per request relative to the floor: ${(floor.rps / ours.rps).toFixed(2)}× (throughput), ` +
  `${(ours.p50 / floor.p50).toFixed(2)}× (p50 latency), ${(ours.cpuUs / floor.cpuUs).toFixed(2)}× (workerd CPU time)`);
