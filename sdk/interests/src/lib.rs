//! Portrait's interest module: interest tags on the device. It reads what each page is about
//! (the DOM, classified by `portrait_core::topics`), weighs it by the attention the page got,
//! and keeps the decayed profile the SDK stores. Raw page text never leaves the browser; page
//! events carry only topic ids and weights (`topics` on "Page Engaged").
//!
//! A second wasm module, apart from the SDK's (`portrait-sdk`): the loader fetches it with the
//! topic model after `ready`, so none of it is on the start-up path. The two meet in
//! JavaScript (`sdk/js/api.js`):
//!
//! ```js
//! const interests = new Interests(host, options, remote, stored, modelBytes);
//! sdk.setInterests(interests);  // the SDK calls pageView, classify, credit, clear, personalize
//! ```
//!
//! The module holds no storage of its own: it reads the profiles the SDK stored (`stored`),
//! and `credit` hands back the texts to store, so one place (the SDK's `Store`) decides where
//! and whether anything is written. It reports through `host.emit(name, detail)`.

/// Power-of-two blocks instead of dlmalloc: 2 KB less to download (`portrait_sdk_alloc`).
#[cfg(target_arch = "wasm32")]
#[global_allocator]
static ALLOCATOR: portrait_sdk_alloc::Pow2<portrait_sdk_alloc::WasmMemory> = portrait_sdk_alloc::Pow2::new();

use std::cell::RefCell;

use js_sys::{Array, Function, Object, Reflect};
use portrait_core::client::NOT_A_FINITE_NUMBER;
use portrait_core::topics::interests::{
    DEFAULT_HALF_LIFE_MS, Interests as Profile, Key, MAX_SENT, PageCredit, SENT_TAGS, SENT_TOPICS,
};
use portrait_core::topics::page::{JsonValue, MAX_FIELD_CHARS, MAX_HEADINGS, PageRead, VISIBLE_TEXT_CHARS};
use portrait_core::topics::rules::{self, MAX_RULES, TagRule};
use portrait_core::topics::{Model, Scored};
use wasm_bindgen::prelude::*;

/// Where the SDK stores the two profiles (the `stored` argument and `credit`'s answer use
/// the same names).
const STORED_TOPICS: &str = "interests";
const STORED_TAGS: &str = "tags";
/// Interests that count for `data-portrait-show-if` and for the `interests` event.
const SHOWN_TOPICS: usize = 5;
/// Bounds on what is read from a page (`core` clips each part; the tokeniser bounds the terms).
/// A part crosses into the module only as far as `core` may keep it (UTF-16 units from its
/// first non-space, room for surrogate pairs): an `h1` may wrap the whole page.
const PART_UNITS: u32 = 2 * MAX_FIELD_CHARS as u32;
const MAX_JSON_LD_SCRIPTS: u32 = 5;
/// Unreadable `data-portrait-show-if` conditions reported in one page, at most.
const MAX_REPORTED: usize = 20;
const MAX_JSON_LD_BYTES: usize = 64 * 1024;

/// The interest state of one page's SDK.
#[wasm_bindgen]
pub struct Interests {
    state: RefCell<State>,
    /// `host.emit(name, detail)`: the page's `on` listeners (the host delivers later, so a
    /// listener may call back in).
    emit: Function,
}

struct State {
    model: Option<Model>,
    profile: Profile,
    /// The site's own tags (the workspace's tag rules), kept like the topics.
    site_tags: Profile<String>,
    rules: Vec<TagRule>,
    /// The current page's labels (empty until the model is there) and site tags.
    page: Vec<Scored>,
    page_tags: Vec<(String, f64)>,
    credit: PageCredit,
    /// The top topic ids last announced on `interests`, sorted (`None` before the first: the
    /// module's start announces what it read, an empty set included).
    announced: Option<Vec<u16>>,
    /// `data-portrait-show-if` conditions reported as unreadable (each once a page).
    reported: Vec<String>,
    half_life_ms: i64,
    /// Read a sample of visible text too (`load` option `topicsVisibleText`).
    visible_text: bool,
    /// Personalisation consent: without it nothing is credited, shown or announced.
    personalize: bool,
}

