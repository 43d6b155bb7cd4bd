// Faults between the browser and the collector, and in the browser itself: each test ends
// with the reconciliation check — the events the SDK says it captured (its own counters)
// are exactly the events stored across profiles: none lost, none counted twice.
import { execFileSync } from "node:child_process";
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { eventually, launchCollectorFor, openPage, snippetPage, useBrowserRig } from "../support/browser.mjs";
import { startProxy } from "../support/proxy.mjs";
import { freshState } from "../support/collector.mjs";

const rig = useBrowserRig();

const stats = (page) => page.evaluate(() => window.portrait.stats());
const anonymousId = (page) => page.evaluate(() => window.portrait.user().anonymousId);

/** Tracks `count` events named `name` (property `i`), `every` ms apart, from inside the page. */
const stream = (page, name, count, every = 0) =>
  page.evaluate(
    ([name, count, every]) =>
      new Promise((resolve) => {
        let i = 0;
        const next = () => {
          window.portrait.track(name, { i });
          if (++i === count) return resolve();
          setTimeout(next, every);
        };
        next();
      }),
    [name, count, every],
  );

/**
 * The reconciliation check. `pages`: the SDK instances that sent (their `stats()` counters,
 * read after delivery); `id`: the visitor they share. Waits until the SDK has delivered
 * everything it captured, then requires the profile to hold each captured event exactly once.
 */
async function reconcile(collector, pages, id, name) {
  const counters = await eventually(
    async () => {
      const all = await Promise.all(pages.map(stats));
      return all.every((c) => c.queued === 0 && c.delivered === c.captured) && all;
    },
    { ms: 30_000, message: "every captured event delivered", describe: async () => JSON.stringify(await Promise.all(pages.map(stats))) },
  );
  const captured = counters.reduce((sum, c) => sum + c.captured, 0);
  const { json: profile } = await collector.profile("anonymous_id", id);
  assert.equal(profile.eventCount, captured, `stored ${profile.eventCount} of ${captured} captured: ${JSON.stringify(counters)}`);
  assert.equal(profile.counters[name], captured);
  const { json } = await collector.admin(`anonymous_id/${id}/events?limit=1000`);
  const stored = json.events.filter((e) => e.event === name).map((e) => e.messageId);
  assert.equal(new Set(stored).size, captured, "the timeline holds each captured message id once");
  return { counters, captured };
}

/** The sum of what the collector's answers said (answers the browser may never have read whole). */
const answered = (proxy) =>
  proxy.seen.filter((r) => r.url.startsWith("/v1/b") && r.answer).reduce((sum, r) => ({ accepted: sum.accepted + r.answer.accepted, duplicates: sum.duplicates + r.answer.duplicates }), { accepted: 0, duplicates: 0 });

const page = (collector, options = {}) => snippetPage({ collector, options: { autocapture: false, batchSize: 10, flushInterval: 100, ...options } });

describe("faults on the wire (a fault proxy between Chromium and the collector)", () => {
  test("503, 429 and 500 answers, slow answers, lost or cut answers, and resets: nothing lost, nothing doubled", async () => {
    const proxy = await startProxy(rig.collector.url);
    const { page: tab, context } = await openPage(rig, "/wire-faults", page(proxy.url));
    // Each fault then one clean answer (`{}`): after a failure the SDK backs off and resends
    // what waits in one batch, so consecutive faults would meet few batches.
    const faults = [
      { status: 503, retryAfter: 1 },
      { status: 429, retryAfter: 1 },
      { slow: 2_500 },
      { truncate: "headers" },
      { reset: true },
      { lost: true },
      { truncate: "body" },
      { status: 500 },
      { lost: true },
    ];
    proxy.fail(...faults.flatMap((fault) => [fault, {}]));
    await stream(tab, "Through Faults", 300, 20);
    const { captured, counters } = await reconcile(rig.collector, [tab], await anonymousId(tab), "Through Faults");
    assert.equal(captured, 300);
    // Lost answers were for applied batches, which the SDK sent again: duplicates, recognised.
    // (Chromium reads an answer cut in its headers or body as a 200, so those are not resent.)
    const { accepted, duplicates } = answered(proxy);
    assert.equal(accepted, 300);
    assert.ok(duplicates >= 2, `the resent batches were recognised: ${duplicates}`);
    assert.ok(proxy.beacons() >= faults.length * 2, "every fault met a batch");
    // The SDK retried the 503, 429 and 500 answers; Chromium itself resends a POST whose reused connection
    // is reset before an answer, so resets and lost answers need not reach the SDK.
    assert.ok(counters[0].retries >= 3, JSON.stringify(counters));
    await context.close();
    await proxy.stop();
  });

  test("the collector killed (SIGKILL to workerd) twice mid-stream and restarted: every accepted event arrives once", async () => {
    const persist = freshState();
    const before = runtimePids();
    let collector = await launchCollectorFor(rig.site.origin, "", persist);
    const proxy = await startProxy(collector.url);
    const { page: tab, context } = await openPage(rig, "/killed", page(proxy.url));
    // 15 s of events at least: both kills (each with a collector restart) fall within it.
    let done = false;
    const streaming = stream(tab, "Through Restarts", 300, 50).then(() => {
      done = true;
    });
    for (const at of [700, 1_200]) {
      await new Promise((resolve) => setTimeout(resolve, at));
      assert.ok(!done, "the stream still runs at the kill");
      const runtime = runtimePids().filter((pid) => !before.includes(pid));
      assert.equal(runtime.length, 1, "one workerd to kill");
      process.kill(runtime[0], "SIGKILL");
      await collector.stop().catch(() => {});
      await new Promise((resolve) => setTimeout(resolve, 500)); // down: sends fail and back off
      collector = await launchCollectorFor(rig.site.origin, "", persist);
      proxy.retarget(collector.url);
    }
    await streaming;
    const { captured } = await reconcile(collector, [tab], await anonymousId(tab), "Through Restarts");
    assert.equal(captured, 300);
    assert.ok(proxy.seen.some((r) => !r.status), "some sends failed while the collector was down");
    await context.close();
    await proxy.stop();
    await collector.stop();
  });
});

