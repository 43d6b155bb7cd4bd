// `portrait-interests.js`, which the script tag's loader (`portrait.js`) adds to the page
// after `ready`: the interest module's glue. `window.__portraitInterests(sibling, report)` starts
// the module from `portrait-interests.wasm` next to it (`sibling(file)` is its URL, with the
// loader's query; or its wasm2js translation under a CSP
// that forbids compiling WebAssembly, or after any other failure, which goes to `report`) and
// resolves to its `Interests` class and `watchShowIf`.
import * as glue from '../../target/sdk/bindgen/portrait_sdk_interests.js';
import { instantiate, loadScript } from './instantiate.js';
import { watchShowIf } from './show-if.js';

window.__portraitInterests = (loader, report) => {
  // An older `portrait.js` passes the directory's URL.
  const sibling = typeof loader === 'string' ? (file) => loader + file : loader;
  return instantiate(glue, sibling('portrait-interests.wasm'), () =>
    loadScript(sibling('portrait-interests.wasm2js.js')).then(() => window.__portrait_interestsWasm2js.instantiate),
  report).then(() => [glue.Interests, watchShowIf]);
};
