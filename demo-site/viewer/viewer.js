// Portrait profile viewer: a static page of the demo server (`/viewer/`) that reads the
// collector's admin API through the server's same-origin proxy (`/api/v1/…`). No framework,
// no build step. Views are chosen by the URL's hash:
//
//   #/                                  search
//   #/profile/{idType}/{id}             a person
//   #/account/{accountId}               an account
//   #/account-domain/{domain}           an account, by its domain
//   #/audiences                         the workspace's audiences
//   #/audience/{name}                   an audience's members
//
// Every string that reaches the page goes through `escapeHtml`, by way of the `html` template
// tag below: interpolated values are escaped unless they are themselves `html` fragments.
"use strict";

const DEFAULT_KEY = "sk_dev_demo_admin";
const KEY_STORAGE = "portrait.viewer.adminKey";
const ID_TYPES = [
  ["email", "Email"],
  ["user_id", "User id"],
  ["anonymous_id", "Anonymous id"],
  ["profile_id", "Profile id"],
];
const TAG_KINDS = ["factual", "analytical", "predictive"];
const EVENTS_PAGE = 25;
const MEMBERS_PAGE = 50;
const DELIVERIES_LIMIT = 1000;

// ---------------------------------------------------------------------------------------
// HTML building: escapeHtml and a template tag that applies it to every interpolation.

