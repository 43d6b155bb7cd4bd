// `cargo xtask demo [--seed]`: the collector on local workerd (state in .state/collector),
// this folder's pages on http://127.0.0.1:8080 with the SDK from sdk/dist (`cargo xtask
// build-sdk`), the profile viewer on /viewer/, and a webhook receiver on /hooks/crm.
//
// Each page embeds the SDK with the snippet, exactly as a customer would: `<!-- portrait -->`
// in a page is replaced by sdk/dist/snippet.min.js configured for the local collector; the
// shared header and footer come from partials/.
// `/api/…` is passed to the collector (the viewer calls the admin API from the same origin).
// `--seed` replays a few synthetic visitor journeys (demo-site/seed.mjs) once the collector is up.
//
// Also imported by the end-to-end tests: `startDemo({ sitePort, collectorPort, persist })`.
import { createHmac, timingSafeEqual } from "node:crypto";
import { readFileSync, statSync } from "node:fs";
import { createServer } from "node:http";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { DEV_ADMIN_KEYS, startCollector } from "../collector/js/local.mjs";
import { seed } from "./seed.mjs";

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, "..");
const TYPES = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript",
  ".wasm": "application/wasm",
  ".css": "text/css",
  ".svg": "image/svg+xml",
  ".bin": "application/octet-stream",
};
/** The header and the footer (with the "Why am I seeing this?" panel) every site page shares:
 * `<!-- site-header -->` and `<!-- site-footer -->` in a page are replaced by them. */
const PARTIALS = {
  header: readFileSync(path.join(here, "partials/header.html"), "utf8"),
  footer: readFileSync(path.join(here, "partials/footer.html"), "utf8"),
};
/** The signing key of the demo's webhook (public, like the rest of the development setup). */
export const WEBHOOK_SECRET = "whsec_dev_demo";

/** The development configuration for a site at `origin`, plus a webhook to its receiver. */
function demoConfig(origin) {
  const dev = readFileSync(path.join(root, "collector/portrait.dev.toml"), "utf8").replaceAll("http://127.0.0.1:8080", origin);
  return `${dev}
[[workspaces.webhooks]]
name = "crm"
url = "${origin}/hooks/crm"
secret = "PORTRAIT_WEBHOOK_SECRET_CRM"
on = ["audience_entered:hot_leads", "audience_entered:warming_accounts", "lifecycle_changed", "lead_score_crossed:50"]
`;
}

export async function startDemo({ sitePort = 8080, collectorPort = 8787, persist = path.join(root, ".state/collector"), log = console.log } = {}) {
  process.env.CLOUDFLARE_CF_FETCH_ENABLED ??= "false";
  /** What the webhook receiver got, newest last: `{key, type, verified, body}`. */
  const deliveries = [];
  let collector;
  let snippet;
  const site = createServer(async (req, res) => {
    const { pathname, search } = new URL(req.url, "http://localhost");
    try {
      if (pathname.startsWith("/api/")) return await proxy(req, res, collector.url + pathname.slice(4) + search);
      if (pathname === "/hooks/crm") return await receive(req, res, deliveries, log);
      serveFile(res, pathname, snippet);
    } catch (error) {
      res.writeHead(502, { "content-type": "text/plain" });
      res.end(`demo server: ${error.message}`);
    }
  });
  await new Promise((resolve) => site.listen(sitePort, "127.0.0.1", resolve));
  const url = `http://127.0.0.1:${site.address().port}`;
  const launchCollector = (port) =>
    startCollector({
      port,
      persist,
      config: demoConfig(url),
      secrets: { ...DEV_ADMIN_KEYS, PORTRAIT_WEBHOOK_SECRET_CRM: WEBHOOK_SECRET },
    });
  collector = await launchCollector(collectorPort);
  snippet = readFileSync(path.join(root, "sdk/dist/snippet.min.js"), "utf8")
    .replace("https://cdn.example.com/portrait.js", "/sdk/portrait.js")
    .replace("WRITE_KEY", "pk_dev_demo")
    .replace(/\{\}\)\s*;?\s*$/, `${JSON.stringify({ endpoint: collector.url })});`);
  return {
    url,
    get collector() {
      return collector;
    },
    deliveries,
    /** Stops the collector, runs `during`, and starts it again on the same port and state. */
    async withCollectorDown(during) {
      const port = Number(new URL(collector.url).port);
      await collector.stop();
      try {
        await during();
      } finally {
        collector = await launchCollector(port);
      }
    },
    stop: async () => {
      site.close();
      await collector.stop();
    },
  };
}

