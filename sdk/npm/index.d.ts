// Types for @portrait/sdk. The API follows Segment's analytics.js.

/** `any`, as analytics-next's `EventProperties`: an `interface` or a class's instance is
 * accepted too (`Record<string, unknown>` would ask for an index signature). */
export type Properties = Record<string, any>;
/** analytics.js's per-call options. `context` goes over the context the SDK collects (its
 * `page` field by field; `campaign`, `locale` and `library` whole; `userAgent`, `timezone`
 * and `screen` stay the browser's; anything else is added), and so does every key not named
 * here (`{app}` is `context.app`); `timestamp` (at most 30 days old) and `messageId` (at most
 * 255 bytes) are the event's; `anonymousId` is the visitor's from now on (`setAnonymousId`).
 * `userId` is ignored, and so is `integrations`, but for `{'Segment.io': false}` or
 * `{Portrait: false}`: the call is not recorded (its callback still runs). */
export interface CallOptions {
  context?: EventContext;
  timestamp?: Date | string | number;
  messageId?: string;
  anonymousId?: string;
  integrations?: Record<string, unknown>;
  [key: string]: unknown;
}
/** Runs 300 ms after the SDK has the call (as in analytics.js), whether or not the event
 * has left yet; a page left after it still sends the event. */
export type Callback = () => void;
export type Decision = boolean | 'granted' | 'denied' | 'pending';

export interface LoadOptions {
  /** The collector, e.g. `https://collect.example.com`. Default (also for `undefined` or
   * `""`): the origin `portrait.js` came from (the page's, for the npm package). */
  endpoint?: string;
  /** Flush at this many events (default 20, at most 500). */
  batchSize?: number;
  /** … or after this many milliseconds (default 5000). */
  flushInterval?: number;
  /** … or at this many encoded bytes (default 32768). */
  batchBytes?: number;
  /** Queue bounds; past them the oldest events are dropped and counted (1000 / 1 MB). */
  maxQueueEvents?: number;
  maxQueueBytes?: number;
  /** `false` turns all autocapture off; each switch defaults to on (`true`: the defaults, and
   * what the collector's remote settings switch). */
  autocapture?: boolean | {
    pageViews?: boolean;
    clicks?: boolean;
    forms?: boolean;
    scroll?: boolean;
    engagement?: boolean;
    /** Read UTM parameters and ad click ids from landing URLs. */
    campaigns?: boolean;
  };
  /** Where ids and the queue live (default `cookie`: cookie + localStorage). */
  storage?: 'cookie' | 'cookie+localStorage' | 'localStorage' | 'memory' | 'none';
  /** Cookie domain; default: the broadest domain the browser accepts (e.g. `example.com`). */
  cookieDomain?: string;
  /** Cookie lifetime in days (default 365). */
  cookieDays?: number;
  /** Consent before the visitor decides (default: the collector's `consent_default`, else `granted`). */
  consent?: 'granted' | 'denied' | 'pending' | boolean;
  /** Treat `navigator.doNotTrack === "1"` / Global Privacy Control as a refusal (default: the
   * collector's `respect_do_not_track` / `respect_global_privacy_control`, else false). */
  respectDoNotTrack?: boolean;
  respectGlobalPrivacyControl?: boolean;
  /** `false`: do not fetch `/v1/config/{writeKey}` (the collector's remote settings). */
  remoteSettings?: boolean;
  debug?: boolean;
  /** `false`: no interests (the topic model is not fetched, pages are not classified). */
  topics?: boolean;
  /** Where to fetch the topic model from (default: inlined in this package; the script tag
   * fetches `portrait-topics.bin` next to `portrait.js`). */
  topicsModel?: string;
  /** Also read a sample of the page's visible text (2,000 characters) when classifying. */
  topicsVisibleText?: boolean;
  /** Half-life of an interest, in days (default 14). */
  interestHalfLifeDays?: number;
}

export interface User {
  anonymousId: string | null;
  userId: string | null;
  traits: Properties;
}

/** The visitor's group, as `group(groupId, traits)` stored it. */
export interface Group {
  groupId: string | null;
  traits: Properties;
}

export interface Stats {
  captured: number;
  delivered: number;
  refused: number;
  retries: number;
  denied: number;
  errors: number;
  queued: number;
  held: number;
  /** 1 once the topic model is loaded. */
  topicsModel: number;
}

