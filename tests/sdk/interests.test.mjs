// Interest tags on the device (the interest module, sdk/interests, around portrait_core::topics) in headless
// Chromium against the collector on local workerd: pages classified in the browser, weighted
// by attention, kept in storage, used by the page, cleared on withdrawal; only topic ids and
// weights leave the device.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import path from "node:path";
import { eventually, launchCollectorFor, newContext, openPage, snippetPage, useBrowserRig } from "../support/browser.mjs";
import { startProxy } from "../support/proxy.mjs";

const root = path.resolve(import.meta.dirname, "../..");
const rig = useBrowserRig();

const SPORT_PAGES = [
  ["Premier League football: match report and results", "Goals, fixtures and the league table after the weekend"],
  ["Champions League football tonight: team news", "Manchester United face a striker crisis before the match"],
  ["Football transfer window: the latest signings", "Which clubs signed new players before the deadline"],
];

/** A page about `title`, long enough to scroll, with the SDK; `body` is added to it. */
function article(title, description, { body = "", head = "", options = {}, before = "", collector = rig.collector.url } = {}) {
  return snippetPage({
    collector,
    options,
    before,
    title,
    head: `<meta name="description" content="${description}">${head}`,
    body: `<h1>${title}</h1>${body}<div style="height: 4000px"></div>`,
  });
}

/** Opens `html` at `pathname` in `context`; resolves once the SDK has its topic model. */
const openWithModel = (context, pathname, html) =>
  openPage(rig, pathname, html, { context, until: () => window.portrait?.stats?.()?.topicsModel === 1 });

/** Reads the page as a visitor would: active and scrolled to the end; then leaves it. */
async function read(page) {
  for (const y of [1000, 2000, 4000]) {
    await page.mouse.move(10, 10 + y / 100);
    await page.evaluate((y) => window.scrollTo(0, y), y);
    await page.waitForTimeout(300);
  }
  await page.close({ runBeforeUnload: true });
}

const interests = (page) => page.evaluate(() => window.portrait.interests({ limit: 10 }));

/** A visitor in `context` who read a sports page (sent through `collector`) until the collector's
 * `interests` tag has Sports first; `interestsTag()` reads that tag again. */
async function sportsFan(context, collector = rig.collector.url) {
  const [title, description] = SPORT_PAGES[2];
  const { page } = await openWithModel(context, "/sport/read", article(title, description, { collector }));
  const anonymousId = await page.evaluate(() => window.portrait.user().anonymousId);
  await read(page);
  const interestsTag = async () => (await rig.collector.profile("anonymous_id", anonymousId)).json?.tags?.find((t) => t.name === "interests");
  await eventually(async () => (await interestsTag())?.value[0]?.path === "/Sports", { message: "the collector's interests" });
  return { anonymousId, interestsTag };
}

/** Hides the page, as switching tabs does: the SDK reports the engagement (a "Page Engaged"). */
const hide = (page) =>
  page.evaluate(() => {
    Object.defineProperty(document, "hidden", { value: true, configurable: true });
    document.dispatchEvent(new Event("visibilitychange"));
  });

/** Engages with the page for over a second (input; scrolled to its end unless `scroll` is
 * false), then hides it. */
async function engageThenHide(page, { scroll = true } = {}) {
  await page.mouse.move(10, 10);
  if (scroll) await page.evaluate(() => window.scrollTo(0, 4000));
  await page.waitForTimeout(1_200);
  await hide(page);
}

