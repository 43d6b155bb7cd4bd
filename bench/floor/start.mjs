// Starts the floor (`worker.mjs`) on local workerd through Miniflare, the way the collector
// runs locally: SQLite-backed objects, state under `persist`.
import path from "node:path";
import { fileURLToPath } from "node:url";
import { Miniflare } from "miniflare";

const here = path.dirname(fileURLToPath(import.meta.url));

/** Where the floor takes a request from `visitor`: the object is chosen by `?p=`. */
export const floorPath = (visitor) => `/?p=${visitor}`;

/** Returns `{ url, stop }`; `inspectorPort` opens the DevTools protocol (isolate `core:user:floor`). */
export async function startFloor({ persist, inspectorPort } = {}) {
  const mf = new Miniflare({
    name: "floor",
    host: "127.0.0.1",
    port: 0,
    inspectorPort,
    defaultPersistRoot: persist,
    modules: true,
    scriptPath: path.join(here, "worker.mjs"),
    compatibilityDate: "2026-04-01",
    durableObjects: { COUNTERS: { className: "Counter", useSQLite: true } },
  });
  const url = (await mf.ready).href.replace(/\/$/, "");
  return { url, stop: () => mf.dispose() };
}
