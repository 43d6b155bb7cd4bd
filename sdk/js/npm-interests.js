// The npm package's interest module, `interests.js`: imported by the SDK after `ready`, with
// its wasm and the topic model inlined.
import * as glue from '../../target/sdk/bindgen/portrait_sdk_interests.js';
import wasm from '../dist/portrait-interests.wasm';
import topicsModel from '../../core/topics/model.bin';
import { fetchBytes, modelOrNothing } from './api.js';
import { instantiate } from './instantiate.js';
import { watchShowIf } from './show-if.js';

/** The module's `Interests` class with `watchShowIf`, and the topic model's bytes (from
 * `modelUrl` when given); `report` hears why the module's fallback runs (see `instantiate`). */
export async function load(report, modelUrl) {
  const model = modelUrl ? modelOrNothing(fetchBytes(modelUrl)) : topicsModel;
  await instantiate(glue, wasm, () => import('./portrait-interests.wasm2js.mjs').then((m) => m.instantiate), report);
  return [[glue.Interests, watchShowIf], await model];
}
