// The public API, shaped like Segment's analytics.js, around the wasm `Sdk`.
//
// Its jobs are the ones that only JavaScript can do well: shuffling analytics.js's optional
// arguments, queueing calls made before the module is ready, `ready`/`on`/`off`, and making
// sure no error ever reaches the host page (each is counted and reported on 'error').

// How long the remote settings may keep the SDK waiting once its module is there: a hung
// answer must not keep the page's calls from being captured. Past it the SDK starts with
// consent pending (the settings may ask for it, or to respect the browser's privacy signals),
// and takes the consent they imply and their autocapture switches when they come
// (`lateSettings`); their tag rules if they came before the interest module starts, else from
// the next page.
const SETTINGS_GRACE_MS = 1000;
const LATE_SETTINGS = { late: true, consent_default: 'pending' };

const CALLBACK_DELAY_MS = 300;

const CALLS = ['page', 'screen', 'track', 'identify', 'group', 'alias', 'reset', 'setConsent', 'debug', 'setAnonymousId'];
const CALL_EVENTS = ['page', 'screen', 'track', 'identify', 'group', 'alias'];

/**
 * @param {(report: (error: Error) => void) => Promise<Function>} loadSdk resolves to the wasm
 *   `Sdk` class; `report` hears why it runs the module's fallback, where that is not expected.
 * @param {string} defaultEndpoint the collector URL used when `load` is given none.
 * @param {Promise<Response>} [prefetchedSettings] the snippet's fetch of the remote settings.
 * @param {(report: (error: Error) => void, modelUrl?: string) => Promise<[[Function, Function], ArrayBuffer | Uint8Array | Error]>} [loadInterests]
 *   the interest module's `Interests` class and the topic model's bytes (from `modelUrl`, the
 *   option `topicsModel`, when given), asked for after `ready` (`topics: false`: never).
 */
