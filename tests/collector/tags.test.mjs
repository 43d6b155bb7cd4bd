// The tag system on real workerd: scripted journeys end with the tags written down in
// tests/data/journeys.json; audiences fill as profiles change; webhooks reach a real local
// HTTP receiver, signed, retried after failures, once in effect, and dead-lettered.
import assert from "node:assert/strict";
import { createHmac, timingSafeEqual } from "node:crypto";
import { readFileSync } from "node:fs";
import http from "node:http";
import { after, before, describe, test } from "node:test";
import { ADMIN_KEY, ORIGIN, browserEvent, launch, uuid } from "../support/collector.mjs";

const { journeys } = JSON.parse(readFileSync(new URL("../data/journeys.json", import.meta.url), "utf8"));
const DAY = 86_400_000;

/** The journey's events, with fresh ids, times `at` days ago, and its person's ids. */
function script(journey) {
  const id = uuid().slice(0, 8);
  const anonymousId = uuid();
  const userId = `user-${id}`;
  const now = Date.now();
  return journey.events.map((step) => {
    const fields = JSON.parse(JSON.stringify(step).replaceAll("{id}", id));
    const { type, at, path, ...rest } = fields;
    const event = browserEvent(type, anonymousId, { ...rest, timestamp: new Date(now - at * DAY).toISOString() });
    if (path) event.context.page = { url: `http://127.0.0.1:8080${path}`, path, title: path };
    if (journey.via === "segment") {
      delete event.anonymousId;
      event.userId = userId;
    }
    return event;
  });
}

function tagValues(profile) {
  return Object.fromEntries(profile.tags.map((t) => [t.name, t.value]));
}

function checkTags(name, tags, expected) {
  for (const [tag, want] of Object.entries(expected)) {
    if (want && typeof want === "object" && "min" in want) {
      assert.ok(tags[tag] >= want.min && tags[tag] <= want.max, `${name}: ${tag} = ${tags[tag]}, expected ${want.min}–${want.max}`);
    } else {
      assert.deepEqual(tags[tag], want, `${name}: ${tag}`);
    }
  }
}

describe("golden journeys", () => {
  let collector;
  before(async () => {
    collector = await launch();
  });
  after(() => collector.stop());

  for (const journey of journeys) {
    test(journey.name, async () => {
      const events = script(journey);
      const sent =
        journey.via === "segment"
          ? await collector.segment("batch", { batch: events })
          : await collector.beacon(events);
      assert.equal(sent.status, 200, sent.text);
      assert.equal(sent.json.accepted, events.length, sent.text);
      const [idType, id] = events[0].userId ? ["user_id", events[0].userId] : ["anonymous_id", events[0].anonymousId];
      const { json: profile } = await collector.profile(idType, id);
      const tags = tagValues(profile);
      checkTags(journey.name, tags, journey.expect);
      // Every tag explains itself.
      for (const tag of profile.tags) {
        assert.ok(["factual", "analytical", "predictive"].includes(tag.kind), `${tag.name}: kind`);
        assert.ok(tag.reason.length > 0, `${tag.name}: reason`);
      }
      assert.ok(tags.conversion_propensity >= 0 && tags.conversion_propensity <= 1);
    });
  }
});

/** A local receiver: checks signatures, fails the first attempts of each delivery on `/flaky`,
 * always fails on `/down`, and applies each delivery's effect once per idempotency key. */
