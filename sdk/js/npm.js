// The npm package's entry, `@portrait/sdk`. The wasm module is inlined (a bundler needs no
// configuration to ship it); the interest module (`./interests.js`, with its wasm and the
// topic model inlined) and the wasm2js fallback are separate files that a bundler splits off:
// the first is imported after `ready`, the second only under a CSP that forbids compiling
// WebAssembly or in a browser without the module's wasm features.
import * as glue from '../../target/sdk/bindgen/portrait_sdk.js';
import wasm from '../dist/portrait.wasm';
import { createPortrait, sharedPortrait } from './api.js';
import { instantiate } from './instantiate.js';

async function start(report) {
  await instantiate(glue, wasm, () => import('./portrait.wasm2js.mjs').then((m) => m.instantiate), report);
  return glue.Sdk;
}

const loadInterests = (report, modelUrl) => import('./interests.js').then((m) => m.load(report, modelUrl));

const defaultEndpoint = typeof location === 'undefined' ? '' : location.origin;

/** The SDK instance: `portrait.load(writeKey, options)`, then `portrait.track(…)`. The page's
 * one: another copy of the package, or the script tag's SDK, made before shares its own. */
export const portrait = sharedPortrait(() => createPortrait(start, defaultEndpoint, undefined, loadInterests));
export const {
  load, page, track, identify, group, alias, reset, flush, ready, user, consent, on, off, once, debug, stats, interests,
  pageTopics, setAnonymousId, trackLink, trackForm, trackClick, trackSubmit, screen, addSourceMiddleware,
} = portrait;
export default portrait;
