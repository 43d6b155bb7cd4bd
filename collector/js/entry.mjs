// Entry module of the collector Worker (wrangler `main`, Miniflare `scriptPath`), copied next
// to wasm-bindgen's output by `cargo xtask build-worker`.
//
// `index.js` is the wasm-bindgen glue of the Rust crate; this file adds the Workers entrypoint
// and the Durable Object classes. The classes extend `DurableObject` so that their `call`
// method (how the Worker and the objects talk, see `collector/src/internal.rs`) is reachable
// over RPC; `fetch` answers 404. `call` answers at once when the Rust side finished without
// waiting (most calls), else with a Promise.
//
// A Rust panic (panic = "abort") traps the wasm instance; the next call then resets the
// module (`__wbg_reset_state`) and rebuilds the objects on the fresh instance, so one bad
// request cannot poison an isolate. The requests the trapped instance was serving have their
// futures in it, never to be woken: each is answered with the fresh instance's 503 (senders
// retry), from its own context, when what it awaited settles there (see `stranded`). Without
// this, workerd cancelled the request that trapped as hung: a 500
// (`tests/collector/storage-faults.test.mjs` makes an object trap). A request stranded in
// another context than the first to wake is resolved across contexts, which workerd may
// still cancel as hung.
import { DurableObject, WorkerEntrypoint } from "cloudflare:workers";
import * as wasm from "./index.js";

let generation = 0;
let trapped = false;
/** For each request in flight: marks it stranded (then answered 503) if the instance traps. */
const inFlight = new Set();

/** Runs `call`, noting a trap; its answer may be a value (an object's synchronous `call`) or a Promise. */
function guarded(call) {
  if (trapped) {
    wasm.__wbg_reset_state();
    trapped = false;
    generation++;
  }
  try {
    const answer = call();
    return answer instanceof Promise ? answer.catch(noteTrap) : answer;
  } catch (error) {
    noteTrap(error);
  }
}

function noteTrap(error) {
  if (error instanceof WebAssembly.RuntimeError && !trapped) {
    trapped = true;
    for (const strand of inFlight) stranded.add(strand);
    inFlight.clear();
  }
  throw error;
}

/** Requests in flight when the instance trapped, not answered yet. */
const stranded = new Set();

// A stranded request wakes in its own context when what it awaited settles: the old
// instance's callback then throws ("Module terminated"), unhandled. It is answered then, from
// its own context: resolved from the context that trapped, workerd would cancel it as hung.
addEventListener("unhandledrejection", () => {
  for (const strand of stranded) strand();
  stranded.clear();
});

export default class Collector extends WorkerEntrypoint {
  // A stranded request resolves to STRANDED; its 503 is built in the last step, in this
  // request's own context.
  fetch(request) {
    request = decompressed(request);
    return new Promise((resolve, reject) => {
      const strand = () => resolve(STRANDED);
      inFlight.add(strand);
      // `new Promise` turns a synchronous throw of `guarded` into a rejection.
      new Promise((served) => served(guarded(() => wasm.fetch.call(this, request, this.env, this.ctx))))
        .then(resolve, (error) => (error instanceof WebAssembly.RuntimeError ? strand() : reject(error)))
        .finally(() => inFlight.delete(strand));
    }).then((response) => (response === STRANDED ? guarded(() => wasm.unavailable()) : response));
  }
}

/**
 * A body sent compressed (`Content-Encoding: gzip` or `deflate`, as Segment's server libraries
 * may send it), decompressed as the Worker reads it: its size limit holds for what comes out,
 * so a small bomb is refused (413) after 500 KB of output. Another encoding is left for the
 * Worker to refuse (415).
 */
function decompressed(request) {
  const encoding = request.headers.get("content-encoding")?.trim().toLowerCase();
  if (!request.body || (encoding !== "gzip" && encoding !== "deflate")) return request;
  const headers = new Headers(request.headers);
  headers.delete("content-encoding");
  headers.delete("content-length");
  return new Request(request, { headers, body: request.body.pipeThrough(new DecompressionStream(encoding)) });
}

/** What a request in flight when the instance trapped resolves to, until it is answered. */
const STRANDED = Symbol("stranded by a trap");

function durableObject(RustClass) {
  return class extends DurableObject {
    constructor(state, env) {
      super(state, env);
      this.state = state;
      this.generation = -1;
    }
    current() {
      if (this.generation !== generation) {
        this.inner = new RustClass(this.state, this.env);
        this.generation = generation;
      }
      return this.inner;
    }
    fetch() {
      return new Response("Portrait's Durable Objects answer RPC calls only", { status: 404 });
    }
    alarm() {
      return guarded(() => this.current().alarm());
    }
    call(action, body) {
      return guarded(() => this.current().call(action, body));
    }
  };
}

export const ProfileObject = durableObject(wasm.ProfileObject);
export const IdentityIndex = durableObject(wasm.IdentityIndex);
export const SourceStats = durableObject(wasm.SourceStats);
export const AccountObject = durableObject(wasm.AccountObject);
export const AudienceObject = durableObject(wasm.AudienceObject);
export const WebhookObject = durableObject(wasm.WebhookObject);
