// The npm package (`sdk/dist/npm`, `@portrait/sdk`) in real bundler builds: a tiny app built
// with esbuild and with webpack, loaded in Chromium, sending to the collector on workerd.
import { before, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import * as esbuild from "esbuild";
import webpack from "webpack";
import { DIST, eventually, newContext, useBrowserRig } from "../support/browser.mjs";

const PACKAGE = path.join(DIST, "npm/index.js");
const APP = `
import { load, track, flush, user } from "@portrait/sdk";
load("pk_dev_demo", { endpoint: window.COLLECTOR });
window.app = { track, flush, user };
`;

const rig = useBrowserRig();
let work;

before(() => {
  work = mkdtempSync(path.join(tmpdir(), "portrait-bundlers-"));
  writeFileSync(path.join(work, "app.js"), APP);
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
      alias: { "@portrait/sdk": PACKAGE },
      logLevel: "warning",
    });
    return "app.js";
  },
  webpack: async (out) => {
    const stats = await promisify(webpack)({
      mode: "production",
      entry: path.join(work, "app.js"),
      output: { path: out, filename: "main.js" },
      resolve: { alias: { "@portrait/sdk": PACKAGE } },
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