#[wasm_bindgen]
impl Interests {
    /// `host`: `{emit(name, detail), personalize}`; `options`: `load`'s options
    /// (`interestHalfLifeDays`, `topicsVisibleText`); `remote`: the collector's settings
    /// (`tag_rules`); `stored`: `{interests, tags}` as the SDK stored them; `model`: the topic
    /// model's bytes (`core/topics/model.bin`; empty for none). A model that does not decode
    /// is reported on `error`: the site's tag rules still work, the topics do not.
    #[wasm_bindgen(constructor)]
    pub fn new(
        host: &JsValue,
        options: &JsValue,
        remote: &JsValue,
        stored: &JsValue,
        model: &[u8],
    ) -> Interests {
        let emit: Function = field(host, "emit").dyn_into().unwrap_or_else(|_| Function::new_no_args(""));
        let report_error = |message: &str| report(&emit, message, &JsValue::UNDEFINED);
        let model = match model {
            [] => None,
            bytes => Model::decode(bytes).map_err(|error| report_error(&error.to_string())).ok(),
        };
        let half_life_ms = half_life_ms(&field(options, "interestHalfLifeDays"), &emit);
        let personalize = field(host, "personalize").as_bool().unwrap_or(false);
        let mut state = State {
            model,
            profile: Profile::with_half_life(half_life_ms),
            site_tags: Profile::with_half_life(half_life_ms),
            rules: read_rules(remote, &report_error),
            page: Vec::new(),
            page_tags: Vec::new(),
            credit: PageCredit::default(),
            announced: None,
            reported: Vec::new(),
            half_life_ms,
            visible_text: field(options, "topicsVisibleText").as_bool().unwrap_or(false),
            personalize,
        };
        if personalize {
            state.load(stored, now());
        }
        let interests = Interests { state: RefCell::new(state), emit };
        // Shows what depends on the stored profile, and announces it on `interests`.
        interests.update(State::classify_page);
        interests
    }

    #[wasm_bindgen(js_name = hasModel)]
    pub fn has_model(&self) -> bool {
        self.state.try_borrow().is_ok_and(|state| state.model.is_some())
    }

    /// A page view starts: nothing credited yet, nothing known of the page until `classify`.
    #[wasm_bindgen(js_name = pageView)]
    pub fn page_view(&self) {
        let Ok(mut state) = self.state.try_borrow_mut() else { return };
        state.credit = PageCredit::default();
        state.page.clear();
        state.page_tags.clear();
    }

    /// Reads the current page and classifies it: the site's tag rules, and the topics once
    /// the model is there. The SDK calls it a second after a view starts (so an SPA's router
    /// has rendered, data included); `pageTopics({refresh: true})` too. Then the `show-if`
    /// elements the new page brought are shown or hidden.
    pub fn classify(&self) {
        self.update(State::classify_page);
    }

    /// Decides the `show-if` elements again: the loader calls it when the page's app adds
    /// some after the view was read.
    pub fn decide(&self) {
        self.update(|_| {});
    }

    /// Credits the current page with the attention it got so far (`engaged_ms` of engaged
    /// time in this view, scrolled to `scroll_percent`). Answers `undefined` when nothing was
    /// credited, else `{properties, stored}`: what the "Page Engaged" event carries
    /// (`topics`: `[[topic id, weight], …]`, `tags`: `[[site tag, weight], …]`, each when not
    /// empty) and the profiles to store (`interests`, `tags`: only those this page changed).
    /// `stored`: the profiles as stored now (`{interests, tags}`), which the credit is added
    /// to; `undefined` when the SDK keeps them in memory only. `at`: the time the credit is
    /// evidence of, the "Page Engaged" event's (milliseconds since 1970).
    pub fn credit(&self, engaged_ms: f64, scroll_percent: f64, stored: JsValue, at: f64) -> JsValue {
        let mut credited = JsValue::UNDEFINED;
        self.update(|state| credited = state.credit(engaged_ms as i64, scroll_percent, &stored, at as i64));
        credited
    }

    /// Takes the profiles as stored, `{interests, tags}` (each text optional: `{}` forgets
    /// every interest and site tag): `reset()`, personalisation withdrawn, or another tab
    /// changed the visitor. (The SDK credits nothing more of the view then.)
    pub fn load(&self, stored: JsValue) {
        self.update(|state| state.load(&stored, now()));
    }

    /// Personalisation consent changed.
    pub fn personalize(&self, allowed: bool) {
        self.update(|state| state.personalize = allowed);
    }