describe("SDK: interests on the device", () => {
  test("three pages read on a topic make it the top interest; a bounce barely moves it; page events carry only topic ids and weights", async () => {
    const context = await newContext(rig.browser);
    for (const [i, [title, description]] of SPORT_PAGES.entries()) {
      const { page, errors } = await openWithModel(context, `/sport/${i}`, article(title, description));
      await read(page);
      assert.deepEqual(errors, []);
    }
    const { page: bounce } = await openWithModel(context, "/recipes/1", article("Easy chocolate cake recipe: baking for beginners", "Flour, butter, sugar and eggs: bake a sponge cake"));
    await bounce.close({ runBeforeUnload: true });

    const { page } = await openWithModel(context, "/empty", snippetPage({ collector: rig.collector.url }));
    const top = await interests(page);
    assert.equal(top[0].path, "/Sports", JSON.stringify(top));
    assert.equal(top[0].name, "Sports");
    const food = top.find((t) => t.path.startsWith("/Food & Drink"));
    assert.ok(food, `the bounce counted a little: ${JSON.stringify(top)}`);
    assert.ok(food.score < top[0].score / 5, `a bounce counts far less than three reads: ${JSON.stringify(top)}`);

    // What reached the collector: "Page Engaged" with [topic id, weight] pairs, no page text.
    const anonymousId = await page.evaluate(() => window.portrait.user().anonymousId);
    const engaged = await eventually(async () => {
      const { json } = await rig.collector.admin(`anonymous_id/${anonymousId}/events?limit=100`);
      const found = (json?.events ?? []).filter((e) => e.event === "Page Engaged" && e.properties.topics);
      return found.length >= 4 && found;
    }, { message: "four Page Engaged events with topics" });
    for (const event of engaged) {
      for (const key of Object.keys(event.properties)) assert.ok(["engaged_ms", "path", "topics"].includes(key), key);
      for (const [id, weight] of event.properties.topics) {
        assert.ok(Number.isInteger(id) && weight > 0 && weight <= 1, JSON.stringify(event.properties.topics));
      }
    }
    // The collector merged them into the profile's interests tag.
    const profile = await eventually(async () => {
      const { json } = await rig.collector.profile("anonymous_id", anonymousId);
      const tag = json?.tags?.find((t) => t.name === "interests");
      return tag && tag.value[0]?.path === "/Sports" && tag;
    }, { message: "an interests tag led by /Sports" });
    assert.equal(profile.kind, "analytical");
    await context.close();
  });

  test("interests credited while personalisation consent is pending stay on the device: a refusal then finds none queued", async () => {
    const context = await newContext(rig.browser);
    const [title, description] = SPORT_PAGES[1];
    const { page } = await openWithModel(context, "/sport/pending", article(title, description, { options: { consent: "pending" } }));
    await engageThenHide(page);
    assert.equal((await interests(page))[0]?.path, "/Sports", "credited on the device while pending");
    await page.evaluate(() => window.portrait.consent.set({ analytics: "granted", personalization: "denied" }));
    assert.equal(await page.evaluate(() => window.portrait.flush()), true);
    const anonymousId = await page.evaluate(() => window.portrait.user().anonymousId);
    const { json } = await rig.collector.admin(`anonymous_id/${anonymousId}/events?limit=100`);
    const engaged = json.events.filter((e) => e.event === "Page Engaged");
    assert.equal(engaged.length, 1, JSON.stringify(json.events.map((e) => e.event ?? e.type)));
    assert.ok(engaged[0].properties.engaged_ms >= 1_000);
    assert.equal(engaged[0].properties.topics, undefined, "no interests left the device");
    assert.deepEqual(await interests(page), []);
    await context.close();
  });

  test("withdrawing personalisation: the weights still queued leave without them, and the collector forgets the interests", async () => {
    const proxy = await startProxy(rig.collector.url);
    const context = await newContext(rig.browser);
    const { anonymousId, interestsTag } = await sportsFan(context, proxy.url);
    const [title, description] = SPORT_PAGES[2];
    const { page } = await openWithModel(context, "/sport/withdrawn", article(title, description, { collector: proxy.url }));
    proxy.setDown(true);
    await engageThenHide(page);
    // The "Page Engaged" with its topics is queued: its send failed.
    await eventually(() => page.evaluate(() => window.portrait.stats().retries >= 1), { message: "a failed send" });
    const stored = () => page.evaluate(() => Object.keys(localStorage).filter((k) => k.startsWith("portrait.q.")).map((k) => localStorage.getItem(k)).join());
    assert.match(await stored(), /topics/, "stored with the queue");
    await page.evaluate(() => window.portrait.consent.set({ personalization: "denied" }));
    assert.doesNotMatch(await stored(), /topics/, "and stored again without them");
    proxy.setDown(false);
    const events = await eventually(async () => {
      const { json } = await rig.collector.admin(`anonymous_id/${anonymousId}/events?limit=100`);
      return json?.events?.some((e) => e.event === "Consent Updated") && json.events;
    }, { message: "the queue delivered", ms: 30_000 });
    const engaged = events.filter((e) => e.event === "Page Engaged" && e.properties.path === "/sport/withdrawn");
    assert.equal(engaged.length, 1, JSON.stringify(events.map((e) => e.event ?? e.type)));
    assert.ok(engaged[0].properties.engaged_ms >= 1_000, JSON.stringify(engaged[0]));
    assert.equal(engaged[0].properties.topics, undefined, "no interests left the device");
    assert.equal(await interestsTag(), undefined, "the collector forgot the interests it had");
    await context.close();
    await proxy.stop();
  });

  test("refusing everything (\"reject all\", in one call or two): the withdrawal alone leaves the device, and the collector forgets the interests", async () => {
    const ways = [[{ analytics: false, personalization: false }], [{ analytics: false }, { personalization: "denied" }]];
    for (const calls of ways) {
      const context = await newContext(rig.browser);
      const { anonymousId, interestsTag } = await sportsFan(context);
      const [title, description] = SPORT_PAGES[1];
      const { page } = await openWithModel(context, "/sport/rejected", article(title, description));
      await page.mouse.move(10, 10);
      for (const call of calls) await page.evaluate((call) => window.portrait.consent.set(call), call);
      await engageThenHide(page);
      await eventually(async () => (await interestsTag()) === undefined, { message: `the collector forgot the interests (${JSON.stringify(calls)})` });
      const { json } = await rig.collector.admin(`anonymous_id/${anonymousId}/events?limit=100`);
      const withdrawals = json.events.filter((e) => e.event === "Consent Updated");
      assert.equal(withdrawals.length, 1, JSON.stringify(json.events.map((e) => e.event ?? e.type)));
      assert.deepEqual(withdrawals[0].properties, { analytics: "denied", personalization: "denied" });
      assert.equal(withdrawals[0].context.page, undefined, "no page, campaign or device context");
      assert.equal(withdrawals[0].context.userAgent, undefined);
      assert.equal(withdrawals[0].context.library.name, "portrait.js");
      const afterRefusal = json.events.filter((e) => e.properties?.path === "/sport/rejected" && e.event === "Page Engaged");
      assert.deepEqual(afterRefusal, [], "the page's own events are dropped");
      const stats = await page.evaluate(() => window.portrait.stats());
      assert.deepEqual([stats.delivered >= 1, stats.retries, stats.queued], [true, 0, 0], JSON.stringify(stats));
      await context.close();
    }
  });

  test("refusing everything before anything was sent (consent granted by default): nothing leaves the device", async () => {
    const proxy = await startProxy(rig.collector.url);
    const context = await newContext(rig.browser);
    // Refused at once: the page view waits its second, then the flush interval.
    const html = snippetPage({ collector: proxy.url });
    const { page } = await openPage(rig, "/first-visit", html, { context });
    await page.evaluate(() => window.portrait.consent.set({ analytics: false, personalization: false }));
    await page.evaluate(() => window.portrait.flush());
    await engageThenHide(page);
    await page.waitForTimeout(300);
    const stats = await page.evaluate(() => window.portrait.stats());
    assert.deepEqual([stats.delivered, stats.queued], [0, 0], JSON.stringify(stats));
    assert.equal(proxy.beacons(), 0, "no request at all");
    await context.close();
    await proxy.stop();
  });

  test("a Page Engaged a source middleware hands back after personalisation was withdrawn goes without its weights", async () => {
    const context = await newContext(rig.browser);
    const [title, description] = SPORT_PAGES[0];
    const before = `window.held = [];
      portrait.addSourceMiddleware(({ payload, next }) => {
        if (payload.obj.event === "Page Engaged") window.held.push({ topics: payload.obj.properties.topics, release: () => next(payload) });
        else next(payload);
      });`;
    const { page } = await openWithModel(context, "/sport/middleware", article(title, description, { before }));
    await engageThenHide(page);
    await eventually(() => page.evaluate(() => window.held.length === 1), { message: "the middleware holds the Page Engaged" });
    assert.ok(await page.evaluate(() => window.held[0].topics?.length > 0), "it carried weights then");
    await page.evaluate(() => window.portrait.consent.set({ personalization: "denied" }));
    await page.evaluate(() => window.held[0].release());
    assert.equal(await page.evaluate(() => window.portrait.flush()), true);
    const anonymousId = await page.evaluate(() => window.portrait.user().anonymousId);
    const { json } = await rig.collector.admin(`anonymous_id/${anonymousId}/events?limit=100`);
    const engaged = json.events.filter((e) => e.event === "Page Engaged");
    assert.equal(engaged.length, 1, JSON.stringify(json.events.map((e) => e.event ?? e.type)));
    assert.equal(engaged[0].properties.topics, undefined, "no interests left the device");
    await context.close();
  });

  test("a page that fits the window is credited as read to its end, with scroll capture off", async () => {
    const context = await newContext(rig.browser);
    const [title, description] = SPORT_PAGES[2];
    const html = snippetPage({
      collector: rig.collector.url,
      options: { autocapture: { scroll: false } },
      title,
      head: `<meta name="description" content="${description}">`,
      body: `<h1>${title}</h1>`,
    });
    const { page } = await openWithModel(context, "/sport/short", html);
    const [top] = await eventually(async () => {
      const topics = await page.evaluate(() => window.portrait.pageTopics());
      return topics.length > 0 && topics;
    }, { message: "the page classified" });
    await engageThenHide(page, { scroll: false });
    const anonymousId = await page.evaluate(() => window.portrait.user().anonymousId);
    const engaged = await eventually(async () => {
      const { json } = await rig.collector.admin(`anonymous_id/${anonymousId}/events?limit=100`);
      return (json?.events ?? []).find((e) => e.event === "Page Engaged" && e.properties.topics);
    }, { message: "Page Engaged with topics" });
    // weight = 0.1 + 0.6 × engaged / 120 s + 0.3 × deepest scroll / 100: about 0.41 read to the
    // end, 0.11 if the scroll were not read.
    const [, sent] = engaged.properties.topics.find(([id]) => id === top.id);
    const weight = sent / top.score;
    assert.ok(weight > 0.38 && weight < 0.5, `attention weight ${weight.toFixed(3)} (${JSON.stringify(engaged.properties)})`);
    await context.close();
  });

  test("with engagement and scroll capture off, attention still weighs the interests: input keeps a read engaged, and a page scrolled back up keeps its deepest scroll", async () => {
    const context = await newContext(rig.browser);
    const html = snippetPage({
      collector: rig.collector.url,
      options: { autocapture: { engagement: false, scroll: false } },
      head: '<meta name="portrait:topics" content="/Sports">',
      body: '<div style="height: 5000px">long</div>',
    });
    const { page } = await openWithModel(context, "/sport/quiet", html);
    await page.evaluate(() => window.scrollTo(0, 5000));
    for (let i = 0; i < 30; i++) {
      await page.mouse.move(10 + i, 10);
      await page.waitForTimeout(500);
    }
    await page.evaluate(() => window.scrollTo(0, 0));
    await hide(page);
    // The hint scores /Sports 1, so its interest is the weight: 0.1 + 0.6 × 15 s / 120 s + 0.3
    // (read to the end) ≈ 0.475; 0.425 if input did not keep the page engaged past 5 s, 0.175
    // if the scroll were read only where the window is when the page reports.
    const [top] = await interests(page);
    assert.equal(top?.path, "/Sports", JSON.stringify(top));
    assert.ok(top.score > 0.45 && top.score <= 1, `attention weight ${top.score}`);
    await context.close();
  });

  test("a single-page app's route is classified once the router has rendered it, not with the previous route's content", async () => {
    const context = await newContext(rig.browser);
    const html = article("Easy chocolate cake recipe: baking for beginners", "Flour, butter, sugar and eggs: bake a sponge cake");
    const { page } = await openWithModel(context, "/recipes/spa", html);
    assert.match((await page.evaluate(() => window.portrait.pageTopics({ refresh: true })))[0].path, /^\/Food & Drink/);
    // The router navigates, fetches the route's data, and renders it 300 ms later.
    const [title, description] = SPORT_PAGES[0];
    await page.evaluate(([title, description]) => {
      history.pushState({}, "", "/sport/spa");
      setTimeout(() => {
        document.title = title;
        document.querySelector("h1").textContent = title;
        document.querySelector('meta[name="description"]').content = description;
      }, 300);
    }, [title, description]);
    const topics = await eventually(
      async () => {
        const read = await page.evaluate(() => window.portrait.pageTopics());
        return read.length > 0 && !read[0].path.startsWith("/Food") && read;
      },
      { message: "the new route classified" },
    );
    assert.equal(topics[0].path, "/Sports", JSON.stringify(topics));
    await context.close();
  });

  test("personalisation granted with analytics refused: interests kept from page to page, nothing else stored, nothing sent", async () => {
    const context = await newContext(rig.browser);
    const before = `portrait.consent.set({ analytics: "denied", personalization: "granted" });`;
    for (const [i, [title, description]] of SPORT_PAGES.entries()) {
      await read((await openWithModel(context, `/sport/only-personal-${i}`, article(title, description, { before }))).page);
    }
    const { page } = await openWithModel(context, "/only-personal", snippetPage({ collector: rig.collector.url }));
    const top = await interests(page);
    assert.equal(top[0]?.path, "/Sports", JSON.stringify(top));
    const stored = await page.evaluate(() => Object.keys(localStorage).sort());
    assert.deepEqual(stored, ["portrait.consent", "portrait.interests"]);
    assert.deepEqual(await context.cookies(), []);
    const anonymousId = await page.evaluate(() => window.portrait.user().anonymousId);
    assert.equal((await rig.collector.profile("anonymous_id", anonymousId)).status, 404);
    await context.close();
  });

  test("data-portrait-show-if elements follow the interests; withdrawing personalisation consent clears them", async () => {
    const context = await newContext(rig.browser);
    for (const [i, [title, description]] of SPORT_PAGES.entries()) {
      await read((await openWithModel(context, `/sport/${i}`, article(title, description))).page);
    }
    const body = `<p id="sport" data-portrait-show-if="Interest:/Sports" hidden>for sport fans</p>
      <p id="food" data-portrait-show-if="interest:/Food & Drink">for cooks</p>
      <p id="either" data-portrait-show-if="interest:/Games | interest:299" hidden>either</p>
      <p id="typo" data-portrait-show-if="interest:/Games, interest:/Sports">a typo</p>
      <p id="typo-too" data-portrait-show-if="interest:/Games, interest:/Sports">the same typo</p>
      <p id="misspelt" data-portrait-show-if="interest:/Sport">a path the taxonomy lacks</p>
      <form id="form" data-portrait-show-if="interest:/Sports" hidden><input name="getAttribute"><input name="toggleAttribute"></form>
      <form name="querySelectorAll"></form>`;
    // (And a page's own classes named like the DOM's: the names are theirs.)
    const before = `class Document {} class Element {}
      window.reported = []; portrait.on("error", (e) => window.reported.push(e.message));`;
    const { page } = await openWithModel(context, "/home", snippetPage({ collector: rig.collector.url, body, before }));
    const visible = () => page.evaluate(() => ["sport", "food", "either", "typo", "misspelt", "form"].filter((id) => !document.getElementById(id).hidden));
    // (A form's fields named as its methods replace them, and a form named as the document's
    // `querySelectorAll` replaces that: the prototypes' are called.)
    assert.deepEqual(await visible(), ["sport", "either", "form"]);
    // A condition it cannot read: reported once, its elements hidden.
    assert.deepEqual(await page.evaluate(() => window.reported), [
      'data-portrait-show-if="interest:/Games, interest:/Sports": conditions are joined by `|`; the element stays hidden',
      'data-portrait-show-if="interest:/Sport": no topic of the taxonomy has this path or id (`interests()` lists them); the element stays hidden',
    ]);
    // interests({limit}): at most what is asked, none for 0 or less.
    const limited = await page.evaluate(() => [0, -1, 1, Infinity].map((limit) => window.portrait.interests({ limit }).length));
    assert.deepEqual(limited.slice(0, 3), [0, 0, 1]);
    assert.ok(limited[3] >= 1 && limited[3] <= 64);
    // A single-page app's next route brings its own show-if elements: they follow the
    // interests once the new view is read, not when the page is next hidden.
    await page.evaluate(() => {
      history.pushState({}, "", "/home/next");
      const later = Object.assign(document.createElement("p"), { id: "later", hidden: true, textContent: "new route" });
      later.dataset.portraitShowIf = "interest:/Sports";
      document.body.append(later);
    });
    await eventually(() => page.evaluate(() => !document.getElementById("later").hidden), { message: "the new route's element shown" });
    // One an app renders later still, with no navigation (after its data arrived), and one
    // whose condition it sets on an element already there.
    await page.evaluate(() => {
      setTimeout(() => {
        const fetched = Object.assign(document.createElement("section"), { id: "fetched", hidden: true });
        fetched.innerHTML = `<p id="inner" data-portrait-show-if="interest:/Sports" hidden>loaded</p>`;
        document.body.append(fetched);
        fetched.hidden = false;
        document.getElementById("food").dataset.portraitShowIf = "interest:/Sports";
      }, 300);
    });
    await eventually(() => page.evaluate(() => !document.getElementById("inner")?.hidden && !document.getElementById("food").hidden), {
      message: "the late elements decided",
    });
    // The page's own close button hides a shown element: it stays closed through the
    // decisions the page's later changes start (the decision itself did not change).
    await page.evaluate(() => {
      document.getElementById("sport").hidden = true;
      document.body.append(document.createElement("div"));
    });
    await page.waitForTimeout(300);
    assert.equal(await page.evaluate(() => document.getElementById("sport").hidden), true, "closed by the page");
    assert.ok((await interests(page)).length > 0, "interests before the withdrawal");
    const announced = page.evaluate(() => new Promise((resolve) => window.portrait.on("interests", resolve)));
    await page.evaluate(() => window.portrait.consent.set({ personalization: "denied" }));
    assert.deepEqual(await announced, [], "the 'interests' event announces the empty set");
    assert.deepEqual(await interests(page), []);
    assert.deepEqual(await visible(), []);
    assert.equal(await page.evaluate(() => localStorage.getItem("portrait.interests")), null);
    await context.close();
  });

  test("a page with data-portrait-show-if elements decides them at ready, without waiting for the browser to be idle", async () => {
    const context = await newContext(rig.browser);
    const [title, description] = SPORT_PAGES[0];
    await read((await openWithModel(context, "/sport/0", article(title, description))).page);
    // A page whose idle callbacks never come: the show-if element must not wait for one.
    const neverIdle = `window.requestIdleCallback = () => 0;`;
    const body = `<p id="sport" data-portrait-show-if="interest:/Sports" hidden>for sport fans</p>`;
    const { page } = await openPage(rig, "/never-idle", snippetPage({ collector: rig.collector.url, body, before: neverIdle }), { context });
    await eventually(() => page.evaluate(() => !document.getElementById("sport").hidden), { message: "the element shown" });
    await context.close();
  });

  test("each part of a page is read: meta tags, Open Graph, article tags, JSON-LD, headings, hints, the visible text", async () => {
    const html = snippetPage({ collector: rig.collector.url, title: "Welcome", options: { topicsVisibleText: true }, body: "<p>Hello</p>" });
    const { page, context } = await openWithModel(await newContext(rig.browser), "/parts", html);
    const SPORT = "Premier League football match report: goals, results and the league table";
    const jsonLd = (value) => `<script type="application/ld+json">${JSON.stringify(value)}</script>`;
    const parts = {
      "meta description": `<meta name="description" content="${SPORT}">`,
      "og:title": `<meta property="og:title" content="${SPORT}">`,
      "og:description": `<meta property="og:description" content="${SPORT}">`,
      "meta keywords": `<meta name="keywords" content="football, premier league, match report, goals">`,
      "article:section": `<meta property="article:section" content="Football">`,
      "article:tag": `<meta property="article:tag" content="Premier League football">`,
      "JSON-LD headline": jsonLd({ "@type": "Thing", headline: SPORT }),
      "JSON-LD @graph articleSection": jsonLd({ "@graph": [{ "@type": "WebPage" }, { "@type": "Thing", articleSection: ["Football", "Premier League"] }] }),
      "JSON-LD about": jsonLd({ "@type": "Thing", about: [{ name: "Premier League football" }, "football results"] }),
      "og:title beside an empty name": `<meta name="" property="og:title" content="${SPORT}">`,
      "h2": `<h2>${SPORT}</h2>`,
      "h2 in lines": `<h2>Football<br>Premier<br>League<br>goals</h2>`,
      "data-portrait-topics": `<div data-portrait-topics="/Sports"></div>`,
      "visible text": `<p>${SPORT}. ${SPORT}.</p>`,
    };
    const firstWith = (part) =>
      page.evaluate((part) => {
        const holder = document.createElement("div");
        holder.innerHTML = part;
        const added = [...holder.childNodes];
        document.body.append(...added);
        const [first] = window.portrait.pageTopics({ refresh: true });
        added.forEach((node) => node.remove());
        return first?.path ?? "";
      }, part);
    assert.ok(!(await firstWith("")).startsWith("/Sports"), "the page alone is not about sport");
    for (const [name, part] of Object.entries(parts)) {
      assert.match(await firstWith(part), /^\/Sports/, name);
    }
    await context.close();
  });

  test("two tabs: each credit adds to what the other stored, and the other follows it at once; consent withdrawn in one holds in the other", async () => {
    const context = await newContext(rig.browser);
    const { page: cooking } = await openWithModel(context, "/tabs/recipe", article("Easy chocolate cake recipe: baking for beginners", "Flour, butter, sugar and eggs: bake a sponge cake"));
    const [title, description] = SPORT_PAGES[0];
    await read((await openWithModel(context, "/tabs/sport", article(title, description))).page);
    // The tab still open follows the other's credit at once: its interests and show-if.
    await eventually(async () => (await interests(cooking)).some((t) => t.path.startsWith("/Sports")), { message: "the open tab follows the credit" });
    await read(cooking); // opened before the sport page was credited
    const { page } = await openWithModel(context, "/tabs/home", snippetPage({ collector: rig.collector.url }));
    const paths = (await interests(page)).map((t) => t.path);
    assert.ok(paths.some((p) => p.startsWith("/Sports")) && paths.some((p) => p.startsWith("/Food & Drink")), JSON.stringify(paths));

    const { page: other } = await openWithModel(context, "/tabs/other", snippetPage({ collector: rig.collector.url }));
    await page.evaluate(() => window.portrait.consent.set({ personalization: "denied" }));
    await eventually(() => other.evaluate(() => window.portrait.consent.get().personalization === "denied"), { message: "the other tab follows" });
    assert.deepEqual(await interests(other), []);
    await read(other);
    assert.equal(await page.evaluate(() => localStorage.getItem("portrait.interests")), null, "nothing stored again by the other tab");
    await context.close();
  });

  test("on('interests') fires when the module starts (an empty top set included) and when a page read changes the top topics", async () => {
    const [title, description] = SPORT_PAGES[1];
    const html = snippetPage({
      collector: rig.collector.url,
      title,
      head: `<meta name="description" content="${description}">`,
      body: `<h1>${title}</h1><div style="height: 4000px"></div>`,
      before: `window.announced = []; portrait.on("interests", (top) => window.announced.push(top.map((t) => t.path)));`,
    });
    const { page, context } = await openWithModel(await newContext(rig.browser), "/announce", html);
    assert.deepEqual(await page.evaluate(() => window.announced), [[]], "nothing read yet: an empty top set, announced");
    await page.mouse.move(10, 10);
    await page.evaluate(() => window.scrollTo(0, 4000));
    await hide(page);
    const announced = await eventually(() => page.evaluate(() => window.announced.length > 1 && window.announced), { message: "an interests event" });
    assert.equal(announced.length, 2);
    assert.match(announced[1][0], /^\/Sports/);
    await context.close();
  });

  test("reset() forgets the interests, in memory and in storage, and in the site's other open tabs", async () => {
    const context = await newContext(rig.browser);
    const [title, description] = SPORT_PAGES[0];
    await read((await openWithModel(context, "/sport/reset", article(title, description))).page);
    const { page } = await openWithModel(context, "/empty", snippetPage({ collector: rig.collector.url }));
    const { page: other } = await openWithModel(context, "/other", snippetPage({ collector: rig.collector.url }));
    assert.equal((await interests(page))[0]?.path, "/Sports");
    assert.equal((await interests(other))[0]?.path, "/Sports");
    assert.notEqual(await page.evaluate(() => localStorage.getItem("portrait.interests")), null);
    await page.evaluate(() => window.portrait.reset());
    assert.deepEqual(await interests(page), []);
    assert.equal(await page.evaluate(() => localStorage.getItem("portrait.interests")), null);
    await eventually(async () => (await interests(other)).length === 0, { message: "the other tab forgets them too" });
    await context.close();
  });

  test("a refusal of personalisation on a page without storage (storage: memory) forgets the interests an earlier visit stored; a default's refusal there does not", async () => {
    const context = await newContext(rig.browser);
    const [title, description] = SPORT_PAGES[1];
    await read((await openWithModel(context, "/sport/before-memory", article(title, description))).page);
    const storedInterests = (page) => page.evaluate(() => localStorage.getItem("portrait.interests"));
    const memoryPage = (options) => snippetPage({ collector: rig.collector.url, options: { storage: "memory", ...options } });
    // Such a page reads no decision stored before: the visitor may have granted it there.
    const { page: byDefault } = await openPage(rig, "/memory-default", memoryPage({ consent: "denied" }), { context });
    assert.notEqual(await storedInterests(byDefault), null, "a default's refusal leaves them");
    const { page } = await openWithModel(context, "/memory-refused", memoryPage());
    await page.evaluate(() => window.portrait.consent.set({ personalization: false }));
    assert.equal(await storedInterests(page), null, "the visitor's refusal removes them");
    const { page: next } = await openWithModel(context, "/after-refusal", snippetPage({ collector: rig.collector.url }));
    assert.deepEqual(await interests(next), [], "the next page with storage reads none");
    // Granted again there (interests kept since), a later choice on the memory page that
    // refuses nothing leaves them: that page cannot know of the grant.
    await next.evaluate(() => localStorage.setItem("portrait.interests", "h1209600000,299:1700000000000"));
    await page.evaluate(() => window.portrait.consent.set({ analytics: true }));
    assert.notEqual(await storedInterests(page), null, "an earlier refusal is not applied again");
    await context.close();
  });

  test("a page the visitor never saw (a background tab closed unseen), or one the model cannot read, credits no interest; a hidden page's own scrolling is no engagement", async () => {
    const [title, description] = SPORT_PAGES[0];
    const unseen = await newContext(rig.browser);
    await unseen.addInitScript(() => {
      Object.defineProperty(Document.prototype, "hidden", { get: () => true, configurable: true });
      Object.defineProperty(Document.prototype, "visibilityState", { get: () => "hidden", configurable: true });
    });
    const { page } = await openWithModel(unseen, "/sport/unseen", article(title, description));
    await page.evaluate(() => window.scrollTo(0, 4000)); // the page's own script
    await page.waitForTimeout(1_200);
    await page.close({ runBeforeUnload: true });
    const { page: next } = await openWithModel(unseen, "/next", snippetPage({ collector: rig.collector.url }));
    assert.deepEqual(await interests(next), [], "nothing credited, nothing stored");
    await unseen.close();

    // Read, but with no word the model knows: the model's prior is no interest of the visitor's.
    const blank = await newContext(rig.browser);
    const { page: loading } = await openWithModel(blank, "/loading", snippetPage({ collector: rig.collector.url, title: "Loading…", body: `<div style="height: 4000px"></div>` }));
    assert.deepEqual(await loading.evaluate(() => window.portrait.pageTopics()), []);
    await read(loading);
    const { page: after } = await openWithModel(blank, "/after", snippetPage({ collector: rig.collector.url }));
    assert.deepEqual(await interests(after), []);
    await blank.close();

    // Seen, then hidden: while hidden, the page scrolls itself for two seconds.
    const context = await newContext(rig.browser);
    const { page: shown } = await openWithModel(context, "/sport/hidden-scroll", article(title, description));
    const id = await shown.evaluate(() => window.portrait.user().anonymousId);
    await hide(shown);
    const hiddenAt = await shown.evaluate(() => Date.now());
    await shown.evaluate(() => new Promise((resolve) => {
      let y = 0;
      const step = setInterval(() => window.scrollTo(0, (y += 400)), 200);
      setTimeout(() => resolve(clearInterval(step)), 2_000);
    }));
    await shown.close({ runBeforeUnload: true });
    await new Promise((resolve) => setTimeout(resolve, 500));
    const events = await eventually(async () => (await rig.collector.admin(`anonymous_id/${id}/events?limit=100`)).json?.events, { message: "the events" });
    // What was reported at the hide is the visible moment's; nothing is engaged after it.
    const afterHide = events.filter((e) => e.event === "Page Engaged" && Date.parse(e.timestamp) > hiddenAt + 100);
    assert.deepEqual(afterHide.map((e) => e.properties.engaged_ms).filter((ms) => ms > 0), [], "no engaged time while hidden");
    await context.close();
  });

  test("a landing page its app renders late is read again when it is left: credited with what it showed", async () => {
    const context = await newContext(rig.browser);
    const [title] = SPORT_PAGES[0];
    // A client-rendered app: a shell, then its route, after the interest module read the shell.
    const render = `setTimeout(() => { document.title = ${JSON.stringify(title)}; document.querySelector("h1").textContent = ${JSON.stringify(title)}; }, 1_500);`;
    const html = snippetPage({ collector: rig.collector.url, title: "Loading…", body: `<h1>Loading…</h1><div style="height: 4000px"></div>`, before: render });
    const { page } = await openWithModel(context, "/app", html);
    await page.waitForFunction((title) => document.title === title, title);
    await read(page);
    const { page: next } = await openWithModel(context, "/app/next", snippetPage({ collector: rig.collector.url }));
    assert.equal((await interests(next))[0]?.path, "/Sports");
    await context.close();
  });

  test("the attention a page got before reset() or a withdrawal of personalisation is never credited after it (reset(): it is the forgotten visitor's)", async () => {
    const [title, description] = SPORT_PAGES[1];
    for (const mode of ["reset", "withdrawn and granted again"]) {
      const context = await newContext(rig.browser);
      const { page } = await openWithModel(context, "/sport/before", article(title, description));
      const before = await page.evaluate(() => window.portrait.user().anonymousId);
      await page.mouse.move(10, 10);
      await page.evaluate(() => window.scrollTo(0, 4000));
      await page.waitForTimeout(1_500);
      await page.evaluate((mode) => {
        if (mode === "reset") return window.portrait.reset();
        window.portrait.consent.set({ personalization: false });
        window.portrait.consent.set({ personalization: true });
      }, mode);
      const after = await page.evaluate(() => window.portrait.user().anonymousId);
      await hide(page);
      await page.evaluate(() => window.portrait.flush());
      assert.deepEqual(await interests(page), [], mode);
      const credited = async (id) => {
        const { json } = await rig.collector.admin(`anonymous_id/${id}/events?limit=100`);
        return (json?.events ?? []).filter((e) => e.event === "Page Engaged" && e.properties.topics);
      };
      if (mode === "reset") {
        await eventually(async () => (await credited(before)).length === 1, { message: "the read credited to the visitor reset() forgot" });
      }
      await page.waitForTimeout(300);
      assert.deepEqual(await credited(after), [], `${mode}: nothing credited after it`);
      await context.close();
    }
  });

  test("a topic model that is not one is a typed error on 'error'; the SDK goes on without interests", async () => {
    const html = snippetPage({
      collector: rig.collector.url,
      options: { topicsModel: "/sdk/snippet.min.js" },
      before: `window.__errors = []; portrait.on("error", (e) => window.__errors.push(e.message));`,
    });
    const { page, context, errors } = await openPage(rig, "/bad-model", html);
    const reported = await eventually(() => page.evaluate(() => window.__errors.length > 0 && window.__errors), { message: "an error event" });
    assert.match(reported[0], /^topic model is malformed: /);
    assert.equal(await page.evaluate(() => window.portrait.stats().topicsModel), 0);
    assert.deepEqual(await page.evaluate(() => window.portrait.pageTopics({ refresh: true })), []);
    await page.evaluate(() => window.portrait.track("Still Working"));
    assert.equal(await page.evaluate(() => window.portrait.flush()), true);
    assert.deepEqual(errors, []);
    await context.close();
  });

  test("a topic model that cannot be fetched is reported; the interest module still runs (show-if on site tags decided, on topics left as written)", async () => {
    // A visitor who read about sport (topic 299) before, as stored.
    const stored = `localStorage.setItem("portrait.interests", "h1209600000,299:" + Math.round(Date.now() / 1209600000 * 1e9));`;
    const html = snippetPage({
      collector: rig.collector.url,
      options: { topicsModel: "/no-such-model.bin" },
      body: `<p id="sports" data-portrait-show-if="interest:/Sports">scores</p>
        <p id="hidden-sports" data-portrait-show-if="interest:/Sports" hidden>scores</p>
        <p id="by-id" data-portrait-show-if="interest:299" hidden>scores</p>
        <p id="demo" data-portrait-show-if="tag:intent:demo">book a demo</p>
        <p id="promo" data-portrait-show-if="interest:/Sports">promo</p>
        <p id="more" data-portrait-show-if="interest:/Sports" hidden>more</p>`,
      before: `${stored} window.__errors = []; portrait.on("error", (e) => window.__errors.push(e.message));`,
    });
    const { page, context, errors } = await openPage(rig, "/missing-model", html);
    const reported = await eventually(() => page.evaluate(() => window.__errors.length > 0 && window.__errors), { message: "an error event" });
    assert.match(reported[0], /no-such-model\.bin: HTTP 404/);
    await eventually(() => page.evaluate(() => document.getElementById("demo").hidden), { message: "the site-tag condition decided" });
    // Without the taxonomy a path cannot be told from another: undecided, the elements stay as
    // the HTML wrote them; the very id the visitor holds is shown.
    const hidden = () => page.evaluate(() => ["sports", "hidden-sports", "by-id"].map((id) => document.getElementById(id).hidden));
    assert.deepEqual(await hidden(), [false, true, false]);
    // The page's own changes to undecided elements (a close button, a "show more") stay,
    // through the decisions the page's later changes start.
    await page.evaluate(() => {
      document.getElementById("promo").hidden = true;
      document.getElementById("more").hidden = false;
      document.body.append(document.createElement("div"));
    });
    await page.waitForTimeout(300);
    assert.deepEqual(await page.evaluate(() => ["promo", "more"].map((id) => document.getElementById(id).hidden)), [true, false]);
    // Personalisation withdrawn: no topics, so none of them holds.
    await page.evaluate(() => window.portrait.consent.set({ personalization: false }));
    await eventually(async () => (await hidden()).every(Boolean), { message: "every topic condition hidden once withdrawn" });
    // Granted again, and another tab stores a read about sport: undecided again, so back
    // as the HTML wrote them, and the id the visitor holds shown.
    await page.evaluate(() => window.portrait.consent.set({ personalization: true }));
    const other = await context.newPage();
    await other.goto(rig.site.page("/missing-model/other", "<!doctype html><title>other</title>"));
    await other.evaluate(stored);
    await eventually(async () => JSON.stringify(await hidden()) === "[false,true,false]", { message: "the elements as written once topics came back" });
    assert.deepEqual(errors, []);
    await context.close();
  });

  test("the site's own hints win over the classifier", async () => {
    const context = await newContext(rig.browser);
    const html = article("Football results", "Scores", { head: `<meta name="portrait:topics" content="/Autos & Vehicles">` });
    await read((await openWithModel(context, "/hinted", html)).page);
    const { page } = await openWithModel(context, "/empty", snippetPage({ collector: rig.collector.url }));
    const top = await interests(page);
    assert.deepEqual(top.map((t) => t.path), ["/Autos & Vehicles"], JSON.stringify(top));
    await context.close();
  });

  test("the browser (wasm) and the native classify command give the same topics for the same page", async () => {
    const context = await newContext(rig.browser);
    const pages = [
      ["Mortgage rates fall as house prices rise", "Estate agents report more buyers"],
      ["New electric SUV review: range and charging", "We test drive the latest car"],
      ["東京の中古車販売店", "トヨタとホンダの車"],
      // Past the 300 characters a part is read to, only football: read alike, or not at all.
      [`Mortgage rates fall as house prices rise${" again".repeat(45)}${" football".repeat(40)}`, "Estate agents report more buyers"],
    ];
    const lines = [];
    const fromBrowser = [];
    const browserScores = [];
    for (const [i, [title, description]] of pages.entries()) {
      const pathname = `/same/${i}`;
      const { page } = await openWithModel(context, pathname, article(title, description));
      lines.push(JSON.stringify({ id: String(i), url: page.url(), title, description, headings: [title] }));
      browserScores.push(await page.evaluate(() => window.portrait.pageTopics().map((t) => [t.id, t.score])));
      const anonymousId = await page.evaluate(() => window.portrait.user().anonymousId);
      await read(page);
      const events = await eventually(async () => {
        const { json } = await rig.collector.admin(`anonymous_id/${anonymousId}/events?limit=100`);
        return (json?.events ?? []).find((e) => e.event === "Page Engaged" && e.properties.path === pathname);
      }, { message: `Page Engaged for ${pathname}` });
      fromBrowser.push(events.properties.topics.map(([id]) => id));
    }
    const cli = path.join(root, "target/debug/portrait");
    const answers = execFileSync(cli, ["topics", "--scores"], { input: lines.join("\n") }).toString().trim().split("\n").map((l) => JSON.parse(l));
    const native = answers.map((answer) => answer.label_ids);
    // Scores too, as pageTopics() rounds them (to 0.001).
    const round = (score) => Math.round(score * 1000) / 1000;
    assert.deepEqual(browserScores, answers.map((a) => a.label_ids.map((id, j) => [id, round(a.label_scores[j])])));
    assert.ok(native.every((labels) => labels.length > 0), JSON.stringify(native));
    // The browser sends its labels best first but leaves out weights that round to 0.000:
    // what it sent must be the native ranking's head.
    assert.ok(fromBrowser.every((sent) => sent.length > 0), JSON.stringify(fromBrowser));
    assert.deepEqual(fromBrowser, native.map((labels, i) => labels.slice(0, fromBrowser[i].length)));
    await context.close();
  });

  test("stored interests another script edited: topics outside the model and scores out of reach are left out", async () => {
    // Score 1 now, as the SDK stores it (log2 of the time-anchored sum, fixed point, 14-day
    // half-life); 60000 is no topic; 4 is worth 2^(10^9).
    const before = `const now = Math.round(Date.now() / 1209600000 * 1e9);
      localStorage.setItem("portrait.interests", "h1209600000,299:" + now + ",60000:" + now + ",4:" + (now + 1e18));`;
    const html = article("Untitled", "Nothing here", { before });
    const { page, context } = await openWithModel(await newContext(rig.browser), "/edited", html);
    const top = await interests(page);
    assert.deepEqual(top.map((t) => [t.id, Math.round(t.score * 100) / 100]), [[299, 1]]);
    await context.close();
  });

  test("the workspace's tag rules tag pages (URL, meta, selector); tags travel and personalise like topics", async () => {
    const rules = `[[workspaces.sdk.tag_rules]]
tag = "intent:pricing"
url = "/pricing*"

[[workspaces.sdk.tag_rules]]
tag = "product:analytics"
meta = "product-line=analytics"
selector = "#signup"
weight = 0.5

[[workspaces.sdk.tag_rules]]
tag = "broken:selector"
selector = "div:frobnicate"`;
    const tagged = await launchCollectorFor(rig.site.origin, rules);
    try {
      const context = await newContext(rig.browser);
      const before = `window.reported = []; portrait.on("error", (e) => window.reported.push(e.message));`;
      const page = (name, body = "", head = "") =>
        snippetPage({ collector: tagged.url, title: name, head, before, body: `${body}<div style="height: 4000px"></div>` });
      const first = await openWithModel(context, "/pricing/enterprise", page("Plans"));
      // A selector the browser refuses (the collector cannot tell): reported, the rule left out.
      assert.deepEqual(await first.page.evaluate(() => window.reported), [
        'tag rule broken:selector: the browser refuses the selector "div:frobnicate"; left out',
      ]);
      const anonymousId = await first.page.evaluate(() => window.portrait.user().anonymousId);
      await read(first.page);
      const analytics = '<meta name="product-line" content="Analytics">';
      await read((await openWithModel(context, "/product", page("Product", '<form id="signup"></form>', analytics))).page);
      await read((await openWithModel(context, "/other", page("Other", "", analytics))).page); // no #signup: no tag

      const body = `<p id="pricing" data-portrait-show-if="tag:intent:pricing" hidden>talk to sales</p>
        <p id="demo" data-portrait-show-if="tag:intent:demo" hidden>book a demo</p>`;
      const { page: home } = await openWithModel(context, "/", snippetPage({ collector: tagged.url, body }));
      assert.deepEqual(await home.evaluate(() => ["pricing", "demo"].filter((id) => !document.getElementById(id).hidden)), ["pricing"]);

      const events = await eventually(async () => {
        const { json } = await tagged.admin(`anonymous_id/${anonymousId}/events?limit=100`);
        const found = (json?.events ?? []).filter((e) => e.event === "Page Engaged");
        return found.length >= 3 && found;
      }, { message: "three Page Engaged events" });
      const sentTags = (path) => events.find((e) => e.properties.path === path)?.properties.tags?.map(([tag]) => tag);
      assert.deepEqual(sentTags("/pricing/enterprise"), ["intent:pricing"]);
      assert.deepEqual(sentTags("/product"), ["product:analytics"]);
      assert.equal(sentTags("/other"), undefined);
      // Both pages were read alike: the second rule's weight (0.5) halves what it sends. A page
      // may send its credit in parts (hidden, then left): what counts is their sum.
      const sentWeight = (path) =>
        events.filter((e) => e.properties.path === path).reduce((sum, e) => sum + (e.properties.tags?.[0]?.[1] ?? 0), 0);
      const ratio = sentWeight("/product") / sentWeight("/pricing/enterprise");
      assert.ok(ratio > 0.4 && ratio < 0.6, `weight 0.5: ${ratio} (${JSON.stringify(events.map((e) => [e.properties.path, e.properties.tags]))})`);
      const tag = await eventually(async () => {
        const { json } = await tagged.profile("anonymous_id", anonymousId);
        return json?.tags?.find((t) => t.name === "site_tags");
      }, { message: "a site_tags tag" });
      assert.deepEqual(tag.value.map((t) => t.tag), ["intent:pricing", "product:analytics"]);
      await context.close();
    } finally {
      await tagged.stop();
    }
  });

  test("settings that come after ready but before the interest module starts: their tag rules tag that page", async () => {
    const tagged = await launchCollectorFor(rig.site.origin, `[[workspaces.sdk.tag_rules]]\ntag = "intent:pricing"\nurl = "/pricing*"`);
    const proxy = await startProxy(tagged.url);
    const release = proxy.holdSettings();
    let openModule;
    const moduleHeld = new Promise((resolve) => (openModule = resolve));
    try {
      const context = await newContext(rig.browser);
      await context.route("**/portrait-interests.js", async (route) => (await moduleHeld, route.continue()));
      const html = snippetPage({ collector: proxy.url, title: "Plans", body: `<div style="height: 4000px"></div>` });
      const { page } = await openPage(rig, "/pricing/late", html, { context });
      await page.evaluate(() => new Promise((resolve) => window.portrait.ready(resolve)));
      release();
      await page.waitForFunction(() => window.portrait.consent.get().analytics === "granted", null, { timeout: 10_000 });
      openModule();
      await page.waitForFunction(() => window.portrait.stats().topicsModel === 1);
      const anonymousId = await page.evaluate(() => window.portrait.user().anonymousId);
      await engageThenHide(page);
      const engaged = await eventually(async () => {
        const { json } = await tagged.admin(`anonymous_id/${anonymousId}/events?limit=100`);
        return (json?.events ?? []).find((e) => e.event === "Page Engaged");
      }, { message: "a Page Engaged" });
      assert.deepEqual(engaged.properties.tags?.map(([tag]) => tag), ["intent:pricing"], JSON.stringify(engaged.properties));
      await context.close();
    } finally {
      release();
      openModule();
      await proxy.stop();
      await tagged.stop();
    }
  });
});