function escapeHtml(value) {
  const entities = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };
  return String(value).replace(/[&<>"']/g, (c) => entities[c]);
}

/** Markup that is already safe: made only by `html`. */
class Html {
  constructor(text) {
    this.text = text;
  }
  toString() {
    return this.text;
  }
}

/** `html\`<p>${text}</p>\``: values are escaped; `Html` values and arrays of them are kept;
 * `null`, `undefined` and `false` render as nothing (so `${cond && html\`…\`}` works). */
function html(strings, ...values) {
  let out = strings[0];
  values.forEach((value, i) => {
    out += fragment(value) + strings[i + 1];
  });
  return new Html(out);
}

function fragment(value) {
  if (value instanceof Html) return value.text;
  if (Array.isArray(value)) return value.map(fragment).join("");
  if (value === null || value === undefined || value === false) return "";
  return escapeHtml(value);
}

const enc = encodeURIComponent;

let uniqueIds = 0;
const uid = (prefix) => `${prefix}-${++uniqueIds}`;

// ---------------------------------------------------------------------------------------
// Formatting.

function formatNumber(n) {
  if (typeof n !== "number" || !Number.isFinite(n)) return String(n ?? "—");
  return Number.isInteger(n) ? String(n) : String(Math.round(n * 1000) / 1000);
}

function formatTime(iso) {
  const date = new Date(iso);
  if (!iso || Number.isNaN(date.getTime())) return String(iso ?? "—");
  return date.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
}

function relativeTime(iso, now = Date.now()) {
  const ms = now - new Date(iso).getTime();
  if (!Number.isFinite(ms)) return "";
  const abs = Math.abs(ms);
  const [unit, size] =
    abs < 60_000 ? ["s", 1000] : abs < 3_600_000 ? ["min", 60_000] : abs < 86_400_000 ? ["h", 3_600_000] : ["d", 86_400_000];
  const amount = Math.round(abs / size);
  return ms >= 0 ? `${amount} ${unit} ago` : `in ${amount} ${unit}`;
}

/** A `<time>`, local time shown, the ISO time (UTC) on hover; `relative` adds "3 d ago". */
function timeEl(iso, { relative = false } = {}) {
  if (!iso) return html`<span class="muted">—</span>`;
  return html`<time datetime="${iso}" title="${iso}">${formatTime(iso)}</time>${
    relative && html` <span class="muted">(${relativeTime(iso)})</span>`
  }`;
}

function truncate(text, max) {
  const s = String(text);
  return s.length > max ? `${s.slice(0, max - 1)}…` : s;
}

const LABEL_KEYS = ["name", "tag", "factor", "label", "path", "id"];
const NUMBER_KEYS = ["score", "points", "value", "count"];

/** Any JSON value as one short line: `[{name, score}]` → "Software: 0.8, Cloud: 0.4";
 * objects → "key: value; key: value" ({key: value, …} when nested). */
function compact(value, depth = 0) {
  if (value === null || value === undefined) return "—";
  if (typeof value === "boolean") return value ? "yes" : "no";
  if (typeof value === "number") return formatNumber(value);
  if (typeof value === "string") return value;
  if (Array.isArray(value)) return value.length ? value.map((v) => compact(v, depth + 1)).join(", ") : "none";
  if (typeof value === "object") {
    if (depth > 2) return JSON.stringify(value);
    const keys = Object.keys(value);
    const label = LABEL_KEYS.map((k) => value[k]).find((v) => typeof v === "string" || typeof v === "number");
    const number = NUMBER_KEYS.map((k) => value[k]).find((v) => typeof v === "number");
    if (label !== undefined && number !== undefined && keys.length <= 4) return `${label}: ${formatNumber(number)}`;
    const entries = Object.entries(value).filter(([, v]) => v !== null && v !== undefined);
    if (!entries.length) return depth ? "{}" : "—";
    const pairs = entries.map(([k, v]) => `${k}: ${compact(v, depth + 1)}`);
    return depth ? `{${pairs.join(", ")}}` : pairs.join("; ");
  }
  return String(value);
}

/** A value for a table cell: compact, cut at `max` characters (the whole value on hover). */
function valueEl(value, max = 160) {
  const text = compact(value);
  if (text.length <= max) return html`<span class="value">${text}</span>`;
  return html`<span class="value" title="${truncate(text, 2000)}">${truncate(text, max)}</span>`;
}

const identityText = (identity) => `${identity?.type}:${identity?.id}`;

// ---------------------------------------------------------------------------------------
// Links between views.

const link = {
  search: () => "#/",
  profile: (idType, id) => `#/profile/${enc(idType)}/${enc(id)}`,
  account: (id) => `#/account/${enc(id)}`,
  accountDomain: (domain) => `#/account-domain/${enc(domain)}`,
  audiences: () => "#/audiences",
  audience: (name) => `#/audience/${enc(name)}`,
};

/** An audience member: `account:<id>` for accounts, a profile id for people. */
function memberLink(id) {
  const value = String(id);
  if (value.startsWith("account:")) {
    const account = value.slice("account:".length);
    return { kind: "account", href: link.account(account), label: account };
  }
  return { kind: "person", href: link.profile("profile_id", value), label: value };
}

function safeDecode(part) {
  try {
    return decodeURIComponent(part);
  } catch {
    return part;
  }
}

/** The view a hash asks for: `{view, …parameters}`. */
function parseRoute(hash) {
  const [view = "", ...rest] = String(hash).replace(/^#\/?/, "").split("/").map(safeDecode);
  const tail = rest.join("/");
  switch (view) {
    case "":
      return { view: "search" };
    case "profile":
      if (rest.length >= 2 && rest[0] && rest.slice(1).join("/")) {
        return { view: "profile", idType: rest[0], id: rest.slice(1).join("/") };
      }
      break;
    case "account":
      if (tail) return { view: "account", by: "id", key: tail };
      break;
    case "account-domain":
      if (tail) return { view: "account", by: "domain", key: tail };
      break;
    case "audiences":
      return { view: "audiences" };
    case "audience":
      if (tail) return { view: "audience", name: tail };
      break;
  }
  return { view: "unknown", hash: String(hash) };
}

// ---------------------------------------------------------------------------------------
// The API: one helper, errors as ApiError (status 0: the network).

class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

function storage() {
  try {
    return window.sessionStorage;
  } catch {
    return null;
  }
}

function adminKey() {
  try {
    const stored = storage()?.getItem(KEY_STORAGE);
    if (stored) return stored;
  } catch {
    // storage refused: fall back to the form
  }
  return document.getElementById("admin-key")?.value || DEFAULT_KEY;
}

function saveAdminKey(key) {
  try {
    storage()?.setItem(KEY_STORAGE, key);
  } catch {
    // storage refused: the key is still in the form, which adminKey reads
  }
}

function apiBase() {
  return (document.body?.dataset.api ?? "/api").replace(/\/$/, "");
}

/** GET `/api{path}` with the admin key; the parsed JSON, or an ApiError. */
async function api(path) {
  let response;
  try {
    response = await fetch(apiBase() + path, {
      headers: { Authorization: `Bearer ${adminKey()}`, Accept: "application/json" },
    });
  } catch (error) {
    throw new ApiError(0, "network", `the request did not reach the server (${error?.message ?? error})`);
  }
  let text = "";
  try {
    text = await response.text();
  } catch (error) {
    throw new ApiError(0, "network", `the answer was cut off (${error?.message ?? error})`);
  }
  let body = null;
  try {
    body = text ? JSON.parse(text) : null;
  } catch {
    body = null;
  }
  if (!response.ok && body === null && response.status === 404) {
    // Not the collector's 404 (always JSON): nothing proxies the API here.
    throw new ApiError(404, "no_api", `nothing answers at ${apiBase()}/v1/ on this server; open the viewer from the demo server`);
  }
  if (!response.ok) {
    const message = body?.message ?? (truncate(text.trim(), 200) || response.statusText || "no details");
    throw new ApiError(response.status, body?.code ?? `http_${response.status}`, message);
  }
  if (body === null || typeof body !== "object") {
    throw new ApiError(response.status, "bad_answer", "the answer is not a JSON object");
  }
  return body;
}

const profilePath = (idType, id) => `/v1/profiles/${enc(idType)}/${enc(id)}`;

// ---------------------------------------------------------------------------------------
// Small building blocks.

function section(title, body, { wide = false, slot = null } = {}) {
  const id = uid("section");
  const content = slot ? html`<div data-slot="${slot}">${body}</div>` : body;
  return html`<section class="card${wide ? " wide" : ""}" aria-labelledby="${id}">
    <h2 id="${id}">${title}</h2>${content}</section>`;
}

const loadingNote = (what = "Loading") => html`<p class="muted loading" role="status">${what}…</p>`;
const emptyNote = (text) => html`<p class="muted empty">${text}</p>`;

/** A table whose rows stack into label/value pairs on narrow screens. */
function dataTable(columns, items, cells, { caption = null, className = "" } = {}) {
  return html`<div class="table-wrap"><table class="stack ${className}">
    ${caption && html`<caption>${caption}</caption>`}
    <thead>${tableHead(columns)}</thead>
    <tbody>${tableRows(columns, items, cells)}</tbody>
  </table></div>`;
}

const tableHead = (columns) => html`<tr>${columns.map((c) => html`<th scope="col">${c}</th>`)}</tr>`;

function tableRows(columns, items, cells) {
  return items.map((item) => {
    const values = cells(item);
    return html`<tr>${columns.map((c, i) => html`<td data-label="${c}"><div class="cell">${values[i]}</div></td>`)}</tr>`;
  });
}

function factList(pairs) {
  const shown = pairs.filter(([, value]) => value !== null && value !== undefined && value !== "");
  if (!shown.length) return emptyNote("Nothing recorded.");
  return html`<dl class="facts">${shown.map(([term, value]) => html`<div><dt>${term}</dt><dd>${value}</dd></div>`)}</dl>`;
}

function plainList(items, render, { className = "", empty = "None." } = {}) {
  if (!items.length) return emptyNote(empty);
  return html`<ul class="plain ${className}">${items.map((item) => html`<li>${render(item)}</li>`)}</ul>`;
}

/** How a person belongs to an account: `explicit` (a group call) or `inferred` (their email). */
function linkBadge(how) {
  const title = how === "explicit" ? "from a group call" : how === "inferred" ? "from a business email" : "";
  return html`<span class="badge-inline" title="${title}">${how ?? "?"}</span>`;
}

function badge(label, value, variant = "") {
  if (value === null || value === undefined || value === "") return null;
  const cls = `badge ${variant}`.trim();
  return html`<li class="${cls}"><span class="badge-label">${label}</span> <strong>${compact(value)}</strong></li>`;
}

const slug = (value) => String(value).toLowerCase().replace(/[^a-z0-9]+/g, "-");

function chips(identities) {
  if (!identities?.length) return emptyNote("No identifiers.");
  return html`<ul class="chips">${identities.map(
    (i) => html`<li class="chip"><span class="chip-type">${i.type}</span> <span class="chip-id">${i.id}</span></li>`,
  )}</ul>`;
}

// ---------------------------------------------------------------------------------------
// Charts (inline SVG).

/** Horizontal bars: `items` = [{label, value, title?}]. Widths are percentages of the
 * chart, so the labels keep their size on any screen. */
function barChart(items, { label, max = null, unit = "" }) {
  const shown = items.filter((item) => typeof item.value === "number" && Number.isFinite(item.value));
  if (!shown.length) return emptyNote("No data.");
  const top = max ?? (Math.max(...shown.map((i) => i.value)) || 1);
  const rowHeight = 38;
  const [titleId, descId] = [uid("chart-title"), uid("chart-desc")];
  const description = shown.map((i) => `${i.label}: ${formatNumber(i.value)}${unit}`).join(", ");
  const rows = shown.map((item, n) => {
    const y = n * rowHeight;
    const width = Math.max(0, Math.min(1, item.value / top)) * 100;
    return html`<g><title>${item.title ?? item.label}: ${formatNumber(item.value)}${unit}</title>
      <text x="0" y="${y + 14}" class="bar-label">${truncate(item.label, 34)}</text>
      <text x="100%" y="${y + 14}" text-anchor="end" class="bar-value">${formatNumber(item.value)}${unit}</text>
      <rect x="0" y="${y + 20}" width="100%" height="10" rx="3" class="bar-track"></rect>
      <rect x="0" y="${y + 20}" width="${width.toFixed(1)}%" height="10" rx="3" class="bar-fill"></rect></g>`;
  });
  return html`<svg class="bar-chart" width="100%" height="${shown.length * rowHeight}" role="img"
    aria-labelledby="${titleId} ${descId}"><title id="${titleId}">${label}</title>
    <desc id="${descId}">${description}</desc>${rows}</svg>`;
}

/** `[{id, name, path, score}]` as bars, the path on hover. */
function interestChart(interests, label) {
  const list = Array.isArray(interests) ? interests.filter((i) => i && typeof i === "object") : [];
  if (!list.length) return emptyNote("No interests yet.");
  const items = list.map((i) => ({
    label: i.name ?? String(i.path ?? "").split("/").filter(Boolean).pop() ?? `topic ${i.id}`,
    title: i.path ?? i.name ?? `topic ${i.id}`,
    value: i.score,
  }));
  return barChart(items, { label });
}

const asNumber = (v) => (typeof v === "number" && Number.isFinite(v) ? v : null);

/** Rounds up to 1, 2 or 5 × a power of ten: a y-axis maximum. */
function niceCeil(value) {
  if (!(value > 0)) return 1;
  const power = 10 ** Math.floor(Math.log10(value));
  return [1, 2, 5, 10].map((m) => m * power).find((m) => m >= value);
}

/** A line over `days` (null values leave gaps); y from 0 to `max` (default: the data's). */
function lineChart({ title, days, values, max = null }) {
  const points = days.map((day, i) => [i, asNumber(values?.[i])]);
  const known = points.filter(([, v]) => v !== null);
  if (!known.length) {
    return html`<figure class="chart"><figcaption class="chart-title">${title}</figcaption>${emptyNote("No data.")}</figure>`;
  }
  const [W, H] = [300, 100];
  const top = max ?? niceCeil(Math.max(...known.map(([, v]) => v)));
  const x = (i) => (days.length === 1 ? W / 2 : (i / (days.length - 1)) * W);
  const y = (v) => H - (Math.max(0, Math.min(v, top)) / top) * (H - 4) - 2;
  const segments = [];
  let current = [];
  for (const [i, v] of points) {
    if (v === null) {
      if (current.length) segments.push(current);
      current = [];
    } else {
      current.push(`${x(i).toFixed(1)},${y(v).toFixed(1)}`);
    }
  }
  if (current.length) segments.push(current);
  // A lone point is drawn as a zero-length line with round caps: a dot.
  const lines = segments.map((s) => html`<polyline points="${(s.length === 1 ? [s[0], s[0]] : s).join(" ")}"></polyline>`);
  const [first, last] = [known[0], known[known.length - 1]];
  const peak = Math.max(...known.map(([, v]) => v));
  const [titleId, descId] = [uid("line-title"), uid("line-desc")];
  const summary = `${title} from ${days[0]} to ${days[days.length - 1]}: ${formatNumber(first[1])} on ${days[first[0]]}, ` +
    `${formatNumber(last[1])} on ${days[last[0]]}, highest ${formatNumber(peak)}.`;
  return html`<figure class="chart">
    <figcaption><span class="chart-title">${title}</span>
      <strong class="chart-last">${formatNumber(last[1])}</strong>
      <span class="muted">on ${days[last[0]]}</span></figcaption>
    <svg class="line-chart" viewBox="0 0 ${W} ${H}" preserveAspectRatio="none" role="img"
      aria-labelledby="${titleId} ${descId}"><title id="${titleId}">${title}</title><desc id="${descId}">${summary}</desc>
      <line class="grid-line" x1="0" y1="${y(top)}" x2="${W}" y2="${y(top)}"></line>
      <line class="grid-line" x1="0" y1="${y(top / 2)}" x2="${W}" y2="${y(top / 2)}"></line>
      <line class="axis-line" x1="0" y1="${y(0)}" x2="${W}" y2="${y(0)}"></line>
      ${lines}</svg>
    <div class="chart-axis" aria-hidden="true">
      <span>${days[0]}</span><span>0–${formatNumber(top)}</span><span>${days[days.length - 1]}</span>
    </div>
  </figure>`;
}

/** The profile's `series` ({days, engagement, leadScore}), or a note when it is missing. */
function renderSeries(series) {
  const days = Array.isArray(series?.days) ? series.days.map(String) : [];
  if (!days.length) return emptyNote("No history in this answer (the profile has no series yet).");
  return html`<div class="charts">
    ${lineChart({ title: "Engagement score", days, values: Array.isArray(series.engagement) ? series.engagement : [] })}
    ${lineChart({ title: "Lead score", days, values: Array.isArray(series.leadScore) ? series.leadScore : [], max: 100 })}
  </div>`;
}

// ---------------------------------------------------------------------------------------
// Person.

const tagsByName = (tags) => Object.fromEntries((Array.isArray(tags) ? tags : []).map((t) => [t.name, t.value]));

function leadVariant(score) {
  if (typeof score !== "number") return "";
  return score >= 60 ? "good" : score >= 30 ? "fair" : "low";
}

function personTitle(profile) {
  const traits = profile.traits ?? {};
  const parts = [traits.firstName, traits.lastName].filter((p) => typeof p === "string");
  const name = typeof traits.name === "string" ? traits.name : parts.join(" ");
  return name || (typeof traits.email === "string" && traits.email) || profile.profileId || "Person";
}

function renderPersonHeader(profile) {
  const tags = tagsByName(profile.tags);
  const badges = [
    badge("Lifecycle", tags.lifecycle, `lifecycle-${slug(tags.lifecycle ?? "")}`),
    badge("Lead score", tags.lead_score, `score-${leadVariant(tags.lead_score)}`),
    badge("Engagement", tags.engagement_level, `level-${slug(tags.engagement_level ?? "")}`),
    badge("Intent", tags.intent_stage),
    badge("Churn risk", tags.churn_risk, `risk-${slug(tags.churn_risk ?? "")}`),
  ].filter(Boolean);
  return html`<header class="card wide page-head">
    <p class="eyebrow">Person</p>
    <h1 tabindex="-1">${personTitle(profile)}</h1>
    <p class="profile-id">Profile id <code>${profile.profileId}</code></p>
    ${badges.length ? html`<ul class="badges" aria-label="Key tags">${badges}</ul>` : null}
    <h2 class="visually-hidden">Identifiers</h2>
    ${chips(profile.identities)}
    ${factList([
      ["First seen", timeEl(profile.firstSeen)],
      ["Last seen", timeEl(profile.lastSeen, { relative: true })],
      ["Events", formatNumber(profile.eventCount ?? 0)],
      ["Sessions", profile.sessions?.count !== undefined ? formatNumber(profile.sessions.count) : null],
    ])}
  </header>`;
}

function renderTags(tags) {
  const list = Array.isArray(tags) ? tags : [];
  if (!list.length) return emptyNote("No tags.");
  const kinds = [...TAG_KINDS, ...new Set(list.map((t) => t.kind).filter((k) => !TAG_KINDS.includes(k)))];
  return kinds.map((kind) => {
    const ofKind = list.filter((t) => t.kind === kind);
    if (!ofKind.length) return null;
    return html`<h3 class="tag-kind">${kind} <span class="muted">(${ofKind.length})</span></h3>
      ${dataTable(["Tag", "Value", "Changed"], ofKind, (tag) => [
        html`<code>${tag.name}</code>`,
        html`${valueEl(tag.value)}<span class="reason">${tag.reason ?? ""}</span>`,
        tag.changedAt ? timeEl(tag.changedAt) : html`<span class="muted">—</span>`,
      ], { className: "tags" })}`;
  });
}

function describeReason(reason) {
  if (reason?.sharedIdentity) return `both held ${identityText(reason.sharedIdentity)}`;
  return compact(reason);
}

function renderIdentityHistory(profile) {
  const history = Array.isArray(profile.identityHistory) ? profile.identityHistory : [];
  const merged = Array.isArray(profile.mergedProfiles) ? profile.mergedProfiles : [];
  const table = history.length
    ? dataTable(["When", "Change", "Details"], [...history].reverse(), (entry) => {
        if (entry.change === "merged") {
          return [
            timeEl(entry.at),
            html`<span class="badge-inline ok">merged</span> <code>${entry.from}</code> into this profile`,
            html`${describeReason(entry.reason)}; brought ${(entry.identities ?? []).map(identityText).join(", ") || "no new ids"}`,
          ];
        }
        if (entry.change === "refused") {
          return [
            timeEl(entry.at),
            html`<span class="badge-inline warn">refused</span> merge with <code>${entry.other}</code>`,
            html`${entry.refusal?.message ?? entry.refusal?.code ?? "refused"}
              <span class="muted">(${entry.refusal?.code ?? "?"}; ${describeReason(entry.reason)})</span>`,
          ];
        }
        return [timeEl(entry.at), entry.change ?? "?", valueEl(entry)];
      }, { caption: "Merge history, newest first" })
    : emptyNote("No merges and no refused merges.");
  const mergedIds = merged.map((id, i) => html`${i ? ", " : ""}<code>${id}</code>`);
  return html`${merged.length ? html`<p>Merged into this profile: ${mergedIds}</p>` : null}
    ${table}`;
}

/** `{city, region, country, continent, timezone, asOrganization, asn, …}` as one line. */
function describeLocation(location) {
  if (typeof location !== "object") return compact(location);
  const place = [location.city, location.region !== location.city ? location.region : null, location.country]
    .filter(Boolean)
    .join(", ");
  const network = location.asOrganization ? `${location.asOrganization}${location.asn ? ` (AS${location.asn})` : ""}` : null;
  const line = [place, location.timezone, network].filter(Boolean).join(" · ");
  return line || compact(location);
}

function renderDetails(profile) {
  const traits = Object.entries(profile.traits ?? {});
  const devices = Object.entries(profile.devices ?? {}).sort((a, b) => b[1] - a[1]);
  const counters = Object.entries(profile.counters ?? {}).sort((a, b) => b[1] - a[1]);
  const groups = Array.isArray(profile.groups) ? profile.groups : [];
  return html`<h3>Traits</h3>
    ${factList(traits.map(([key, value]) => [key, valueEl(value, 120)]))}
    <h3>Location</h3>
    ${profile.location ? html`<p>${describeLocation(profile.location)}</p>` : emptyNote("Unknown.")}
    <h3>Devices</h3>
    ${plainList(devices, ([d, n]) => html`${d.replaceAll("/", " · ")} <span class="muted">(${formatNumber(n)} events)</span>`)}
    <h3>Events by type</h3>
    ${plainList(counters, ([name, n]) => html`<code>${name}</code> ${formatNumber(n)}`, { className: "counters" })}
    ${groups.length ? html`<h3>Groups</h3>${plainList(groups, (g) => html`<a href="${link.account(g)}">${g}</a>`)}` : null}`;
}

function describeChange(change) {
  switch (change?.type) {
    case "audience.entered":
      return html`entered <a href="${link.audience(change.audience)}">${change.audience}</a>`;
    case "audience.exited":
      return html`left <a href="${link.audience(change.audience)}">${change.audience}</a>`;
    case "lifecycle.changed":
      return html`lifecycle ${change.from ?? "?"} → <strong>${change.to ?? "?"}</strong>`;
    case "lead_score.crossed":
      return html`lead score crossed <strong>${formatNumber(change.threshold)}</strong>
        (${formatNumber(change.from)} → ${formatNumber(change.to)})`;
    default:
      return html`${change?.type ?? "change"}: ${compact(change)}`;
  }
}

/** `audiences` (name → entry time) and `changes` (newest last), of a person or an account. */
function renderMemberships(audiences, changes) {
  const current = Object.entries(audiences ?? {});
  const history = Array.isArray(changes) ? [...changes].reverse() : [];
  return html`<h3>Member of</h3>
    ${plainList(current, ([name, at]) => html`<a href="${link.audience(name)}">${name}</a> <span class="muted">since</span> ${timeEl(at)}`, {
      empty: "No audience.",
    })}
    <h3>Changes <span class="muted">(newest first)</span></h3>
    ${history.length
      ? html`<ol class="plain changes">${history.map((c) => html`<li>${timeEl(c.at)} — ${describeChange(c)}</li>`)}</ol>`
      : emptyNote("No changes recorded.")}`;
}

function renderPersonAccounts(accounts) {
  if (!Array.isArray(accounts) || !accounts.length) return emptyNote("No accounts.");
  return dataTable(["Account", "Link", "Domain", "Members", "Trend"], accounts, ({ link: how, account = {} }) => [
    html`<a href="${link.account(account.id)}">${account.name ?? account.id}</a>
      ${account.name ? html`<span class="muted">(${account.id})</span>` : null}`,
    linkBadge(how),
    account.domain ? html`<a href="${link.accountDomain(account.domain)}">${account.domain}</a>` : "—",
    formatNumber(account.memberCount ?? account.members?.length ?? 0),
    account.engagement?.trend ?? "—",
  ]);
}

function webhookNames() {
  const attribute = document.body?.dataset.webhooks ?? "crm";
  return attribute.split(",").map((s) => s.trim()).filter(Boolean);
}

/** Each webhook's recent deliveries concerning this person (or a profile merged into it). */
async function loadDeliveries(profile) {
  const ids = new Set([profile.profileId, ...(Array.isArray(profile.mergedProfiles) ? profile.mergedProfiles : [])]);
  return Promise.all(
    webhookNames().map(async (name) => {
      try {
        const answer = await api(`/v1/webhooks/${enc(name)}/deliveries?limit=${DELIVERIES_LIMIT}`);
        const all = Array.isArray(answer.deliveries) ? answer.deliveries : [];
        return { name, deliveries: all.filter((d) => ids.has(d.profileId)) };
      } catch (error) {
        if (error.status === 404) return { name, deliveries: [], unknown: true };
        throw error;
      }
    }),
  );
}

function statusVariant(status) {
  return { delivered: "ok", pending: "info", dead: "bad" }[status] ?? "";
}

function renderDeliveries(results) {
  const rows = results.flatMap((r) => r.deliveries.map((d) => ({ ...d, webhook: r.name })));
  rows.sort((a, b) => String(b.createdAt ?? "").localeCompare(String(a.createdAt ?? "")));
  const checked = results.map((r) => (r.unknown ? `${r.name} (no such webhook)` : r.name)).join(", ");
  const note = html`<p class="muted small">Webhooks checked: ${checked || "none configured on this page"}.</p>`;
  if (!rows.length) return html`${emptyNote("None.")}${note}`;
  return html`${dataTable(["Webhook", "Change", "Status", "Attempts", "Created", "Done / next try", "Last answer"], rows, (d) => [
    d.webhook,
    d.type ?? "—",
    html`<span class="badge-inline ${statusVariant(d.status)}">${d.status ?? "?"}</span>`,
    formatNumber(d.attempts ?? 0),
    timeEl(d.createdAt),
    d.doneAt ? timeEl(d.doneAt) : d.nextAttemptAt ? html`next ${timeEl(d.nextAttemptAt)}` : "—",
    d.lastError || (d.lastStatus !== null && d.lastStatus !== undefined ? `HTTP ${d.lastStatus}` : "—"),
  ])}${note}`;
}

// The timeline.

function eventTitle(event) {
  switch (event.type) {
    case "track":
      return event.event ?? "(unnamed)";
    case "page":
    case "screen":
      return event.name ?? event.context?.page?.title ?? event.properties?.title ?? `(${event.type})`;
    case "identify":
      return event.userId ? `as ${event.userId}` : "traits";
    case "group":
      return event.groupId ? `group ${event.groupId}` : "group";
    case "alias":
      return `${event.previousId ?? "?"} → ${event.userId ?? "?"}`;
    default:
      return event.event ?? event.name ?? "";
  }
}

function pagePath(event) {
  const page = event.context?.page ?? {};
  if (page.path) return page.path;
  const url = page.url ?? event.properties?.url;
  if (!url) return null;
  try {
    return new URL(url).pathname;
  } catch {
    return url;
  }
}

const PAGE_FIELDS = new Set(["path", "url", "title", "referrer", "search", "name"]);

/** The first few properties (or traits) of an event, one line. */
function keyProperties(event) {
  const source = ["identify", "group"].includes(event.type) ? event.traits : event.properties;
  const entries = Object.entries(source ?? {}).filter(
    ([key, value]) => value !== null && value !== undefined && !(["page", "screen"].includes(event.type) && PAGE_FIELDS.has(key)),
  );
  const shown = entries.slice(0, 5).map(([key, value]) => `${key}: ${truncate(compact(value, 1), 60)}`);
  if (entries.length > 5) shown.push(`+${entries.length - 5} more`);
  return shown.join("; ");
}

function enrichmentLine(event) {
  const geo = event.enrichment?.geo ?? {};
  const device = event.enrichment?.device ?? {};
  const parts = [
    [geo.city, geo.country].filter(Boolean).join(", "),
    [device.deviceType && device.deviceType !== "unknown" ? device.deviceType : null, device.browser, device.os].filter(Boolean).join(" "),
  ].filter(Boolean);
  return parts.join(" · ");
}

const TIMELINE_COLUMNS = ["Time", "Type", "Event", "Page", "Details"];

function timelineRows(events) {
  return tableRows(TIMELINE_COLUMNS, events, (event) => {
    const path = pagePath(event);
    const where = enrichmentLine(event);
    const properties = keyProperties(event);
    return [
      timeEl(event.timestamp ?? event.receivedAt),
      html`<span class="badge-inline type-${slug(event.type ?? "")}">${event.type ?? "?"}</span>`,
      eventTitle(event),
      path ? html`<code>${truncate(path, 80)}</code>` : html`<span class="muted">—</span>`,
      html`${properties || html`<span class="muted">—</span>`}${where && html`<span class="reason">${where}</span>`}`,
    ];
  });
}

/** A table filled page by page: `load(cursor)` → {rows, count, nextCursor}. */
function mountPaged(container, { columns, load, empty, noun }) {
  if (!container) return;
  container.innerHTML = String(html`<div class="table-wrap">
      <table class="stack"><thead>${tableHead(columns)}</thead><tbody></tbody></table>
    </div>
    <div class="pager"></div>`);
  const wrap = container.querySelector(".table-wrap");
  const tbody = container.querySelector("tbody");
  const pager = container.querySelector(".pager");
  let shown = 0;
  const next = async (cursor, focusAfter) => {
    pager.innerHTML = String(loadingNote());
    try {
      const page = await load(cursor);
      if (!container.isConnected) return;
      tbody.insertAdjacentHTML("beforeend", String(html`${page.rows}`));
      shown += page.count;
      wrap.hidden = shown === 0;
      if (page.nextCursor) {
        pager.innerHTML = String(html`<p class="muted small" role="status">${shown} ${noun} shown.</p>
          <button type="button" class="more">Load more</button>`);
        const button = pager.querySelector("button");
        button.addEventListener("click", () => next(page.nextCursor, true));
        if (focusAfter) button.focus();
      } else {
        pager.innerHTML = String(shown ? html`<p class="muted small" role="status" tabindex="-1">All ${shown} ${noun} shown.</p>` : empty);
        if (focusAfter) pager.querySelector("p")?.focus();
      }
    } catch (error) {
      if (!container.isConnected) return;
      if (error.status === 401) askForKey();
      pager.innerHTML = String(html`${renderInlineError(error)} <button type="button" class="more">Try again</button>`);
      pager.querySelector("button").addEventListener("click", () => next(cursor, true));
    }
  };
  next(null, false);
}

function mountTimeline(container, base) {
  mountPaged(container, {
    columns: TIMELINE_COLUMNS,
    noun: "events",
    empty: emptyNote("No events."),
    load: async (cursor) => {
      const query = `?limit=${EVENTS_PAGE}${cursor ? `&cursor=${enc(cursor)}` : ""}`;
      const answer = await api(`${base}/events${query}`);
      const events = Array.isArray(answer.events) ? answer.events : [];
      return { rows: timelineRows(events), count: events.length, nextCursor: answer.nextCursor ?? null };
    },
  });
}

function renderPerson(profile) {
  const interests = (Array.isArray(profile.tags) ? profile.tags : []).find((t) => t.name === "interests")?.value;
  return html`<div class="layout">
    ${renderPersonHeader(profile)}
    ${section("Engagement and lead score, last 30 days", renderSeries(profile.series))}
    ${section("Interests", interestChart(interests, "Interests, strongest first"))}
    ${section("Audiences", renderMemberships(profile.audiences, profile.changes))}
    ${section("Tags", renderTags(profile.tags), { wide: true })}
    ${section("Accounts", loadingNote(), { slot: "accounts" })}
    ${section("Merge history", renderIdentityHistory(profile))}
    ${section("Traits, location and devices", renderDetails(profile))}
    ${section("Webhook deliveries", loadingNote(), { slot: "deliveries", wide: true })}
    ${section("Timeline", loadingNote(), { slot: "timeline", wide: true })}
  </div>`;
}

async function showPerson(route, page) {
  page.loading(`the person ${route.id}`);
  const profile = await api(profilePath(route.idType, route.id));
  if (!page.render(renderPerson(profile), personTitle(profile))) return;
  // Later calls name the profile by its id: the same profile whatever id found it.
  const base = profilePath("profile_id", profile.profileId);
  page.fillLater("accounts", api(`${base}/accounts`).then((a) => renderPersonAccounts(a.accounts)), {
    notFound: emptyNote("No accounts."),
  });
  page.fillLater("deliveries", loadDeliveries(profile).then(renderDeliveries));
  mountTimeline(page.slot("timeline"), base);
}

// ---------------------------------------------------------------------------------------
// Account.

function renderAccountHeader(account) {
  const trend = account.engagement?.trend;
  return html`<header class="card wide page-head">
    <p class="eyebrow">Account</p>
    <h1 tabindex="-1">${account.name ?? account.id}</h1>
    <p class="profile-id">Account id <code>${account.id}</code></p>
    <ul class="badges" aria-label="Summary">
      ${badge("Members", account.memberCount ?? account.members?.length ?? 0)}
      ${badge("Trend", trend, `trend-${slug(trend ?? "")}`)}
      ${badge("Industry", account.industry)}
    </ul>
    ${factList([
      ["Domain", account.domain],
      ["Employees", account.employees !== null && account.employees !== undefined ? compact(account.employees) : null],
      ["Last activity", account.lastActivity ? timeEl(account.lastActivity, { relative: true }) : null],
    ])}
  </header>`;
}

const TREND_TEXT = { rising: "↑ rising", falling: "↓ falling", steady: "→ steady", none: "no activity" };

function renderEngagement(engagement) {
  if (!engagement) return emptyNote("No engagement data.");
  return html`${factList([
    ["Events, 30 days", formatNumber(engagement.events30d ?? 0)],
    ["Trend", TREND_TEXT[engagement.trend] ?? engagement.trend],
    ["Engaged members, 14 days", formatNumber(engagement.engagedMembers14d ?? 0)],
  ])}
  ${barChart(
    [
      { label: "Last 7 days", value: engagement.last7d ?? 0 },
      { label: "The 7 days before", value: engagement.previous7d ?? 0 },
    ],
    { label: "Events: the last 7 days and the 7 days before" },
  )}`;
}

function renderMembers(members) {
  if (!Array.isArray(members) || !members.length) return emptyNote("No members.");
  return dataTable(["Person", "Email", "Title", "Role", "Link", "Last seen"], members, (m) => [
    html`<a href="${link.profile("profile_id", m.profileId)}">${m.name || m.email || m.profileId}</a>`,
    m.email ?? "—",
    m.title ?? "—",
    m.role ?? "—",
    linkBadge(m.link),
    timeEl(m.lastSeen),
  ]);
}

function renderAccount(account) {
  const traits = Object.entries(account.traits ?? {});
  return html`<div class="layout">
    ${renderAccountHeader(account)}
    ${section("Engagement", renderEngagement(account.engagement))}
    ${section("Top interests of the members", interestChart(account.topInterests, "Members' interests, strongest first"))}
    ${section("Audiences", renderMemberships(account.audiences, account.changes))}
    ${section("Members", renderMembers(account.members), { wide: true })}
    ${section("Traits", factList(traits.map(([k, v]) => [k, valueEl(v, 120)])))}
  </div>`;
}

async function showAccount(route, page) {
  page.loading(`the account ${route.key}`);
  const path = route.by === "domain" ? `/v1/accounts/domain/${enc(route.key)}` : `/v1/accounts/${enc(route.key)}`;
  const account = await api(path);
  page.render(renderAccount(account), account.name ?? account.id);
}

// ---------------------------------------------------------------------------------------
// Audiences.

const kindOf = (audience) => (audience?.of === "accounts" ? "accounts" : "people");

function renderAudienceList(audiences) {
  const list = Array.isArray(audiences) ? audiences : [];
  return html`<div class="layout">
    <header class="card wide page-head"><p class="eyebrow">Workspace</p><h1 tabindex="-1">Audiences</h1></header>
    ${section("All audiences", list.length
      ? dataTable(["Audience", "Of", "Rule", "Size"], list, (a) => [
          html`<a href="${link.audience(a.name)}">${a.name}</a>`,
          kindOf(a),
          html`<code class="rule">${a.rule ?? ""}</code>`,
          formatNumber(a.size ?? 0),
        ])
      : emptyNote("No audiences are configured for this workspace."), { wide: true })}
  </div>`;
}

async function showAudiences(route, page) {
  page.loading("the audiences");
  const answer = await api("/v1/audiences");
  page.render(renderAudienceList(answer.audiences), "Audiences");
}

function renderAudience(name, audience) {
  return html`<div class="layout">
    <header class="card wide page-head">
      <p class="eyebrow"><a href="${link.audiences()}">Audiences</a></p>
      <h1 tabindex="-1">${name}</h1>
      ${audience
        ? factList([
            ["Of", kindOf(audience)],
            ["Size", formatNumber(audience.size ?? 0)],
            ["Rule", html`<code class="rule">${audience.rule ?? ""}</code>`],
          ])
        : null}
    </header>
    ${section("Members", loadingNote(), { slot: "members", wide: true })}
  </div>`;
}

const MEMBER_COLUMNS = ["Member", "Kind", "Entered"];

async function showAudience(route, page) {
  page.loading(`the audience ${route.name}`);
  const base = `/v1/audiences/${enc(route.name)}/members`;
  // The first page decides "not found"; the list (for the rule) is a nice-to-have.
  const [first, list] = await Promise.all([
    api(`${base}?limit=${MEMBERS_PAGE}`),
    api("/v1/audiences").catch(() => null),
  ]);
  const audience = list?.audiences?.find?.((a) => a.name === route.name) ?? { size: first.size };
  if (!page.render(renderAudience(route.name, audience), `Audience ${route.name}`)) return;
  let pending = first;
  mountPaged(page.slot("members"), {
    columns: MEMBER_COLUMNS,
    noun: "members",
    empty: emptyNote("No members."),
    load: async (cursor) => {
      const answer = pending ?? (await api(`${base}?limit=${MEMBERS_PAGE}${cursor ? `&cursor=${enc(cursor)}` : ""}`));
      pending = null;
      const members = Array.isArray(answer.members) ? answer.members : [];
      const rows = tableRows(MEMBER_COLUMNS, members, (m) => {
        const target = memberLink(m.id);
        return [html`<a href="${target.href}">${target.label}</a>`, target.kind, timeEl(m.enteredAt)];
      });
      return { rows, count: members.length, nextCursor: answer.nextCursor ?? null };
    },
  });
}

// ---------------------------------------------------------------------------------------
// Search.

function renderSearch() {
  return html`<div class="layout">
    <header class="card wide page-head"><h1 tabindex="-1">Find a person or an account</h1>
      <p class="muted">Look a person up by any of their identifiers, or an account by its id or domain.</p></header>
    <form class="card search" id="person-search">
      <h2>Person</h2>
      <label for="person-type">Identifier type</label>
      <select id="person-type" name="type">
        ${ID_TYPES.map(([value, label]) => html`<option value="${value}">${label}</option>`)}
        <option value="custom">Another id type…</option>
      </select>
      <div class="custom-type" hidden>
        <label for="person-custom-type">Id type (as configured, e.g. crm_id)</label>
        <input id="person-custom-type" name="customType" autocomplete="off" spellcheck="false">
      </div>
      <label for="person-id">Identifier</label>
      <input id="person-id" name="id" required autocomplete="off" spellcheck="false" placeholder="ann@acme.com">
      <button type="submit">Show person</button>
    </form>
    <form class="card search" id="account-search">
      <h2>Account</h2>
      <label for="account-by">Find by</label>
      <select id="account-by" name="by">
        <option value="domain">Domain</option>
        <option value="id">Account id</option>
      </select>
      <label for="account-key">Domain or id</label>
      <input id="account-key" name="key" required autocomplete="off" spellcheck="false" placeholder="acme.com">
      <button type="submit">Show account</button>
    </form>
    ${section("Audiences", html`<p><a href="${link.audiences()}">See every audience</a>, its rule, size and members.</p>`)}
  </div>`;
}

function wireSearch(main) {
  const person = main.querySelector("#person-search");
  const type = person.querySelector("#person-type");
  const custom = person.querySelector(".custom-type");
  type.addEventListener("change", () => {
    custom.hidden = type.value !== "custom";
    custom.querySelector("input").required = type.value === "custom";
  });
  person.addEventListener("submit", (event) => {
    event.preventDefault();
    const idType = type.value === "custom" ? person.querySelector("#person-custom-type").value.trim() : type.value;
    const id = person.querySelector("#person-id").value.trim();
    if (idType && id) location.hash = link.profile(idType, id);
  });
  const account = main.querySelector("#account-search");
  account.addEventListener("submit", (event) => {
    event.preventDefault();
    const key = account.querySelector("#account-key").value.trim();
    if (!key) return;
    location.hash = account.querySelector("#account-by").value === "domain" ? link.accountDomain(key.toLowerCase()) : link.account(key);
  });
}

async function showSearch(route, page) {
  if (page.render(renderSearch(), "Search", { focus: false })) wireSearch(page.main);
}

async function showUnknown(route, page) {
  const content = html`<div class="layout"><section class="card wide"><h1 tabindex="-1">No such page</h1>
    <p>The viewer has no page at <code>${route.hash}</code>.</p>
    <p><a href="${link.search()}">Back to the search</a></p></section></div>`;
  page.render(content, "No such page");
}

// ---------------------------------------------------------------------------------------
// Errors.

function errorText(error) {
  if (!(error instanceof ApiError)) return `The viewer failed to show this page: ${error?.message ?? error}`;
  if (error.status === 0) return `Cannot reach the collector: ${error.message}. Is the demo server running?`;
  if (error.status === 401) return `The collector refused the admin key (${error.message}). Enter the workspace's admin key above.`;
  if (error.status === 403) return `The key may not do this (${error.message}).`;
  if (error.code === "no_api") return `The collector's API is not there: ${error.message}.`;
  if (error.status === 404) return `Not found (${error.message}).`;
  if (error.status === 502 || error.status === 504) {
    return `The collector is not answering the demo server (${error.status}: ${error.message}).`;
  }
  if (error.status >= 500) return `The collector failed (${error.status} ${error.code}: ${error.message}). Try again.`;
  return `The collector refused the request (${error.status} ${error.code}: ${error.message}).`;
}

function renderInlineError(error) {
  return html`<p class="error" role="alert">${errorText(error)}</p>`;
}

const ERROR_TITLES = {
  0: "Collector unreachable",
  400: "Request refused",
  401: "Admin key needed",
  404: "Not found",
  502: "Collector unreachable",
  504: "Collector unreachable",
};

function describeTarget(route) {
  switch (route.view) {
    case "profile":
      return `No person has the ${route.idType} “${route.id}”.`;
    case "account":
      return route.by === "domain" ? `No account has the domain “${route.key}”.` : `No account has the id “${route.key}”.`;
    case "audience":
      return `There is no audience named “${route.name}”.`;
    default:
      return "Nothing is there.";
  }
}

function renderError(error, route) {
  const status = error instanceof ApiError ? error.status : -1;
  const noApi = error?.code === "no_api";
  const title = noApi ? "No API here" : ERROR_TITLES[status] ?? (status === -1 ? "Something went wrong" : `Error ${status}`);
  const detail = status === 404 && !noApi ? describeTarget(route) : null;
  const retry = status !== 404 && status !== 401
    ? html` · <button type="button" class="link-button" data-action="retry">Try again</button>`
    : null;
  return html`<div class="layout"><section class="card wide error-page">
    <h1 tabindex="-1">${title}</h1>
    ${detail && html`<p>${detail}</p>`}
    ${renderInlineError(error)}
    <p><a href="${link.search()}">Back to the search</a>${retry}</p>
  </section></div>`;
}

function askForKey() {
  const input = document.getElementById("admin-key");
  const status = document.getElementById("key-status");
  if (!input) return;
  input.setAttribute("aria-invalid", "true");
  if (status) status.textContent = "Key refused: enter the admin key.";
  input.focus();
  input.select?.();
}

// ---------------------------------------------------------------------------------------
// Routing and the page.

let routeToken = 0;

/** What a view may do to the page while it is still the current one. */
function makePage(main, token) {
  const page = {
    main,
    current: () => token === routeToken,
    loading(what) {
      if (!page.current()) return;
      main.setAttribute("aria-busy", "true");
      main.innerHTML = String(html`<div class="layout"><p class="card wide loading" role="status">Loading ${what}…</p></div>`);
    },
    /** Shows `content`; false when the reader has moved on meanwhile. */
    render(content, title, { focus = true } = {}) {
      if (!page.current()) return false;
      main.innerHTML = String(content);
      main.removeAttribute("aria-busy");
      document.title = `${title} — Portrait viewer`;
      if (focus) main.querySelector("h1")?.focus({ preventScroll: false });
      return true;
    },
    slot: (name) => (page.current() ? main.querySelector(`[data-slot="${name}"]`) : null),
    /** Fills a slot when `promise` settles: its markup, or the error. */
    fillLater(name, promise, { notFound = null } = {}) {
      promise.then(
        (content) => {
          const slot = page.slot(name);
          if (slot) slot.innerHTML = String(content);
        },
        (error) => {
          if (error?.status === 401 && page.current()) askForKey();
          const slot = page.slot(name);
          if (slot) slot.innerHTML = String(error?.status === 404 && notFound ? notFound : renderInlineError(error));
        },
      );
    },
  };
  return page;
}

const VIEWS = {
  search: showSearch,
  profile: showPerson,
  account: showAccount,
  audiences: showAudiences,
  audience: showAudience,
  unknown: showUnknown,
};

function markNavigation(route) {
  for (const a of document.querySelectorAll("[data-nav]")) {
    const here = a.dataset.nav === route.view || (a.dataset.nav === "audiences" && route.view === "audience");
    if (here) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
}

async function showRoute() {
  const token = ++routeToken;
  const main = document.getElementById("main");
  const page = makePage(main, token);
  const route = parseRoute(location.hash);
  markNavigation(route);
  try {
    await VIEWS[route.view](route, page);
  } catch (error) {
    if (!(error instanceof ApiError)) console.error(error);
    if (page.render(renderError(error, route), ERROR_TITLES[error?.status] ?? "Error")) {
      main.querySelector('[data-action="retry"]')?.addEventListener("click", () => showRoute());
    }
    if (error?.status === 401 && page.current()) askForKey();
  }
}

function wireKeyForm() {
  const form = document.getElementById("key-form");
  const input = document.getElementById("admin-key");
  const status = document.getElementById("key-status");
  if (!form || !input) return;
  try {
    input.value = storage()?.getItem(KEY_STORAGE) || input.value || DEFAULT_KEY;
  } catch {
    input.value ||= DEFAULT_KEY;
  }
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const key = input.value.trim();
    if (!key) return;
    saveAdminKey(key);
    input.removeAttribute("aria-invalid");
    if (status) status.textContent = "Key saved for this tab.";
    showRoute();
  });
}

/** Nothing escapes to the console unreported: failures show on the page. */
function reportUnexpected(error) {
  const main = document.getElementById("main");
  if (!main) return;
  const note = document.createElement("div");
  note.className = "card wide";
  note.innerHTML = String(renderInlineError(error instanceof Error ? error : new Error(String(error))));
  main.prepend(note);
}

function start() {
  wireKeyForm();
  window.addEventListener("hashchange", showRoute);
  window.addEventListener("unhandledrejection", (event) => {
    event.preventDefault();
    reportUnexpected(event.reason);
  });
  window.addEventListener("error", (event) => {
    event.preventDefault();
    reportUnexpected(event.error ?? event.message);
  });
  showRoute();
}

if (typeof document !== "undefined" && document.getElementById("main")) start();