export interface MiddlewareEvent {
  type: 'page' | 'screen' | 'track' | 'identify' | 'group' | 'alias';
  messageId: string;
  timestamp: Date;
  anonymousId: string;
  userId: string | null;
  event?: string;
  name?: string | null;
  category?: string | null;
  groupId?: string;
  previousId?: string;
  properties?: Properties;
  traits?: Properties;
  /** The whole context, in Segment's shape; what the middleware passes on is the event's
   * (a key it deletes is gone). */
  context: EventContext;
  /** Always `{}` here, as analytics-next gives it; not sent. */
  integrations: Record<string, unknown>;
}

/** An event's context as Segment sends it: the fields the SDK collects, and any others. */
export interface EventContext {
  /** In a call's options, `null` removes a field the SDK collected. */
  page?: { url?: string | null; path?: string | null; title?: string | null; referrer?: string | null; search?: string | null; [key: string]: unknown };
  campaign?: { name?: string | null; source?: string | null; medium?: string | null; term?: string | null; content?: string | null; [key: string]: unknown };
  userAgent?: string;
  locale?: string;
  timezone?: string;
  screen?: { width?: number; height?: number; density?: number };
  library?: { name?: string; version?: string };
  [key: string]: unknown;
}

/** The event a middleware gets: `obj`, and analytics.js's Facade readers of it. */
export interface MiddlewarePayload {
  obj: MiddlewareEvent;
  type(): MiddlewareEvent['type'];
  event(): string | undefined;
  name(): string | null | undefined;
  category(): string | null | undefined;
  properties(): Properties | undefined;
  traits(): Properties | undefined;
  userId(): string | null;
  anonymousId(): string;
  groupId(): string | undefined;
  messageId(): string;
  timestamp(): Date;
  context(): EventContext;
  integrations(): Record<string, unknown>;
  rawEvent(): MiddlewareEvent;
}

export type SourceMiddleware = (args: {
  payload: MiddlewarePayload;
  /** Passes the event on (as it is, without an argument); not calling it drops the event. */
  next: (payload?: { obj: MiddlewareEvent } | null) => void;
  integrations: Record<string, unknown>;
}) => void;

export type EventName = 'page' | 'screen' | 'track' | 'identify' | 'group' | 'alias' | 'reset' | 'error' | 'ready' | 'interests';

/** A topic of the Topics API taxonomy v2 with a score (`name` and `path` once the model is loaded). */
export interface Topic {
  id: number;
  name?: string;
  path?: string;
  score: number;
}

/** The calls answer the API, so that they chain (`portrait.track(…).track(…)`), as the
 * snippet's stub and analytics.js's do. */
