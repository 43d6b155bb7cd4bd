//! Portrait's browser SDK: the DOM, storage and network around `portrait-core`'s client
//! rules ([`portrait_core::client`]), exported to JavaScript with wasm-bindgen.
//!
//! The pipeline, as in Segment's analytics-next: **capture** (an API call or autocapture) →
//! **enrich** (ids, time, page context, session, campaign) → the page's source middleware, if
//! it has any ([`middleware`]) → **gate** (consent) → **queue**
//! (persisted, bounded) → **send** (batched beacons; when the page is hidden, keepalive
//! `fetch`, with `sendBeacon` where the browser refuses it).
//!
//! JavaScript sees one class, [`Sdk`]; `sdk/js/` wraps it in the analytics.js-shaped API
//! (argument shuffling, `ready`, `on`/`off`) and never lets an error reach the host page.
//!
//! Re-entrancy: every entry point borrows the state once; callbacks into the page (`emit`)
//! run only after that borrow ends, so a listener may call the SDK again.

/// Power-of-two blocks instead of dlmalloc: 2 KB less to download (`portrait_sdk_alloc`).
#[cfg(target_arch = "wasm32")]
#[global_allocator]
static ALLOCATOR: portrait_sdk_alloc::Pow2<portrait_sdk_alloc::WasmMemory> = portrait_sdk_alloc::Pow2::new();

mod autocapture;
mod call_options;
mod convert;
mod dom;
mod interests;
mod middleware;
mod page;
mod party;
mod storage;
mod transport;

use std::cell::RefCell;
use std::rc::Rc;

use js_sys::{Function, Promise};
use portrait_core::client::concat;
use portrait_core::client::consent::{
    CATEGORIES, CONSENT_EVENT, Choices, Consent, Decision, Gate, PrivacySignals,
};
use portrait_core::client::queue::{Adoption, Limits, MAX_RETRY_AFTER_MS, ORPHAN_AFTER_MS, Outgoing, Queue};
use portrait_core::client::session::{Session, Visit};
use portrait_core::config::Autocapture;
use portrait_core::limits::MAX_BATCH_EVENTS;
use portrait_core::record::{Call, MAX_RECORD_BYTES, Record, Tokens};
use portrait_core::topics::interests::{ENGAGED_EVENT, SENT_TAGS, SENT_TOPICS};
use wasm_bindgen::prelude::*;

use crate::autocapture::Autocaptured;
use crate::call_options::CallOptions;
use crate::convert::{MOST_PRIVATE, Props, Unreadable, bool_field, field, id_text, string_field};
use crate::party::Party;
use crate::storage::{Cookies, Mode, Store};
use crate::transport::Outcome;

/// Batches sent at once while the page is visible; the rest wait their turn.
const MAX_IN_FLIGHT: usize = 4;
/// The largest `sendBeacon` payload: several fit in the browser's 64 KiB keepalive quota.
const HIDDEN_PAYLOAD_BYTES: usize = 16 * 1024;
/// Persisting is coalesced: at most once per this delay, and at once when the page hides.
const PERSIST_DELAY_MS: i32 = 1_000;
/// How long an automatic page view waits for the site's own `page()` call, which takes its
/// place (a site moving from analytics.js calls `page()` on load and in its router).
pub(crate) const AUTO_VIEW_GRACE_MS: i32 = 1_000;
/// Chromium refuses keepalive requests (and `sendBeacon`) past 64 KiB in flight: the hide's
/// own sends may take all of it (they come first, and the page may be going).
const KEEPALIVE_QUOTA_BYTES: usize = 64 * 1024;
/// The keepalive bytes a hidden page's later sends may have in flight.
const KEEPALIVE_BUDGET_BYTES: usize = 32 * 1024;
/// How often a long backoff wakes to store the queue again (under `ORPHAN_AFTER_MS`).
const BACKOFF_WAKE_MS: i64 = 60_000;
/// The shortest gap between two writes of the queue for events captured in a hidden tab.
const HIDDEN_PERSIST_GAP_MS: i64 = 100;
/// How many times a page already left sends the events captured since (see `enqueue`).
const MAX_SENDS_AFTER_CLOSE: u32 = 8;
/// What the SDK reports for an event it refuses before queueing: larger than the collector
/// keeps (queued, it could push older events out), or with properties or traits it stopped
/// reading ([`Props::is_cut`]).
const TOO_LARGE: &str = "an event larger than the collector keeps (32 KB as JSON), or with a value that is no data (a DOM node, a browser event, window), was not sent";
/// What `identify` and `group` report when their traits cannot be kept.
const TRAITS_NOT_KEPT: &str = "traits must be an object that JSON can write, all of them kept at most 16 KB as JSON; these were not kept";
/// How long a page goes without events before it reads the session its site's other tabs
/// stored.
const SESSION_SYNC_MS: i64 = 60_000;
/// Keys that also live in cookies: the ids, which the site's other subdomains then know too,
/// and the visit ([`Visit`]) they share.
const COOKIE_KEYS: [&str; 4] = ["aid", party::USER[0], party::GROUP[0], VISIT];
/// The store's key of the visit cookie ([`State::share_visit`]).
const VISIT: &str = "visit";
/// The keys of what each origin stores of the visit: the session, its channel and campaign,
/// and the first touch. They belong to the anonymous id they are stored with.
const VISIT_KEYS: [&str; 4] = ["session", "channel", "campaign", "first"];
/// The keys that say who the visitor is, which a page reads again when another tab changes
/// them (`visitor_stored_elsewhere`): the anonymous id with what is stored with it (the user's
/// and group's ids and traits are followed on their own).
const VISITOR_KEYS: [&str; 7] = [
    "aid",
    VISIT_KEYS[0],
    VISIT_KEYS[1],
    VISIT_KEYS[2],
    VISIT_KEYS[3],
    interests::STORED_KEYS[0],
    interests::STORED_KEYS[1],
];

/// The SDK's settings, from `load`'s options over the collector's remote settings.
struct Options {
    beacon_url: String,
    batch_events: usize,
    batch_bytes: usize,
    flush_interval_ms: i32,
    autocapture: Autocapture,
}

/// What the SDK counts about itself (`stats()`): the reconciliation figures.
#[derive(Default)]
struct Stats {
    captured: u32,
    delivered: u32,
    refused: u32,
    retries: u32,
    denied: u32,
    errors: u32,
}

