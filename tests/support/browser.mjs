// Test support for the SDK: a site served on loopback that embeds the built SDK, a collector
// that accepts that site's origin, and Debian's Chromium driven by playwright-core.
import { createServer } from "node:http";
import { readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { after, before } from "node:test";
import { chromium } from "playwright-core";
import { CHROME_UA, WRITE_KEY, launch } from "./collector.mjs";

export { eventually } from "./collector.mjs";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
export const DIST = path.join(root, "sdk/dist");
const devConfig = readFileSync(path.join(root, "collector/portrait.dev.toml"), "utf8");

const TYPES = { ".js": "text/javascript", ".mjs": "text/javascript", ".wasm": "application/wasm", ".html": "text/html" };

/**
 * A site on 127.0.0.1 (own port): `/sdk/…` serves `sdk/dist` (more with `site.mount`),
 * other paths serve the pages tests add with `site.page(path, html, headers)`. Every request is recorded in `site.log`.
 * With `cacheSeconds`, the served files may be cached that long (`Cache-Control`).
 */
export async function startSite({ cacheSeconds } = {}) {
  const pages = new Map();
  const mounts = new Map([["/sdk/", DIST]]);
  const log = [];
  const server = createServer((req, res) => {
    const url = new URL(req.url, "http://x");
    log.push(url.pathname);
    const mount = [...mounts.keys()].find((prefix) => url.pathname.startsWith(prefix));
    if (mount) {
      const file = path.join(mounts.get(mount), path.normalize(url.pathname.slice(mount.length)));
      try {
        const body = readFileSync(file);
        const cache = cacheSeconds ? { "cache-control": `public, max-age=${cacheSeconds}` } : {};
        res.writeHead(200, { "content-type": TYPES[path.extname(file)] ?? "application/octet-stream", ...cache });
        return res.end(body);
      } catch {
        res.writeHead(404);
        return res.end();
      }
    }
    const page = pages.get(url.pathname);
    if (!page) {
      res.writeHead(404);
      return res.end("not found");
    }
    res.writeHead(200, { "content-type": "text/html; charset=utf-8", ...page.headers });
    res.end(page.html);
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  const origin = `http://127.0.0.1:${server.address().port}`;
  return {
    origin,
    log,
    /** Serves the files of `dir` under `prefix` (e.g. `/bundles/`). */
    mount(prefix, dir) {
      mounts.set(prefix, dir);
    },
    page(pathname, html, headers = {}) {
      pages.set(pathname, { html, headers });
      return origin + pathname;
    },
    stop: () => new Promise((resolve) => server.close(resolve)),
  };
}

/** A collector whose demo write key accepts `origin` (or each of an array); `sdkSettings`: TOML for the demo
 * workspace's `[workspaces.sdk]` table (what `/v1/config/{writeKey}` serves); `persist`: its
 * state directory (fresh by default). */
export function launchCollectorFor(origin, sdkSettings = "", persist = undefined) {
  let config = devConfig.replace('"http://127.0.0.1:8080"', [origin].flat().map((o) => JSON.stringify(o)).join(", "));
  if (sdkSettings) {
    // In place of the demo site's tag rules; the demo workspace is the configuration's last.
    config = config.replace(/\[\[workspaces\.sdk\.tag_rules\]\]\n(?:[^\n[]+\n)*/g, "");
    config += `\n[workspaces.sdk]\n${sdkSettings}\n`;
  }
  return launch(persist, {}, config);
}

/** Headless Chromium with the flags this machine needs (see ../shared/notes/TOOLCHAIN.md). */
export function launchBrowser() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      // Host names for the tests that need one (cookie domains): every *.portrait.test is here.
      "--host-resolver-rules=MAP *.portrait.test 127.0.0.1",
    ],
  });
}

/** The SDK suites' rig: a site, a collector that allows its origin, and Chromium, started
 * before the file's tests and stopped after them (read its fields inside tests). */
export function useBrowserRig() {
  const rig = {};
  before(async () => {
    rig.site = await startSite();
    rig.collector = await launchCollectorFor(rig.site.origin);
    rig.browser = await launchBrowser();
  });
  after(async () => {
    await rig.browser?.close();
    await rig.collector?.stop();
    await rig.site?.stop();
  });
  return rig;
}

const sdkReady = () => window.portrait && window.portrait.__portrait && window.portrait.user().anonymousId;

/** Opens `html` at `pathname` of the rig's site in `context` (a fresh browser profile if
 * none); resolves once `until` holds in the page (default: the SDK is ready). */
export async function openPage(rig, pathname, html, { context, headers, until = sdkReady } = {}) {
  context ??= await newContext(rig.browser);
  const page = await context.newPage();
  const errors = [];
  page.on("pageerror", (error) => errors.push(error));
  await page.goto(rig.site.page(pathname, html, headers));
  await page.waitForFunction(until);
  return { page, context, errors };
}

/** A fresh profile (storage, cookies) with a browser's ordinary user agent: the headless one is a bot. */
export function newContext(browser, options = {}) {
  return browser.newContext({ userAgent: CHROME_UA, ...options });
}

/** A page embedding the SDK with the snippet, loading it with `options` (and the test
 * source's write key unless `key` says otherwise); `body` and `before` (calls made before the
 * SDK arrives) are inserted as they are. */
export function snippetPage({ collector, key = WRITE_KEY, options = {}, body = "", before = "", title = "Test page", head = "" }) {
  let snippet = readFileSync(path.join(DIST, "snippet.min.js"), "utf8");
  // Each edit must apply: a snippet of another shape would load without the test's options.
  const edit = (pattern, replacement) => {
    const edited = snippet.replace(pattern, replacement);
    if (edited === snippet) throw new Error(`snippet.min.js has no ${pattern}: update snippetPage`);
    snippet = edited;
  };
  edit("https://cdn.example.com/portrait.js", "/sdk/portrait.js");
  edit("WRITE_KEY", key);
  edit(/\{\}\)\s*;?\s*$/, `${JSON.stringify({ endpoint: collector, ...options })});`);
  return `<!doctype html><html><head><meta charset="utf-8"><title>${title}</title>${head}
<script>${snippet}
${before}</script></head><body>${body}</body></html>`;
}

