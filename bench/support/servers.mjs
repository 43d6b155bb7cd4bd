// The servers the collector benchmarks run side by side, each on its own local workerd with
// state on tmpfs: the collector, the floor (`bench/floor`), and with `--compare DIR` the
// collector built in DIR (a copy of an earlier `collector/build`), to weigh a change against
// it under the same conditions.
import { mkdtempSync, rmSync } from "node:fs";
import path from "node:path";
import { startCollector } from "../../collector/js/local.mjs";
import { floorPath, startFloor } from "../floor/start.mjs";
import { BENCH_CONFIG, beaconPath } from "./beacons.mjs";
import { workerdChildren } from "./cpu.mjs";

/** `[name, start(persist), pathFor]` for each server the command line asks for. */
export function benchServers() {
  const servers = [
    ["Portrait collector", (persist) => startCollector({ persist, config: BENCH_CONFIG }), beaconPath],
    ["floor: Worker + counting DO", (persist) => startFloor({ persist }), floorPath],
  ];
  const at = process.argv.indexOf("--compare");
  if (at > 0) {
    const dir = process.argv[at + 1];
    const build = path.resolve(dir);
    servers.push([`Portrait collector built in ${dir}`, (persist) => startCollector({ persist, config: BENCH_CONFIG, build }), beaconPath]);
  }
  return servers;
}

/** Starts one server on fresh state; `{ server, pid, stop }`, `pid` its workerd's (for `cpu.mjs`). */
export async function startOnTmpfs(start) {
  const persist = mkdtempSync("/dev/shm/portrait-bench-");
  const before = new Set(workerdChildren());
  const server = await start(persist);
  const pid = workerdChildren().find((p) => !before.has(p));
  const stop = async () => {
    await server.stop();
    rmSync(persist, { recursive: true, force: true });
  };
  return { server, pid, stop };
}
