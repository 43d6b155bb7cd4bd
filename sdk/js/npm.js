// The npm package's entry, `@portrait/sdk`. The wasm module and the topic model are inlined
// (a bundler needs no configuration to ship them); the wasm2js fallback is a separate module, fetched only under a
// CSP that forbids compiling WebAssembly.
import { initSync, Sdk, __wbg_get_imports, __wbg_finalize_init } from '../../target/sdk/bindgen/portrait_sdk.js';
import wasm from '../dist/portrait.wasm';
import topicsModel from '../../core/topics/model.bin';
import { createPortrait } from './api.js';

async function start() {
  try {
    initSync({ module: await WebAssembly.compile(wasm) });
  } catch (error) {
    const { instantiate } = await import('./portrait.wasm2js.mjs');
    __wbg_finalize_init({ exports: instantiate(__wbg_get_imports()) }, undefined);
  }
  return Sdk;
}

const defaultEndpoint = typeof location === 'undefined' ? '' : location.origin;

/** The SDK instance: `portrait.load(writeKey, options)`, then `portrait.track(…)`. */
export const portrait = createPortrait(start, defaultEndpoint, undefined, () => topicsModel);
export const { load, page, track, identify, group, alias, reset, flush, ready, user, consent, on, off, debug, stats, interests, pageTopics } =
  portrait;
export default portrait;
