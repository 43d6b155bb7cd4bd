// The collector on real workerd (Miniflare) on 127.0.0.1: ingest in both formats, the
// profile API, every error path, dedupe, erasure, restarts and workspace isolation.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { brotliCompressSync, deflateSync, gzipSync } from "node:zlib";
import {
  ADMIN_KEY,
  CHROME_UA,
  ORIGIN,
  OTHER_ADMIN_KEY,
  OTHER_KEY,
  SERVER_KEY,
  WRITE_KEY,
  browserEvent,
  encodeBeacon,
  launch,
  uuid,
} from "../support/collector.mjs";

let collector;
before(async () => {
  collector = await launch();
});
after(() => collector.stop());

describe("ingest → profile API", () => {
  test("a beacon from the SDK builds a profile with geo, device and counters", async () => {
    const anon = uuid();
    const events = [
      browserEvent("page", anon, { name: "Pricing" }),
      browserEvent("track", anon, { event: "Plan Selected", properties: { plan: "pro" } }),
      browserEvent("identify", anon, { userId: "beacon-user", traits: { email: " Ada@Example.com ", title: "CTO" } }),
    ];
    const sent = await collector.beacon(events);
    assert.equal(sent.status, 200, sent.text);
    assert.deepEqual(sent.json, { accepted: 3, duplicates: 0, bots: 0, rejected: [] });
    assert.equal(sent.headers.get("access-control-allow-origin"), ORIGIN);

    const { status, json: profile } = await collector.profile("anonymous_id", anon);
    assert.equal(status, 200);
    assert.equal(profile.profileId, `a:${anon}`);
    assert.deepEqual(profile.counters, { $page: 1, "Plan Selected": 1, $identify: 1 });
    assert.equal(profile.traits.title, "CTO");
    assert.equal(profile.location.country, "DE");
    assert.equal(profile.location.asOrganization, "Deutsche Telekom AG");
    assert.deepEqual(profile.devices, { "desktop/Chrome/Linux": 3 });
    assert.deepEqual(
      profile.identities.map((i) => `${i.type}:${i.id}`).sort(),
      [`anonymous_id:${anon}`, "email:ada@example.com", "user_id:beacon-user"],
    );
    const tags = Object.fromEntries(profile.tags.map((t) => [t.name, t]));
    assert.equal(tags.country.value, "DE");
    assert.equal(tags.country.kind, "factual");
    assert.equal(tags.browser.value, "Chrome");
    assert.equal(tags.page_views.value, 1);

    // The same person by every identifier, normalised email included.
    for (const [type, id] of [["user_id", "beacon-user"], ["email", "ADA@example.com"], ["profile_id", `a:${anon}`]]) {
      const found = await collector.profile(type, id);
      assert.equal(found.status, 200, `${type} ${id}: ${found.text}`);
      assert.equal(found.json.profileId, `a:${anon}`);
    }
  });

  test("a beacon holding several people is split between their profiles, indices kept", async () => {
    const [a, b] = [uuid(), uuid()];
    const userOnly = { ...browserEvent("track", undefined, { event: "Server Side" }), userId: `split-${a}` };
    delete userOnly.anonymousId;
    const stale = browserEvent("track", b, { event: "Stale", timestamp: "2025-01-01T00:00:00Z" });
    const events = [browserEvent("page", a), browserEvent("page", b), userOnly, stale, browserEvent("track", a, { event: "Again" })];
    const sent = await collector.beacon(events);
    assert.equal(sent.status, 200, sent.text);
    assert.equal(sent.json.accepted, 4);
    assert.deepEqual(sent.json.rejected.map((r) => [r.index, r.code, r.path]), [[3, "too_old", "batch[3].timestamp"]]);
    assert.deepEqual((await collector.profile("anonymous_id", a)).json.counters, { $page: 1, Again: 1 });
    assert.deepEqual((await collector.profile("anonymous_id", b)).json.counters, { $page: 1 });
    assert.deepEqual((await collector.profile("user_id", `split-${a}`)).json.counters, { "Server Side": 1 });
  });

  test("a forwarded one-person beacon reports its invalid events by their own index", async () => {
    const anon = uuid();
    const events = [browserEvent("page", anon), browserEvent("track", anon, { event: "Old", timestamp: "2025-01-01T00:00:00Z" })];
    const sent = await collector.beacon(events);
    assert.equal(sent.json.accepted, 1);
    assert.deepEqual(sent.json.rejected.map((r) => [r.index, r.code]), [[1, "too_old"]]);
  });

  test("Segment JSON: /v1/batch and /v1/import (analytics-ruby's, analytics-java's) with Basic auth, /v1/track with writeKey in the body", async () => {
    const batch = await collector.segment("batch", {
      batch: [
        { type: "identify", userId: "server-user", traits: { plan: "enterprise" }, messageId: uuid() },
        { type: "track", userId: "server-user", event: "Invoice Paid", properties: { revenue: 1200.5 }, messageId: uuid() },
      ],
      sentAt: new Date().toISOString(),
    });
    assert.equal(batch.status, 200, batch.text);
    assert.equal(batch.json.accepted, 2);
    const single = await collector.segment(
      "track",
      { userId: "server-user", event: "Seat Added", writeKey: SERVER_KEY, integrations: { All: false } },
      { auth: false },
    );
    assert.equal(single.status, 200, single.text);
    const imported = await collector.segment("import", { batch: [{ type: "track", userId: "server-user", event: "Seat Removed", messageId: uuid() }] });
    assert.deepEqual([imported.status, imported.json?.accepted], [200, 1], imported.text);
    const { json: profile } = await collector.profile("user_id", "server-user");
    assert.equal(profile.profileId, "u:server-user");
    assert.deepEqual(profile.counters, { $identify: 1, "Invoice Paid": 1, "Seat Added": 1, "Seat Removed": 1 });
    assert.equal(profile.traits.plan, "enterprise");
    assert.deepEqual(profile.devices, {}, "server-side events have no device");
    assert.equal(profile.location, null, "nor the sending server's location (Miniflare's Berlin)");
    // analytics.js in a browser, sending to the Segment endpoint: the person's location.
    const browserUser = `browser-${uuid()}`;
    const fromPage = await collector.segment("track", { userId: browserUser, event: "Seat Added", writeKey: WRITE_KEY }, { auth: false, origin: ORIGIN });
    assert.equal(fromPage.status, 200, fromPage.text);
    assert.equal((await collector.profile("user_id", browserUser)).json.location?.city, "Berlin");
    // Segment's mobile libraries send from the person's phone, without Origin, with `device` and `os`.
    const phoneUser = `phone-${uuid()}`;
    const fromPhone = await collector.segment("track", {
      userId: phoneUser, event: "App Opened", context: { device: { type: "android" }, os: { name: "Android", version: "15" }, library: { name: "analytics-kotlin" } },
    });
    assert.equal(fromPhone.status, 200, fromPhone.text);
    assert.equal((await collector.profile("user_id", phoneUser)).json.location?.city, "Berlin");
  });

  test("a person's batch under the limit as JSON but over it re-encoded (floats) is applied whole", async () => {
    const user = `floats-${uuid()}`;
    // 15 events of 6,000 floats: ~450 KB of JSON, ~810 KB as beacons (a float takes 9 bytes).
    const scores = Array.from({ length: 6000 }, (_, i) => [0.5, 0.25, 0.75, 0.125][i % 4]);
    const batch = Array.from({ length: 15 }, (_, i) => ({ type: "track", userId: user, event: "Scored", messageId: `${user}-${i}`, properties: { scores } }));
    const body = JSON.stringify({ batch });
    assert.ok(body.length < 500 * 1024 && body.length > 400 * 1024, `${body.length} bytes`);
    const sent = await collector.segment("batch", body);
    assert.deepEqual([sent.status, sent.json?.accepted, sent.json?.rejected], [200, 15, []], sent.text.slice(0, 300));
    const { json: profile } = await collector.profile("user_id", user);
    assert.deepEqual(profile.counters, { Scored: 15 });
  });

  test("a Segment batch compressed with gzip or deflate is read; another encoding, a broken stream or a bomb gets a typed error", async () => {
    const send = (body, encoding) =>
      collector.request("/v1/batch", {
        method: "POST",
        headers: { "content-type": "application/json", "content-encoding": encoding, authorization: "Basic " + Buffer.from(`${SERVER_KEY}:`).toString("base64") },
        body,
      });
    const user = `compressed-${uuid()}`;
    const batch = (event) => JSON.stringify({ batch: [{ type: "track", userId: user, event, messageId: uuid() }] });
    for (const [encoding, compress] of [["gzip", gzipSync], ["deflate", deflateSync], ["GZIP", gzipSync]]) {
      const answer = await send(compress(batch(`Sent ${encoding}`)), encoding);
      assert.deepEqual([answer.status, answer.json?.accepted], [200, 1], `${encoding}: ${answer.text}`);
    }
    const { json: profile } = await collector.profile("user_id", user);
    assert.deepEqual(Object.keys(profile.counters).sort(), ["Sent GZIP", "Sent deflate", "Sent gzip"]);
    const refused = [
      ["br", brotliCompressSync(batch("Brotli")), 415, "unsupported_content_encoding"],
      ["gzip", Buffer.from("not gzip at all"), 400, "unreadable_body"],
      // 600 KB of JSON in 1 KB: refused as what it decompresses to.
      ["gzip", gzipSync(JSON.stringify({ batch: [], padding: " ".repeat(600_000) })), 413, "body_too_large"],
    ];
    for (const [encoding, body, status, code] of refused) {
      const answer = await send(body, encoding);
      assert.deepEqual([answer.status, answer.json?.code], [status, code], `${encoding}, ${body.length} bytes: ${answer.text}`);
    }
  });

  test("events without a messageId: a retry stamped with another sentAt counts once; an untimed repeat counts each time", async () => {
    const user = `no-ids-${uuid()}`;
    const timestamp = new Date(Date.now() - 60_000).toISOString();
    for (const sentAt of [new Date(Date.now() - 1000).toISOString(), new Date().toISOString()]) {
      const body = { batch: [{ type: "track", userId: user, event: "Order Completed", timestamp, properties: { revenue: 100 } }], sentAt };
      assert.equal((await collector.segment("batch", body)).status, 200);
    }
    // At once, too: the runtime's clock stands still within a request.
    const clicks = await Promise.all(Array.from({ length: 8 }, () => collector.segment("track", { userId: user, event: "Button Clicked" })));
    for (const answer of clicks) assert.deepEqual([answer.status, answer.json.accepted, answer.json.duplicates], [200, 1, 0]);
    const { json: profile } = await collector.profile("user_id", user);
    assert.deepEqual(profile.counters, { "Order Completed": 1, "Button Clicked": 8 });
  });

  test("the timeline pages newest first and shows what the collector added", async () => {
    const anon = uuid();
    const events = Array.from({ length: 120 }, (_, i) =>
      browserEvent("track", anon, { event: "Step", properties: { i } }),
    );
    for (let i = 0; i < events.length; i += 40) {
      assert.equal((await collector.beacon(events.slice(i, i + 40))).status, 200);
    }
    const seen = [];
    let cursor = "";
    for (let page = 0; page < 5 && cursor !== null; page++) {
      const { status, json } = await collector.admin(`anonymous_id/${anon}/events?limit=50${cursor ? `&cursor=${cursor}` : ""}`);
      assert.equal(status, 200);
      seen.push(...json.events.map((e) => e.properties.i));
      cursor = json.nextCursor;
    }
    assert.deepEqual(seen, events.map((_, i) => i).reverse());
    const { json } = await collector.admin(`anonymous_id/${anon}/events?limit=1`);
    const [latest] = json.events;
    assert.equal(latest.enrichment.geo.city, "Berlin");
    assert.equal(latest.enrichment.device.deviceType, "desktop");
    assert.ok(latest.receivedAt, "receivedAt is set by the collector");
    assert.equal(latest.context.ip, undefined);
  });

  test("a refusal of analytics withdraws and counts as nothing else; for an unknown visitor it starts no profile", async () => {
    const refusal = (anon) =>
      browserEvent("track", anon, {
        event: "Consent Updated",
        properties: { analytics: "denied", personalization: "denied" },
        context: { library: { name: "portrait.js", version: "0.1.0" } },
      });
    const stranger = uuid();
    const unknown = await collector.beacon([refusal(stranger)]);
    assert.deepEqual([unknown.status, unknown.json.accepted], [200, 1], unknown.text);
    assert.equal((await collector.profile("anonymous_id", stranger)).status, 404, "no profile for a refusal alone");

    const known = uuid();
    const read = browserEvent("track", known, { event: "Page Engaged", properties: { topics: [[299, 0.5]] } });
    assert.equal((await collector.beacon([browserEvent("page", known), read])).status, 200);
    const before = (await collector.profile("anonymous_id", known)).json;
    assert.ok(before.tags.some((t) => t.name === "interests"), JSON.stringify(before.tags));
    // With a user id its refused identify never sent: it must join nothing.
    assert.equal((await collector.beacon([{ ...refusal(known), userId: "never-identified" }])).status, 200);
    const after = (await collector.profile("anonymous_id", known)).json;
    assert.equal(after.tags.find((t) => t.name === "interests"), undefined, "the interests withdrawn");
    assert.deepEqual([after.counters, after.lastSeen, after.identities], [before.counters, before.lastSeen, before.identities]);
    const { json } = await collector.admin(`anonymous_id/${known}/events?limit=1`);
    assert.equal(json.events[0].event, "Consent Updated", "kept in the timeline, the record of the refusal");
    assert.equal(json.events[0].enrichment.geo.city, null, "without the request's location (Berlin)");
  });

  test("clock skew is corrected: timestamp = receivedAt − (sentAt − timestamp)", async () => {
    const anon = uuid();
    const hourAhead = Date.now() + 3_600_000;
    const event = browserEvent("track", anon, { event: "Skewed", timestamp: new Date(hourAhead - 5000).toISOString() });
    const before = Date.now();
    await collector.beacon([event], { sentAt: new Date(hourAhead).toISOString() });
    const { json } = await collector.admin(`anonymous_id/${anon}/events`);
    const [stored] = json.events;
    const offset = Date.parse(stored.receivedAt) - Date.parse(stored.timestamp);
    assert.equal(offset, 5000);
    assert.ok(Date.parse(stored.receivedAt) >= before - 1000);
  });

  test("the SDK's remote settings are public and cacheable", async () => {
    const { status, json, headers } = await collector.request(`/v1/config/${WRITE_KEY}`);
    assert.equal(status, 200);
    assert.equal(json.consent_default, "granted");
    assert.equal(json.autocapture.clicks, true);
    assert.match(headers.get("cache-control"), /max-age=300/);
    assert.equal((await collector.request("/v1/config/pk_nobody_has_this")).status, 404);
  });

  test("bots are counted, not profiled", async () => {
    const anon = uuid();
    const event = browserEvent("page", anon);
    event.context.userAgent = CHROME_UA.replace("Chrome/", "HeadlessChrome/");
    const before = (await collector.request("/v1/sources/demo-site/stats", { headers: { authorization: `Bearer ${ADMIN_KEY}` } })).json;
    const sent = await collector.beacon([event, event].map((e, i) => ({ ...e, messageId: `${anon}-${i}` })));
    assert.deepEqual(sent.json, { accepted: 0, duplicates: 0, bots: 2, rejected: [] });
    assert.equal((await collector.profile("anonymous_id", anon)).status, 404);
    const after = await collector.request("/v1/sources/demo-site/stats", { headers: { authorization: `Bearer ${ADMIN_KEY}` } });
    assert.equal(after.status, 200, after.text);
    assert.equal(after.json.botEvents, before.botEvents + 2);
  });

  test("refused events are counted by code in the source's stats (Segment's libraries do not read the answer's list)", async () => {
    const stats = async () => (await collector.request("/v1/sources/server/stats", { headers: { authorization: `Bearer ${ADMIN_KEY}` } })).json.rejectedEvents;
    const before = await stats();
    const user = `refused-${uuid()}`;
    const track = (extra) => ({ type: "track", userId: user, event: "Counted", messageId: uuid(), ...extra });
    const sent = await collector.segment("batch", {
      batch: [track(), track({ timestamp: "2025-01-01T00:00:00Z" }), track({ context: { page: { url: 7 } } }), track({ timestamp: "2025-01-02T00:00:00Z" })],
    });
    assert.deepEqual(sent.json.rejected.map((r) => r.code), ["too_old", "wrong_type", "too_old"], sent.text);
    // Refused whole (every event refused): counted too.
    const all = await collector.segment("batch", { batch: [track({ timestamp: "2025-01-03T00:00:00Z" })] });
    assert.equal(all.status, 400, all.text);
    const after = await stats();
    const delta = (code) => (after[code] ?? 0) - (before[code] ?? 0);
    assert.deepEqual([delta("too_old"), delta("wrong_type")], [3, 1], JSON.stringify(after));
  });
});

