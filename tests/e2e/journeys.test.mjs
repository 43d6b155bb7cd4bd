// End-to-end journeys through the demo: the demo site (demo-site/), embedding the SDK with its
// snippet, in headless Chromium, against the collector on local workerd, with the demo's
// webhook receiver and the profile viewer — started the way `cargo xtask demo` starts them.
// Screenshots of the personalised home page and the viewer go to target/e2e-artifacts/.
import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { startDemo } from "../../demo-site/serve.mjs";
import { ADMIN_KEY, freshState } from "../support/collector.mjs";
import { eventually, launchBrowser, newContext } from "../support/browser.mjs";

const ARTIFACTS = path.resolve(import.meta.dirname, "../../target/e2e-artifacts");
const SECURITY = "/Computers & Electronics/Computer Security";
let demo;
let browser;

before(async () => {
  demo = await startDemo({ sitePort: 0, collectorPort: 0, persist: freshState(), log: () => {} });
  browser = await launchBrowser();
  mkdirSync(ARTIFACTS, { recursive: true });
});
after(async () => {
  await browser?.close();
  await demo?.stop();
});

/** Opens a demo page; resolves once the SDK is ready and has its topic model. */
async function open(context, pathname) {
  const page = await context.newPage();
  const errors = [];
  page.on("pageerror", (error) => errors.push(error.message));
  await page.goto(demo.url + pathname);
  await page.waitForFunction(() => window.portrait?.stats?.()?.topicsModel === 1);
  return Object.assign(page, { errors });
}

/** Reads the page as a visitor would (active, scrolled to the end), then leaves it. */
async function read(page) {
  for (const y of [800, 1600, 4000]) {
    await page.mouse.move(10, 10 + y / 100);
    await page.evaluate((y) => window.scrollTo(0, y), y);
    await page.waitForTimeout(250);
  }
  assert.deepEqual(page.errors, [], `${page.url()}: page errors`);
  await page.close({ runBeforeUnload: true });
}

async function admin(pathname) {
  const response = await fetch(`${demo.collector.url}/v1/${pathname}`, { headers: { authorization: `Bearer ${ADMIN_KEY}` } });
  return { status: response.status, json: await response.json() };
}

const tagsOf = (profile) => Object.fromEntries(profile.tags.map((t) => [t.name, t.value]));
const email = `ann.lee@acme-${Date.now().toString(36)}.example`;
const devices = {};

