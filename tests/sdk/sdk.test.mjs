// The browser SDK in headless Chromium against the collector on local workerd: what the
// page does, and what arrived, read back through the profile API.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { copyFileSync, mkdtempSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { DIST, eventually, launchCollectorFor, newContext, openPage, snippetPage, useBrowserRig } from "../support/browser.mjs";
import { startProxy } from "../support/proxy.mjs";

const rig = useBrowserRig();

/** Opens `html` at `pathname` in a fresh browser profile (or `context`); resolves once the SDK is ready. */
const open = (pathname, html, options) => openPage(rig, pathname, html, options);

/** The timeline of the visitor with this anonymous id (newest first), once `count` events are in. */
async function timeline(anonymousId, count) {
  return eventually(
    async () => {
      const { status, json } = await rig.collector.admin(`anonymous_id/${anonymousId}/events?limit=500`);
      return status === 200 && json.events.length >= count && json.events;
    },
    { message: `${count} events for ${anonymousId}`, describe: async () => JSON.stringify((await rig.collector.admin(`anonymous_id/${anonymousId}/events?limit=500`)).json?.events?.map((e) => [e.event ?? e.type, e.properties?.url ?? e.properties?.i])) },
  );
}

const anonymousId = (page) => page.evaluate(() => window.portrait.user().anonymousId);
const TRAITS_NOT_KEPT = "traits must be an object that JSON can write, all of them kept at most 16 KB as JSON; these were not kept";
/** A `before` script keeping each error the SDK reports (its `field`) in `window.reported`. */
const recordErrors = (field = "detail") => `window.reported = []; portrait.on("error", (e) => window.reported.push(e.${field}));`;
const reported = (page) => page.evaluate(() => window.reported);
/** What the SDK reports for an event it refuses before queueing it. */
const TOO_LARGE =
  "an event larger than the collector keeps (32 KB as JSON), or with a value that is no data (a DOM node, a browser event, window), was not sent";
const stats = (page) => page.evaluate(() => window.portrait.stats());
/** What the SDK stored of the visitor (the consent decision aside). */
const storedKeys = (page) =>
  page.evaluate(() => [
    ...Object.keys(localStorage).filter((k) => k.startsWith("portrait.") && k !== "portrait.consent"),
    ...document.cookie.split(";").map((c) => c.trim().split("=")[0]).filter((c) => c.startsWith("portrait")),
  ]);
/** What `flush()` answers within `ms`, else "waiting". */
const flushWithin = (page, ms) =>
  page.evaluate((ms) => Promise.race([window.portrait.flush(), new Promise((resolve) => setTimeout(() => resolve("waiting"), ms))]), ms);
const names = (events) => events.map((e) => e.event ?? e.type);

/** The profile of the visitor, once it holds `count` events (exactly `count` is then checked by callers). */
async function profileWith(anonymousId, count) {
  return eventually(
    async () => {
      const { status, json } = await rig.collector.profile("anonymous_id", anonymousId);
      return status === 200 && json.eventCount >= count && json;
    },
    { message: `a profile with ${count} events` },
  );
}

