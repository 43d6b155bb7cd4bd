// Runs the collector locally on the real Workers runtime (workerd, through Miniflare), with
// the development configuration and state persisted to disk.
//
//   node collector/js/local.mjs [--port 8787] [--persist .state/collector]
//
// Also imported by the tests: `startCollector({...})` → `{ url, stop }`.
import { Miniflare } from "miniflare";
import { readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const collectorDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");

/** The development admin keys (public, like the rest of the development configuration). */
export const DEV_ADMIN_KEYS = {
  PORTRAIT_ADMIN_KEY_DEMO: "sk_dev_demo_admin",
  PORTRAIT_ADMIN_KEY_OTHER: "sk_dev_other_admin",
};

/** What the edge would say about the visitor; Miniflare has no real `cf` locally. */
export const DEV_CF = {
  country: "DE",
  region: "Berlin",
  city: "Berlin",
  postalCode: "10115",
  timezone: "Europe/Berlin",
  continent: "EU",
  asn: 3320,
  asOrganization: "Deutsche Telekom AG",
  colo: "FRA",
};

export async function startCollector({
  port = 0,
  persist,
  config = readFileSync(path.join(collectorDir, "portrait.dev.toml"), "utf8"),
  secrets = DEV_ADMIN_KEYS,
  cf = DEV_CF,
  vars = {},
  inspectorPort, // the DevTools protocol of the isolates, for `bench/profile-collector.mjs`
  build = path.join(collectorDir, "build"), // another build, for `bench/collector-load.mjs --compare`
} = {}) {
  const mf = new Miniflare({
    host: "127.0.0.1",
    port,
    defaultPersistRoot: persist,
    cf,
    inspectorPort,
    workers: [
      {
        name: "collector",
        modules: true,
        modulesRoot: build,
        scriptPath: path.join(build, "entry.mjs"),
        modulesRules: [
          { type: "ESModule", include: ["**/*.js", "**/*.mjs"] },
          { type: "CompiledWasm", include: ["**/*.wasm"] },
        ],
        compatibilityDate: "2026-04-01",
        bindings: { PORTRAIT_CONFIG: config, ...secrets, ...vars },
        durableObjects: {
          PROFILES: { className: "ProfileObject", useSQLite: true },
          IDENTITIES: { className: "IdentityIndex", useSQLite: true },
          ACCOUNTS: { className: "AccountObject", useSQLite: true },
          AUDIENCES: { className: "AudienceObject", useSQLite: true },
          WEBHOOKS: { className: "WebhookObject", useSQLite: true },
          STATS: { className: "SourceStats", useSQLite: true },
        },
      },
    ],
  });
  const url = await mf.ready;
  return { url: url.href.replace(/\/$/, ""), stop: () => mf.dispose() };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const argument = (name, fallback) => {
    const at = process.argv.indexOf(name);
    return at > 0 ? process.argv[at + 1] : fallback;
  };
  process.env.CLOUDFLARE_CF_FETCH_ENABLED ??= "false";
  const collector = await startCollector({
    port: Number(argument("--port", "8787")),
    persist: path.resolve(argument("--persist", ".state/collector")),
  });
  console.log(`collector listening on ${collector.url}`);
  const stop = async () => {
    await collector.stop();
    process.exit(0);
  };
  process.on("SIGINT", stop);
  process.on("SIGTERM", stop);
}
