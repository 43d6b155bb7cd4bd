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
// request cannot poison an isolate.
import { DurableObject, WorkerEntrypoint } from "cloudflare:workers";
import * as wasm from "./index.js";

let generation = 0;
let trapped = false;

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
  if (error instanceof WebAssembly.RuntimeError) trapped = true;
  throw error;
}

export default class Collector extends WorkerEntrypoint {
  fetch(request) {
    return guarded(() => wasm.fetch.call(this, request, this.env, this.ctx));
  }
}

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