    /// `interests({limit})`: `[{id, name, path, score}]`, best first, scores decayed to now.
    /// Like every read here, empty while the module is busy: a custom element watching a
    /// `show-if` attribute may ask from inside `update`, and a second borrow would panic.
    pub fn top(&self, limit: usize) -> JsValue {
        let Ok(state) = self.state.try_borrow() else { return Array::new().into() };
        match state.personalize {
            true => state.topic_list(state.profile.top(now(), limit.clamp(1, 64))),
            false => Array::new().into(),
        }
    }

    /// `pageTopics()`: the current page's labels, best first.
    #[wasm_bindgen(js_name = pageTopics)]
    pub fn page_topics(&self) -> JsValue {
        let Ok(state) = self.state.try_borrow() else { return Array::new().into() };
        state.topic_list(state.page.iter().map(|s| (s.id, f64::from(s.score))).collect())
    }
}

impl Interests {
    /// Runs `work`, then re-evaluates `data-portrait-show-if` elements and announces a new
    /// top set on `interests`.
    fn update(&self, work: impl FnOnce(&mut State)) {
        let Ok(mut state) = self.state.try_borrow_mut() else { return };
        work(&mut state);
        let now = now();
        let (top, tags): (Vec<u16>, Vec<String>) = match state.personalize {
            true => (
                state.profile.top(now, SHOWN_TOPICS).into_iter().map(|(id, _)| id).collect(),
                state.site_tags.top(now, SHOWN_TOPICS).into_iter().map(|(tag, _)| tag).collect(),
            ),
            false => (Vec::new(), Vec::new()),
        };
        let unreadable = state.apply_show_if(&top, &tags);
        // Announced when the set changes, not its order.
        let mut set = top;
        set.sort_unstable();
        let announce = state.announced.as_ref() != Some(&set);
        let detail = announce.then(|| state.topic_list(state.profile.top(now, SHOWN_TOPICS)));
        state.announced = Some(set);
        drop(state);
        for (condition, problem) in unreadable {
            let message =
                format!("data-portrait-show-if=\"{condition}\": {problem}; the element stays hidden");
            report(&self.emit, &message, &JsValue::UNDEFINED);
        }
        if let Some(detail) = detail {
            let _ = self.emit.call2(&JsValue::NULL, &"interests".into(), &detail);
        }
    }
}

impl State {
    fn classify_page(&mut self) {
        self.page.clear();
        self.page_tags.clear();
        if self.model.is_none() && self.rules.is_empty() {
            return;
        }
        let Some(window) = web_sys::window() else { return };
        let location = window.location();
        // `window.document` cannot be replaced by the page (unlike the document's properties).
        let document = Reflect::get(&window, &"document".into()).unwrap_or(JsValue::UNDEFINED);
        let page = read_page(&document, &location.href().unwrap_or_default(), self.visible_text);
        let path = location.pathname().unwrap_or_else(|_| "/".into());
        let has = |selector: &str| select_one(selector) == Some(true);
        self.page_tags = rules::page_tags(&self.rules, &page, &path, has);
        if let Some(model) = &self.model {
            let hinted = model.hinted(&page.hints);
            self.page = if hinted.is_empty() { model.evidence(&page.text.features()) } else { hinted };
        }
    }

    /// Reads the stored profiles. Storage is the page's to edit: only the model's topics
    /// (any, without a model) and well-formed site tags are kept, as the collector keeps them.
    fn load(&mut self, stored: &JsValue, now: i64) {
        let text = |key| field(stored, key).as_string().unwrap_or_default();
        self.profile = Profile::from_stored_text(&text(STORED_TOPICS), self.half_life_ms, now);
        if let Some(model) = &self.model {
            self.profile.retain(|id| model.topic(*id).is_some());
        }
        self.site_tags = Profile::from_stored_text(&text(STORED_TAGS), self.half_life_ms, now);
        self.site_tags.retain(|tag| rules::is_tag(tag));
    }