pub(crate) struct State {
    options: Options,
    /// What the page passed to `load`, for settings that come late ([`Sdk::late_settings`]).
    load_options: JsValue,
    store: Store,
    /// The consent the SDK works under: the visitor's `choices` over `consent_default`.
    consent: Consent,
    /// What the visitor decided (stored; other tabs follow it).
    choices: Choices,
    /// The consent of what the visitor never decided: the page's options, the collector's
    /// settings and the browser's signals ([`Consent::by_default`]).
    consent_default: Consent,
    queue: Queue,
    /// Events captured while consent is pending: memory only, bounded like the queue.
    held: Queue,
    /// Whether a refused storage write was reported (once per page).
    storage_refused: bool,
    anonymous_id: String,
    user: Party,
    group: Party,
    session: Session,
    page: page::PageState,
    /// This page's key for its stored queue (`q.<id>`).
    queue_key: String,
    flush_timer: bool,
    /// A send of full batches is scheduled for the end of the current task.
    send_soon: bool,
    /// Set on `pagehide`, cleared on `pageshow`: stored queues say whether their page is gone.
    closed: bool,
    /// Sends made for events captured after the page was left ([`MAX_SENDS_AFTER_CLOSE`]).
    sends_after_close: u32,
    /// Bytes of keepalive requests in flight (see [`KEEPALIVE_BUDGET_BYTES`]).
    keepalive_bytes: usize,
    /// When the queue was last stored (an event in a hidden tab stores it again soon).
    persisted_at: i64,
    /// Set when the page is hidden (or left), cleared when it is visible again.
    hidden: bool,
    /// What was in flight went again in keepalive requests since the page was last visible
    /// (or it was sent hidden, in them): a second hide sends only what waits. Not merely
    /// hidden: a hide during a backoff sends nothing, and the close after it must reseal.
    resealed: bool,
    /// The time of this page's automatic view while it waits out [`AUTO_VIEW_GRACE_MS`]
    /// (`None` once captured, or taken by the site's `page()`).
    auto_view_at: Option<i64>,
    /// The time of the last event captured.
    last_captured_at: i64,
    persist_timer: bool,
    /// When the backoff after a failed send ends (ms since the epoch); nothing is sent before.
    backoff_until: i64,
    /// When the collector's last `Retry-After` ends: stored (`retry_at`), so that the site's
    /// next pages wait too, and a page being closed sends nothing before it (its queue is
    /// stored for them). The backoff after a network error does not hold a closing page.
    retry_after_until: i64,
    /// Set by `flush()` and the interval timer: send even partial batches until none waits.
    draining: bool,
    /// A look at the other pages' stored queues is scheduled ([`State::adopt_stored_queues`]).
    adoption_due: bool,
    /// The anonymous id this page's last `reset()` forgot: never taken back from another tab
    /// (one that held it while nothing could be stored, and stored it on a grant).
    forgotten_id: Option<String>,
    /// The anonymous id the site's tabs had stored when this page was last left (`pagehide`):
    /// back from the back/forward cache, another id stored, or none, means a `reset()` or a
    /// refusal happened meanwhile, which no `storage` event told this page.
    stored_id_when_left: Option<String>,
    /// Each `flush()`'s resolve, with the queue's mark when it was called.
    flush_waiters: Vec<(Function, u64)>,
    emit: Function,
    emits: Vec<(&'static str, JsValue)>,
    /// Whether the page listens to `page`/`track`/… events: if not, none are built.
    call_listeners: bool,
    /// The events the page's source middleware has ([`middleware`]).
    middleware: middleware::Middleware,
    debug: bool,
    stats: Stats,
    ids: page::Ids,
    limits: Limits,
    me: std::rc::Weak<RefCell<State>>,
    /// The interest module, once the loader has started it (after `ready`).
    interests: Option<interests::InterestModule>,
    /// Whether the collector may hold events of this visitor: this page sent some, or an
    /// earlier one stored the visitor's id (stored only while events could be sent).
    collector_may_know: bool,
    /// While the collector's settings are late: the events autocapture made meanwhile
    /// ([`State::autocaptured`]).
    late_autocapture: Option<Vec<(Autocaptured, String)>>,
}

/// The SDK instance JavaScript holds.
#[wasm_bindgen]
pub struct Sdk {
    state: Rc<RefCell<State>>,
}

#[wasm_bindgen]
impl Sdk {
    /// `options`: what the page passed to `load`; `remote`: the collector's
    /// `/v1/config/{writeKey}` answer (or `undefined`); `emit(name, detail)`: how the SDK
    /// reports events and errors to the page.
    #[wasm_bindgen(constructor)]
    pub fn new(write_key: &str, options: JsValue, remote: JsValue, emit: Function) -> Sdk {
        dom::report_traps(&emit);
        let endpoint = string_field(&[&options], "endpoint").unwrap_or_default();
        let autocapture_remote = field(&remote, "autocapture");
        // Options stated with values the SDK cannot read, reported once it runs. A misspelt
        // privacy option is read as its most private value, never as the default (a site that
        // wrote `storage: "cookieless"` meant no cookies); a number that is none, as the
        // default (`NaN` would make a queue of one event).
        let mut unreadable: Vec<Unreadable> = Vec::new();
        let mut number = |key| convert::number_option(&options, key, &mut unreadable);
        let batch_events = number("batchSize").map_or(20, |n| n.clamp(1.0, 500.0) as usize);
        let batch_bytes = number("batchBytes").map_or(32_768, |n| n.clamp(1_024.0, 400_000.0) as usize);
        let flush_interval_ms = number("flushInterval").map_or(5_000, |n| n.clamp(0.0, 600_000.0) as i32);
        // A fraction of a day is kept as seconds (`0.5` must not become `Max-Age=0`, which
        // deletes the cookie); at least a minute.
        let cookie_seconds = number("cookieDays")
            .map_or(365 * 86_400, |days| (days * 86_400.0).clamp(60.0, 3_650.0 * 86_400.0) as u32);
        let limits = Limits {
            max_events: number("maxQueueEvents").map_or(1_000, |n| n.max(1.0) as usize),
            max_bytes: number("maxQueueBytes").map_or(1_000_000, |n| n.max(1_024.0) as usize),
        };
        let opts = Options {
            beacon_url: concat(&[endpoint.trim_end_matches('/'), "/v1/b?k=", write_key]),
            batch_events,
            batch_bytes,
            flush_interval_ms,
            autocapture: autocapture::read_switches(
                &field(&options, "autocapture"),
                &autocapture_remote,
                &mut unreadable,
            ),
        };
        let mode = match convert::stated_field(&options, "storage") {
            None => Mode::CookieAndLocal,
            Some(m) => m.as_string().and_then(|m| Mode::parse(&m)).unwrap_or_else(|| {
                unreadable.push(("storage".to_owned(), MOST_PRIVATE));
                Mode::Memory
            }),
        };
        // `auto` (what the documentation calls the default) or empty: detected.
        let cookie_domain = string_field(&[&options], "cookieDomain")
            .filter(|domain| !domain.is_empty() && !domain.eq_ignore_ascii_case("auto"));
        let mut store = Store::new(mode, cookie_domain, cookie_seconds, false);
        let consent_default = default_consent(&options, &remote, &mut unreadable);
        let choices = store.get("consent").and_then(|text| Choices::from_storage(&text)).unwrap_or_default();
        let consent = choices.over(consent_default);
        store_as_consented(&mut store, &consent);
        let mut ids = page::Ids::new();
        // Ids stored by earlier pages (ours, or Segment's, whose server library may have sent
        // to this collector): stored only while events could be sent.
        let stored_id = store.get_id("aid").or_else(|| store.segment_id("ajs_anonymous_id")).is_some();
        let (anonymous_id, user, group) = party::load_visitor(&mut store, || ids.uuid());
        let collector_may_know = stored_id || user.id.is_some();
        let queue_key = concat(&[storage::QUEUE_PREFIX, &ids.uuid()]);
        // A tab opened in the background: hidden, and nothing of it sent in plain requests.
        let hidden = dom::page_hidden();
        let state = Rc::new_cyclic(|me| {
            RefCell::new(State {
                me: me.clone(),
                user,
                group,
                session: store.get("session").and_then(|s| Session::from_storage(&s)).unwrap_or_default(),
                page: page::PageState::default(),
                options: opts,
                store,
                consent,
                choices,
                consent_default,
                queue: Queue::new(limits),
                held: Queue::new(limits),
                storage_refused: false,
                anonymous_id,
                queue_key,
                flush_timer: false,
                send_soon: false,
                closed: false,
                sends_after_close: 0,
                keepalive_bytes: 0,
                persisted_at: 0,
                hidden,
                resealed: hidden,
                auto_view_at: None,
                last_captured_at: 0,
                persist_timer: false,
                backoff_until: 0,
                retry_after_until: 0,
                draining: false,
                adoption_due: false,
                forgotten_id: None,
                stored_id_when_left: None,
                flush_waiters: Vec::new(),
                emit,
                emits: Vec::new(),
                call_listeners: false,
                middleware: middleware::Middleware::default(),
                debug: bool_field(&[&options], "debug").unwrap_or(false),
                load_options: options,
                stats: Stats::default(),
                ids,
                limits,
                interests: None,
                collector_may_know,
                late_autocapture: bool_field(&[&remote], "late").unwrap_or(false).then(Vec::new),
            })
        });
        // The site's cookies once the ids are stored: they serve the start's visit, followed
        // and shared (which reads only the `aid` cookie from them: nothing in between writes it).
        let cookies = {
            let mut state = state.borrow_mut();
            let cookies = state.store.cookies_now();
            state.follow_shared_visit(&cookies);
            state.adopt_stored_queues();
            state.report_unreadable(unreadable);
            cookies
        };
        let sdk = Sdk { state };
        autocapture::install(&sdk.state);
        sdk.run(|state, now| {
            state.page.enter(
                now,
                page::Arrival::Landing,
                &mut state.session,
                &mut state.store,
                state.options.autocapture.campaigns,
            );
            state.store.set("session", &state.session.to_storage(), false);
            state.share_visit(&cookies);
            state.begin_auto_view(now);
            state.wait_for_stored_retry_after(now);
            state.send_ready(now);
            state.timer(0, |state, _| page::resolve_timezone(&mut state.page, &mut state.store));
        });
        sdk
    }

    /// The collector's settings (or `undefined` if they failed), when they came after the
    /// SDK started without them: the loader then started it with consent pending. The
    /// default they imply takes its place for what the visitor has not decided, unless the
    /// page's options decided it; their autocapture switches apply at once
    /// ([`State::follow_late_switches`]).
    #[wasm_bindgen(js_name = lateSettings)]
    pub fn late_settings(&self, remote: JsValue) {
        self.run(|state, now| {
            let local = field(&state.load_options, "autocapture");
            let mut unreadable = Vec::new();
            let switches =
                autocapture::read_switches(&local, &field(&remote, "autocapture"), &mut unreadable);
            state.follow_late_switches(switches);
            state.consent_default = default_consent(&state.load_options, &remote, &mut unreadable);
            // The page's own options were read, and reported, when the SDK started.
            unreadable.retain(|(option, _)| option == "consent_default");
            state.report_unreadable(unreadable);
            state.follow_choices(now);
        });
    }

    /// `page(category?, name?, properties?, options?)`: `undefined` for what is absent (the
    /// options: [`CallOptions`], here and in every call).
    pub fn page(&self, category: JsValue, name: JsValue, properties: JsValue, options: JsValue) {
        self.run(|state, now| {
            // The site's own view of this page: the automatic one is not sent.
            state.auto_view_at = None;
            let (category, name) = (category.as_string(), name.as_string());
            if !state.names_fit(&[category.as_deref(), name.as_deref()]) {
                return;
            }
            let Some(mut props) = state.whole(Props::from_object(&properties)) else { return };
            state.page.properties(&mut props, name.as_deref(), category.as_deref());
            let call = Call::Page { category: category.as_deref(), name: name.as_deref() };
            state.capture(now, call, &props.tokens, &Tokens::default(), &CallOptions::read(&options));
        });
    }

