// The cost of an identify that merges two profiles of 200 events each, on local workerd with
// state on tmpfs, next to an identify that merges nothing (same profiles, same request size).
//
//   node bench/identity-merge.mjs [--runs 15]
//
// Each run: a laptop (anonymous) and a phone (identified as user U) send 200 events each in
// beacons of 20; then the laptop's identify(U) makes the laptop's profile merge into the
// phone's. Reports the request latency (median, p90) and what the survivor's SQLite database
// grew by (`storageBytes` of the export API: whole pages, so a rounded figure).
import { mkdtempSync, rmSync } from "node:fs";
import { launch, browserEvent, uuid } from "../tests/support/collector.mjs";

const at = process.argv.indexOf("--runs");
const RUNS = Number(at > 0 ? process.argv[at + 1] : 15);
const state = mkdtempSync("/dev/shm/portrait-merge-");
const collector = await launch(state);

const events = (anon, n, fields = {}) =>
  Array.from({ length: n }, (_, i) => browserEvent("track", anon, { event: "Feature Used", properties: { i }, ...fields }));

async function sendAll(list) {
  for (let i = 0; i < list.length; i += 20) {
    const sent = await collector.beacon(list.slice(i, i + 20));
    if (sent.status !== 200) throw new Error(sent.text);
  }
}

async function storageBytes(idType, id) {
  const { json } = await collector.admin(`${idType}/${encodeURIComponent(id)}/export`);
  return json.storageBytes;
}

async function timed(events) {
  const start = performance.now();
  const sent = await collector.beacon(events);
  if (sent.status !== 200) throw new Error(sent.text);
  return performance.now() - start;
}

const merge = { ms: [], bytes: [] };
const plain = { ms: [], bytes: [] };
for (let run = 0; run < RUNS; run++) {
  const [laptop, phone, user] = [uuid(), uuid(), `user-${uuid()}`];
  await sendAll(events(laptop, 199));
  await sendAll([browserEvent("identify", phone, { userId: user }), ...events(phone, 199, { userId: user })]);
  // Baseline: an identify of the same size that merges nothing (the phone again).
  let before = await storageBytes("user_id", user);
  plain.ms.push(await timed([browserEvent("identify", phone, { userId: user })]));
  plain.bytes.push((await storageBytes("user_id", user)) - before);
  before = await storageBytes("user_id", user);
  merge.ms.push(await timed([browserEvent("identify", laptop, { userId: user })]));
  merge.bytes.push((await storageBytes("user_id", user)) - before);
  const { json } = await collector.profile("user_id", user);
  if (json.eventCount !== 401 || json.identities.length !== 3) throw new Error(`run ${run}: ${JSON.stringify(json.counters)}`);
}
await collector.stop();
rmSync(state, { recursive: true, force: true });

const quantile = (values, q) => [...values].sort((a, b) => a - b)[Math.min(values.length - 1, Math.floor(q * values.length))];
console.log(`| identify (${RUNS} runs) | median ms | p90 ms | survivor's database grew by (median) |`);
console.log("|---|---:|---:|---:|");
for (const [name, r] of [["merges a 200-event profile into a 200-event profile", merge], ["merges nothing (baseline)", plain]]) {
  console.log(`| ${name} | ${quantile(r.ms, 0.5).toFixed(1)} | ${quantile(r.ms, 0.9).toFixed(1)} | ${quantile(r.bytes, 0.5)} B |`);
}