export interface Portrait {
  load(writeKey: string, options?: LoadOptions): Portrait;
  /** As in analytics.js, the callback may come after any argument (the first function is
   * the callback; the arguments after it are not read). A `null` after the name stands for
   * the properties: `page('Docs', null, options)`. */
  page(category?: string, name?: string, properties?: Properties | null | Callback, options?: CallOptions | Callback, callback?: Callback): Portrait;
  page(name?: string, properties?: Properties | null | Callback, options?: CallOptions | Callback, callback?: Callback): Portrait;
  page(properties?: Properties | Callback, options?: CallOptions | Callback, callback?: Callback): Portrait;
  /** analytics-next's `screen`, for code shared with a mobile app; arguments as `page`'s. */
  screen(category?: string, name?: string, properties?: Properties | null | Callback, options?: CallOptions | Callback, callback?: Callback): Portrait;
  screen(name?: string, properties?: Properties | null | Callback, options?: CallOptions | Callback, callback?: Callback): Portrait;
  screen(properties?: Properties | Callback, options?: CallOptions | Callback, callback?: Callback): Portrait;
  track(event: string, properties?: Properties | Callback, options?: CallOptions | Callback, callback?: Callback): Portrait;
  /** analytics-next's event object. */
  track(event: { event: string; properties?: Properties }, options?: CallOptions | Callback, callback?: Callback): Portrait;
  /** analytics-next's deprecated `page({path: url})`. */
  pageview(url: string): Portrait;
  /** analytics-next's plugins and destination middleware: Portrait has no destinations, so
   * these do nothing and report so on `on('error')`; settled at once, they chain. */
  register(...plugins: unknown[]): Promise<void> & Portrait;
  deregister(...plugins: unknown[]): Promise<void> & Portrait;
  addDestinationMiddleware(integration: string, ...middleware: unknown[]): Promise<void> & Portrait;
  addIntegrationMiddleware(middleware: unknown): Promise<void> & Portrait;
  identify(userId?: string | null, traits?: Properties | Callback, options?: CallOptions | Callback, callback?: Callback): Portrait;
  identify(traits: Properties, options?: CallOptions | Callback, callback?: Callback): Portrait;
  /** The stored group. */
  group(): Group;
  /** Traits merge into the stored group's (another group's replace them); without a
   * `groupId`, the stored group's. */
  group(groupId: string | null | undefined, traits?: Properties | Callback, options?: CallOptions | Callback, callback?: Callback): Portrait;
  group(traits: Properties, options?: CallOptions | Callback, callback?: Callback): Portrait;
  alias(userId: string, previousId?: string | null, options?: CallOptions | Callback, callback?: Callback): Portrait;
  alias(userId: string, options?: CallOptions | Callback, callback?: Callback): Portrait;
  reset(): Portrait;
  /** The visitor's anonymous id from now on (stitching a site's domains). */
  setAnonymousId(anonymousId: string): Portrait;
  /** The visitor's anonymous id, as `user().anonymousId`. */
  setAnonymousId(): string | null;
  /** `track(event, properties)` on each click (`trackLink`) or submit (`trackForm`) of the
   * elements; `event` and `properties` may be functions of the element. */
  trackLink(elements: Element | ArrayLike<Element> | null, event: string | ((element: Element) => string), properties?: Properties | ((element: Element) => Properties)): Portrait;
  trackForm(elements: Element | ArrayLike<Element> | null, event: string | ((element: Element) => string), properties?: Properties | ((element: Element) => Properties)): Portrait;
  /** analytics.js's other names for `trackLink` and `trackForm`. */
  trackClick: Portrait['trackLink'];
  trackSubmit: Portrait['trackForm'];
  /** Resolves `true` once everything queued when it was called was delivered (events captured
   * after it do not hold it), `false` at the first failure, while a backoff runs, when a
   * refusal of consent drops what it waits for, when the SDK failed to load, or outside a
   * browser (called before `load`, it waits for it). */
  flush(): Promise<boolean>;
  /** Settles once the SDK is ready and `callback` has run (analytics-next's); never where the
   * SDK cannot load. It carries the API's calls too, so that it chains. */
  ready(callback?: () => void): Promise<void> & Portrait;
  user(): User;
  consent: {
    /** One decision for both categories (`set(false)` refuses all), or each its own. */
    set(changes: Decision | { analytics?: Decision; personalization?: Decision }): Portrait;
    get(): { analytics: string; personalization: string } | null;
  };
  /** As in analytics.js, a `track`/`page`/`identify`/`group`/`alias` listener gets the
   * call's arguments (track: event, properties, options; page: category, name, properties,
   * options; …), then `{messageId}`; other events get one detail. */
  on(name: EventName, listener: (...args: any[]) => void): Portrait;
  /** Without a listener, every listener of `name`. */
  off(name: EventName, listener?: (...args: any[]) => void): Portrait;
  /** analytics-next's source middleware: each event (autocaptured ones too) as `payload.obj`
   * before it is recorded; `next(payload)` passes it on, not calling `next` drops it. Read
   * back: `event`, `name`, `category`, `properties`, `traits`, `userId`, `anonymousId`,
   * `groupId`, `previousId`, `messageId`, `timestamp` and `context` (the whole context). */
  addSourceMiddleware(middleware: SourceMiddleware): Portrait;
  /** `on`, for the first time only. */
  once(name: EventName, listener: (...args: any[]) => void): Portrait;
  /** `debug()` turns it on, as analytics.js's does. */
  debug(on?: boolean): Portrait;
  stats(): Stats | null;
  /** The visitor's top interests, best first, decayed to now (empty when personalisation is
   * denied, and until the interest module has loaded after `ready`: `on('interests', …)` fires
   * when it has). */
  interests(options?: { limit?: number }): Topic[];
  /** What the current page is about; `refresh` reads the page again. */
  pageTopics(options?: { refresh?: boolean }): Topic[];
}

export declare const portrait: Portrait;
export default portrait;
export declare const load: Portrait['load'], page: Portrait['page'], track: Portrait['track'],
  identify: Portrait['identify'], group: Portrait['group'], alias: Portrait['alias'],
  reset: Portrait['reset'], flush: Portrait['flush'], ready: Portrait['ready'], user: Portrait['user'],
  consent: Portrait['consent'], on: Portrait['on'], off: Portrait['off'], debug: Portrait['debug'],
  stats: Portrait['stats'], interests: Portrait['interests'], pageTopics: Portrait['pageTopics'],
  once: Portrait['once'], setAnonymousId: Portrait['setAnonymousId'], trackLink: Portrait['trackLink'],
  trackForm: Portrait['trackForm'], trackClick: Portrait['trackClick'], trackSubmit: Portrait['trackSubmit'], screen: Portrait['screen'], addSourceMiddleware: Portrait['addSourceMiddleware'];
