// A fault-injecting HTTP proxy on loopback, between the browser and the collector: each
// request is forwarded unless a queued fault says otherwise. Faults answer with CORS
// headers, as the real collector does, so the SDK can read their status.
import { createServer } from "node:http";

export async function startProxy(target) {
  const faults = [];
  const seen = [];
  let down = false;
  const server = createServer(async (req, res) => {
    const chunks = [];
    for await (const chunk of req) chunks.push(chunk);
    const body = Buffer.concat(chunks);
    seen.push({ method: req.method, url: req.url, bytes: body.length });
    const cors = {
      "access-control-allow-origin": req.headers.origin ?? "*",
      "access-control-expose-headers": "Retry-After",
    };
    const fault = req.url.startsWith("/v1/b") ? faults.shift() : undefined;
    if (down || fault?.reset) return req.socket.destroy();
    if (fault) {
      res.writeHead(fault.status, { ...cors, ...(fault.retryAfter ? { "retry-after": String(fault.retryAfter) } : {}) });
      return res.end(JSON.stringify({ code: "injected", message: `injected ${fault.status}` }));
    }
    const headers = { ...req.headers };
    delete headers.host;
    delete headers["content-length"];
    const answer = await fetch(target + req.url, {
      method: req.method,
      headers,
      body: ["GET", "HEAD"].includes(req.method) ? undefined : body,
    });
    const out = {};
    answer.headers.forEach((value, key) => {
      if (key !== "content-encoding" && key !== "content-length") out[key] = value;
    });
    res.writeHead(answer.status, out);
    res.end(Buffer.from(await answer.arrayBuffer()));
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    /** Requests seen, faults included. */
    seen,
    /** The next beacon requests get these answers: `{status, retryAfter}` or `{reset: true}`. */
    fail: (...next) => faults.push(...next),
    /** While down, every connection is reset. */
    setDown: (value) => {
      down = value;
    },
    beacons: () => seen.filter((r) => r.url.startsWith("/v1/b")).length,
    stop: () => new Promise((resolve) => server.close(resolve)),
  };
}
