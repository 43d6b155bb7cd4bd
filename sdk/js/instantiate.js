// Starting a wasm-bindgen module, shared by the script tag's and the npm package's loaders
// of both modules (the SDK's and the interest module's).

/**
 * Instantiates the module behind `glue` (its wasm-bindgen `--target web` output) from
 * `source` (a URL, a `Response` promise or the bytes). Where that fails (the page's CSP
 * forbids compiling WebAssembly, or the browser lacks a wasm feature the module uses),
 * `loadFallback()` resolves to the `instantiate` function of the module's wasm2js
 * translation, which is used instead; if that fails too, the first error stands. A failure
 * of another kind (the module not found, a server's wrong answer) is the site's to fix: the
 * fallback hides it, so it goes to `report`.
 */
export async function instantiate(glue, source, loadFallback, report) {
  try {
    await glue.default({ module_or_path: await source });
  } catch (error) {
    const translated = await loadFallback().catch(() => Promise.reject(error));
    glue.__wbg_finalize_init({ exports: translated(glue.__wbg_get_imports()) }, undefined);
    const expected = typeof WebAssembly !== 'object' || error instanceof WebAssembly.CompileError;
    if (!expected) report(new Error(`a WebAssembly module could not be used (${error?.message}); its slower JavaScript translation runs instead`));
  }
}

/** Adds a classic script to the page; resolves once it ran. */
export function loadScript(src) {
  return new Promise((resolve, reject) => {
    // Through the prototype: a form named `createElement` or `head` replaces the document's.
    const script = Object.getPrototypeOf(document).createElement.call(document, 'script');
    script.src = src;
    script.onload = resolve;
    script.onerror = () => reject(new Error(`${src}: failed to load`));
    Reflect.get(Object.getPrototypeOf(document), 'head', document).appendChild(script);
  });
}
