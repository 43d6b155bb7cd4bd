//! What the SDK records without being asked: page views (SPA navigations included), clicks,
//! form submissions, scroll depth and engaged time. Each switchable; the rules themselves are
//! in `portrait_core::client::capture`. Also the listeners the transport needs (`pagehide`,
//! `pageshow`, `visibilitychange`, `online`), which are always on.

use std::cell::RefCell;
use std::rc::{Rc, Weak};

use js_sys::{Function, Reflect};
use portrait_core::client::capture;
use portrait_core::config::Autocapture;
use wasm_bindgen::prelude::*;
use web_sys::{AddEventListenerOptions, Element, EventTarget, HtmlFormElement};

use crate::convert::{Props, bool_field, field};
use crate::{State, convert, interests, run};

/// Scroll positions are read at most this often (reading them forces layout).
const SCROLL_CHECK_MS: f64 = 250.0;
const CLICKABLE: &str =
    "a, button, [data-portrait-event], input[type=submit], input[type=button], [role=button]";

/// The switches (`portrait_core::config::Autocapture`, which the collector's settings use
/// too): `load`'s `autocapture` option (`false` for none, or `{pageViews, clicks, …}`) over the
/// remote settings' `autocapture` (`{page_views, clicks, …}`); each on by default.
pub fn read_switches(local: &JsValue, remote: &JsValue) -> Autocapture {
    let all = local.as_bool().unwrap_or(true);
    let switch = |camel: &str, snake: &str| {
        all && bool_field(&[local], camel).or_else(|| bool_field(&[remote], snake)).unwrap_or(true)
    };
    Autocapture {
        page_views: switch("pageViews", "page_views"),
        clicks: switch("clicks", "clicks"),
        forms: switch("forms", "forms"),
        scroll: switch("scroll", "scroll"),
        engagement: switch("engagement", "engagement"),
        campaigns: switch("campaigns", "campaigns"),
    }
}

pub fn install(state: &Rc<RefCell<State>>) {
    let Some(window) = web_sys::window() else { return };
    let Some(document) = window.document() else { return };
    let switches = state.borrow().options.autocapture;
    let me = Rc::downgrade(state);
    listen(&window, "pagehide", false, &me, |state, now, _| {
        report_engagement(state, now);
        state.hide(now, true);
    });
    listen(&window, "pageshow", false, &me, |state, now, _| state.show(now));
    listen(&window, "online", false, &me, |state, now, _| state.back_online(now));
    listen(&document, "visibilitychange", false, &me, |state, now, _| {
        let hidden = web_sys::window().and_then(|w| w.document()).is_some_and(|d| d.hidden());
        if hidden {
            report_engagement(state, now);
            state.page.engagement.hidden(now);
            state.hide(now, false);
        } else {
            state.page.engagement.activity(now);
        }
    });
    if switches.page_views {
        let history = window.history().map(JsValue::from).unwrap_or(JsValue::UNDEFINED);
        for method in ["pushState", "replaceState"] {
            let Ok(original) = Reflect::get(&history, &method.into()).and_then(|f| f.dyn_into::<Function>())
            else {
                continue;
            };
            let (target, me) = (history.clone(), me.clone());
            let wrapper = Closure::<dyn Fn(JsValue, JsValue, JsValue) -> JsValue>::new(move |a, b, c| {
                let result = original.call3(&target, &a, &b, &c);
                if let Some(state) = me.upgrade() {
                    run(&state, &mut navigated);
                }
                result.unwrap_or(JsValue::UNDEFINED)
            });
            let _ = Reflect::set(&history, &method.into(), wrapper.as_ref());
            wrapper.forget();
        }
        for name in ["popstate", "hashchange"] {
            listen(&window, name, false, &me, |state, now, _| navigated(state, now));
        }
    }
    if switches.clicks {
        listen(&document, "click", true, &me, on_click);
    }
    if switches.forms {
        listen(&document, "submit", true, &me, on_submit);
    }
    if switches.scroll {
        listen(&window, "scroll", false, &me, |state, now, _| on_scroll(state, now));
    }
    if switches.engagement {
        for name in ["pointerdown", "keydown", "touchstart", "scroll", "mousemove"] {
            listen(&window, name, false, &me, |state, now, _| state.page.engagement.activity(now));
        }
    }
}

/// Adds a passive listener that runs `work` on the state.
/// `work` is a plain function, not a closure: one compiled listener serves them all (each
/// closure type would bring its own copy and its own wasm-bindgen glue).
fn listen(
    target: &EventTarget,
    name: &str,
    capture: bool,
    me: &Weak<RefCell<State>>,
    work: fn(&mut State, i64, &web_sys::Event),
) {
    let me = me.clone();
    let listener = Closure::<dyn Fn(web_sys::Event)>::new(move |event: web_sys::Event| {
        if let Some(state) = me.upgrade() {
            run(&state, &mut |state, now| work(state, now, &event));
        }
    });
    let options = AddEventListenerOptions::new();
    options.set_capture(capture);
    options.set_passive(true);
    let _ = target.add_event_listener_with_callback_and_add_event_listener_options(
        name,
        listener.as_ref().unchecked_ref(),
        &options,
    );
    listener.forget();
}

