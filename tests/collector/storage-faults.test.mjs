// Storage errors inside the profile Durable Objects, on real workerd: with every fourth commit
// failing at its last write in SQLite (`PORTRAIT_FAIL_COMMITS`), a sender that retries its 503s ends with
// the same profiles as on a collector without faults — no batch half-applied, none twice.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { ADMIN_KEY, browserEvent, encodeBeacon, eventually, launch, uuid } from "../support/collector.mjs";

let faulty;
let clean;
before(async () => {
  // A one-second housekeeping interval: failed identity work is retried after a second.
  faulty = await launch(undefined, { PORTRAIT_FAIL_COMMITS: "4", PORTRAIT_HOUSEKEEPING_MS: "1000" });
  clean = await launch();
});
after(async () => {
  await faulty.stop();
  await clean.stop();
});

/** Sends `body` until the collector answers something other than 503; returns the 503 count. */
async function sendUntilAccepted(collector, body) {
  for (let failures = 0; failures < 50; failures++) {
    const answer = await collector.beacon(undefined, { body });
    if (answer.status !== 503) {
      assert.equal(answer.status, 200, answer.text);
      return failures;
    }
  }
  assert.fail("50 failures in a row");
}

/** What both collectors must agree on, without times and generated ids. */
async function essentials(collector, anonymousId) {
  const { status, json } = await collector.profile("anonymous_id", anonymousId);
  assert.equal(status, 200);
  const timeline = (await collector.admin(`anonymous_id/${anonymousId}/events?limit=500`)).json.events;
  return {
    eventCount: json.eventCount,
    timeline: timeline.length,
    distinctInTimeline: new Set(timeline.map((e) => e.messageId)).size,
    counters: json.counters,
    traits: json.traits,
    identities: json.identities.map((i) => `${i.type}:${i.id}`).sort(),
  };
}

test("storage errors during batches and merges: every batch applied whole, once, after retries", async () => {
  const visitors = ["sf-a", "sf-b", "sf-c", "sf-d"].map((v) => `${v}-${Date.now()}`);
  const bodies = [];
  for (let round = 0; round < 12; round++) {
    for (const [n, visitor] of visitors.entries()) {
      const events = Array.from({ length: 5 }, (_, i) => browserEvent("track", visitor, { event: `Step ${i}`, properties: { round } }));
      // Visitors a and b turn out to be one person (the same email), later c and d: merges,
      // whose several rows commit together.
      if (round === 6 && n < 2) events.push(browserEvent("identify", visitor, { traits: { email: "shared@northwind.example", plan: "pro" } }));
      if (round === 9 && n >= 2) events.push(browserEvent("identify", visitor, { traits: { email: "other@northwind.example" } }));
      bodies.push(encodeBeacon({ batch: events }));
    }
  }
  let failures = 0;
  for (const body of bodies) {
    failures += await sendUntilAccepted(faulty, body);
    await sendUntilAccepted(clean, body);
  }
  // A sender retrying after a lost answer: every batch again, all duplicates.
  for (const body of bodies.slice(0, 8)) failures += await sendUntilAccepted(faulty, body);
  assert.ok(failures >= bodies.length / 8, `storage failures were injected: ${failures} retries`);

  for (const visitor of visitors) {
    const expected = await essentials(clean, visitor);
    await eventually(async () => JSON.stringify(await essentials(faulty, visitor)) === JSON.stringify(expected), {
      message: `the profile of ${visitor} as without faults`,
      describe: async () => JSON.stringify({ faulty: await essentials(faulty, visitor), expected }),
    });
  }
  const merged = await essentials(faulty, visitors[0]);
  assert.equal(merged.eventCount, 2 * (12 * 5 + 1), "a and b are one profile holding both histories");
  assert.equal(merged.counters["Step 0"], 24);
  assert.deepEqual(await essentials(faulty, visitors[1]), merged);
  assert.equal((await essentials(faulty, visitors[3])).eventCount, 2 * (12 * 5 + 1));
});

test("a panic (wasm trap) while a batch is applied: a 503, nothing of that batch stored, and the isolate serves the next requests", async () => {
  const trapping = await launch(undefined, { PORTRAIT_TRAP_ON_EVENT: "Trap Here" });
  try {
    const visitor = `trap-${Date.now()}`;
    const other = `trap-other-${Date.now()}`;
    assert.equal((await trapping.beacon([browserEvent("track", visitor, { event: "Before" })])).status, 200);
    // The object panics after applying "Kept Out" to its profile in memory, before committing.
    const trapped = [browserEvent("track", visitor, { event: "Kept Out" }), browserEvent("track", visitor, { event: "Trap Here" })];
    const answer = await trapping.beacon(trapped);
    assert.equal(answer.status, 503, `${answer.text} ${JSON.stringify(answer.json)}`);
    // The module is reset and its objects rebuilt from storage: the same person's next batch
    // and another person's are applied.
    assert.equal((await trapping.beacon([browserEvent("track", visitor, { event: "After" })])).status, 200);
    assert.equal((await trapping.beacon([browserEvent("track", other, { event: "Elsewhere" })])).status, 200);
    const { status, json } = await trapping.profile("anonymous_id", visitor);
    assert.equal(status, 200);
    assert.equal(json.eventCount, 2);
    assert.deepEqual(Object.keys(json.counters).sort(), ["After", "Before"]);
    // A retry meets the same bug: again a 503 (retryable), never a 500, and nothing half-written.
    assert.equal((await trapping.beacon(trapped)).status, 503);
    assert.equal((await trapping.profile("anonymous_id", visitor)).json.eventCount, 2);
    assert.equal((await trapping.profile("anonymous_id", other)).json.eventCount, 1);
  } finally {
    await trapping.stop();
  }
});