describe("SDK: capture and delivery", () => {
  test("the snippet loads the SDK, which sends the page view and the calls made before it arrived, in order", async () => {
    const html = snippetPage({
      collector: rig.collector.url,
      before: `portrait.track("Early One", {n: 1}); portrait.identify("user-1", {plan: "pro"}); portrait.track("Early Two");
        window.earlyFlush = portrait.flush();`,
      title: "Pricing",
    });
    const { page, context, errors } = await open("/pricing", html);
    assert.equal(await page.evaluate(() => window.earlyFlush), true, "a flush() before the SDK arrived is a Promise, settled as the real one");
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

  test("a view's URL and path are the canonical link's, with the page's query; an anchor is not part of the URL", async () => {
    const html = snippetPage({ collector: rig.collector.url, head: `<link rel="canonical" href="/guide/setup">` });
    const context = await newContext(rig.browser);
    const page = await context.newPage();
    await page.goto(`${rig.site.page("/docs/setup", html)}?tab=2#faq`);
    await page.waitForFunction(() => window.portrait.user && window.portrait.user().anonymousId);
    await page.evaluate(() => window.portrait.flush());
    const [view] = await timeline(await anonymousId(page), 1);
    const canonical = `${rig.site.origin}/guide/setup?tab=2`;
    assert.deepEqual([view.properties.url, view.properties.path], [canonical, "/guide/setup"]);
    assert.deepEqual([view.context.page.url, view.context.page.path], [canonical, "/guide/setup"]);
    // The canonical link names the document's first view only: a router updates it after it
    // renders, so a single-page navigation's view is the location's, without its anchor.
    await page.evaluate(() => history.pushState({}, "", "/docs/next#intro"));
    await page.evaluate(() => window.portrait.flush());
    const [next] = await timeline(await anonymousId(page), 2);
    assert.deepEqual([next.properties.url, next.properties.path], [`${rig.site.origin}/docs/next`, "/docs/next"]);
    assert.equal(next.context.page.referrer, canonical, "the previous view's URL is the referrer");
    await context.close();
  });
});

describe("SDK: autocapture", () => {
  test("clicks on links, buttons and data-portrait-event elements; downloads and outbound links flagged", async () => {
    const body = `
      <a id="out" href="https://www.example.org/partner">Partner   site</a>
      <a id="pdf" href="/files/whitepaper.pdf">Get the whitepaper</a>
      <button id="buy">  Buy
         now </button>
      <div id="custom" data-portrait-event="Plan Selected" data-portrait-plan="pro" data-portrait-seats="5"><span>Pro</span></div>
      <p id="plain">not clickable</p>`;
    // An `on('track')` listener hears the captured clicks by name too.
    const listen = `window.heard = []; portrait.on("track", (event, properties, options, detail) => window.heard.push([event, typeof detail.messageId]));`;
    const html = snippetPage({ collector: rig.collector.url, body, options: { autocapture: { scroll: false } }, before: listen });
    const { page, context } = await open("/clicks", html);
    // Links would navigate away: keep the page, the SDK still sees the click.
    await page.evaluate(() => document.addEventListener("click", (e) => e.preventDefault()));
    for (const selector of ["#out", "#pdf", "#buy", "#custom span", "#plain"]) await page.click(selector);
    await page.evaluate(() => window.portrait.flush());
    const events = (await timeline(await anonymousId(page), 5)).reverse();
    assert.deepEqual(names(events), ["page", "Link Clicked", "Link Clicked", "Button Clicked", "Plan Selected"]);
    const [, outbound, pdf, button, custom] = events.map((e) => e.properties);
    assert.deepEqual(
      { text: outbound.text, outbound: outbound.outbound, download: outbound.download, href: outbound.href },
      { text: "Partner site", outbound: true, download: false, href: "https://www.example.org/partner" },
    );
    assert.equal(pdf.download, true);
    assert.equal(pdf.outbound, false);
    assert.deepEqual({ tag: button.tag, text: button.text, id: button.id }, { tag: "button", text: "Buy now", id: "buy" });
    assert.deepEqual({ plan: custom.plan, seats: custom.seats, tag: custom.tag }, { plan: "pro", seats: "5", tag: "div" });
    const heard = await page.evaluate(() => window.heard);
    assert.deepEqual(heard.map(([event]) => event), ["Link Clicked", "Link Clicked", "Button Clicked", "Plan Selected"]);
    assert.ok(heard.every(([, id]) => id === "string"));
    await context.close();
  });

  test("a clicked input gives its label only if it is a button, never what was typed; a button in a link is the link; a named element wins over its button", async () => {
    const body = `
      <input id="secret" type="password" data-portrait-event="Password Focused">
      <input id="send" type="submit" value="Send it">
      <a id="wrap" href="https://www.example.org/get.pdf"><button id="inner">Get</button></a>
      <div data-portrait-event="Plan Chosen" data-portrait-plan="team"><button id="choose">Choose</button></div>
      <div data-portrait-event="Feedback Sent"><textarea id="note"></textarea><select><option>Rating 5</option></select><span id="send-note">Send</span></div>
      <div id="host"></div>
      <script>document.getElementById("host").attachShadow({ mode: "open" }).innerHTML = '<button id="shadowed">Inside</button>';</script>`;
    const html = snippetPage({ collector: rig.collector.url, body, options: { autocapture: { scroll: false, engagement: false } } });
    const { page, context } = await open("/inputs", html);
    await page.evaluate(() => document.addEventListener("click", (e) => e.preventDefault()));
    await page.fill("#secret", "hunter2");
    await page.fill("#note", "my private note");
    // React keeps a controlled textarea's text (its default value) equal to what was typed.
    await page.evaluate(() => { document.getElementById("note").textContent = "my private note"; });
    // Playwright's CSS selectors reach into open shadow roots.
    for (const selector of ["#secret", "#send", "#inner", "#choose", "#send-note", "#shadowed"]) await page.click(selector);
    await page.evaluate(() => window.portrait.flush());
    const events = (await timeline(await anonymousId(page), 7)).reverse();
    assert.deepEqual(names(events), ["page", "Password Focused", "Button Clicked", "Link Clicked", "Plan Chosen", "Feedback Sent", "Button Clicked"]);
    const [, secret, send, inner, chosen, feedback, shadowed] = events.map((e) => e.properties);
    assert.equal(feedback.text, "Send", "a field's text and a select's options are not the element's");
    assert.ok(!JSON.stringify(events).includes("private note"));
    assert.deepEqual([shadowed.text, shadowed.id], ["Inside", "shadowed"], "a click in a shadow root is read where it happened");
    assert.equal(secret.text, "", "the typed value is not sent");
    assert.ok(!JSON.stringify(events).includes("hunter2"));
    assert.equal(send.text, "Send it");
    assert.deepEqual([inner.tag, inner.href, inner.outbound, inner.download], ["button", "https://www.example.org/get.pdf", true, true]);
    assert.deepEqual([chosen.tag, chosen.plan], ["div", "team"]);
    await context.close();
  });

  test("a form inside a shadow root is captured when submitted", async () => {
    const body = `<div id="host"></div>
      <script>document.getElementById("host").attachShadow({ mode: "open" }).innerHTML =
        '<form id="shadow-form" action="/join" onsubmit="event.preventDefault()"><input name="email"><button id="join">Join</button></form>';</script>`;
    const html = snippetPage({ collector: rig.collector.url, body, options: { autocapture: { clicks: false, scroll: false, engagement: false } } });
    const { page, context } = await open("/shadow-form", html);
    await page.fill("#shadow-form input", "ada@example.com");
    await page.click("#join");
    await page.evaluate(() => window.portrait.flush());
    const events = await timeline(await anonymousId(page), 2);
    const submitted = events.find((e) => e.event === "Form Submitted");
    assert.deepEqual(submitted.properties, { form_id: "shadow-form", action: "/join", fields: 2 });
    assert.doesNotMatch(JSON.stringify(events), /ada@example\.com/);
    await context.close();
  });

  test("form submissions record the form, never the values, whatever its fields or the page's elements are named", async () => {
    // Fields named like the form's own properties (name, action) or methods (getAttribute,
    // matches, addEventListener) replace them on the form; an image, iframe or form named like
    // the document's (title, nodeType, cookie, prerendering, addEventListener, createTreeWalker)
    // replaces those on the document; and a page's script may declare classes named like the
    // DOM's (`class Document`: the name is theirs then) or replace a DOM global outright
    // (`var Element`).
    const body = `<img name="title" alt=""><img name="nodeType" alt=""><iframe name="cookie"></iframe><form name="prerendering"></form>
      <form name="addEventListener"></form><form name="createTreeWalker"></form>
      <form id="demo" name="demo-request" action="/thanks" onsubmit="event.preventDefault()">
      <input name="email" value="ada@example.com"><input name="company" value="Acme"><select name="size"><option>50</option></select>
      <input name="name" value="Ada"><input name="action" value="x">
      <input name="getAttribute"><input name="querySelectorAll"><input name="matches"><input name="addEventListener">
      <button id="send" type="submit">Send <select><option>now</option></select></button></form>`;
    const before = `class Document {} var Element = function Element() {}; class HTMLFormElement {} class ShadowRoot {} class EventTarget {}
      addEventListener("load", () => portrait.trackForm(document.getElementById("demo"), "Demo Requested"));`;
    const html = snippetPage({ collector: rig.collector.url, body, before, options: { autocapture: { scroll: false, engagement: false } } });
    const { page, context } = await open("/form", html);
    // (Playwright's own click reads the form's `getAttribute`.)
    await page.evaluate(() => document.getElementById("send").click());
    await page.evaluate(() => window.portrait.flush());
    const events = (await timeline(await anonymousId(page), 4)).reverse();
    assert.deepEqual(names(events).sort(), ["Button Clicked", "Demo Requested", "Form Submitted", "page"]);
    assert.equal(events.find((e) => e.event === "Button Clicked").properties.text, "Send", "a select's text left out, by a tree walk");
    const submitted = events.find((e) => e.event === "Form Submitted");
    assert.deepEqual(submitted.properties, { form_id: "demo", form_name: "demo-request", action: "/thanks", fields: 11 });
    assert.doesNotMatch(JSON.stringify(events), /ada@example\.com|Acme|"Ada"/);
    assert.equal(events[0].context.page.title, "Test page");
    assert.ok((await context.cookies()).some((cookie) => cookie.name === "portrait_aid"), "the id cookie is written");
    // The SDK is still alive after the submission.
    assert.equal(await page.evaluate(() => typeof window.portrait.user().anonymousId), "string");
    await context.close();
  });

  test("a page opened in a background tab and closed unseen counts no engaged time", async () => {
    const context = await newContext(rig.browser);
    await context.addInitScript(() => {
      Object.defineProperty(Document.prototype, "hidden", { get: () => true, configurable: true });
      Object.defineProperty(Document.prototype, "visibilityState", { get: () => "hidden", configurable: true });
    });
    const html = snippetPage({ collector: rig.collector.url, options: { autocapture: { clicks: false, forms: false, scroll: false } } });
    const { page } = await open("/background", html, { context });
    const id = await anonymousId(page);
    await page.waitForTimeout(1500);
    await page.close({ runBeforeUnload: true });
    // The view and what engagement was reported leave together, when the page is closed
    // (a report needs a second engaged, or interest credit, whose weight is 0 here).
    const events = await timeline(id, 1);
    assert.deepEqual(events.filter((e) => e.event === "Page Engaged").map((e) => e.properties.engaged_ms).filter((ms) => ms > 0), []);
    await context.close();
  });

  test("scroll depth milestones once per page view, and engaged time when the page is hidden", async () => {
    const html = snippetPage({ collector: rig.collector.url, body: `<div style="height: 5000px">long</div>` });
    const { page, context } = await open("/long", html);
    await page.mouse.move(10, 10);
    for (const y of [1000, 2200, 1000, 5000, 5000]) {
      await page.evaluate((y) => window.scrollTo(0, y), y);
      await page.waitForTimeout(300);
      await page.mouse.move(20, 20 + y / 100);
    }
    // Hide the page as a tab switch would; the SDK reports engaged time and sends by beacon.
    await page.evaluate(() => {
      Object.defineProperty(document, "hidden", { value: true, configurable: true });
      document.dispatchEvent(new Event("visibilitychange"));
    });
    const events = await timeline(await anonymousId(page), 7);
    const depths = events.filter((e) => e.event === "Scroll Depth Reached").map((e) => e.properties.depth).sort((a, b) => a - b);
    assert.deepEqual(depths, [25, 50, 75, 90, 100]);
    const engaged = events.find((e) => e.event === "Page Engaged");
    assert.ok(engaged.properties.engaged_ms >= 1000 && engaged.properties.engaged_ms < 60_000, engaged.properties.engaged_ms);
    await context.close();
  });

  test("a session begun by an event after 30 idle minutes, not by a page's arrival, is direct: the landing's campaign stays with the first session", async () => {
    const html = snippetPage({ collector: rig.collector.url, options: { autocapture: { clicks: false, scroll: false, engagement: false } } });
    const context = await newContext(rig.browser);
    await context.clock.install();
    const page = await context.newPage();
    await page.goto(rig.site.page("/ad-landing", html) + "?gclid=idle123", { referer: "https://www.google.com/" });
    await page.waitForFunction(() => window.portrait.user && window.portrait.user().anonymousId);
    await page.clock.pauseAt(Date.now() + 1_000);
    await page.evaluate(() => window.portrait.flush());
    await page.clock.fastForward("40:00");
    await page.evaluate(() => window.portrait.track("Back Later"));
    await page.evaluate(() => window.portrait.flush());
    const events = await timeline(await anonymousId(page), 2);
    const [view, later] = ["page", "Back Later"].map((name) => events.find((e) => names([e])[0] === name));
    assert.deepEqual([view.context.channel, view.context.campaign.gclid, view.context.session.count], ["paid", "idle123", 1]);
    assert.deepEqual([later.context.channel, later.context.campaign?.gclid, later.context.session.count], ["direct", undefined, 2]);
    assert.equal(later.context.firstTouch.channel, "paid", "the first touch stays");
    await context.close();
  });

  test("a tab left idle for over 30 minutes and then hidden reports its engaged time in its own session", async () => {
    const html = snippetPage({ collector: rig.collector.url, options: { autocapture: { clicks: false, scroll: false } } });
    const context = await newContext(rig.browser);
    await context.clock.install();
    const { page } = await open("/left-open", html, { context });
    await page.clock.pauseAt(Date.now() + 1_000);
    await page.mouse.move(10, 10);
    await page.clock.runFor(3_000); // engaged: visible, input in the last 5 s
    await page.evaluate(() => window.portrait.flush()); // the view goes on time
    await page.clock.fastForward("40:00");
    await page.evaluate(() => {
      Object.defineProperty(document, "hidden", { value: true, configurable: true });
      document.dispatchEvent(new Event("visibilitychange"));
    });
    const events = await timeline(await anonymousId(page), 2);
    assert.deepEqual(names(events).sort(), ["Page Engaged", "page"]);
    const [engaged, view] = ["Page Engaged", "page"].map((name) => events.find((e) => names([e])[0] === name));
    assert.ok(engaged.properties.engaged_ms >= 1_000, `${engaged.properties.engaged_ms} ms engaged`);
    assert.deepEqual(engaged.context.session, view.context.session, "the page's session, not a new one");
    // Sent 40 minutes after the view and dated at the visitor's last activity, by the view:
    // the collector keeps those 40 minutes between its time and its sending (its clock skew
    // correction; the page's clock ran ahead of the collector's here).
    const dated = Date.parse(engaged.receivedAt) - Date.parse(engaged.timestamp);
    assert.ok(dated > 39 * 60_000 && dated < 41 * 60_000, `dated ${dated} ms before it was sent`);
    await context.close();
  });

  test("single-page navigations are page views, each counted once, the site's own page() calls included; anchors and a replaceState of the query alone are not views", async () => {
    // The site calls page() itself, as analytics.js sites do in their snippet and router:
    // the automatic view of the same page gives way to it.
    const html = snippetPage({ collector: rig.collector.url, options: { autocapture: { scroll: false, engagement: false } }, before: "portrait.page();" });
    const { page, context } = await open("/app", html);
    await page.evaluate(async () => {
      history.replaceState({}, "", location.href); // same URL: not a view
      history.replaceState({}, "", "/app?utm_source=news"); // the query rewritten in place: not a view
      history.pushState({}, "", "/app/settings");
      window.portrait.page("Settings"); // the router's own call
      history.pushState({}, "", "/app/settings?tab=2"); // a query pushed: a view
      location.hash = "#faq"; // an anchor on the same page: not a view
      await new Promise((r) => setTimeout(r, 50));
      location.hash = "#/billing"; // a hash route
      await new Promise((r) => setTimeout(r, 50));
      history.back();
      await new Promise((r) => setTimeout(r, 100));
      await window.portrait.flush();
    });
    const events = (await timeline(await anonymousId(page), 5)).reverse();
    assert.deepEqual(events.map((e) => e.type), ["page", "page", "page", "page", "page"]);
    const paths = events.map((e) => new URL(e.properties.url).pathname + new URL(e.properties.url).search + new URL(e.properties.url).hash);
    // Back from a hash route to an anchor: a view, whose URL (as in analytics.js) has no anchor.
    assert.deepEqual(paths, ["/app", "/app/settings", "/app/settings?tab=2", "/app/settings?tab=2#/billing", "/app/settings?tab=2"]);
    assert.equal(events[1].name, "Settings", "the router's call is the view");
    assert.equal(events[1].context.page.referrer, events[0].properties.url, "the previous URL is the referrer");
    await page.waitForTimeout(200);
    const profile = await rig.collector.profile("anonymous_id", await anonymousId(page));
    assert.equal(profile.json.eventCount, 5);
    await context.close();
  });

  test("a router's redirect before the view is counted (a replaceState to /en, a hash router's #/) leaves one view, the new URL's", async () => {
    // The router runs as the SDK is ready, within the automatic view's wait.
    const before = `portrait.ready(() => { history.replaceState({}, "", "/portal/en"); location.hash = "#/"; });`;
    const html = snippetPage({ collector: rig.collector.url, options: { autocapture: { scroll: false, engagement: false } }, before });
    const context = await newContext(rig.browser);
    const page = await context.newPage();
    await page.goto(rig.site.page("/portal", html), { referer: "https://news.example/" });
    await page.waitForFunction(() => location.hash === "#/" && window.portrait.user().anonymousId);
    await page.evaluate(() => window.portrait.flush());
    const [view] = await timeline(await anonymousId(page), 1);
    assert.equal(view.context.page.path, "/portal/en");
    assert.equal(view.context.page.referrer, "https://news.example/", "the landing's referrer kept");
    await page.waitForTimeout(300);
    assert.equal((await rig.collector.profile("anonymous_id", await anonymousId(page))).json.eventCount, 1);
    await context.close();
  });

  test("a router's redirect after the visitor scrolled (the view still waiting): the view's milestones are not reached again", async () => {
    // The scroll is read as the SDK is ready; the router redirects within the view's wait.
    const before = `portrait.ready(() => { scrollTo(0, 5000); setTimeout(() => history.replaceState({}, "", "/scrolled/en"), 400); });`;
    const html = snippetPage({ collector: rig.collector.url, options: { autocapture: { engagement: false } }, body: `<div style="height: 5000px">long</div>`, before });
    const { page, context } = await open("/scrolled", html);
    await page.waitForFunction(() => location.pathname === "/scrolled/en" && window.portrait.stats().captured >= 5);
    for (const y of [0, 5000]) {
      await page.evaluate((y) => window.scrollTo(0, y), y);
      await page.waitForTimeout(300);
    }
    await page.evaluate(() => window.portrait.flush());
    const id = await anonymousId(page);
    const events = await timeline(id, 6);
    const depths = events.filter((e) => e.event === "Scroll Depth Reached").map((e) => e.properties.depth).sort((a, b) => a - b);
    assert.deepEqual(depths, [25, 50, 75, 90, 100]);
    assert.equal(events.find((e) => e.type === "page").context.page.path, "/scrolled/en");
    await page.waitForTimeout(300);
    assert.equal((await rig.collector.profile("anonymous_id", id)).json.eventCount, 6);
    await context.close();
  });

  test("an automatic page view waits a moment for the site's page(), and is captured at the view's start when none comes", async () => {
    const html = snippetPage({ collector: rig.collector.url, options: { autocapture: { scroll: false, engagement: false } } });
    const { page, context } = await open("/no-call", html);
    // The time of the navigation, read in the same task as it.
    const started = await page.evaluate(() => {
      const at = Date.now();
      history.pushState({}, "", "/no-call/next");
      document.title = "Next Page"; // as a router does, after it rendered the route
      return at;
    });
    // Both views captured after the grace period, without a flush.
    await page.waitForFunction(() => window.portrait.stats().captured === 2);
    await page.evaluate(() => window.portrait.flush());
    const [next] = await timeline(await anonymousId(page), 2);
    assert.equal(new URL(next.properties.url).pathname, "/no-call/next");
    assert.deepEqual([next.properties.title, next.context.page.title], ["Next Page", "Next Page"], "the title the route set");
    assert.ok(Date.parse(next.timestamp) - started < 1_000, `timed when the view began: ${next.timestamp}`);
    // A reset during the wait (a sign-out page): the view is the forgotten visitor's.
    const before = await anonymousId(page);
    await page.evaluate(() => {
      history.pushState({}, "", "/no-call/signed-out");
      window.portrait.reset();
    });
    await page.evaluate(() => window.portrait.flush());
    const [signedOut] = await timeline(before, 3);
    assert.equal(new URL(signedOut.properties.url).pathname, "/no-call/signed-out");
    await context.close();
    // A page closed during the wait still sends its view.
    const closed = await open("/closed-at-once", html);
    const closedId = await anonymousId(closed.page);
    await closed.page.close({ runBeforeUnload: true });
    assert.deepEqual(names(await timeline(closedId, 1)), ["page"]);
    await closed.context.close();
  });

  test("two navigations within a second, then the router's late page(): the first view's timer leaves the second view waiting (fake clock)", async () => {
    const html = snippetPage({ collector: rig.collector.url, options: { autocapture: { scroll: false, engagement: false } } });
    const { page, context } = await open("/quick", html);
    // From here the page's timers and clock are the test's: no timing on this machine decides.
    await page.clock.install();
    await page.evaluate(() => history.pushState({}, "", "/quick/a"));
    await page.clock.runFor(500);
    await page.evaluate(() => history.pushState({}, "", "/quick/b"));
    // The timer of /quick/a's view fires now, 1 s after it began: /quick/b's, 0.5 s old, waits on.
    await page.clock.runFor(700);
    await page.evaluate(() => window.portrait.page("Quick B"));
    await page.clock.runFor(2_000);
    await page.evaluate(() => window.portrait.flush());
    const views = (await timeline(await anonymousId(page), 3)).reverse();
    assert.deepEqual(views.map((e) => [new URL(e.properties.url).pathname, e.name ?? null]), [["/quick", null], ["/quick/a", null], ["/quick/b", "Quick B"]]);
    await page.waitForTimeout(300);
    assert.equal((await rig.collector.profile("anonymous_id", await anonymousId(page))).json.eventCount, 3, "no automatic view of /quick/b besides the router's");
    await context.close();
  });

  test("campaign parameters and click ids on landing; channel, first touch and session in every event's context", async () => {
    const html = snippetPage({ collector: rig.collector.url });
    const context = await newContext(rig.browser);
    const page = await context.newPage();
    await page.goto(rig.site.page("/landing", html) + "?utm_source=google&utm_medium=cpc&email=ada%40example.com&utm_campaign=spring&gclid=abc123", {
      referer: "https://www.google.com/",
    });
    await page.waitForFunction(() => window.portrait.user && window.portrait.user().anonymousId);
    await page.evaluate(() => window.portrait.track("Pricing Viewed"));
    const stored = await page.evaluate(() => [localStorage.getItem("portrait.campaign"), localStorage.getItem("portrait.first")]);
    assert.deepEqual(stored, ["utm_campaign=spring&utm_source=google&utm_medium=cpc&gclid=abc123", "paid|utm_campaign=spring&utm_source=google&utm_medium=cpc&gclid=abc123"], "the campaign stored, not the rest of the query");
    // A second page of the same visit, without parameters, keeps the session's campaign.
    await page.goto(rig.site.page("/next", html), { referer: rig.site.origin + "/landing" });
    await page.waitForFunction(() => window.portrait.user && window.portrait.user().anonymousId);
    await page.evaluate(() => window.portrait.flush());
    const events = (await timeline(await anonymousId(page), 3)).reverse();
    for (const event of events) {
      assert.deepEqual(
        { name: event.context.campaign.name, source: event.context.campaign.source, medium: event.context.campaign.medium, gclid: event.context.campaign.gclid },
        { name: "spring", source: "google", medium: "cpc", gclid: "abc123" },
      );
      assert.equal(event.context.channel, "paid");
      assert.deepEqual(event.context.firstTouch, { channel: "paid", name: "spring", source: "google", medium: "cpc", gclid: "abc123" });
      assert.equal(event.context.session.count, 1);
    }
    assert.equal(new Set(events.map((e) => e.context.session.id)).size, 1, "one session across both pages");
    await context.close();
  });

  test("a landing URL with a campaign value past the collector's limit: the value is cut, and the visitor's events still arrive", async () => {
    const html = snippetPage({ collector: rig.collector.url, options: { autocapture: { clicks: false, forms: false, scroll: false, engagement: false } } });
    const context = await newContext(rig.browser);
    const page = await context.newPage();
    await page.goto(rig.site.page("/huge-campaign", html) + `?utm_source=${"s".repeat(9000)}&utm_medium=cpc`, { referer: `https://news.example/${"r".repeat(3000)}` });
    await page.waitForFunction(() => window.portrait.user && window.portrait.user().anonymousId);
    await page.evaluate(() => window.portrait.track("Still Counted"));
    await page.evaluate(() => window.portrait.flush());
    const events = await timeline(await anonymousId(page), 2);
    // The page view carries the URL, referrer and search twice (context and properties).
    assert.deepEqual(names(events).sort(), ["Still Counted", "page"]);
    for (const event of events) {
      assert.equal(event.context.campaign.source, "s".repeat(500));
      assert.equal(event.context.firstTouch.source, "s".repeat(500));
      const { url, search, referrer } = event.context.page;
      assert.ok([url, search, referrer].every((text) => text.length === 2048), [url, search, referrer].map((t) => t.length).join());
    }
    await context.close();
  });

  test("reset() forgets the visitor's campaign, channel and first touch; an unpaid Facebook link is social", async () => {
    const html = snippetPage({ collector: rig.collector.url, options: { autocapture: { scroll: false, engagement: false } } });
    const context = await newContext(rig.browser);
    const page = await context.newPage();
    await page.goto(rig.site.page("/from-facebook", html) + "?fbclid=IwAR123", { referer: "https://l.facebook.com/" });
    await page.waitForFunction(() => window.portrait.user && window.portrait.user().anonymousId);
    const before = await anonymousId(page);
    await page.evaluate(() => window.portrait.track("Before Reset"));
    await page.evaluate(() => window.portrait.reset());
    await page.evaluate(() => window.portrait.track("After Reset"));
    await page.evaluate(() => window.portrait.flush());
    const [first] = (await timeline(before, 2)).filter((e) => e.event === "Before Reset");
    assert.equal(first.context.channel, "social", "fbclid alone is not paid");
    assert.equal(first.context.campaign.fbclid, "IwAR123");
    assert.deepEqual(first.context.firstTouch, { channel: "social", fbclid: "IwAR123" });
    const [after] = await timeline(await anonymousId(page), 1);
    assert.equal(after.event, "After Reset");
    // The new visitor's session begins at the reset: a direct arrival, their first touch too.
    assert.deepEqual(after.context.firstTouch, { channel: "direct" }, JSON.stringify(after.context));
    assert.equal(after.context.channel, "direct");
    assert.equal(after.context.campaign?.fbclid, undefined);
    const stored = await page.evaluate(() => ["first", "campaign", "channel"].map((k) => localStorage.getItem(`portrait.${k}`)));
    assert.deepEqual(stored, ["direct|", null, "direct"]);
    await context.close();
  });

  test("a search referrer without a campaign is the search channel", async () => {
    const html = snippetPage({ collector: rig.collector.url });
    const context = await newContext(rig.browser);
    const page = await context.newPage();
    await page.goto(rig.site.page("/from-search", html), { referer: "https://duckduckgo.com/" });
    await page.waitForFunction(() => window.portrait.user && window.portrait.user().anonymousId);
    await page.evaluate(() => window.portrait.flush());
    const [event] = await timeline(await anonymousId(page), 1);
    assert.equal(event.context.channel, "search");
    assert.equal(event.context.page.referrer, "https://duckduckgo.com/");
    await context.close();
  });
});

describe("SDK: identity and storage", () => {
  test("the anonymous id lives in a cookie and localStorage; either survives the other being cleared; reset makes a new one", async () => {
    // `auto`, as the documentation names the default, is the default.
    const html = snippetPage({ collector: rig.collector.url, options: { cookieDomain: "auto" } });
    const { page, context } = await open("/ids", html);
    const first = await anonymousId(page);
    const cookies = await context.cookies();
    const cookie = cookies.find((c) => c.name === "portrait_aid");
    assert.equal(cookie?.value, first);
    assert.equal(cookie.sameSite, "Lax");
    assert.ok(cookie.expires * 1000 > Date.now() + 300 * 86_400_000, "about a year");
    await context.clearCookies();
    await page.reload();
    await page.waitForFunction(() => window.portrait.user && window.portrait.user().anonymousId);
    assert.equal(await anonymousId(page), first, "restored from localStorage");
    await page.evaluate(() => localStorage.clear());
    await page.reload();
    await page.waitForFunction(() => window.portrait.user && window.portrait.user().anonymousId);
    assert.equal(await anonymousId(page), first, "restored from the cookie");
    await page.evaluate(() => window.portrait.identify("user-9", { email: "u9@example.com" }));
    assert.deepEqual(await page.evaluate(() => window.portrait.user()), { anonymousId: first, userId: "user-9", traits: { email: "u9@example.com" } });
    await page.reload();
    await page.waitForFunction(() => window.portrait.user && window.portrait.user().anonymousId);
    assert.equal(await page.evaluate(() => window.portrait.user().userId), "user-9", "identify persists");
    const userCookie = async () => (await context.cookies()).find((c) => c.name === "portrait_uid")?.value;
    assert.equal(await userCookie(), "user-9", "the user id is in a cookie too (another subdomain's pages know the user)");
    // Another user's identify replaces the traits (as analytics.js does); alias changes no one.
    await page.evaluate(() => window.portrait.identify("user-10", { plan: "team" }));
    await page.evaluate(() => window.portrait.alias("user-11"));
    assert.deepEqual(await page.evaluate(() => window.portrait.user()), { anonymousId: first, userId: "user-10", traits: { plan: "team" } });
    await page.evaluate(() => window.portrait.group("acme", { seats: 40 }));
    await page.reload();
    await page.waitForFunction(() => window.portrait.user && window.portrait.user().anonymousId);
    assert.deepEqual(await page.evaluate(() => window.portrait.group()), { groupId: "acme", traits: { seats: 40 } }, "the group persists");
    const groupCookie = async () => (await context.cookies()).find((c) => c.name === "portrait_gid")?.value;
    assert.equal(await groupCookie(), "acme");
    await page.evaluate(() => window.portrait.reset());
    const after = await page.evaluate(() => window.portrait.user());
    assert.notEqual(after.anonymousId, first);
    assert.deepEqual({ userId: after.userId, traits: after.traits }, { userId: null, traits: {} });
    assert.deepEqual(await page.evaluate(() => window.portrait.group()), { groupId: null, traits: {} });
    assert.equal(await userCookie(), undefined, "reset removes the user's cookie");
    assert.equal(await groupCookie(), undefined, "and the group's");
    await context.close();
  });

  test("Segment's stored ids become the visitor's, until Portrait has its own; an id longer than 255 bytes is refused, stored or given", async () => {
    const context = await newContext(rig.browser);
    // What analytics.js left on the site: its anonymous id cookie (JSON text, percent-encoded)
    // and its user id in localStorage.
    await context.addCookies([{ name: "ajs_anonymous_id", value: "%22seg-anon-1%22", url: rig.site.origin }]);
    await context.addInitScript(() => localStorage.setItem("ajs_user_id", JSON.stringify("seg-user-1")));
    const html = snippetPage({ collector: rig.collector.url, options: { autocapture: false }, before: recordErrors() });
    const { page } = await open("/from-segment", html, { context });
    const ids = () => page.evaluate(() => [window.portrait.user().anonymousId, window.portrait.user().userId]);
    assert.deepEqual(await ids(), ["seg-anon-1", "seg-user-1"]);
    assert.equal((await context.cookies()).find((c) => c.name === "portrait_aid")?.value, "seg-anon-1", "stored as ours");
    // The next page reads them as ours (Segment's are no longer consulted).
    await page.reload();
    await page.waitForFunction(() => window.portrait.user && window.portrait.user().anonymousId);
    assert.deepEqual(await ids(), ["seg-anon-1", "seg-user-1"]);
    assert.equal((await context.cookies()).find((c) => c.name === "portrait_uid")?.value, "seg-user-1");
    const long = "t".repeat(300);
    await page.evaluate((id) => {
      window.portrait.identify(id, { plan: "x" });
      window.portrait.group(id);
      window.portrait.alias(id);
      window.portrait.track("Still Going");
    }, long);
    assert.deepEqual(await reported(page), [long, long, long], "each call refused and reported");
    assert.equal(await page.evaluate(() => window.portrait.user().userId), "seg-user-1", "the user stays");
    await page.evaluate(() => window.portrait.flush());
    assert.deepEqual(names(await timeline("seg-anon-1", 1)), ["Still Going"]);
    // Forgotten by reset(), the visitor is not brought back by Segment's ids, still there.
    await page.evaluate(() => window.portrait.reset());
    const fresh = await anonymousId(page);
    await page.reload();
    await page.waitForFunction(() => window.portrait.user && window.portrait.user().anonymousId);
    assert.deepEqual(await ids(), [fresh, null]);
    // Ids planted in storage that the collector would refuse are replaced, not sent.
    await page.evaluate((id) => {
      localStorage.setItem("portrait.aid", id);
      localStorage.setItem("portrait.uid", id);
    }, long);
    await context.clearCookies();
    await page.reload();
    await page.waitForFunction(() => window.portrait.user && window.portrait.user().anonymousId);
    const [planted, user] = await ids();
    assert.match(planted, /^[0-9a-f-]{36}$/);
    assert.equal(user, "seg-user-1", "with no id of its own, Segment's user id is read again");
    await context.close();

    // analytics.js keeps an anonymous visitor's user id as the JSON text `null`: no user.
    const anonymous = await newContext(rig.browser);
    await anonymous.addInitScript(() => localStorage.setItem("ajs_user_id", "null"));
    const { page: second } = await open("/from-segment-anonymous", html, { context: anonymous });
    assert.equal(await second.evaluate(() => window.portrait.user().userId), null);
    await anonymous.close();
  });

  test("reset() while nothing may be stored removes Segment's stored ids too: the next page does not adopt the forgotten user", async () => {
    const context = await newContext(rig.browser);
    await context.addCookies([{ name: "ajs_anonymous_id", value: "%22seg-anon-2%22", url: rig.site.origin }]);
    await context.addInitScript(() => {
      if (!sessionStorage.getItem("seeded")) localStorage.setItem("ajs_user_id", JSON.stringify("seg-user-2"));
      sessionStorage.setItem("seeded", "1");
    });
    const html = snippetPage({ collector: rig.collector.url, options: { consent: "pending", autocapture: false } });
    const { page } = await open("/from-segment-pending", html, { context });
    const ids = () => page.evaluate(() => [window.portrait.user().anonymousId, window.portrait.user().userId]);
    assert.deepEqual(await ids(), ["seg-anon-2", "seg-user-2"]);
    await page.evaluate(() => window.portrait.reset());
    assert.equal(await page.evaluate(() => localStorage.getItem("ajs_user_id")), null);
    assert.equal((await context.cookies()).find((c) => c.name === "ajs_anonymous_id"), undefined);
    await page.reload();
    await page.waitForFunction(() => window.portrait.user && window.portrait.user().anonymousId);
    const [anonymous, user] = await ids();
    assert.notEqual(anonymous, "seg-anon-2");
    assert.equal(user, null);
    await context.close();
  });

  test("an id cookie another script emptied does not hide the id stored in localStorage", async () => {
    const context = await newContext(rig.browser);
    await context.addCookies([{ name: "portrait_aid", value: "", url: rig.site.origin }]);
    await context.addInitScript(() => localStorage.setItem("portrait.aid", "kept-visitor-1"));
    const html = snippetPage({ collector: rig.collector.url, options: { autocapture: false } });
    const { page } = await open("/emptied-cookie", html, { context });
    assert.equal(await anonymousId(page), "kept-visitor-1");
    assert.equal((await context.cookies()).find((c) => c.name === "portrait_aid")?.value, "kept-visitor-1", "the cookie written again");
    await context.close();
  });

  test("with storage throwing (disabled cookies and localStorage) the SDK falls back to memory and still delivers", async () => {
    const context = await newContext(rig.browser);
    await context.addInitScript(() => {
      const deny = () => {
        throw new DOMException("The operation is insecure.", "SecurityError");
      };
      Object.defineProperty(window, "localStorage", { get: deny });
      Object.defineProperty(Document.prototype, "cookie", { get: deny, set: deny });
    });
    const html = snippetPage({
      collector: rig.collector.url,
      before: recordErrors("message"),
    });
    const { page, errors } = await open("/no-storage", html, { context });
    await page.evaluate(() => window.portrait.track("Works Anyway"));
    await page.evaluate(() => window.portrait.flush());
    const events = await timeline(await anonymousId(page), 2);
    assert.deepEqual(names(events).sort(), ["Works Anyway", "page"]);
    assert.deepEqual(errors, []);
    assert.deepEqual(await reported(page), ["the browser refused to store; the SDK keeps its state in memory"], "reported once");
    assert.ok((await stats(page)).errors >= 1, "and counted");
    await context.close();
  });
});

describe("SDK: cookies on a host name", () => {
  test("no cookie is written before consent, not even the domain probe; granted, the ids go on the broadest domain", async () => {
    const spy = `window.cookieWrites = [];
      const cookie = Object.getOwnPropertyDescriptor(Document.prototype, "cookie");
      Object.defineProperty(document, "cookie", {
        configurable: true,
        get: () => cookie.get.call(document),
        set: (value) => { window.cookieWrites.push(value); cookie.set.call(document, value); },
      });`;
    const html = snippetPage({ collector: rig.collector.url, options: { consent: "pending", autocapture: false }, before: spy });
    // *.portrait.test resolves to 127.0.0.1 in the test browser (see launchBrowser).
    const url = rig.site.page("/cookie-domain", html).replace("127.0.0.1", "www.shop.portrait.test");
    const context = await newContext(rig.browser);
    const page = await context.newPage();
    await page.goto(url);
    await page.waitForFunction(() => window.portrait.user && window.portrait.user().anonymousId);
    assert.deepEqual(await page.evaluate(() => window.cookieWrites), [], "nothing while pending");
    await page.evaluate(() => window.portrait.consent.set({ analytics: "granted" }));
    const writes = await page.evaluate(() => window.cookieWrites);
    assert.match(writes[0], /^portrait_probe=[0-9a-f]+; .*Domain=portrait\.test/, JSON.stringify(writes));
    const aid = writes.find((w) => w.startsWith("portrait_aid="));
    assert.match(aid, /; SameSite=Lax; Domain=portrait\.test/);
    assert.doesNotMatch(aid, /Secure/, "not on http");
    // (The visit cookie comes with the first stored session: within a second, or not yet.)
    const stored = (await context.cookies()).filter((c) => c.name.startsWith("portrait_") && c.name !== "portrait_visit");
    assert.deepEqual(stored.map((c) => [c.name, c.domain]), [["portrait_aid", ".portrait.test"]], "the probe is gone");

    // The consent record is lost (the browser evicted the site's localStorage), and the next
    // page finds a refusal (Global Privacy Control, respected): the id cookie left on the
    // parent domain goes, and nothing is written on the way, not even the probe.
    await page.evaluate(() => localStorage.clear());
    const gpc = `Object.defineProperty(Navigator.prototype, "globalPrivacyControl", { get: () => true });`;
    const refusing = snippetPage({
      collector: rig.collector.url,
      options: { respectGlobalPrivacyControl: true, autocapture: false },
      before: gpc + spy,
    });
    const next = await context.newPage();
    await next.goto(rig.site.page("/cookie-domain-refused", refusing).replace("127.0.0.1", "www.shop.portrait.test"));
    await next.waitForFunction(() => window.portrait.consent.get && window.portrait.consent.get());
    assert.equal(await next.evaluate(() => window.portrait.consent.get().analytics), "denied");
    const expiring = await next.evaluate(() => window.cookieWrites);
    assert.ok(expiring.length > 0, "the stored id is expired");
    for (const write of expiring) assert.match(write, /^portrait_\w+=; Path=\/; Max-Age=0;/, write);
    assert.deepEqual((await context.cookies()).filter((c) => c.name.startsWith("portrait_")), [], "no cookie left");
    await context.close();
  });

  test("reset() while consent is pending forgets the ids a sibling subdomain left on the parent domain", async () => {
    const context = await newContext(rig.browser);
    const on = (host, pathname, options) => {
      const html = snippetPage({ collector: rig.collector.url, options: { autocapture: false, ...options } });
      return rig.site.page(pathname, html).replace("127.0.0.1", host);
    };
    const ready = (page) => page.waitForFunction(() => window.portrait.user && window.portrait.user().anonymousId);
    const shop = await context.newPage();
    await shop.goto(on("www.shop.portrait.test", "/granted", { consent: "granted" }));
    await ready(shop);
    await shop.evaluate(() => window.portrait.identify("user-sibling"));
    const known = await shop.evaluate(() => window.portrait.user());
    const cookies = async () => (await context.cookies()).filter((c) => c.name.startsWith("portrait_")).map((c) => [c.name, c.domain]).sort();
    const ids = async () => (await cookies()).filter(([name]) => name !== "portrait_visit");
    assert.deepEqual(await ids(), [["portrait_aid", ".portrait.test"], ["portrait_uid", ".portrait.test"]]);

    // The blog has its own localStorage (no consent given there) and reads the ids from the
    // parent domain's cookies.
    const blog = await context.newPage();
    await blog.goto(on("blog.portrait.test", "/pending", { consent: "pending" }));
    await ready(blog);
    const read = await blog.evaluate(() => window.portrait.user());
    assert.deepEqual([read.anonymousId, read.userId], [known.anonymousId, "user-sibling"], "ids shared through the parent domain");
    await blog.evaluate(() => window.portrait.reset());
    await blog.reload();
    await ready(blog);
    const forgotten = await blog.evaluate(() => window.portrait.user());
    assert.equal(forgotten.userId, null, "the user stays forgotten");
    assert.notEqual(forgotten.anonymousId, known.anonymousId, "and so does the old anonymous id");
    assert.deepEqual(await cookies(), [], "their cookies are expired; nothing new is written while pending");
    await context.close();
  });

  test("a sibling subdomain is the same site: a link to it is not outbound, and the visitor arriving from it stays in their session, with its campaign and first touch", async (t) => {
    const hosts = ["docs.portrait.test", "app.portrait.test"];
    const collector = await launchCollectorFor(hosts.map((host) => rig.site.origin.replace("127.0.0.1", host)));
    t.after(() => collector.stop());
    const context = await newContext(rig.browser);
    const options = { autocapture: { scroll: false, engagement: false, forms: false } };
    const on = (host, pathname, body = "") =>
      rig.site.page(pathname, snippetPage({ collector: collector.url, options, body })).replace("127.0.0.1", host);
    const app = on("app.portrait.test", "/dashboard");
    const page = await context.newPage();
    const landing = on("docs.portrait.test", "/guide", `<a id="to-app" href="${app}">Open the app</a>`);
    await page.goto(`${landing}?utm_source=news&utm_medium=email&utm_campaign=Spring`);
    await page.waitForFunction(() => window.portrait.user && window.portrait.user().anonymousId);
    const visitor = await anonymousId(page);
    await page.click("#to-app");
    await page.waitForURL(/app\.portrait\.test/);
    await page.waitForFunction(() => window.portrait.user && window.portrait.user().anonymousId);
    assert.equal(await anonymousId(page), visitor, "one visitor on both subdomains");
    await page.evaluate(() => window.portrait.flush());
    const events = await eventually(async () => {
      const { json } = await collector.admin(`anonymous_id/${visitor}/events?limit=10`);
      return json?.events?.length >= 3 && json.events;
    }, { message: "both views and the click" });
    const click = events.find((e) => e.event === "Link Clicked");
    assert.equal(click?.properties.outbound, false, JSON.stringify(click));
    const view = (host) => events.find((e) => e.type === "page" && e.context.page.url.includes(host))?.context;
    const [docs, arrival] = [view("docs.portrait.test"), view("app.portrait.test")];
    assert.deepEqual(arrival.session, docs.session, "one session on both subdomains");
    assert.equal(arrival.channel, "email", JSON.stringify(arrival));
    assert.equal(arrival.campaign?.name, "Spring");
    assert.deepEqual(arrival.firstTouch, docs.firstTouch);
    assert.equal(arrival.firstTouch.channel, "email");
    await context.close();
  });

  test("the visit cookie: shared as soon as a page starts, kept small, and never handed to the visitor a reset() made", async (t) => {
    const hosts = ["www.portrait.test", "app.portrait.test", "docs.portrait.test"];
    const collector = await launchCollectorFor(hosts.map((host) => rig.site.origin.replace("127.0.0.1", host)));
    t.after(() => collector.stop());
    const context = await newContext(rig.browser);
    const options = { autocapture: { clicks: false, scroll: false, engagement: false, forms: false } };
    const open = async (host, query = "") => {
      const page = await context.newPage();
      await page.goto(rig.site.page("/visit", snippetPage({ collector: collector.url, options })).replace("127.0.0.1", host) + query);
      await page.waitForFunction(() => window.portrait.user && window.portrait.user().anonymousId);
      return page;
    };
    const views = async (page) => {
      const id = await anonymousId(page);
      await page.evaluate(() => window.portrait.flush());
      return eventually(async () => {
        const { json } = await collector.admin(`anonymous_id/${id}/events?limit=20`);
        return json?.events?.some((e) => e.type === "page" && e.context.page.url.startsWith(page.url().split("?")[0])) &&
          json.events.filter((e) => e.type === "page").map((e) => e.context);
      }, { message: `the views of ${page.url()}` });
    };
    // Long UTM values: the first touch and the campaign do not both fit the cookie.
    const www = await open("www.portrait.test", `?utm_source=google&utm_medium=cpc&gclid=OLDCLICK&utm_content=${"c".repeat(500)}&utm_term=${"t".repeat(500)}`);
    const cookie = (await context.cookies()).find((c) => c.name === "portrait_visit");
    assert.ok(cookie, "written when the page starts, not a second later");
    assert.ok(cookie.value.length <= 1_500, `${cookie.value.length} bytes`);
    // A second tab on another subdomain, at once: the same session, with its campaign.
    const app = await open("app.portrait.test");
    const [landing] = await views(www);
    const [arrival] = await views(app);
    assert.deepEqual(arrival.session, landing.session);
    assert.deepEqual([arrival.channel, arrival.campaign?.gclid], ["paid", "OLDCLICK"]);
    // Forgotten on www: app, which took the old visitor's session, and docs, new to the
    // visitor, give the next one nothing of theirs.
    await www.evaluate(() => window.portrait.reset());
    await www.close({ runBeforeUnload: true });
    await app.close({ runBeforeUnload: true });
    for (const host of ["app.portrait.test", "docs.portrait.test"]) {
      const page = await open(host);
      const [view] = (await views(page)).slice(-1);
      assert.notEqual(view.session.id, landing.session.id, `${host}: a session of the new visitor's`);
      assert.equal(view.campaign?.gclid, undefined, `${host}: ${JSON.stringify(view)}`);
      assert.equal(view.firstTouch?.gclid, undefined, `${host}: ${JSON.stringify(view)}`);
      await page.close();
    }
    await context.close();
  });

  test("an idle tab hidden does not take the shared session back to its own last activity", async () => {
    const context = await newContext(rig.browser);
    const visibility = `window.visibility = "visible";
      Object.defineProperty(document, "visibilityState", { get: () => window.visibility, configurable: true });
      Object.defineProperty(document, "hidden", { get: () => window.visibility === "hidden", configurable: true });`;
    const open = async (host) => {
      const page = await context.newPage();
      const html = snippetPage({ collector: rig.collector.url, options: { autocapture: false }, before: visibility });
      await page.goto(rig.site.page("/idle", html).replace("127.0.0.1", host));
      await page.waitForFunction(() => window.portrait.user && window.portrait.user().anonymousId);
      return page;
    };
    // The visit cookie's session line: `id.count.last_activity.campaign`.
    const shared = async () => {
      const cookie = (await context.cookies()).find((c) => c.name === "portrait_visit");
      const [id, , last] = decodeURIComponent(cookie.value).split("\n")[1].split(".");
      return { id, last: Number(last) };
    };
    const idle = await open("www.portrait.test");
    const active = await open("app.portrait.test");
    await active.waitForTimeout(200);
    const at = await active.evaluate(() => {
      const at = Date.now();
      window.portrait.track("Still Here");
      return at;
    });
    await eventually(async () => (await shared()).last >= at, { message: "the active tab's session shared" });
    const before = await shared();
    // Hidden, the idle tab stores its state (the session with it) at once.
    await idle.evaluate(() => {
      window.visibility = "hidden";
      document.dispatchEvent(new Event("visibilitychange"));
    });
    await idle.waitForTimeout(300);
    const after = await shared();
    assert.equal(after.id, before.id);
    assert.ok(after.last >= before.last, `last activity ${after.last} after the hide, ${before.last} before`);
    await context.close();
  });

  test("a user id another subdomain set does not take this origin's stored traits of another user", async () => {
    const context = await newContext(rig.browser);
    const html = snippetPage({ collector: rig.collector.url, options: { autocapture: false } });
    const visit = async (host, work) => {
      const page = await context.newPage();
      await page.goto(rig.site.page("/parties", html).replace("127.0.0.1", host));
      await page.waitForFunction(() => window.portrait.user && window.portrait.user().anonymousId);
      const seen = await page.evaluate(work);
      await page.close();
      return seen;
    };
    await visit("blog.portrait.test", () => {
      window.portrait.identify("earlier-user", { plan: "free" });
      window.portrait.group("earlier-group", { seats: 2 });
    });
    await visit("shop.portrait.test", () => {
      window.portrait.identify("later-user");
      window.portrait.group("later-group");
    });
    // Twice: the first visit stores the cookie's user here, and must not leave the earlier
    // user's traits beside it for the second to take.
    for (const time of ["first", "second"]) {
      const back = await visit("blog.portrait.test", () => [window.portrait.user(), window.portrait.group()]);
      assert.deepEqual([back[0].userId, back[0].traits], ["later-user", {}], `${time} visit: the cookie's user, without the earlier user's traits`);
      assert.deepEqual(back[1], { groupId: "later-group", traits: {} });
    }
    // A reset() on shop ends the user here too, on every later visit, and the interests this
    // origin kept for them.
    await visit("blog.portrait.test", () => localStorage.setItem("portrait.interests", "h1209600000,299:1700000000000"));
    await visit("shop.portrait.test", () => window.portrait.reset());
    for (const time of ["first", "second"]) {
      const back = await visit("blog.portrait.test", () => [
        window.portrait.user().userId,
        window.portrait.group().groupId,
        // What the new visitor's own page views earn is theirs.
        (localStorage.getItem("portrait.interests") ?? "").includes("299:1700000000000"),
      ]);
      assert.deepEqual(back, [null, null, false], `${time} visit after the reset elsewhere`);
    }
    await context.close();
  });
});

describe("SDK: switches and privacy options", () => {
  test("autocapture: false captures nothing on its own; explicit calls still go out", async () => {
    const body = `<a id="link" href="#x">link</a><form onsubmit="event.preventDefault()"><button id="send">send</button></form><div style="height: 4000px"></div>`;
    const html = snippetPage({ collector: rig.collector.url, body, options: { autocapture: false } });
    const { page, context } = await open("/quiet", html);
    await page.click("#link");
    await page.click("#send");
    await page.evaluate(() => {
      window.scrollTo(0, 4000);
      history.pushState({}, "", "/quiet/next");
    });
    await page.waitForTimeout(300);
    await page.evaluate(() => window.portrait.track("Explicit"));
    await page.evaluate(() => window.portrait.flush());
    const events = await timeline(await anonymousId(page), 1);
    assert.deepEqual(names(events), ["Explicit"]);
    await context.close();
  });

  test("with page views off, the site's own page() after its router navigated carries the new page", async () => {
    const html = snippetPage({ collector: rig.collector.url, options: { autocapture: { pageViews: false } } });
    const { page, context } = await open("/manual-views", html);
    await page.evaluate(async () => {
      history.pushState({}, "", "/manual-views/step-2");
      window.portrait.page("Docs", "Step 2");
      await window.portrait.flush();
    });
    const events = (await timeline(await anonymousId(page), 1)).filter((e) => e.type === "page");
    assert.equal(events.length, 1, "no automatic view");
    assert.equal(new URL(events[0].properties.url).pathname, "/manual-views/step-2");
    assert.equal(events[0].properties.path, "/manual-views/step-2");
    assert.equal(new URL(events[0].context.page.referrer).pathname, "/manual-views", "the previous URL is the referrer");
    await context.close();
  });

  test("storage: localStorage, cookieDays, batchBytes and respectDoNotTrack do what they say", async () => {
    const local = await open("/local-only", snippetPage({ collector: rig.collector.url, options: { storage: "localStorage" } }));
    await local.page.evaluate(() => window.portrait.flush());
    assert.deepEqual(await local.context.cookies(), [], "no cookie");
    assert.equal(await local.page.evaluate(() => localStorage.getItem("portrait.aid")), await anonymousId(local.page));
    await local.context.close();

    const days = await open("/cookie-days", snippetPage({ collector: rig.collector.url, options: { cookieDays: 2 } }));
    const cookie = (await days.context.cookies()).find((c) => c.name === "portrait_aid");
    const hours = (cookie.expires * 1000 - Date.now()) / 3_600_000;
    assert.ok(hours > 47 && hours <= 48, `expires in ${hours} h`);
    await days.context.close();

    const proxy = await startProxy(rig.collector.url);
    const options = { autocapture: false, batchSize: 500, flushInterval: 600_000, batchBytes: 1024 };
    const bytes = await open("/batch-bytes", snippetPage({ collector: proxy.url, options }));
    // Notes unlike each other (a beacon holds each string once): the 30 events take over 3 KB
    // in any beacon, more than three of 1 KB hold.
    await bytes.page.evaluate(() => {
      for (let i = 0; i < 30; i++) window.portrait.track("Sized", { note: `${i} ${"x".repeat(100)}`, i });
    });
    await eventually(() => proxy.beacons() > 0, { message: "a batch sent at 1 KB, long before 500 events or 10 minutes" });
    // What is left under 1 KB would wait the 10 minutes: flush() sends it, in beacons of 1 KB too.
    assert.equal(await bytes.page.evaluate(() => window.portrait.flush()), true);
    const beacons = () => proxy.seen.filter((r) => r.url.startsWith("/v1/b"));
    await eventually(() => beacons().reduce((sum, r) => sum + (r.answer?.accepted ?? 0), 0) === 30, { message: "the 30 events accepted" });
    assert.ok(beacons().length >= 3, `${beacons().length} beacons`);
    for (const beacon of beacons()) assert.ok((beacon.answer?.accepted ?? 0) < 30, `one beacon carried ${beacon.answer?.accepted} events`);
    await bytes.context.close();
    await proxy.stop();

    // A proxy of its own: nothing the pages before send late can count here.
    const dntProxy = await startProxy(rig.collector.url);
    const context = await newContext(rig.browser);
    await context.addInitScript(() => Object.defineProperty(Navigator.prototype, "doNotTrack", { get: () => "1" }));
    const { page } = await open("/dnt", snippetPage({ collector: dntProxy.url, options: { respectDoNotTrack: true } }), { context });
    await page.evaluate(() => window.portrait.track("Ignored"));
    await page.evaluate(() => window.portrait.flush());
    await page.waitForTimeout(300);
    assert.equal(await page.evaluate(() => window.portrait.consent.get().analytics), "denied");
    assert.equal(dntProxy.beacons(), 0, "a Do-Not-Track browser sends nothing");
    await context.close();
    await dntProxy.stop();
  });

  test("respectGlobalPrivacyControl: a GPC browser is treated as a refusal; nothing sent or stored", async () => {
    const proxy = await startProxy(rig.collector.url);
    const context = await newContext(rig.browser);
    await context.addInitScript(() => Object.defineProperty(Navigator.prototype, "globalPrivacyControl", { get: () => true }));
    const html = snippetPage({ collector: proxy.url, options: { respectGlobalPrivacyControl: true } });
    const { page } = await open("/gpc", html, { context });
    await page.evaluate(() => window.portrait.track("Ignored"));
    await page.evaluate(() => window.portrait.flush());
    await page.waitForTimeout(300);
    assert.equal(proxy.beacons(), 0);
    assert.equal(await page.evaluate(() => window.portrait.consent.get().analytics), "denied");
    assert.equal((await stats(page)).denied, 2);
    assert.deepEqual(await context.cookies(), []);
    await context.close();
    await proxy.stop();
  });

  test("storage: memory writes no cookie and nothing to localStorage, and still delivers", async () => {
    const html = snippetPage({ collector: rig.collector.url, options: { storage: "memory" } });
    // The SDK's timers run on the page's clock, stopped once the SDK is ready: moved on 3 s,
    // the coalesced write (1 s after the last event) has come.
    const context = await newContext(rig.browser);
    await context.clock.install();
    const { page } = await open("/cookieless", html, { context });
    await page.clock.pauseAt(Date.now() + 1_000);
    await page.evaluate(() => window.portrait.identify("user-mem", { plan: "free" }));
    await page.evaluate(() => window.portrait.flush());
    await page.clock.runFor(3_000); // past the coalesced write
    assert.deepEqual(await context.cookies(), []);
    assert.deepEqual(await page.evaluate(() => Object.keys(localStorage).filter((k) => k.startsWith("portrait."))), []);
    const events = await timeline(await anonymousId(page), 2);
    assert.deepEqual(names(events).sort(), ["identify", "page"]);
    await context.close();
  });
});

test("a refusal on a page without cookies (storage: memory or localStorage) clears what an earlier visit with them stored; a default's refusal there does not", async () => {
  for (const storage of ["memory", "localStorage"]) {
    const context = await newContext(rig.browser);
    const earlier = await open(`/stored-before-${storage}`, snippetPage({ collector: rig.collector.url, options: { autocapture: false } }), { context });
    await earlier.page.evaluate(() => window.portrait.consent.set(true));
    await earlier.page.evaluate(() => window.portrait.identify("user-before", { plan: "pro" }));
    await earlier.page.evaluate(() => window.portrait.flush());
    assert.ok((await storedKeys(earlier.page)).includes("portrait_uid"), "the earlier visit stored the user");
    await earlier.page.close();
    // A default's refusal does not override the visitor's grant: the page leaves what the
    // granted visit stored (in memory mode, where it reads no stored decision, too).
    const stored = await storedKeys((await open(`/denied-default-${storage}`, snippetPage({ collector: rig.collector.url, options: { autocapture: false, storage: "cookie" } }), { context })).page);
    const byDefault = await open(`/denied-by-default-${storage}`, snippetPage({ collector: rig.collector.url, options: { autocapture: false, storage, consent: "denied" } }), { context });
    assert.deepEqual((await storedKeys(byDefault.page)).sort(), stored.sort(), `${storage}: a default refusal clears nothing`);
    // Nor after a choice that is no refusal of analytics.
    await byDefault.page.evaluate(() => window.portrait.consent.set({ personalization: true }));
    assert.deepEqual((await storedKeys(byDefault.page)).sort(), stored.sort(), `${storage}: a grant clears nothing`);
    const html = snippetPage({ collector: rig.collector.url, options: { autocapture: false, storage } });
    const { page } = await open(`/refused-${storage}`, html, { context });
    await page.evaluate(() => window.portrait.consent.set(false));
    assert.deepEqual(await storedKeys(page), [], `${storage}: nothing of the visitor is left`);
    assert.deepEqual((await context.cookies()).map((c) => c.name), [], `${storage}: no cookie is left`);
    await context.close();
  }
});

test("reset() on a page without cookies (storage: memory or localStorage) forgets the visitor an earlier visit with them stored", async () => {
  for (const storage of ["memory", "localStorage"]) {
    const context = await newContext(rig.browser);
    const cookiePage = () => snippetPage({ collector: rig.collector.url, options: { autocapture: false } });
    const earlier = await open(`/signed-in-${storage}`, cookiePage(), { context });
    await earlier.page.evaluate(() => window.portrait.identify("user-before", { plan: "pro" }));
    const before = await earlier.page.evaluate(() => window.portrait.user());
    const sessionBefore = await earlier.page.evaluate(() => localStorage.getItem("portrait.session")?.split(".")[0]);
    assert.ok(sessionBefore, "the earlier visit stored its session");
    await earlier.page.evaluate(() => window.portrait.flush());
    await earlier.page.close();
    const { page } = await open(`/reset-${storage}`, snippetPage({ collector: rig.collector.url, options: { autocapture: false, storage } }), { context });
    await page.evaluate(() => window.portrait.reset());
    await page.close();
    const next = await open(`/after-reset-${storage}`, cookiePage(), { context });
    const after = await next.page.evaluate(() => window.portrait.user());
    assert.equal(after.userId, null, `${storage}: the user is forgotten`);
    assert.notEqual(after.anonymousId, before.anonymousId, `${storage}: so is the anonymous id`);
    const session = (p) => p.evaluate(() => localStorage.getItem("portrait.session")?.split(".")[0]);
    assert.notEqual(await session(next.page), sessionBefore, `${storage}: and the session`);
    await context.close();
  }
});

describe("SDK: remote settings", () => {
  test("remoteSettings: false fetches no settings, in the snippet or after", async () => {
    const proxy = await startProxy(rig.collector.url);
    const html = snippetPage({ collector: proxy.url, options: { remoteSettings: false, autocapture: false } });
    const { page, context } = await open("/no-settings", html);
    await page.evaluate(() => window.portrait.track("Local Only"));
    assert.equal(await page.evaluate(() => window.portrait.flush()), true);
    assert.deepEqual(proxy.seen.map((r) => r.url.split("?")[0]), ["/v1/b"]);
    await context.close();
    await proxy.stop();
  });

  test("settings that hang do not hold the SDK back: it starts with consent pending, and takes the settings' default when they come", async () => {
    const proxy = await startProxy(rig.collector.url);
    const release = proxy.holdSettings();
    try {
      const html = snippetPage({ collector: proxy.url, options: { autocapture: false } });
      const { page, context } = await open("/hung-settings", html);
      await page.evaluate(() => window.portrait.track("Before Ready"));
      await page.evaluate(() => new Promise((resolve) => window.portrait.ready(resolve)));
      const settings = proxy.seen.filter((r) => r.url.startsWith("/v1/config"));
      assert.equal(settings.length, 1, "the snippet asked for them");
      assert.equal(settings[0].status, undefined, "ready came while their answer was held");
      // The settings might ask for consent first: until they come, nothing is stored or sent.
      assert.equal(await page.evaluate(() => window.portrait.consent.get().analytics), "pending");
      await page.evaluate(() => window.portrait.track("After Ready"));
      await page.waitForTimeout(300);
      assert.equal(proxy.beacons(), 0, "nothing sent");
      assert.deepEqual((await context.cookies()).filter((c) => c.name.startsWith("portrait_")), [], "nothing stored");
      // They come, with the collector's default (granted): the held events go.
      release();
      await page.waitForFunction(() => window.portrait.consent.get().analytics === "granted");
      const id = await anonymousId(page);
      await page.close({ runBeforeUnload: true });
      assert.deepEqual(names(await timeline(id, 2)).sort(), ["After Ready", "Before Ready"]);
      await context.close();
    } finally {
      release();
      await proxy.stop();
    }
  });

  /** Runs `body({collector, proxy, release})` against a collector launched with `config`
   * behind a proxy that holds its settings until `release()`; stops both after. */
  async function withHeldSettings(config, body) {
    const collector = await launchCollectorFor(rig.site.origin, config);
    const proxy = await startProxy(collector.url);
    const release = proxy.holdSettings();
    try {
      await body({ collector, proxy, release });
    } finally {
      release();
      await proxy.stop();
      await collector.stop();
    }
  }

  test("settings that hang may ask to respect Global Privacy Control: a GPC browser's events wait for them, and go nowhere when they do", async () => {
    await withHeldSettings("respect_global_privacy_control = true", async ({ proxy, release }) => {
      const context = await newContext(rig.browser);
      await context.addInitScript(() => Object.defineProperty(Navigator.prototype, "globalPrivacyControl", { get: () => true }));
      // The page grants by default; only the collector's settings say to respect GPC.
      const html = snippetPage({ collector: proxy.url, options: { consent: "granted", flushInterval: 100 } });
      const { page } = await open("/gpc-late", html, { context });
      await page.evaluate(() => new Promise((resolve) => window.portrait.ready(resolve)));
      assert.equal(await page.evaluate(() => window.portrait.consent.get().analytics), "pending", "held until the settings say");
      await page.evaluate(() => window.portrait.track("Before The Settings"));
      await page.waitForTimeout(300);
      assert.equal(proxy.beacons(), 0);
      release();
      await page.waitForFunction(() => window.portrait.consent.get().analytics === "denied");
      await page.evaluate(() => window.portrait.flush());
      await page.waitForTimeout(300);
      assert.equal(proxy.beacons(), 0, "nothing ever sent");
      await context.close();
    });
  });

  test("a visitor who grants analytics while the settings hang gets personalisation from the default they bring, on this page and the next", async () => {
    await withHeldSettings("", async ({ proxy, release }) => {
      const html = snippetPage({ collector: proxy.url, options: { autocapture: false } });
      const { page, context } = await open("/late-choice", html);
      const consent = () => page.evaluate(() => window.portrait.consent.get());
      await page.evaluate(() => new Promise((resolve) => window.portrait.ready(resolve)));
      assert.deepEqual(await consent(), { analytics: "pending", personalization: "pending" });
      await page.evaluate(() => window.portrait.consent.set({ analytics: true }));
      release();
      await page.waitForFunction(() => window.portrait.consent.get().personalization === "granted");
      assert.equal(await page.evaluate(() => localStorage.getItem("portrait.consent")), "analytics=granted", "the decision alone stored");
      await page.reload();
      await page.evaluate(() => new Promise((resolve) => window.portrait.ready(resolve)));
      assert.deepEqual(await consent(), { analytics: "granted", personalization: "granted" });
      await context.close();
    });
  });

  test("settings that hang and switch clicks off: the clicks captured meanwhile never leave, and later ones are not captured", async () => {
    await withHeldSettings("autocapture = { clicks = false }", async ({ collector: noClicks, proxy, release }) => {
      const html = snippetPage({ collector: proxy.url, options: { consent: "granted" }, body: `<button id="b">Buy</button>` });
      const { page, context } = await open("/late-no-clicks", html);
      await page.evaluate(() => new Promise((resolve) => window.portrait.ready(resolve)));
      await page.click("#b");
      await page.evaluate(() => window.portrait.track("Kept"));
      release();
      await page.waitForFunction(() => window.portrait.consent.get().analytics === "granted");
      await eventually(() => page.evaluate(() => window.portrait.stats().denied === 1), { message: "the click taken off" });
      await page.click("#b");
      await page.evaluate(() => window.portrait.flush());
      const id = await anonymousId(page);
      await page.close({ runBeforeUnload: true });
      const events = await eventually(async () => {
        const { json } = await noClicks.admin(`anonymous_id/${id}/events?limit=100`);
        return json?.events?.some((e) => e.event === "Kept") && json.events;
      }, { message: "the events delivered" });
      assert.ok(names(events).includes("page"), "the page view kept");
      assert.equal(names(events).filter((name) => name === "Button Clicked").length, 0, JSON.stringify(names(events)));
      await context.close();
    });
  });

  test("settings that hang and switch clicks off: a click the page's middleware holds when they come is not recorded when it passes it on", async () => {
    await withHeldSettings("autocapture = { clicks = false }", async ({ collector: noClicks, proxy, release }) => {
      const html = snippetPage({
        collector: proxy.url,
        options: { autocapture: { scroll: false, engagement: false, forms: false } },
        body: `<button id="b">Buy</button>`,
        before: `window.held = [];
          portrait.addSourceMiddleware(({ payload, next }) => {
            if (payload.obj.event === "Button Clicked") return window.held.push(() => next(payload));
            next(payload);
          });`,
      });
      const { page, context } = await open("/late-mw-click", html);
      await page.evaluate(() => new Promise((resolve) => window.portrait.ready(resolve)));
      await page.click("#b");
      await page.waitForFunction(() => window.held.length === 1);
      release();
      // The settings' consent default (granted) comes with their switches.
      await page.waitForFunction(() => window.portrait.consent.get().analytics === "granted");
      await page.evaluate(() => window.held[0]());
      await page.evaluate(() => window.portrait.track("Kept"));
      await page.evaluate(() => window.portrait.flush());
      const stats = await page.evaluate(() => window.portrait.stats());
      assert.equal(stats.denied, 1, "the held click counted as denied");
      assert.equal(stats.captured, stats.delivered + stats.denied + stats.refused + stats.queued + stats.held, JSON.stringify(stats));
      const id = await anonymousId(page);
      const events = await eventually(async () => {
        const { json } = await noClicks.admin(`anonymous_id/${id}/events?limit=100`);
        return json?.events?.some((e) => e.event === "Kept") && json.events;
      }, { message: "the events delivered" });
      assert.deepEqual(names(events).filter((name) => name === "Button Clicked"), []);
      await context.close();
    });
  });

  test("the collector's settings apply: consent pending by default, clicks not captured; load's options win", async () => {
    const configured = await launchCollectorFor(
      rig.site.origin,
      `consent_default = "pending"\nautocapture = { clicks = false }`,
    );
    try {
      const body = `<button id="b">Buy</button>`;
      const html = snippetPage({ collector: configured.url, body });
      const { page, context } = await open("/remote", html);
      assert.equal(await page.evaluate(() => window.portrait.consent.get().analytics), "pending");
      await page.click("#b");
      await page.evaluate(() => window.portrait.consent.set({ analytics: true }));
      await page.evaluate(() => window.portrait.flush());
      const { json } = await configured.admin(`anonymous_id/${await anonymousId(page)}/events`);
      assert.deepEqual(names(json.events).sort(), ["Consent Updated", "page"], "no click event, held events sent on grant");
      await context.close();
      // The page's own options override the remote ones.
      const overriding = snippetPage({ collector: configured.url, body, options: { consent: "granted", autocapture: { clicks: true } } });
      const second = await open("/remote-override", overriding);
      assert.equal(await second.page.evaluate(() => window.portrait.consent.get().analytics), "granted");
      await second.page.click("#b");
      await second.page.evaluate(() => window.portrait.flush());
      const events = (await configured.admin(`anonymous_id/${await anonymousId(second.page)}/events`)).json.events;
      assert.deepEqual(names(events).sort(), ["Button Clicked", "page"]);
      await second.context.close();
    } finally {
      await configured.stop();
    }
  });
});

describe("SDK: consent", () => {
  test("pending holds events in memory (nothing stored, nothing sent); granting sends them and the change", async () => {
    const proxy = await startProxy(rig.collector.url);
    const html = snippetPage({ collector: proxy.url, options: { consent: "pending" } });
    const { page, context } = await open("/consent", html);
    await page.evaluate(() => window.portrait.track("Before Consent"));
    await page.waitForFunction(() => window.portrait.stats().held === 2); // the page view's wait for a page() call is over too
    assert.equal(proxy.beacons(), 0, "nothing sent");
    assert.deepEqual(await storedKeys(page), [], "nothing stored");
    assert.equal((await stats(page)).held, 2);
    await page.evaluate(() => window.portrait.consent.set({ analytics: true, personalization: true }));
    await page.evaluate(() => window.portrait.flush());
    const events = (await timeline(await anonymousId(page), 3)).reverse();
    assert.deepEqual(names(events), ["page", "Before Consent", "Consent Updated"]);
    assert.deepEqual(events[2].properties, { analytics: "granted", personalization: "granted" });
    assert.ok((await storedKeys(page)).includes("portrait.aid"), "ids stored once granted");
    await context.close();
    await proxy.stop();
  });

  test("denying while pending drops the held events, unsent, and counts them", async () => {
    const proxy = await startProxy(rig.collector.url);
    const html = snippetPage({ collector: proxy.url, options: { consent: "pending" } });
    const { page, context } = await open("/pending-deny", html);
    await page.evaluate(() => {
      window.portrait.track("Held One");
      window.portrait.track("Held Two");
    });
    await page.waitForFunction(() => window.portrait.stats().held === 3); // the page view comes after its wait
    assert.equal((await stats(page)).denied, 0);
    await page.evaluate(() => window.portrait.consent.set({ analytics: "denied" }));
    await page.evaluate(() => window.portrait.flush());
    await page.waitForTimeout(300);
    const counters = await stats(page);
    assert.equal(counters.held, 0);
    assert.equal(counters.denied, 4, "the three held, and the consent change itself (not recorded once refused)");
    assert.equal(proxy.beacons(), 0);
    assert.deepEqual(await storedKeys(page), []);
    await context.close();
    await proxy.stop();
  });

  test("denying after granting drops what is queued and clears the SDK's storage; the refusal is remembered", async () => {
    const proxy = await startProxy(rig.collector.url);
    const html = snippetPage({ collector: proxy.url, options: { consent: "granted" } });
    const { page, context } = await open("/deny", html);
    await page.evaluate(() => window.portrait.flush());
    assert.ok((await storedKeys(page)).length > 0);
    const sentBefore = proxy.beacons();
    await page.evaluate(() => {
      window.portrait.consent.set({ analytics: "denied" });
      window.portrait.track("After Refusal");
    });
    await page.evaluate(() => window.portrait.flush());
    await page.waitForTimeout(300);
    assert.equal(proxy.beacons(), sentBefore, "nothing sent after the refusal");
    assert.deepEqual(await storedKeys(page), []);
    await page.reload();
    await page.waitForFunction(() => window.portrait.consent && window.portrait.consent.get());
    assert.equal(await page.evaluate(() => window.portrait.consent.get().analytics), "denied");
    await page.waitForTimeout(300);
    assert.equal(proxy.beacons(), sentBefore, "still nothing sent on the next page");
    await context.close();
    await proxy.stop();
  });

  test("a page shown again from the back/forward cache follows what the site's other pages stored meanwhile (a reset(): no user written back)", async () => {
    // Headless Chromium keeps no page in the back/forward cache here, so the cached page is
    // one that gets no `storage` events (a cached page gets none; stopped by a listener
    // added before the SDK's) and is then shown again (`pageshow`); the other page is a real
    // one, in the same browser. (A refusal is followed the same way, by the same call.)
    const before = `window.addEventListener("storage", (event) => window.cached && event.stopImmediatePropagation());`;
    const html = snippetPage({ collector: rig.collector.url, options: { consent: "granted", autocapture: false }, before });
    const { page: cached, context } = await open("/bf-cached", html);
    await cached.evaluate(() => { window.portrait.identify("bf-user", { plan: "pro" }); window.cached = true; });
    const { page: other } = await open("/bf-other", html, { context });
    await other.evaluate(() => window.portrait.reset());
    const next = await anonymousId(other);
    await cached.waitForTimeout(200);
    assert.equal(await cached.evaluate(() => window.portrait.user().userId), "bf-user", "nothing followed while cached");
    await cached.evaluate(() => window.dispatchEvent(new PageTransitionEvent("pageshow", { persisted: true })));
    assert.deepEqual(await cached.evaluate(() => window.portrait.user()), { anonymousId: next, userId: null, traits: {} });
    await cached.evaluate(() => window.portrait.track("After Restore"));
    await cached.evaluate(() => window.portrait.flush());
    assert.equal(await cached.evaluate(() => localStorage.getItem("portrait.uid")), null, "the user not written back");
    assert.deepEqual(names(await timeline(next, 1)), ["After Restore"]);
    await context.close();
  });

  test("a refusal in one tab holds at once in the site's other tabs, and stays remembered; the user forgotten in both; a grant in the other tab then holds in both", async () => {
    const proxy = await startProxy(rig.collector.url);
    const html = snippetPage({ collector: proxy.url, options: { consent: "granted", autocapture: false } });
    const { page, context } = await open("/tab-one", html);
    const { page: other } = await open("/tab-two", html, { context });
    await page.evaluate(() => window.portrait.identify("refusing-user", { plan: "pro" }).group("refusing-co"));
    await eventually(() => other.evaluate(() => window.portrait.user().userId === "refusing-user"), { message: "the other tab follows the sign-in" });
    const visitor = await anonymousId(page);
    await page.evaluate(() => window.portrait.consent.set({ analytics: "denied" }));
    await eventually(() => other.evaluate(() => window.portrait.consent.get().analytics === "denied"), { message: "the other tab follows" });
    // The storage is cleared, and with it who the user is: in the refusing tab as in the
    // other (which follows the removal); the anonymous id stays.
    await eventually(() => other.evaluate(() => window.portrait.user().userId === null), { message: "the other tab forgets the user" });
    for (const tab of [page, other]) {
      assert.deepEqual(await tab.evaluate(() => window.portrait.user()), { anonymousId: visitor, userId: null, traits: {} });
      assert.equal(await tab.evaluate(() => window.portrait.group().groupId), null);
    }
    const sentBefore = proxy.beacons();
    await other.evaluate(() => window.portrait.track("After Refusal Elsewhere"));
    await other.evaluate(() => window.portrait.flush());
    await other.waitForTimeout(300);
    assert.equal(proxy.beacons(), sentBefore, "nothing sent by the other tab");
    assert.equal(await other.evaluate(() => localStorage.getItem("portrait.consent")), "analytics=denied", "the decision alone stored");
    // The visitor changes their mind in the other tab: the last decision wins in both (the
    // first tab's own record of its refusal must not be written back over it).
    await other.evaluate(() => window.portrait.consent.set({ analytics: "granted" }));
    await eventually(() => page.evaluate(() => window.portrait.consent.get().analytics === "granted"), { message: "the first tab follows the grant" });
    await page.evaluate(() => window.portrait.track("After Grant Elsewhere"));
    await page.evaluate(() => window.portrait.flush());
    for (const tab of [page, other]) {
      assert.equal(await tab.evaluate(() => window.portrait.consent.get().analytics), "granted");
      assert.equal(await tab.evaluate(() => localStorage.getItem("portrait.consent")), "analytics=granted");
      assert.equal(await anonymousId(tab), visitor);
    }
    await context.close();
    await proxy.stop();
  });

  test("a decision the default had made already is stored and recorded: another tab, or a later default, cannot take it for undecided", async () => {
    const html = snippetPage({ collector: rig.collector.url, options: { autocapture: false } });
    const { page, context } = await open("/explicit-grant", html);
    await page.evaluate(() => window.portrait.consent.set({ analytics: true }));
    await page.evaluate(() => window.portrait.flush());
    assert.equal(await page.evaluate(() => localStorage.getItem("portrait.consent")), "analytics=granted");
    const { json } = await rig.collector.admin(`anonymous_id/${await anonymousId(page)}/events`);
    const recorded = json.events.filter((e) => e.event === "Consent Updated");
    assert.deepEqual(recorded.map((e) => e.properties), [{ analytics: "granted", personalization: "granted" }]);
    await context.close();
  });

  test("an identify made while consent is pending survives a grant given in another tab", async () => {
    // Nothing is stored while consent is pending, so the user id lives in this tab's memory;
    // the grant in the other tab stores that tab's visitor, which this tab follows, and must
    // not take the user id with it.
    const html = snippetPage({ collector: rig.collector.url, options: { consent: "pending", autocapture: false } });
    const { page, context } = await open("/pending-one", html);
    const { page: other } = await open("/pending-two", html, { context });
    await page.evaluate(() => window.portrait.identify("pending-user-1", { plan: "team" }));
    await other.evaluate(() => window.portrait.consent.set({ analytics: "granted", personalization: "granted" }));
    await eventually(() => page.evaluate(() => window.portrait.consent.get().analytics === "granted"), { message: "the tab follows the grant" });
    await eventually(async () => (await anonymousId(page)) === (await anonymousId(other)), { message: "one visitor in both tabs" });
    assert.deepEqual(await page.evaluate(() => window.portrait.user()), {
      anonymousId: await anonymousId(other), userId: "pending-user-1", traits: { plan: "team" },
    });
    await page.evaluate(() => window.portrait.track("After Grant Elsewhere"));
    assert.equal(await page.evaluate(() => window.portrait.flush()), true);
    const events = await timeline(await anonymousId(page), 2);
    assert.equal(events.find((e) => e.event === "After Grant Elsewhere")?.userId, "pending-user-1");
    // Stored now, so the other tab follows the user too.
    await eventually(() => other.evaluate(() => window.portrait.user().userId === "pending-user-1"), { message: "the other tab follows the user" });
    await context.close();
  });

  test("an identify made while consent is pending gives way to another tab's later sign-in or reset()", async () => {
    const pending = snippetPage({ collector: rig.collector.url, options: { consent: "pending", autocapture: false } });
    const granted = snippetPage({ collector: rig.collector.url, options: { consent: "granted", autocapture: false } });
    const user = (tab) => tab.evaluate(() => window.portrait.user().userId);
    // A grant, then a sign-in in the other tab: its user is the visitor's in both tabs.
    // (A sign-in in the very task of the grant may lose to this tab's identify, which it
    // stores on the grant: tabs see each other's writes late, in their own order.)
    {
      const { page, context } = await open("/pending-then-bob", pending);
      const { page: other } = await open("/grant-and-bob", pending, { context });
      await page.evaluate(() => window.portrait.identify("alice", { who: "alice" }));
      await other.evaluate(() => window.portrait.consent.set({ analytics: "granted", personalization: "granted" }));
      await eventually(() => other.evaluate(() => localStorage.getItem("portrait.uid") === "alice"), { message: "the grant stores the pending identify" });
      await other.evaluate(() => window.portrait.identify("bob", { who: "bob" }));
      await eventually(async () => (await user(page)) === "bob", { message: "the tab follows the later sign-in" });
      await page.waitForTimeout(300);
      assert.deepEqual([await user(page), await user(other)], ["bob", "bob"]);
      assert.equal(await page.evaluate(() => localStorage.getItem("portrait.uid")), "bob");
      assert.deepEqual(await page.evaluate(() => window.portrait.user().traits), { who: "bob" });
      await context.close();
    }
    // A user another tab stored before: this tab's identify while pending stands while the
    // other tab does other things (a group call), and through a restore from the
    // back/forward cache with nothing changed meanwhile.
    {
      const { page, context } = await open("/storing-u2", granted);
      const { page: other } = await open("/pending-u1", pending, { context });
      await page.evaluate(() => window.portrait.identify("u2", { who: "u2" }));
      await eventually(async () => (await user(other)) === "u2", { message: "the pending tab follows the stored user" });
      await other.evaluate(() => window.portrait.identify("u1", { who: "u1" }));
      await page.evaluate(() => window.portrait.group("g1"));
      await eventually(() => other.evaluate(() => window.portrait.group().groupId === "g1"), { message: "the group followed" });
      await other.evaluate(() => window.dispatchEvent(new PageTransitionEvent("pageshow", { persisted: true })));
      assert.deepEqual(await other.evaluate(() => [window.portrait.user().userId, window.portrait.user().traits]), ["u1", { who: "u1" }]);
      await context.close();
    }
    // A reset() in a tab that stores: a sign-out holds in every tab.
    {
      const { page, context } = await open("/pending-then-reset", pending);
      const { page: other } = await open("/storing-resets", granted, { context });
      await page.evaluate(() => window.portrait.identify("alice", { who: "alice" }));
      await other.evaluate(() => window.portrait.reset());
      await eventually(async () => (await user(page)) === null, { message: "the tab follows the reset" });
      assert.deepEqual(await page.evaluate(() => window.portrait.user().traits), {});
      await context.close();
    }
  });

  test("a tab follows another tab's sign-in and sign-out by what localStorage holds, however late that tab's cookies come", async () => {
    const html = snippetPage({ collector: rig.collector.url, options: { consent: "granted", autocapture: false } });
    const { page, context } = await open("/late-cookie-one", html);
    const { page: other } = await open("/late-cookie-two", html, { context });
    await page.evaluate(() => window.portrait.identify("alice", { who: "alice" }));
    await eventually(() => other.evaluate(() => window.portrait.user().userId === "alice"), { message: "the other tab follows alice" });
    // The other tab's user cookie reaches the browser's cookie store half a second late:
    // nothing orders cookie writes with `localStorage` writes between tabs.
    await other.evaluate(() => {
      const cookie = Object.getOwnPropertyDescriptor(Document.prototype, "cookie");
      Object.defineProperty(document, "cookie", {
        configurable: true,
        get: () => cookie.get.call(document),
        set: (text) => (text.startsWith("portrait_uid=") ? setTimeout(() => cookie.set.call(document, text), 500) : cookie.set.call(document, text)),
      });
    });
    await other.evaluate(() => window.portrait.identify("bob", { who: "bob" }));
    await eventually(() => page.evaluate(() => window.portrait.user().userId === "bob"), { message: "the tab follows the sign-in" });
    assert.deepEqual(await page.evaluate(() => window.portrait.user().traits), { who: "bob" });
    await other.evaluate(() => window.portrait.reset());
    await eventually(() => page.evaluate(() => window.portrait.user().userId === null), { message: "the tab follows the sign-out" });
    await context.close();
  });

  test("a sign-in and a reset() in one tab hold in the site's other tabs: their next events are the visitor's as stored now", async () => {
    const html = snippetPage({ collector: rig.collector.url, options: { autocapture: false } });
    const { page, context } = await open("/who-one", html);
    const { page: other } = await open("/who-two", html, { context });
    const first = await anonymousId(page);
    assert.equal(await anonymousId(other), first);
    await page.evaluate(() => window.portrait.identify("signed-in-elsewhere-1", { plan: "pro" }));
    await eventually(() => other.evaluate(() => window.portrait.user().userId === "signed-in-elsewhere-1"), { message: "the other tab follows the sign-in" });
    assert.deepEqual(await other.evaluate(() => window.portrait.user()), { anonymousId: first, userId: "signed-in-elsewhere-1", traits: { plan: "pro" } });
    await other.evaluate(() => window.portrait.track("Signed In Elsewhere"));

    await page.evaluate(() => window.portrait.reset());
    const second = await anonymousId(page);
    await eventually(() => other.evaluate((id) => window.portrait.user().anonymousId === id, second), { message: "the other tab follows the reset" });
    assert.deepEqual(await other.evaluate(() => window.portrait.user()), { anonymousId: second, userId: null, traits: {} });
    await other.evaluate(() => window.portrait.track("Signed Out Elsewhere"));
    assert.equal(await other.evaluate(() => window.portrait.flush()), true);
    const signedIn = (await timeline(first, 2)).find((e) => e.event === "Signed In Elsewhere");
    assert.equal(signedIn?.userId, "signed-in-elsewhere-1");
    const [signedOut] = await timeline(second, 1);
    assert.equal(signedOut.event, "Signed Out Elsewhere");
    assert.equal(signedOut.anonymousId, second);
    assert.equal(signedOut.userId ?? null, null, "the forgotten user is not on the new visitor's events");
    const storedSession = await page.evaluate(() => localStorage.getItem("portrait.session"));
    assert.equal(String(signedOut.context.session.id), storedSession.split(".")[0], "the new visitor's session, as the resetting tab stored it");
    // Neither tab wrote the forgotten visitor back.
    await other.evaluate(() => window.portrait.identify(undefined, { seen: true }));
    assert.equal(await page.evaluate(() => localStorage.getItem("portrait.uid")), null);
    assert.equal(await page.evaluate(() => localStorage.getItem("portrait.aid")), second);

    // With analytics refused, a reset stores no new id. Granted in the resetting tab: the
    // other tab, which starts storing too, must not write back the id it had. Granted in the
    // other tab, which stores that id (it could not know of the reset): the resetting tab must
    // not take the forgotten id back. Either way every tab ends with the reset's id.
    const ids = () => Promise.all([anonymousId(page), anonymousId(other), page.evaluate(() => localStorage.getItem("portrait.aid"))]);
    for (const [granting, where] of [[page, "the resetting tab"], [other, "the other tab"]]) {
      await page.evaluate(() => window.portrait.consent.set({ analytics: "denied" }));
      await eventually(() => other.evaluate(() => window.portrait.consent.get().analytics === "denied"), { message: "the refusal followed" });
      await page.evaluate(() => window.portrait.reset());
      const reset = await anonymousId(page);
      await other.waitForTimeout(300);
      await granting.evaluate(() => window.portrait.consent.set({ analytics: "granted" }));
      await eventually(async () => (await ids()).every((id) => id === reset), { message: `granted in ${where}: every tab and the store on the reset's id`, describe: async () => JSON.stringify(await ids()) });
      await page.waitForTimeout(300);
      assert.deepEqual(await ids(), [reset, reset, reset], where);
    }
    await context.close();
  });

  test("events stored by an earlier page wait, unsent and in place, while consent is pending; granting sends them once", async () => {
    const proxy = await startProxy(rig.collector.url);
    const options = { autocapture: false, flushInterval: 200 };
    const granted = snippetPage({ collector: proxy.url, options: { ...options, consent: "granted" } });
    const { page, context } = await open("/stored-then-pending", granted);
    const id = await anonymousId(page);
    proxy.setDown(true);
    await page.evaluate(() => {
      for (let i = 0; i < 25; i++) window.portrait.track("Stored", { i }); // more than a batch
    });
    // Failed sends, then the queue is stored.
    await page.waitForFunction(() => Object.keys(localStorage).some((k) => k.startsWith("portrait.q.")));
    const queues = () => page.evaluate(() => Object.keys(localStorage).filter((k) => k.startsWith("portrait.q.")));
    const [stored] = await queues();
    assert.ok(stored, "the queue is in localStorage");

    const pending = snippetPage({ collector: proxy.url, options: { ...options, consent: "pending" } });
    await page.goto(rig.site.page("/stored-then-pending/next", pending));
    await page.waitForFunction(() => window.portrait.user && window.portrait.user().anonymousId);
    proxy.setDown(false);
    const sentBefore = proxy.beacons();
    await page.evaluate(() => window.portrait.flush());
    await page.waitForTimeout(500);
    assert.equal(proxy.beacons(), sentBefore, "nothing sent while pending");
    assert.deepEqual(await queues(), [stored], "the stored queue is neither sent nor moved");

    await page.evaluate(() => window.portrait.consent.set({ analytics: "granted" }));
    await page.evaluate(() => window.portrait.flush());
    const events = await timeline(id, 26);
    assert.deepEqual(events.filter((e) => e.event === "Stored").map((e) => e.properties.i).sort((a, b) => a - b), [...Array(25).keys()]);
    await page.waitForTimeout(300);
    assert.equal((await rig.collector.profile("anonymous_id", id)).json.eventCount, 26, "25 stored, the consent change; once each");
    await context.close();
    await proxy.stop();
  });

  test("back to pending after a grant, queued events wait unsent (flush() answers false); granted again, they go", async () => {
    const proxy = await startProxy(rig.collector.url);
    const html = snippetPage({ collector: proxy.url, options: { autocapture: false, consent: "granted" } });
    const { page, context } = await open("/pending-again", html);
    const answered = await page.evaluate(() => {
      window.portrait.track("Queued Before Pending");
      window.portrait.consent.set({ analytics: "pending" });
      return window.portrait.flush();
    });
    assert.equal(answered, false);
    assert.equal(proxy.beacons(), 0, "nothing sent while pending");
    await page.evaluate(() => window.portrait.consent.set({ analytics: "granted" }));
    assert.equal(await page.evaluate(() => window.portrait.flush()), true);
    const sent = names(await timeline(await anonymousId(page), 2));
    assert.equal(sent.filter((name) => name === "Queued Before Pending").length, 1, JSON.stringify(sent));
    await context.close();
    await proxy.stop();
  });

  test("a refusal sent with a consent tool's own categories holds; refused then granted, the visitor keeps their id", async () => {
    const html = snippetPage({ collector: rig.collector.url, options: { autocapture: false }, before: recordErrors("message") });
    const { page, context } = await open("/consent-tool", html);
    const id = await anonymousId(page);
    await page.evaluate(() => window.portrait.consent.set({ analytics: false, marketing: false }));
    assert.equal(await page.evaluate(() => window.portrait.consent.get().analytics), "denied");
    assert.match((await reported(page))[0], /unknown consent category `marketing`/);
    assert.deepEqual(await storedKeys(page), [], "the refusal cleared storage");
    await page.evaluate(() => window.portrait.consent.set({ analytics: true }));
    await page.evaluate(() => window.portrait.track("After Grant"));
    await page.evaluate(() => window.portrait.flush());
    assert.equal(await anonymousId(page), id);
    await page.reload();
    await page.waitForFunction(() => window.portrait.user && window.portrait.user().anonymousId);
    assert.equal(await anonymousId(page), id, "the id was stored again on the grant");
    assert.ok(names(await timeline(id, 2)).includes("After Grant"));
    await context.close();
  });

  test("a misspelt consent or storage option is reported and read as its most private value", async () => {
    const proxy = await startProxy(rig.collector.url);
    const html = snippetPage({
      collector: proxy.url,
      options: { consent: "deny", storage: "cookieless" },
      before: recordErrors(),
    });
    const { page, context } = await open("/misspelt", html);
    assert.deepEqual(await reported(page), ["storage", "consent"]);
    assert.equal(await page.evaluate(() => window.portrait.consent.get().analytics), "pending", "not the collector's default (granted): nothing sent until the site decides");
    await page.evaluate(() => window.portrait.consent.set({ analytics: "granted" }));
    await page.evaluate(() => window.portrait.flush());
    assert.ok(proxy.beacons() > 0, "granted, it sends");
    assert.deepEqual(await storedKeys(page), [], "memory only: no cookie, nothing in localStorage");
    await context.close();
    await proxy.stop();
  });

  test("a consent default in the collector's settings this SDK cannot read is reported and read as pending, on time or late", async () => {
    const proxy = await startProxy(rig.collector.url);
    proxy.changeSettings({ consent_default: "ask" });
    const html = snippetPage({ collector: proxy.url, before: recordErrors() });
    const { page, context } = await open("/unreadable-default", html);
    assert.deepEqual(await reported(page), ["consent_default"]);
    assert.equal(await page.evaluate(() => window.portrait.consent.get().analytics), "pending", "not granted");
    await context.close();
    // Settings that come after the SDK started without them: the same.
    const release = proxy.holdSettings();
    const late = await open("/unreadable-default-late", html);
    await late.page.evaluate(() => new Promise((resolve) => window.portrait.ready(resolve)));
    release();
    await late.page.waitForFunction(() => window.portrait.stats().errors > 0);
    assert.deepEqual(await reported(late.page), ["consent_default"]);
    assert.equal(await late.page.evaluate(() => window.portrait.consent.get().analytics), "pending");
    await late.context.close();
    await proxy.stop();
  });

  test("consent as a boolean is a decision; a storage option that is no name is reported", async () => {
    const proxy = await startProxy(rig.collector.url);
    const html = snippetPage({ collector: proxy.url, options: { consent: false, storage: false }, before: recordErrors() });
    const { page, context } = await open("/boolean-options", html);
    assert.deepEqual(await reported(page), ["storage"]);
    assert.equal(await page.evaluate(() => window.portrait.consent.get().analytics), "denied", "`false` refuses");
    await page.evaluate(() => window.portrait.track("Refused"));
    await page.evaluate(() => window.portrait.flush());
    assert.ok((await stats(page)).denied > 0);
    assert.equal(proxy.beacons(), 0);
    assert.deepEqual(await storedKeys(page), []);
    await context.close();
    await proxy.stop();
  });
});

test("options stated with values the SDK cannot read are reported: numbers keep their defaults, switches read as the more private", async () => {
  const proxy = await startProxy(rig.collector.url);
  const options = {
    maxQueueEvents: "NaN in the page", // NaN (written in below): read as 0, it made a queue of one event
    cookieDays: "30", // NaN days made cookies that expire as they are written
    autocapture: { pageViews: "false", page_views: false, clicks: true },
    respectDoNotTrack: "yes",
    interestHalfLifeDays: "30", // read by the interest module, after `ready`
  };
  const html = snippetPage({ collector: proxy.url, options, before: recordErrors() }).replace('"NaN in the page"', "NaN");
  const { page, context } = await open("/unreadable-options", html);
  await eventually(async () => (await reported(page)).includes("interestHalfLifeDays"), { message: "the interest module's report" });
  assert.deepEqual((await reported(page)).sort(), [
    "autocapture.pageViews",
    "autocapture.page_views",
    "cookieDays",
    "interestHalfLifeDays",
    "maxQueueEvents",
    "respectDoNotTrack",
  ]);
  const id = await anonymousId(page);
  await page.evaluate(() => {
    for (let i = 0; i < 10; i++) window.portrait.track("Burst", { i });
  });
  assert.equal(await page.evaluate(() => window.portrait.flush()), true);
  // All ten (the default bound), and no automatic page view (`pageViews` read as off).
  assert.deepEqual(names(await timeline(id, 10)), Array(10).fill("Burst"));
  const cookie = (await context.cookies()).find((c) => c.name === "portrait_aid");
  assert.ok(cookie.expires * 1000 > Date.now() + 300 * 86_400_000, `a cookie for the default 365 days: ${new Date(cookie.expires * 1000)}`);
  await context.close();
  await proxy.stop();
});

test("consent.set takes one decision for every category; what is neither that nor categories is reported", async () => {
  const proxy = await startProxy(rig.collector.url);
  const html = snippetPage({ collector: proxy.url, options: { autocapture: false }, before: recordErrors("message") });
  const { page, context } = await open("/consent-set-boolean", html);
  await page.evaluate(() => window.portrait.consent.set(42));
  assert.deepEqual(await reported(page), ["consent.set takes {analytics, personalization}, or one decision for both"]);
  assert.equal(await page.evaluate(() => window.portrait.consent.get().analytics), "granted", "an unreadable call changes nothing");
  await page.evaluate(() => window.portrait.consent.set(false));
  assert.deepEqual(await page.evaluate(() => window.portrait.consent.get()), { analytics: "denied", personalization: "denied" });
  await page.evaluate(() => window.portrait.track("Refused"));
  await page.evaluate(() => window.portrait.flush());
  assert.equal(proxy.beacons(), 0, "nothing sent after set(false)");
  assert.deepEqual(await storedKeys(page), []);
  await page.evaluate(() => window.portrait.consent.set("granted"));
  assert.deepEqual(await page.evaluate(() => window.portrait.consent.get()), { analytics: "granted", personalization: "granted" });
  await context.close();
  await proxy.stop();
});

test("a track without an event name, or a name or category past 255 bytes, is refused at once and reported", async () => {
  const proxy = await startProxy(rig.collector.url);
  const html = snippetPage({ collector: proxy.url, options: { autocapture: false }, before: recordErrors("message") });
  const { page, context } = await open("/unnamed-calls", html);
  await page.evaluate(() => {
    window.portrait.track();
    window.portrait.track("");
    window.portrait.track("e".repeat(256));
    window.portrait.page("c".repeat(256), "Pricing");
    window.portrait.screen("Settings", "s".repeat(256));
    window.portrait.screen("c".repeat(256), "Settings"); // a screen's category is a property: sent
    window.portrait.track("e".repeat(255)); // at the limit: sent
  });
  assert.deepEqual(await reported(page), [
    "track() needs an event name",
    "track() needs an event name",
    ...Array(3).fill("a name is at most 255 bytes long"),
  ]);
  assert.equal(await page.evaluate(() => window.portrait.flush()), true, "nothing the collector refuses was sent");
  const counters = await stats(page);
  assert.deepEqual([counters.captured, counters.refused, counters.delivered], [7, 5, 2]);
  assert.deepEqual(names(await timeline(await anonymousId(page), 2)).sort(), ["e".repeat(255), "screen"]);
  await context.close();
  await proxy.stop();
});

describe("SDK: transport, nothing lost and nothing doubled", () => {
  test("a flush() waiting for an event the full queue then drops answers false", async () => {
    const proxy = await startProxy(rig.collector.url);
    // Four slow answers: four one-event batches stay in flight while the page captures more.
    proxy.fail({ slow: 1_500 }, { slow: 1_500 }, { slow: 1_500 }, { slow: 1_500 });
    const options = { autocapture: false, batchSize: 1, maxQueueEvents: 6, flushInterval: 600_000 };
    const { page, context } = await open("/flush-dropped", snippetPage({ collector: proxy.url, options }));
    const delivered = await page.evaluate(async () => {
      for (let i = 1; i <= 4; i++) {
        window.portrait.track(`Event ${i}`);
        await new Promise((resolve) => setTimeout(resolve, 50)); // its own batch, sent
      }
      window.portrait.track("Event 5");
      window.portrait.track("Event 6");
      const flushed = window.portrait.flush(); // waits for 1–6: 1–4 in flight, 5 and 6 queued
      window.portrait.track("Event 7"); // over the bound: 5, the oldest queued, goes
      return flushed;
    });
    assert.equal(delivered, false, "event 5 will never be delivered");
    const id = await anonymousId(page);
    assert.equal(await page.evaluate(() => window.portrait.flush()), true, "the rest is delivered");
    assert.deepEqual(names(await timeline(id, 6)).sort(), ["Event 1", "Event 2", "Event 3", "Event 4", "Event 6", "Event 7"]);
    await context.close();
    await proxy.stop();
  });

  test("500, 429 with Retry-After and connection resets are retried; every event arrives exactly once", async () => {
    const proxy = await startProxy(rig.collector.url);
    const html = snippetPage({ collector: proxy.url, options: { batchSize: 5, autocapture: false } });
    const { page, context } = await open("/retries", html);
    proxy.fail({ status: 500 }, { status: 429, retryAfter: 1 }, { reset: true }, { status: 503 });
    await page.evaluate(() => {
      for (let i = 0; i < 23; i++) window.portrait.track("Retried", { i });
    });
    const id = await anonymousId(page);
    const profile = await profileWith(id, 23);
    await page.waitForTimeout(500);
    const events = await timeline(id, 23);
    assert.equal(events.length, 23);
    assert.deepEqual(events.map((e) => e.properties.i).sort((a, b) => a - b), [...Array(23).keys()]);
    assert.equal((await rig.collector.profile("anonymous_id", id)).json.eventCount, 23, "no duplicates");
    const counters = await stats(page);
    assert.equal(counters.delivered, 23);
    assert.ok(counters.retries >= 3, JSON.stringify(counters)); // Chromium itself retries some resets
    assert.equal(profile.counters["Retried"], 23);
    assert.deepEqual(proxy.seen.filter((r) => r.method !== "POST" && r.method !== "GET"), [], "no CORS preflight");
    await context.close();
    await proxy.stop();
  });

  test("a 429's Retry-After holds every send until it has passed, even when a backoff already runs", async () => {
    const proxy = await startProxy(rig.collector.url);
    const html = snippetPage({ collector: proxy.url, options: { batchSize: 5, autocapture: false } });
    const { page, context } = await open("/retry-after", html);
    // Two batches in flight: the first is answered 429 (Retry-After: 3 s) 100 ms after the
    // second's 500 has started an ordinary backoff (of 500 ms at least: the 429 comes before
    // it ends).
    proxy.fail({ status: 429, retryAfter: 3, afterNext: true, delay: 100 }, { status: 500 });
    await page.evaluate(async () => {
      for (let i = 0; i < 5; i++) window.portrait.track("Held Back", { i });
      await new Promise((resolve) => setTimeout(resolve, 50));
      for (let i = 5; i < 10; i++) window.portrait.track("Held Back", { i });
    });
    // The first failure answered (the 500) came with both batches sent: the 429 was still to come.
    await page.waitForFunction(() => window.portrait.stats().retries >= 1);
    assert.equal(proxy.beacons(), 2, "both were in flight together");
    // Once the 429 is in too, while the backoff runs, flush() answers false at once (it would
    // wait out the 3 s), and no retry has gone before it answered.
    await page.waitForFunction(() => window.portrait.stats().retries >= 2);
    assert.equal(await flushWithin(page, 1_000), false);
    assert.equal(proxy.beacons(), 2, "no retry sent before flush() answered");
    await profileWith(await anonymousId(page), 10);
    const [limited, , ...retries] = proxy.seen.filter((r) => r.url.startsWith("/v1/b"));
    const wait = retries[0].at - limited.answeredAt;
    assert.ok(wait >= 2_900, `the next send came ${wait} ms after the 429`);
    await context.close();
    await proxy.stop();
  });

  test("a Retry-After given as an HTTP-date (a CDN's) holds the sends until that time, counted by the answer's clock", async () => {
    // The answer's clock: the machine's (the proxy's own `Date`); an hour behind it (counted
    // by the device's clock, the date would have passed: a retry at once); and the machine's,
    // from an answer a cache kept for an hour (dated an hour ago, with `Age: 3600`: counted
    // from its `Date` alone, the wait would be an hour).
    const cases = [{ name: "own" }, { name: "behind", clockMs: -3_600_000 }, { name: "cached", clockMs: 0, ageS: 3_600 }];
    for (const { name, clockMs, ageS = 0 } of cases) {
      const proxy = await startProxy(rig.collector.url);
      const html = snippetPage({ collector: proxy.url, options: { autocapture: false } });
      const { page, context } = await open(`/retry-after-date-${name}`, html);
      const answeredAt = Date.now() + (clockMs ?? 0);
      // Whole seconds: 7 to 8 s after `answeredAt` (less by the time the page takes to send);
      // the plain backoff would send again after about 1 s.
      proxy.fail({
        status: 429,
        retryAfter: new Date(answeredAt + 8_000).toUTCString(),
        date: clockMs === undefined ? undefined : new Date(answeredAt - ageS * 1_000).toUTCString(),
        age: ageS || undefined,
      });
      await page.evaluate(() => {
        window.portrait.track("Held Until A Date");
        window.portrait.flush();
      });
      await profileWith(await anonymousId(page), 1);
      const [limited, retry] = proxy.seen.filter((r) => r.url.startsWith("/v1/b"));
      assert.ok(retry.at - limited.at >= 4_000, `${name}: the next send came ${retry.at - limited.at} ms after the 429`);
      await context.close();
      await proxy.stop();
    }
  });

  test("a 429's Retry-After holds on the site's next page too: neither the page being left nor the next one sends before it ends", async () => {
    const proxy = await startProxy(rig.collector.url);
    const html = snippetPage({ collector: proxy.url, options: { autocapture: false } });
    const { page, context } = await open("/retry-after-1", html);
    proxy.fail({ status: 429, retryAfter: 120 });
    await page.evaluate(() => window.portrait.track("Throttled"));
    assert.equal(await page.evaluate(() => window.portrait.flush()), false);
    const retryAt = Number(await page.evaluate(() => localStorage.getItem("portrait.retry_at")));
    assert.ok(retryAt > Date.now() + 100_000, `stored until ${retryAt}`);
    await page.goto(rig.site.page("/retry-after-2", html));
    await page.waitForFunction(() => window.portrait.user && window.portrait.user().anonymousId);
    await page.evaluate(() => window.portrait.track("Next Page"));
    assert.equal(await page.evaluate(() => window.portrait.flush()), false, "still waiting");
    await page.waitForTimeout(1_000);
    assert.equal(proxy.seen.filter((r) => r.url.startsWith("/v1/b")).length, 1, "only the throttled request");
    assert.equal(await page.evaluate(() => window.portrait.stats().queued), 2, "both events kept");
    await context.close();
    await proxy.stop();
  });

  test("a page that cannot store its queue (storage: memory) sends it when left, Retry-After or not: nothing else would", async () => {
    const proxy = await startProxy(rig.collector.url);
    const html = snippetPage({ collector: proxy.url, options: { autocapture: false, storage: "memory" } });
    const { page, context } = await open("/retry-after-memory", html);
    const id = await anonymousId(page);
    proxy.fail({ status: 429, retryAfter: 30 });
    await page.evaluate(() => window.portrait.track("Throttled In Memory"));
    assert.equal(await page.evaluate(() => window.portrait.flush()), false);
    await page.close({ runBeforeUnload: true });
    assert.equal((await profileWith(id, 1)).counters["Throttled In Memory"], 1);
    await context.close();
    await proxy.stop();
  });

  test("events a 200 answer says were rejected are counted as refused and reported, not as delivered", async () => {
    const proxy = await startProxy(rig.collector.url);
    const html = snippetPage({
      collector: proxy.url,
      options: { autocapture: false },
      before: recordErrors(),
    });
    const { page, context } = await open("/rejected", html);
    const rejected = [{ index: 1, code: "invalid_event", message: "injected", path: "batch[1]" }];
    proxy.fail({ status: 200, answer: { accepted: 2, duplicates: 0, bots: 0, rejected } });
    await page.evaluate(() => ["One", "Two", "Three"].forEach((name) => window.portrait.track(name)));
    assert.equal(await page.evaluate(() => window.portrait.flush()), false, "not all of it delivered");
    const counters = await stats(page);
    assert.deepEqual([counters.delivered, counters.refused, counters.retries], [2, 1, 0]);
    assert.deepEqual(await reported(page), [1]);
    await context.close();
    await proxy.stop();
  });

  const refusals = [
    ["a 4xx other than 429 is not retried and is reported on 'error'", { fault: { status: 400 } }, 400],
    ["a wrong write key: the collector's 401 is reported on 'error' and not retried", { key: "pk_wrong_key" }, 401],
  ];
  for (const [name, { key, fault }, status] of refusals) {
    test(name, async () => {
      const proxy = await startProxy(rig.collector.url);
      const before = `${recordErrors()} window.messages = []; portrait.on("error", (e) => window.messages.push(e.message));`;
      const html = snippetPage({ collector: proxy.url, key, options: { autocapture: false }, before });
      const { page, context } = await open(`/refused-${status}`, html);
      if (fault) proxy.fail(fault);
      await page.evaluate(() => window.portrait.track("Refused"));
      assert.equal(await page.evaluate(() => window.portrait.flush()), false, "answered at once: refused, not delivered");
      await page.waitForTimeout(500);
      // A wrong key has no remote settings either: that is reported first, with no detail.
      const settingsReport = "the collector's remote settings: HTTP 404; the page's options apply";
      assert.deepEqual(await reported(page), key ? [undefined, status] : [status]);
      assert.equal((await page.evaluate(() => window.messages)).includes(settingsReport), Boolean(key));
      assert.equal(proxy.beacons(), 1, "sent once, not retried");
      const counters = await stats(page);
      assert.deepEqual([counters.refused, counters.retries], [1, 0]);
      await context.close();
      await proxy.stop();
    });
  }

  test("flush() answers for the events queued when it was called: a later batch's refusal leaves an earlier flush() to its own", async () => {
    const proxy = await startProxy(rig.collector.url);
    const html = snippetPage({ collector: proxy.url, options: { autocapture: false } });
    const { page, context } = await open("/flush-own", html);
    proxy.fail({ slow: 1_000 }, { status: 400 });
    const answers = await page.evaluate(async () => {
      window.portrait.track("First");
      const first = window.portrait.flush();
      await new Promise((resolve) => setTimeout(resolve, 300)); // its batch in flight, slowly
      window.portrait.track("Second");
      return Promise.all([first, window.portrait.flush()]);
    });
    assert.deepEqual(answers, [true, false], "delivered, refused");
    assert.deepEqual((await timeline(await anonymousId(page), 1)).map((e) => e.event), ["First"]);
    await context.close();
    await proxy.stop();
  });

  test("a batch answered after the page was hidden (its events sent again then) counts once", async () => {
    const proxy = await startProxy(rig.collector.url);
    const html = snippetPage({ collector: proxy.url, options: { autocapture: false, batchSize: 5 } });
    const { page, context } = await open("/late-answer", html);
    proxy.fail({ slow: 1_500 });
    await page.evaluate(() => {
      for (let i = 0; i < 5; i++) window.portrait.track("Late", { i });
    });
    await eventually(() => proxy.beacons() === 1, { message: "the batch in flight, slowly" });
    await page.evaluate(() => {
      Object.defineProperty(document, "hidden", { value: true, configurable: true });
      document.dispatchEvent(new Event("visibilitychange"));
    });
    // Both answers are in: the copy sent when hidden delivered, the slow first one answered.
    await eventually(
      async () => {
        const counters = await stats(page);
        const answered = proxy.seen.filter((r) => r.url.startsWith("/v1/b") && r.status).length;
        return counters.delivered === 5 && counters.queued === 0 && answered === 2;
      },
      { message: "both answers in" },
    );
    await page.waitForTimeout(300); // the page has read the late answer
    assert.equal(proxy.beacons(), 2);
    const counters = await stats(page);
    assert.deepEqual([counters.captured, counters.delivered, counters.retries], [5, 5, 0], JSON.stringify(counters));
    assert.equal((await profileWith(await anonymousId(page), 5)).eventCount, 5);
    await context.close();
    await proxy.stop();
  });

  test("offline, events are kept and stored; they are sent when the network is back, even after a reload", async () => {
    const proxy = await startProxy(rig.collector.url);
    const html = snippetPage({ collector: proxy.url, options: { autocapture: false, flushInterval: 200 } });
    const { page, context } = await open("/offline", html);
    const id = await anonymousId(page);
    proxy.setDown(true);
    await page.evaluate(() => {
      for (let i = 0; i < 30; i++) window.portrait.track("Offline", { i });
    });
    // Failed sends, then the queue is stored.
    await page.waitForFunction(() => Object.keys(localStorage).some((k) => k.startsWith("portrait.q.")));
    const stored = await page.evaluate(() => Object.keys(localStorage).filter((k) => k.startsWith("portrait.q.")).length);
    assert.equal(stored, 1, "the queue is in localStorage");
    await page.reload(); // the unload's sendBeacon fails too: the proxy is down
    await page.waitForFunction(() => window.portrait.user && window.portrait.user().anonymousId);
    proxy.setDown(false);
    // No flush() and no call: the events the new page adopted are scheduled as its own.
    const events = await timeline(id, 30);
    assert.deepEqual(events.map((e) => e.properties.i).sort((a, b) => a - b), [...Array(30).keys()]);
    await page.waitForTimeout(300);
    assert.equal((await rig.collector.profile("anonymous_id", id)).json.eventCount, 30);
    await context.close();
    await proxy.stop();
  });

  test("the browser going back online sends at once, without waiting out the backoff", async () => {
    const html = snippetPage({ collector: rig.collector.url, options: { autocapture: false, flushInterval: 100 } });
    const { page, context } = await open("/online", html);
    // Time stands still in the page from here: a timer fires only when the test moves the
    // clock, so once the network is back only the `online` listener can send.
    await page.clock.install();
    await page.clock.pauseAt(Date.now() + 1_000);
    // The SDK's requests in flight: an offline one fails at once, but must have failed before
    // going online (its failure would start a backoff the stopped clock never ends).
    await page.evaluate(() => {
      const original = window.fetch;
      window.inFlight = 0;
      window.fetch = (...args) => {
        window.inFlight++;
        return original(...args).finally(() => window.inFlight--);
      };
    });
    await context.setOffline(true);
    await page.evaluate(() => {
      for (let i = 0; i < 10; i++) window.portrait.track("While Offline", { i });
    });
    // Three failed sends or more, the clock moved on to each retry: the next is 2 s away at least.
    await eventually(
      async () => {
        await page.clock.runFor(1_000);
        return page.evaluate(() => window.inFlight === 0 && window.portrait.stats().retries >= 3);
      },
      { ms: 30_000, message: "three failed sends, none in flight" },
    );
    await context.setOffline(false); // the clock stays where it is
    const id = await anonymousId(page);
    const events = await eventually(
      async () => {
        const { json } = await rig.collector.admin(`anonymous_id/${id}/events`);
        return json?.events?.length === 10 && json.events;
      },
      { message: "delivery on going online, the page's clock stopped" },
    );
    assert.equal(events.length, 10);
    await context.close();
  });

  /** Opens a page at `pathname` whose queue holds 10 events, and 15 tracks made while the
   * collector (behind `proxy`) was down: the first 5 dropped. */
  async function fillQueueWhileDown(pathname, proxy) {
    const html = snippetPage({ collector: proxy.url, options: { autocapture: false, maxQueueEvents: 10, flushInterval: 100 } });
    const opened = await open(pathname, html);
    proxy.setDown(true);
    await opened.page.evaluate(() => {
      for (let i = 0; i < 15; i++) window.portrait.track("Kept Or Dropped", { i });
    });
    await opened.page.waitForTimeout(300);
    proxy.setDown(false);
    return opened;
  }

  test("a full queue drops its oldest events and the collector counts them for the source", async () => {
    const proxy = await startProxy(rig.collector.url);
    const before = await rig.collector.sdkDroppedEvents();
    const { page, context } = await fillQueueWhileDown("/full", proxy);
    await page.evaluate(() => window.portrait.flush());
    const events = await timeline(await anonymousId(page), 10);
    assert.deepEqual(events.map((e) => e.properties.i).sort((a, b) => a - b), [5, 6, 7, 8, 9, 10, 11, 12, 13, 14]);
    assert.equal(await eventually(async () => (await rig.collector.sdkDroppedEvents()) - before === 5 && 5), 5);
    await context.close();
    await proxy.stop();
  });

  // As the collector answers a beacon it applied in part: one person throttled, or a failure
  // for one person.
  for (const [status, code] of [[429, "rate_limited"], [503, "internal"]]) {
    test(`a ${status} whose collector counted the dropped count already: the retry does not carry it again`, async () => {
      const proxy = await startProxy(rig.collector.url);
      const before = await rig.collector.sdkDroppedEvents();
      const { page, context } = await fillQueueWhileDown(`/full-${status}`, proxy);
      proxy.fail({ status, retryAfter: 1, answer: { code, message: "one person's part failed", dropped_counted: 5 } });
      assert.equal(await page.evaluate(() => window.portrait.flush()), false, `the ${status}`);
      await eventually(() => page.evaluate(() => window.portrait.flush()), { message: "delivered after the Retry-After" });
      const events = await timeline(await anonymousId(page), 10);
      assert.equal(events.length, 10);
      assert.equal((await rig.collector.sdkDroppedEvents()) - before, 0, `counted by the collector that answered ${status}, not again`);
      await context.close();
      await proxy.stop();
    });
  }

  test("an event larger than the collector keeps is refused at once and reported: it pushes no queued event out", async () => {
    const proxy = await startProxy(rig.collector.url);
    const html = snippetPage({ collector: proxy.url, options: { autocapture: false, flushInterval: 100 }, before: recordErrors("message") });
    const { page, context } = await open("/huge", html);
    proxy.setDown(true);
    await page.evaluate(() => {
      for (let i = 0; i < 10; i++) window.portrait.track("Small", { i });
      // ~1.3 MB as the SDK holds it, more than its 1 MB queue: before, it pushed the ten out.
      window.portrait.track("Huge", Object.fromEntries(Array.from({ length: 60_000 }, (_, i) => [`k${i}`, i])));
    });
    await page.waitForTimeout(300);
    proxy.setDown(false);
    await page.evaluate(() => window.portrait.flush());
    const events = await timeline(await anonymousId(page), 10);
    assert.deepEqual(events.map((e) => e.properties.i).sort((a, b) => a - b), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    assert.deepEqual(await reported(page), [TOO_LARGE]);
    const counted = await stats(page);
    assert.deepEqual([counted.captured, counted.delivered, counted.refused], [11, 10, 1]);
    await context.close();
    await proxy.stop();
  });

  test("properties that are no data (window, a many-branched cycle) are refused quickly and reported; the calls after them go", async () => {
    const html = snippetPage({ collector: rig.collector.url, options: { autocapture: false }, before: recordErrors("message") });
    const { page, context, errors } = await open("/no-data", html);
    await page.evaluate(() => {
      // Unbounded but for the depth, 3^16 values: the walk must stop long before.
      const knot = {};
      knot.a = knot;
      knot.b = knot;
      knot.c = knot;
      window.portrait.track("Clicked", { target: document.body, view: window });
      window.portrait.track("Knotted", knot);
      window.portrait.page("Docs", { frames: [window] });
      window.portrait.track("After", { ok: true });
    });
    await page.evaluate(() => window.portrait.flush());
    assert.deepEqual(await reported(page), [TOO_LARGE, TOO_LARGE, TOO_LARGE]);
    const [after] = await timeline(await anonymousId(page), 1);
    assert.equal(after.event, "After");
    assert.deepEqual((await stats(page)).refused, 3);
    assert.deepEqual(errors, []);
    await context.close();
  });

  test("leaving a page (visibilitychange, then pagehide) sends its events once, and an event a site captures after that goes too", async () => {
    const proxy = await startProxy(rig.collector.url);
    const html = snippetPage({ collector: proxy.url, options: { autocapture: false, flushInterval: 600_000 } });
    const { page, context } = await open("/leave-once", html);
    const id = await anonymousId(page);
    const before = proxy.beacons();
    await page.evaluate(() => {
      addEventListener("pagehide", () => window.portrait.track("Said Goodbye")); // after the SDK's own listener
      for (let i = 0; i < 3; i++) window.portrait.track("Unsent", { i });
      Object.defineProperty(document, "hidden", { value: true, configurable: true });
      document.dispatchEvent(new Event("visibilitychange"));
      window.dispatchEvent(new PageTransitionEvent("pagehide", { persisted: false }));
    });
    const events = await timeline(id, 4);
    assert.deepEqual(names(events).sort(), ["Said Goodbye", "Unsent", "Unsent", "Unsent"]);
    await page.waitForTimeout(300);
    assert.equal(proxy.beacons() - before, 2, "the three once at the first hide, the goodbye alone after");
    await context.close();
    await proxy.stop();
  });

  test("a page hidden while the collector asked for time, then closed, sends what was in flight at the close (memory mode: nothing else keeps it)", async () => {
    const proxy = await startProxy(rig.collector.url);
    const html = snippetPage({ collector: proxy.url, options: { autocapture: false, storage: "memory", flushInterval: 600_000 } });
    const { page, context } = await open("/hidden-in-backoff", html);
    const id = await anonymousId(page);
    // The first batch hangs (answered 500 after 20 s, never forwarded); the second is
    // answered 429 with a Retry-After: a backoff runs while the first is in flight.
    proxy.fail({ status: 500, delay: 20_000 }, { status: 429, retryAfter: 30 });
    await page.evaluate(() => {
      window.portrait.track("In Flight");
      window.portrait.flush();
    });
    await eventually(() => proxy.beacons() >= 1, { message: "the first batch sent" });
    await page.evaluate(() => {
      window.portrait.track("Backed Off");
      window.portrait.flush();
    });
    await eventually(() => proxy.seen.some((r) => r.url.startsWith("/v1/b") && r !== proxy.seen.find((s) => s.url.startsWith("/v1/b"))), { message: "the second batch sent" });
    await page.waitForFunction(() => window.portrait.stats().retries >= 1); // its 429 read
    const before = proxy.beacons();
    // Hidden during the backoff: nothing sent (a tab switch must not hurry the collector).
    await page.evaluate(() => {
      Object.defineProperty(document, "hidden", { value: true, configurable: true });
      document.dispatchEvent(new Event("visibilitychange"));
    });
    await page.waitForTimeout(300);
    assert.equal(proxy.beacons(), before, "nothing sent at the hide");
    // Closed: the request in flight ends with the page, so its events go again, at once.
    await page.close({ runBeforeUnload: true });
    const events = await timeline(id, 2);
    assert.deepEqual(names(events).sort(), ["Backed Off", "In Flight"]);
    await context.close();
    await proxy.stop();
  });

  test("flush() answers once what was queued when it was called is delivered, while the page keeps capturing", async () => {
    const proxy = await startProxy(rig.collector.url);
    const html = snippetPage({ collector: proxy.url, options: { autocapture: false } });
    const { page, context } = await open("/heartbeat", html);
    // Each batch answered after 150 ms: with a beat every 10 ms, the queue is never empty.
    proxy.fail(...Array.from({ length: 400 }, () => ({ slow: 150 })));
    const answer = await page.evaluate(async () => {
      for (let i = 0; i < 50; i++) window.portrait.track("Before Flush", { i });
      const beat = setInterval(() => window.portrait.track("Heartbeat"), 10);
      const settled = await Promise.race([window.portrait.flush(), new Promise((resolve) => setTimeout(() => resolve("still waiting"), 8_000))]);
      clearInterval(beat);
      return settled;
    });
    assert.equal(answer, true);
    await context.close();
    await proxy.stop();
  });

  test("flush() from a listener waits for delivery; a fetch wrapper that tracks the SDK's requests cannot make a leaving page send forever", async () => {
    const proxy = await startProxy(rig.collector.url);
    const html = snippetPage({ collector: proxy.url, options: { autocapture: false, flushInterval: 600_000 } });
    const { page, context } = await open("/listener-flush", html);
    const id = await anonymousId(page);
    const flushed = await page.evaluate(
      () =>
        new Promise((resolve) => {
          window.portrait.on("track", (event) => event === "Checkout" && window.portrait.flush().then(resolve));
          window.portrait.track("Checkout");
        }),
    );
    assert.equal(flushed, true);
    assert.deepEqual(names(await timeline(id, 1)), ["Checkout"], "delivered when flush() answered");
    const before = proxy.beacons();
    await page.evaluate(() => {
      const original = window.fetch;
      window.requested = 0;
      window.fetch = (url, init) => {
        if (String(url).includes("/v1/b")) window.requested++;
        window.portrait.track("API Call");
        return original(url, init);
      };
      window.portrait.track("Leaving");
      window.dispatchEvent(new PageTransitionEvent("pagehide", { persisted: false }));
    });
    assert.equal(await page.evaluate(() => 1 + 1), 2, "the page still answers");
    // Every request the page made (its fetch wrapper counts them) has reached the proxy.
    const requested = await page.evaluate(() => window.requested);
    await eventually(() => proxy.beacons() - before >= Math.max(requested, 2), { message: `${requested} requests after leaving` });
    const sent = proxy.beacons() - before;
    assert.ok(sent >= 2 && sent <= 10, `${sent} requests after leaving`);
    await page.waitForTimeout(1_000);
    assert.equal(proxy.beacons() - before, sent, "no send loop: nothing more a second later");
    const stored = await page.evaluate(() => Object.keys(localStorage).filter((k) => k.startsWith("portrait.q.")).map((k) => localStorage.getItem(k)));
    assert.ok(stored.some((text) => text.split("|")[1] === "1" && text.length > 20), "what was not sent is stored, the page marked gone");
    await context.close();
    await proxy.stop();
  });

  test("a page closed right after a burst of 500 calls delivers all of them, each payload well under 64 KiB", async () => {
    const proxy = await startProxy(rig.collector.url);
    const html = snippetPage({ collector: proxy.url, options: { autocapture: false } });
    const { page, context } = await open("/burst", html);
    const id = await anonymousId(page);
    // ~90 KB of events: more than one keepalive request may carry (64 KiB in flight).
    await page.evaluate(() => {
      for (let i = 0; i < 500; i++) window.portrait.track("Burst", { i, plan: "pro", note: `${"n".repeat(150)} ${i}` });
    });
    await page.close({ runBeforeUnload: true });
    const profile = await profileWith(id, 500);
    assert.equal(profile.counters["Burst"], 500);
    await new Promise((r) => setTimeout(r, 500));
    assert.equal((await rig.collector.profile("anonymous_id", id)).json.eventCount, 500, "exactly once");
    // Batches sent while visible are at most 32 KiB (batchBytes).
    for (const beacon of proxy.seen.filter((r) => r.url.startsWith("/v1/b"))) {
      assert.ok(beacon.bytes <= 32 * 1024, `a ${beacon.bytes}-byte payload`);
    }
    await context.close();
    await proxy.stop();
  });

  test("a queue a crashed page left (no pagehide: it looks alive) is taken over by a page already open once it falls silent", async () => {
    // Each page its own way to the collector: the crashed one's is down for good.
    const [down, proxy] = [await startProxy(rig.collector.url), await startProxy(rig.collector.url)];
    down.setDown(true);
    const options = { autocapture: false, remoteSettings: false };
    const { page: crashing, context: crashingContext } = await open("/crashing", snippetPage({ collector: down.url, options }));
    const id = await anonymousId(crashing);
    await crashing.evaluate(() => ["One", "Two", "Three"].forEach((name) => window.portrait.track(name)));
    // Its stored queue as a crash leaves it: holding the three events, not marked gone.
    const [key, text] = await eventually(
      () => crashing.evaluate(() => Object.entries(localStorage).find(([k, v]) => k.startsWith("portrait.q.") && v.includes("Three"))),
      { message: "the queue stored" },
    );
    assert.equal(text.split("|")[1], "0");
    await crashingContext.close();
    await down.stop();
    // The site's other page, open in the same browser when the crash happened.
    const context = await newContext(rig.browser);
    await context.clock.install();
    await context.addInitScript(([key, text]) => {
      try {
        localStorage.setItem(key, text);
      } catch {} // about:blank has no storage
    }, [key, text]);
    const { page } = await open("/still-open", snippetPage({ collector: proxy.url, options }), { context });
    await page.clock.runFor(10_000);
    assert.equal(proxy.beacons(), 0, "a queue written moments ago is its page's");
    await page.clock.runFor(120_000);
    const events = await timeline(id, 3);
    assert.deepEqual(names(events).sort(), ["One", "Three", "Two"]);
    await context.close();
    await proxy.stop();
  });

  test("where fetch cannot keep a request alive (Firefox before 133), a closing page's events go by sendBeacon too, counted once", async () => {
    const proxy = await startProxy(rig.collector.url);
    const context = await newContext(rig.browser);
    // Each sendBeacon call is told to a second page of the context, which outlives the closed one.
    await context.addInitScript(() => {
      delete Request.prototype.keepalive;
      const channel = new BroadcastChannel("beacons");
      const send = navigator.sendBeacon.bind(navigator);
      navigator.sendBeacon = (url, data) => {
        const sent = send(url, data);
        channel.postMessage({ url: String(url), bytes: data?.size ?? String(data).length, sent });
        return sent;
      };
    });
    const options = { autocapture: false, flushInterval: 600_000 };
    const { page } = await open("/no-keepalive", snippetPage({ collector: proxy.url, options }), { context });
    const watcher = await open("/beacon-watcher", "<!doctype html><title>watcher</title>", { context, until: () => true });
    await watcher.page.evaluate(() => {
      window.calls = [];
      new BroadcastChannel("beacons").onmessage = (message) => window.calls.push(message.data);
    });
    const id = await anonymousId(page);
    await page.evaluate(() => ["One", "Two", "Three"].forEach((name) => window.portrait.track(name)));
    await page.close({ runBeforeUnload: true });
    assert.equal((await profileWith(id, 3)).eventCount, 3);
    const calls = () => watcher.page.evaluate(() => window.calls);
    await eventually(async () => (await calls()).length > 0, { message: "sendBeacon called" });
    // Chromium keeps the fetch alive anyway: both copies arrive, the request and the beacon.
    const modes = () => proxy.seen.filter((r) => r.url.startsWith("/v1/b") && r.status).map((r) => r.mode).sort();
    await eventually(() => modes().length === 2, {
      ms: 30_000,
      message: "both copies answered",
      describe: async () => JSON.stringify({ calls: await calls(), requests: proxy.seen.filter((r) => r.url.startsWith("/v1/b")) }),
    });
    assert.deepEqual((await calls()).map((c) => c.sent), [true], "one sendBeacon call, accepted");
    assert.deepEqual(modes(), ["cors", "no-cors"], "the request, and sendBeacon once");
    assert.equal((await rig.collector.profile("anonymous_id", id)).json.eventCount, 3, "each event counted once");
    await context.close();
    await proxy.stop();
  });

  test("what a closing page sends goes in keepalive requests of at most 16 KiB", async () => {
    const proxy = await startProxy(rig.collector.url);
    // Batch limits the burst stays under: nothing leaves while the page is visible, so every
    // request the proxy sees is one the page's exit made.
    const options = { autocapture: false, batchSize: 500, batchBytes: 400_000, flushInterval: 600_000 };
    const { page, context } = await open("/burst-hidden", snippetPage({ collector: proxy.url, options }));
    const id = await anonymousId(page);
    // ~30 KB: within the 32 KB keepalive budget (KEEPALIVE_BUDGET_BYTES), more than one payload.
    await page.evaluate(() => {
      for (let i = 0; i < 170; i++) window.portrait.track("Burst", { i, plan: "pro", note: `${"n".repeat(150)} ${i}` });
    });
    assert.equal(proxy.beacons(), 0, "nothing sent while visible");
    await page.close({ runBeforeUnload: true });
    assert.equal((await profileWith(id, 170)).counters["Burst"], 170);
    const beacons = proxy.seen.filter((r) => r.url.startsWith("/v1/b"));
    assert.ok(beacons.length >= 2, `${beacons.length} requests for ~30 KB`);
    // HIDDEN_PAYLOAD_BYTES.
    for (const beacon of beacons) assert.ok(beacon.bytes <= 16 * 1024, `a ${beacon.bytes}-byte payload`);
    await context.close();
    await proxy.stop();
  });

  test("a tab hidden with more queued than keepalive requests may carry sends the rest as plain requests: no failure, no backoff", async () => {
    const proxy = await startProxy(rig.collector.url);
    const options = { autocapture: false, batchSize: 500, batchBytes: 400_000, flushInterval: 600_000 };
    const visibility = `window.visibility = "visible";
      Object.defineProperty(document, "visibilityState", { get: () => window.visibility, configurable: true });
      Object.defineProperty(document, "hidden", { get: () => window.visibility === "hidden", configurable: true });
      window.setVisibility = (v) => { window.visibility = v; document.dispatchEvent(new Event("visibilitychange")); };
      ${recordErrors("message")}`;
    const { page, context } = await open("/burst-tab-switch", snippetPage({ collector: proxy.url, options, before: visibility }));
    const id = await anonymousId(page);
    // ~140 KB in fewer events than a full batch (500): past the browser's 64 KiB of keepalive
    // requests in flight, and nothing sent while visible.
    await page.evaluate(() => {
      for (let i = 0; i < 400; i++) window.portrait.track("Burst", { i, plan: "pro", note: `${"n".repeat(300)} ${i}` });
    });
    assert.equal(proxy.beacons(), 0, "nothing sent while visible");
    await page.evaluate(() => window.setVisibility("hidden"));
    await page.waitForFunction(() => window.portrait.stats().delivered >= 400);
    await page.evaluate(() => window.setVisibility("visible"));
    assert.equal(await page.evaluate(() => window.portrait.flush()), true);
    const stats = await page.evaluate(() => window.portrait.stats());
    assert.equal(stats.retries, 0, JSON.stringify(stats));
    assert.deepEqual(await reported(page), []);
    assert.equal((await profileWith(id, 400)).counters["Burst"], 400);
    await context.close();
    await proxy.stop();
  });
});

describe("SDK: source middleware", () => {
  test("addSourceMiddleware gets every event, autocaptured ones too: its edits are sent, what it drops is not, one that throws drops its event and is reported", async () => {
    const html = snippetPage({
      collector: rig.collector.url,
      options: { autocapture: { scroll: false, engagement: false, forms: false } },
      body: `<button id="buy">Buy now</button>`,
      before: `${recordErrors("message")}
        window.seen = [];
        window.heard = [];
        portrait.on("track", (event, properties) => window.heard.push([event, properties ?? null]));
        portrait.addSourceMiddleware(({ payload, next }) => {
          const e = payload.obj;
          // analytics.js's Facade readers work too.
          window.seen.push([payload.type(), e.event ?? e.name ?? null, e.context.page.path, typeof e.messageId, e.timestamp instanceof Date]);
          // Personal data out, a property in.
          if (e.properties) { delete e.properties.email; e.properties.edited = true; }
          if (e.traits) delete e.traits.email;
          if (e.event === "Internal") return;
          if (e.event === "Boom") throw new Error("a middleware that throws");
          if (e.event === "Renamed") e.event = "Renamed Again";
          if (e.event === "Later") return setTimeout(() => next(payload), 50);
          if (e.event === "Bare") return next();
          if (e.event === "Twice") next(payload); // the second call below is ignored
          if (e.event === "New Id") e.messageId = "mw-chosen-id";
          if (e.event === "Untyped") e.type = "purchase"; // not a Segment type: reported, not sent
          next(payload);
        });
        portrait.track("Early", { email: "ada@example.com", plan: "pro" });`,
    });
    const { page, context } = await open("/mw", html);
    await page.click("#buy");
    await page.evaluate(async () => {
      for (const name of ["Internal", "Boom", "Later", "Renamed", "Bare", "Twice", "New Id", "Untyped"]) window.portrait.track(name);
      // A getter that throws is left out of the copy too: the SDK goes on.
      window.portrait.track("Getter", { get boom() { throw new Error("a getter that throws"); } });
      window.portrait.identify("user-mw", { email: "ada@example.com", plan: "team" });
      // The automatic view of /mw goes to the middleware as the page changes; it keeps /mw's context.
      history.pushState({}, "", "/mw/next");
      await new Promise((resolve) => setTimeout(resolve, 200));
      await window.portrait.flush();
    });
    const events = (await timeline(await anonymousId(page), 11)).reverse();
    assert.deepEqual(names(events).sort(), ["Bare", "Button Clicked", "Early", "Getter", "Later", "New Id", "Renamed Again", "Twice", "identify", "page", "page"]);
    const named = (name) => events.find((e) => (e.event ?? e.type) === name);
    assert.deepEqual(named("Early").properties, { plan: "pro", edited: true });
    assert.equal(named("Button Clicked").properties.edited, true, "autocaptured events pass the middleware");
    assert.deepEqual(named("identify").traits, { plan: "team" });
    assert.equal(named("Bare").properties.edited, true, "next() passes the event on as it is");
    assert.equal(named("New Id").messageId, "mw-chosen-id", "a messageId the middleware sets is the event's");
    assert.equal(named("Later").context.page.path, "/mw", "passed on after the navigation, with the context it was captured with");
    // Listeners get each call's arguments, an event the middleware passed on late included.
    const heard = await page.evaluate(() => window.heard);
    assert.deepEqual(heard.filter(([event]) => ["Early", "Later"].includes(event)), [["Early", { email: "ada@example.com", plan: "pro" }], ["Later", {}]]);
    // The view of /mw is timed when it began (first), with the context it was captured with.
    assert.deepEqual([events[0].properties.path, events[0].context.page.path, events[0].properties.edited], ["/mw", "/mw", true]);
    assert.equal(events.at(-1).properties.path, "/mw/next");
    const seen = await page.evaluate(() => window.seen);
    assert.equal(seen.length, 14, JSON.stringify(seen));
    assert.ok(seen.every(([, , , id, date]) => id === "string" && date === true));
    assert.deepEqual(seen.find(([type]) => type === "page")?.slice(0, 3), ["page", null, "/mw"]);
    assert.ok((await reported(page)).includes("a middleware that throws"));
    assert.ok((await reported(page)).includes("the middleware passed on an event that cannot be sent"));
    const counted = await stats(page);
    // "Twice" once: a second next() is ignored.
    assert.deepEqual([counted.captured, counted.delivered], [11, 11], "what the middleware dropped was never captured");
    // Refused, events are counted, not handed to the page's code.
    await page.evaluate(() => {
      window.portrait.consent.set({ analytics: false });
      window.portrait.track("After Refusal");
    });
    assert.equal((await page.evaluate(() => window.seen)).length, 14);
    assert.ok((await stats(page)).denied >= 1);
    await context.close();
  });

  test("an async middleware that rejects drops its event and is reported; next({obj}) passes the Facade readers on", async () => {
    const html = snippetPage({
      collector: rig.collector.url,
      options: { autocapture: false },
      before: `${recordErrors("message")}
        portrait.addSourceMiddleware(async ({ payload, next }) => {
          if (payload.obj.event === "Rejected") throw new Error("lookup failed");
          next({ obj: { ...payload.obj, properties: { ...payload.obj.properties, first: true } } });
        });
        portrait.addSourceMiddleware(({ payload, next }) => {
          Object.assign(payload.obj.properties, { type: payload.type(), integrations: typeof payload.integrations(), page: typeof payload.context().page });
          next(payload);
        });`,
    });
    const { page, context, errors } = await open("/async-middleware", html);
    await page.evaluate(() => {
      window.portrait.track("Rejected");
      window.portrait.track("Kept", { a: 1 });
    });
    await page.evaluate(() => window.portrait.flush());
    const [kept] = await timeline(await anonymousId(page), 1);
    assert.equal(kept.event, "Kept");
    assert.deepEqual(kept.properties, { a: 1, first: true, type: "track", integrations: "object", page: "object" });
    assert.deepEqual(await reported(page), ["lookup failed"]);
    assert.deepEqual(errors, [], "no unhandled rejection in the page");
    await page.waitForTimeout(300);
    assert.equal((await rig.collector.profile("anonymous_id", await anonymousId(page))).json.eventCount, 1, "the rejected event was not sent");
    await context.close();
  });

  test("with middleware, in a hidden tab each event goes as without one, not the whole queue again", async () => {
    const proxy = await startProxy(rig.collector.url);
    const html = snippetPage({
      collector: proxy.url,
      options: { autocapture: false, batchSize: 100, flushInterval: 300 },
      before: `portrait.addSourceMiddleware(({ next }) => next());`,
    });
    const { page, context } = await open("/mw-hidden", html);
    const id = await anonymousId(page);
    await page.evaluate(() => {
      Object.defineProperty(document, "hidden", { value: true, configurable: true });
      document.dispatchEvent(new Event("visibilitychange"));
    });
    const before = proxy.beacons();
    await page.evaluate(() => {
      for (let i = 0; i < 30; i++) window.portrait.track("Heartbeat", { i });
    });
    await timeline(id, 30);
    assert.ok(proxy.beacons() - before <= 2, `${proxy.beacons() - before} beacons for 30 events`);
    await context.close();
    await proxy.stop();
  });

  test("with middleware, leaving the page sends what that moment captured (the view still waiting) through it, at once", async () => {
    const html = snippetPage({
      collector: rig.collector.url,
      // Nothing would leave on a timer for ten minutes: what arrives left when the page did.
      options: { flushInterval: 600_000, autocapture: { engagement: false, scroll: false } },
      before: `portrait.addSourceMiddleware(({ payload, next }) => { payload.obj.properties.via = "middleware"; next(payload); });`,
    });
    const { page, context } = await open("/mw-left", html);
    const id = await anonymousId(page);
    // A `pagehide` alone (no `visibilitychange` before it, as some browsers do): the automatic
    // view, still in its grace period, goes to the middleware, then out with the call before it.
    await page.evaluate(() => {
      window.portrait.track("Last Words");
      window.dispatchEvent(new PageTransitionEvent("pagehide", { persisted: false }));
    });
    const events = await timeline(id, 2);
    assert.deepEqual(names(events).sort(), ["Last Words", "page"]);
    assert.ok(events.every((e) => e.properties.via === "middleware"), JSON.stringify(events.map((e) => e.properties)));
    await context.close();
  });
});

describe("SDK: loading", () => {
  test("the snippet is at most 1 KB minified", () => {
    const bytes = statSync(path.join(DIST, "snippet.min.js")).size;
    assert.ok(bytes > 0 && bytes <= 1024, `snippet.min.js is ${bytes} bytes`);
  });

  test("a prerendered page starts the SDK, and counts its view, only when it is shown", async () => {
    const context = await newContext(rig.browser);
    // Speculation rules' prerendering, as the page sees it: `document.prerendering` until the
    // visitor opens it, then `prerenderingchange`.
    await context.addInitScript(() => {
      let prerendering = true;
      Object.defineProperty(Document.prototype, "prerendering", { get: () => prerendering, configurable: true });
      window.show = () => {
        prerendering = false;
        document.dispatchEvent(new Event("prerenderingchange"));
      };
    });
    const html = snippetPage({ collector: rig.collector.url, options: { autocapture: { scroll: false, engagement: false } } });
    // The SDK's API is there (portrait.js ran), and its module has arrived.
    const loaded = () => window.portrait && window.portrait.__portrait && performance.getEntriesByType("resource").some((r) => r.name.endsWith("portrait.wasm"));
    const { page } = await open("/prerendered", html, { context, until: loaded });
    await page.waitForTimeout(1_500); // past the automatic view's wait, had the SDK started
    assert.equal(await page.evaluate(() => window.portrait.user().anonymousId), null, "not started while prerendered");
    await page.evaluate(() => window.show());
    await page.waitForFunction(() => window.portrait.user().anonymousId);
    await page.evaluate(() => window.portrait.flush());
    const id = await anonymousId(page);
    assert.deepEqual(names(await timeline(id, 1)), ["page"]);
    await context.close();
  });

  test("loading the SDK twice (two snippets and a stray script tag) does no harm", async () => {
    const once = snippetPage({ collector: rig.collector.url });
    const snippet = once.match(/<script>([\s\S]*?)<\/script>/)[1];
    const html = once.replace("</head>", `<script>${snippet}</script><script src="/sdk/portrait.js"></script></head>`);
    // The page's timers run on its clock, stopped once the SDK is ready.
    const context = await newContext(rig.browser);
    await context.clock.install();
    const { page, errors } = await open("/twice", html, { context });
    await page.clock.pauseAt(Date.now() + 1_000);
    await page.evaluate(() => window.portrait.track("Once"));
    // Past the automatic view's wait (1 s) and the flush interval (5 s): an SDK loaded twice
    // would have captured its second view, and sent it.
    await page.clock.runFor(6_000);
    assert.equal((await stats(page)).captured, 2, "the view (its timer ran) and the call, once each");
    await page.evaluate(() => window.portrait.flush());
    await page.waitForTimeout(300);
    const events = await timeline(await anonymousId(page), 2);
    assert.deepEqual(names(events).sort(), ["Once", "page"]);
    assert.deepEqual(errors, []);
    await context.close();
  });

  test("portrait.js blocked (an ad blocker): a flush() made before, or after, answers false", async () => {
    const html = snippetPage({ collector: rig.collector.url, options: { autocapture: false } }).replace('"/sdk/portrait.js"', '"/blocked/portrait.js"');
    const { page, context, errors } = await open("/blocked", html, { until: () => document.readyState === "complete" });
    const answers = await page.evaluate(async () => {
      const within = (promise) => Promise.race([promise, new Promise((resolve) => setTimeout(() => resolve("waiting"), 5_000))]);
      const before = window.portrait.flush();
      await new Promise((resolve) => setTimeout(resolve, 500)); // the script has failed by now
      return [await within(before), await within(window.portrait.flush())];
    });
    assert.deepEqual(answers, [false, false]);
    assert.deepEqual(errors, []);
    await context.close();
  });

  test("the calls chain, debug() turns debugging on, a second load() with another key is reported, portrait.js's query goes to its siblings, and the npm package beside it shares its SDK", async () => {
    const html = snippetPage({ collector: rig.collector.url, options: { autocapture: false }, before: recordErrors("message") })
      .replace('"/sdk/portrait.js"', '"/sdk/portrait.js?v=42"');
    const { page, context, errors } = await open("/chained", html);
    const logged = [];
    page.on("console", (message) => message.type() === "error" && logged.push(message.text()));
    const chained = await page.evaluate(() => {
      const p = window.portrait;
      return p.track("One").track("Two").identify("u-chained") === p && p.debug() === p && p.load("another_key") === p;
    });
    assert.equal(chained, true);
    // The same collector with a trailing `/` is the same load; `ready()` answers a Promise
    // (analytics-next's), settled after its callback.
    const readyAnswer = await page.evaluate(async (collector) => {
      window.portrait.load("pk_dev_demo", { endpoint: `${collector}/` });
      let called = false;
      const answer = window.portrait.ready(() => { called = true; });
      return [answer instanceof Promise, called, await answer, await window.portrait.ready(), answer.track("Three") === window.portrait];
    }, rig.collector.url);
    assert.deepEqual(readyAnswer, [true, true, undefined, undefined, true], "it chains too, as the stub's");
    // Debugging on: an error caught in JavaScript (a listener's) is logged.
    await page.evaluate(() => {
      window.portrait.on("track", () => { throw new Error("a listener that throws, logged"); });
      window.portrait.track("Four");
    });
    await eventually(() => logged.some((text) => text.includes("a listener that throws, logged")), { message: "logged in debug mode" });
    assert.deepEqual((await reported(page)).filter((message) => message.endsWith("is ignored")).length, 1);
    assert.ok((await reported(page)).some((message) => message.includes("(another_key, ") && message.endsWith("is ignored")));
    // Another copy of the SDK (the npm package in a bundle) shares this one.
    const shared = await page.evaluate(async () => {
      const npm = await import("/sdk/npm/index.js");
      return npm.portrait === window.portrait && npm.track === window.portrait.track;
    });
    assert.equal(shared, true);
    await page.evaluate(() => window.portrait.flush());
    const events = await timeline(await anonymousId(page), 5);
    assert.deepEqual(names(events).sort(), ["Four", "One", "Three", "Two", "identify"]);
    assert.equal((await stats(page)).captured, 5, "captured once, by one SDK");
    // Every file fetched next to portrait.js carries its query.
    await page.waitForFunction(() => window.portrait.stats().topicsModel === 1);
    const files = await page.evaluate(() => performance.getEntriesByType("resource").map((entry) => entry.name).filter((name) => name.includes("/sdk/portrait")));
    const siblings = ["portrait.wasm", "portrait-interests.js", "portrait-interests.wasm", "portrait-topics.bin"];
    for (const file of siblings) {
      assert.ok(files.some((name) => name.endsWith(`/sdk/${file}?v=42`)), `${file} with the query: ${files.join(", ")}`);
    }
    assert.deepEqual(errors, []);
    await context.close();
  });

  test("the stub hands over: past an element named portrait, after a stray script tag, and to a stub method a site kept", async () => {
    const cases = {
      // An element with id="portrait" before the snippet is `window.portrait` too.
      "/named-element": (html) => html.replace("<script>", '<img id="portrait" alt=""><script>'),
      // portrait.js from a stray tag runs before the snippet: the snippet's load() still counts.
      "/stray-first": (html) => html.replace("<script>", '<script src="/sdk/portrait.js"></script><script>'),
    };
    for (const [pathname, edit] of Object.entries(cases)) {
      const before = `window.savedTrack = portrait.track;`;
      const html = edit(snippetPage({ collector: rig.collector.url, options: { autocapture: false }, before }));
      const { page, context, errors } = await open(pathname, html);
      // A stub method kept from before the hand-over still reaches the SDK.
      await page.evaluate(() => window.savedTrack("Kept Stub Method", { kept: true }));
      assert.equal(await page.evaluate(() => window.portrait.flush()), true, pathname);
      const events = await timeline(await anonymousId(page), 1);
      assert.deepEqual(events.map((e) => [e.event, e.properties]), [["Kept Stub Method", { kept: true }]], pathname);
      assert.deepEqual(errors, [], pathname);
      await context.close();
    }
  });

  test("under a CSP without 'wasm-unsafe-eval' the wasm2js fallbacks load and work, memory growth included", async () => {
    // Unbounded queue limits (`Infinity`, which JSON cannot carry): the fallback must read
    // them as the wasm does, saturating, not as a queue of 0 events.
    const html = snippetPage({ collector: rig.collector.url, options: { maxQueueEvents: "∞", maxQueueBytes: "∞" } })
      .replaceAll('"∞"', "Infinity");
    const csp = `default-src 'self'; script-src 'self' 'unsafe-inline'; connect-src 'self' ${rig.collector.url}`;
    const before = rig.site.log.length;
    const { page, context, errors } = await open("/csp", html, { headers: { "content-security-policy": csp } });
    // The interest module runs from its own fallback once it has the topic model. 300 events
    // of 2 KB make the SDK's fallback memory grow: wasm-bindgen's glue must follow the grown
    // memory (xtask's wasm2js patch), or this aborts.
    await page.waitForFunction(() => window.portrait.stats().topicsModel === 1);
    await page.evaluate(() => {
      for (let i = 0; i < 300; i++) window.portrait.track("Under CSP", { i, padding: "x".repeat(2000) });
    });
    assert.equal(await page.evaluate(() => window.portrait.flush()), true);
    const profile = await profileWith(await anonymousId(page), 301);
    assert.equal(profile.eventCount, 301);
    const events = await timeline(await anonymousId(page), 301);
    assert.deepEqual([...new Set(names(events))].sort(), ["Under CSP", "page"]);
    const fetched = rig.site.log.slice(before);
    assert.ok(fetched.includes("/sdk/portrait.wasm2js.js"), "the SDK's fallback was fetched");
    assert.equal(fetched.filter((p) => p === "/sdk/portrait.wasm").length, 1, "the module fetched once: refused, then the fallback at once");
    assert.ok(fetched.includes("/sdk/portrait-interests.wasm2js.js"), "the interest module's fallback was fetched");
    assert.deepEqual(errors, []);
    await context.close();
  });

  test("modules the server does not have (a 404, not a CSP): the fallbacks run, and why is reported on 'error'", async () => {
    const partial = mkdtempSync(path.join(tmpdir(), "portrait-no-wasm-"));
    for (const file of ["portrait.js", "portrait.wasm2js.js", "portrait-interests.js", "portrait-interests.wasm2js.js", "portrait-topics.bin"]) {
      copyFileSync(path.join(DIST, file), path.join(partial, file));
    }
    rig.site.mount("/no-wasm-sdk/", partial);
    const html = snippetPage({ collector: rig.collector.url, before: recordErrors("message") })
      .replace("/sdk/portrait.js", "/no-wasm-sdk/portrait.js");
    const { page, context, errors } = await open("/no-wasm", html);
    await page.waitForFunction(() => window.portrait.stats().topicsModel === 1);
    await page.evaluate(() => window.portrait.track("Without WebAssembly"));
    assert.equal(await page.evaluate(() => window.portrait.flush()), true, "the fallback works");
    const reports = await reported(page);
    assert.equal(reports.length, 2, JSON.stringify(reports));
    for (const message of reports) assert.match(message, /^a WebAssembly module could not be used \(.+\); its slower JavaScript translation runs instead$/);
    assert.deepEqual(errors, []);
    await context.close();
  });

  test("an SDK whose module fails to load answers flush() with false, before and after the failure, and throws nothing into the page", async () => {
    // `portrait.js` without its module (nor the fallback): the load fails.
    const broken = mkdtempSync(path.join(tmpdir(), "portrait-broken-"));
    copyFileSync(path.join(DIST, "portrait.js"), path.join(broken, "portrait.js"));
    rig.site.mount("/broken-sdk/", broken);
    // The stub's flush(), before portrait.js is there.
    const before = `window.early = portrait.flush();`;
    const html = snippetPage({ collector: rig.collector.url, before }).replace("/sdk/portrait.js", "/broken-sdk/portrait.js");
    const context = await newContext(rig.browser);
    const { page, errors } = await open("/broken", html, { context, until: () => window.portrait && window.portrait.__portrait });
    // Asked while the module is still coming (or already failed), and once more after.
    const first = await flushWithin(page, 5_000);
    await eventually(() => rig.site.log.includes("/broken-sdk/portrait.wasm2js.js"), { message: "the fallback was tried" });
    const early = await page.evaluate(() => Promise.race([window.early, new Promise((resolve) => setTimeout(() => resolve("waiting"), 5_000))]));
    assert.deepEqual([early, first, await flushWithin(page, 5_000)], [false, false, false]);
    assert.deepEqual(errors, []);
    await context.close();
  });

  test("analytics.js's options and callbacks: options are not sent as properties, each callback runs once; a kept stub works", async () => {
    // One call queued by the snippet before the SDK is there, the others after.
    // The site keeps the stub as `analytics`, as a Segment snippet would: it becomes the API.
    const html = snippetPage({
      collector: rig.collector.url,
      options: { autocapture: false },
      before: `window.called = []; window.analytics = window.portrait;
        analytics.track("Early", { a: 1 }, { context: { ip: "0" } }, () => window.called.push("early"));`,
    });
    const { page, context } = await open("/callbacks", html);
    await page.evaluate(() => new Promise((resolve) => window.portrait.ready(resolve)));
    await page.evaluate(() => {
      const done = (name) => () => window.called.push(name);
      window.analytics.track("With Options", { plan: "pro" }, { integrations: { All: false } }, done("track"));
      window.portrait.track("Callback Only", done("track, no properties"));
      window.portrait.page("Pricing", undefined, { tier: 2 }, {}, done("page"));
      window.portrait.identify("user-7", { role: "cto" }, {}, done("identify"));
      window.portrait.group("acme", done("group"));
      window.portrait.alias("user-8", "user-7", {}, done("alias"));
    });
    await page.waitForFunction(() => window.called.length === 7);
    await page.waitForTimeout(400); // a second run would have come by now
    assert.deepEqual(
      (await page.evaluate(() => window.called)).sort(),
      ["alias", "early", "group", "identify", "page", "track", "track, no properties"],
    );
    await page.evaluate(() => window.portrait.flush());
    const events = await timeline(await anonymousId(page), 7);
    const byName = (name) => events.find((e) => (e.event ?? e.name) === name);
    assert.deepEqual(byName("Early").properties, { a: 1 });
    assert.deepEqual(byName("With Options").properties, { plan: "pro" });
    assert.deepEqual(byName("Callback Only").properties ?? {}, {});
    assert.equal(byName("Pricing").type, "page");
    assert.equal(byName("Pricing").properties.tier, 2, "the first object is the properties, wherever it is");
    assert.deepEqual(events.find((e) => e.type === "identify").traits, { role: "cto" });
    assert.equal(events.find((e) => e.type === "group").groupId, "acme");
    assert.equal(events.find((e) => e.type === "alias").previousId, "user-7");
    await context.close();
  });

  test("analytics.js's call options: the event's timestamp, messageId and context, the visitor's anonymousId; what the collector would refuse is reported and left out; a middleware gets the whole context and what it passes on is sent", async () => {
    const html = snippetPage({
      collector: rig.collector.url,
      // Campaigns read, nothing else captured on its own.
      options: { autocapture: { pageViews: false, clicks: false, forms: false, scroll: false, engagement: false } },
      before: `window.reported = []; portrait.on("error", (e) => window.reported.push([e.message, String(e.detail)]));`,
    });
    // Landing from a news site with a campaign and a query string.
    const context = await newContext(rig.browser);
    const page = await context.newPage();
    rig.site.page("/options", html);
    await page.goto(`${rig.site.origin}/options?utm_source=ads&utm_medium=cpc&q=ada`, { referer: "https://news.example/" });
    await page.waitForFunction(() => window.portrait?.user?.().anonymousId);
    await page.evaluate(() => new Promise((resolve) => window.portrait.ready(resolve)));
    const id = await anonymousId(page);
    const day = 86_400_000;
    const hourAgo = Date.now() - 3_600_000;
    await page.evaluate(({ hourAgo, day }) => {
      const context = {
        page: { referrer: null, variant: "b" }, campaign: { name: "spring", source: "mail" }, locale: "fr-FR",
        userAgent: "spoofed", library: { name: "wrapper" }, traits: { plan: "pro" },
      };
      window.portrait.track("Dated", { n: 1 }, { timestamp: new Date(hourAgo), messageId: "site-id-1", context, app: { build: 7 }, integrations: { All: false } });
      // The site's own retry of it: the same message id, counted once.
      window.portrait.track("Dated", { n: 2 }, { messageId: "site-id-1" });
      // A page view's properties are its page context too; wrong types are left out.
      window.portrait.page("Pricing", { path: "/pricing", title: "Plans" }, { timestamp: "not a time", context: { page: { url: 5 } } });
      // A screen's are not.
      window.portrait.screen("Home", { title: "Screen Title" });
      window.portrait.identify("user-o", { role: "cto" }, { timestamp: new Date(hourAgo).toISOString() });
      // What the collector would refuse: the SDK's own time and id instead.
      window.portrait.track("Too Old", {}, { timestamp: Date.now() - 40 * day });
      window.portrait.track("In Seconds", {}, { timestamp: Math.floor(Date.now() / 1000) });
      window.portrait.track("Long Id", {}, { messageId: "x".repeat(256) });
      window.portrait.alias("user-o2", { timestamp: new Date(hourAgo) });
      window.portrait.group("acme", { plan: "team" }, { context: { groupSource: "crm" } });
    }, { hourAgo, day });
    await page.evaluate(() => window.portrait.flush());
    const events = await timeline(id, 9);
    assert.deepEqual(names(events).sort(), ["Dated", "In Seconds", "Long Id", "Too Old", "alias", "group", "identify", "page", "screen"]);
    const named = (name) => events.find((e) => (e.event ?? e.type) === name);
    const dated = named("Dated");
    assert.deepEqual([dated.messageId, dated.properties.n], ["site-id-1", 1]);
    assert.ok(Math.abs(Date.parse(dated.timestamp) - hourAgo) < 60_000, `${dated.timestamp}: the call's time, not the send's`);
    assert.deepEqual([dated.context.page.path, dated.context.page.search, dated.context.page.variant], ["/options", "?utm_source=ads&utm_medium=cpc&q=ada", "b"]);
    assert.equal(named("page").context.page.referrer, "https://news.example/");
    assert.equal(dated.context.page.referrer, undefined, "null removes a page field");
    assert.deepEqual(dated.context.campaign, { name: "spring", source: "mail" }, "the call's campaign, whole");
    assert.equal(named("page").context.campaign.medium, "cpc");
    assert.equal(dated.context.locale, "fr-FR");
    assert.deepEqual(dated.context.library, { name: "wrapper" });
    assert.equal(dated.context.userAgent, named("page").context.userAgent, "the browser's user agent stays");
    assert.notEqual(dated.context.userAgent, "spoofed");
    assert.deepEqual([dated.context.traits, dated.context.app], [{ plan: "pro" }, { build: 7 }]);
    assert.equal(dated.context.integrations, undefined, "integrations are not context");
    const pricing = named("page");
    assert.deepEqual([pricing.context.page.path, pricing.context.page.title], ["/pricing", "Plans"]);
    assert.match(pricing.context.page.url, /\/options\?utm_source=ads&utm_medium=cpc&q=ada$/, "the URL of the wrong type left out");
    assert.notEqual(named("screen").context.page.title, "Screen Title");
    assert.ok(Math.abs(Date.parse(named("identify").timestamp) - hourAgo) < 60_000, "an ISO text");
    for (const name of ["page", "Too Old", "In Seconds"]) {
      assert.ok(Date.now() - Date.parse(named(name).timestamp) < 600_000, `${name}: a timestamp the collector would refuse gives way to the call's own`);
    }
    assert.match(named("Long Id").messageId, /^[0-9a-f-]{36}$/);
    assert.ok(Math.abs(Date.parse(named("alias").timestamp) - hourAgo) < 60_000, "alias(userId, options)");
    assert.equal(named("alias").previousId, "user-o");
    assert.equal(named("group").context.groupSource, "crm");
    const reported = await page.evaluate(() => window.reported);
    assert.deepEqual(reported.map(([message]) => message.split(" ")[0]).sort(), ["a", "an", "timestamp", "timestamp", "timestamp"], JSON.stringify(reported));
    assert.ok(reported.some(([, detail]) => detail === "page.url"));
    // anonymousId: the visitor's from now on.
    await page.evaluate(() => window.portrait.track("Elsewhere", {}, { anonymousId: "anon-from-options" }));
    assert.equal(await anonymousId(page), "anon-from-options");
    // A middleware sees the whole context, and what it passes on is sent: it deletes the
    // campaign and the query string, adds a key, and sets the time. Events it leaves alone
    // arrive as they would without it.
    const rich = `({ at: new Date(0), nested: [[1, null, "two"], { deep: [true] }], big: 2 ** 53 + 2, ratio: 0.25,
      money: { toJSON: () => "12.50 EUR" }, ["__proto__"]: { polluted: true }, empty: {} })`;
    await page.evaluate((rich) => window.portrait.track("Rich", (0, eval)(rich)), rich);
    await page.evaluate(({ hourAgo, rich }) => {
      window.portrait.addSourceMiddleware(({ payload, next }) => {
        const context = payload.obj.context;
        if (payload.obj.event === "Through Middleware") {
          window.contextKeys = Object.keys(context).sort();
          delete context.campaign;
          delete context.page.search;
          context.experiment = "x";
          context.counter = 5n; // JSON cannot write it: left out, the event still goes
          payload.obj.timestamp = new Date(hourAgo);
          payload.obj.anonymousId = "y".repeat(256); // refused by the collector: the visitor's own instead
        }
        next(payload);
      });
      window.portrait.track("Through Middleware", {}, { context: { app: { build: 8 } } });
      window.portrait.track("Rich Through", (0, eval)(rich));
      return window.portrait.flush();
    }, { hourAgo, rich });
    assert.deepEqual(
      await page.evaluate(() => window.contextKeys),
      ["app", "campaign", "channel", "firstTouch", "library", "locale", "page", "screen", "session", "timezone", "userAgent"],
    );
    // The new anonymous id joins the identified user's profile.
    const later = await timeline("anon-from-options", 13);
    const richest = (name) => later.find((e) => e.event === name);
    assert.deepEqual(richest("Rich Through").properties, richest("Rich").properties, "properties through the middleware as without it");
    assert.deepEqual(Object.keys(richest("Rich").properties).sort(), ["at", "big", "empty", "money", "nested", "ratio"], "a __proto__ key left out, the event kept");
    assert.deepEqual(richest("Rich Through").context, richest("Rich").context, "an untouched context as without it");
    assert.equal(later.find((e) => e.event === "Elsewhere").anonymousId, "anon-from-options");
    const mw = later.find((e) => e.event === "Through Middleware");
    assert.deepEqual([mw.context.experiment, mw.context.app, mw.context.campaign, mw.context.page.search, mw.context.counter], ["x", { build: 8 }, undefined, undefined, undefined]);
    const { experiment, app, campaign, ...kept } = mw.context;
    const { campaign: _, ...before } = richest("Rich").context;
    const { search, ...pageLeft } = before.page;
    assert.deepEqual(kept, { ...before, page: pageLeft }, "what the middleware left stays");
    assert.equal(mw.context.userAgent, dated.context.userAgent);
    assert.equal(mw.anonymousId, "anon-from-options");
    const reportedLater = (await page.evaluate(() => window.reported)).slice(reported.length);
    assert.deepEqual(reportedLater, [["an id is at most 255 bytes long", "y".repeat(256)]], "the long id, nothing else");
    assert.ok(Math.abs(Date.parse(mw.timestamp) - hourAgo) < 60_000, "the middleware's time");
    await context.close();
  });

  test("setAnonymousId or identify before the site's page(), with automatic page views on: one view, under the ids of then", async () => {
    const cases = [
      { path: "/stitched", calls: `portrait.setAnonymousId("stitched-anon");`, names: ["page"] },
      { path: "/identified", calls: `portrait.setAnonymousId("identified-anon"); portrait.identify("identified-once");`, names: ["identify", "page"] },
    ];
    for (const { path: pathname, calls, names: expected } of cases) {
      const html = snippetPage({
        collector: rig.collector.url,
        options: { autocapture: { clicks: false, forms: false, scroll: false, engagement: false } },
        before: `${calls} portrait.page("Home");`,
      });
      // The automatic view's wait runs on the page's clock, stopped once the SDK is ready.
      const context = await newContext(rig.browser);
      await context.clock.install();
      const { page } = await open(pathname, html, { context });
      const id = calls.match(/setAnonymousId\("([^"]+)"\)/)[1];
      await page.clock.pauseAt(Date.now() + 1_000);
      await page.clock.runFor(2_000); // past the automatic view's wait: its timer has run
      await page.evaluate(() => window.portrait.flush());
      await timeline(id, expected.length);
      await new Promise((resolve) => setTimeout(resolve, 300));
      const events = (await rig.collector.admin(`anonymous_id/${id}/events?limit=50`)).json.events;
      assert.deepEqual(names(events).sort(), expected, pathname);
      assert.equal(events.find((e) => e.type === "page").name, "Home", pathname);
      assert.equal((await stats(page)).captured, expected.length, `${pathname}: no automatic view besides the site's`);
      await context.close();
    }
  });

  test("analytics.js's trackLink, trackForm (trackClick, trackSubmit), setAnonymousId and once, before and after the SDK is there", async () => {
    const body = `<a id="docs" href="#docs" data-plan="pro">Docs</a><form id="signup" onsubmit="event.preventDefault()"><button id="go">Go</button></form>`;
    const html = snippetPage({
      collector: rig.collector.url,
      body,
      options: { autocapture: false },
      before: `${recordErrors("message")} portrait.setAnonymousId("anon-from-other-domain");
        window.onces = 0; portrait.once("track", () => window.onces++);
        portrait.trackClick(document.links, "Clicked Early"); portrait.trackSubmit(document.forms, "Submitted Early");`,
    });
    const { page, context } = await open("/legacy", html);
    await page.evaluate(() => new Promise((resolve) => window.portrait.ready(resolve)));
    assert.equal(await anonymousId(page), "anon-from-other-domain", "the queued setAnonymousId applied");
    await page.evaluate(() => {
      window.portrait.trackLink(document.getElementById("docs"), (el) => `Opened ${el.textContent}`, (el) => ({ plan: el.dataset.plan }));
      window.portrait.trackForm(document.querySelectorAll("form"), "Signed Up", { source: "form" });
    });
    await page.click("#docs");
    await page.click("#go");
    await page.evaluate(() => window.portrait.flush());
    const events = await timeline("anon-from-other-domain", 4);
    const byName = (name) => events.find((e) => e.event === name);
    assert.deepEqual(byName("Opened Docs").properties, { plan: "pro" });
    assert.deepEqual(byName("Signed Up").properties, { source: "form" });
    assert.ok(byName("Clicked Early") && byName("Submitted Early"), "the stub's trackClick and trackSubmit, replayed on live lists");
    assert.equal(await page.evaluate(() => window.onces), 1, "once heard the first track only");
    await page.evaluate(() => window.portrait.setAnonymousId("anon-2"));
    assert.equal(await anonymousId(page), "anon-2");
    // Bad input: a clear error, nothing changed, nothing thrown.
    await page.evaluate(() => {
      window.portrait.setAnonymousId("");
      window.portrait.trackLink(null, "Nothing");
      window.portrait.trackForm(42, "Nothing");
      window.portrait.trackLink(["#docs"], "Nothing");
    });
    assert.equal(await anonymousId(page), "anon-2");
    assert.deepEqual(await reported(page), [
      "setAnonymousId() needs an id",
      "trackForm() needs an element or a list of elements",
      "trackLink() needs an element or a list of elements",
    ]);
    await context.close();
  });

  test("a listener that throws is counted and reported, once, even when the error listener calls the SDK back", async () => {
    const html = snippetPage({ collector: rig.collector.url, options: { autocapture: false } });
    const { page, context, errors } = await open("/listener-throws", html);
    const seen = await page.evaluate(() => {
      const reported = [];
      window.portrait.on("track", () => {
        throw new Error("a track listener that throws");
      });
      // Reports each error as an event: its track throws again, which must not loop.
      window.portrait.on("error", (error) => {
        reported.push(error.message);
        window.portrait.track("SDK Error", { message: error.message });
      });
      window.portrait.track("A");
      return reported;
    });
    assert.deepEqual(seen, ["a track listener that throws"]);
    const counters = await stats(page);
    assert.deepEqual([counters.captured, counters.errors], [2, 2], "A and SDK Error captured; both listener errors counted");
    assert.deepEqual(errors, []);
    await context.close();
  });

  test("group, alias, ready, on/off and debug behave as in analytics.js", async () => {
    const html = snippetPage({
      collector: rig.collector.url,
      options: { autocapture: false },
      before: `window.readyBefore = 0; portrait.ready(() => window.readyBefore++);`,
    });
    const { page, context } = await open("/api", html);
    const seen = await page.evaluate(async () => {
      const heard = [];
      // analytics.js's listener arguments (the call's), then {messageId}.
      const listener = (event, properties, options, detail) => heard.push([event, properties, options, typeof detail.messageId]);
      const identified = [];
      window.portrait.on("identify", (...args) => identified.push([args[0], args[1], typeof args[3].messageId]));
      const pages = [];
      window.portrait.on("page", (...args) => pages.push(args.slice(0, 3)));
      // They chain; off() removes a once() listener by the function given; off(name) them all.
      let removed = 0;
      const onceRemoved = () => removed++;
      const chained = window.portrait.on("track", listener).once("track", onceRemoved).on("alias", () => removed++);
      window.portrait.off("track", onceRemoved).off("alias");
      const chainedToApi = chained === window.portrait;
      window.portrait.track("Heard", { plan: "pro" }, { context: { locale: "en" } });
      window.portrait.off("track", listener);
      window.portrait.track("Not Heard");
      window.portrait.identify("user-5", { role: "cto" });
      window.portrait.page("Docs", "Setup", { section: 2 });
      window.portrait.page();
      let readyAfter = 0;
      window.portrait.ready(() => readyAfter++);
      window.portrait.group("acme", { name: "Acme" });
      // Traits merge into the stored group's and user's, and each event carries them all.
      window.portrait.group({ plan: "pro" });
      window.portrait.identify({ seats: 3 });
      const group = window.portrait.group();
      window.portrait.screen("Settings", { tab: 2 });
      window.portrait.alias("user-42");
      const logged = [];
      const original = console.error;
      console.error = (...args) => logged.push(args.map(String).join(" "));
      window.portrait.debug(true);
      window.portrait.consent.set({ analytics: "maybe" });
      window.portrait.debug(false);
      window.portrait.consent.set({ analytics: "perhaps" });
      console.error = original;
      await window.portrait.flush();
      return { heard, identified, pages, readyAfter, logged, group, removed, chainedToApi };
    });
    assert.deepEqual(seen.heard, [["Heard", { plan: "pro" }, { context: { locale: "en" } }, "string"]], "heard while listening, not after off()");
    assert.deepEqual([seen.chainedToApi, seen.removed], [true, 0], "on/once/off chain; off() removed the once() listener and every alias listener");
    assert.deepEqual(seen.identified, [["user-5", { role: "cto" }, "string"], ["user-5", { role: "cto", seats: 3 }, "string"]], "the event's user id and merged traits, as analytics.js passes them");
    assert.deepEqual(seen.group, { groupId: "acme", traits: { name: "Acme", plan: "pro" } }, "group() reads the stored group");
    assert.deepEqual(seen.pages, [["Docs", "Setup", { section: 2 }], [null, null, {}]], "as analytics-next passes them: null names, an object of properties");
    assert.equal(await page.evaluate(() => window.readyBefore), 1, "a ready callback given before load runs once");
    assert.equal(seen.readyAfter, 1, "after load, at once");
    // Both refusals give the same message: one line means debug(false) silenced the second.
    assert.equal(seen.logged.length, 1, JSON.stringify(seen.logged));
    assert.match(seen.logged[0], /consent values/);
    const id = await anonymousId(page);
    const events = (await timeline(id, 9)).reverse();
    const groups = events.filter((e) => e.type === "group");
    assert.deepEqual(groups.map((g) => [g.groupId, g.traits]), [["acme", { name: "Acme" }], ["acme", { name: "Acme", plan: "pro" }]]);
    const identifies = events.filter((e) => e.type === "identify");
    assert.deepEqual(identifies.map((e) => [e.userId, e.traits]), [["user-5", { role: "cto" }], ["user-5", { role: "cto", seats: 3 }]]);
    const viewed = events.find((e) => e.type === "page");
    assert.deepEqual([viewed.name, viewed.category, viewed.properties.name, viewed.properties.category, viewed.properties.section], ["Setup", "Docs", "Setup", "Docs", 2], "name and category in the properties too, as analytics.js sends them");
    const screen = events.find((e) => e.type === "screen");
    assert.deepEqual([screen?.name, screen?.properties], ["Settings", { tab: 2, name: "Settings" }]);
    const alias = events.find((e) => e.type === "alias");
    assert.equal(alias.userId, "user-42");
    assert.equal(alias.previousId, "user-5", "previousId defaults to the current user");
    await context.close();
  });

  test("analytics-next's other shapes: track({event}), pageview, on('reset'), integrations that withhold an event, plugins reported, a callback that throws", async () => {
    const html = snippetPage({
      collector: rig.collector.url,
      options: { autocapture: false },
      // Queued by the stub before portrait.js arrives.
      before: `${recordErrors("message")} portrait.register({ name: "a plugin" }); portrait.pageview("/queued");`,
    });
    const { page, context, errors } = await open("/next-shapes", html);
    const before = await anonymousId(page);
    const seen = await page.evaluate(async () => {
      const p = window.portrait;
      p.addSourceMiddleware(({ payload, next }) => {
        if (payload.obj.event === "Withheld By Middleware") payload.obj.integrations["Segment.io"] = false;
        next(payload);
      });
      window.callbackRan = false;
      p.track({ event: "Object Form", properties: { plan: "pro" } }, { context: { app: { build: 3 } } })
        .track("Withheld", { a: 1 }, { integrations: { "Segment.io": false } }, () => (window.callbackRan = true))
        .track("Withheld Too", {}, { integrations: { Portrait: false } })
        .track("Withheld By Middleware")
        .track("Kept", {}, { integrations: { All: false } })
        .track("Callback Throws", {}, () => { throw new Error("a callback that throws"); });
      const answer = p.addDestinationMiddleware("Google Analytics", () => {});
      const chains = typeof answer.then === "function" && answer.track === p.track && (await answer) === undefined;
      p.track(["Named By An Array"]);
      const delivered = await p.flush();
      await new Promise((resolve) => setTimeout(resolve, 500)); // the callbacks' 300 ms
      let resets = 0;
      p.on("reset", () => resets++);
      p.reset();
      return { chains, delivered, resets, callbackRan: window.callbackRan };
    });
    assert.deepEqual(seen, { chains: true, delivered: true, resets: 1, callbackRan: true });
    const events = (await timeline(before, 5)).reverse();
    assert.deepEqual(names(events), ["page", "Object Form", "Kept", "Callback Throws", "Named By An Array"], "the withheld calls were not recorded");
    assert.equal(events[0].properties.path, "/queued", "pageview(url) is page({path: url})");
    assert.deepEqual([events[1].properties, events[1].context.app], [{ plan: "pro" }, { build: 3 }], "the object's properties, then the options");
    const messages = await reported(page);
    for (const expected of [/^register\(\) is for analytics-next/, /^addDestinationMiddleware\(\) is for/, /^a callback that throws$/]) {
      assert.ok(messages.some((m) => expected.test(m)), `${expected} among ${JSON.stringify(messages)}`);
    }
    assert.deepEqual(errors, [], "nothing thrown into the page");
    await context.close();
  });

  test("a callback into the module that fails (a timer run twice) is counted and reported, never thrown into the page", async () => {
    // A page whose timer wrapper (as zone.js-like libraries install) runs a callback twice:
    // the SDK's timer callbacks run once, so the second run fails inside the module's glue.
    const wrapper = `${recordErrors("message")}
      window.timerCallbacks = [];
      const setTimeoutOriginal = window.setTimeout;
      window.setTimeout = (callback, ms, ...args) => {
        window.timerCallbacks.push(callback);
        return setTimeoutOriginal(callback, ms, ...args);
      };`;
    const html = snippetPage({ collector: rig.collector.url, options: { autocapture: false, flushInterval: 50 }, before: wrapper });
    const { page, context, errors } = await open("/timers", html);
    await page.evaluate(() => new Promise((resolve) => window.portrait.ready(resolve)));
    await page.evaluate(() => window.portrait.track("Before"));
    await page.waitForFunction(() => window.portrait.stats().delivered === 1);
    const before = (await stats(page)).errors;
    const thrown = await page.evaluate(() => {
      const thrown = [];
      for (const callback of window.timerCallbacks) {
        try { callback(); } catch (error) { thrown.push(String(error)); }
      }
      return thrown;
    });
    assert.deepEqual(thrown, [], "nothing thrown into the page's code");
    const failures = (await stats(page)).errors - before;
    assert.ok(failures >= 1, "the second runs failed inside the SDK and were counted");
    assert.equal((await reported(page)).length, failures, "each reported on 'error'");
    assert.deepEqual(errors, []);
    // The module is still usable.
    await page.evaluate(() => window.portrait.track("After"));
    assert.equal(await page.evaluate(() => window.portrait.flush()), true);
    assert.deepEqual(names(await timeline(await anonymousId(page), 2)).sort(), ["After", "Before"]);
    await context.close();
  });

  test("a page's fetch wrapper and a getter among the arguments may call the SDK: the module stays whole, nothing is lost", async () => {
    const html = snippetPage({ collector: rig.collector.url, options: { autocapture: false } });
    const { page, context, errors } = await open("/reentrant", html);
    const id = await anonymousId(page);
    await page.evaluate(() => {
      const original = window.fetch;
      window.fetch = (url, init) => {
        window.headerId = window.portrait.user().anonymousId; // e.g. for a header of its own
        return original(url, init);
      };
      const properties = {
        get plan() {
          window.readInside = window.portrait.user(); // the SDK is busy with this very call
          window.statsInside = window.portrait.stats();
          window.portrait.track("From A Getter");
          return "pro";
        },
      };
      window.order = [];
      window.portrait.on("track", (event) => window.order.push(event));
      window.portrait.track("With Getter", properties);
      window.portrait.track("Right After"); // after the call made inside, which came first
    });
    await page.evaluate(() => window.portrait.flush());
    assert.deepEqual(await page.evaluate(() => window.order), ["With Getter", "From A Getter", "Right After"]);
    const events = await timeline(id, 3);
    assert.deepEqual(names(events).sort(), ["From A Getter", "Right After", "With Getter"]);
    assert.deepEqual(events.find((e) => e.event === "With Getter").properties, { plan: "pro" });
    assert.equal(await page.evaluate(() => window.headerId), id, "the wrapper read the SDK while it sent");
    assert.equal(await page.evaluate(() => window.readInside.anonymousId), null, "answered as before ready, not thrown");
    assert.equal(await page.evaluate(() => window.statsInside), null);
    await page.evaluate(() => window.portrait.track("After"));
    await page.evaluate(() => window.portrait.flush());
    assert.equal((await timeline(id, 4))[0].event, "After");
    assert.deepEqual([errors, (await stats(page)).errors], [[], 0]);
    await context.close();
  });

  test("a page that breaks what the SDK calls while it works (a throwing setTimeout, a throwing console in debug mode, a read-only key on Object.prototype, an element named querySelector, a document.cookie that is no text) leaves it working", async () => {
    const html = snippetPage({ collector: rig.collector.url, options: { autocapture: false }, before: recordErrors("message") });
    const { page, context, errors } = await open("/broken-browser", html);
    const id = await anonymousId(page);
    const result = await page.evaluate(() => {
      try {
        // Each breaks something the module calls with its state borrowed: a throw that
        // unwound through it would leave the SDK busy, every later call dropped.
        const setTimer = window.setTimeout;
        window.setTimeout = () => { throw new Error("a timer wrapper that throws"); };
        window.portrait.track("Timer Broken");
        window.portrait.track("Timer Broken", { again: true }); // reported once, not per call
        window.setTimeout = setTimer;
        const log = console.error;
        console.error = () => { throw new Error("a console that throws"); };
        window.portrait.debug(true);
        const cyclic = {};
        cyclic.self = cyclic;
        window.portrait.identify("u-broken", cyclic); // reported, so logged
        window.portrait.debug(false);
        console.error = log;
        Object.defineProperty(Object.prototype, "plan", { value: "inherited", writable: false, configurable: true });
        // (A `__proto__` key JSON.parse made is no trait, and sets no prototype.)
        window.portrait.identify("u-broken", JSON.parse('{"plan":"pro","__proto__":{"polluted":true}}'));
        const traits = window.portrait.user().traits;
        delete Object.prototype.plan;
        document.body.insertAdjacentHTML("beforeend", '<img name="querySelector">');
        history.pushState({}, "", "/broken-browser/next");
        window.portrait.track("After Navigation");
        Object.defineProperty(document, "cookie", { configurable: true, get: () => undefined, set() {} });
        window.portrait.reset();
        window.portrait.track("After Reset");
        return { traits: JSON.stringify(traits), plainTraits: Object.getPrototypeOf(traits) === Object.prototype, stats: window.portrait.stats(), newId: window.portrait.user().anonymousId };
      } catch (error) {
        return String(error);
      }
    });
    assert.equal(typeof result, "object", String(result));
    assert.equal(result.traits, '{"plan":"pro"}', "the traits kept, as own properties");
    assert.equal(result.plainTraits, true);
    assert.equal(result.stats?.captured, 6, "every call captured, none dropped by a busy module");
    assert.notEqual(result.newId, id);
    // Sent by the batch timer (set again once `setTimeout` works), no flush() asked.
    assert.deepEqual(names(await timeline(result.newId, 1)), ["After Reset"]);
    const events = await timeline(id, 5);
    assert.deepEqual(names(events).sort(), ["After Navigation", "Timer Broken", "Timer Broken", "identify", "identify"].sort());
    assert.equal(events.find((e) => e.event === "After Navigation").context.page.path, "/broken-browser/next");
    assert.deepEqual(events.find((e) => e.type === "identify" && e.traits?.plan).traits, { plan: "pro" });
    assert.equal((await reported(page)).filter((message) => message === "a timer wrapper that throws").length, 1);
    assert.deepEqual(errors, []);
    await context.close();
  });

  test("hostile arguments never throw into the page", async () => {
    const html = snippetPage({ collector: rig.collector.url, options: { autocapture: false }, before: recordErrors("message") });
    const { page, context, errors } = await open("/hostile", html);
    const threw = await page.evaluate(() => {
      const cyclic = { a: 1 };
      cyclic.self = cyclic;
      try {
        window.portrait.track(undefined, cyclic);
        window.portrait.track("Odd", { s: Symbol("x"), f() {}, n: NaN, big: 10n, d: new Date(0), nested: [[[]]] });
        window.portrait.identify(null, null);
        window.portrait.group(null, {});
        window.portrait.alias();
        window.portrait.consent.set({ marketing: true });
        window.portrait.consent.set("yes");
        window.portrait.page(42, {}, "x");
        window.portrait.identify("u1", cyclic); // the user, without traits JSON cannot write
        window.portrait.identify(7);
        window.portrait.identify(7, () => "traits that JSON leaves out");
        window.portrait.track("Bad Date", { d: new Date(NaN) });
        window.portrait.track("Getter", { get boom() { throw new Error("a getter that throws"); } });
        window.portrait.track("With toJSON", {
          day: { toJSON: () => "2026-11-30" },
          price: { cents: 999, toJSON() { return this.cents / 100; } },
          broken: { toJSON() { throw new Error("a toJSON that throws"); } },
          itself: { toJSON() { return this; } },
          wrapped: { toJSON: () => ({ toJSON: () => "not called" }) },
          omitted: { toJSON: () => undefined },
        });
        // Proxies whose traps throw, and a revoked one (any operation on it throws): read in
        // JavaScript, where a throw is caught; one that unwound through the module would
        // leave it busy for good.
        const revoked = Proxy.revocable({}, {});
        revoked.revoke();
        const throwing = () => { throw new Error("a proxy trap that throws"); };
        window.portrait.track("Proxies", {
          revoked: revoked.proxy,
          list: new Proxy([1, 2], { get: throwing }),
          prototype: new Proxy({ a: 1 }, { getPrototypeOf: throwing }),
          kept: new Proxy({ a: 1 }, {}),
          keptList: new Proxy([1, 2], {}),
        });
        window.portrait.identify(7, revoked.proxy);
        return false;
      } catch (error) {
        return String(error);
      }
    });
    assert.equal(threw, false);
    // None of it left the SDK stuck: a call after them is delivered, and so is the invalid
    // date (as null, as JSON writes it).
    await page.evaluate(() => window.portrait.track("Still Working"));
    // Two of the hostile calls make events the collector rejects (counted as refused and
    // reported): the flush that sent them answers `false`, and was answered.
    assert.equal(await flushWithin(page, 5_000), false);
    assert.equal((await page.evaluate(() => window.portrait.stats())).refused, 2);
    // `identify(7)` after `identify("u1", …)` is another person: the later calls are theirs.
    const user = "user_id/7/events?limit=500";
    await eventually(async () => {
      const { json } = await rig.collector.admin(user);
      const delivered = names(json?.events ?? []);
      return delivered.includes("Still Working") && delivered.includes("Bad Date") && delivered.includes("With toJSON");
    }, { message: "the calls after the hostile ones arrive" });
    const { json } = await rig.collector.admin(user);
    const withToJson = json.events.find((e) => e.event === "With toJSON");
    const asJson = await page.evaluate(() => JSON.parse(JSON.stringify({
      itself: { toJSON() { return this; } },
      wrapped: { toJSON: () => ({ toJSON: () => "not called" }) },
      omitted: { toJSON: () => undefined },
    })));
    assert.deepEqual(withToJson.properties, { day: "2026-11-30", price: 9.99, broken: null, ...asJson }, "values written as JSON writes them (toJSON)");
    const proxies = json.events.find((e) => e.event === "Proxies");
    assert.deepEqual(proxies?.properties, { revoked: {}, list: [], prototype: { a: 1 }, kept: { a: 1 }, keptList: [1, 2] }, "what a proxy's traps let be read");
    assert.equal(await page.evaluate(() => window.portrait.user().userId), "7");
    const errorsReported = await reported(page);
    assert.ok(errorsReported.includes(TRAITS_NOT_KEPT), "cyclic traits are reported");
    assert.ok(errorsReported.includes("group() needs a group id"), JSON.stringify(errorsReported));
    assert.deepEqual(errors, []);
    await context.close();
  });

  test("traits too large for any event are reported and not kept: the user's later identify calls still arrive", async () => {
    const html = snippetPage({ collector: rig.collector.url, options: { autocapture: false }, before: recordErrors("message") });
    const { page, context } = await open("/big-traits", html);
    await page.evaluate(() => {
      window.portrait.identify("big-traits-user", { plan: "team" });
      window.portrait.identify({ bio: "x".repeat(20_000) });
      window.portrait.identify({ seats: 3 });
    });
    assert.deepEqual(await page.evaluate(() => window.portrait.user().traits), { plan: "team", seats: 3 });
    assert.equal(await page.evaluate(() => localStorage.getItem("portrait.traits")), JSON.stringify({ plan: "team", seats: 3 }));
    assert.ok((await reported(page)).includes(TRAITS_NOT_KEPT), JSON.stringify(await reported(page)));
    assert.equal(await page.evaluate(() => window.portrait.flush()), true);
    const { json } = await rig.collector.admin("user_id/big-traits-user/events?limit=10");
    const traits = json.events.filter((e) => e.type === "identify").map((e) => e.traits);
    assert.deepEqual(traits.reverse(), [{ plan: "team" }, { plan: "team" }, { plan: "team", seats: 3 }]);
    await context.close();
  });
});