    /// `screen(category?, name?, properties?)`, analytics-next's view of an app's screen (for
    /// code shared with a mobile app): the name and category in the properties, as `page`'s.
    pub fn screen(&self, category: JsValue, name: JsValue, properties: JsValue, options: JsValue) {
        self.run(|state, now| {
            let (category, name) = (category.as_string(), name.as_string());
            // The category is only a property of a screen: a property's limit holds for it.
            if !state.names_fit(&[name.as_deref()]) {
                return;
            }
            let Some(mut props) = state.whole(Props::from_object(&properties)) else { return };
            page::name_and_category(&mut props, name.as_deref(), category.as_deref());
            let options = CallOptions::read(&options);
            state.capture(now, Call::Screen(name.as_deref()), &props.tokens, &Tokens::default(), &options);
        });
    }

    pub fn track(&self, event: &str, properties: JsValue, options: JsValue) {
        self.run(|state, now| {
            if event.is_empty() {
                return state.refuse_call("track() needs an event name", JsValue::UNDEFINED);
            }
            if !state.names_fit(&[Some(event)]) {
                return;
            }
            let Some(props) = state.whole(Props::from_object(&properties)) else { return };
            let options = CallOptions::read(&options);
            state.capture(now, Call::Track(event), &props.tokens, &Tokens::default(), &options);
        });
    }

    /// `identify(userId?, traits?)`: stores the user id and merges the traits into the
    /// user's (another user's replace them, as analytics.js does); the event carries the
    /// user's traits, merged, as analytics.js sends them.
    pub fn identify(&self, user_id: JsValue, traits: JsValue, options: JsValue) {
        self.run(|state, now| {
            let user_id = id_text(&user_id);
            if user_id.as_deref().is_some_and(|id| !state.accepts_id(id)) {
                return;
            }
            // The automatic view keeps waiting: a site's `identify(); page()` counts one view.
            if !state.user.update(&mut state.store, user_id, &traits) {
                state.error(TRAITS_NOT_KEPT, traits.clone());
            }
            let traits = Props::from_object(&state.user.traits);
            state.capture(
                now,
                Call::Identify,
                &Tokens::default(),
                &traits.tokens,
                &CallOptions::read(&options),
            );
        });
    }

    /// `group(groupId?, traits?)`: as `identify`, for the visitor's group (without an id,
    /// the stored group's).
    pub fn group(&self, group_id: JsValue, traits: JsValue, options: JsValue) {
        self.run(|state, now| {
            let Some(id) = id_text(&group_id).or_else(|| state.group.id.clone()) else {
                return state.error("group() needs a group id", JsValue::UNDEFINED);
            };
            if !state.accepts_id(&id) {
                return;
            }
            if !state.group.update(&mut state.store, Some(id.clone()), &traits) {
                state.error(TRAITS_NOT_KEPT, traits.clone());
            }
            let traits = Props::from_object(&state.group.traits);
            state.capture(
                now,
                Call::Group(&id),
                &Tokens::default(),
                &traits.tokens,
                &CallOptions::read(&options),
            );
        });
    }

    /// `alias(userId, previousId?)`: `previousId` defaults to the current user or anonymous
    /// id. As in analytics.js, the current user does not change (`identify` does that).
    pub fn alias(&self, user_id: JsValue, previous_id: JsValue, options: JsValue) {
        self.run(|state, now| {
            let Some(user_id) = id_text(&user_id) else {
                return state.error("alias() needs a user id", JsValue::UNDEFINED);
            };
            let previous_id = id_text(&previous_id)
                .unwrap_or_else(|| state.user.id.clone().unwrap_or_else(|| state.anonymous_id.clone()));
            if !(state.accepts_id(&user_id) && state.accepts_id(&previous_id)) {
                return;
            }
            // The event's userId is the alias; the user stays who they were.
            let current = state.user.id.replace(user_id);
            let (empty, options) = (Tokens::default(), CallOptions::read(&options));
            state.capture(now, Call::Alias(&previous_id), &empty, &empty, &options);
            state.user.id = current;
        });
    }

    /// `setAnonymousId(id)`: the visitor's anonymous id from now on (a site stitching its
    /// domains passes the one it had), stored like the one the SDK made.
    #[wasm_bindgen(js_name = setAnonymousId)]
    pub fn set_anonymous_id(&self, id: JsValue) {
        self.run(|state, _| {
            let Some(id) = id_text(&id) else {
                return state.error("setAnonymousId() needs an id", JsValue::UNDEFINED);
            };
            if !state.accepts_id(&id) {
                return;
            }
            // A site may pass its id with every call (the `anonymousId` option): stored once.
            // (An automatic page view still waiting goes with the new id, as analytics.js
            // would send it: a site stitching its domains sets the id before anything.)
            if id == state.anonymous_id {
                return;
            }
            state.store.set("aid", &id, true);
            state.anonymous_id = id;
        });
    }

    /// Forgets the visitor: user and group cleared, a new anonymous id and session. Their
    /// stored ids go even while consent keeps the new ones in memory (`Store::remove`).
    pub fn reset(&self) {
        self.run(|state, now| {
            // The page was seen by the visitor being forgotten (so a site's `reset(); page()`
            // within the automatic view's wait counts a view for each visitor), and so was
            // their attention to it so far: theirs, credited to them.
            state.capture_auto_view();
            autocapture::report_engagement(state, now, true);
            state.store.forget_everywhere(|store| {
                state.user.forget(store);
                state.group.forget(store);
                store.remove("aid", true);
                store.remove(VISIT, true);
                store.forget_segment_ids();
                interests::forget_stored(store);
                state.page.forget_visitor(store);
                // A session of the new visitor's own, begun now: an older one another tab
                // stored (the forgotten visitor's) is never followed. Stored before the new
                // id: the site's other tabs follow the id (`visitor_stored_elsewhere`) and
                // find it.
                state.session = Session::first(now);
                store.replace("session", &state.session.to_storage());
            });
            interests::forget_in_module(state);
            let id = state.ids.uuid();
            state.forgotten_id = Some(std::mem::replace(&mut state.anonymous_id, id.clone()));
            state.store.set("aid", &id, true);
            // The new visitor's events have not reached it.
            state.collector_may_know = false;
        });
    }

    /// Sends everything queued now; resolves with `true` once all of it was delivered, or
    /// `false` at the first failure (the events stay queued and are retried) or refusal.
    pub fn flush(&self) -> Promise {
        let mut resolve = None;
        let promise = Promise::new(&mut |done, _| resolve = Some(done));
        // Two steps: the page's middleware has the automatic view in between.
        self.run(|state, _| state.capture_auto_view());
        self.run(|state, now| {
            state.draining = true;
            // The last send failed and nothing leaves before the backoff ends (a `Retry-After`
            // may ask for an hour), or consent went back to pending with events queued: this
            // call's answer is `false` now (an earlier one waits on for batches in flight).
            let held_back =
                state.consent.gate() == Gate::Hold && !(state.queue.is_empty() && state.held.is_empty());
            if now < state.backoff_until || held_back {
                return;
            }
            let mark = state.queue.pushed();
            state.flush_waiters.extend(resolve.take().map(|resolve| (resolve, mark)));
            state.send_ready(now);
            state.settle_waiters();
        });
        // Not waiting: answered `false` now, held back (above) or by a state that a trap left
        // borrowed for good, which runs no call (a promise that never settles would hang
        // the page's `await`).
        if let Some(resolve) = resolve {
            let _ = resolve.call1(&JsValue::NULL, &false.into());
        }
        promise
    }

    /// What the loader passes to the interest module's constructor:
    /// `{personalize, stored: {interests, tags}}`.
    #[wasm_bindgen(js_name = interestHost)]
    pub fn interest_host(&self) -> JsValue {
        self.read(&mut |state| interests::host(state))
    }

    /// The interest module's instance (`sdk/interests`): from now on page views, engagement
    /// reports, `reset()` and consent changes reach it.
    #[wasm_bindgen(js_name = setInterests)]
    pub fn set_interests(&self, module: interests::InterestModule) {
        let mut module = Some(module);
        self.run(|state, _| state.interests = module.take());
    }

    /// `{anonymousId, userId, traits}`.
    pub fn user(&self) -> JsValue {
        self.read(&mut |state| {
            let user = state.user.to_js("userId");
            let _ = js_sys::Reflect::set(&user, &"anonymousId".into(), &state.anonymous_id.as_str().into());
            user.into()
        })
    }

    /// `{groupId, traits}`: the visitor's group, as `group()` stored it.
    #[wasm_bindgen(js_name = groupInfo)]
    pub fn group_info(&self) -> JsValue {
        self.read(&mut |state| state.group.to_js("groupId").into())
    }

    /// `consent.set({analytics, personalization})`: each `true`/`false` or
    /// `"granted"`/`"denied"`/`"pending"`.
    #[wasm_bindgen(js_name = setConsent)]
    pub fn set_consent(&self, changes: JsValue) {
        self.run(|state, now| state.set_consent(now, &changes));
    }

    /// The current consent, `{analytics, personalization}`.
    pub fn consent(&self) -> JsValue {
        self.read(&mut |state| {
            let consent = js_sys::Object::new();
            let _ =
                js_sys::Reflect::set(&consent, &"analytics".into(), &state.consent.analytics.as_str().into());
            let _ = js_sys::Reflect::set(
                &consent,
                &"personalization".into(),
                &state.consent.personalization.as_str().into(),
            );
            consent.into()
        })
    }

    /// Whether the page listens to the call events (`on('track', …)` and the like).
    #[wasm_bindgen(js_name = setCallListeners)]
    pub fn set_call_listeners(&self, on: bool) {
        self.run(|state, _| state.call_listeners = on);
    }