describe("no event counted twice", () => {
  test("a queue's dropped count is counted once, by the batch that is accepted, not by one refused whole", async () => {
    const anon = uuid();
    const stats = () => collector.sdkDroppedEvents();
    const before = await stats();
    const stale = browserEvent("track", anon, { event: "Stale", timestamp: "2025-01-01T00:00:00Z" });
    const refused = await collector.beacon([], { body: encodeBeacon({ batch: [stale], dropped: 7 }) });
    assert.equal(refused.status, 400, refused.text);
    const accepted = encodeBeacon({ batch: [browserEvent("page", anon)], dropped: 7 });
    assert.equal((await collector.beacon([], { body: accepted })).json.accepted, 1);
    assert.equal((await collector.beacon([], { body: accepted })).json.duplicates, 1, "a retry");
    // Counted before the answer (the bots test reads its count the same way).
    assert.equal((await stats()) - before, 7);
  });

  test("a retried beacon is recognised", async () => {
    const anon = uuid();
    const events = [browserEvent("page", anon), browserEvent("track", anon, { event: "Clicked" })];
    const body = encodeBeacon({ batch: events });
    assert.equal((await collector.beacon([], { body })).json.accepted, 2);
    assert.deepEqual((await collector.beacon([], { body })).json, { accepted: 0, duplicates: 2, bots: 0, rejected: [] });
    // A batch mixing old and new events applies only the new one.
    const mixed = await collector.beacon([events[0], browserEvent("track", anon, { event: "Clicked" })]);
    assert.deepEqual([mixed.json.accepted, mixed.json.duplicates], [1, 1]);
    const { json } = await collector.profile("anonymous_id", anon);
    assert.deepEqual(json.counters, { $page: 1, Clicked: 2 });
  });

  test("the same events in any order, with duplicates, give the same profile", async () => {
    const base = Date.parse("2026-11-20T10:00:00Z");
    const make = (anon) =>
      Array.from({ length: 30 }, (_, i) =>
        browserEvent(i % 3 ? "track" : "page", anon, {
          messageId: `${anon}-${i}`,
          event: i % 3 ? `Event ${i % 4}` : undefined,
          timestamp: new Date(base + ((i * 7919) % 30) * 13 * 60_000).toISOString(),
          properties: { i },
        }),
      );
    const [a, b] = [uuid(), uuid()];
    const inOrder = make(a);
    const shuffled = make(b).sort((x, y) => (x.properties.i * 31) % 17 - (y.properties.i * 31) % 17);
    for (let i = 0; i < 30; i += 10) await collector.beacon(inOrder.slice(i, i + 10));
    await collector.beacon(shuffled.slice(0, 20));
    await collector.beacon(shuffled.slice(10)); // 10 duplicates
    const strip = ({ json }) => {
      const { profileId, identities, ...rest } = json;
      return rest;
    };
    const [first, second] = [await collector.profile("anonymous_id", a), await collector.profile("anonymous_id", b)];
    assert.deepEqual(strip(second), strip(first));
    assert.equal(first.json.eventCount, 30);
  });
});