async function startReceiver(secret) {
  const attempts = new Map();
  const effects = new Map();
  const badSignatures = [];
  const server = http.createServer((req, res) => {
    let body = "";
    req.on("data", (chunk) => (body += chunk));
    req.on("end", () => {
      const key = req.headers["portrait-idempotency-key"];
      const signature = req.headers["portrait-signature"] ?? "";
      const { t, v1 } = Object.fromEntries(signature.split(",").map((p) => p.split("=")));
      const expected = createHmac("sha256", secret).update(`${t}.${body}`).digest("hex");
      if (!v1 || v1.length !== expected.length || !timingSafeEqual(Buffer.from(v1), Buffer.from(expected))) {
        badSignatures.push(key);
      }
      const n = (attempts.get(key) ?? 0) + 1;
      attempts.set(key, n);
      if (req.url === "/down" || (req.url === "/flaky" && n <= 2)) {
        res.writeHead(n % 2 ? 500 : 503).end();
        return;
      }
      if (!effects.has(key)) effects.set(key, JSON.parse(body));
      res.writeHead(200).end("ok");
    });
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  return { url: `http://127.0.0.1:${server.address().port}`, attempts, effects, badSignatures, stop: () => server.close() };
}

async function until(check, what, timeoutMs = 15_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe("audiences and webhooks", () => {
  const SECRET = "whsec_test_0123456789";
  let collector;
  let receiver;
  before(async () => {
    receiver = await startReceiver(SECRET);
    const config = `
environment = "development"
[[workspaces]]
id = "demo"
admin_key_secrets = ["PORTRAIT_ADMIN_KEY_DEMO"]
[[workspaces.sources]]
name = "site"
write_key = "pk_dev_demo"
allowed_origins = ["${ORIGIN}"]
[[workspaces.audiences]]
name = "hot_leads"
rule = '''
lead_score >= 50
  and intent_stage == "decision"
  and not lifecycle in ["customer", "churned"]'''
[[workspaces.audiences]]
name = "warming_accounts"
of = "accounts"
rule = "engaged_members_14d >= 1 and industry == \\"Software\\""
[[workspaces.webhooks]]
name = "crm"
url = "${receiver.url}/flaky"
secret = "WEBHOOK_SECRET_CRM"
on = ["audience_entered:hot_leads", "lifecycle_changed", "lead_score_crossed:50", "audience_entered:warming_accounts"]
max_attempts = 5
[[workspaces.webhooks]]
name = "broken"
url = "${receiver.url}/down"
secret = "WEBHOOK_SECRET_CRM"
on = ["audience_entered:hot_leads"]
max_attempts = 3
`;
    collector = await launch(undefined, { WEBHOOK_SECRET_CRM: SECRET, PORTRAIT_WEBHOOK_BACKOFF_PERMILLE: "2" }, config);
  });
  after(() => {
    collector.stop();
    receiver.stop();
  });

  test("a lead turning hot enters the audience and fires signed webhooks, each once in effect", async () => {
    const anon = uuid();
    const group = `acme-${uuid()}`;
    await collector.beacon([browserEvent("page", anon, { name: "Blog" })]);
    const hot = await collector.beacon([
      browserEvent("page", anon, { context: { page: { url: "http://127.0.0.1:8080/pricing", path: "/pricing" } } }),
      browserEvent("identify", anon, { userId: `lead-${anon}`, traits: { email: `lead@${group}.com`, title: "CTO", employees: 300 } }),
      browserEvent("group", anon, { userId: `lead-${anon}`, groupId: group, traits: { name: "Acme", industry: "Software" } }),
      browserEvent("track", anon, { userId: `lead-${anon}`, event: "Demo Requested" }),
    ]);
    assert.equal(hot.status, 200, hot.text);

    const { json: profile } = await collector.profile("anonymous_id", anon);
    assert.ok(profile.audiences.hot_leads, JSON.stringify(profile.audiences));
    assert.deepEqual(
      profile.changes.map((c) => c.type).sort(),
      ["audience.entered", "lead_score.crossed", "lifecycle.changed"],
    );

    // Three changes fired the crm webhook; each took three attempts (two failures first).
    const effects = await until(() => (receiver.effects.size >= 4 ? receiver.effects : null), "4 deliveries");
    const detail = (e) => e.change.audience ?? (e.type === "lead_score.crossed" ? e.change.threshold : e.change.to);
    const kinds = [...effects.values()].map((e) => `${e.type}:${detail(e)}`);
    assert.deepEqual(kinds.sort(), [
      "audience.entered:hot_leads",
      "audience.entered:warming_accounts",
      "lead_score.crossed:50",
      "lifecycle.changed:sql",
    ]);
    const lifecycle = [...effects.values()].find((e) => e.type === "lifecycle.changed");
    assert.equal(lifecycle.change.from, "anonymous");
    assert.equal(lifecycle.profile.profileId, `a:${anon}`);
    assert.equal(lifecycle.profile.tags.lifecycle, "sql");
    assert.deepEqual(receiver.badSignatures, []);

    const log = async (name) =>
      (await collector.request(`/v1/webhooks/${name}/deliveries`, { headers: { authorization: `Bearer ${ADMIN_KEY}` } })).json;
    const crm = await until(async () => {
      const { deliveries } = await log("crm");
      return deliveries.length === 4 && deliveries.every((d) => d.status === "delivered") ? deliveries : null;
    }, "the crm log to show 4 delivered");
    for (const delivery of crm) {
      assert.equal(delivery.attempts, 3, JSON.stringify(delivery));
      assert.equal(receiver.attempts.get(delivery.key), 3);
    }
    // The broken receiver: dead-lettered after its 3 attempts, with the last answer kept.
    const [dead] = await until(async () => {
      const { deliveries } = await log("broken");
      return deliveries.length === 1 && deliveries[0].status === "dead" ? deliveries : null;
    }, "the broken webhook's delivery to be dead-lettered");
    assert.equal(dead.attempts, 3);
    assert.equal(dead.lastStatus, 500);
    assert.equal(dead.type, "audience.entered");

    // The audience lists its member; the account audience holds the account.
    const headers = { authorization: `Bearer ${ADMIN_KEY}` };
    const { json: audiences } = await collector.request("/v1/audiences", { headers });
    const sizes = Object.fromEntries(audiences.audiences.map((a) => [a.name, a.size]));
    assert.deepEqual(sizes, { hot_leads: 1, warming_accounts: 1 });
    const { json: members } = await collector.request("/v1/audiences/hot_leads/members", { headers });
    assert.deepEqual(members.members.map((m) => m.id), [`a:${anon}`]);
    const { json: account } = await collector.account(encodeURIComponent(group));
    assert.ok(account.audiences.warming_accounts);

    // Sending the same batch again changes nothing and fires nothing more.
    const before = receiver.effects.size;
    await collector.beacon([browserEvent("page", anon)]);
    await new Promise((r) => setTimeout(r, 500));
    assert.equal(receiver.effects.size, before);
  });

  test("audience members page through every shard", async () => {
    const people = Array.from({ length: 5 }, () => uuid());
    for (const anon of people) {
      await collector.beacon([
        browserEvent("page", anon, { context: { page: { url: "http://127.0.0.1:8080/pricing", path: "/pricing" } } }),
        browserEvent("identify", anon, { userId: `p-${anon}`, traits: { title: "VP Sales", employees: 300 } }),
        browserEvent("track", anon, { userId: `p-${anon}`, event: "Demo Requested" }),
      ]);
    }
    const headers = { authorization: `Bearer ${ADMIN_KEY}` };
    const seen = [];
    let cursor = "";
    for (let page = 0; page < 10 && cursor !== null; page++) {
      const { json } = await collector.request(`/v1/audiences/hot_leads/members?limit=2${cursor ? `&cursor=${cursor}` : ""}`, { headers });
      seen.push(...json.members.map((m) => m.id));
      cursor = json.nextCursor;
    }
    for (const anon of people) assert.ok(seen.includes(`a:${anon}`), anon);
    assert.equal(new Set(seen).size, seen.length, "no member twice");
    const bad = await collector.request("/v1/audiences/hot_leads/members?cursor=nonsense", { headers });
    assert.equal(bad.status, 400);
    assert.equal((await collector.request("/v1/audiences/nope/members", { headers })).status, 404);
  });

  test("an erasure removes the webhook deliveries about the person and takes them out of their account's: the log keeps none, and none is sent after it", async () => {
    const anon = uuid();
    const profileId = `a:${anon}`;
    const headers = { authorization: `Bearer ${ADMIN_KEY}` };
    const deliveries = async (name) => (await collector.request(`/v1/webhooks/${name}/deliveries?limit=1000`, { headers })).json.deliveries;
    const about = async (name) => (await deliveries(name)).filter((d) => d.profileId === profileId);
    const aboutAccounts = async () => (await deliveries("crm")).filter((d) => d.profileId === null).length;
    const accountDeliveries = await aboutAccounts();
    const group = `erasure-co-${uuid()}`;
    await collector.beacon([
      browserEvent("page", anon, { context: { page: { url: "http://127.0.0.1:8080/pricing", path: "/pricing" } } }),
      browserEvent("identify", anon, { userId: `gone-${anon}`, traits: { email: `gone-${anon}@example.org`, title: "CTO", employees: 300 } }),
      browserEvent("track", anon, { userId: `gone-${anon}`, event: "Demo Requested" }),
      // Their account enters `warming_accounts`: its delivery lists them as a member.
      browserEvent("group", anon, { userId: `gone-${anon}`, groupId: group, traits: { name: "Erasure Co", industry: "Software" } }),
    ]);
    // Deliveries to both webhooks (the broken one's fail until dead-lettered), and the account's.
    const keys = await until(async () => {
      const [crm, broken] = [await about("crm"), await about("broken")];
      const ready = crm.length > 0 && broken.length > 0 && (await aboutAccounts()) > accountDeliveries;
      return ready ? [...crm, ...broken].map((d) => d.key) : null;
    }, "deliveries about the lead and their account");
    const erased = await collector.profile("anonymous_id", anon, { method: "DELETE" });
    assert.equal(erased.status, 200, erased.text);
    assert.ok(erased.json.webhookDeliveriesRemoved >= keys.length, erased.text); // later ones may have come
    assert.equal(erased.json.webhookDeliveriesScrubbed, 1, `the account's delivery lost its member: ${erased.text}`);
    assert.deepEqual([await about("crm"), await about("broken")], [[], []]);
    const attempts = keys.map((key) => receiver.attempts.get(key) ?? 0);
    await new Promise((r) => setTimeout(r, 500));
    assert.deepEqual(keys.map((key) => receiver.attempts.get(key) ?? 0), attempts, "no attempt after the erasure");
  });

  test("an erasure takes the person out of every account they reached: an earlier email's, and a merged profile's", async () => {
    const id = uuid().slice(0, 8);
    const [anon, otherBrowser, user] = [uuid(), uuid(), `moved-${id}`];
    const [acme, initech, globex, group] = ["acme", "initech", "globex"].map((c) => `domain:${c}-${id}.com`).concat(`merged-co-${id}`);
    const members = async (account) => {
      const response = await collector.account(encodeURIComponent(account));
      return response.status === 200 ? response.json.memberCount : 0;
    };
    const joined = (account) => until(async () => (await members(account)) === 1, `a member in ${account}`, 30_000);
    await collector.beacon([browserEvent("identify", anon, { userId: user, traits: { email: `ann@acme-${id}.com` } })]);
    await joined(acme);
    // Another browser, not signed in yet: its own profile, in an email's account and a group.
    await collector.beacon([
      browserEvent("identify", otherBrowser, { traits: { email: `ann@initech-${id}.com` } }),
      browserEvent("group", otherBrowser, { groupId: group, traits: { name: "Merged Co" } }),
    ]);
    await joined(initech);
    await joined(group);
    // A newer email: the account of the old one keeps its member (membership only grows).
    await collector.beacon([browserEvent("identify", anon, { userId: user, traits: { email: `ann@globex-${id}.com` } })]);
    await joined(globex);
    // The other browser signs in: one person, whose email is now globex's. Only the merged
    // profile knew initech's account.
    await collector.beacon([browserEvent("identify", otherBrowser, { userId: user })]);
    await until(async () => {
      const [one, other] = [await collector.profile("anonymous_id", anon), await collector.profile("anonymous_id", otherBrowser)];
      return one.status === 200 && other.status === 200 && one.json.profileId === other.json.profileId;
    }, "the two profiles merged", 30_000);
    assert.deepEqual([await members(acme), await members(initech)], [1, 1]);

    const erased = await collector.profile("user_id", user, { method: "DELETE" });
    assert.equal(erased.status, 200, erased.text);
    assert.deepEqual([...erased.json.accountsLeft].sort(), [acme, initech, globex, group].sort(), erased.text);
    const left = await Promise.all([acme, initech, globex, group].map(members));
    assert.deepEqual(left, [0, 0, 0, 0]);
  });

  test("an account whose only engaged member is erased leaves its account audiences", async () => {
    const anon = uuid();
    const group = `erased-co-${uuid()}`;
    const user = `only-${anon}`;
    // Three events: an engaged member (ENGAGED_MEMBER_EVENTS).
    await collector.beacon([
      browserEvent("page", anon, { userId: user }),
      browserEvent("page", anon, { userId: user }),
      browserEvent("group", anon, { userId: user, groupId: group, traits: { name: "Erased Co", industry: "Software" } }),
    ]);
    const headers = { authorization: `Bearer ${ADMIN_KEY}` };
    const members = async () => (await collector.request("/v1/audiences/warming_accounts/members?limit=1000", { headers })).json.members.map((m) => m.id);
    assert.ok((await collector.account(encodeURIComponent(group))).json.audiences.warming_accounts);
    await until(async () => (await members()).includes(`account:${group}`), "the account in the audience's list");
    assert.equal((await collector.profile("user_id", user, { method: "DELETE" })).status, 200);
    const { json: account } = await collector.account(encodeURIComponent(group));
    assert.equal(account.memberCount, 0);
    assert.equal(account.audiences.warming_accounts, undefined, JSON.stringify(account.audiences));
    await until(async () => !(await members()).includes(`account:${group}`), "the account out of the audience's list");
  });
});
