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
  const poster = new Poster(url, pathFor, connections);
  const elapsed = await onConnections(connections, seconds, () => poster.send(nextRequest(beacon, profiles)));
  return { rps: poster.latencies.length / elapsed, ...poster.close() };
}

/** Posts beacons over keep-alive connections and keeps score: the latencies of 200s, and the
 * other statuses counted. */
export class Poster {
  constructor(url, pathFor, connections) {
    Object.assign(this, { url, pathFor, latencies: [], statuses: {}, errors: 0 });
    this.agent = new http.Agent({ keepAlive: true, maxSockets: connections });
  }

  send({ body, visitor }) {
    const failed = (status) => {
      this.errors++;
      this.statuses[status] = (this.statuses[status] ?? 0) + 1;
    };
    return new Promise((resolve) => {
      const started = performance.now();
      const req = http.request(
        `${this.url}${this.pathFor(visitor)}`,
        { method: "POST", agent: this.agent, headers: { "content-type": "text/plain", "content-length": body.length } },
        (res) => {
          res.resume();
          res.on("end", () => {
            if (res.statusCode === 200) this.latencies.push(performance.now() - started);
            else failed(res.statusCode);
            resolve();
          });
        },
      );
      req.on("error", () => {
        failed("network");
        resolve();
      });
      req.end(body);
    });
  }

  /** Closes the connections; the score. */
  close() {
    this.agent.destroy();
    return { ...percentiles(this.latencies), errors: this.errors, statuses: this.statuses, ok: this.latencies.length };
  }
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
