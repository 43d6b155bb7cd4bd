// The SDK's reads of the page and the browser, its event listeners, timers and requests: the
// wasm module imports these (`sdk/src/dom.rs`) and gets plain values back, so that it carries
// no binding per DOM interface. What the values mean (which click is a link, which scroll a
// milestone) is decided in Rust, by `portrait_core::client`.

// Every call from the browser into the module (a listener, a timer, a request's answer) runs
// `safely`: a trap in the module (a bug) must never reach the page's code, its router or its
// error monitoring. It goes to the API's `emit` as 'trap', which counts it in `stats().errors`
// and reports it on 'error'.
let reportTrap = () => {};
export function report_traps(emit) {
  reportTrap = (error) => emit('trap', error);
}
function safely(work) {
  try { work(); } catch (error) { reportTrap(error); }
}

/// The page's facts, for its context: url, path, title, referrer, search (the context's
/// `page`), then host, user agent, language, screen width, height and pixel ratio, and the
/// canonical link's URL (resolved by the browser; `undefined` without one).
export function page_facts() {
  const screen = window.screen || {};
  return [
    location.href, location.pathname, documentProperty('title'), documentProperty('referrer'), location.search,
    location.hostname, navigator.userAgent, navigator.language,
    screen.width, screen.height, window.devicePixelRatio,
    canonicalLink(),
  ];
}

/// `name` from `object`'s prototypes: a method called on it, or a getter read from it
/// (`undefined` if none has it). What a page's named element puts on the object itself (a
/// form's field named `matches` or `id`, `<img name="title">` on the document, an element
/// with id `addEventListener` on the window's named properties) is passed over, and so are
/// the page's globals (a script's `var Document`).
function own(object, name, ...args) {
  const property = inherited(object, name);
  return property?.get ? property.get.call(object) : property?.value?.apply(object, args);
}
/// The descriptor of `name` on `object`'s prototypes: an accessor or a method.
function inherited(object, name) {
  for (let proto = Object.getPrototypeOf(object); proto; proto = Object.getPrototypeOf(proto)) {
    const property = Object.getOwnPropertyDescriptor(proto, name);
    if (property && (property.get || property.set || typeof property.value === 'function')) return property;
  }
  return undefined;
}

/// The canonical link's URL, read with the prototype's `querySelector`: an element named
/// `querySelector` replaces the document's (and a throw here would leave the module's state
/// borrowed).
function canonicalLink() {
  try {
    return own(document, 'querySelector', 'link[rel="canonical"]')?.href;
  } catch {
    return undefined;
  }
}

export function hostname() {
  return location.hostname;
}

export function page_hidden() {
  try {
    return documentProperty('hidden') === true;
  } catch {
    return false;
  }
}

/// A property of the document. A form, image, iframe or embedded object named like one
/// (`<img name="title">`, `<iframe name="cookie">`) replaces it on the document, as an object
/// of its own: the prototype's is read then. (What the page defined itself, a consent tool's
/// `cookie` accessor or a test's `hidden: true`, is kept.)
function documentProperty(name) {
  return namedElement(name) ? own(document, name) : document[name];
}
const namedElement = (name) => {
  const value = Object.getOwnPropertyDescriptor(document, name)?.value;
  return typeof value === 'object' && value !== null;
};

// What the page may have replaced (a `document.cookie` getter) answers text or nothing:
// anything else would throw in the glue, with the module's state borrowed.
export function cookie_text() {
  try {
    const text = documentProperty('cookie');
    return typeof text === 'string' ? text : '';
  } catch {
    return '';
  }
}
export function cookie_write(text) {
  try {
    if (namedElement('cookie')) inherited(document, 'cookie').set.call(document, text);
    else document.cookie = text;
    return true;
  } catch {
    return false;
  }
}

/// Do-Not-Track and Global Privacy Control, as the browser reports them.
export function privacy_signals() {
  return [navigator.doNotTrack === '1', navigator.globalPrivacyControl === true];
}