describe("answers to bad requests", () => {
  const track = () => browserEvent("track", uuid(), { event: "Clicked" });
  const cases = [
    ["no write key", () => collector.beacon([track()], { key: null }), 401, "missing_write_key"],
    ["an unknown write key", () => collector.beacon([track()], { key: "pk_wrong_key" }), 401, "unknown_write_key"],
    ["a foreign origin", () => collector.beacon([track()], { origin: "https://evil.example" }), 403, "origin_not_allowed"],
    ["Origin: null (a sandboxed frame)", () => collector.beacon([track()], { origin: "null" }), 403, "origin_not_allowed"],
    ["another source's origin", () => collector.beacon([track()], { origin: "http://127.0.0.1:8081" }), 403, "origin_not_allowed"],
    ["a wrong content type", () => collector.beacon([track()], { contentType: "application/x-www-form-urlencoded" }), 415, "unsupported_media_type"],
    ["JSON sent as a beacon", () => collector.beacon([], { body: JSON.stringify({ batch: [] }) }), 400, "not_a_beacon"],
    ["a future beacon version", () => collector.beacon([], { body: Buffer.from([0xb7, 0x50, 9, 0]) }), 400, "unsupported_version"],
    ["a truncated beacon", () => collector.beacon([], { body: encodeBeacon({ batch: [track()] }).subarray(0, 40) }), 400, "malformed"],
    ["an oversized body", () => collector.beacon([], { body: Buffer.alloc(512_001, 0x41), ownConnection: true }), 413, "body_too_large"],
    ["malformed JSON", () => collector.segment("batch", '{"batch": ['), 400, "malformed"],
    ["duplicate JSON keys", () => collector.segment("batch", '{"batch": [], "batch": []}'), 400, "malformed"],
    ["501 events", () => collector.segment("batch", { batch: Array.from({ length: 501 }, track) }), 413, "too_many_events"],
    ["a bad Segment write key", () => collector.segment("track", { userId: "u", event: "E" }, { key: "pk_bad_bad_bad" }), 401, "unknown_write_key"],
    ["no Segment write key", () => collector.segment("track", { userId: "u", event: "E" }, { auth: false }), 401, "missing_write_key"],
    ["an event without identity", () => collector.segment("track", { event: "E" }), 400, "no_identity"],
    ["an unknown route", () => collector.request("/v1/nothing"), 404, "not_found"],
  ];
  for (const [name, send, status, code] of cases) {
    test(`${name} → ${status} ${code}`, async () => {
      const response = await send();
      assert.equal(response.status, status, response.text);
      assert.equal(response.json.code, code, response.text);
      assert.equal(typeof response.json.message, "string");
      assert.equal(typeof response.json.path, "string");
    });
  }

  test("corrupted beacons get a 4xx, never a 5xx", async () => {
    const anon = uuid();
    const valid = encodeBeacon({
      batch: [browserEvent("page", anon), browserEvent("track", anon, { event: "E", properties: { a: [1, { b: "c" }] } })],
    });
    let seed = 42;
    const random = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    const statuses = {};
    for (let i = 0; i < 200; i++) {
      const body = Buffer.from(valid);
      for (let flips = 1 + Math.floor(random() * 4); flips > 0; flips--) {
        body[3 + Math.floor(random() * (body.length - 3))] = Math.floor(random() * 256);
      }
      const cut = random() < 0.2 ? Math.floor(random() * body.length) : body.length;
      const { status } = await collector.beacon([], { body: body.subarray(0, cut) });
      statuses[status] = (statuses[status] ?? 0) + 1;
    }
    const serverErrors = Object.keys(statuses).filter((s) => s >= 500);
    assert.deepEqual(serverErrors, [], JSON.stringify(statuses));
    // The seed is fixed: some corruptions hit only values (accepted), most break the format.
    assert.ok(statuses[200] > 0 && statuses[400] > 0, JSON.stringify(statuses));
  });

  test("errors name the field: 400 {code, message, path}", async () => {
    const response = await collector.segment("track", { userId: "u", event: "E", properties: { n: { a: { b: { c: { d: { e: { f: { g: { h: 1 } } } } } } } } } });
    assert.equal(response.status, 400);
    assert.deepEqual(response.json, {
      code: "too_deep",
      message: "nesting deeper than 8",
      path: "properties.n.a.b.c.d.e.f.g",
    });
  });

  test("a partly invalid batch stores the valid events and lists the others", async () => {
    const anon = uuid();
    const good = browserEvent("track", anon, { event: "Good" });
    const tooOld = browserEvent("track", anon, { event: "Old", timestamp: "2025-01-01T00:00:00Z" });
    const noName = { ...browserEvent("track", anon), event: "" };
    const response = await collector.segment("batch", { batch: [tooOld, good, noName] });
    assert.equal(response.status, 200, response.text);
    assert.equal(response.json.accepted, 1);
    assert.deepEqual(
      response.json.rejected.map((r) => [r.index, r.code, r.path]),
      [[0, "too_old", "batch[0].timestamp"], [2, "missing_field", "batch[2].event"]],
    );
    const { json } = await collector.profile("anonymous_id", anon);
    assert.deepEqual(json.counters, { Good: 1 });
  });

  test("a batch with no valid event is a 400 that lists every rejection", async () => {
    const response = await collector.segment("batch", { batch: [{ type: "track", event: "E" }, { type: "nope", userId: "u" }] });
    assert.equal(response.status, 400);
    assert.equal(response.json.code, "no_identity");
    assert.equal(response.json.rejected.length, 2);
  });

  test("preflights: allowed origins get CORS headers, others 403", async () => {
    const allowed = await collector.request("/v1/batch", {
      method: "OPTIONS",
      headers: { origin: ORIGIN, "access-control-request-method": "POST" },
    });
    assert.equal(allowed.status, 204);
    assert.equal(allowed.headers.get("access-control-allow-origin"), ORIGIN);
    assert.match(allowed.headers.get("access-control-allow-headers"), /Authorization/);
    const foreign = await collector.request("/v1/batch", { method: "OPTIONS", headers: { origin: "https://evil.example" } });
    assert.equal(foreign.status, 403);
    assert.equal(foreign.headers.get("access-control-allow-origin"), null);
  });

  test("a refusal is readable by any page (a browser SDK must see its 401 or 403 to stop retrying); an acceptance only by allowed origins", async () => {
    const foreign = await collector.beacon([track()], { origin: "https://evil.example" });
    assert.equal(foreign.status, 403);
    assert.equal(foreign.headers.get("access-control-allow-origin"), "*");
    const wrongKey = await collector.beacon([track()], { key: "pk_wrong_key", origin: ORIGIN });
    assert.equal(wrongKey.status, 401);
    assert.equal(wrongKey.headers.get("access-control-allow-origin"), "*");
    const accepted = await collector.beacon([track()], { origin: ORIGIN });
    assert.equal(accepted.status, 200, accepted.text);
    assert.equal(accepted.headers.get("access-control-allow-origin"), ORIGIN);
  });

  test("a source over its rate gets 429 with Retry-After", async () => {
    // `other-site` allows 5 events/s with a burst of 20.
    // Both encoded first: the source refills in the time an encoding takes.
    const [first, second] = [0, 1].map(() =>
      encodeBeacon({ batch: Array.from({ length: 15 }, () => browserEvent("track", uuid(), { event: "Burst" })) }),
    );
    const origin = "http://127.0.0.1:8081";
    assert.equal((await collector.beacon(undefined, { key: OTHER_KEY, origin, body: first })).status, 200);
    const limited = await collector.beacon(undefined, { key: OTHER_KEY, origin, body: second });
    assert.equal(limited.status, 429, limited.text);
    assert.equal(limited.json.code, "rate_limited");
    assert.ok(Number(limited.headers.get("retry-after")) >= 1);
    assert.equal(limited.headers.get("access-control-allow-origin"), origin);
  });

  test("one person over 500 events/s (burst 5,000) gets 429 with Retry-After; the retry lands once", async () => {
    const person = uuid();
    // 12,000 events: past the burst and what refills while they are applied, on a slow
    // machine too (all encoded first, as the mixed beacon below: the person refills in the
    // time an encoding takes).
    const beacons = Array.from({ length: 24 }, () =>
      encodeBeacon({ batch: Array.from({ length: 500 }, () => browserEvent("track", person, { event: "Flood" })) }),
    );
    const other = uuid();
    const flood = Array.from({ length: 499 }, () => browserEvent("track", person, { event: "Flood" }));
    const mixed = encodeBeacon({ batch: [...flood, browserEvent("page", other)], dropped: 3 });
    let accepted = 0;
    let limited;
    for (const body of beacons) {
      const answer = await collector.beacon(undefined, { body });
      if (answer.status === 429) {
        limited = { answer, body };
        break;
      }
      assert.equal(answer.status, 200, answer.text);
      accepted += answer.json.accepted;
    }
    assert.ok(limited, "the person was limited");
    assert.equal(limited.answer.json.code, "rate_limited");
    assert.match(limited.answer.json.message, /one person is limited to 500 events per second/);
    // A beacon for that person and another, with an SDK's dropped count: 429, though the
    // other person's event is applied; the count is counted then, and not again by the retry.
    const droppedBefore = await collector.sdkDroppedEvents();
    const mixedAnswer = await collector.beacon(undefined, { body: mixed });
    assert.equal(mixedAnswer.status, 429, mixedAnswer.text);
    assert.equal(limited.answer.json.dropped_counted, undefined, "a beacon without a dropped count");
    assert.equal(mixedAnswer.json.dropped_counted, 3, "the SDK must not send the count again");
    assert.equal((await collector.profile("anonymous_id", other)).json.eventCount, 1);
    assert.equal((await collector.sdkDroppedEvents()) - droppedBefore, 3);
    const wait = Number(limited.answer.headers.get("retry-after"));
    assert.ok(wait >= 1);
    await new Promise((resolve) => setTimeout(resolve, wait * 1000));
    const retried = await collector.beacon(undefined, { body: limited.body });
    assert.equal(retried.status, 200, retried.text);
    // The retry took the tokens: the mixed beacon waits as long again.
    await new Promise((resolve) => setTimeout(resolve, Number(mixedAnswer.headers.get("retry-after")) * 1000));
    const mixedAgain = await collector.beacon(undefined, { body: mixed });
    assert.deepEqual([mixedAgain.status, mixedAgain.json.accepted, mixedAgain.json.duplicates], [200, 499, 1], mixedAgain.text);
    assert.equal((await collector.sdkDroppedEvents()) - droppedBefore, 3);
    assert.equal((await collector.profile("anonymous_id", person)).json.eventCount, accepted + 999);
  });

  test("admin calls need the admin key", async () => {
    assert.equal((await collector.request("/v1/profiles/user_id/x")).json.code, "missing_admin_key");
    assert.equal((await collector.profile("user_id", "x", { key: WRITE_KEY })).status, 401);
    assert.equal((await collector.profile("phone", "x")).json.code, "bad_id_type");
    assert.equal((await collector.profile("user_id", "never-seen")).status, 404);
  });

  test("the development configuration is refused outside localhost", async () => {
    const { request } = await import("node:http");
    const { port } = new URL(collector.url);
    const answer = await new Promise((resolve, reject) => {
      const req = request({ host: "127.0.0.1", port, path: "/v1/config/pk_dev_demo", headers: { host: "collector.example.com" } }, (res) => {
        let body = "";
        res.on("data", (chunk) => (body += chunk));
        res.on("end", () => resolve({ status: res.statusCode, json: JSON.parse(body) }));
      });
      req.on("error", reject);
      req.end();
    });
    assert.equal(answer.status, 503);
    assert.equal(answer.json.code, "development_config");
  });
});