    fn credit(&mut self, engaged_ms: i64, scroll_percent: f64, stored: &JsValue, at: i64) -> JsValue {
        if !self.personalize || (self.page.is_empty() && self.page_tags.is_empty()) {
            return JsValue::UNDEFINED;
        }
        let weight = self.credit.top_up(engaged_ms, scroll_percent);
        if weight <= 0.0 {
            return JsValue::UNDEFINED;
        }
        let now = now();
        // The profiles as stored now (other tabs' credits, or a clear, included), when the
        // SDK stores them; else this page's own copy is all there is.
        if stored.is_object() {
            self.load(stored, now);
        }
        let labels = self.page.iter().map(|s| (s.id, f64::from(s.score)));
        let sent_topics = add_weighted(&mut self.profile, labels, weight, at, |id| id.into());
        let tags = self.page_tags.iter().cloned();
        let sent_tags = add_weighted(&mut self.site_tags, tags, weight, at, |tag| tag.into());
        let (properties, stored) = (Object::new(), Object::new());
        for (key, sent) in [(SENT_TOPICS, sent_topics), (SENT_TAGS, sent_tags)] {
            if sent.length() > 0 {
                set(&properties, key, sent.into());
            }
        }
        // Only the profiles this page added to are written again.
        if !self.page.is_empty() {
            set(&stored, STORED_TOPICS, self.profile.to_stored_text().into());
        }
        if !self.page_tags.is_empty() {
            set(&stored, STORED_TAGS, self.site_tags.to_stored_text().into());
        }
        let credited = Object::new();
        set(&credited, "properties", properties.into());
        set(&credited, "stored", stored.into());
        credited.into()
    }

    /// `[{id, name, path, score}]` (name and path once the model is loaded).
    fn topic_list(&self, scored: Vec<(u16, f64)>) -> JsValue {
        let list = Array::new();
        for (id, score) in scored {
            let entry = Object::new();
            set(&entry, "id", id.into());
            if let Some(topic) = self.model.as_ref().and_then(|m| m.topic(id)) {
                set(&entry, "name", topic.name.as_str().into());
                set(&entry, "path", topic.path().into());
            }
            set(&entry, "score", ((score * 1000.0).round() / 1000.0).into());
            list.push(&entry);
        }
        list.into()
    }

    /// `data-portrait-show-if` elements are shown (their `hidden` attribute removed) while
    /// their condition holds for the visitor's top topics and site tags, hidden otherwise
    /// (`portrait_core::topics::rules::show_if` has the syntax).
    /// Answers the conditions it could not read, not reported before (with what is wrong).
    fn apply_show_if(&mut self, top: &[u16], tags: &[String]) -> Vec<(String, &'static str)> {
        let mut unreadable = Vec::new();
        let reported = &mut self.reported;
        for_each("[data-portrait-show-if]", u32::MAX, |element| {
            let condition = part(element, "@data-portrait-show-if", u32::MAX).unwrap_or_default();
            let show = rules::show_if(&condition, top, tags, self.model.as_ref()).unwrap_or_else(|problem| {
                if reported.len() < MAX_REPORTED && !reported.contains(&condition) {
                    reported.push(condition.clone());
                    unreadable.push((condition.clone(), problem));
                }
                Some(false)
            });
            // Undecided (no topic model): as the HTML wrote it.
            set_hidden(element, show.map(|show| !show));
        });
        unreadable
    }
}

/// Adds each label × `weight`, evidence of time `at`, to `profile`; returns the
/// `[key, weight]` pairs for the wire. What is added is what is sent, so that the collector's
/// copy agrees with the device's: weights rounded to 0.001 (those that round to 0 neither),
/// and at most the [`MAX_SENT`] pairs the collector reads.
fn add_weighted<K: Key>(
    profile: &mut Profile<K>,
    labels: impl Iterator<Item = (K, f64)>,
    weight: f64,
    at: i64,
    key: impl Fn(K) -> JsValue,
) -> Array {
    let sent = Array::new();
    for (label, score) in labels.take(MAX_SENT) {
        let rounded = (score * weight * 1000.0).round() / 1000.0;
        if rounded > 0.0 {
            profile.add(label.clone(), rounded, at);
            sent.push(&Array::of2(&key(label), &rounded.into()));
        }
    }
    sent
}

