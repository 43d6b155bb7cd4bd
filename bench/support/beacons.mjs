// What the collector benchmarks share: their command-line options, a configuration whose
// source has its rate limit out of the way, and SDK beacons made by the real encoder once,
// then stamped per request with a visitor and fresh message ids.
import { execFileSync } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

/** `--name N` from the command line, as a number. */
export function option(name, fallback) {
  const at = process.argv.indexOf(`--${name}`);
  return Number(at > 0 ? process.argv[at + 1] : fallback);
}

export const WRITE_KEY = "pk_bench_load";
/** Where the collector takes beacons (the visitor is in the beacon, not the path). */
export const beaconPath = () => `/v1/b?k=${WRITE_KEY}`;
export const EVENTS_PER_BATCH = 20;

/** The development configuration, with one source whose rate limit is out of the way. */
export const BENCH_CONFIG = `
environment = "development"
[[workspaces]]
id = "bench"
admin_key_secrets = ["PORTRAIT_ADMIN_KEY_DEMO"]
[[workspaces.sources]]
name = "load"
write_key = "${WRITE_KEY}"
allowed_origins = ["*"]
rate_limit = { events_per_second = 10000000, burst = 10000000 }
`;

// Visitors are numbered; `XXXX` in the template's ids (and email) is overwritten with the
// number, so visitors 0–9999 fit.
const VISITOR = "XXXX";
const messageId = (i) => `b0b0b0b0-0000-4000-8000-0000000000${String(i).padStart(2, "0")}`;

/** The anonymous id of visitor `n`. */
export const anonymousId = (n) => `00000000-0000-4000-8000-00000000${String(n).padStart(4, "0")}`;

/** A beacon of `EVENTS_PER_BATCH` tracks; with `identify`, the first event is an identify with
 * a business email of one company instead. */
export function template({ identify = false } = {}) {
  const now = new Date().toISOString();
  const batch = Array.from({ length: EVENTS_PER_BATCH }, (_, i) => ({
    ...(identify && i === 0
      ? { type: "identify", traits: { email: `person-${VISITOR}@hot-account.example`, title: "VP Engineering" } }
      : { type: "track", event: "Button Clicked", properties: { plan: "pro", step: i % 5 } }),
    anonymousId: `00000000-0000-4000-8000-00000000${VISITOR}`,
    messageId: messageId(i),
    timestamp: now,
    context: {
      userAgent: "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0.0.0 Safari/537.36",
      page: { url: "https://www.example.com/pricing", path: "/pricing", title: "Pricing" },
      library: { name: "portrait.js", version: "0.1.0" },
    },
  }));
  const body = execFileSync(path.join(root, "target/debug/portrait"), ["encode"], { input: JSON.stringify({ batch, sentAt: now }) });
  const visitorAt = [];
  for (let at = body.indexOf(VISITOR); at >= 0; at = body.indexOf(VISITOR, at + 1)) visitorAt.push(at);
  const idAt = batch.map((_, i) => body.indexOf(Buffer.from(messageId(i).replaceAll("-", ""), "hex")));
  if (visitorAt.length === 0 || idAt.some((o) => o < 0)) throw new Error("template fields not found in the beacon");
  return { body, visitorAt, idAt };
}

let sequence = 0;

/** A copy of `template` from visitor `n`, with message ids no other copy has. */
export function beaconFor({ body, visitorAt, idAt }, n) {
  const copy = Buffer.from(body);
  for (const at of visitorAt) copy.write(String(n).padStart(4, "0"), at, "latin1");
  for (const at of idAt) {
    copy.writeUInt32BE((Math.random() * 2 ** 32) >>> 0, at);
    copy.writeUIntBE(sequence++, at + 10, 6);
  }
  return copy;
}
