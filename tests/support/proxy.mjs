// A fault-injecting HTTP proxy on loopback, between the browser and the collector: each
// request is forwarded unless a queued fault says otherwise. Faults answer with CORS
// headers, as the real collector does, so the SDK can read their status.
import { createServer } from "node:http";

export async function startProxy(target) {
  const faults = [];
  const seen = [];
  let down = false;
  let settingsHeld = null;
  let settingsChanged = null;
  let nextAnswered = null; // an `afterNext` fault's release, by the next fault's answer
  const server = createServer(async (req, res) => {
    const chunks = [];
    for await (const chunk of req) chunks.push(chunk);
    const body = Buffer.concat(chunks);
    // `mode`: the request's fetch mode (`sendBeacon`'s is no-cors; the SDK's fetches are cors).
    const record = { method: req.method, url: req.url, bytes: body.length, at: Date.now(), mode: req.headers["sec-fetch-mode"] };
    seen.push(record);
    const cors = {
      "access-control-allow-origin": req.headers.origin ?? "*",
      "access-control-expose-headers": "Retry-After, Date, Age",
    };
    if (down) return req.socket.destroy();
    // A fault is spent only on a beacon that would have been forwarded.
    const fault = req.method === "POST" && req.url.startsWith("/v1/b") ? faults.shift() : undefined;
    if (fault?.reset) return req.socket.destroy();
    if (fault?.status) {
      const release = nextAnswered;
      nextAnswered = null;
      if (fault.afterNext) await new Promise((resolve) => (nextAnswered = resolve));
      if (fault.delay) await new Promise((resolve) => setTimeout(resolve, fault.delay));
      // `date`: the answer's clock, when it is not the machine's; `age`: a cache's (seconds).
      const headers = { ...cors, ...(fault.retryAfter ? { "retry-after": String(fault.retryAfter) } : {}) };
      if (fault.age !== undefined) headers.age = String(fault.age);
      res.writeHead(fault.status, fault.date ? { ...headers, date: fault.date } : headers);
      res.end(JSON.stringify(fault.answer ?? { code: "injected", message: `injected ${fault.status}` }));
      record.answeredAt = Date.now();
      return release?.();
    }
    if (fault?.slow) await new Promise((resolve) => setTimeout(resolve, fault.slow));
    if (settingsHeld && req.url.startsWith("/v1/config")) await settingsHeld;
    const headers = { ...req.headers };
    delete headers.host;
    delete headers["content-length"];
    let answer;
    try {
      answer = await fetch(target + req.url, {
        method: req.method,
        headers,
        body: ["GET", "HEAD"].includes(req.method) ? undefined : body,
      });
    } catch {
      return req.socket.destroy(); // the collector is down: the browser sees a reset
    }
    const out = {};
    answer.headers.forEach((value, key) => {
      if (key !== "content-encoding" && key !== "content-length") out[key] = value;
    });
    let answerBody = Buffer.from(await answer.arrayBuffer());
    if (settingsChanged && req.url.startsWith("/v1/config") && answer.ok) {
      answerBody = Buffer.from(JSON.stringify({ ...parseJson(answerBody), ...settingsChanged }));
    }
    record.status = answer.status;
    record.answer = parseJson(answerBody);
    if (fault?.lost) return req.socket.destroy();
    if (fault?.truncate) return truncate(req.socket, fault.truncate, answer.status, out, answerBody);
    res.writeHead(answer.status, out);
    res.end(answerBody);
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  // A test that fails before its `stop()` must not keep the test file's process alive.
  server.unref();
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    /** Requests seen, faults included. */
    seen,
    /** The next beacon requests get these answers: `{status, retryAfter, delay, answer}`
     * (after `delay` ms, with the JSON `answer`, if given; with `afterNext: true`, only once
     * the next fault's answer is sent, then `delay`; `answeredAt` in `seen`), `{reset: true}`
     * (before forwarding), `{slow: ms}` (forwarded after `ms`), `{lost: true}` (forwarded, then
     * the connection is reset: the collector applied a batch the browser sees fail), or
     * `{truncate: "headers" | "body"}` (forwarded, then the answer is cut in its headers or body). */
    fail: (...next) => faults.push(...next),
    /** The collector's settings answers (`/v1/config/…`) with these fields changed, as a
     * collector of another version might send them. */
    changeSettings: (fields) => {
      settingsChanged = fields;
    },
    /** Holds the answers to settings requests (`/v1/config/…`) until the returned function
     * is called. */
    holdSettings: () => {
      let release;
      settingsHeld = new Promise((resolve) => (release = resolve));
      return () => {
        settingsHeld = null;
        release();
      };
    },
    /** While down, every connection is reset. */
    setDown: (value) => {
      down = value;
    },
    /** Forwards to another collector from now on (one restarted elsewhere). */
    retarget: (url) => {
      target = url;
    },
    beacons: () => seen.filter((r) => r.url.startsWith("/v1/b")).length,
    stop: () => new Promise((resolve) => server.close(resolve)),
  };
}

/** Writes the first part of a forwarded answer straight to the socket, then cuts the
 * connection: the collector has applied the batch, the browser sees a broken answer. */
function truncate(socket, where, status, headers, body) {
  const head =
    `HTTP/1.1 ${status} OK\r\n` +
    Object.entries({ ...headers, "content-length": body.length })
      .map(([key, value]) => `${key}: ${value}\r\n`)
      .join("") +
    "\r\n";
  const sent = where === "headers" ? head.slice(0, Math.floor(head.length / 2)) : head + body.subarray(0, body.length >> 1);
  socket.end(sent, () => socket.destroy());
}

function parseJson(bytes) {
  try {
    return JSON.parse(bytes.toString());
  } catch {
    return undefined;
  }
}
