// The npm package (`sdk/dist/npm`, `@portrait/sdk`) as an app installs it (in its
// node_modules, resolved through the package's `exports`): a tiny app built with esbuild and
// with webpack, loaded in Chromium, sending to the collector on workerd; and a TypeScript app
// type-checked against the package's declarations.
import { before, test } from "node:test";
import assert from "node:assert/strict";
import { execFile, execFileSync } from "node:child_process";
import http from "node:http";
import { mkdirSync, mkdtempSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import * as esbuild from "esbuild";
import webpack from "webpack";
import { DIST, eventually, newContext, useBrowserRig } from "../support/browser.mjs";

const TSC = path.resolve(import.meta.dirname, "../../node_modules/.bin/tsc");
const APP = `
import { load, track, flush, user } from "@portrait/sdk";
load("pk_dev_demo", { endpoint: window.COLLECTOR });
window.app = { track, flush, user };
`;

const rig = useBrowserRig();
let work;

/** Type-checks: the API's shapes, and two mistakes the declarations must catch. */
const TYPED_APP = `
import portrait, { load, track, flush, user, consent, on, interests, type LoadOptions, type Topic } from "@portrait/sdk";
const options: LoadOptions = { endpoint: "https://collect.example.com", consent: "pending", autocapture: { clicks: false } };
load("pk_dev_demo", options);
track("Signed Up", { plan: "pro" });
portrait.identify("user-1", { plan: "pro" });
track("Upgraded", { plan: "team" }, { context: { locale: "en" } }, () => location.assign("/welcome"));
portrait.page("Pricing", {}, {}, () => undefined);
const delivered: Promise<boolean> = flush();
const id: string | null = user().anonymousId;
// analytics.js's shapes: the callback after any argument, null properties, a selector's null.
track("Signed Up", { plan: "pro" }, () => undefined);
track("Signed Up", () => undefined);
portrait.identify("user-1", () => undefined);
portrait.alias("user-1", () => undefined);
portrait.page(() => undefined);
portrait.page("Docs", null, { integrations: { All: true } });
portrait.screen({ section: "settings" });
portrait.group(undefined, { plan: "team" });
const group: string | null = portrait.group().groupId;
portrait.trackLink(document.querySelector("a"), "Signup Clicked");
load("pk_dev_demo", { autocapture: true, endpoint: undefined });
consent.set({ analytics: true, personalization: "denied" });
consent.set(false);
consent.set("pending");
on("interests", (detail) => console.log(detail));
const top: Topic[] = interests({ limit: 5 });
// Properties and traits typed by an interface, as analytics-next accepts them.
interface SignupProperties { plan: string; seats: number }
const signup: SignupProperties = { plan: "pro", seats: 3 };
track("Signed Up", signup);
portrait.identify("user-1", signup);
const ready: Promise<void> = portrait.ready();
portrait.ready(() => undefined).then(() => undefined);
// @ts-expect-error: consent is granted, denied or pending
load("pk_dev_demo", { consent: "deny" });
// @ts-expect-error: a decision is one of those
consent.set("no");
// @ts-expect-error: an event name is a string
track(42);
// @ts-expect-error: a callback takes no arguments
track("Upgraded", {}, {}, (context: { event: string }) => context.event);
export { delivered, id, group, top, ready };
`;

before(() => {
  work = mkdtempSync(path.join(tmpdir(), "portrait-bundlers-"));
  writeFileSync(path.join(work, "app.js"), APP);
  writeFileSync(path.join(work, "app.ts"), TYPED_APP);
  // Installed as npm would: node_modules/@portrait/sdk is the package's folder.
  mkdirSync(path.join(work, "node_modules/@portrait"), { recursive: true });
  symlinkSync(path.join(DIST, "npm"), path.join(work, "node_modules/@portrait/sdk"), "dir");
});

test("a TypeScript app type-checks against the package's declarations (strict)", () => {
  const flags = ["--noEmit", "--strict", "--target", "es2020", "--module", "esnext", "--moduleResolution", "bundler", "--lib", "es2020,dom"];
  try {
    execFileSync(TSC, [...flags, "app.ts"], { cwd: work, encoding: "utf8" });
  } catch (error) {
    assert.fail(`tsc: ${error.stdout}${error.stderr}`);
  }
});

test("imported on a server (no document), the package does nothing: no request, and flush() answers false", async () => {
  const requests = [];
  const server = http.createServer((request, response) => {
    requests.push(request.url);
    response.end("{}");
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  const endpoint = `http://127.0.0.1:${server.address().port}`;
  writeFileSync(path.join(work, "server.mjs"), `
    import { load, track, flush, ready, user } from "@portrait/sdk";
    track("Before Load");
    load("pk_dev_demo", { endpoint: ${JSON.stringify(endpoint)} });
    for (let i = 0; i < 1000; i++) track("Rendered", { i });
    const within = (promise) => Promise.race([promise, new Promise((resolve) => setTimeout(() => resolve("waiting"), 2000))]);
    const [answer, readiness] = await Promise.all([within(flush()), within(ready(() => undefined).then(() => "ready"))]);
    console.log(JSON.stringify({ answer, readiness, user: user() }));
  `);
  try {
    const { stdout } = await promisify(execFile)(process.execPath, ["server.mjs"], { cwd: work, encoding: "utf8" });
    const expected = { answer: false, readiness: "waiting", user: { anonymousId: null, userId: null, traits: {} } };
    assert.deepEqual(JSON.parse(stdout), expected, "never ready on a server");
    assert.deepEqual(requests, [], "no request from the server");
  } finally {
    server.close();
  }
});

const builds = {
  esbuild: async (out) => {
    await esbuild.build({
      entryPoints: [path.join(work, "app.js")],
      bundle: true,
      minify: true,
      format: "esm",
      splitting: true,
      outdir: out,
      logLevel: "warning",
    });
    return "app.js";
  },
  webpack: async (out) => {
    const stats = await promisify(webpack)({
      mode: "production",
      entry: path.join(work, "app.js"),
      output: { path: out, filename: "main.js" },
    });
    assert.ok(!stats.hasErrors(), stats.toString("errors-only"));
    return "main.js";
  },
};

for (const [name, build] of Object.entries(builds)) {
  test(`an app bundled with ${name} loads the npm package and delivers events`, async () => {
    const out = path.join(work, name);
    const entry = await build(out);
    rig.site.mount(`/bundles/${name}/`, out);
    const html = `<!doctype html><title>${name}</title><script>window.COLLECTOR = ${JSON.stringify(rig.collector.url)};</script>
      <script type="module" src="/bundles/${name}/${entry}"></script>`;
    const context = await newContext(rig.browser);
    const page = await context.newPage();
    const errors = [];
    page.on("pageerror", (error) => errors.push(error));
    await page.goto(rig.site.page(`/${name}`, html));
    await page.waitForFunction(() => window.app && window.app.user().anonymousId);
    await page.evaluate(() => window.app.track("Bundled", { with: document.title }));
    assert.equal(await page.evaluate(() => window.app.flush()), true);
    const id = await page.evaluate(() => window.app.user().anonymousId);
    const events = await eventually(async () => {
      const { json } = await rig.collector.admin(`anonymous_id/${id}/events`);
      return json?.events?.length >= 2 && json.events;
    });
    const bundled = events.find((e) => e.event === "Bundled");
    assert.deepEqual(bundled.properties, { with: name });
    assert.deepEqual(errors, []);
    await context.close();
  });
}
