// The copy-paste snippet (minified into dist/snippet.min.js by `cargo xtask build-sdk`).
// It defines a stub that queues calls, loads portrait.js asynchronously, and lets it replay
// the queue in order. Replace the URL, the write key and the options.
(function (w, d, src, key, options) {
  var p = w.portrait;
  // The SDK is there already (a stray script tag ran first): it loads. This stub (the snippet
  // pasted twice): it loads already. Anything else named `portrait` (an element with that
  // id is a global too) is not a queue.
  if (p && p.__portrait) return p.load(key, options);
  if (!(p && p.push)) p = w.portrait = [];
  if (p.__stub) return;
  p.__stub = 1; // what a site's code can tell the stub by (the SDK has `__portrait`)
  // (Arrow functions and rest parameters: bytes. The snippet is ES2015, every browser since
  // 2017; the SDK itself needs ES2020.)
  'load page screen track identify group alias reset ready on off once debug setConsent setAnonymousId trackLink trackForm trackClick trackSubmit addSourceMiddleware pageview register'.split(' ').forEach((m) => {
    p[m] = (...a) => (p.push([m, ...a]), p);
  });
  p.consent = { set: p.setConsent }; // queued as `setConsent` (it reads no `this`)
  // The SDK's script (a dynamic one is async already); `failed` settles if it cannot load
  // (an ad blocker), or ran without installing the SDK (a blocker's empty stand-in, a
  // browser too old for it).
  var s = d.createElement('script');
  var failed = new Promise((r) => (s.onload = s.onerror = () => w.portrait.__portrait || r(false)));
  // flush() is a Promise even before the SDK is there: queued with its resolve, which the
  // SDK's flush() settles (false if the SDK fails to load, or its script does).
  p.flush = () => new Promise((r) => {
    p.push(['flush', r]);
    failed.then(r);
  });
  // Start fetching and compiling the wasm module, and fetching the remote settings, now, in
  // parallel with portrait.js. A compile that fails (a strict CSP) hands its error over.
  if (w.fetch) {
    var wasm = fetch(src.replace(/\.js(\?|$)/, '.wasm$1')), W = w.WebAssembly;
    p._wasm = (W && W.compileStreaming ? W.compileStreaming(wasm) : wasm).catch((e) => e);
    var endpoint = (options && options.endpoint) || new URL(src, location.href).origin;
    if (!options || options.remoteSettings !== false)
      p._settings = fetch(endpoint.replace(/\/$/, '') + '/v1/config/' + encodeURIComponent(key), { credentials: 'omit' })
        .catch(() => {});
  }
  s.src = src;
  d.head.appendChild(s);
  p.load(key, options);
})(window, document, 'https://cdn.example.com/portrait.js', 'WRITE_KEY', {});
