//! Interest tags on the device: what each page is about (read from the DOM, classified by
//! `portrait_core::topics`), weighted by the attention it got, kept as a decayed profile in
//! storage. Raw page text never leaves the browser; page events carry only topic ids and
//! weights (`topics` on "Page Engaged").
//!
//! The model arrives after `ready` (`Sdk::set_topics_model`); until then pages are not
//! classified and `interests()` has ids but no names.

use portrait_core::Value;
use portrait_core::client::consent::Decision;
use portrait_core::topics::interests::{DEFAULT_HALF_LIFE_MS, Interests, PageCredit};
use portrait_core::topics::{Model, PageText, Scored};
use wasm_bindgen::prelude::*;
use web_sys::{Document, Element};

use crate::State;
use crate::convert::field;

/// Storage key of the profile.
const STORAGE_KEY: &str = "interests";
/// Interests that count for `data-portrait-show-if` and for the `interests` event.
const SHOWN_TOPICS: usize = 5;
/// Bounds on what is read from a page (the tokeniser bounds the terms too).
const MAX_HEADINGS: u32 = 20;
const MAX_FIELD_CHARS: usize = 300;
const MAX_JSON_LD_SCRIPTS: u32 = 5;
const MAX_JSON_LD_BYTES: usize = 64 * 1024;
const VISIBLE_TEXT_CHARS: usize = 2_000;

/// The SDK's interest state.
pub struct Topics {
    model: Option<Model>,
    pub profile: Interests,
    /// The current page's labels (empty until the model is there).
    page: Vec<Scored>,
    credit: PageCredit,
    /// The top topic ids last announced on `interests`.
    announced: Vec<u16>,
    /// Read a sample of visible text too (`load` option `topicsVisibleText`).
    pub visible_text: bool,
}

impl Topics {
    pub fn new(stored: Option<String>, half_life_ms: Option<i64>, visible_text: bool) -> Topics {
        let half_life = half_life_ms.unwrap_or(DEFAULT_HALF_LIFE_MS);
        Topics {
            model: None,
            profile: stored.map_or_else(
                || Interests::with_half_life(half_life),
                |t| Interests::from_stored_text(&t, half_life),
            ),
            page: Vec::new(),
            credit: PageCredit::default(),
            announced: Vec::new(),
            visible_text,
        }
    }
}

impl Topics {
    pub fn has_model(&self) -> bool {
        self.model.is_some()
    }
}

/// Personalisation consent, withdrawn, turns interests off (and clears them).
fn allowed(state: &State) -> bool {
    state.consent.personalization != Decision::Denied
}

/// The model arrived: classify the page the visitor is on and show what depends on it.
pub fn set_model(state: &mut State, model: Model) {
    state.topics.model = Some(model);
    classify_page(state);
    changed(state);
}

/// A page view starts: what it is about (after the page's own scripts had a turn, for SPAs).
pub fn classify_page(state: &mut State) {
    state.topics.credit = PageCredit::default();
    state.topics.page.clear();
    let Some(model) = &state.topics.model else { return };
    let Some(document) = web_sys::window().and_then(|w| w.document()) else { return };
    let (text, hints) = read_page(&document, &state.page.href, state.topics.visible_text);
    let hinted = model.hinted(&hints);
    state.topics.page = if hinted.is_empty() { model.classify(&text.features()).labels } else { hinted };
}

/// Credits the current page with the attention it got so far; returns the topic weights
/// added, for the "Page Engaged" event (`[[topic id, weight], …]`), or `None`.
pub fn credit(state: &mut State, now: i64) -> Option<Value> {
    if !allowed(state) || state.topics.page.is_empty() {
        return None;
    }
    let weight = state.topics.credit.top_up(state.page.engaged_total_ms, state.page.deepest_scroll);
    if weight <= 0.0 {
        return None;
    }
    let mut added = Vec::new();
    for scored in &state.topics.page {
        let delta = f64::from(scored.score) * weight;
        state.topics.profile.add(scored.id, delta, now);
        let rounded = (delta * 1000.0).round() / 1000.0;
        if rounded > 0.0 {
            added.push(Value::Array(vec![Value::Int(scored.id.into()), Value::Float(rounded)]));
        }
    }
    let stored = state.topics.profile.to_stored_text();
    state.store.set(STORAGE_KEY, &stored, false);
    changed(state);
    (!added.is_empty()).then_some(Value::Array(added))
}