describe("erasure", () => {
  test("removes the profile, its identifiers and its events, with a receipt", async () => {
    const anon = uuid();
    await collector.beacon([
      browserEvent("page", anon),
      browserEvent("identify", anon, { userId: "erase-me", traits: { email: "erase@example.com" } }),
    ]);
    const erased = await collector.profile("email", "erase@example.com", { method: "DELETE" });
    assert.equal(erased.status, 200, erased.text);
    assert.equal(erased.json.profileId, `a:${anon}`);
    assert.equal(erased.json.eventsRemoved, 2);
    assert.equal(erased.json.messageIdsForgotten, 2);
    assert.equal(erased.json.indexEntriesRemoved, 3);
    assert.equal(erased.json.identities.length, 3);
    for (const [type, id] of [["anonymous_id", anon], ["user_id", "erase-me"], ["email", "erase@example.com"], ["profile_id", `a:${anon}`]]) {
      assert.equal((await collector.profile(type, id)).status, 404, `${type} still resolves`);
    }
    assert.equal((await collector.admin(`profile_id/a:${anon}/events`)).status, 404);
    assert.equal((await collector.profile("profile_id", `a:${anon}`, { method: "DELETE" })).status, 404);
  });

  test("a user id linked to a profile that holds nothing (a bot's events only) is erased alone", async () => {
    // A server's call with a user id only is routed by it: the index links the id first.
    const user = `bot-user-${uuid()}`;
    const sent = await collector.segment("track", { userId: user, event: "Health Check", messageId: uuid(), context: { userAgent: "curl/8.4.0" } });
    assert.equal(sent.json?.bots, 1, sent.text);
    assert.equal((await collector.profile("user_id", user)).status, 404, "no profile to read");
    const erased = await collector.profile("user_id", user, { method: "DELETE" });
    assert.equal(erased.status, 200, erased.text);
    assert.deepEqual(
      [erased.json.profileId, erased.json.identities, erased.json.eventsRemoved, erased.json.indexEntriesRemoved],
      [`u:${user}`, [{ type: "user_id", id: user }], 0, 1],
    );
    assert.equal((await collector.profile("user_id", user, { method: "DELETE" })).status, 404, "nothing left to erase");
  });

  test("export returns everything held on the person", async () => {
    const anon = uuid();
    await collector.beacon([browserEvent("page", anon), browserEvent("track", anon, { event: "Exported" })]);
    const { status, json } = await collector.admin(`anonymous_id/${anon}/export`);
    assert.equal(status, 200);
    assert.equal(json.profile.profileId, `a:${anon}`);
    assert.equal(json.events.length, 2);
    assert.equal(json.messageIdsRemembered, 2);
  });
});