/// The remote settings' `tag_rules`: the valid ones (the collector validated them already,
/// but cannot tell a CSS selector the browser refuses: those are reported and left out).
fn read_rules(remote: &JsValue, report: &impl Fn(&str)) -> Vec<TagRule> {
    let Some(list) = field(remote, "tag_rules").dyn_ref::<Array>().cloned() else {
        return Vec::new();
    };
    list.iter()
        .take(MAX_RULES)
        .filter_map(|rule| {
            let text = |key: &str| field(&rule, key).as_string();
            let rule = TagRule {
                tag: text("tag")?,
                url: text("url"),
                selector: text("selector"),
                meta: text("meta"),
                weight: field(&rule, "weight").as_f64().unwrap_or(1.0),
            };
            rule.problem().is_none().then_some(rule)
        })
        .filter(|rule| {
            let Some(selector) = &rule.selector else { return true };
            let valid = select_one(selector).is_some();
            if !valid {
                report(&format!(
                    "tag rule {}: the browser refuses the selector \"{selector}\"; left out",
                    rule.tag
                ));
            }
            valid
        })
        .collect()
}

fn now() -> i64 {
    js_sys::Date::now() as i64
}

/// The `interestHalfLifeDays` option in milliseconds, within 0.01 to 3,650 days; one stated
/// but not a finite number is reported, as the SDK reports its own number options, and the
/// default used.
fn half_life_ms(days: &JsValue, emit: &Function) -> i64 {
    if days.is_undefined() || days.is_null() {
        return DEFAULT_HALF_LIFE_MS;
    }
    match days.as_f64().filter(|days| days.is_finite()) {
        Some(days) => (days.clamp(0.01, 3_650.0) * 86_400_000.0) as i64,
        None => {
            report(emit, NOT_A_FINITE_NUMBER, &"interestHalfLifeDays".into());
            DEFAULT_HALF_LIFE_MS
        }
    }
}

/// Reports `message` on the SDK's `error` event (`emit`: the host's), with `detail` as the
/// SDK gives its own (the option it could not read).
fn report(emit: &Function, message: &str, detail: &JsValue) {
    let error = js_sys::Error::new(message);
    let _ = Reflect::set(&error, &"detail".into(), detail);
    let _ = emit.call2(&JsValue::NULL, &"error".into(), &error);
}

/// `object[key]`, `undefined` when `object` is not an object.
fn field(object: &JsValue, key: &str) -> JsValue {
    match object.is_object() {
        true => Reflect::get(object, &key.into()).unwrap_or(JsValue::UNDEFINED),
        false => JsValue::UNDEFINED,
    }
}

fn set(object: &Object, key: &str, value: JsValue) {
    let _ = Reflect::set(object, &key.into(), &value);
}

/// Hands the page's parts to `core`'s [`PageRead`], which decides what each one means: the
/// title, every `<meta>`, `data-portrait-topics`, `h1`–`h3`, JSON-LD, and (when asked) a
/// sample of the visible text. Bounded work: so many elements of each kind, at most.
fn read_page(document: &JsValue, href: &str, visible_text: bool) -> PageRead {
    let read = |object: &JsValue, name: &str| part(object, name, PART_UNITS).unwrap_or_default();
    let mut page = PageRead::new(href, &read(document, "title"));
    for_each("meta[name], meta[property]", 200, |meta| {
        // `<meta name="" property="og:title">`: an empty name is no name.
        let key = part(meta, "@name", PART_UNITS)
            .filter(|name| !name.is_empty())
            .or_else(|| part(meta, "@property", PART_UNITS));
        page.meta(&key.unwrap_or_default(), &read(meta, "@content"));
    });
    for_each("[data-portrait-topics]", 50, |element| {
        page.hint(&read(element, "@data-portrait-topics"));
    });
    // The text as shown (`<h1>Price<br>List</h1>` is two words; `textContent` glues them).
    for_each("h1, h2, h3", MAX_HEADINGS as u32, |heading| {
        page.heading(&read(heading, "innerText"));
    });
    for_each("script[type=\"application/ld+json\"]", MAX_JSON_LD_SCRIPTS, |script| {
        // One unit more than a script may have: a longer one is left out, not cut.
        let text = part(script, "textContent", MAX_JSON_LD_BYTES as u32 + 1).unwrap_or_default();
        if text.len() <= MAX_JSON_LD_BYTES
            && let Ok(json) = js_sys::JSON::parse(&text)
        {
            page.json_ld(&Json(json));
        }
    });
    if visible_text {
        page.visible_text(&sample_text(VISIBLE_TEXT_CHARS as u32));
    }
    page
}