describe("journeys through the demo site", () => {
  test("1. a visitor reads three security pieces and pricing: security interests, a personalised home, intent decision", async () => {
    devices.laptop = await newContext(browser, { viewport: { width: 1280, height: 900 } });
    for (const pathname of ["/blog/zero-trust-networking.html", "/blog/cloud-misconfigurations.html", "/case-studies/harbor-bank.html", "/pricing.html"]) {
      await read(await open(devices.laptop, pathname));
    }
    const home = await open(devices.laptop, "/index.html");
    const interests = await home.evaluate(() => window.portrait.interests({ limit: 5 }));
    const specific = interests.filter((i) => i.path.split("/").length > 2);
    assert.equal(specific[0]?.path, SECURITY, JSON.stringify(interests));
    await eventually(() => home.evaluate(() => document.getElementById("hero")?.dataset.line === "security"), {
      message: "the home hero to switch to the security line",
    });
    assert.match(await home.textContent("#hero-title"), /secur/i);
    await home.screenshot({ path: path.join(ARTIFACTS, "home-personalised.png"), fullPage: false });
    await home.evaluate(() => window.portrait.flush());
    devices.laptopId = await home.evaluate(() => window.portrait.user().anonymousId);
    // The pages closed before sent theirs as they went (keepalive): their views and engaged
    // reads (the interests, the intent) may land after.
    const profile = await eventually(async () => {
      const { json } = await admin(`profiles/anonymous_id/${devices.laptopId}`);
      const tags = json.tags ? tagsOf(json) : {};
      return json.counters?.$page >= 5 && tags.intent_stage === "decision" && tags.interests?.some((i) => i.path === SECURITY) && json;
    }, { message: "the laptop's five page views, its intent and its interest", describe: async () => JSON.stringify((await admin(`profiles/anonymous_id/${devices.laptopId}`)).json) });
    const tags = tagsOf(profile);
    assert.equal(profile.counters.$page, 5);
    assert.equal(tags.intent_stage, "decision");
    assert.ok(tags.interests.some((i) => i.path === SECURITY), JSON.stringify(tags.interests));
    await home.close();
  });

  test("2. on a second device the visitor browses, requests a demo, then logs in on the first: one known profile, an account, a webhook", async () => {
    devices.phone = await newContext(browser, { viewport: { width: 390, height: 844 } });
    await read(await open(devices.phone, "/product/security.html"));
    const form = await open(devices.phone, "/demo.html");
    devices.phoneId = await form.evaluate(() => window.portrait.user().anonymousId);
    await form.fill("#demo-name", "Ann Lee");
    await form.fill("#demo-email", email);
    await form.fill("#demo-company", "Acme");
    await form.fill("#demo-title", "VP Engineering");
    await form.selectOption("#demo-employees", "201-500");
    await form.click("button[type=submit]");
    await form.waitForSelector("#demo-thanks:not([hidden])");
    await form.evaluate(() => window.portrait.flush());
    assert.deepEqual(form.errors, []);
    await form.close();

    const login = await open(devices.laptop, "/login.html");
    await login.fill("#login-email", email);
    await login.fill("#login-password", "correct horse battery staple");
    await login.click("button[type=submit]");
    await login.waitForSelector("#login-done:not([hidden])");
    await login.evaluate(() => window.portrait.flush());
    await login.close();

    const profile = await eventually(async () => {
      const { json } = await admin(`profiles/email/${encodeURIComponent(email)}`);
      const ids = json.identities?.map((i) => `${i.type}:${i.id}`) ?? [];
      return ids.includes(`anonymous_id:${devices.laptopId}`) && ids.includes(`anonymous_id:${devices.phoneId}`) ? json : null;
    }, { message: "one profile holding both devices" });
    const tags = tagsOf(profile);
    assert.equal(profile.traits.company, "Acme");
    assert.equal(tags.seniority, "vp");
    assert.equal(tags.employee_band, "201-500");
    assert.ok(tags.lead_score >= 50, `lead score ${tags.lead_score}`);
    assert.ok(profile.counters.$page >= 7, JSON.stringify(profile.counters));
    assert.ok(profile.identityHistory.some((h) => h.change === "merged"));
    for (const anonymousId of [devices.laptopId, devices.phoneId]) {
      assert.equal((await admin(`profiles/anonymous_id/${anonymousId}`)).json.profileId, profile.profileId);
    }
    devices.profileId = profile.profileId;

    const domain = email.split("@")[1];
    const { json: account } = await admin(`accounts/domain/${domain}`);
    assert.ok(account.members.some((m) => m.email === email), JSON.stringify(account.members));
    // The domain as a marketer may paste it: the same account.
    const pasted = await admin(`accounts/domain/${encodeURIComponent(`https://www.${domain.toUpperCase()}/about`)}`);
    assert.ok(account.id);
    assert.equal(pasted.json.id, account.id, JSON.stringify(pasted.json).slice(0, 300));

    const delivery = await eventually(
      () => demo.deliveries.find((d) => d.type === "audience.entered" && d.body.change.audience === "hot_leads" && d.body.profile.identities.some((i) => i.id === email)),
      { message: "the hot_leads webhook", describe: () => JSON.stringify(demo.deliveries.map((d) => d.type)) },
    );
    assert.equal(delivery.verified, true);
  });

  test("3. offline: the collector is down while the visitor browses and closes the tab; everything arrives once later", async () => {
    const context = await newContext(browser);
    let anonymousId;
    await demo.withCollectorDown(async () => {
      const first = await open(context, "/index.html");
      anonymousId = await first.evaluate(() => window.portrait.user().anonymousId);
      await read(first);
      await read(await open(context, "/pricing.html"));
      const last = await open(context, "/blog/index.html");
      await last.evaluate(() => window.portrait.flush().catch(() => {}));
      await last.close({ runBeforeUnload: true });
    });
    const back = await open(context, "/docs/index.html");
    await back.evaluate(() => window.portrait.flush());
    const profile = await eventually(async () => {
      const { json } = await admin(`profiles/anonymous_id/${anonymousId}`);
      return json.counters?.$page === 4 ? json : null;
    }, { message: "the four page views", describe: async () => JSON.stringify((await admin(`profiles/anonymous_id/${anonymousId}`)).json.counters) });
    const { json: timeline } = await admin(`profiles/anonymous_id/${anonymousId}/events?limit=200`);
    const ids = timeline.events.map((e) => e.messageId);
    assert.equal(new Set(ids).size, ids.length, "no event twice");
    assert.equal(profile.eventCount, ids.length);
    await context.close();
  });

  test("4. consent revoked: nothing is stored or sent; granting again starts capture", async () => {
    const context = await newContext(browser);
    const home = await open(context, "/index.html");
    const anonymousId = await home.evaluate(() => window.portrait.user().anonymousId);
    await home.evaluate(() => window.portrait.flush());
    await home.click("#why-toggle");
    await home.click("#why-revoke");
    await home.close({ runBeforeUnload: true });

    const denied = await open(context, "/pricing.html");
    await denied.evaluate(() => window.portrait.flush().catch(() => {}));
    // Only the refusal itself is kept, so the visitor is not asked again.
    const stored = await denied.evaluate(() =>
      Object.keys(localStorage).filter((k) => k.startsWith("portrait.") && k !== "portrait.consent"),
    );
    assert.deepEqual(stored, [], "no ids, no queue, no interests on the device");
    const cookies = (await context.cookies()).filter((c) => c.name.startsWith("portrait_"));
    assert.deepEqual(cookies.map((c) => c.name), [], "no id cookies");
    const before = (await admin(`profiles/anonymous_id/${anonymousId}`)).json;
    assert.equal(before.counters.$page, 1);

    await denied.click("#why-toggle");
    await denied.click("#why-grant");
    await denied.close({ runBeforeUnload: true });
    // A refusal forgot the anonymous id: the visitor comes back as someone new.
    const granted = await open(context, "/docs/index.html");
    const newId = await granted.evaluate(() => window.portrait.user().anonymousId);
    assert.notEqual(newId, anonymousId);
    await granted.evaluate(() => window.portrait.flush());
    const { json: timeline } = await eventually(async () => {
      const answer = await admin(`profiles/anonymous_id/${newId}/events?limit=100`);
      return answer.status === 200 ? answer : null;
    }, { message: "capture after consent is granted" });
    const paths = timeline.events.filter((e) => e.type === "page").map((e) => e.context.page.path);
    assert.deepEqual(paths, ["/docs/index.html"], "the denied page sent nothing");
    assert.equal((await admin(`profiles/anonymous_id/${anonymousId}`)).json.counters.$page, 1);
    await context.close();
  });

  test("5. the viewer shows the merged person with tags and charts", async () => {
    assert.ok(devices.profileId, "journey 2 ran");
    const context = await newContext(browser, { viewport: { width: 1280, height: 1000 } });
    const page = await context.newPage();
    const errors = [];
    page.on("pageerror", (error) => errors.push(error.message));
    await page.goto(`${demo.url}/viewer/#/profile/email/${encodeURIComponent(email)}`);
    await page.waitForFunction((id) => document.body.innerText.includes(id), devices.profileId, { timeout: 15_000 });
    await page.waitForFunction(() => document.body.innerText.includes("lead_score"));
    const text = await page.evaluate(() => document.body.innerText);
    for (const expected of ["seniority", "intent_stage", "merged", devices.laptopId, devices.phoneId]) {
      assert.ok(text.includes(expected), `the viewer shows ${expected}`);
    }
    assert.ok((await page.locator("main svg").count()) >= 2, "interest and score charts");
    await page.screenshot({ path: path.join(ARTIFACTS, "viewer-person.png") });
    await page.screenshot({ path: path.join(ARTIFACTS, "viewer-person-full.png"), fullPage: true });
    await page.goto(`${demo.url}/viewer/#/audiences`);
    await page.waitForFunction(() => document.body.innerText.includes("hot_leads"));
    assert.deepEqual(errors, []);
    await context.close();
    await devices.laptop.close();
    await devices.phone.close();
  });
});
