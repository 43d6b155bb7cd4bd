// The browser SDK in headless Chromium against the collector on local workerd: what the
// page does, and what arrived, read back through the profile API.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { eventually, launchBrowser, launchCollectorFor, newContext, snippetPage, startSite } from "../support/browser.mjs";

let site, collector, browser;

before(async () => {
  site = await startSite();
  collector = await launchCollectorFor(site.origin);
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await collector?.stop();
  await site?.stop();
});

/** Opens `html` at `pathname` in a fresh browser profile; returns the page once the SDK is ready. */
async function open(pathname, html, { context: existing, headers } = {}) {
  const context = existing ?? (await newContext(browser));
  const page = await context.newPage();
  const errors = [];
  page.on("pageerror", (error) => errors.push(error));
  await page.goto(site.page(pathname, html, headers));
  await page.waitForFunction(() => window.portrait && window.portrait.__portrait && window.portrait.user().anonymousId);
  return { page, context, errors };
}

/** The timeline of the visitor with this anonymous id (newest first), once `count` events are in. */
async function timeline(anonymousId, count) {
  return eventually(
    async () => {
      const { status, json } = await collector.admin(`anonymous_id/${anonymousId}/events?limit=500`);
      return status === 200 && json.events.length >= count && json.events;
    },
    { message: `${count} events for ${anonymousId}` },
  );
}

const anonymousId = (page) => page.evaluate(() => window.portrait.user().anonymousId);

describe("SDK: capture and delivery", () => {
  test("the snippet loads the SDK, which sends the page view and the calls made before it arrived, in order", async () => {
    const html = snippetPage({
      collector: collector.url,
      before: `portrait.track("Early One", {n: 1}); portrait.identify("user-1", {plan: "pro"}); portrait.track("Early Two");`,
      title: "Pricing",
    });
    const { page, context, errors } = await open("/pricing", html);
    const id = await anonymousId(page);
    assert.match(id, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    await page.evaluate(() => window.portrait.flush());
    const events = (await timeline(id, 4)).reverse();
    const names = events.map((e) => e.event ?? e.type);
    assert.deepEqual(names, ["page", "Early One", "identify", "Early Two"]);
    assert.equal(events[0].properties.path, "/pricing");
    assert.equal(events[0].context.page.title, "Pricing");
    assert.equal(events[0].context.library.name, "portrait.js");
    assert.equal(events[3].userId, "user-1", "the user id sticks to later events");
    assert.deepEqual(events[2].traits, { plan: "pro" });
    assert.equal(new Set(events.map((e) => e.messageId)).size, 4);
    assert.deepEqual(errors, []);
    await context.close();
  });
});