test("a batch that fails for one person after another's events were applied counts the SDK's dropped count once, and says so", async () => {
  // Every second commit of each profile object fails: B's first batch commits, its second
  // (with A's first, which commits) fails.
  const failing = await launch(undefined, { PORTRAIT_FAIL_COMMITS: "2" });
  try {
    const [a, b] = [uuid(), uuid()];
    assert.equal((await failing.beacon([browserEvent("track", b, { event: "First" })])).status, 200);
    const before = await failing.sdkDroppedEvents();
    const body = encodeBeacon({ batch: [browserEvent("track", a, { event: "Applied" }), browserEvent("track", b, { event: "Failed" })], dropped: 7 });
    const answer = await failing.beacon([], { body });
    assert.equal(answer.status, 503, answer.text);
    assert.equal(answer.json.dropped_counted, 7, "the SDK must not send the count again");
    assert.equal((await failing.sdkDroppedEvents()) - before, 7);
    // Its retry (from an SDK that sends the count again all the same) finds A's event
    // applied: not counted again.
    const retry = await failing.beacon([], { body });
    assert.deepEqual([retry.status, retry.json.accepted, retry.json.duplicates], [200, 1, 1], retry.text);
    assert.equal((await failing.sdkDroppedEvents()) - before, 7);
  } finally {
    await failing.stop();
  }
});

test("an erasure a storage failure stops part way names the profile ids to ask again by, and asked by them it finishes", async () => {
  // Every second commit of each profile object fails; an erasure's deletion is a commit.
  const failing = await launch(undefined, { PORTRAIT_FAIL_COMMITS: "2", PORTRAIT_HOUSEKEEPING_MS: "1000" });
  const erase = (pathname) => failing.request(pathname, { method: "DELETE", headers: { authorization: `Bearer ${ADMIN_KEY}` } });
  try {
    // One person, one commit: the erasure's deletion is the second, and fails after the
    // index let go of the person's ids.
    const visitor = uuid();
    const email = `${visitor}@example.com`;
    assert.equal((await failing.beacon([browserEvent("page", visitor), browserEvent("identify", visitor, { traits: { email } })])).status, 200);
    const stopped = await failing.profile("email", email, { method: "DELETE" });
    assert.equal(stopped.status, 503, stopped.text);
    assert.equal(stopped.json.profileId, `a:${visitor}`);
    assert.deepEqual(stopped.json.retry, [`/v1/profiles/profile_id/${encodeURIComponent(`a:${visitor}`).replaceAll("-", "%2D")}`]);
    assert.equal((await failing.profile("email", email, { method: "DELETE" })).status, 404, "the email is unlinked already");
    const finished = await erase(stopped.json.retry[0]);
    assert.equal(finished.status, 200, finished.text);
    assert.deepEqual([finished.json.eventsRemoved, finished.json.identities.length], [2, 2]);
    assert.equal((await failing.profile("profile_id", `a:${visitor}`)).status, 404);

    // A merged person: whatever step fails, following `retry` until every path answers
    // leaves nothing of either profile.
    const [laptop, phone, user] = [uuid(), uuid(), `user-${uuid()}`];
    assert.equal((await failing.beacon([browserEvent("identify", phone, { userId: user })])).status, 200);
    for (let sent = 0; sent < 5; sent++) {
      if ((await failing.beacon([browserEvent("page", laptop), browserEvent("identify", laptop, { userId: user })])).status === 200) break;
    }
    await eventually(async () => (await failing.profile("anonymous_id", laptop)).json?.profileId === `a:${phone}`, { message: "the laptop merged into the phone" });
    let failures = 0;
    const asked = [`/v1/profiles/user_id/${encodeURIComponent(user)}`];
    while (asked.length > 0) {
      assert.ok(failures < 20, "20 failures");
      const answer = await erase(asked.shift());
      if (answer.status === 503) {
        failures++;
        assert.ok(answer.json.retry.length > 0, answer.text);
        asked.push(...answer.json.retry);
      } else {
        assert.ok([200, 404].includes(answer.status), answer.text);
      }
    }
    assert.ok(failures > 0, "a failure was injected");
    // A forwarding record left answers a read 404 (its survivor is gone) but an erasure 200
    // (it erases itself).
    const left = await erase(`/v1/profiles/profile_id/${encodeURIComponent(`a:${laptop}`)}`);
    assert.equal(left.status, 404, `the laptop's forwarding record is gone: ${left.text}`);
    for (const [type, id] of [["anonymous_id", laptop], ["anonymous_id", phone], ["user_id", user], ["profile_id", `a:${laptop}`], ["profile_id", `a:${phone}`]]) {
      assert.equal((await failing.profile(type, id)).status, 404, `${type} ${id}`);
    }
  } finally {
    await failing.stop();
  }
});