    /// Whether the page has source middleware: from now on every event goes through it.
    #[wasm_bindgen(js_name = setMiddleware)]
    pub fn set_middleware(&self, on: bool) {
        middleware::set_active(on);
    }

    /// An event the page's middleware passed on ([`middleware`]): recorded as it now is
    /// (`context_changed`: whether its context is no longer the one it was given).
    pub fn resume(&self, event: JsValue, context_changed: bool) {
        self.run(|state, now| {
            let returned = middleware::Returned::read(&event, context_changed);
            let Some(call) = returned.call() else {
                return state.error("the middleware passed on an event that cannot be sent", event.clone());
            };
            let options = &returned.options;
            let mut errors = Vec::new();
            let message_id = options.message_id(&mut errors).unwrap_or_else(|| state.ids.uuid());
            let awaited = state.middleware.take(&message_id);
            // Captured, as it would have been had the middleware passed it on sooner, and
            // taken off by late settings then.
            if awaited.as_ref().is_some_and(|awaited| awaited.withdrawn) {
                state.stats.captured += 1;
                state.stats.denied += 1;
                return;
            }
            if returned.properties.is_cut() || returned.traits.is_cut() {
                return state.refuse_unread();
            }
            let (captured_at, block) = match &awaited {
                Some(awaited) => (awaited.at, &awaited.context),
                None => (now, state.page.context(&state.session)),
            };
            let at = options.time_or(captured_at, now, &mut errors);
            let context = options.context(block, &mut errors);
            // An id the collector would refuse: the visitor's own instead.
            let anonymous_id =
                returned.anonymous_id.as_deref().and_then(|id| call_options::checked_id(id, &mut errors));
            let user_id = match returned.user_id.as_deref() {
                Some(id) => call_options::checked_id(id, &mut errors).or(state.user.id.as_deref()),
                None => None,
            };
            let identity = (Some(anonymous_id.unwrap_or(&state.anonymous_id)), user_id);
            let (properties, traits) = (&returned.properties.tokens, &returned.traits.tokens);
            let record = Record::new(&call, &message_id, Some(at), identity, &context, properties, traits);
            state.report_all(errors);
            state.enqueue(now, &call, &message_id, record);
        });
    }

    pub fn debug(&self, on: bool) {
        self.run(|state, _| state.debug = on);
    }

    /// Whether a call holds the state now: a call made from inside it (a getter among its
    /// arguments) must wait for it (`api.js`), or it would be dropped.
    pub fn busy(&self) -> bool {
        self.state.try_borrow_mut().is_err()
    }

    /// The SDK's own counters: what it captured, delivered, refused, retried, and what it
    /// holds. The reconciliation checks compare these with what the collector stored.
    pub fn stats(&self) -> JsValue {
        self.read(&mut |state| {
            let stats = js_sys::Object::new();
            let s = &state.stats;
            let pairs = [
                ("captured", s.captured),
                ("delivered", s.delivered),
                ("refused", s.refused),
                ("retries", s.retries),
                ("denied", s.denied),
                ("errors", s.errors),
                ("queued", state.queue.len() as u32),
                ("held", state.held.len() as u32),
            ];
            for (key, value) in pairs {
                let _ = js_sys::Reflect::set(&stats, &key.into(), &value.into());
            }
            stats.into()
        })
    }
}

impl Sdk {
    fn run(&self, mut work: impl FnMut(&mut State, i64)) {
        run(&self.state, &mut work);
    }

    /// `work`'s answer from the state, or `undefined` while a call holds it: a getter or
    /// `toJSON` among that call's arguments may read the SDK, and a second borrow would
    /// panic, which ends the module.
    fn read(&self, work: &mut dyn FnMut(&State) -> JsValue) -> JsValue {
        self.state.try_borrow().map_or(JsValue::UNDEFINED, |state| work(&state))
    }
}

/// Borrows the state for `work`, then delivers the events it emitted, outside the borrow.
/// (`dyn`: one copy of this for every entry point, which keeps the module small.)
pub(crate) fn run(state: &Rc<RefCell<State>>, work: &mut dyn FnMut(&mut State, i64)) {
    let emits = {
        let Ok(mut guard) = state.try_borrow_mut() else { return };
        work(&mut guard, js_sys::Date::now() as i64);
        guard.count_refused_writes();
        std::mem::take(&mut guard.emits)
    };
    let emit = state.borrow().emit.clone();
    for (name, detail) in emits {
        let _ = emit.call2(&JsValue::NULL, &name.into(), &detail);
    }
}

/// The record without the interest weights a "Page Engaged" carries; `None` for any other,
/// and for one without them.
fn without_interests(record: &Record) -> Option<Record> {
    record.without_properties(ENGAGED_EVENT, &[SENT_TOPICS, SENT_TAGS])
}

/// A consent decision as the options and `consent.set` take it: `true`, `false`, or its name.
fn decision_of(value: &JsValue) -> Option<Decision> {
    match value.as_bool() {
        Some(true) => Some(Decision::Granted),
        Some(false) => Some(Decision::Denied),
        None => value.as_string().and_then(|text| Decision::parse(&text)),
    }
}

/// Reads `Consent::by_default`'s inputs from `load`'s options, the remote settings
/// (`{late: true}` while they have not come: `api.js`'s stand-in) and the browser.
fn default_consent(options: &JsValue, remote: &JsValue, unreadable: &mut Vec<Unreadable>) -> Consent {
    let browser = dom::privacy_signals();
    let late = bool_field(&[remote], "late").unwrap_or(false);
    // The options' choice, else the settings', else not to respect it (unknown while late).
    let mut respect = |option, setting| {
        convert::privacy_switch(options, option, unreadable)
            .or_else(|| bool_field(&[remote], setting))
            .or((!late).then_some(false))
    };
    let signals = PrivacySignals {
        do_not_track: browser.get(0).is_truthy(),
        respect_do_not_track: respect("respectDoNotTrack", "respect_do_not_track"),
        global_privacy_control: browser.get(1).is_truthy(),
        respect_global_privacy_control: respect(
            "respectGlobalPrivacyControl",
            "respect_global_privacy_control",
        ),
    };
    // A value this SDK cannot read (the page's, or a collector of another version's) is
    // reported and read as pending, never as the default's `granted`.
    let mut read = |value: JsValue, option: &str| {
        decision_of(&value).unwrap_or_else(|| {
            unreadable.push((option.to_owned(), MOST_PRIVATE));
            Decision::Pending
        })
    };
    let default = match convert::stated_field(options, "consent") {
        None => convert::stated_field(remote, "consent_default").map(|d| read(d, "consent_default")),
        Some(d) => Some(read(d, "consent")),
    };
    Consent::by_default(signals, default)
}

/// What the store may write under `consent`, and what a refusal of analytics clears: every
/// thing of the visitor, queued events of earlier pages included, but the decision itself (it
/// is the visitor's, and other tabs follow it), the page's anonymous id in memory (a later
/// grant keeps it), and the interest profiles while personalisation is granted: they never
/// leave the device, and that consent covers keeping them on its own.
fn store_as_consented(store: &mut Store, consent: &Consent) {
    let personal: &'static [&'static str] = match consent.personalization {
        Decision::Granted => &interests::STORED_KEYS,
        _ => &[],
    };
    // Refused, the profiles go first: storing starting now must not write this page's copy.
    if !consent.may_personalize() {
        interests::forget_stored(store);
    }
    store.set_persistent(consent.may_store(), &COOKIE_KEYS);
    store.set_personal(personal);
    if consent.gate() == Gate::Drop {
        let keep: Vec<&str> = ["aid", "consent"].into_iter().chain(personal.iter().copied()).collect();
        store.clear(&COOKIE_KEYS, &keep);
    }
}

impl State {
    /// Enriches a call into an event: to the page's source middleware first, when it has
    /// some (it comes back through [`Sdk::resume`]), else recorded. Answers its message id.
    fn capture(
        &mut self,
        now: i64,
        call: Call,
        properties: &Tokens,
        traits: &Tokens,
        options: &CallOptions,
    ) -> String {
        self.follow_stored_session(now);
        self.touch_session(now);
        self.capture_in_session(now, call, properties, traits, options)
    }

    /// [`State::capture`] in the session as it is: the event is no activity of the visitor.
    fn capture_in_session(
        &mut self,
        now: i64,
        call: Call,
        properties: &Tokens,
        traits: &Tokens,
        options: &CallOptions,
    ) -> String {
        let mut errors = Vec::new();
        let message_id = options.message_id(&mut errors).unwrap_or_else(|| self.ids.uuid());
        self.last_captured_at = self.last_captured_at.max(now);
        let at = options.time_or(now, now, &mut errors);
        let identity = (self.anonymous_id.as_str(), self.user.id.as_deref());
        let block = self.page.context(&self.session);
        let context = options.context(block, &mut errors);
        // Refused, an event is only counted: no need to hand it to the page's code.
        if !middleware::active() || self.consent.gate() == Gate::Drop {
            let identity = (Some(identity.0), identity.1);
            let record = Record::new(&call, &message_id, Some(at), identity, &context, properties, traits);
            self.report_all(errors);
            self.enqueue(now, &call, &message_id, record);
            return message_id;
        }
        self.middleware.push(&message_id, at, &context);
        let text = self.middleware.context_text(&context);
        let event = middleware::event_object(&call, &message_id, at, identity, (properties, traits), text);
        self.report_all(errors);
        self.emits.push(("middleware", event.into()));
        message_id
    }