/// Visits the first `limit` elements of the document that match `selector`.
fn for_each(selector: &str, limit: u32, mut visit: impl FnMut(&JsValue)) {
    select_all(selector).iter().take(limit as usize).for_each(|element| visit(&element));
}

/// A parsed JSON-LD value, as `core` reads JSON.
struct Json(JsValue);

impl JsonValue for Json {
    fn string(&self) -> Option<String> {
        self.0.as_string()
    }

    fn items(&self) -> Option<Vec<Self>> {
        self.0.dyn_ref::<Array>().map(|list| list.iter().map(Json).collect())
    }

    fn is_object(&self) -> bool {
        self.0.is_object()
    }

    fn field(&self, key: &str) -> Self {
        Json(field(&self.0, key))
    }
}

#[wasm_bindgen(inline_js = r#"
// The DOM's methods and the document's title are read from the objects' prototypes: an
// element named `querySelectorAll` or `title` replaces the document's, a form's field named
// `getAttribute` the form's (and a page's script may declare a class `Document` or `Element`
// of its own). And nothing here throws: a throw would leave the state borrowed.

// The body's text nodes in document order, outside scripts and styles, up to `max`
// characters: a walk that stops there, not `innerText` (which lays out the whole page).
export function sample_text(max) {
  const skip = /^(SCRIPT|STYLE|NOSCRIPT|TEMPLATE)$/;
  let text = '';
  try {
    const walker = Object.getPrototypeOf(document).createTreeWalker.call(document, document.body || document.documentElement, NodeFilter.SHOW_TEXT, {
      acceptNode: (node) => (skip.test(node.parentNode.nodeName) ? NodeFilter.FILTER_REJECT : NodeFilter.FILTER_ACCEPT),
    });
    while (text.length < max && walker.nextNode()) text += walker.currentNode.data + ' ';
  } catch {} // a document without a root: no text
  return text.slice(0, max);
}

// A property of `object` (`name`, as its prototype defines it: the document's `title`, an
// element's `textContent`), or an attribute (`@name`), at most `max` UTF-16 units of it from
// its first non-space; `undefined` when there is none, or when the page made its getter throw.
export function part(object, name, max) {
  try {
    const prototype = Object.getPrototypeOf(object);
    const value = name[0] === '@' ? prototype.getAttribute.call(object, name.slice(1)) : Reflect.get(prototype, name, object);
    return typeof value === 'string' ? value.trimStart().slice(0, max) : undefined;
  } catch {
    return undefined;
  }
}

// The document's elements that match `selector` (none for a selector the browser refuses).
export function select_all(selector) {
  try {
    return Array.from(Object.getPrototypeOf(document).querySelectorAll.call(document, selector));
  } catch {
    return [];
  }
}

// Whether an element of the document matches `selector`; `undefined` for a selector the
// browser refuses.
export function select_one(selector) {
  try {
    return Object.getPrototypeOf(document).querySelector.call(document, selector) !== null;
  } catch {
    return undefined;
  }
}

// Sets or removes an element's `hidden` attribute, or (`undefined`: undecided) puts back what
// the HTML wrote. What the SDK changed is noted (the attribute before, and what it wrote): an
// element whose attribute the page changed since (a close button, a framework's render) is the
// page's until the decision changes, and undecided leaves it alone. Only a change is written,
// so the page's own observers see no churn.
const written = new WeakMap();
export function set_hidden(element, hidden) {
  try {
    const proto = Object.getPrototypeOf(element);
    const now = proto.hasAttribute.call(element, 'hidden');
    const note = written.get(element);
    const before = note && note.wrote === now ? note.before : now;
    if (hidden === undefined) {
      written.delete(element);
      if (note && note.wrote === now) proto.toggleAttribute.call(element, 'hidden', before);
      return;
    }
    // The page changed what the SDK wrote, and the decision is the same: the page's choice.
    if (note && note.wrote !== now && note.wrote === hidden) return;
    written.set(element, { before, wrote: hidden });
    proto.toggleAttribute.call(element, 'hidden', hidden);
  } catch {}
}
"#)]
extern "C" {
    fn sample_text(max: u32) -> String;
    fn part(object: &JsValue, name: &str, max: u32) -> Option<String>;
    fn select_all(selector: &str) -> Array;
    fn select_one(selector: &str) -> Option<bool>;
    fn set_hidden(element: &JsValue, hidden: Option<bool>);
}
