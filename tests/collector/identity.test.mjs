// Identity resolution and accounts on real workerd: devices joined by identify, merges that
// lose nothing (even with events in flight), people sharing a browser kept apart, placeholder
// ids, alias, custom id types, erasure of a merged person, and B2B accounts.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { browserEvent, eventually, launch, uuid } from "../support/collector.mjs";

let collector;
before(async () => {
  collector = await launch();
});
after(() => collector.stop());

const ids = (profile) => profile.identities.map((i) => `${i.type}:${i.id}`).sort();

async function send(events) {
  const sent = await collector.beacon(events);
  assert.equal(sent.status, 200, sent.text);
  return sent.json;
}

/** A timestamp `minutes` ago, so two devices' histories interleave in a known order. */
const ago = (minutes) => new Date(Date.now() - minutes * 60_000).toISOString();

async function allEvents(idType, id) {
  const events = [];
  let cursor = "";
  for (let page = 0; page < 20 && cursor !== null; page++) {
    const { status, json } = await collector.admin(
      `${idType}/${encodeURIComponent(id)}/events?limit=7${cursor ? `&cursor=${cursor}` : ""}`,
    );
    assert.equal(status, 200);
    events.push(...json.events);
    cursor = json.nextCursor;
  }
  return events;
}

describe("identity resolution", () => {
  test("a laptop and a phone, then a form and a login: one profile with both histories", async () => {
    const [laptop, phone, user] = [uuid(), uuid(), `user-${uuid()}`];
    const email = `${user}@example.com`;
    const firstVisit = ago(50);
    await send([
      browserEvent("page", laptop, { name: "Home", timestamp: firstVisit }),
      browserEvent("track", laptop, { event: "Docs Read", timestamp: ago(40) }),
    ]);
    await send([
      browserEvent("page", phone, { name: "Pricing", timestamp: ago(45) }),
      browserEvent("identify", phone, { userId: user, traits: { email, title: "CTO" }, timestamp: ago(30) }),
    ]);
    const login = browserEvent("identify", laptop, { userId: user, timestamp: ago(20) });
    assert.deepEqual(await send([login]), { accepted: 1, duplicates: 0, bots: 0, rejected: [] });

    const { json: profile } = await collector.profile("user_id", user);
    assert.equal(profile.profileId, `a:${phone}`, "the anonymous laptop profile merged into the user's");
    assert.deepEqual(ids(profile), [`anonymous_id:${laptop}`, `anonymous_id:${phone}`, `email:${email}`, `user_id:${user}`].sort());
    assert.deepEqual(profile.counters, { $page: 2, "Docs Read": 1, $identify: 2 });
    assert.equal(profile.traits.title, "CTO");
    assert.equal(profile.firstSeen, firstVisit, "first seen is the laptop's");
    const merge = profile.identityHistory.find((h) => h.change === "merged");
    assert.equal(merge.from, `a:${laptop}`);
    assert.deepEqual(merge.reason, { sharedIdentity: { type: "user_id", id: user } });

    // Every identifier finds the one profile, the merged-away id included.
    for (const [type, id] of [["anonymous_id", laptop], ["anonymous_id", phone], ["email", email], ["profile_id", `a:${laptop}`]]) {
      const found = await collector.profile(type, id);
      assert.equal(found.status, 200, `${type} ${id}`);
      assert.equal(found.json.profileId, `a:${phone}`, `${type} ${id}`);
    }
    // The timeline interleaves both devices by time, newest first, across pages.
    const timeline = await allEvents("user_id", user);
    assert.deepEqual(
      timeline.map((e) => `${e.anonymousId === laptop ? "laptop" : "phone"}:${e.type}`),
      ["laptop:identify", "phone:identify", "laptop:track", "phone:page", "laptop:page"],
    );

    // Merging is idempotent: the same login again is a duplicate and changes nothing.
    assert.deepEqual(await send([login]), { accepted: 0, duplicates: 1, bots: 0, rejected: [] });
    // Later anonymous events from the laptop reach the survivor.
    await send([browserEvent("track", laptop, { event: "Came Back" })]);
    const { json: after } = await collector.profile("user_id", user);
    assert.deepEqual(after.counters, { $page: 2, "Docs Read": 1, $identify: 2, "Came Back": 1 });
  });

  test("a known server-side user absorbs the browser that logs in", async () => {
    const [browser, user] = [uuid(), `crm-${uuid()}`];
    const server = await collector.segment("track", { userId: user, event: "Invoice Paid", messageId: uuid() });
    assert.equal(server.status, 200, server.text);
    await send([browserEvent("page", browser), browserEvent("identify", browser, { userId: user })]);
    const { json: profile } = await collector.profile("anonymous_id", browser);
    assert.equal(profile.profileId, `u:${user}`);
    assert.deepEqual(profile.counters, { "Invoice Paid": 1, $page: 1, $identify: 1 });
  });

  test("a merged profile reads the same after a restart", async () => {
    // The browser's one batch row moves to the survivor with the merge: the survivor must store
    // the merged state, since applying that row again would not redo the merge.
    const own = await launch();
    const [browser, user] = [uuid(), `restart-${uuid()}`];
    let before;
    try {
      const sent = await own.segment("identify", { userId: user, traits: { plan: "pro" }, messageId: uuid() });
      assert.equal(sent.status, 200, sent.text);
      await own.beacon([browserEvent("page", browser), browserEvent("identify", browser, { userId: user, traits: { seat: 3 } })]);
      before = await own.profile("user_id", user);
      assert.deepEqual(before.json.mergedProfiles, [`a:${browser}`]);
    } finally {
      await own.stop();
    }
    const again = await launch(own.persist);
    try {
      const after = await again.profile("user_id", user);
      assert.equal(after.status, 200);
      const withoutTime = ({ tags, series, ...profile }) => profile;
      assert.deepEqual(withoutTime(after.json), withoutTime(before.json));
    } finally {
      await again.stop();
    }
  });

  test("events sent while a merge is under way all land, once", async () => {
    const [laptop, phone, user] = [uuid(), uuid(), `user-${uuid()}`];
    await send([browserEvent("identify", phone, { userId: user })]);
    await send([browserEvent("page", laptop)]);
    const burst = Array.from({ length: 12 }, (_, i) => [browserEvent("track", laptop, { event: "Burst", properties: { i } })]);
    const login = [browserEvent("identify", laptop, { userId: user })];
    // The login (which merges) and the burst race; each batch is also sent twice.
    const batches = [login, ...burst];
    const answers = await Promise.all([...batches, ...batches].map((events) => collector.beacon(events)));
    for (const answer of answers) assert.equal(answer.status, 200, answer.text);
    const { json: profile } = await collector.profile("user_id", user);
    assert.deepEqual(profile.counters, { $identify: 2, $page: 1, Burst: 12 });
    assert.equal((await allEvents("user_id", user)).length, 15);
  });

  test("one message id that reached two profiles before they merged counts once", async () => {
    // Dedupe is per profile: the same events under two devices' ids (a client that resent
    // them under another anonymous id) are applied by both profiles, and the merge that the
    // shared user id starts must count them once. A control visitor gets them once.
    const [laptop, phone, control, user] = [uuid(), uuid(), uuid(), `user-${uuid()}`];
    const [orderId, engagedId] = [uuid(), uuid()];
    const [first, second, third] = [ago(12), ago(11), ago(10)];
    const shared = (anonymousId, userId, messageIds = [orderId, engagedId]) => [
      browserEvent("track", anonymousId, {
        messageId: messageIds[0], userId, event: "Order Completed", properties: { revenue: 120 }, timestamp: third,
      }),
      browserEvent("track", anonymousId, {
        messageId: messageIds[1], userId, event: "Page Engaged", properties: { topics: [[1, 0.8]], tags: [["intent:pricing", 0.5]] }, timestamp: third,
      }),
    ];
    await send([browserEvent("page", laptop, { timestamp: first }), ...shared(laptop, user)]);
    assert.deepEqual(await send([browserEvent("page", phone, { timestamp: second }), ...shared(phone, user)]), {
      accepted: 3, duplicates: 0, bots: 0, rejected: [],
    });
    await send([
      browserEvent("page", control, { timestamp: first }),
      browserEvent("page", control, { timestamp: second }),
      ...shared(control, `control-${user}`, [uuid(), uuid()]),
    ]);

    const merged = await eventually(async () => {
      const { json } = await collector.profile("user_id", user);
      return json.mergedProfiles.length === 1 && json;
    }, { message: "the two devices merged" });
    const { json: once } = await collector.profile("anonymous_id", control);
    assert.deepEqual(merged.counters, { $page: 2, "Order Completed": 1, "Page Engaged": 1 });
    assert.equal(merged.eventCount, 4);
    assert.deepEqual(merged.sessions, once.sessions);
    assert.deepEqual(merged.devices, once.devices);
    const tag = (profile, name) => profile.tags.find((t) => t.name === name);
    for (const name of ["interests", "site_tags", "rfm"]) {
      assert.ok(tag(once, name), `the control has ${name}`);
      assert.deepEqual(tag(merged, name), tag(once, name), name);
    }
  });

  test("two people sharing a browser are never fused", async () => {
    const [browser, alice, bob] = [uuid(), `alice-${uuid()}`, `bob-${uuid()}`];
    await send([
      browserEvent("identify", browser, { userId: alice, traits: { email: `${alice}@example.com` }, timestamp: ago(10) }),
      browserEvent("track", browser, { userId: alice, event: "Alice Clicked", timestamp: ago(9) }),
    ]);
    // Bob logs in on the same browser without a reset: same anonymous id.
    await send([
      browserEvent("identify", browser, { userId: bob, timestamp: ago(5) }),
      browserEvent("track", browser, { userId: bob, event: "Bob Clicked", timestamp: ago(4) }),
    ]);
    const { json: aliceProfile } = await collector.profile("user_id", alice);
    const { json: bobProfile } = await collector.profile("user_id", bob);
    assert.notEqual(aliceProfile.profileId, bobProfile.profileId);
    assert.deepEqual(aliceProfile.counters, { $identify: 1, "Alice Clicked": 1 });
    assert.deepEqual(bobProfile.counters, { $identify: 1, "Bob Clicked": 1 });
    assert.ok(!ids(aliceProfile).includes(`user_id:${bob}`));
    assert.ok(!ids(bobProfile).includes(`user_id:${alice}`));
    // The refused merge is on record on both sides.
    for (const profile of [aliceProfile, bobProfile]) {
      const refused = profile.identityHistory.find((h) => h.change === "refused");
      assert.ok(refused, `${profile.profileId} records the conflict`);
      assert.equal(refused.refusal.code, "different_users");
    }
  });

  test("erasing one of two people who shared a browser takes the merge refused with them out of the other's history", async () => {
    const [browser, alice, bob] = [uuid(), `alice-${uuid()}`, `bob-${uuid()}`];
    await send([browserEvent("identify", browser, { userId: alice, timestamp: ago(10) })]);
    await send([browserEvent("identify", browser, { userId: bob, timestamp: ago(5) })]);
    const { json: aliceProfile } = await collector.profile("user_id", alice);
    const refusals = async () => (await collector.profile("user_id", bob)).json.identityHistory.filter((h) => h.change === "refused");
    assert.deepEqual((await refusals()).map((h) => h.other), [aliceProfile.profileId]);

    const erased = await collector.profile("user_id", alice, { method: "DELETE" });
    assert.equal(erased.status, 200, erased.text);
    assert.equal(erased.json.refusalsForgotten, 1, erased.text);
    const { json: bobProfile } = await collector.profile("user_id", bob);
    assert.deepEqual(await refusals(), []);
    assert.ok(!JSON.stringify(bobProfile.identityHistory).includes(alice), JSON.stringify(bobProfile.identityHistory));
    // Asked again (a retried erasure finds the person gone): nothing more to forget, no error.
    assert.equal((await collector.profile("user_id", alice, { method: "DELETE" })).status, 404);
  });

  test("placeholder ids link nothing", async () => {
    const [first, second] = [uuid(), uuid()];
    for (const browser of [first, second]) {
      await send([browserEvent("identify", browser, { userId: "null", traits: { email: "undefined" } })]);
      await send([browserEvent("identify", browser, { userId: "guest" })]); // the workspace's own
    }
    const a = await collector.profile("anonymous_id", first);
    const b = await collector.profile("anonymous_id", second);
    assert.notEqual(a.json.profileId, b.json.profileId);
    assert.deepEqual(ids(a.json), [`anonymous_id:${first}`]);
    assert.equal((await collector.profile("user_id", "null")).status, 404);
    assert.equal((await collector.profile("user_id", "guest")).status, 404);
    // An event whose only id is a placeholder is refused with a clear reason.
    const refused = await collector.segment("track", { userId: "undefined", event: "X", messageId: uuid() });
    assert.equal(refused.status, 400, refused.text);
    assert.equal(refused.json.code, "placeholder_identity");
    assert.equal(refused.json.path, "batch[0].userId");
  });

  test("alias joins a previous user id, whether it arrives before or after; custom id types find the person", async () => {
    const [oldId, newId, browser, crmId] = [`old-${uuid()}`, `new-${uuid()}`, uuid(), `crm-${uuid()}`];
    await collector.segment("track", { userId: oldId, event: "Old Event", messageId: uuid() });
    await send([browserEvent("identify", browser, { userId: newId, traits: { crmId } })]);
    await send([browserEvent("alias", browser, { userId: newId, previousId: oldId })]);
    const { json: profile } = await collector.profile("user_id", oldId);
    // The aliasing browser holds the old id too, and merges into the profile that owned it.
    assert.equal(profile.profileId, `u:${oldId}`);
    assert.deepEqual(profile.counters, { "Old Event": 1, $identify: 1, $alias: 1 });
    assert.ok(ids(profile).includes(`user_id:${newId}`) && ids(profile).includes(`user_id:${oldId}`));
    assert.deepEqual(profile.identityHistory.find((h) => h.change === "merged").reason, {
      sharedIdentity: { type: "user_id", id: oldId },
    });
    const byCrm = await collector.profile("crm_id", crmId);
    assert.equal(byCrm.status, 200, byCrm.text);
    assert.equal(byCrm.json.profileId, `u:${oldId}`);
    assert.equal((await collector.profile("no_such_type", "x")).json.code, "bad_id_type");

    // An alias that arrives before the previous id was ever seen still joins it later.
    const [early, later] = [`early-${uuid()}`, `later-${uuid()}`];
    await collector.segment("alias", { userId: later, previousId: early, messageId: uuid() });
    await collector.segment("track", { userId: early, event: "Late Event", messageId: uuid() });
    const { json: joined } = await collector.profile("user_id", later);
    assert.deepEqual(joined.counters, { $alias: 1, "Late Event": 1 });
  });

  test("erasing a merged person removes every identifier and forwarding record", async () => {
    const [laptop, phone, user] = [uuid(), uuid(), `user-${uuid()}`];
    const email = `${user}@example.com`;
    await send([browserEvent("identify", phone, { userId: user, traits: { email } })]);
    await send([browserEvent("page", laptop), browserEvent("identify", laptop, { userId: user })]);
    const erased = await collector.profile("email", email, { method: "DELETE" });
    assert.equal(erased.status, 200, erased.text);
    assert.equal(erased.json.profileId, `a:${phone}`);
    assert.equal(erased.json.mergedProfilesRemoved, 1);
    assert.equal(erased.json.indexEntriesRemoved, 4);
    assert.equal(erased.json.eventsRemoved, 3);
    for (const [type, id] of [["anonymous_id", laptop], ["anonymous_id", phone], ["user_id", user], ["email", email], ["profile_id", `a:${laptop}`], ["profile_id", `a:${phone}`]]) {
      assert.equal((await collector.profile(type, id)).status, 404, `${type} ${id}`);
    }
  });

  test("a merged-away profile id answers for its survivor: its accounts, and its erasure", async () => {
    const [laptop, phone, user] = [uuid(), uuid(), `user-${uuid()}`];
    await send([browserEvent("identify", phone, { userId: user })]);
    await send([browserEvent("page", laptop), browserEvent("identify", laptop, { userId: user })]);
    const accounts = await collector.admin(`profile_id/a:${laptop}/accounts`);
    assert.equal(accounts.status, 200, accounts.text);
    assert.equal(accounts.json.profileId, `a:${phone}`);
    const erased = await collector.profile("profile_id", `a:${laptop}`, { method: "DELETE" });
    assert.equal(erased.status, 200, erased.text);
    assert.equal(erased.json.profileId, `a:${phone}`);
    assert.equal(erased.json.mergedProfilesRemoved, 1);
    assert.equal(erased.json.eventsRemoved, 3);
    for (const [type, id] of [["anonymous_id", laptop], ["anonymous_id", phone], ["user_id", user], ["profile_id", `a:${laptop}`], ["profile_id", `a:${phone}`]]) {
      assert.equal((await collector.profile(type, id)).status, 404, `${type} ${id}`);
    }
  });
});