    /// `props` if its walk read the whole value, else `None`: the call is captured, refused
    /// and reported ([`Props::is_cut`]).
    fn whole(&mut self, props: Props) -> Option<Props> {
        if props.is_cut() {
            self.refuse_unread();
            return None;
        }
        Some(props)
    }

    fn refuse_unread(&mut self) {
        self.refuse_call(TOO_LARGE, JsValue::UNDEFINED);
    }

    /// A call the collector would refuse, refused here: counted as captured and refused.
    fn refuse_call(&mut self, message: &str, detail: JsValue) {
        self.stats.captured += 1;
        self.stats.refused += 1;
        self.error(message, detail);
    }

    /// Whether a call's names (event, page name and category) fit the collector's limit;
    /// the call is refused when one does not.
    fn names_fit(&mut self, names: &[Option<&str>]) -> bool {
        let too_long = names.iter().flatten().find(|name| !call_options::id_fits(name));
        if let Some(name) = too_long {
            self.refuse_call("a name is at most 255 bytes long", (*name).into());
        }
        too_long.is_none()
    }

    fn refuse_too_large(&mut self) {
        self.stats.refused += 1;
        self.error(TOO_LARGE, JsValue::UNDEFINED);
    }

    /// Passes a recorded event through the consent gate (and tells the page's call listeners).
    fn enqueue(&mut self, now: i64, call: &Call, message_id: &str, record: Record) {
        self.stats.captured += 1;
        if self.call_listeners {
            let detail = js_sys::Object::new();
            let _ = js_sys::Reflect::set(&detail, &"messageId".into(), &message_id.into());
            if let Call::Track(event) = call {
                let _ = js_sys::Reflect::set(&detail, &"event".into(), &JsValue::from(*event));
            }
            self.emits.push((call.type_name(), detail.into()));
        }
        // Whichever way it came: a middleware may hand an event back after a withdrawal.
        let record = match self.consent.personalization {
            Decision::Granted => record,
            _ => without_interests(&record).unwrap_or(record),
        };
        match self.consent.gate() {
            Gate::Drop => self.stats.denied += 1,
            _ if record.as_bytes().len() > MAX_RECORD_BYTES => self.refuse_too_large(),
            Gate::Send => {
                self.queue.push(record);
                self.fail_waiters_for_dropped();
                self.schedule(now);
                // A page already left sends at once: no timer of its will run again. A few
                // times only: a site's `fetch` wrapper that tracks the SDK's own requests
                // would otherwise capture and send forever while the page unloads (past
                // them the events are stored, for the next page).
                if self.closed && self.sends_after_close < MAX_SENDS_AFTER_CLOSE {
                    self.sends_after_close += 1;
                    self.send_waiting(now);
                }
                // A hidden page stores it soon, not in a second: the browser may freeze or
                // end a hidden tab without another event (at most ten writes a second).
                if self.hidden && (self.closed || now - self.persisted_at >= HIDDEN_PERSIST_GAP_MS) {
                    self.persist(now);
                }
            }
            Gate::Hold => self.held.push(record),
        }
    }

    /// A page view began: its automatic view (if page views are on) waits
    /// [`AUTO_VIEW_GRACE_MS`] for the site's own `page()`, then is captured with the time
    /// the view began.
    pub(crate) fn begin_auto_view(&mut self, now: i64) {
        if !self.options.autocapture.page_views {
            return;
        }
        // Captured later, it must still sort (by time, then by arrival at the collector)
        // after the events before it and before those after it: a millisecond before the view
        // began, unless that is before the last event captured.
        self.auto_view_at = Some((now - 1).max(self.last_captured_at));
        let waits = self.timer(AUTO_VIEW_GRACE_MS, |state, now| {
            // A timer left from an earlier view (navigations within the grace period) leaves
            // a view that began much later to its own timer.
            if state.auto_view_at.is_some_and(|at| now - at >= i64::from(AUTO_VIEW_GRACE_MS) - 10) {
                state.capture_auto_view();
            }
        });
        // Without a timer (the page's `setTimeout` threw) nothing would end the wait.
        if !waits {
            self.capture_auto_view();
        }
    }

    /// Captures the automatic page view still waiting, if any: before the page changes, is
    /// hidden or is flushed.
    pub(crate) fn capture_auto_view(&mut self) {
        let Some(at) = self.auto_view_at.take() else { return };
        self.page.refresh_title();
        let mut props = Props::default();
        self.page.properties(&mut props, None, None);
        let call = Call::Page { category: None, name: None };
        let id = self.capture(at, call, &props.tokens, &Tokens::default(), &CallOptions::default());
        self.autocaptured(Autocaptured::PageView, id);
    }

    /// Captures an event autocapture of `kind` made.
    pub(crate) fn capture_auto(&mut self, now: i64, kind: Autocaptured, event: &str, properties: &Props) {
        let options = CallOptions::default();
        let id = self.capture(now, Call::Track(event), &properties.tokens, &Tokens::default(), &options);
        self.autocaptured(kind, id);
    }

    /// A report of what the visitor did on this page ("Page Engaged"): in the page's session,
    /// dated `at` ([`Session::report_time`]), and no activity itself.
    pub(crate) fn capture_report(&mut self, now: i64, at: i64, event: &str, properties: &Props) {
        let options = CallOptions::at(at);
        let id = self.capture_in_session(
            now,
            Call::Track(event),
            &properties.tokens,
            &Tokens::default(),
            &options,
        );
        self.autocaptured(Autocaptured::Engagement, id);
    }

    /// Notes an event autocapture made while the collector's settings are late: they may
    /// switch that capture off ([`State::follow_late_switches`]).
    fn autocaptured(&mut self, kind: Autocaptured, message_id: String) {
        let limit = self.limits.max_events;
        if let Some(captured) = self.late_autocapture.as_mut().filter(|captured| captured.len() < limit) {
            captured.push((kind, message_id));
        }
    }

    /// The autocapture switches of settings that came late: what a switch now off captured
    /// meanwhile goes (held, waiting in the queue, or with the page's middleware; counted as
    /// denied), and it captures nothing more on this page.
    fn follow_late_switches(&mut self, switches: Autocapture) {
        let Some(captured) = self.late_autocapture.take() else { return };
        let unwanted: Vec<String> =
            captured.into_iter().filter(|(kind, _)| !kind.is_on(&switches)).map(|(_, id)| id).collect();
        let is_unwanted = |message_id: &str| unwanted.iter().any(|id| id == message_id);
        self.middleware.withdraw(is_unwanted);
        let is_unwanted = |record: &Record| is_unwanted(record.message_id());
        let removed = self.held.remove(is_unwanted) + self.queue.remove(is_unwanted);
        if removed > 0 {
            self.stats.denied += removed as u32;
            self.schedule_persist();
        }
        if !switches.page_views {
            self.auto_view_at = None;
        }
        self.options.autocapture = switches;
    }

    /// After a push: send full batches now, start the interval timer for the rest.
    fn schedule(&mut self, _now: i64) {
        // A full batch goes at the end of the current task, not inside the call that filled
        // it: a burst of calls then leaves in a few large batches instead of many small ones.
        let full = self.queue.waiting() >= self.options.batch_events
            || self.queue.waiting_bytes() >= self.options.batch_bytes;
        if full && !self.send_soon {
            self.send_soon = self.timer(0, |state, now| {
                state.send_soon = false;
                state.send_ready(now);
            });
        }
        if self.queue.waiting() > 0 && !self.flush_timer {
            let delay = self.options.flush_interval_ms;
            self.flush_timer = self.timer(delay, |state, now| {
                state.flush_timer = false;
                state.draining = true;
                state.send_ready(now);
            });
        }
        self.schedule_persist();
    }

    /// Sends what is ready: full batches, or everything while draining.
    fn send_ready(&mut self, now: i64) {
        // Consent back to pending after a grant: what is queued waits for the decision.
        if !self.consent.may_send() {
            return;
        }
        while now >= self.backoff_until && self.queue.in_flight() < MAX_IN_FLIGHT {
            let waiting = self.queue.waiting();
            let full = waiting >= self.options.batch_events
                || self.queue.waiting_bytes() >= self.options.batch_bytes;
            if waiting == 0 || !(full || self.draining) {
                break;
            }
            // A burst held back by the in-flight limit goes out in fewer, larger batches.
            let max_events = waiting.clamp(self.options.batch_events, MAX_BATCH_EVENTS);
            // A hidden page's requests must outlive it: a later `pagehide` does not send
            // them again (only the first hide reseals what is in flight).
            let max_bytes = match self.hidden {
                true => self.options.batch_bytes.min(HIDDEN_PAYLOAD_BYTES),
                false => self.options.batch_bytes,
            };
            let Some(batch) = self.queue.take(now, max_events, max_bytes) else {
                break;
            };
            match self.hidden {
                true => self.send_hidden(batch, KEEPALIVE_BUDGET_BYTES),
                false => self.send(batch, false),
            }
        }
        // Everything went (events in flight do not keep it on): what comes next waits for a
        // full batch or the interval again.
        if self.queue.waiting() == 0 {
            self.draining = false;
        }
    }