/// Where the page is scrolled to: the top of the viewport, its height and the document's.
export function scroll_position() {
  const root = documentProperty('documentElement');
  return [window.scrollY, window.innerHeight, root ? root.scrollHeight : 0];
}

export function random_bytes(bytes) {
  try {
    crypto.getRandomValues(bytes);
  } catch {
    // No Web Crypto (very old browsers): Math.random is weaker but still unique enough.
    for (let i = 0; i < bytes.length; i++) bytes[i] = Math.random() * 256;
  }
}

// The two below are called while the module works (its state borrowed): a throw from the
// page's own `console` or timer wrapper must not unwind through it, which would leave the
// SDK busy for good.
export function console_log(method, message, detail) {
  try { console[method](`portrait: ${message}`, detail); } catch {}
}

/// Calls `callback` after `ms`; answers whether the timer is set (`setTimeout` may throw:
/// the first failure is reported, not each of the retries every call makes).
let timerFailed = false;
export function after(ms, callback) {
  try {
    setTimeout(() => safely(callback), ms);
    return true;
  } catch (error) {
    if (!timerFailed) reportTrap(error);
    timerFailed = true;
    return false;
  }
}

/// Whether this browser's `fetch` keeps a request alive past the page (Firefox only since
/// 133): where it does not, a hidden page's batches go by `sendBeacon` too.
const KEEPALIVE = typeof Request === 'function' && 'keepalive' in Request.prototype;

/// A `Retry-After` as seconds from now: RFC 9110 allows delay-seconds or an HTTP-date (a CDN's
/// or a proxy's), read by the browser's `Date.parse`; anything else is passed on as it is, for
/// `Outcome::of` to ignore. A date is counted from the answer's own `Date` where it can be
/// read (the proxy that wrote the date exposes it too), plus its `Age` (an answer a cache
/// kept was dated when it was made): the device's clock may be off by hours, which would
/// retry at once or hold the events for a day.
function retryAfterSeconds(value, date, age) {
  const seconds = /^\s*\d+\s*$/;
  if (value === null || seconds.test(value)) return value ?? undefined;
  const at = Date.parse(value);
  const made = Date.parse(date ?? '');
  const now = Number.isNaN(made) ? Date.now() : made + (seconds.test(age ?? '') ? Number(age) * 1000 : 0);
  return Number.isNaN(at) ? value : String(Math.max(0, Math.ceil((at - now) / 1000)));
}

/// POSTs a beacon (`sdk/src/transport.rs`); `done(status, retryAfter, counted)` once the
/// answer or the failure is in (status 0), with what the answer's body counted: the events a
/// 200 rejected, the queue's dropped count a 429 or 503 took (`Outcome::of` reads it by the status).
export function post(url, body, keepalive, done) {
  const answer = (status, retryAfter, json) =>
    safely(() => done(status, retryAfter, status === 200 ? (json?.rejected || []).length : json?.dropped_counted || 0));
  const bytes = body.slice(); // a view of the module's memory: copied now
  // Just after the module's work, not inside it: a page's own `fetch` wrapper may call the
  // SDK (`portrait.user()` for a header), which is busy until then.
  // A page that may be going (`keepalive`) hands the bytes to `sendBeacon` too: at once where
  // the request cannot outlive the page, else when the browser refuses the request (its
  // 64 KiB keepalive quota, or no `fetch`). The collector drops whichever copy comes second
  // (by messageId); the request's answer, if the page lives on, settles the batch as usual.
  const failed = () => {
    if (keepalive && KEEPALIVE) beacon(url, bytes);
    answer(0);
  };
  // (A promise's callback, not `queueMicrotask`, which a page may have replaced; at once if
  // even that throws.)
  later(() => {
    try {
      if (keepalive && !KEEPALIVE) beacon(url, bytes);
      // A request that hangs is given up and sent again, not left in flight: after a minute,
      // and a second more for each 4 KB it uploads (a slow uplink). Not a keepalive one that
      // outlives the page.
      const timeout = 60_000 + bytes.length / 4;
      const timed = !(keepalive && KEEPALIVE) && typeof AbortSignal === 'function' && AbortSignal.timeout;
      const signal = timed ? AbortSignal.timeout(timeout) : undefined;
      fetch(url, { method: 'POST', body: bytes, headers: { 'Content-Type': 'text/plain' }, credentials: 'omit', keepalive, signal })
        .then((response) => {
          // The answers whose body counts something (`Outcome::of`).
          const read = [200, 429, 503].includes(response.status);
          return (read ? response.json().catch(() => null) : Promise.resolve(null))
            .then((json) => answer(response.status, retryAfterSeconds(...['Retry-After', 'Date', 'Age'].map((name) => response.headers.get(name))), json));
        }, failed)
        .catch(() => answer(0)); // never a batch in flight for good
    } catch {
      failed();
    }
  });
}

