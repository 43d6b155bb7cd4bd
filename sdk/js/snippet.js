// The copy-paste snippet (minified into dist/snippet.min.js by `cargo xtask build-sdk`).
// It defines a stub that queues calls, loads portrait.js asynchronously, and lets it replay
// the queue in order. Replace the URL, the write key and the options.
(function (w, d, src, key, options) {
  var p = (w.portrait = w.portrait || []);
  // Already there: this stub (the snippet pasted twice) or the SDK itself.
  if (p.load) return;
  p.__stub = 1; // what a site's code can tell the stub by (the SDK has `__portrait`)
  'load page screen track identify group alias reset ready on off once debug setConsent setAnonymousId trackLink trackForm trackClick trackSubmit addSourceMiddleware'.split(' ').forEach(function (m) {
    p[m] = function () {
      p.push([m].concat([].slice.call(arguments)));
      return p;
    };
  });
  p.consent = { set: function (c) { p.setConsent(c); } };
  // flush() is a Promise even before the SDK is there: it settles as the real one does.
  p.flush = function () {
    return new Promise(function (r) { p.ready(function () { w.portrait.flush().then(r); }); });
  };
  // Start fetching and compiling the wasm module, and fetching the remote settings, now, in
  // parallel with portrait.js. A compile that fails (a strict CSP) leaves it to portrait.js.
  if (w.fetch) {
    var wasm = fetch(src.replace(/\.js(\?|$)/, '.wasm$1'));
    p._wasm = (w.WebAssembly && WebAssembly.compileStreaming ? WebAssembly.compileStreaming(wasm) : wasm)
      .catch(function () {});
    var endpoint = (options && options.endpoint) || new URL(src, location.href).origin;
    if (!options || options.remoteSettings !== false)
      p._settings = fetch(endpoint.replace(/\/$/, '') + '/v1/config/' + encodeURIComponent(key), { credentials: 'omit' })
        .catch(function () {});
  }
  var s = d.createElement('script');
  s.async = true;
  s.src = src;
  d.head.appendChild(s);
  p.load(key, options);
})(window, document, 'https://cdn.example.com/portrait.js', 'WRITE_KEY', {});