    /// Sends a hidden page's batch: keepalive, so that it outlives the page, while the
    /// keepalive bytes in flight stay within `limit`; past it a plain request, which the
    /// browser takes (a page that lives on delivers it; a closed one leaves it stored for the
    /// next page), where a keepalive one would fail and start a backoff.
    fn send_hidden(&mut self, batch: Outgoing, limit: usize) {
        let keepalive = self.keepalive_bytes + batch.body.len() <= limit;
        self.send(batch, keepalive);
    }

    /// Posts a sealed batch; its outcome settles it. `keepalive` when the page is being
    /// hidden, so the request outlives the page.
    fn send(&mut self, batch: Outgoing, keepalive: bool) {
        let weak = self.me.clone();
        let (id, events) = (batch.id, batch.events as u32);
        let kept = if keepalive { batch.body.len() } else { 0 };
        self.keepalive_bytes += kept;
        self.collector_may_know = true;
        // The events stay queued and stored until an answer confirms them, whatever
        // `sendBeacon` took meanwhile (`transport::post`): the next page sends them again.
        transport::post(&self.options.beacon_url, &batch.body, keepalive, {
            move |outcome| {
                if let Some(state) = weak.upgrade() {
                    run(&state, &mut |state, now| {
                        state.keepalive_bytes -= kept;
                        state.settle(now, id, events, outcome)
                    });
                }
            }
        });
    }

    /// Settles a batch by its answer.
    fn settle(&mut self, now: i64, id: u32, events: u32, outcome: Outcome) {
        // None left (dropped from a full queue while in flight): no waiter's events failed.
        let first = self.queue.first_of_batch(id).unwrap_or(u64::MAX);
        let in_flight = self.queue.settle(id, outcome);
        // Not in flight: a batch resealed when the page was hidden. Its events went again in
        // another batch, whose answer is the one that counts.
        match outcome {
            _ if !in_flight => {}
            Outcome::Delivered { rejected } => {
                let rejected = rejected.min(events);
                self.stats.delivered += events - rejected;
                if rejected > 0 {
                    self.stats.refused += rejected;
                    self.error("the collector rejected events of a batch", rejected.into());
                    // Not all delivered: a `flush()` waiting for them answers `false`.
                    self.fail_waiters(first);
                }
            }
            Outcome::Refused { status } => {
                self.stats.refused += events;
                self.error("the collector refused a batch", status.into());
                // Gone, yet not delivered: a `flush()` waiting for them answers `false`.
                self.fail_waiters(first);
            }
            Outcome::Retry { status, retry_after_ms, .. } => {
                self.stats.retries += 1;
                if self.debug {
                    dom::console_log("warn", "batch failed, will retry; status", &status.into());
                }
                self.fail_waiters(first);
                if let Some(asked) = retry_after_ms.filter(|&ms| ms > 0) {
                    self.retry_after_until = self.retry_after_until.max(now + asked.min(MAX_RETRY_AFTER_MS));
                    let mut until = String::new();
                    portrait_core::client::push_integer(&mut until, self.retry_after_until, 10);
                    self.store.set("retry_at", &until, false);
                }
                // The longest wait asked for holds: a 429's `Retry-After` that ends later than
                // the backoff in progress extends it.
                let delay = self.queue.backoff_ms(js_sys::Math::random(), retry_after_ms);
                let waiting = now < self.backoff_until;
                self.backoff_until = self.backoff_until.max(now + delay);
                if !waiting {
                    self.wait_out_backoff(now);
                }
            }
        }
        self.send_ready(now);
        self.settle_waiters();
        self.schedule_persist();
    }

    /// Whether the collector's `Retry-After` holds this page's sends now, a page being left
    /// included: only if its queue is stored for the next page (not in memory mode, nor
    /// under a refusal, whose withdrawal would be lost).
    fn retry_after_holds(&self, now: i64) -> bool {
        now < self.retry_after_until && self.consent.may_store() && self.store.shares_storage()
    }

    /// The `Retry-After` an earlier page of the site was answered with (`retry_at`), if it has
    /// not ended: this page waits it out too.
    fn wait_for_stored_retry_after(&mut self, now: i64) {
        let stored = self.store.get("retry_at").and_then(|at| portrait_core::client::parse_integer(&at, 10));
        if let Some(until) = stored.filter(|&until| until > now && until - now <= MAX_RETRY_AFTER_MS) {
            self.retry_after_until = until;
            self.backoff_until = until;
            self.wait_out_backoff(now);
        }
    }

    /// Sends again once `backoff_until` has passed (which may move later meanwhile), waking
    /// at least once a minute to store the queue again: a stored queue silent for
    /// `ORPHAN_AFTER_MS` is another page's to take.
    fn wait_out_backoff(&self, now: i64) {
        let delay = (self.backoff_until - now).clamp(0, BACKOFF_WAKE_MS) as i32;
        self.timer(delay, |state, now| {
            if now < state.backoff_until {
                state.persist(now);
                return state.wait_out_backoff(now);
            }
            state.draining = true;
            state.send_ready(now);
        });
    }

    fn settle_waiters(&mut self) {
        // Each once what was queued when it was called is delivered: a site that keeps
        // capturing (a heartbeat) must not keep its `flush()` waiting.
        self.answer_waiters(true, &|queue, mark| queue.settled_up_to(mark));
    }

    /// Answers `false` to each `flush()` waiting for events from `first` on (a failed
    /// batch's first): one called before those came waits on, for its own.
    fn fail_waiters(&mut self, first: u64) {
        self.answer_waiters(false, &|_, mark| mark >= first);
    }

    /// Answers `false` to each `flush()` waiting for an event the full queue dropped.
    fn fail_waiters_for_dropped(&mut self) {
        if let Some(first) = self.queue.take_first_dropped() {
            self.fail_waiters(first);
        }
    }

    fn resolve_waiters(&mut self, delivered: bool) {
        self.answer_waiters(delivered, &|_, _| true);
    }

    /// Answers `delivered` to each waiting `flush()` whose mark (`Queue::pushed` when it was
    /// called) `answered` picks.
    fn answer_waiters(&mut self, delivered: bool, answered: &dyn Fn(&Queue, u64) -> bool) {
        let (answer, waiting): (Vec<_>, Vec<_>) = std::mem::take(&mut self.flush_waiters)
            .into_iter()
            .partition(|(_, mark)| answered(&self.queue, *mark));
        self.flush_waiters = waiting;
        for (resolve, _) in answer {
            let _ = resolve.call1(&JsValue::NULL, &delivered.into());
        }
    }

    /// The page is being hidden (or closed): everything unsettled, in flight included, goes
    /// out at once in keepalive requests, which outlive the page, and the queue is stored
    /// now, in flight included. Unlike `sendBeacon`, a keepalive `fetch` reports its outcome:
    /// if the page lives on, answers settle the batches as usual; if it does not, the next
    /// page adopts the stored queue and sends it again (the collector drops the duplicates
    /// by messageId). Nothing rests on a beacon the browser merely accepted.
    /// (The automatic view still waiting and the engagement report are captured a step
    /// before, in `autocapture::install`'s listener, so that the page's middleware has them
    /// in between.)
    ///
    /// Only the first hide since the page was shown that sends reseals what is in flight; a
    /// later one (`pagehide` after `visibilitychange`, or before it) sends only what waits:
    /// the rest left then. While a backoff runs, a page only hidden sends nothing (switching
    /// tabs must not hurry a collector that asked for time), so its close still reseals
    /// (plain requests in flight end with the page); nor does one being closed before the
    /// collector's `Retry-After` ends; its queue is stored all the same.
    pub(crate) fn hide(&mut self, now: i64, closing: bool) {
        self.hidden = true;
        // Under a `Retry-After` a closing page stores its queue for the next page instead,
        // if that write succeeds (storage may be full).
        let closing_sends = closing && !(self.retry_after_holds(now) && self.persist(now));
        if self.consent.may_send() && (closing_sends || now >= self.backoff_until) {
            match std::mem::replace(&mut self.resealed, true) {
                false => {
                    for batch in self.queue.take_all(now, HIDDEN_PAYLOAD_BYTES) {
                        self.send_hidden(batch, KEEPALIVE_QUOTA_BYTES);
                    }
                }
                true => self.send_waiting(now),
            }
        }
        self.closed |= closing;
        self.persist(now);
        if closing {
            self.stored_id_when_left = self.store.get_shared_id("aid");
        }
    }

    /// The page is visible again: its next hide reseals what is then in flight.
    pub(crate) fn shown(&mut self) {
        self.hidden = false;
        self.resealed = false;
    }

    /// Sends what waits at once, in keepalive requests a page being left may send.
    fn send_waiting(&mut self, now: i64) {
        if self.consent.may_send() && !self.retry_after_holds(now) {
            while let Some(batch) = self.queue.take(now, MAX_BATCH_EVENTS, HIDDEN_PAYLOAD_BYTES) {
                self.send_hidden(batch, KEEPALIVE_QUOTA_BYTES);
            }
        }
    }

    /// The browser is back online: send now rather than wait out the backoff (the pending
    /// backoff timer, when it fires, finds nothing left to do).
    pub(crate) fn back_online(&mut self, now: i64) {
        self.backoff_until = now.max(self.retry_after_until);
        self.draining = true;
        self.send_ready(now);
    }