export function createPortrait(loadSdk, defaultEndpoint, prefetchedSettings, loadInterests) {
  let sdk = null;
  let interests = null;
  let loading = false;
  let loadedKey;
  let loadedEndpoint;
  let debugging = false;
  const pending = [];
  const listeners = new Map();
  const readyCallbacks = [];
  // The answers of `flush()` calls made before the SDK was there: `false` if it never comes.
  const flushWaiters = [];
  // No SDK will come: it failed to load, or this is no browser (server rendering), where
  // `load()` fetches nothing, calls are not queued, and `flush()` answers `false`.
  let failed = typeof document === 'undefined';
  const giveUp = () => {
    failed = true;
    pending.length = 0;
    readyCallbacks.length = 0;
    for (const answer of flushWaiters.splice(0)) answer(false);
  };

  // The call the module is capturing, as `on('track' | 'page' | …)` listeners get it.
  let callArgs = null;
  let hearingError = false;
  const emit = (name, detail) => {
    // A trap in the module, caught where the browser called it (`dom.js`): counted here.
    if (name === 'trap') return report(detail);
    if (name === 'middleware') {
      // The call's arguments go with its event: `on()` listeners get them when it comes back,
      // however late (an async middleware).
      const args = callArgs;
      return chainDepth > 0 ? queueMicrotask(() => startChain(detail, args)) : startChain(detail, args);
    }
    // An error raised while the `error` listeners run (theirs, or a listener's of a call they
    // make) is counted, not heard again: that would loop.
    if (name === 'error') {
      if (hearingError) return;
      hearingError = true;
    }
    const args = CALL_EVENTS.includes(name) ? listenerArguments(name, resolved(name, callArgs), detail) : [detail];
    for (const listener of listeners.get(name) || []) {
      try {
        listener(...args);
      } catch (error) {
        report(error);
      }
    }
    if (name === 'error') hearingError = false;
  };
  // identify and group listeners get the id and traits the event carries (the stored ones,
  // merged), as analytics.js passes them.
  const resolved = (name, args) => {
    const party = name === 'identify' ? sdk.user() : name === 'group' ? sdk.groupInfo() : null;
    return party && args ? [party.userId ?? party.groupId, party.traits, args[2]] : args;
  };
  // Source middleware, analytics-next's: `fn({payload, next, integrations})` gets each event
  // as `payload.obj` (autocaptured ones too; `payload.type()` and the like read it, as
  // analytics.js's Facade does) and passes it on with `next(payload)` (`next()` passes it
  // unchanged), or drops it by not calling `next`. What the last one passes on goes back to
  // the module. A middleware that throws drops its event (it may have been removing
  // personal data), and the error is reported. An event a middleware captures (a `track()`
  // inside it) starts its chain after the current one, not inside it.
  const middleware = [];
  let chainDepth = 0;
  // The module gives the context as JSON text (made once per page view): each event gets its
  // own copy, and one that comes back unchanged is not read back.
  const startChain = (obj, args) => {
    const text = obj.context;
    obj.context = JSON.parse(text);
    // analytics-next's events have it; a middleware may switch destinations off there.
    obj.integrations = {};
    throughMiddleware(0, facade(obj), text, args);
  };
  const throughMiddleware = (index, payload, text, args) => {
    if (index === middleware.length) {
      // A middleware may withhold its event as it would from Segment: then it is dropped.
      if (withheld(payload.obj)) return;
      // A context JSON cannot write (a BigInt, a cycle) is read back as the module can.
      let changed = true;
      try {
        changed = JSON.stringify(payload.obj.context) !== text;
      } catch {}
      return guard(() => capturing(args, () => sdk.resume(payload.obj, changed)))();
    }
    let passed = false;
    const next = (edited) => {
      if (passed) return;
      passed = true;
      // `next({obj})`, without the readers: the next middleware gets them, as in analytics-next.
      const passedOn = !isObject(edited?.obj) ? payload : typeof edited.type === 'function' ? edited : facade(edited.obj);
      throughMiddleware(index + 1, passedOn, text, args);
    };
    // One that throws, or rejects (an async one), before passing its event on drops it.
    const drop = (error) => {
      passed = true;
      report(error);
    };
    chainDepth += 1;
    try {
      const answer = middleware[index]({ payload, next, integrations: {} });
      if (typeof answer?.then === 'function') answer.then(undefined, drop);
    } catch (error) {
      drop(error);
    } finally {
      chainDepth -= 1;
    }
  };
  // Errors caught here, counted with the module's own in `stats().errors`.
  let caught = 0;
  // An error caught here (the module logs its own in debug mode: each is logged once).
  const report = (error) => {
    caught += 1;
    if (debugging) {
      try { console.error('portrait:', error); } catch {}
    }
    emit('error', error);
  };
  const guard = (work) => (...args) => {
    try {
      return work(...args);
    } catch (error) {
      report(error);
    }
  };
  // An async answer (analytics-next's are Promises) that carries the API's calls too, so that
  // it chains as the other calls do.
  const carryingApi = (promise) => Object.assign(promise, portrait);
  // A call that answers the API, so that calls chain (`portrait.track(…).track(…)`), as the
  // snippet's stub and analytics.js's do.
  const chained = (work) => {
    const guarded = guard(work);
    return (...args) => (guarded(...args), portrait);
  };
  // A call made while the module works on another (from a getter or `toJSON` among that
  // call's arguments) waits for it, once: the module takes one call at a time, and one that
  // trapped inside a call stays busy for good (a call then does nothing rather than wait
  // forever). Listeners and middleware run once it is free: their calls go at once.
  // Calls made while one waits wait too, behind it: they keep their order.
  let waiting = 0;
  const invoke = (name, all, deferred = false) => {
    if (deferred) waiting -= 1;
    else if (waiting > 0 || sdk.busy()) {
      waiting += 1;
      return new Promise((resolve) => queueMicrotask(() => resolve(guard(invoke)(name, all, true))));
    }
    return invokeNow(name, all);
  };
  const invokeNow = (name, all) => {
    const args = scheduleCallback(all, guard);
    switch (name) {
      case 'page': return capturing(pageArguments(args), (a) => sdk.page(a[0], a[1], a[2], options(a[3], a[2])));
      case 'screen': return capturing(pageArguments(args), (a) => sdk.screen(a[0], a[1], a[2], options(a[3])));
      case 'track': return capturing(trackArguments(args), (a) => sdk.track(a[0], a[1], options(a[2])));
      case 'identify': return capturing(partyArguments(args), (a) => sdk.identify(a[0], a[1], options(a[2])));
      case 'group': return capturing(partyArguments(args), (a) => sdk.group(a[0], a[1], options(a[2])));
      case 'alias': return capturing(aliasArguments(args), (a) => sdk.alias(a[0], a[1], options(a[2])));
      case 'reset': {
        const answer = sdk.reset();
        emit('reset');
        return answer;
      }
      case 'setAnonymousId': return sdk.setAnonymousId(args[0]);
      case 'setConsent': return sdk.setConsent(args[0]);
      case 'debug': return sdk.debug(Boolean(args[0]));
      case 'flush': return sdk.flush();
    }
  };
  // A call's options as the module reads them (`callOptions`); an `anonymousId` among them
  // is the visitor's from now on, as in analytics-next.
  const options = (given, pageProperties) => {
    const read = callOptions(given, pageProperties);
    if (read?.anonymousId) sdk.setAnonymousId(read.anonymousId);
    return read;
  };
  const capturing = (resolved, work) => {
    // A call's options are the last of its resolved arguments: options that keep the event
    // from Segment keep it from Portrait, its stand-in (the callback still runs).
    if (resolved && withheld(resolved[resolved.length - 1])) return;
    const outer = callArgs;
    callArgs = resolved;
    try {
      return work(resolved);
    } finally {
      callArgs = outer;
    }
  };
  // A synchronous read: `empty()` before `ready` or after an error (which is reported).
  const read = (work, empty = () => []) => (...args) => {
    try {
      // `undefined`: asked from inside a call the module is working on (a getter among its
      // arguments), which it cannot answer then.
      return (sdk ? work(...args) : undefined) ?? empty();
    } catch (error) {
      report(error);
      return empty();
    }
  };
  const nothing = () => null;
  const readGroup = read(() => sdk.groupInfo(), () => ({ groupId: null, traits: {} }));
  // Before the SDK: queued (not once it failed to load: nothing would take them).
  const call = (name, args) => (sdk ? invoke(name, args) : failed ? undefined : pending.push([name, args]));
  // `remoteSettings()`: the collector's settings as they are when the module has loaded (late
  // ones that came meanwhile included: their tag rules apply to this page).
  const startInterests = (settings, remoteSettings) =>
    loadInterests(report, typeof settings.topicsModel === 'string' ? settings.topicsModel : undefined)
      .then(([[Interests, watchShowIf], model]) => {
        const { personalize, stored } = sdk.interestHost();
        // The module's reports reach listeners after its call returns, so they may call back in.
        // Its errors are the SDK's: counted and reported as the others are.
        const host = { personalize, emit: (name, detail) => queueMicrotask(() => (name === 'error' ? report(detail) : emit(name, detail))) };
        const failed = model instanceof Error;
        if (failed) report(model);
        interests = new Interests(host, settings, remoteSettings(), stored, new Uint8Array(failed ? 0 : model));
        sdk.setInterests(interests);
        watchShowIf(guard(() => interests.decide()));
      })
      .catch(report);
  // The SDK builds an event for each call only while someone listens to them.
  const updateCallListeners = () =>
    sdk && sdk.setCallListeners(CALL_EVENTS.some((name) => (listeners.get(name) || []).length > 0));

  // The collector's URL, without a trailing `/`: an `endpoint` left `undefined` (an unset
  // build variable) or empty is the default.
  const collectorOf = (options) => String(options?.endpoint || defaultEndpoint).replace(/\/$/, '');
  // `load()`'s work: the module and the remote settings, then the SDK, the calls made
  // before it, and `ready`.
  const start = (writeKey, options) => {
    loadedKey = String(writeKey);
    loadedEndpoint = collectorOf(options);
    // As `debug(true)` from the start: the errors caught here are logged too.
    if (options?.debug) debugging = true;
    const settings = { ...options, endpoint: loadedEndpoint };
    const remote = settings.remoteSettings === false
      ? Promise.resolve(undefined)
      : Promise.resolve(
          prefetchedSettings ?? fetch(`${loadedEndpoint}/v1/config/${encodeURIComponent(writeKey)}`, { credentials: 'omit' }),
        )
          .then((r) => {
            if (r && r.ok) return r.json();
            // Started without them (as with none), and said why: a wrong key, a collector down.
            report(new Error(`the collector's remote settings: ${r ? `HTTP ${r.status}` : 'no answer'}; the page's options apply`));
          })
          .catch((error) => report(new Error(`the collector's remote settings could not be read (${error?.message}); the page's options apply`)));
    // A page the browser prerenders (speculation rules) may never be seen: the SDK starts,
    // and counts the view, when it is shown. Its module is fetched and compiled meanwhile.
    // Through the prototypes: a form named `prerendering` or `addEventListener` replaces the
    // document's (where there is no `prerendering`, nothing is prerendered).
    const prototype = Object.getPrototypeOf(document);
    const shown = Reflect.get(prototype, 'prerendering', document) === true
      && new Promise((resolve) => prototype.addEventListener.call(document, 'prerenderingchange', resolve, { once: true }));
    // The settings get a moment more once the module is there (not from `load`: a module
    // that took longer must not leave them no time at all).
    const late = () => delay(SETTINGS_GRACE_MS).then(() => LATE_SETTINGS);
    loadSdk(report)
      .then((Sdk) => Promise.all([Sdk, Promise.race([remote, late()]), shown]))
      .then(([Sdk, remoteSettings]) => {
        sdk = new Sdk(String(writeKey), settings, remoteSettings, emit);
        const late = remoteSettings === LATE_SETTINGS;
        let settingsNow = late ? undefined : remoteSettings;
        if (late) {
          remote.then(guard((arrived) => {
            settingsNow = arrived;
            sdk.lateSettings(arrived);
          }));
        }
        updateCallListeners();
        if (middleware.length > 0) sdk.setMiddleware(true);
        if (debugging) sdk.debug(true);
        for (const [name, args] of pending.splice(0)) guard(invoke)(name, args);
        flushWaiters.length = 0; // their flushes run with the ready callbacks
        for (const callback of readyCallbacks.splice(0)) guard(callback)();
        emit('ready');
        // After `ready` and when the browser is idle: the interest module must not compete
        // with the page's own loading (a page is read again when it is left, before it is
        // credited). At once on a page with elements shown by interest: they wait for it.
        if (settings.topics !== false && loadInterests) {
          const startTopics = () => startInterests(settings, () => settingsNow);
          Object.getPrototypeOf(document).querySelector.call(document, '[data-portrait-show-if]') ? startTopics() : whenIdle(startTopics);
        }
      })
      .catch((error) => {
        report(error);
        // No SDK will come: a `flush()` waiting for it is answered, and any later one.
        if (sdk) return;
        giveUp();
      });
  };

  const portrait = {
    __portrait: true,
    load: chained((writeKey, options = {}) => {
      if (failed) return;
      if (loading) {
        // Said, not silently ignored: the calls go to the first load's source and collector.
        const endpoint = collectorOf(options);
        if (String(writeKey) !== loadedKey || endpoint !== loadedEndpoint) {
          throw new Error(`load() was called already (write key ${loadedKey}, collector ${loadedEndpoint}); this one (${writeKey}, ${endpoint}) is ignored`);
        }
        return;
      }
      loading = true;
      try {
        start(writeKey, options);
      } catch (error) {
        giveUp(); // a throw before the module was asked for: no SDK will come
        throw error;
      }
    }),
    flush: () => new Promise((resolve) => {
      const run = () => Promise.resolve(guard(invoke)('flush', [])).then(resolve, () => resolve(false));
      if (sdk) return run();
      if (failed) return resolve(false);
      readyCallbacks.push(run);
      flushWaiters.push(resolve);
    }),
    // analytics-next's: a Promise, settled once the callback (if any) has run. It carries the
    // API's calls too, so that `ready(cb).track(…)` chains as on the snippet's stub. Where no
    // SDK will come (it failed to load, or on a server) it never settles and keeps nothing.
    ready: guard((callback) => carryingApi(new Promise((resolve) => {
      const run = () => {
        if (typeof callback === 'function') guard(callback)();
        resolve();
      };
      if (sdk) run();
      else if (!failed) readyCallbacks.push(run);
    }))),
    user: read(() => sdk.user(), () => ({ anonymousId: null, userId: null, traits: {} })),
    // `group()` reads the stored group, `{groupId, traits}` (analytics.js answers a Group with
    // `id()` and `traits()`: like `user()`, a plain object here).
    group: guard((...args) => (args.length > 0 ? (call('group', args), portrait) : readGroup())),
    // Without an id, analytics-next's read of the anonymous id.
    setAnonymousId: guard((...args) => (args.length > 0 ? (call('setAnonymousId', args), portrait) : portrait.user().anonymousId)),
    consent: {
      set: chained((changes) => call('setConsent', [changes])),
      get: read(() => sdk.consent(), nothing),
    },
    // `on`, `off` and `once` answer the API, so that they chain, as analytics.js's do.
    on: guard((name, listener) => {
      listeners.set(name, [...(listeners.get(name) || []), listener]);
      updateCallListeners();
      return portrait;
    }),
    /** Without a listener, every listener of `name` (as analytics.js's emitter does). */
    off: guard((name, listener) => {
      const kept = (l) => listener !== undefined && l !== listener && l.listener !== listener;
      listeners.set(name, (listeners.get(name) || []).filter(kept));
      updateCallListeners();
      return portrait;
    }),
    /** analytics-next's source middleware (above); from the call on, every event passes it. */
    addSourceMiddleware: chained((fn) => {
      if (typeof fn !== 'function') throw new TypeError('addSourceMiddleware() needs a function');
      middleware.push(fn);
      if (sdk) sdk.setMiddleware(true);
    }),
    once: guard((name, listener) => {
      const once = (...args) => {
        portrait.off(name, once);
        listener(...args);
      };
      once.listener = listener; // what `off(name, listener)` removes
      return portrait.on(name, once);
    }),
    // `debug()` turns it on, as analytics.js's does.
    debug: chained((on) => {
      debugging = on === undefined || Boolean(on);
      call('debug', [debugging]);
    }),
    /** The visitor's top interests, `[{id, name, path, score}]`, best first (`{limit}`,
     * default 10); empty until the interest module is loaded (`on('interests')` says when). */
    interests: read((options) => {
      // At most 64 (all the device keeps); none for 0 or less; 10 unless a number says.
      const limit = Math.floor(Number(options?.limit ?? 10));
      if (!interests || limit <= 0) return [];
      return interests.top(Number.isNaN(limit) ? 10 : Math.min(limit, 64));
    }),
    /** What this page is about, `[{id, name, path, score}]`; `{refresh: true}` re-reads the page. */
    pageTopics: read((options) => {
      if (!interests) return [];
      if (options?.refresh) interests.classify();
      return interests.pageTopics();
    }),
    /** The SDK's own counters (captured, delivered, queued, …), for reconciliation;
     * `topicsModel` is 1 once the interest module runs with its model. */
    stats: read(() => {
      const stats = sdk.stats();
      return stats && { ...stats, errors: stats.errors + caught, topicsModel: interests?.hasModel() ? 1 : 0 };
    }, nothing),
  };
  for (const name of CALLS) {
    if (!(name in portrait)) portrait[name] = chained((...args) => call(name, args));
  }
  // analytics.js's trackLink/trackForm (and their old names): `track(event, properties)` on
  // each click or submit of `elements` (an element or a list of them); `event` and
  // `properties` may be functions of the element. The page is not held back (analytics.js
  // waits 300 ms): a page left after the click still sends the event.
  // `null` (a selector that matched nothing) binds nothing; anything else that is not elements
  // is reported.
  const trackOn = (type) => chained((elements, event, properties) => {
    const list = elements == null ? [] : isElement(elements) ? [elements]
      : typeof elements.length === 'number' ? Array.from(elements) : [elements];
    if (!list.every(isElement)) {
      throw new TypeError(`track${type === 'click' ? 'Link' : 'Form'}() needs an element or a list of elements`);
    }
    const of = (value, element) => (typeof value === 'function' ? value(element) : value);
    for (const element of list) {
      // The prototypes' method: a form's field named `addEventListener` replaces the form's.
      Object.getPrototypeOf(element).addEventListener.call(element, type, guard(() => portrait.track(of(event, element), of(properties, element))));
    }
  });
  // analytics-next's plugins, destination middleware and deprecated `pageview(url)`: Portrait
  // has no destinations or plugins, so these register nothing, and say so on 'error' rather
  // than throw into the site's code. Theirs are async: the answer is a settled Promise that
  // carries the API's calls too, as `ready()`'s.
  for (const name of ['register', 'deregister', 'addDestinationMiddleware', 'addIntegrationMiddleware']) {
    const ignored = guard(() => {
      throw new Error(`${name}() is for analytics-next's destinations and plugins: Portrait has none, and ignores it`);
    });
    portrait[name] = () => carryingApi(Promise.resolve(ignored()));
  }
  portrait.pageview = chained((url) => call('page', [{ path: url }]));
  portrait.trackLink = portrait.trackClick = trackOn('click');
  portrait.trackForm = portrait.trackSubmit = trackOn('submit');
  return portrait;
}

