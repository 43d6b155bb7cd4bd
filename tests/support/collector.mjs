// Test support: a collector on local workerd, and clients that talk to it like the SDK, a
// Segment library, an attacker or an admin would.
import { execFileSync } from "node:child_process";
import { mkdtempSync } from "node:fs";
import http from "node:http";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { startCollector, DEV_ADMIN_KEYS } from "../../collector/js/local.mjs";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const portraitBin = path.join(process.env.CARGO_TARGET_DIR ?? path.join(root, "target"), "debug", "portrait");

process.env.CLOUDFLARE_CF_FETCH_ENABLED ??= "false";

export const WRITE_KEY = "pk_dev_demo";
export const SERVER_KEY = "pk_dev_server";
export const OTHER_KEY = "pk_dev_other";
export const ADMIN_KEY = DEV_ADMIN_KEYS.PORTRAIT_ADMIN_KEY_DEMO;
export const OTHER_ADMIN_KEY = DEV_ADMIN_KEYS.PORTRAIT_ADMIN_KEY_OTHER;
export const ORIGIN = "http://127.0.0.1:8080";
export const CHROME_UA =
  "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0.0.0 Safari/537.36";

/** A fresh state directory for one collector run. */
export function freshState() {
  return mkdtempSync(path.join(tmpdir(), "portrait-collector-"));
}

/** Starts a collector (on `persist`, fresh by default) and returns a client for it.
 * `config`: the TOML configuration, the development one by default. */
export async function launch(persist = freshState(), vars = {}, config = undefined) {
  const collector = await startCollector({ persist, vars, config });
  return Object.assign(new Client(collector.url), { persist, stop: collector.stop });
}

/** Segment JSON → beacon bytes, through the `portrait` CLI (the same core code as the SDK). */
export function encodeBeacon(batch) {
  return execFileSync(portraitBin, ["encode"], { input: JSON.stringify(batch) });
}

export function uuid() {
  return crypto.randomUUID();
}

/** A browser-like event: `{type, anonymousId, messageId, timestamp, context}` plus `fields`. */
export function browserEvent(type, anonymousId, fields = {}) {
  return {
    type,
    anonymousId,
    messageId: uuid(),
    timestamp: new Date().toISOString(),
    context: {
      userAgent: CHROME_UA,
      page: { url: "http://127.0.0.1:8080/pricing", path: "/pricing", title: "Pricing" },
      library: { name: "portrait.js", version: "0.1.0" },
    },
    ...fields,
  };
}

/** Waits until `check()` returns a truthy value (polling), or fails after `ms`: generous, as
 *  what a test waits for may stand behind the SDK's retries, batch timer or a `Retry-After`
 *  (seconds each), and the machine may be slow; a poll waits that long only when it fails. */
export async function eventually(check, { ms = 30_000, every = 100, message = "condition", describe } = {}) {
  const deadline = Date.now() + ms;
  let last;
  for (;;) {
    try {
      last = await check();
      if (last) return last;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline) {
      const seen = describe ? await describe() : last?.message ?? JSON.stringify(last);
      throw new Error(`timed out waiting for ${message}: ${seen}`);
    }
    await new Promise((resolve) => setTimeout(resolve, every));
  }
}

/**
 * A request on a connection of its own, closed after it. The collector refuses a body whose
 * declared length is over its limit without reading it, and the runtime then closes the
 * connection: a pooled connection could be handed to the next request as it closes
 * (`ECONNRESET` there). An error writing the unread body after the answer came is expected.
 */
function requestOnOwnConnection(url, { method, headers, body }) {
  return new Promise((resolve, reject) => {
    let answered = false;
    const length = body === undefined ? {} : { "content-length": String(Buffer.byteLength(body)) };
    const req = http.request(url, { method, headers: { ...headers, ...length }, agent: false }, (res) => {
      answered = true;
      const chunks = [];
      res.on("data", (chunk) => chunks.push(chunk));
      res.on("error", reject);
      res.on("end", () => {
        const responseHeaders = new Headers();
        for (const [name, value] of Object.entries(res.headers)) responseHeaders.set(name, String(value));
        resolve({ status: res.statusCode, headers: responseHeaders, text: Buffer.concat(chunks).toString("utf8") });
      });
    });
    req.on("error", (error) => answered || reject(error));
    req.end(body);
  });
}

export class Client {
  constructor(url) {
    this.url = url;
  }

  /** `ownConnection`: for a request the collector answers without reading its body (see
   * [`requestOnOwnConnection`]). */
  async request(pathname, { method = "GET", headers = {}, body, ownConnection = false } = {}) {
    const url = this.url + pathname;
    const { status, headers: responseHeaders, text } = ownConnection
      ? await requestOnOwnConnection(url, { method, headers, body })
      : await fetch(url, { method, headers, body }).then(async (r) => ({ status: r.status, headers: r.headers, text: await r.text() }));
    let json;
    try {
      json = JSON.parse(text);
    } catch {
      json = undefined;
    }
    return { status, headers: responseHeaders, json, text };
  }

  /** `POST /v1/b` as the SDK sends it. `body` overrides the encoded beacon. */
  beacon(events, { key = WRITE_KEY, origin = ORIGIN, sentAt, body, contentType = "text/plain;charset=UTF-8", ownConnection } = {}) {
    const headers = { "content-type": contentType };
    if (origin) headers.origin = origin;
    const query = key === null ? "" : `?k=${encodeURIComponent(key)}`;
    return this.request(`/v1/b${query}`, {
      method: "POST",
      headers,
      body: body ?? encodeBeacon({ batch: events, ...(sentAt ? { sentAt } : {}) }),
      ownConnection,
    });
  }

  /** A Segment HTTP API call; the key goes as Basic auth unless `auth: false`. */
  segment(endpoint, body, { key = SERVER_KEY, auth = true, origin, contentType = "application/json" } = {}) {
    const headers = { "content-type": contentType };
    if (auth) headers.authorization = "Basic " + Buffer.from(`${key}:`).toString("base64");
    if (origin) headers.origin = origin;
    return this.request(`/v1/${endpoint}`, {
      method: "POST",
      headers,
      body: typeof body === "string" || body instanceof Uint8Array ? body : JSON.stringify(body),
    });
  }

  /** An admin API call under `/v1/profiles/`. */
  admin(pathname, { key = ADMIN_KEY, method = "GET" } = {}) {
    return this.request(`/v1/profiles/${pathname}`, { method, headers: { authorization: `Bearer ${key}` } });
  }

  /** An admin API call under `/v1/accounts/`. */
  account(pathname, { key = ADMIN_KEY } = {}) {
    return this.request(`/v1/accounts/${pathname}`, { headers: { authorization: `Bearer ${key}` } });
  }

  profile(idType, id, options) {
    return this.admin(`${idType}/${encodeURIComponent(id)}`, options);
  }

  /** The `demo-site` source's count of events SDKs' full queues dropped. */
  async sdkDroppedEvents() {
    const { json } = await this.request("/v1/sources/demo-site/stats", { headers: { authorization: `Bearer ${ADMIN_KEY}` } });
    return json.sdkDroppedEvents;
  }
}