describe("accounts", () => {
  test("group calls and business emails gather people into an account", async () => {
    const [ann, bob, cat] = [uuid(), uuid(), uuid()];
    const domain = `acme-${uuid().slice(0, 8)}.com`;
    const group = `acme-${uuid()}`;
    await send([
      browserEvent("identify", ann, { userId: `ann-${ann}`, traits: { name: "Ann Lee", email: `ann@${domain}`, title: "VP Engineering" } }),
      browserEvent("group", ann, { userId: `ann-${ann}`, groupId: group, traits: { name: "Acme", domain, industry: "Software", employees: 250 } }),
      browserEvent("page", ann, { userId: `ann-${ann}` }),
    ]);
    // Bob never calls group: his work email's domain links him (inferred).
    await send([browserEvent("identify", bob, { traits: { name: "Bob Stone", email: `Bob@${domain.toUpperCase()}` } })]);
    // Cat uses free mail: no account.
    await send([browserEvent("identify", cat, { traits: { email: "cat@gmail.com" } })]);

    const { status, json: account } = await collector.account(encodeURIComponent(group));
    assert.equal(status, 200);
    assert.equal(account.name, "Acme");
    assert.equal(account.domain, domain);
    assert.equal(account.industry, "Software");
    assert.equal(account.memberCount, 2);
    const members = Object.fromEntries(account.members.map((m) => [m.name, m]));
    assert.equal(members["Ann Lee"].link, "explicit");
    assert.equal(members["Ann Lee"].title, "VP Engineering");
    assert.equal(members["Bob Stone"].link, "inferred");
    assert.equal(account.engagement.last7d, 4);
    assert.ok(account.lastActivity);

    const byDomain = await collector.account(`domain/${domain}`);
    assert.equal(byDomain.json.id, group);
    const ofBob = await collector.admin(`anonymous_id/${bob}/accounts`);
    assert.deepEqual(ofBob.json.accounts.map((a) => [a.link, a.account.id]), [["inferred", group]]);
    const ofCat = await collector.admin(`anonymous_id/${cat}/accounts`);
    assert.deepEqual(ofCat.json.accounts, []);
    assert.equal((await collector.account("no-such-account")).status, 404);

    // An erased member leaves the account.
    await collector.profile("anonymous_id", bob, { method: "DELETE" });
    const { json: afterErasure } = await collector.account(encodeURIComponent(group));
    assert.deepEqual(afterErasure.members.map((m) => m.name), ["Ann Lee"]);
  });
});