describe("faults in the browser", () => {
  test("two tabs of one site sending at once: one visitor, no event sent twice", async () => {
    const proxy = await startProxy(rig.collector.url);
    const first = await openPage(rig, "/tab-a", page(proxy.url));
    const second = await openPage(rig, "/tab-b", page(proxy.url), { context: first.context });
    const id = await anonymousId(first.page);
    assert.equal(await anonymousId(second.page), id, "tabs share the visitor");
    await Promise.all([stream(first.page, "From Tabs", 150, 2), stream(second.page, "From Tabs", 150, 2)]);
    const { captured } = await reconcile(rig.collector, [first.page, second.page], id, "From Tabs");
    assert.equal(captured, 300);
    assert.deepEqual(answered(proxy), { accepted: 300, duplicates: 0 }, "no tab sent another's events");
    await first.context.close();
    await proxy.stop();
  });

  test("a tab closed while its batch is in flight: the batch lands once, however many copies were sent", async () => {
    const proxy = await startProxy(rig.collector.url);
    const { page: tab, context } = await openPage(rig, "/closed-in-flight", page(proxy.url, { batchSize: 20 }));
    const id = await anonymousId(tab);
    proxy.fail({ slow: 1_500 });
    await stream(tab, "Closed In Flight", 20);
    await eventually(() => proxy.beacons() >= 1, { message: "the batch is in flight" });
    await tab.close({ runBeforeUnload: true }); // pagehide re-sends the in-flight batch (keepalive)
    await eventually(async () => (await rig.collector.profile("anonymous_id", id)).json?.eventCount === 20, { message: "20 events stored" });
    await eventually(() => proxy.seen.filter((r) => r.url.startsWith("/v1/b") && r.answer).length >= 2, { message: "both copies answered" });
    assert.deepEqual(answered(proxy), { accepted: 20, duplicates: 20 });
    assert.equal((await rig.collector.profile("anonymous_id", id)).json.eventCount, 20);
    await context.close();
    await proxy.stop();
  });

  test("localStorage over its quota: the SDK keeps events in memory, counts the refused writes, and delivers", async () => {
    const proxy = await startProxy(rig.collector.url);
    // Fill the origin's storage before the SDK arrives, then prove it is full.
    const fill = `try { for (let i = 0, chunk = "x".repeat(1 << 20); ; i++) {
        try { localStorage.setItem("fill" + i, chunk); } catch (e) { if (chunk.length < 16) break; chunk = chunk.slice(chunk.length >> 1); }
      } } catch {}
      window.quotaFull = (() => { try { localStorage.setItem("probe", "0123456789abcdef"); return false; } catch { return true; } })();`;
    const html = snippetPage({ collector: proxy.url, options: { autocapture: false, batchSize: 10, flushInterval: 100 }, before: fill });
    const { page: tab, context, errors } = await openPage(rig, "/quota", html);
    assert.equal(await tab.evaluate(() => window.quotaFull), true, "storage is full");
    const errorsBefore = (await stats(tab)).errors;
    proxy.setDown(true); // failed sends make the SDK store its queue, which the quota refuses
    await stream(tab, "Over Quota", 40, 5);
    await eventually(async () => (await stats(tab)).retries >= 2, { message: "failed sends" });
    proxy.setDown(false);
    const { captured, counters } = await reconcile(rig.collector, [tab], await anonymousId(tab), "Over Quota");
    assert.equal(captured, 40);
    assert.ok(counters[0].errors > errorsBefore, `refused writes are counted: ${errorsBefore} before, ${JSON.stringify(counters)}`);
    assert.deepEqual(errors, [], "nothing thrown into the page");
    await context.close();
    await proxy.stop();
  });
});

/** The workerd processes this Node process runs (Miniflare spawns one per collector). */
function runtimePids() {
  try {
    return execFileSync("pgrep", ["-P", String(process.pid), "workerd"]).toString().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return []; // pgrep exits 1 when nothing matches
  }
}
