// CPU time of a local workerd: what one request costs the runtime (HTTP, isolate, SQLite),
// without the load generator's share of the machine. Steadier than throughput when two
// builds are compared on a machine whose speed drifts (Linux `/proc` only).
import { readFileSync, readdirSync } from "node:fs";

const TICKS_PER_SECOND = 100; // USER_HZ: Linux reports utime and stime in these

function stat(pid) {
  const text = readFileSync(`/proc/${pid}/stat`, "utf8");
  const name = text.slice(text.indexOf("(") + 1, text.lastIndexOf(")"));
  // Fields after the name: state, ppid, …; utime and stime are the 12th and 13th.
  const fields = text.slice(text.lastIndexOf(")") + 2).split(" ");
  return { name, ppid: Number(fields[1]), ticks: Number(fields[11]) + Number(fields[12]) };
}

/** The PIDs of this process's `workerd` children (Miniflare starts one per instance). */
export function workerdChildren() {
  const pids = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const { name, ppid } = stat(entry);
      if (name === "workerd" && ppid === process.pid) pids.push(Number(entry));
    } catch {
      // exited while listed
    }
  }
  return pids;
}

/** CPU seconds (user + system) `pid` has used so far. */
export function cpuSeconds(pid) {
  return stat(pid).ticks / TICKS_PER_SECOND;
}
