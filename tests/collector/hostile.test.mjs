// Hostile requests against the collector on real workerd: each gets a clear 4xx with a code,
// never a 5xx, and stores nothing (the person it names has no profile afterwards).
// (The cases of ordinary bad input are in collector.test.mjs, "answers to bad requests".)
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { ADMIN_KEY, OTHER_ADMIN_KEY, SERVER_KEY, browserEvent, eventually, launch, uuid } from "../support/collector.mjs";

let collector;
before(async () => {
  collector = await launch();
});
after(() => collector.stop());

/** A Segment track body for `userId` with `properties` spliced in as raw JSON text. */
const rawTrack = (userId, propertiesJson) =>
  `{"userId":${JSON.stringify(userId)},"event":"E","messageId":"${uuid()}","properties":${propertiesJson}}`;

describe("hostile input gets a 4xx and stores nothing", () => {
  const cases = [
    ["nesting 10,000 levels deep", (u) => collector.segment("track", rawTrack(u, `${'{"a":'.repeat(10_000)}1${"}".repeat(10_000)}`)), "malformed"],
    ["arrays nested 10,000 deep", (u) => collector.segment("track", rawTrack(u, `{"a":${"[".repeat(10_000)}${"]".repeat(10_000)}}`)), "malformed"],
    ["a huge array", (u) => collector.segment("track", rawTrack(u, `{"a":[${Array(100_000).fill(1).join(",")}]}`)), "event_too_large"],
    ["invalid UTF-8", (u) => collector.segment("track", Buffer.concat([Buffer.from(rawTrack(u, '{"a":"').slice(0, -1)), Buffer.from([0x22, 0xff, 0xfe, 0x22, 0x7d, 0x7d])])), "malformed"],
    ["NaN", (u) => collector.segment("track", rawTrack(u, '{"a":NaN}')), "malformed"],
    ["Infinity", (u) => collector.segment("track", rawTrack(u, '{"a":Infinity}')), "malformed"],
    ["a number too large for a float", (u) => collector.segment("track", rawTrack(u, '{"a":1e999}')), "malformed"],
    ["a timestamp before 2000", (u) => collector.segment("track", { userId: u, event: "E", timestamp: "1970-01-01T00:00:00Z" }), "timestamp_out_of_range"],
    ["a timestamp in year 275760", (u) => collector.segment("track", { userId: u, event: "E", timestamp: "+275760-09-13T00:00:00Z" }), "bad_timestamp"],
    ["a batch replayed after 30 days", (u) => collector.segment("batch", { batch: [{ type: "track", userId: u, event: "E", messageId: "m", timestamp: new Date(Date.now() - 40 * 86_400_000).toISOString() }] }), "too_old"],
    ["a 300-byte user id", (u) => collector.segment("track", { userId: u + "x".repeat(300), event: "E" }), "id_too_long"],
    ["a key of 300 bytes", (u) => collector.segment("track", rawTrack(u, `{"${"k".repeat(300)}":1}`)), "key_too_long"],
    ["a property key given twice", (u) => collector.segment("track", rawTrack(u, '{"plan":"free","plan":"pro"}')), "malformed"],
    ["a top-level field given twice", (u) => collector.segment("track", `{"userId":${JSON.stringify(u)},"event":"E","event":"F"}`), "malformed"],
    ["a __proto__ key", (u) => collector.segment("track", rawTrack(u, '{"__proto__":{"isAdmin":true}}')), "forbidden_key"],
    ["a __proto__ trait", (u) => collector.segment("identify", `{"userId":${JSON.stringify(u)},"traits":{"__proto__":{"plan":"pro"}}}`), "forbidden_key"],
  ];
  for (const [name, send, code] of cases) {
    test(`${name} → 4xx ${code}`, async () => {
      const userId = `hostile-${uuid()}`;
      const response = await send(userId);
      assert.ok(response.status >= 400 && response.status < 500, `${response.status} ${response.text.slice(0, 200)}`);
      assert.equal(response.json?.code, code, response.text.slice(0, 300));
      assert.equal((await collector.profile("user_id", userId)).status, 404, "nothing stored");
    });
  }

  test("an oversized header is refused by the runtime before the Worker", async () => {
    // Refused unread, so on a connection of its own (the runtime closes it).
    const response = await collector
      .request("/v1/track", {
        method: "POST",
        headers: { "content-type": "application/json", "x-padding": "a".repeat(200_000) },
        body: JSON.stringify({ userId: "u-header", event: "E" }),
        ownConnection: true,
      })
      .catch((error) => ({ status: 0, error }));
    assert.ok(response.status >= 400 && response.status < 500, `status ${response.status}`);
  });

  test("ids in admin paths are data, never paths: traversal finds nothing", async () => {
    const headers = { authorization: `Bearer ${ADMIN_KEY}` };
    for (const path of [
      "/v1/profiles/user_id/..%2F..%2Fadmin",
      "/v1/profiles/profile_id/..%2Fother%2Fprofile%2Fa%3Ax",
      "/v1/profiles/user_id/%00",
      "/v1/accounts/..%2F..%2Fx",
      "/v1/audiences/..%2Fhot_leads/members",
    ]) {
      const response = await collector.request(path, { headers });
      assert.ok([400, 404].includes(response.status), `${path}: ${response.status} ${response.text}`);
      assert.equal(typeof response.json.code, "string", path);
    }
  });

  test("a limit that is no integer is the caller's mistake, on every listing; one out of range is kept to 1–1,000", async () => {
    const headers = { authorization: `Bearer ${ADMIN_KEY}` };
    for (const path of ["/v1/audiences/hot_leads/members?limit=abc", "/v1/audiences/hot_leads/members?limit=1.5", "/v1/audiences/hot_leads/members?limit=-"]) {
      const response = await collector.request(path, { headers });
      assert.deepEqual([response.status, response.json.code, response.json.path], [400, "bad_parameter", "limit"], `${path}: ${response.text}`);
    }
    for (const limit of ["-1", "99999999999999999999", "-99999999999999999999"]) {
      const response = await collector.request(`/v1/audiences/hot_leads/members?limit=${limit}`, { headers });
      assert.equal(response.status, 200, `${limit}: ${response.text}`);
    }
  });

  test("an account is found by its domain as written or as a URL, an email's `www.` domain too", async () => {
    const headers = { authorization: `Bearer ${ADMIN_KEY}` };
    const domain = `www.corp-${uuid().slice(0, 8)}.com`;
    const anon = uuid();
    const identify = browserEvent("identify", anon, { userId: `u-${anon}`, traits: { email: `ann@${domain}` } });
    assert.equal((await collector.beacon([identify])).status, 200);
    for (const asked of [domain, `https://${domain.toUpperCase()}/about`]) {
      const found = await eventually(async () => {
        const response = await collector.request(`/v1/accounts/domain/${encodeURIComponent(asked)}`, { headers });
        return response.status === 200 && response;
      }, { message: `the account of ${asked}` });
      assert.equal(found.json.id, `domain:${domain}`);
    }
  });

  test("a method a route does not answer is 405 with the methods it does, whatever the id; an unknown path is 404", async () => {
    const headers = { authorization: `Bearer ${ADMIN_KEY}` };
    const cases = [
      ["PUT", `/v1/profiles/user_id/never-${uuid()}`, 405, "GET, HEAD, DELETE"],
      ["DELETE", "/v1/profiles/user_id/x/events", 405, "GET, HEAD"],
      ["DELETE", "/v1/accounts/x", 405, "GET, HEAD"],
      ["POST", "/v1/audiences", 405, "GET, HEAD"],
      ["POST", "/v1/config/pk_dev_demo", 405, "GET, HEAD"],
      ["GET", "/v1/track", 405, "POST"],
      ["PATCH", "/v1/b", 405, "POST"],
      ["HEAD", "/v1/b", 405, "POST"],
      ["HEAD", "/v1/audiences", 200, null],
      ["GET", "/v1/nothing-here", 404, null],
      ["POST", "/v1/audiences/x", 404, null],
    ];
    for (const [method, path, status, allow] of cases) {
      const response = await collector.request(path, { method, headers });
      assert.deepEqual([response.status, response.headers.get("allow")], [status, allow], `${method} ${path}: ${response.text}`);
      if (method !== "HEAD") assert.equal(response.json?.code, { 200: undefined, 404: "not_found", 405: "method_not_allowed" }[status]);
    }
  });

  test("admin errors name the part of the request at fault: the id, its type, the cursor", async () => {
    const headers = { authorization: `Bearer ${ADMIN_KEY}` };
    const known = uuid();
    assert.equal((await collector.beacon([browserEvent("page", known)])).status, 200);
    const cases = [
      ["/v1/profiles/user_id/%FF", 400, "bad_id", "id"],
      [`/v1/profiles/profile_id/${"x".repeat(8_193)}`, 400, "bad_id", "id"],
      ["/v1/profiles/user_id//events", 400, "bad_id", "id"],
      ["/v1/profiles/phone/x", 400, "bad_id_type", "idType"],
      ["/v1/accounts/domain/%FF", 400, "bad_id", "domain"],
      ["/v1/accounts/domain/not%20a%20host", 400, "bad_id", "domain"],
      // A profile's email or custom id may be longer than a user id.
      [`/v1/profiles/email/${"x".repeat(300)}%40acme.com`, 404, "profile_not_found", ""],
      [`/v1/profiles/anonymous_id/${known}/events?cursor=nonsense`, 400, "bad_parameter", "cursor"],
      // A cursor past the audience's shards was answered 200 with no members.
      ["/v1/audiences/hot_leads/members?cursor=999:x", 400, "bad_parameter", "cursor"],
      ["/v1/audiences/hot_leads/members?cursor=nonsense", 400, "bad_parameter", "cursor"],
    ];
    for (const [path, status, code, field] of cases) {
      const response = await collector.request(path, { headers });
      assert.deepEqual([response.status, response.json.code, response.json.path ?? ""], [status, code, field], `${path.slice(0, 80)}: ${response.text.slice(0, 300)}`);
    }
  });

  test("an authorization scheme's name is case-insensitive", async () => {
    const audiences = await collector.request("/v1/audiences", { headers: { authorization: `bearer ${ADMIN_KEY}` } });
    assert.equal(audiences.status, 200, audiences.text);
    const userId = `basic-${uuid()}`;
    const basic = `BASIC ${Buffer.from(`${SERVER_KEY}:`).toString("base64")}`;
    const tracked = await collector.request("/v1/track", {
      method: "POST",
      headers: { "content-type": "application/json", authorization: basic },
      body: JSON.stringify({ userId, event: "E" }),
    });
    assert.equal(tracked.status, 200, tracked.text);
  });

  test("a body declared past 4 GB is refused at once", async () => {
    const response = await collector.request("/v1/track", {
      method: "POST",
      headers: { "content-type": "application/json", "content-length": "5000000000" },
      ownConnection: true,
    });
    assert.deepEqual([response.status, response.json?.code], [413, "body_too_large"], response.text);
    assert.match(response.json.message, /^body of 5000000000 bytes/);
  });

  test("answers do not repeat a hostile body or path at length", async () => {
    const unknown = await collector.segment("batch", { batch: [{ type: "t".repeat(400_000), userId: "u" }] });
    assert.deepEqual([unknown.status, unknown.json.code], [400, "unknown_type"]);
    assert.ok(unknown.text.length < 2_000, `${unknown.text.length} bytes`);
    const headers = { authorization: `Bearer ${ADMIN_KEY}` };
    for (const path of [`/v1/profiles/user_id/${"x".repeat(60_000)}`, `/v1/profiles/${"y".repeat(60_000)}/x`]) {
      const response = await collector.request(path, { headers });
      assert.ok([400, 404].includes(response.status), `${response.status}`);
      assert.ok(response.text.length < 2_000, `${response.text.length} bytes`);
    }
  });

  test("one admin key set as two workspaces' secrets opens neither", async () => {
    const twice = await launch(undefined, { PORTRAIT_ADMIN_KEY_OTHER: ADMIN_KEY });
    try {
      const response = await twice.request("/v1/audiences", { headers: { authorization: `Bearer ${ADMIN_KEY}` } });
      assert.deepEqual([response.status, response.json.code], [503, "bad_config"], response.text);
    } finally {
      await twice.stop();
    }
  });

  test("another workspace's admin key sees nothing of this one's accounts and audiences", async () => {
    const headers = { authorization: `Bearer ${OTHER_ADMIN_KEY}` };
    const { json } = await collector.request("/v1/audiences", { headers });
    assert.deepEqual(json.audiences, []);
    assert.equal((await collector.request("/v1/audiences/hot_leads/members", { headers })).status, 404);
  });
});
