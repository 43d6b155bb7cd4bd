// The script tag's file, `portrait.js`: loads the wasm module (or, where the page's CSP
// forbids compiling WebAssembly, its wasm2js translation) and installs `window.portrait`,
// replaying the calls the snippet queued before it arrived, in order.
import init, { Sdk, __wbg_get_imports, __wbg_finalize_init } from '../../target/sdk/bindgen/portrait_sdk.js';
import { createPortrait, fetchBytes } from './api.js';

const script = document.currentScript;
const base = new URL('.', script && script.src ? script.src : location.href).href;
const queued = window.portrait;

// Loading twice does no harm: a second copy leaves the first in charge.
if (!(queued && queued.__portrait)) {
  const portrait = createPortrait(() => start(), new URL(base).origin, queued && queued._settings, () =>
    fetchBytes(`${base}portrait-topics.bin`));
  window.portrait = portrait;
  if (Array.isArray(queued)) {
    for (const [name, ...args] of queued) {
      if (name === 'setConsent') portrait.consent.set(...args);
      else if (typeof portrait[name] === 'function') portrait[name](...args);
    }
  }
}

async function start() {
  try {
    // The snippet started fetching the module already; fall back to fetching it here.
    const prefetched = queued && queued._wasm && (await queued._wasm);
    await init({ module_or_path: prefetched && prefetched.ok ? prefetched : `${base}portrait.wasm` });
  } catch (error) {
    // A CSP without 'wasm-unsafe-eval' refuses to compile: use the pure-JS translation.
    await new Promise((resolve, reject) => {
      const fallback = document.createElement('script');
      fallback.src = `${base}portrait.wasm2js.js`;
      fallback.onload = resolve;
      fallback.onerror = () => reject(error);
      document.head.appendChild(fallback);
    });
    __wbg_finalize_init({ exports: window.__portraitWasm2js.instantiate(__wbg_get_imports()) }, undefined);
  }
  return Sdk;
}