    /// The page is shown (`pageshow`): its stored queue is its own again. Back from the
    /// back/forward cache (`restored`), what the site's other pages stored meanwhile holds
    /// here first (a cached page gets no `storage` events): a refusal must not find this page
    /// storing and sending, nor a `reset()` its user. The visitor first: a grant followed
    /// first would write this page's copies over what the others stored.
    pub(crate) fn show(&mut self, now: i64, restored: bool) {
        if restored {
            let left = self.stored_id_when_left.take();
            let removed = left.is_some_and(|id| self.store.get_shared_id("aid") != Some(id));
            self.visitor_stored_elsewhere(now, removed);
            self.consent_stored_elsewhere(now);
        }
        self.closed = false;
        self.sends_after_close = 0;
        // The document's first `pageshow` comes in a tab opened in the background too.
        if restored || !dom::page_hidden() {
            self.shown();
            self.page.seen = true;
        }
        self.persist(now);
    }

    fn schedule_persist(&mut self) {
        if !self.persist_timer {
            self.persist_timer = self.timer(PERSIST_DELAY_MS, |state, now| {
                state.persist_timer = false;
                state.persist(now);
            });
        }
    }

    /// After a minute without events here, the session another tab of the site stored may be
    /// more recent ([`Session::follow`]); read only then, not on every event of a burst. A
    /// session taken over comes with the channel and campaign that tab stored for it.
    pub(crate) fn follow_stored_session(&mut self, now: i64) {
        if now.saturating_sub(self.session.last_activity) > SESSION_SYNC_MS {
            let cookies = self.store.cookies_now();
            self.follow_newer_sessions(&cookies);
        }
    }

    /// Follows the session this origin's other tabs stored, then the one the site's other
    /// subdomains shared (in `cookies`), where either is later than this page's.
    fn follow_newer_sessions(&mut self, cookies: &Cookies) {
        if let Some(stored) = self.store.get_shared("session").and_then(|s| Session::from_storage(&s)) {
            let id = self.session.id;
            self.session.follow(&stored);
            if self.session.id != id {
                self.store.reload(&["channel", "campaign"]);
                self.page.read_visitor(&self.store);
            }
        }
        self.follow_shared_visit(cookies);
    }

    /// Takes the visit the site's other subdomains shared ([`State::share_visit`]) when its
    /// session is later than this page's: with that session's channel and campaign, and its
    /// first touch where this origin has none (an origin's own first touch is older than any
    /// the visit could bring).
    fn follow_shared_visit(&mut self, cookies: &Cookies) {
        let Some(visit) = cookies.get(VISIT).and_then(|text| Visit::from_storage(&text)) else {
            return;
        };
        // Another visitor's: one a `reset()` forgot (a tab of theirs still open elsewhere may
        // write it after the reset), or the next one's, before this page follows the id.
        if visit.anonymous_id != self.anonymous_id {
            return;
        }
        let id = self.session.id;
        self.session.follow(&visit.session);
        let new_session = self.session.id != id;
        if new_session {
            for (key, value) in [("channel", &visit.channel), ("campaign", &visit.campaign)] {
                match value.is_empty() {
                    true => self.store.remove(key, false),
                    false => self.store.set(key, value, false),
                }
            }
        }
        let first_touch = self.store.get("first").is_none() && !visit.first.is_empty();
        if first_touch {
            self.store.set("first", &visit.first, false);
        }
        if new_session || first_touch {
            self.page.read_visitor(&self.store);
        }
    }

    /// Writes the visit cookie ([`Visit`]) for the site's other subdomains: the visitor's
    /// session as now, its channel and campaign, and the first touch (what fits,
    /// [`Visit::to_cookie`]). `cookies`: the site's as read since the `aid` cookie was last written.
    fn share_visit(&mut self, cookies: &Cookies) {
        // Not once the site's shared id is another's (a `reset()` on another subdomain): this
        // page's visitor is forgotten there.
        if cookies.get("aid").as_deref() != Some(self.anonymous_id.as_str()) {
            return;
        }
        let stored = |key| self.store.get(key).unwrap_or_default();
        let visit = Visit {
            anonymous_id: self.anonymous_id.clone(),
            session: self.session,
            channel: stored("channel"),
            campaign: stored("campaign"),
            first: stored("first"),
        };
        self.store.set_cookie(VISIT, &visit.to_cookie());
    }

    /// Keeps the session alive at `now` (an event, the visitor's input). One that starts
    /// here, after 30 minutes without activity and not with a page's arrival, is a direct
    /// visit: the previous session's channel and campaign are not its own.
    pub(crate) fn touch_session(&mut self, now: i64) {
        if self.session.touch(now, None) {
            self.page.begin_direct_session(&mut self.store);
        }
    }

    /// Stores the session, and the queue under this page's key (`Queue::to_stored_text`), if
    /// consent allows; answers whether the queue is stored now (a write the browser refused,
    /// storage full, leaves the previous one).
    fn persist(&mut self, now: i64) -> bool {
        if !self.consent.may_store() {
            return false;
        }
        self.persisted_at = now;
        // The session's last activity moves with every event: it is stored here, not per event.
        // Over a later one another tab stored or shared, never: an idle tab (left, hidden,
        // back from the back/forward cache) would take the site's session back in time.
        let cookies = self.store.cookies_now();
        self.follow_newer_sessions(&cookies);
        self.store.set("session", &self.session.to_storage(), false);
        self.share_visit(&cookies);
        let key = self.queue_key.clone();
        if self.queue.is_empty() {
            self.store.remove(&key, false);
            return true;
        }
        let text = self.queue.to_stored_text(now, self.closed);
        let refused = self.store.failed_writes;
        self.store.set(&key, &text, false);
        self.store.failed_writes == refused
    }

    /// Takes over the stored queues of pages that are gone (closed, or silent for long), and
    /// stores them under this page's key. Only once the visitor's consent lets events be sent:
    /// until then they stay where they are, neither sent nor moved.
    fn adopt_stored_queues(&mut self) {
        if self.consent.gate() != Gate::Send {
            return;
        }
        let now = js_sys::Date::now() as i64;
        let (mut adopted, mut alive) = (0, false);
        for key in self.store.keys(storage::QUEUE_PREFIX) {
            // This page's own, stored while its events are in flight, is not another's.
            if key == self.queue_key {
                continue;
            }
            let Some(stored) = self.store.get(&key) else { continue };
            match self.queue.adopt_stored_text(&stored, now) {
                Adoption::Alive => {
                    alive = true;
                    continue;
                }
                Adoption::Adopted(count) => adopted += count,
                Adoption::Unreadable => self.error("a stored queue could not be read", key.as_str().into()),
            }
            self.store.remove(&key, false);
        }
        // Adopting may push this page's own events out of a full queue.
        self.fail_waiters_for_dropped();
        if adopted > 0 {
            self.withhold_interests();
            self.persist(now);
            // They go as the page's own would, without waiting for its next event.
            self.schedule(now);
        }
        // A queue that looks alive may be a crashed page's (no `pagehide` marked it closed):
        // looked at again once it would count as silent, in case this page is the one left.
        if alive && !self.adoption_due {
            self.adoption_due = self.timer(ORPHAN_AFTER_MS as i32 + 1_000, |state, _| {
                state.adoption_due = false;
                state.adopt_stored_queues();
            });
        }
    }

    /// Reports each option whose value the SDK could not read, with what it did instead.
    fn report_unreadable(&mut self, options: Vec<Unreadable>) {
        for (option, instead) in options {
            self.error(instead, option.into());
        }
    }

    fn set_consent(&mut self, now: i64, changes: &JsValue) {
        // What can be read is applied and the rest reported: a refusal must hold even when
        // the call also carries something this SDK does not know.
        let mut parsed = Vec::new();
        // One decision for every category, as the `consent` option takes it (`set(false)`:
        // refuse all); anything else that is not `{category: decision}` is reported.
        if !convert::is_plain_object(changes) {
            match decision_of(changes) {
                Some(decision) => parsed.extend(CATEGORIES.map(|c| (c.to_owned(), decision))),
                None => self.error(
                    "consent.set takes {analytics, personalization}, or one decision for both",
                    changes.clone(),
                ),
            }
        }
        for (category, value) in convert::entries(changes).filter(|(_, value)| !value.is_undefined()) {
            match decision_of(&value) {
                Some(decision) => parsed.push((category, decision)),
                None => {
                    self.error("consent values are true, false, granted, denied or pending", category.into())
                }
            }
        }
        let chosen = self.choices;
        if let Some(message) = self.choices.set(parsed.iter().map(|(c, d)| (c.as_str(), *d))) {
            self.error(&message, JsValue::UNDEFINED);
        }
        self.store.note_visitor_refusal(self.choices.analytics == Some(Decision::Denied));
        // The visitor's own refusal of personalisation reaches the profiles an earlier visit
        // stored, from a page that keeps nothing (`memory`) too; a default's does not, nor an
        // older refusal on a later call (a memory page does not follow a grant made elsewhere
        // since).
        if parsed
            .iter()
            .any(|(category, decision)| category == "personalization" && *decision == Decision::Denied)
        {
            self.store.forget_everywhere(interests::forget_stored);
        }
        if self.choices == chosen {
            return;
        }
        let changed = self.follow_choices(now);
        // The decision itself is kept (even a refusal, even one the default made already),
        // so that the visitor is not asked again and a later default does not override it.
        // It is recorded even when this page's consent did not change: other tabs, whose
        // default may differ (their settings late), follow what is stored and record nothing.
        self.store.set_record("consent", &self.choices.to_storage());
        let consent = self.consent;
        match changed && consent.withdrawal_to_send(self.collector_may_know) {
            true => self.send_withdrawal(now),
            false => {
                let call = Call::Track(CONSENT_EVENT);
                let options = CallOptions::default();
                self.capture(now, call, &consent.to_properties(), &Tokens::default(), &options);
            }
        }
    }

