// The ProfileObject's alarm, run every 3 seconds here (PORTRAIT_HOUSEKEEPING_MS): the timeline
// keeps the newest 1,000 events, while every message id stays remembered for deduplication.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { browserEvent, encodeBeacon, launch, uuid } from "../support/collector.mjs";

let collector;
before(async () => {
  collector = await launch(undefined, { PORTRAIT_HOUSEKEEPING_MS: "3000" });
});
after(() => collector.stop());

test("the alarm trims the timeline to 1,000 events and keeps every message id", async () => {
  const anon = uuid();
  const batches = Array.from({ length: 3 }, (_, b) =>
    Array.from({ length: 400 }, (_, i) => browserEvent("track", anon, { event: "Tick", properties: { n: b * 400 + i } })),
  );
  const bodies = batches.map((batch) => encodeBeacon({ batch }));
  for (const body of bodies) assert.equal((await collector.beacon([], { body })).json.accepted, 400);

  let exported = (await collector.admin(`anonymous_id/${anon}/export`)).json;
  assert.equal(exported.events.length, 1200, "export holds everything before the alarm runs");
  for (let attempt = 0; attempt < 40 && exported.events.length === 1200; attempt++) {
    await sleep(500);
    exported = (await collector.admin(`anonymous_id/${anon}/export`)).json;
  }
  // Whole batches are kept: the newest two (800 events) fit in 1,000, three do not.
  assert.equal(exported.events.length, 800);
  assert.equal(exported.events[0].properties.n, 1199);
  assert.equal(exported.messageIdsRemembered, 1200);
  assert.equal(exported.profile.eventCount, 1200);

  // The oldest batch left the timeline but not the deduplication memory.
  const retry = await collector.beacon([], { body: bodies[0] });
  assert.deepEqual([retry.json.accepted, retry.json.duplicates], [0, 400]);
});