/// Forgets every interest (`reset()`, personalisation withdrawn).
pub fn clear(state: &mut State) {
    state.topics.profile = Interests::with_half_life(DEFAULT_HALF_LIFE_MS);
    state.store.remove(STORAGE_KEY, false);
    changed(state);
}

/// The deepest scroll of this page view so far, in percent.
pub fn note_scroll(state: &mut State, depth_percent: f64) {
    state.page.deepest_scroll = state.page.deepest_scroll.max(depth_percent);
}

/// `interests({limit})`: `[{id, name, path, score}]`, best first, scores decayed to now.
pub fn top(state: &State, now: i64, limit: usize) -> JsValue {
    if !allowed(state) {
        return js_sys::Array::new().into();
    }
    topic_list(state, state.topics.profile.top(now, limit))
}

/// `pageTopics()`: the current page's labels, best first.
pub fn page_topics(state: &State) -> JsValue {
    topic_list(state, state.topics.page.iter().map(|s| (s.id, f64::from(s.score))).collect())
}

/// `[{id, name, path, score}]` (name and path once the model is loaded).
fn topic_list(state: &State, scored: Vec<(u16, f64)>) -> JsValue {
    let list = js_sys::Array::new();
    for (id, score) in scored {
        let entry = js_sys::Object::new();
        let set = |key: &str, value: JsValue| js_sys::Reflect::set(&entry, &key.into(), &value).map(drop);
        let topic = state.topics.model.as_ref().and_then(|m| m.topic(id));
        let _ = set("id", id.into());
        if let Some(topic) = topic {
            let _ = set("name", topic.name.as_str().into());
            let _ = set("path", topic.path().into());
        }
        let _ = set("score", ((score * 1000.0).round() / 1000.0).into());
        list.push(&entry);
    }
    list.into()
}

/// After any change: re-evaluates `data-portrait-show-if` elements and announces a new top
/// set on `interests`.
fn changed(state: &mut State) {
    let now = js_sys::Date::now() as i64;
    let top: Vec<u16> = if allowed(state) {
        state.topics.profile.top(now, SHOWN_TOPICS).into_iter().map(|(id, _)| id).collect()
    } else {
        Vec::new()
    };
    apply_show_if(state, &top);
    if top != state.topics.announced {
        state.topics.announced = top;
        let detail = self::top(state, now, SHOWN_TOPICS);
        state.emits.push(("interests", detail));
    }
}

/// `data-portrait-show-if="interest:/Computers & Electronics"`: shown (the `hidden`
/// attribute removed) while one of the visitor's top interests is that topic or under it;
/// hidden otherwise. Several conditions separated by `|` show the element if any holds; a
/// condition may name a topic id (`interest:5`).
fn apply_show_if(state: &State, top: &[u16]) {
    let Some(document) = web_sys::window().and_then(|w| w.document()) else { return };
    let Ok(elements) = document.query_selector_all("[data-portrait-show-if]") else { return };
    let paths: Vec<&str> = match &state.topics.model {
        Some(model) => top.iter().filter_map(|&id| model.topic(id)).map(|t| t.path()).collect(),
        None => Vec::new(),
    };
    for i in 0..elements.length() {
        let Some(element) = elements.item(i).and_then(|n| n.dyn_into::<Element>().ok()) else { continue };
        let rule = element.get_attribute("data-portrait-show-if").unwrap_or_default();
        let show = rule.split('|').any(|condition| {
            let Some(wanted) = condition.trim().strip_prefix("interest:") else { return false };
            let wanted = wanted.trim().trim_end_matches('/');
            match wanted.parse::<u16>() {
                Ok(id) => top.contains(&id),
                Err(_) => paths.iter().any(|path| {
                    path.eq_ignore_ascii_case(wanted)
                        || (path.len() > wanted.len()
                            && path.is_char_boundary(wanted.len())
                            && path[..wanted.len()].eq_ignore_ascii_case(wanted)
                            && path.as_bytes()[wanted.len()] == b'/')
                }),
            }
        });
        let _ = if show { element.remove_attribute("hidden") } else { element.set_attribute("hidden", "") };
    }
}

