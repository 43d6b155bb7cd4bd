// The load both collector benchmarks drive: `connections` keep-alive connections POST SDK
// beacons (made from `beacon`, a `template()`) as fast as they are answered for `seconds`,
// each from one of `profiles` visitors chosen at random. Answers: requests/s of 200s, p50 and
// p99 latency of those, and the other statuses counted. `bench/reliability.mjs` shares its
// connection loop and percentiles.
import http from "node:http";
import { beaconFor } from "./beacons.mjs";

function nextRequest(beacon, profiles) {
  const visitor = Math.floor(Math.random() * profiles);
  return { body: beaconFor(beacon, visitor), visitor };
}

export async function load(url, pathFor, beacon, { seconds, connections, profiles }) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: connections });
  const latencies = [];
  const statuses = {};
  let errors = 0;
  const send = ({ body, visitor }) =>
    new Promise((resolve) => {
      const started = performance.now();
      const req = http.request(
        `${url}${pathFor(visitor)}`,
        { method: "POST", agent, headers: { "content-type": "text/plain", "content-length": body.length } },
        (res) => {
          res.resume();
          res.on("end", () => {
            if (res.statusCode === 200) latencies.push(performance.now() - started);
            else {
              errors++;
              statuses[res.statusCode] = (statuses[res.statusCode] ?? 0) + 1;
            }
            resolve();
          });
        },
      );
      req.on("error", () => {
        errors++;
        statuses.network = (statuses.network ?? 0) + 1;
        resolve();
      });
      req.end(body);
    });
  const elapsed = await onConnections(connections, seconds, () => send(nextRequest(beacon, profiles)));
  agent.destroy();
  return { rps: latencies.length / elapsed, ...percentiles(latencies), errors, statuses, ok: latencies.length };
}

/** Runs `step` over and over on each of `connections` at once for `seconds`; the seconds taken. */
export async function onConnections(connections, seconds, step) {
  const deadline = performance.now() + seconds * 1000;
  const connection = async () => {
    while (performance.now() < deadline) await step();
  };
  const started = performance.now();
  await Promise.all(Array.from({ length: connections }, connection));
  return (performance.now() - started) / 1000;
}

/** The median and 99th percentile of `latencies` (sorted in place). */
export function percentiles(latencies) {
  latencies.sort((a, b) => a - b);
  const at = (p) => latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * p))] ?? NaN;
  return { p50: at(0.5), p99: at(0.99) };
}