describe("workspaces are isolated", () => {
  test("the same anonymous id in two workspaces is two profiles, each visible only to its admin", async () => {
    const anon = uuid();
    await collector.beacon([browserEvent("track", anon, { event: "In Demo" })]);
    const other = await collector.beacon([browserEvent("track", anon, { event: "In Other" }), browserEvent("track", anon, { event: "In Other" })], {
      key: OTHER_KEY,
      origin: "http://127.0.0.1:8081",
    });
    assert.equal(other.status, 200, other.text);
    const demo = await collector.profile("anonymous_id", anon);
    const otherProfile = await collector.profile("anonymous_id", anon, { key: OTHER_ADMIN_KEY });
    assert.deepEqual(demo.json.counters, { "In Demo": 1 });
    assert.deepEqual(otherProfile.json.counters, { "In Other": 2 });
  });

  test("an admin key cannot read or erase another workspace's people", async () => {
    const anon = uuid();
    await collector.beacon([browserEvent("identify", anon, { userId: "demo-only" })]);
    assert.equal((await collector.profile("user_id", "demo-only", { key: OTHER_ADMIN_KEY })).status, 404);
    assert.equal((await collector.profile("profile_id", `a:${anon}`, { key: OTHER_ADMIN_KEY })).status, 404);
    assert.equal((await collector.profile("user_id", "demo-only", { key: OTHER_ADMIN_KEY, method: "DELETE" })).status, 404);
    assert.equal((await collector.profile("user_id", "demo-only", { key: ADMIN_KEY })).status, 200);
  });
});