const resolved = Promise.resolve();
function later(work) {
  try { resolved.then(work); } catch { work(); }
}

/// `navigator.sendBeacon`; `false` when the browser refused it (quota) or has none.
function beacon(url, bytes) {
  try {
    return navigator.sendBeacon(url, new Blob([bytes], { type: 'text/plain' }));
  } catch {
    return false;
  }
}

/// The IANA time zone (the first `Intl.DateTimeFormat` of a page costs ~20 ms: call it late).
export function time_zone() {
  try {
    const zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
    return typeof zone === 'string' ? zone : undefined; // a polyfill's answer, checked
  } catch {
    return undefined;
  }
}

const FOLLOWED_KEYS = ['consent', 'aid', 'uid', 'traits', 'gid', 'gtraits', 'interests', 'tags'];
const CLICKABLE = 'a, button, [data-portrait-event], input[type=submit], input[type=button], input[type=reset], [role=button]';
/// What a visitor may type or pick: its text is never a clicked element's.
const TYPED = 'textarea, select, [contenteditable]:not([contenteditable="false"])';
const BUTTON_INPUTS = /^(submit|button|reset)$/i;
/// What `HTMLFormElement.length` counts, without reading a property a field can shadow.
const FORM_CONTROLS = 'button, fieldset, input:not([type=image]), object, output, select, textarea';

/// Listens for what the SDK records and reacts to, calling `on(kind, value)`, with `kind`
/// one of `dom::kind` (`sdk/src/dom.rs`). Navigations are always followed (with page views
/// off, the page context still follows the URL for the site's own `page()` calls), and so
/// are scrolling and input (the attention a page gets weighs its interests, captured or
/// not); the click and form listeners are each added only if their `switches` entry is set
/// (in that order).
export function listen(switches, on) {
  const [clicks, forms] = switches;
  // The prototypes' method: a form named `addEventListener` replaces the document's.
  const listenTo = (target, name, listener, options) => own(target, 'addEventListener', name, listener, options);
  const add = (target, name, kind, read = () => undefined, capture = false) =>
    listenTo(target, name, (event) => safely(() => on(kind, read(event))), { capture, passive: true });
  add(window, 'pagehide', 0);
  add(window, 'pageshow', 1, (event) => event.persisted);
  add(window, 'online', 2);
  add(document, 'visibilitychange', 3, page_hidden);
  // Another tab's consent decision, who the visitor is, or their interests (`Store`'s
  // `portrait.` prefix and its keys; `party::USER`, `party::GROUP`, `interests::STORED_KEYS`);
  // filtered here: other tabs also write their queues every second.
  add(window, 'storage', 9, (event) => {
    const key = FOLLOWED_KEYS.find((key) => event.key === 'portrait.' + key);
    return key && (event.newValue === null ? '-' + key : key);
  });
  for (const method of ['pushState', 'replaceState']) {
    const original = history[method];
    if (typeof original !== 'function') continue;
    try {
      history[method] = function (...args) {
        const result = original.apply(this, args);
        safely(() => on(method === 'pushState' ? 4 : 10, location.href));
        return result;
      };
    } catch { /* a frozen History: navigations are still seen through popstate */ }
  }
  add(window, 'popstate', 4, () => location.href);
  add(window, 'hashchange', 4, () => location.href);
  if (clicks) add(document, 'click', 5, clicked, true);
  if (forms) {
    add(document, 'submit', 6, submitted, true);
    // A submission inside a shadow root does not leave it: each open root is watched once a
    // click or a key press (which do leave it, before the submission they cause) shows it.
    const watched = new WeakSet();
    const watchRoots = (event) => {
      for (const node of event.composedPath()) {
        if (own(node, 'nodeType') === 11 && own(node, 'host') && !watched.has(node)) {
          watched.add(node);
          add(node, 'submit', 6, submitted, true);
        }
      }
    };
    for (const name of ['click', 'keydown']) listenTo(document, name, (event) => safely(() => watchRoots(event)), true);
  }
  add(window, 'scroll', 7);
  for (const name of ['pointerdown', 'keydown', 'touchstart', 'mousemove']) add(window, name, 8);
}

