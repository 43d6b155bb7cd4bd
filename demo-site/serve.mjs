// `cargo xtask demo`: the collector on local workerd (state in .state/collector) and this
// folder's pages on http://127.0.0.1:8080, with the SDK from sdk/dist (`cargo xtask build-sdk`).
// Each page embeds the SDK with the snippet, exactly as a customer would: `<!-- portrait -->`
// in a page is replaced by sdk/dist/snippet.min.js configured for the local collector.
import { createServer } from "node:http";
import { readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { startCollector } from "../collector/js/local.mjs";

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, "..");
const COLLECTOR_PORT = 8787;
const SITE_PORT = 8080;
const TYPES = { ".html": "text/html; charset=utf-8", ".js": "text/javascript", ".wasm": "application/wasm", ".css": "text/css" };

process.env.CLOUDFLARE_CF_FETCH_ENABLED ??= "false";
const collector = await startCollector({ port: COLLECTOR_PORT, persist: path.join(root, ".state/collector") });
const snippet = readFileSync(path.join(root, "sdk/dist/snippet.min.js"), "utf8")
  .replace("https://cdn.example.com/portrait.js", "/sdk/portrait.js")
  .replace("WRITE_KEY", "pk_dev_demo")
  .replace(/\{\}\)\s*;?\s*$/, `${JSON.stringify({ endpoint: collector.url })});`);

const site = createServer((req, res) => {
  const { pathname } = new URL(req.url, "http://localhost");
  const [dir, relative] = pathname.startsWith("/sdk/")
    ? [path.join(root, "sdk/dist"), pathname.slice(5)]
    : [here, pathname === "/" ? "index.html" : pathname.slice(1)];
  const file = path.join(dir, path.normalize(relative));
  if (!file.startsWith(dir) || file.endsWith(".mjs")) {
    res.writeHead(404);
    return res.end("not found");
  }
  try {
    let body = readFileSync(file);
    if (file.endsWith(".html")) body = body.toString("utf8").replace("<!-- portrait -->", `<script>${snippet}</script>`);
    res.writeHead(200, { "content-type": TYPES[path.extname(file)] ?? "application/octet-stream" });
    res.end(body);
  } catch {
    res.writeHead(404);
    res.end("not found");
  }
});
site.listen(SITE_PORT, "127.0.0.1");
console.log(`collector: ${collector.url} (write key pk_dev_demo, admin key sk_dev_demo_admin)`);
console.log(`demo site: http://127.0.0.1:${SITE_PORT}/  — Ctrl-C stops both`);

const stop = async () => {
  site.close();
  await collector.stop();
  process.exit(0);
};
process.on("SIGINT", stop);
process.on("SIGTERM", stop);