/** Whether `value` is an element, by the DOM's own `nodeType` getter, which throws on
 * anything that is not a node. Not `instanceof Element`: a page's `var Element = …` or
 * `class Element` replaces the global, and an iframe's elements have their own. Found on the
 * document's prototypes, not the document: `<img name="nodeType">` shadows it there. */
function isElement(value) {
  let proto = Object.getPrototypeOf(document);
  while (proto && !Object.getOwnPropertyDescriptor(proto, 'nodeType')) proto = Object.getPrototypeOf(proto);
  try {
    return Object.getOwnPropertyDescriptor(proto, 'nodeType').get.call(value) === 1;
  } catch {
    return false;
  }
}

/** The page's one SDK: made once, and shared by every copy of this code on the page (a second
 * bundle with the npm package, the script tag's, an older script tag's `window.portrait`),
 * so that two copies never both capture. Not outside a browser (server rendering, tests
 * that reset their modules): there each import makes its own. */
export function sharedPortrait(make) {
  if (typeof document === 'undefined') return make();
  const slot = Symbol.for('portrait.sdk');
  const installed = typeof window.portrait === 'object' && window.portrait?.__portrait ? window.portrait : undefined;
  return globalThis[slot] ?? (globalThis[slot] = installed ?? make());
}

/** What an `on(name)` listener gets, as in analytics.js: the call's arguments as the SDK read
 * them — track (event, properties, options), page and screen (category, name, properties, options),
 * identify (userId, traits, options) and group (groupId, traits, options) with the event's id
 * and merged traits, alias (userId,
 * previousId, options) — then `{messageId}`. As analytics-next passes them, the properties are
 * an object (`{}` when the call gave none) and a view's category and name `null` when not
 * given. An event the SDK captured on its own (a page view, a click) gives its event name
 * alone (and `{}`). */
