// Segment's own Node.js library, unmodified, pointed at the local collector: what it sends
// (Basic auth, its batch format, its message ids and timestamps) must be accepted as is.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { Analytics } from "@segment/analytics-node";
import { SERVER_KEY, launch } from "../support/collector.mjs";

let collector;
before(async () => {
  collector = await launch();
});
after(() => collector.stop());

test("@segment/analytics-node delivers identify, track, page, group and alias", async () => {
  const analytics = new Analytics({ writeKey: SERVER_KEY, host: collector.url, flushAt: 10, maxRetries: 0 });
  const failures = [];
  analytics.on("error", (error) => failures.push(error));
  analytics.identify({ userId: "node-user", traits: { email: "node@example.com", plan: "team" } });
  analytics.track({ userId: "node-user", event: "Report Exported", properties: { format: "csv", rows: 1200 } });
  analytics.page({ userId: "node-user", name: "Billing", properties: { path: "/settings/billing" } });
  analytics.group({ userId: "node-user", groupId: "acme", traits: { name: "Acme", employees: 250 } });
  analytics.alias({ userId: "node-user", previousId: "legacy-42" });
  await analytics.closeAndFlush({ timeout: 10_000 });
  assert.deepEqual(failures, []);

  const { status, json: profile } = await collector.profile("email", "node@example.com");
  assert.equal(status, 200);
  assert.equal(profile.profileId, "u:node-user");
  assert.deepEqual(profile.counters, { $identify: 1, "Report Exported": 1, $page: 1, $group: 1, $alias: 1 });
  assert.deepEqual(profile.groups, ["acme"]);
  const { json: timeline } = await collector.admin("user_id/node-user/events");
  const track = timeline.events.find((e) => e.type === "track");
  assert.match(track.messageId, /./);
  assert.equal(track.context.library.name, "@segment/analytics-node");
  assert.deepEqual(track.properties, { format: "csv", rows: 1200 });
});

test("a server library's page views build interests until personalisation is withdrawn", async () => {
  const failures = [];
  const userId = `node-reader-${Date.now()}`;
  // One client per call: each is flushed and closed before the profile is read.
  const send = async (call, message) => {
    const analytics = new Analytics({ writeKey: SERVER_KEY, host: collector.url, maxRetries: 0 });
    analytics.on("error", (error) => failures.push(error));
    analytics[call]({ userId, ...message });
    await analytics.closeAndFlush({ timeout: 10_000 });
  };
  const page = (at) => ({
    name: "Firewall rules",
    timestamp: new Date(at),
    properties: { title: "Network security: firewalls and VPNs explained", url: "https://example.com/blog/network-security-firewalls" },
  });
  const interests = async () =>
    (await collector.profile("user_id", userId)).json.tags.find((t) => t.name === "interests")?.value ?? [];
  const now = Date.now();
  await send("page", page(now - 60_000));
  assert.notDeepEqual(await interests(), [], "the collector classifies the server's page view");
  await send("track", { event: "Consent Updated", timestamp: new Date(now - 30_000), properties: { personalization: "denied" } });
  assert.deepEqual(await interests(), [], "the withdrawal erases them");
  await send("page", page(now));
  assert.deepEqual(await interests(), [], "a later page view of the server does not count");
  assert.deepEqual(failures, []);
});
