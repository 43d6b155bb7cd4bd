// `cargo xtask demo --seed`: synthetic visitors, so the viewer has something to show at once.
// The journeys of tests/data/journeys.json (a researcher, an evaluator, a customer, a dormant
// lead), plus one person on two devices who fills the demo form on the second, with a
// colleague — sent as a server would, with Segment JSON and the development server key.
import { readFileSync } from "node:fs";

const DAY = 86_400_000;
const journeysFile = new URL("../tests/data/journeys.json", import.meta.url);

/** Sends the journeys to the collector at `collectorUrl`; returns the emails of the known people. */
export async function seed(collectorUrl) {
  const { journeys } = JSON.parse(readFileSync(journeysFile, "utf8"));
  const run = Date.now().toString(36);
  const emails = [];
  const people = journeys.map((journey, i) => events(journey.events, { anonymousId: `seed-${run}-${i}`, id: `${run}${i}` }));
  people.push(...twoDevices(run));
  for (const batch of people) {
    await send(collectorUrl, batch);
    emails.push(...batch.map((e) => e.traits?.email).filter(Boolean));
  }
  return [...new Set(emails)];
}

/** Journey steps (`at` days ago) as Segment events of one visitor. */
function events(steps, { anonymousId, id }) {
  const now = Date.now();
  return steps.map((step, n) => {
    const { type, at, path, ...rest } = JSON.parse(JSON.stringify(step).replaceAll("{id}", id));
    const event = {
      type,
      anonymousId,
      messageId: `${anonymousId}-${n}`,
      timestamp: new Date(now - at * DAY).toISOString(),
      context: {
        userAgent: "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15",
        page: path ? { url: `http://127.0.0.1:8080${path}`, path, title: path } : undefined,
      },
      ...rest,
    };
    if (type === "page") event.properties = { path };
    return event;
  });
}

/** A reader on a laptop, then on a phone, who requests a demo there; then a colleague
 * (a second request, once the account has registered its domain). */
function twoDevices(run) {
  const domain = `acme-${run}.example`;
  const laptop = events(
    [
      { type: "page", at: 3, path: "/blog/zero-trust-networking.html" },
      { type: "page", at: 2.9, path: "/blog/cloud-misconfigurations.html" },
      { type: "page", at: 2.8, path: "/product/security.html" },
      { type: "identify", at: 0.2, traits: { email: `ann@${domain}` } },
    ],
    { anonymousId: `seed-${run}-laptop`, id: run },
  );
  const phone = events(
    [
      { type: "page", at: 1, path: "/pricing.html" },
      { type: "identify", at: 0.9, traits: { name: "Ann Lee", email: `ann@${domain}`, company: "Acme", title: "VP Engineering", employees: 400 } },
      { type: "group", at: 0.9, groupId: domain, traits: { name: "Acme", domain, industry: "Software", employees: 400 } },
      { type: "track", at: 0.89, event: "Demo Requested", properties: { product: "security" } },
    ],
    { anonymousId: `seed-${run}-phone`, id: run },
  );
  const colleague = events(
    [
      { type: "page", at: 0.5, path: "/docs/index.html" },
      { type: "identify", at: 0.4, traits: { name: "Bo Chen", email: `bo@${domain}`, title: "Staff Engineer" } },
    ],
    { anonymousId: `seed-${run}-colleague`, id: run },
  );
  return [[...phone, ...laptop], colleague];
}

async function send(collectorUrl, batch) {
  const response = await fetch(`${collectorUrl}/v1/batch`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Basic ${Buffer.from("pk_dev_server:").toString("base64")}` },
    body: JSON.stringify({ batch }),
  });
  if (!response.ok) throw new Error(`seeding: ${response.status} ${await response.text()}`);
}