function listenerArguments(name, callArgs, detail) {
  const args = callArgs ?? (name === 'track' ? [detail.event] : []);
  const view = name === 'page' || name === 'screen';
  const given = Array.from({ length: view ? 4 : 3 }, (_, i) => args[i]);
  if (name === 'track') given[1] ??= {};
  if (view) {
    given[0] ??= null;
    given[1] ??= null;
    given[2] ??= {};
  }
  return [...given, detail];
}

/** analytics.js's Facade readers of an event for the middleware (`payload.type()`, …), shared
 * by every payload: `facade(obj)` makes one. */
const FACADE = { rawEvent() { return this.obj; } };
for (const key of ['type', 'event', 'name', 'category', 'properties', 'traits', 'userId', 'anonymousId', 'groupId', 'messageId', 'timestamp', 'context', 'integrations']) {
  FACADE[key] = function () { return this.obj[key]; };
}
const facade = (obj) => Object.assign(Object.create(FACADE), { obj });

/** Schedules a call's callback and answers the call's own arguments. analytics.js takes an
 * options object after them (`callOptions`) and then a callback: it runs 300 ms after
 * the SDK has the call, as there, time for the event to leave before, say, the callback
 * navigates (a hidden page sends its queue anyway). */
function scheduleCallback(args, guard) {
  const at = args.findIndex((arg) => typeof arg === 'function');
  if (at < 0) return args;
  setTimeout(guard(args[at]), CALLBACK_DELAY_MS);
  return args.slice(0, at);
}

