// The script tag's file, `portrait.js`: loads the wasm module (or, where the page's CSP
// forbids compiling WebAssembly or the browser lacks a wasm feature the module uses, or for
// any other failure, reported on 'error', its wasm2js translation) and installs `window.portrait`,
// replaying the calls the snippet queued before it arrived, in order. After `ready` it loads
// the interest module (`portrait-interests.js`) and the topic model from the same place.
import * as glue from '../../target/sdk/bindgen/portrait_sdk.js';
import { createPortrait, fetchBytes, modelOrNothing, sharedPortrait } from './api.js';
import { instantiate, loadScript } from './instantiate.js';

// The prototype's getter: an image named `currentScript` replaces the document's.
const script = Reflect.get(Object.getPrototypeOf(document), 'currentScript', document);
const src = script && script.src ? script.src : location.href;
// The files next to this one, with its query (a site's `?v=42`): a new loader must not pair
// with a module an old query left in the cache.
const query = script && script.src ? new URL(src).search : '';
const sibling = (file) => new URL(file, src).href + query;
const queued = window.portrait;

// Loading twice does no harm: a second copy leaves the first in charge (an npm bundle's too).
if (!(queued && queued.__portrait)) {
  const portrait = sharedPortrait(() => createPortrait(start, new URL(src).origin, queued && queued._settings, loadInterests));
  window.portrait = portrait;
  if (Array.isArray(queued)) {
    const replay = ([name, ...args]) => {
      if (name === 'setConsent') portrait.consent.set(...args);
      // The stub's `flush()`: its Promise settles with the SDK's.
      else if (name === 'flush') portrait.flush().then(args[0]);
      else if (typeof portrait[name] === 'function') portrait[name](...args);
    };
    queued.splice(0).forEach(replay);
    // A site may have kept the stub (`window.analytics = window.portrait` in its snippet), or
    // one of its methods (`const {track} = portrait`): the stub becomes the API too, and what
    // its old methods push goes straight to it.
    Object.assign(queued, portrait);
    queued.push = (entry) => (replay(entry), 0);
  }
}

async function start(report) {
  // The snippet started fetching and compiling the module already (a `WebAssembly.Module`,
  // or a `Response` where the browser cannot compile while fetching); fall back to fetching
  // it here.
  const prefetched = queued && queued._wasm && (await queued._wasm);
  const wasm = typeof WebAssembly === 'object';
  const compiled = wasm && prefetched instanceof WebAssembly.Module;
  // A module the browser refused to compile (the page's CSP, a wasm feature it lacks): the
  // fallback at once, not the module fetched and refused again.
  const refused = wasm && prefetched instanceof WebAssembly.CompileError;
  const usable = prefetched && (prefetched.ok || compiled);
  const source = refused ? Promise.reject(prefetched) : usable ? prefetched : sibling('portrait.wasm');
  await instantiate(glue, source, () =>
    loadScript(sibling('portrait.wasm2js.js')).then(() => window.__portraitWasm2js.instantiate), report);
  return glue.Sdk;
}

/** The interest module's class with `watchShowIf`, and the topic model's bytes (by default from next to this file). */
function loadInterests(report, modelUrl = sibling('portrait-topics.bin')) {
  const module = loadScript(sibling('portrait-interests.js')).then(() => window.__portraitInterests(sibling, report));
  return Promise.all([module, modelOrNothing(fetchBytes(modelUrl))]);
}
