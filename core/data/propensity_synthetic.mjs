// Writes propensity_synthetic.jsonl beside this file: 400 synthetic profiles, each labelled
// converted or not by a known logistic model (TRUTH), for `portrait fit-propensity` and its
// test (cli/tests/cli.rs), which checks that the fit finds the signs of TRUTH.
//
//   node core/data/propensity_synthetic.mjs          (re)write the file
//   node core/data/propensity_synthetic.mjs --check  exit 1 if the file differs from the output
//   node core/data/propensity_synthetic.mjs --seed N --rows N --out FILE   other draws
//
// Deterministic: a fixed-seed PRNG (mulberry32), no Math.random, no clock. Each line is
// {"profile": {profileId, tags: [{name, kind, value, reason}]}, "converted": bool}, the tags
// as GET /v1/profiles/… shows them; a feature's value follows core::predict::feature_value
// (a missing tag is 0), and the label is drawn with P = σ(TRUTH.intercept + Σ c × feature).

import { readFileSync, writeFileSync } from "node:fs";

export const TRUTH = {
  intercept: -4.0,
  coefficients: {
    engagement_score: 0.25,
    lead_score: 0.03,
    visits_per_week: 0.2,
    active_7d: 1.2,
    "intent_stage=consideration": 1.2,
    "intent_stage=decision": 2.2,
    "lifecycle=known": 1.2,
    page_views: -0.04,
  },
};

function option(name, fallback) {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : fallback;
}

const SEED = Number(option("--seed", "20240601"));
const ROWS = Number(option("--rows", "400"));
const OUT = option("--out", new URL("./propensity_synthetic.jsonl", import.meta.url).pathname);

function mulberry32(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const random = mulberry32(SEED);
const normal = () => Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random());
const exponential = (mean) => -mean * Math.log(1 - random());
const round1 = (x) => Math.round(x * 10) / 10;
const pick = (choices) => {
  // [[value, weight], …], weights summing to 1
  let u = random();
  for (const [value, weight] of choices) {
    if ((u -= weight) < 0) return value;
  }
  return choices[choices.length - 1][0];
};

function profile(i) {
  const visits = Math.min(20, round1(exponential(3)));
  const engagement = round1(0.3 * visits + exponential(2));
  const lifecycle = pick([["anonymous", 0.5], ["known", 0.35], ["customer", 0.15]]);
  const lead = random() < 0.15 ? undefined : Math.min(100, Math.round(random() * 70 + 4 * engagement));
  const active = random() < Math.min(0.9, 0.15 + 0.08 * visits);
  const stage =
    random() < 0.1 ? undefined : pick([["awareness", 0.45], ["consideration", 0.3], ["decision", 0.25]]);
  const pages = Math.round(15 * Math.exp(0.7 * normal())) + Math.round(2 * visits);
  const country = pick([["GB", 0.4], ["DE", 0.3], ["US", 0.3]]);

  const tags = [];
  const tag = (name, kind, value, reason) => value !== undefined && tags.push({ name, kind, value, reason });
  tag("country", "factual", country, "edge location of the latest event");
  tag("lifecycle", "factual", lifecycle, "synthetic");
  tag("page_views", "analytical", pages, "count of page calls");
  tag("visits_per_week", "analytical", visits, "synthetic");
  tag("active_7d", "analytical", active, "synthetic");
  tag("engagement_score", "analytical", engagement, "synthetic");
  tag("intent_stage", "analytical", stage, "synthetic");
  tag("lead_score", "predictive", lead, "synthetic");

  const feature = (name) => {
    const [tagName, wanted] = name.split("=");
    const found = tags.find((t) => t.name === tagName);
    if (wanted !== undefined) return found && found.value === wanted ? 1 : 0;
    if (!found || typeof found.value === "string") return 0;
    return Number(found.value);
  };
  let z = TRUTH.intercept;
  for (const [name, c] of Object.entries(TRUTH.coefficients)) z += c * feature(name);
  const converted = random() < 1 / (1 + Math.exp(-z));
  const id = `a:synthetic-${String(i + 1).padStart(4, "0")}`;
  return { profile: { profileId: id, tags }, converted };
}

const lines = [];
for (let i = 0; i < ROWS; i++) lines.push(JSON.stringify(profile(i)));
const text = lines.join("\n") + "\n";

if (process.argv.includes("--check")) {
  const same = readFileSync(OUT, "utf8") === text;
  console.log(same ? `${OUT}: up to date` : `${OUT}: differs from the generator's output`);
  process.exit(same ? 0 : 1);
}
writeFileSync(OUT, text);
const positives = lines.filter((l) => l.endsWith('"converted":true}')).length;
console.log(`${OUT}: ${ROWS} rows, ${positives} converted (seed ${SEED})`);
