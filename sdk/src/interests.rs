//! Interest tags on the device: what each page is about (read from the DOM, classified by
//! `portrait_core::topics`), weighted by the attention it got, kept as a decayed profile in
//! storage. Raw page text never leaves the browser; page events carry only topic ids and
//! weights (`topics` on "Page Engaged").
//!
//! The model arrives after `ready` (`Sdk::set_topics_model`); until then pages are not
//! classified and `interests()` has ids but no names.

use portrait_core::Value;
use portrait_core::topics::interests::{DEFAULT_HALF_LIFE_MS, Interests, PageCredit};
use portrait_core::topics::rules::{self, MAX_RULES, TagRule};
use portrait_core::topics::{Model, PageText, Scored};
use wasm_bindgen::prelude::*;
use web_sys::{Document, Element};

use crate::State;
use crate::convert::field;

/// Storage key of the profile.
const STORAGE_KEY: &str = "interests";
const TAGS_STORAGE_KEY: &str = "tags";
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
    profile: Interests,
    /// The site's own tags (the workspace's tag rules), kept like the topics.
    site_tags: Interests<String>,
    rules: Vec<TagRule>,
    /// The current page's labels (empty until the model is there) and site tags.
    page: Vec<Scored>,
    page_tags: Vec<(String, f64)>,
    credit: PageCredit,
    /// The top topic ids last announced on `interests`.
    announced: Vec<u16>,
    half_life_ms: i64,
    /// Read a sample of visible text too (`load` option `topicsVisibleText`).
    visible_text: bool,
}

impl Topics {
    /// `stored`: what storage holds under the interests and tags keys (`None` when
    /// personalisation is denied); `rules`: the remote settings' `tag_rules`.
    pub fn new(
        stored: [Option<String>; 2],
        half_life_ms: Option<i64>,
        visible_text: bool,
        rules: Vec<TagRule>,
    ) -> Topics {
        let half_life_ms = half_life_ms.unwrap_or(DEFAULT_HALF_LIFE_MS);
        let [topics, tags] = stored;
        Topics {
            model: None,
            profile: Interests::from_stored_text(topics.as_deref().unwrap_or(""), half_life_ms),
            site_tags: Interests::from_stored_text(tags.as_deref().unwrap_or(""), half_life_ms),
            rules,
            page: Vec::new(),
            page_tags: Vec::new(),
            credit: PageCredit::default(),
            announced: Vec::new(),
            half_life_ms,
            visible_text,
        }
    }

    pub fn has_model(&self) -> bool {
        self.model.is_some()
    }
}

/// The remote settings' `tag_rules`: the valid ones (the collector validated them already).
pub fn read_rules(remote: &JsValue) -> Vec<TagRule> {
    let Some(list) = field(remote, "tag_rules").dyn_ref::<js_sys::Array>().cloned() else {
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
        .collect()
}

/// The model arrived: classify the page the visitor is on and show what depends on it.
pub fn set_model(state: &mut State, model: Model) {
    state.topics.model = Some(model);
    classify_page(state);
    changed(state);
}

/// A page view starts: nothing credited yet.
pub fn new_page_view(state: &mut State) {
    state.topics.credit = PageCredit::default();
}

/// What the current page is about: the site's tag rules, and the topics once the model is
/// there. Called when a view starts (a task later, so an SPA's router has rendered), when the
/// model arrives, and by `pageTopics({refresh: true})`.
pub fn classify_page(state: &mut State) {
    let topics = &mut state.topics;
    topics.page.clear();
    topics.page_tags.clear();
    if topics.model.is_none() && topics.rules.is_empty() {
        return;
    }
    let Some(document) = web_sys::window().and_then(|w| w.document()) else { return };
    let page = read_page(&document, &state.page.href, topics.visible_text);
    let path = state.page.context.page.path.as_deref().unwrap_or("/");
    let meta =
        |name: &str| page.metas.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, c)| c.clone());
    let has = |selector: &str| document.query_selector(selector).ok().flatten().is_some();
    for rule in &topics.rules {
        if rule.matches(path, meta, has) && !topics.page_tags.iter().any(|(tag, _)| *tag == rule.tag) {
            topics.page_tags.push((rule.tag.clone(), rule.weight));
        }
    }
    if let Some(model) = &topics.model {
        let hinted = model.hinted(&page.hints);
        topics.page = if hinted.is_empty() { model.classify(&page.text.features()).labels } else { hinted };
    }
}

/// Credits the current page with the attention it got so far; returns what the
/// "Page Engaged" event carries of it: `topics` (`[[topic id, weight], …]`) and `tags`
/// (`[[site tag, weight], …]`), each when not empty.
pub fn credit(state: &mut State, now: i64) -> Vec<(&'static str, Value)> {
    let topics = &mut state.topics;
    if !state.consent.may_personalize() || (topics.page.is_empty() && topics.page_tags.is_empty()) {
        return Vec::new();
    }
    let weight = topics.credit.top_up(state.page.engaged_total_ms, state.page.deepest_scroll);
    if weight <= 0.0 {
        return Vec::new();
    }
    let labels = topics.page.iter().map(|s| (s.id, f64::from(s.score)));
    let sent_topics = add_weighted(&mut topics.profile, labels, weight, now, |id| Value::Int(id.into()));
    let sent_tags =
        add_weighted(&mut topics.site_tags, topics.page_tags.iter().cloned(), weight, now, Value::String);
    // Rewrite only the profiles this page added to.
    if !topics.page.is_empty() {
        state.store.set(STORAGE_KEY, &topics.profile.to_stored_text(), false);
    }
    if !topics.page_tags.is_empty() {
        state.store.set(TAGS_STORAGE_KEY, &topics.site_tags.to_stored_text(), false);
    }
    changed(state);
    [("topics", sent_topics), ("tags", sent_tags)]
        .into_iter()
        .filter(|(_, sent)| !sent.is_empty())
        .map(|(name, sent)| (name, Value::Array(sent)))
        .collect()
}