/// After `pushState`, `replaceState`, `popstate` or `hashchange`: a page view if the URL
/// changed (a `replaceState` to the same URL is not a view).
fn navigated(state: &mut State, now: i64) {
    let href = web_sys::window().and_then(|w| w.location().href().ok()).unwrap_or_default();
    if !state.page.is_new(&href) {
        return;
    }
    report_engagement(state, now);
    let previous = std::mem::take(&mut state.page.href);
    let campaigns = state.options.autocapture.campaigns;
    state.page.enter(now, Some(previous), &mut state.session, &mut state.store, campaigns);
    state.capture_page_view(now);
    interests::page_view(state);
}

/// On leaving or hiding a page: the engaged time since the last report, and the interest
/// weight it earned (`topics`, and `tags` from the site's tag rules), on one "Page Engaged"
/// event.
fn report_engagement(state: &mut State, now: i64) {
    let engaged_ms = state.page.engagement.take(now);
    state.page.engaged_total_ms += engaged_ms;
    let credited: Vec<(String, JsValue)> = convert::entries(&interests::credit(state)).collect();
    if !state.options.autocapture.engagement || (engaged_ms < 1_000 && credited.is_empty()) {
        return;
    }
    let mut properties = path_property(state);
    properties.int("engaged_ms", engaged_ms);
    for (key, value) in &credited {
        properties.value(key, value);
    }
    state.capture_track(now, "Page Engaged", &properties);
}

fn path_property(state: &State) -> Props {
    let mut properties = Props::default();
    properties.str("path", state.page.path());
    properties
}

fn on_click(state: &mut State, now: i64, event: &web_sys::Event) {
    let Some(target) = event.target().and_then(|t| t.dyn_into::<Element>().ok()) else { return };
    let Ok(Some(element)) = target.closest(CLICKABLE) else { return };
    let tag = element.tag_name().to_ascii_lowercase();
    // The element's `data-portrait-*` attributes first: they win over what is read here.
    let mut properties = Props::default();
    for name in element.get_attribute_names().iter().filter_map(|n| n.as_string()) {
        if let (Some(key), Some(value)) = (capture::data_property(&name), element.get_attribute(&name)) {
            properties.str(&key, &value);
        }
    }
    let text = match tag.as_str() {
        "input" => field(&element, "value").as_string().unwrap_or_default(),
        _ => element.text_content().unwrap_or_default(),
    };
    properties.str("tag", &tag);
    properties.str("text", &capture::element_text(&text));
    if !element.id().is_empty() {
        properties.str("id", &element.id());
    }
    let href = field(&element, "href").as_string().filter(|h| !h.is_empty() && tag == "a");
    if let Some(href) = &href {
        let kind = capture::link_kind(href, &state.page.host, element.has_attribute("download"));
        properties.str("href", href);
        properties.bool("outbound", kind.outbound);
        properties.bool("download", kind.download);
    }
    let name = match element.get_attribute("data-portrait-event").filter(|n| !n.is_empty()) {
        Some(name) => name,
        None if href.is_some() => "Link Clicked".into(),
        None => "Button Clicked".into(),
    };
    state.capture_track(now, &name, &properties);
}

/// What `HTMLFormElement.length` counts, without reading a property a field can shadow.
const FORM_CONTROLS: &str = "button, fieldset, input:not([type=image]), object, output, select, textarea";

fn on_submit(state: &mut State, now: i64, event: &web_sys::Event) {
    let Some(form) = event.target().and_then(|t| t.dyn_into::<HtmlFormElement>().ok()) else { return };
    let mut properties = Props::default();
    // Attributes, not the form's properties: a field named `name`, `id`, `action` or `length`
    // replaces the property of that name with the field element.
    for (key, attribute) in [("form_id", "id"), ("form_name", "name"), ("action", "action")] {
        if let Some(value) = form.get_attribute(attribute).filter(|v| !v.is_empty()) {
            properties.str(key, &value);
        }
    }
    // The number of fields (the form's listed controls), never their values.
    let fields = form.query_selector_all(FORM_CONTROLS).map_or(0, |nodes| nodes.length());
    properties.int("fields", i64::from(fields));
    state.capture_track(now, "Form Submitted", &properties);
}

fn on_scroll(state: &mut State, now: i64) {
    let now_f = now as f64;
    if now_f - state.page.last_scroll_check < SCROLL_CHECK_MS {
        return;
    }
    state.page.last_scroll_check = now_f;
    let Some(window) = web_sys::window() else { return };
    let height = |v: Result<JsValue, JsValue>| v.ok().and_then(|v| v.as_f64()).unwrap_or(0.0);
    let document_height =
        window.document().and_then(|d| d.document_element()).map_or(0.0, |e| f64::from(e.scroll_height()));
    let depth = capture::scroll_depth(
        window.scroll_y().unwrap_or(0.0),
        height(window.inner_height()),
        document_height,
    );
    state.page.deepest_scroll = state.page.deepest_scroll.max(depth);
    for milestone in capture::new_milestones(depth, &mut state.page.scroll_reached) {
        let mut properties = path_property(state);
        properties.int("depth", milestone.into());
        state.capture_track(now, "Scroll Depth Reached", &properties);
    }
}