    /// Tells the collector of a refusal of personalisation while analytics is refused
    /// ([`Consent::withdrawal_to_send`]), which dropped the queue: [`Consent::withdrawal`],
    /// past no middleware, in a keepalive request, so that leaving the page at once does not
    /// cancel it (unless a backoff runs: its end sends it). It is then the only kind of event
    /// the queue may hold ([`Consent::may_send`]); in memory only, as nothing may be stored
    /// now, and sent again after failures like any other.
    fn send_withdrawal(&mut self, now: i64) {
        let record = self.consent.withdrawal(&self.ids.uuid(), now, &self.anonymous_id, page::LIBRARY);
        self.stats.captured += 1;
        self.queue.push(record);
        self.fail_waiters_for_dropped();
        self.draining = true;
        if now >= self.backoff_until {
            self.send_waiting(now);
        }
    }

    /// Another tab of the site changed who the visitor is (`storage` event): a `reset()` or a
    /// `setAnonymousId` there (a new anonymous id), an `identify` or a `group`. This page's
    /// next events are the visitor's as stored now, as with analytics.js, which reads the ids
    /// from storage for each event: a sign-out in one tab holds in all. A new anonymous id
    /// comes with the session, campaign, first touch and interests stored with it (a
    /// `reset()` stores the new visitor's before the id). Nothing is written here, whatever
    /// consent allows: that tab wrote it, and reading needs no consent; what this page holds
    /// of those keys is what is stored, so that it never writes the forgotten visitor back.
    ///
    /// `removed`: the other tab removed a key (a `reset()`, a refusal), or what it did is not
    /// known (`show`): nothing of this page's visitor stays (see [`State::follow_stored_parties`]).
    pub(crate) fn visitor_stored_elsewhere(&mut self, now: i64, removed: bool) {
        if !self.store.follows_storage() {
            return;
        }
        self.store.reload(&VISITOR_KEYS);
        self.follow_stored_parties(removed);
        // The id this origin's tabs stored, not the cookie the site's subdomains share: what
        // the other tab stored with it (session, campaign, interests) is here, written before
        // it. Between a `reset()`'s removal and its write of the new id, or the id not stored
        // (consent): the stored id, when it comes, is followed then.
        let stored_id = self.store.get_shared_id("aid");
        let followed =
            stored_id.filter(|id| *id != self.anonymous_id && Some(id) != self.forgotten_id.as_ref());
        if let Some(anonymous_id) = followed {
            // The view the automatic capture waits to record was the previous visitor's.
            self.capture_auto_view();
            self.anonymous_id = anonymous_id;
            let stored = self.store.get("session").and_then(|s| Session::from_storage(&s));
            self.session = stored.unwrap_or_else(|| Session::first(now));
            self.page.read_visitor(&self.store);
            interests::reload_in_module(self);
        }
        // The page's copy of its id stays, whatever was removed (a refusal in another tab
        // removes the stored one; `Store::clear` keeps this copy, for a grant to write back).
        let id = self.anonymous_id.clone();
        self.store.hold("aid", &id);
    }

    /// The user and group as the site's other tabs stored them. This page's copies go, except
    /// those it could not store (an `identify` made here while consent was pending, which a
    /// grant in another tab must not lose: they are written when this page starts storing)
    /// while no tab has written their keys since (another tab's later sign-in wins), unless
    /// `removed` (a `reset()` or a refusal there, which holds in every tab). Id and traits go
    /// together: they are stored one after the other, and traits equal to what is stored
    /// give no event.
    fn follow_stored_parties(&mut self, removed: bool) {
        for keys in [party::USER, party::GROUP] {
            let unstored = keys.iter().any(|key| self.store.holds_unstored(key));
            if removed || !unstored {
                self.store.reload(&keys);
            }
        }
        self.load_parties();
    }

    /// The user and group as this page's store holds them.
    fn load_parties(&mut self) {
        self.user = Party::load(&self.store, party::USER);
        self.group = Party::load(&self.store, party::GROUP);
    }

    /// Another tab of the site stored a consent decision (`storage` event): this page follows
    /// it at once. That tab recorded the change; this one does not record it again. What is
    /// stored now decides, not the event's value: two tabs deciding at once get their events
    /// late and crossed, and the last decision must win in both.
    pub(crate) fn consent_stored_elsewhere(&mut self, now: i64) {
        // In memory mode what `localStorage` holds is no decision of this site's tabs.
        if !self.store.follows_storage() {
            return;
        }
        let Some(text) = self.store.get_shared("consent") else { return };
        // Storing may start now: what this page would write of the user and group must not
        // go over what another tab stored meanwhile (a grant, then an `identify` there).
        self.follow_stored_parties(false);
        if let Some(choices) = Choices::from_storage(&text).filter(|c| *c != self.choices) {
            // This page's copy of the record too: storing may start again, and would write an
            // older decision back over the one just read.
            self.store.set_record("consent", &text);
            self.choices = choices;
            self.follow_choices(now);
        }
    }

    /// Works under the visitor's choices over the default from now on, doing what a change
    /// of consent asks ([`State::apply_consent`]); answers whether the consent changed.
    fn follow_choices(&mut self, now: i64) -> bool {
        let consent = self.choices.over(self.consent_default);
        if consent == self.consent {
            return false;
        }
        let before = std::mem::replace(&mut self.consent, consent);
        self.apply_consent(now, before);
        true
    }

    /// What the consent now allows (it was `before`): storing, sending, holding or dropping;
    /// interests.
    fn apply_consent(&mut self, now: i64, before: Consent) {
        let consent = self.consent;
        store_as_consented(&mut self.store, &consent);
        match consent.gate() {
            Gate::Send => {
                self.adopt_stored_queues();
                let held = std::mem::replace(&mut self.held, Queue::new(self.limits));
                self.queue.append(held);
                self.fail_waiters_for_dropped();
                // Released by a decision, not by a call: nothing else would send them.
                if !self.queue.is_empty() {
                    self.schedule(now);
                }
            }
            // Refused already, the queue holds only withdrawals (`send_withdrawal`): they stay.
            Gate::Drop if before.gate() == Gate::Drop => {}
            Gate::Drop => {
                self.stats.denied += (self.held.len() + self.queue.len()) as u32;
                self.held.clear();
                self.queue.clear();
                // The user and group went with the storage: forgotten here as in the site's
                // other tabs, which follow the removal (the anonymous id stays the page's).
                self.load_parties();
                // Nothing is left to deliver: a `flush()` waiting out a backoff is answered.
                self.resolve_waiters(false);
            }
            Gate::Hold => {}
        }
        if self.withhold_interests() {
            self.persist(now);
        }
        if !consent.may_personalize() {
            interests::forget_in_module(self);
        }
        interests::personalize(self);
    }

    /// Interest weights leave the device only with personalisation granted (see
    /// `autocapture::report_engagement`): without it, the events queued or held before, and
    /// those of other pages' queues adopted, go without theirs (and so does every event
    /// queued from then on, `enqueue`). Answers whether the queue (the stored part) changed.
    fn withhold_interests(&mut self) -> bool {
        if self.consent.personalization == Decision::Granted {
            return false;
        }
        self.held.rewrite(without_interests);
        self.queue.rewrite(without_interests) > 0
    }

    /// Writes the browser refused since the last call, counted as errors; the first one of
    /// the page also reported (a disabled storage refuses every write: one report says it).
    fn count_refused_writes(&mut self) {
        let refused = std::mem::take(&mut self.store.failed_writes);
        if refused > 0 {
            self.stats.errors += refused;
            if !std::mem::replace(&mut self.storage_refused, true) {
                self.report(
                    "the browser refused to store; the SDK keeps its state in memory",
                    refused.into(),
                );
            }
        }
    }

    fn report_all(&mut self, errors: call_options::Errors) {
        for (message, detail) in errors {
            self.error(message, detail);
        }
    }

    /// Whether an id the page gives can be used: with a longer one every event would be
    /// refused by the collector, on every page, so the call is reported instead.
    fn accepts_id(&mut self, id: &str) -> bool {
        let fits = call_options::id_fits(id);
        if !fits {
            self.error(call_options::ID_TOO_LONG, id.into());
        }
        fits
    }

    fn error(&mut self, message: &str, detail: JsValue) {
        self.stats.errors += 1;
        self.report(message, detail);
    }

    /// Emits an `error` event (and, in debug mode, logs it) without counting it.
    fn report(&mut self, message: &str, detail: JsValue) {
        if self.debug {
            dom::console_log("error", message, &detail);
        }
        let error = js_sys::Error::new(message);
        let _ = js_sys::Reflect::set(&error, &"detail".into(), &detail);
        self.emits.push(("error", error.into()));
    }

    /// Runs `work` on the state after `delay_ms`; answers whether the timer is set: not when
    /// the page's `setTimeout` threw, and a flag waiting for it must not stay set.
    pub(crate) fn timer(&self, delay_ms: i32, work: fn(&mut State, i64)) -> bool {
        let weak = self.me.clone();
        let callback = Closure::once_into_js(move || {
            if let Some(state) = weak.upgrade() {
                run(&state, &mut |state, now| work(state, now));
            }
        });
        dom::after(delay_ms, &callback)
    }
}