test("after a restart, the profile rebuilt from its last stored state and the batches after it is the one held before", async () => {
  // A batch row carries the profile state only every 8 rows (the first, the 9th, …): after 11
  // batches a load must apply batches 10 and 11 again on the state of the 9th.
  const first = await launch();
  const anon = uuid();
  const batches = [
    [browserEvent("page", anon, { context: { userAgent: CHROME_UA, campaign: { source: "news", medium: "email", name: "launch" } } })],
    [browserEvent("track", anon, { event: "Signed Up", properties: { plan: "pro" } })],
    [browserEvent("identify", anon, { traits: { email: "replay@example.com", company: "Acme" } })],
    ...Array.from({ length: 6 }, (_, i) => [browserEvent("track", anon, { event: `Step ${i}` })]),
    [browserEvent("identify", anon, { userId: "replayed", traits: { plan: "enterprise" } })],
    [browserEvent("track", anon, { event: "Order Completed", properties: { revenue: 99 } }), browserEvent("page", anon)],
  ];
  for (const events of batches) assert.equal((await first.beacon(events)).json.accepted, events.length);
  const withoutTime = ({ tags, series, ...profile }) => profile;
  const before = await first.profile("anonymous_id", anon);
  await first.stop();
  const second = await launch(first.persist);
  try {
    const after = await second.profile("anonymous_id", anon);
    assert.equal(after.status, 200);
    assert.equal(after.json.eventCount, 12);
    assert.deepEqual(withoutTime(after.json), withoutTime(before.json));
    assert.deepEqual(after.json.traits, { email: "replay@example.com", company: "Acme", plan: "enterprise" });
    assert.equal(after.json.counters["Order Completed"], 1);
  } finally {
    await second.stop();
  }
});

test("state survives a restart of the runtime", async () => {
  const first = await launch();
  const anon = uuid();
  const events = [browserEvent("page", anon), browserEvent("identify", anon, { userId: "durable" })];
  const textId = browserEvent("track", anon, { event: "Texted", messageId: `text-${anon}` });
  // 17 batch rows: an object reads its message ids back 15 rows at a time.
  const later = Array.from({ length: 15 }, (_, i) => browserEvent("track", anon, { event: `Row ${i}` }));
  await first.beacon(events);
  await first.beacon([textId]);
  for (const event of later) await first.beacon([event]);
  await first.stop();
  const second = await launch(first.persist);
  try {
    const { status, json } = await second.profile("user_id", "durable");
    assert.equal(status, 200);
    assert.equal(json.eventCount, 18);
    // Dedupe memory survived too: every row's ids, UUIDs and text alike, are read back.
    const fresh = browserEvent("page", anon, { messageId: `fresh-${anon}` });
    const again = await second.beacon([...events, textId, ...later, fresh]);
    assert.deepEqual([again.json.accepted, again.json.duplicates], [1, 18]);
  } finally {
    await second.stop();
  }
});