function serveFile(res, pathname, snippet) {
  const [dir, relative] = pathname.startsWith("/sdk/")
    ? [path.join(root, "sdk/dist"), pathname.slice(5)]
    : [here, decodeURIComponent(pathname).slice(1)];
  let file = path.join(dir, path.normalize(relative));
  if (!file.startsWith(dir) || file.endsWith(".mjs")) {
    res.writeHead(404);
    return res.end("not found");
  }
  if (statSync(file, { throwIfNoEntry: false })?.isDirectory()) file = path.join(file, "index.html");
  let body;
  try {
    body = readFileSync(file);
  } catch {
    res.writeHead(404, { "content-type": "text/plain" });
    return res.end("not found");
  }
  if (file.endsWith(".html")) {
    body = body
      .toString("utf8")
      .replace("<!-- portrait -->", `<script>${snippet}</script>`)
      .replace("<!-- site-header -->", PARTIALS.header)
      .replace("<!-- site-footer -->", PARTIALS.footer);
  }
  res.writeHead(200, { "content-type": TYPES[path.extname(file)] ?? "application/octet-stream", "cache-control": "no-store" });
  res.end(body);
}

async function readBody(req) {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  return Buffer.concat(chunks);
}

/** `/api/…` → the collector, headers and status as they are. */
async function proxy(req, res, target) {
  const headers = { ...req.headers };
  delete headers.host;
  const body = ["GET", "HEAD"].includes(req.method) ? undefined : await readBody(req);
  const answer = await fetch(target, { method: req.method, headers, body });
  res.writeHead(answer.status, { "content-type": answer.headers.get("content-type") ?? "application/json" });
  res.end(Buffer.from(await answer.arrayBuffer()));
}

/** The demo's webhook receiver: checks the signature, remembers each delivery once. */
async function receive(req, res, deliveries, log) {
  const body = (await readBody(req)).toString("utf8");
  const key = req.headers["portrait-idempotency-key"];
  const { t, v1 = "" } = Object.fromEntries((req.headers["portrait-signature"] ?? "").split(",").map((p) => p.split("=")));
  const expected = createHmac("sha256", WEBHOOK_SECRET).update(`${t}.${body}`).digest("hex");
  const verified = v1.length === expected.length && timingSafeEqual(Buffer.from(v1), Buffer.from(expected));
  if (!deliveries.some((d) => d.key === key)) {
    const payload = JSON.parse(body);
    deliveries.push({ key, type: payload.type, verified, body: payload });
    const who = payload.profile?.profileId ?? payload.account?.id;
    log(`webhook crm: ${payload.type} ${JSON.stringify(payload.change)} for ${who}${verified ? "" : " (BAD SIGNATURE)"}`);
  }
  res.writeHead(verified ? 200 : 401).end();
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const demo = await startDemo();
  console.log(`collector:   ${demo.collector.url}  (write key pk_dev_demo, admin key sk_dev_demo_admin)`);
  console.log(`demo site:   ${demo.url}/`);
  console.log(`viewer:      ${demo.url}/viewer/`);
  console.log(`webhooks to: ${demo.url}/hooks/crm (deliveries are printed here)`);
  if (process.argv.includes("--seed")) {
    const people = await seed(demo.collector.url);
    console.log(`seeded ${people.length} synthetic visitors, e.g. ${demo.url}/viewer/#/profile/email/${encodeURIComponent(people[0])}`);
  }
  console.log("Ctrl-C stops everything");
  const stop = async () => {
    await demo.stop();
    process.exit(0);
  };
  process.on("SIGINT", stop);
  process.on("SIGTERM", stop);
}