/** Resolves to `undefined` after `ms`. */
function delay(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Runs `work` when the browser is idle (within 2 s), or soon where it cannot say. */
function whenIdle(work) {
  if (typeof requestIdleCallback === 'function') requestIdleCallback(work, { timeout: 2000 });
  else setTimeout(work, 50);
}

/** The topic model's bytes, or the error that kept them: without a model the interest module
 * still runs the site's tag rules (`startInterests` reports the error). */
export function modelOrNothing(bytes) {
  return bytes.catch((error) => error);
}

/** GETs a URL's bytes (the browser's HTTP cache keeps them between pages). */
export function fetchBytes(url) {
  return fetch(url).then((r) => (r.ok ? r.arrayBuffer() : Promise.reject(new Error(`${url}: HTTP ${r.status}`))));
}

/** analytics.js: page([category], [name], [properties], [options]), read as analytics-next
 * reads it: two strings are the category and the name, one is the name; the properties are
 * the first object, wherever it is (`page('Docs', undefined, {section})`), a `null` after a
 * name included (`page('Docs', null, {integrations})`), and the options follow them. */
function pageArguments(args) {
  const strings = args.filter((arg) => typeof arg === 'string');
  const at = args.findIndex((arg) => typeof arg === 'object' && (arg !== null || strings.length > 0));
  const [properties, options] = at < 0 ? [] : [args[at], args[at + 1]];
  return strings.length > 1 ? [strings[0], strings[1], properties, options] : [undefined, strings[0], properties, options];
}

/** Whether `value` is an object (an array too), not `null`. */
const isObject = (value) => typeof value === 'object' && value !== null;

/** The keys of a page's context that a view's properties may also give. */
const PAGE_KEYS = ['url', 'path', 'title', 'referrer', 'search'];

/** analytics.js's call options, as analytics-next reads them: `timestamp`, `messageId` and
 * `anonymousId` are the event's; `integrations` (which destinations get it) means nothing to
 * a collector that has none, nor `userId` to an SDK that keeps its user (`identify`);
 * `context`, and every other key (`{ip}`), is the event's context. For a page view, its
 * properties' url, path, title, referrer and search are the context's page too, under the
 * options' own. */
function callOptions(options, pageProperties) {
  // The common call has neither: the module then reads nothing.
  if (!isObject(options) && !isObject(pageProperties)) return undefined;
  const page = isObject(pageProperties)
    ? Object.fromEntries(PAGE_KEYS.filter((key) => key in pageProperties).map((key) => [key, pageProperties[key]]))
    : {};
  const fromPage = Object.keys(page).length > 0;
  if (!isObject(options) && !fromPage) return undefined;
  const { context, integrations, userId, timestamp, messageId, anonymousId, ...rest } = isObject(options) ? options : {};
  const merged = { ...(isObject(context) ? context : {}), ...rest };
  if (fromPage && (merged.page === undefined || isObject(merged.page))) merged.page = { ...page, ...merged.page };
  return { context: merged, timestamp, messageId, anonymousId };
}

/** analytics.js: track(event, [properties], [options]); analytics-next also takes the event as
 * an object, `track({event, properties}, [options])`. */
function trackArguments([a, b, c]) {
  return isObject(a) && !Array.isArray(a) ? [String(a.event ?? ''), a.properties, b] : [String(a ?? ''), b, c];
}

/** Whether a call's options (or an event a middleware passes on) withhold it from Segment,
 * `integrations: {'Segment.io': false}` as analytics-next reads it (`All: false` does not
 * reach Segment there), or from Portrait by its own name, `{Portrait: false}`. */
function withheld(options) {
  const integrations = isObject(options) ? options.integrations : undefined;
  return isObject(integrations) && (integrations['Segment.io'] === false || integrations.Portrait === false);
}

/** analytics.js: alias(userId, [previousId], [options]); an object second is the options. */
function aliasArguments([userId, b, c]) {
  return isObject(b) ? [userId, undefined, b] : [userId, b, c];
}

/** analytics.js: identify([userId], [traits], [options]), group([groupId], [traits], [options]). */
function partyArguments([a, b, c]) {
  return isObject(a) ? [undefined, a, b] : [a, b, c];
}