/// The page's text fields and the site's topic hints, read with bounded work.
fn read_page(document: &Document, href: &str, visible_text: bool) -> (PageText, Vec<String>) {
    let clip = |text: String| -> String { text.trim().chars().take(MAX_FIELD_CHARS).collect() };
    let mut page =
        PageText { url: href.to_owned(), titles: vec![clip(document.title())], ..PageText::default() };
    let mut hints = Vec::new();
    for_each(document, "meta[name], meta[property]", 200, |meta| {
        let key = meta.get_attribute("name").or_else(|| meta.get_attribute("property")).unwrap_or_default();
        let content = clip(meta.get_attribute("content").unwrap_or_default());
        match key.to_ascii_lowercase().as_str() {
            "description" | "og:description" => page.descriptions.push(content),
            "og:title" => page.titles.push(content),
            "keywords" | "article:section" | "article:tag" => page.keywords.push(content),
            "portrait:topics" => hints.push(content),
            _ => {}
        }
    });
    for_each(document, "[data-portrait-topics]", 50, |element| {
        hints.extend(element.get_attribute("data-portrait-topics"));
    });
    for_each(document, "h1, h2, h3", MAX_HEADINGS, |heading| {
        page.headings.push(clip(heading.text_content().unwrap_or_default()));
    });
    for_each(document, "script[type=\"application/ld+json\"]", MAX_JSON_LD_SCRIPTS, |script| {
        let text = script.text_content().unwrap_or_default();
        if text.len() <= MAX_JSON_LD_BYTES
            && let Ok(json) = js_sys::JSON::parse(&text)
        {
            read_json_ld(&json, 0, &mut page);
        }
    });
    if visible_text {
        let text = document.body().map(|b| b.inner_text()).unwrap_or_default();
        page.text = text.chars().take(VISIBLE_TEXT_CHARS).collect();
    }
    (page, hints)
}

fn for_each(document: &Document, selector: &str, limit: u32, mut visit: impl FnMut(&Element)) {
    let Ok(nodes) = document.query_selector_all(selector) else { return };
    for i in 0..nodes.length().min(limit) {
        if let Some(element) = nodes.item(i).and_then(|n| n.dyn_into::<Element>().ok()) {
            visit(&element);
        }
    }
}

/// JSON-LD: `headline` as a title; `@type`, `articleSection`, `keywords` and `about` (a
/// string, `{name}`, or lists of them) as keywords; `@graph` and nested objects, two deep.
fn read_json_ld(value: &JsValue, depth: u32, page: &mut PageText) {
    if depth > 2 {
        return;
    }
    if let Some(list) = value.dyn_ref::<js_sys::Array>() {
        for item in list.iter().take(20) {
            read_json_ld(&item, depth + 1, page);
        }
        return;
    }
    if !value.is_object() {
        return;
    }
    let strings = |v: JsValue| -> Vec<String> {
        match v.dyn_ref::<js_sys::Array>() {
            Some(list) => list
                .iter()
                .take(20)
                .filter_map(|item| item.as_string().or_else(|| field(&item, "name").as_string()))
                .collect(),
            None => v.as_string().or_else(|| field(&v, "name").as_string()).into_iter().collect(),
        }
    };
    page.titles.extend(strings(field(value, "headline")));
    for key in ["@type", "articleSection", "keywords", "about"] {
        page.keywords.extend(strings(field(value, key)));
    }
    read_json_ld(&field(value, "@graph"), depth + 1, page);
    read_json_ld(&field(value, "mainEntity"), depth + 1, page);
}
