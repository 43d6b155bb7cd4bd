// Where the collector's time goes under the ingest benchmark's load: a CPU profile of its
// isolate (the Worker and every Durable Object run on it locally), taken over the DevTools
// protocol while `bench/support/load.mjs` sends beacons. This is how each step in
// BENCHMARKS.md's "Ingest throughput against the floor" trail was found.
//
//   node bench/profile-collector.mjs [--seconds 10] [--warm-up 10] [--pause 0] [--profiles 1000] [--top 30] [--out collector.cpuprofile] [--floor]
//
// Prints the functions with the most samples (self, then including callees) and writes the
// profile, which Chrome DevTools (Performance → Load profile) opens. Build the Worker first
// (`cargo xtask build-worker`); its wasm keeps function names. `--floor` profiles the floor
// (`bench/floor`) under the same load instead, to see which costs the two share. A longer
// `--warm-up` (seconds of load before the profile) profiles profiles that hold more batches;
// `--pause` (seconds idle after it) lets the runtime evict idle objects first, as the other
// server's turn does in `bench/collector-load.mjs`.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import WebSocket from "ws";
import { startCollector } from "../collector/js/local.mjs";
import { floorPath, startFloor } from "./floor/start.mjs";
import { BENCH_CONFIG, beaconPath, option, template } from "./support/beacons.mjs";
import { load } from "./support/load.mjs";

process.env.CLOUDFLARE_CF_FETCH_ENABLED ??= "false";
const SECONDS = option("seconds", 10);
const TOP = option("top", 30);
const LOAD = { seconds: SECONDS, connections: 16, profiles: option("profiles", 1000) };
const WARM_UP = { ...LOAD, seconds: option("warm-up", SECONDS) };
const PAUSE_MS = option("pause", 0) * 1000;
const out = process.argv.includes("--out") ? process.argv[process.argv.indexOf("--out") + 1] : "collector.cpuprofile";
const INSPECTOR_PORT = 9231;
const FLOOR = process.argv.includes("--floor");
const ISOLATE = FLOOR ? "floor" : "collector";

/** One DevTools protocol session with the collector's isolate. */
async function inspect() {
  const targets = await (await fetch(`http://127.0.0.1:${INSPECTOR_PORT}/json/list`)).json();
  const target = targets.find((t) => t.webSocketDebuggerUrl?.endsWith(`/core:user:${ISOLATE}`));
  if (!target) throw new Error(`no ${ISOLATE} isolate among ${targets.map((t) => t.webSocketDebuggerUrl)}`);
  const socket = new WebSocket(target.webSocketDebuggerUrl);
  await new Promise((resolve, reject) => socket.once("open", resolve).once("error", reject));
  const pending = new Map();
  socket.on("message", (data) => {
    const message = JSON.parse(data);
    pending.get(message.id)?.(message.result);
    pending.delete(message.id);
  });
  let next = 0;
  const send = (method, params = {}) =>
    new Promise((resolve) => {
      pending.set(++next, resolve);
      socket.send(JSON.stringify({ id: next, method, params }));
    });
  return { send, close: () => socket.close() };
}

/** Samples per function name: self, and including callees (each name once per stack). */
function summarize(profile) {
  const nodes = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map();
  for (const n of profile.nodes) for (const child of n.children ?? []) parent.set(child, n.id);
  // Rust's mangled hashes (`[0123456789abcdef]`) only make names longer.
  const name = (n) => (n.callFrame.functionName || "(anonymous)").replace(/\[[0-9a-f]{16}\]/g, "");
  const self = new Map();
  const total = new Map();
  for (const id of profile.samples) {
    const leaf = name(nodes.get(id));
    self.set(leaf, (self.get(leaf) ?? 0) + 1);
    const seen = new Set();
    for (let at = id; at !== undefined; at = parent.get(at)) seen.add(name(nodes.get(at)));
    for (const n of seen) total.set(n, (total.get(n) ?? 0) + 1);
  }
  const top = (counts) =>
    [...counts].sort((a, b) => b[1] - a[1]).slice(0, TOP)
      .map(([n, c]) => `${((100 * c) / profile.samples.length).toFixed(1).padStart(5)} %  ${n.slice(0, 150)}`);
  return { self: top(self), total: top(total) };
}

const persist = mkdtempSync("/dev/shm/portrait-profile-");
const collector = FLOOR
  ? await startFloor({ persist, inspectorPort: INSPECTOR_PORT })
  : await startCollector({ persist, config: BENCH_CONFIG, inspectorPort: INSPECTOR_PORT });
const pathFor = FLOOR ? floorPath : beaconPath;
const beacon = template();
try {
  await load(collector.url, pathFor, beacon, WARM_UP); // compile, create objects
  await new Promise((resolve) => setTimeout(resolve, PAUSE_MS));
  const inspector = await inspect();
  await inspector.send("Profiler.enable");
  await inspector.send("Profiler.setSamplingInterval", { interval: 200 });
  await inspector.send("Profiler.start");
  const result = await load(collector.url, pathFor, beacon, LOAD);
  const { profile } = await inspector.send("Profiler.stop");
  inspector.close();
  writeFileSync(out, JSON.stringify(profile));
  const { self, total } = summarize(profile);
  // The isolate's busy time per request: steadier than throughput for comparing two builds,
  // since the load generator shares the machine.
  const idleNodes = new Set(profile.nodes.filter((n) => n.callFrame.functionName === "(idle)").map((n) => n.id));
  const idle = profile.samples.filter((id) => idleNodes.has(id)).length;
  const busyUs = ((1 - idle / profile.samples.length) * (profile.endTime - profile.startTime)) / (result.rps * SECONDS);
  console.log(`${result.rps.toFixed(0)} requests/s while profiled (${SECONDS} s), the isolate busy ${busyUs.toFixed(0)} µs per request; profile written to ${out}\n`);
  console.log(`self (where the samples landed):\n${self.join("\n")}\n`);
  console.log(`including callees:\n${total.join("\n")}`);
} finally {
  await collector.stop();
  rmSync(persist, { recursive: true, force: true });
}