/// The clicked element: tag, text (a button input's label), id, the href of the link it is or
/// is in, whether that has `download`, then its attributes' names and values; `undefined` if
/// nothing clickable. A named element (`data-portrait-event`) wins over a button inside it,
/// and a click in an open shadow root is read where it happened, not at its host.
function clicked(event) {
  // The elements from the one clicked up to the document, across open shadow roots (where
  // `closest` stops).
  const path = event.composedPath().filter((node) => own(node, 'nodeType') === 1);
  const first = (selector) => path.find((node) => own(node, 'matches', selector));
  const element = first('[data-portrait-event]') || first(CLICKABLE);
  if (!element) return undefined;
  const tag = own(element, 'tagName').toLowerCase();
  // An input's value is its label only for a button; any other is what the visitor typed.
  const text = tag !== 'input' ? untypedText(element) : BUTTON_INPUTS.test(element.type) ? element.value : '';
  // A button inside a link (`<a href><button>`) still navigates: the link's href and kind.
  const link = first('a[href]');
  const facts = [tag, text || '', own(element, 'id'), link && typeof link.href === 'string' ? link.href : '',
    own(link || element, 'hasAttribute', 'download')];
  for (const { name, value } of own(element, 'attributes')) facts.push(name, value);
  return facts;
}

/// An element's text without what a visitor may type or pick there: the text of fields (a
/// `textarea`'s, which React keeps equal to what was typed), of `select`s and of editable
/// regions, skipped in a walk that stops once it has more than the SDK keeps (most clicks
/// are on plain links and buttons, whose `textContent` serves).
function untypedText(element) {
  if (own(element, 'matches', TYPED) || own(element, 'isContentEditable')) return '';
  if (!own(element, 'querySelector', TYPED)) return own(element, 'textContent');
  const skipTyped = (node) =>
    (own(node, 'matches', TYPED) ? NodeFilter.FILTER_REJECT : NodeFilter.FILTER_ACCEPT);
  const walker = own(document, 'createTreeWalker', element, NodeFilter.SHOW_ELEMENT | NodeFilter.SHOW_TEXT, skipTyped);
  let text = '';
  for (let node = walker.nextNode(); node && text.length < 4000; node = walker.nextNode()) {
    if (node.nodeType === 3) text += node.data;
  }
  return text;
}

/// The submitted form's id, name and action attributes (not its properties: a field named
/// `id`, `name` or `action` replaces those) and its number of fields, never their values.
function submitted(event) {
  const form = event.target;
  if (own(form, 'tagName') !== 'FORM') return undefined;
  const attribute = (name) => own(form, 'getAttribute', name);
  return [attribute('id'), attribute('name'), attribute('action'), own(form, 'querySelectorAll', FORM_CONTROLS).length];
}