/// Adds each label × `weight` to `profile`; returns the `[key, weight]` pairs for the wire
/// (weights rounded to 0.001; those that round to 0 are not sent).
fn add_weighted<K: Ord + Clone + std::fmt::Display + std::str::FromStr>(
    profile: &mut Interests<K>,
    labels: impl Iterator<Item = (K, f64)>,
    weight: f64,
    now: i64,
    key: impl Fn(K) -> Value,
) -> Vec<Value> {
    let mut sent = Vec::new();
    for (label, score) in labels {
        let delta = score * weight;
        profile.add(label.clone(), delta, now);
        let rounded = (delta * 1000.0).round() / 1000.0;
        if rounded > 0.0 {
            sent.push(Value::Array(vec![key(label), Value::Float(rounded)]));
        }
    }
    sent
}

/// Forgets every interest and site tag (`reset()`, personalisation withdrawn).
pub fn clear(state: &mut State) {
    state.topics.profile = Interests::with_half_life(state.topics.half_life_ms);
    state.topics.site_tags = Interests::with_half_life(state.topics.half_life_ms);
    state.store.remove(STORAGE_KEY, false);
    state.store.remove(TAGS_STORAGE_KEY, false);
    changed(state);
}

/// The deepest scroll of this page view so far, in percent.
pub fn note_scroll(state: &mut State, depth_percent: f64) {
    state.page.deepest_scroll = state.page.deepest_scroll.max(depth_percent);
}

/// `interests({limit})`: `[{id, name, path, score}]`, best first, scores decayed to now.
pub fn top(state: &State, now: i64, limit: usize) -> JsValue {
    if !state.consent.may_personalize() {
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
    let (top, tags): (Vec<u16>, Vec<String>) = if state.consent.may_personalize() {
        let ids = state.topics.profile.top(now, SHOWN_TOPICS).into_iter().map(|(id, _)| id).collect();
        let tags = state.topics.site_tags.top(now, SHOWN_TOPICS).into_iter().map(|(tag, _)| tag).collect();
        (ids, tags)
    } else {
        (Vec::new(), Vec::new())
    };
    apply_show_if(state, &top, &tags);
    if top != state.topics.announced {
        state.topics.announced = top;
        let detail = self::top(state, now, SHOWN_TOPICS);
        state.emits.push(("interests", detail));
    }
}

/// `data-portrait-show-if` elements are shown (their `hidden` attribute removed) while their
/// condition holds for the visitor's top topics and site tags, hidden otherwise
/// (`portrait_core::topics::rules::show_if` has the syntax).
fn apply_show_if(state: &State, top: &[u16], tags: &[String]) {
    let Some(document) = web_sys::window().and_then(|w| w.document()) else { return };
    let Ok(elements) = document.query_selector_all("[data-portrait-show-if]") else { return };
    let topics: Vec<(u16, &str)> = match &state.topics.model {
        Some(model) => top.iter().filter_map(|&id| model.topic(id)).map(|t| (t.id, t.path())).collect(),
        None => Vec::new(),
    };
    for i in 0..elements.length() {
        let Some(element) = elements.item(i).and_then(|n| n.dyn_into::<Element>().ok()) else { continue };
        let condition = element.get_attribute("data-portrait-show-if").unwrap_or_default();
        let _ = if rules::show_if(&condition, &topics, tags) {
            element.remove_attribute("hidden")
        } else {
            element.set_attribute("hidden", "")
        };
    }
}

/// What the SDK reads from a page.
struct PageRead {
    text: PageText,
    /// The site's topic hints (`portrait:topics`, `data-portrait-topics`).
    hints: Vec<String>,
    /// Every `<meta>` name (or property) with its content, for the tag rules.
    metas: Vec<(String, String)>,
}

/// The page's text fields, topic hints and meta tags, read with bounded work.
fn read_page(document: &Document, href: &str, visible_text: bool) -> PageRead {
    let clip = |text: String| -> String { text.trim().chars().take(MAX_FIELD_CHARS).collect() };
    let mut page =
        PageText { url: href.to_owned(), titles: vec![clip(document.title())], ..PageText::default() };
    let mut hints = Vec::new();
    let mut metas = Vec::new();
    for_each(document, "meta[name], meta[property]", 200, |meta| {
        let key = meta.get_attribute("name").or_else(|| meta.get_attribute("property")).unwrap_or_default();
        let content = clip(meta.get_attribute("content").unwrap_or_default());
        metas.push((key.clone(), content.clone()));
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
    PageRead { text: page, hints, metas }
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
