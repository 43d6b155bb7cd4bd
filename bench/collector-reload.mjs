// What a returning visitor's first batch costs. The runtime evicts a Durable Object ~10 s
// after its last request (workerd locally; Cloudflare hibernates idle objects the same way),
// so the next batch finds its ProfileObject gone and reloads it from SQLite: the newest
// state with the batches after it applied again, and the message ids of every stored batch.
// `bench/collector-load.mjs` pays this once per object per run, mixed into its throughput;
// this measures it alone.
//
//   node bench/collector-reload.mjs [--profiles 1000] [--rows 40] [--rounds 5] [--connections 16] [--compare DIR]
//
// Each server (the collector, the floor, and with --compare a copy of an earlier
// `collector/build`) first gets `rows` beacons from each of `profiles` visitors, so every
// object holds that many batch rows. Then, `rounds` times: 15 s idle (every object evicted),
// and for each server in turn one beacon per visitor (the first batch: each object reloads)
// and at once a second one (the next batch: loaded). Prints workerd's CPU time per request
// for both, by `/proc`, and the difference: what one reload costs.
import { beaconFor, option, template } from "./support/beacons.mjs";
import { cpuSeconds } from "./support/cpu.mjs";
import { Poster } from "./support/load.mjs";
import { benchServers, startOnTmpfs } from "./support/servers.mjs";

process.env.CLOUDFLARE_CF_FETCH_ENABLED ??= "false";
const PROFILES = option("profiles", 1000);
const ROWS = option("rows", 40);
const ROUNDS = option("rounds", 5);
const CONNECTIONS = option("connections", 16);
const IDLE_MS = 15_000;

const beacon = template();
const servers = benchServers();

/** One beacon from each of `visitors`, in order, over the connections; workerd's CPU µs per answered request. */
async function sendEach({ url, pathFor, pid }, visitors) {
  const poster = new Poster(url, pathFor, CONNECTIONS);
  const before = cpuSeconds(pid);
  let next = 0;
  const connection = async () => {
    while (next < visitors.length) {
      const visitor = visitors[next++];
      await poster.send({ body: beaconFor(beacon, visitor), visitor });
    }
  };
  await Promise.all(Array.from({ length: CONNECTIONS }, connection));
  const cpuUs = ((cpuSeconds(pid) - before) * 1e6) / visitors.length;
  const { errors, statuses } = poster.close();
  if (errors > 0) throw new Error(`${errors} requests failed: ${JSON.stringify(statuses)}`);
  return cpuUs;
}

const everyone = Array.from({ length: PROFILES }, (_, visitor) => visitor);
const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];
// All servers are filled first; then each round measures them one after another, so that
// the machine's drift falls on all of them alike (as in `bench/collector-load.mjs`).
const started = [];
try {
  for (const [name, start, pathFor] of servers) {
    const { server, pid, stop } = await startOnTmpfs(start);
    const target = { url: server.url, pathFor, pid };
    started.push({ name, stop, target, first: [], next: [] });
    await sendEach(target, Array.from({ length: ROWS }, () => everyone).flat());
  }
  for (let round = 0; round < ROUNDS; round++) {
    await new Promise((resolve) => setTimeout(resolve, IDLE_MS));
    for (const entry of started) {
      entry.first.push(await sendEach(entry.target, everyone));
      entry.next.push(await sendEach(entry.target, everyone));
    }
  }
} finally {
  for (const { stop } of started) await stop();
}

console.log(`${PROFILES} visitors, each object holding ${ROWS} + up to ${2 * ROUNDS} batch rows; medians of ${ROUNDS} rounds, each server idle 15 s or more before its turn\n`);
console.log("| server | first batch after eviction, workerd CPU µs | next batch | reload cost per object |");
console.log("|---|---:|---:|---:|");
for (const { name, first, next } of started) {
  console.error(`${name}: first batches ${first.map(Math.round).join(", ")} µs; next ${next.map(Math.round).join(", ")} µs`);
  console.log(`| ${name} | ${median(first).toFixed(0)} | ${median(next).toFixed(0)} | ${(median(first) - median(next)).toFixed(0)} |`);
}
