//! What the SDK records without being asked: page views (SPA navigations included), clicks,
//! form submissions, scroll depth and engaged time. Each switchable; the rules themselves are
//! in `portrait_core::client::capture`. Also the listeners the transport needs (`pagehide`,
//! `pageshow`, `visibilitychange`, `online`), which are always on.

use std::cell::RefCell;
use std::rc::Rc;

use js_sys::Array;
use portrait_core::client::consent::Decision;
use portrait_core::client::{capture, concat, keeps_event_time, url};
use portrait_core::config::Autocapture;
use portrait_core::topics::interests::ENGAGED_EVENT;
use wasm_bindgen::prelude::*;

use crate::convert::{MOST_PRIVATE, Props, Unreadable, bool_field};
use crate::dom::{self, kind};
use crate::page::Arrival;
use crate::{State, convert, interests, run};

/// Scroll positions are read at most this often (reading them forces layout).
const SCROLL_CHECK_MS: f64 = 250.0;

/// The switches (`portrait_core::config::Autocapture`, which the collector's settings use
/// too): `load`'s `autocapture` option (`false` for none, or `{pageViews, clicks, …}`) over the
/// remote settings' `autocapture` (`{page_views, clicks, …}`); each on by default. What the
/// option states that is neither is noted in `unreadable` and read as off (the more private
/// reading); an unknown switch is noted and changes nothing.
pub fn read_switches(local: &JsValue, remote: &JsValue, unreadable: &mut Vec<Unreadable>) -> Autocapture {
    const SWITCHES: [&str; 6] = ["pageViews", "clicks", "forms", "scroll", "engagement", "campaigns"];
    let all = match local.as_bool() {
        Some(all) => all,
        None if local.is_undefined() || local.is_null() || convert::is_plain_object(local) => true,
        None => {
            unreadable.push(("autocapture".to_owned(), MOST_PRIVATE));
            false
        }
    };
    for (key, value) in convert::entries(local) {
        let problem = match SWITCHES.contains(&key.as_str()) {
            false => "unknown autocapture switch: pageViews, clicks, forms, scroll, engagement or campaigns",
            true if value.as_bool().is_none() && !value.is_undefined() && !value.is_null() => MOST_PRIVATE,
            true => continue,
        };
        unreadable.push((concat(&["autocapture.", &key]), problem));
    }
    let switch = |camel: &str, snake: &str| {
        let stated = convert::stated_field(local, camel).map(|value| value.as_bool().unwrap_or(false));
        all && stated.or_else(|| bool_field(&[remote], snake)).unwrap_or(true)
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

/// What autocapture made an event for, by its switch (`Autocapture`'s fields).
#[derive(Clone, Copy)]
pub enum Autocaptured {
    PageView,
    Click,
    Form,
    Scroll,
    Engagement,
}

impl Autocaptured {
    /// Whether `switches` capture this kind.
    pub fn is_on(self, switches: &Autocapture) -> bool {
        match self {
            Autocaptured::PageView => switches.page_views,
            Autocaptured::Click => switches.clicks,
            Autocaptured::Form => switches.forms,
            Autocaptured::Scroll => switches.scroll,
            Autocaptured::Engagement => switches.engagement,
        }
    }
}

/// Adds the listeners (`dom::listen`): the switched-on autocapture's, those the transport
/// needs, and those that measure a page's attention (it weighs the interests whether or not
/// engagement and scroll depth are captured).
pub fn install(state: &Rc<RefCell<State>>) {
    let Autocapture { clicks, forms, .. } = state.borrow().options.autocapture;
    let me = Rc::downgrade(state);
    let on = Closure::<dyn Fn(u32, JsValue)>::new(move |kind: u32, value: JsValue| {
        let Some(state) = me.upgrade() else { return };
        run(&state, &mut |state, now| on_dom(state, now, kind, &value));
        // Hidden or left: what the last step captured is sent in a second one, after the
        // page's middleware (if any) has passed it on.
        let closing = kind == kind::PAGE_HIDE;
        if closing || (kind == kind::VISIBILITY && value.is_truthy()) {
            run(&state, &mut |state, now| state.hide(now, closing));
        }
    });
    dom::listen(&[clicks, forms].map(u8::from), on.as_ref().unchecked_ref());
    on.forget();
}

/// What a listener reported (`dom::kind`), with its value.
fn on_dom(state: &mut State, now: i64, kind: u32, value: &JsValue) {
    match kind {
        kind::PAGE_HIDE => {
            report_engagement(state, now, true);
            state.capture_auto_view();
        }
        kind::PAGE_SHOW => state.show(now, value.is_truthy()),
        kind::ONLINE => state.back_online(now),
        kind::VISIBILITY if value.is_truthy() => {
            report_engagement(state, now, true);
            state.capture_auto_view();
            state.page.engagement.hidden(now);
        }
        kind::VISIBILITY => {
            state.shown();
            state.page.seen = true;
            state.page.engagement.activity(now);
        }
        kind::ACTIVITY => visitor_active(state, now),
        kind::NAVIGATION => navigated(state, now, value.as_string().unwrap_or_default(), false),
        kind::REPLACED => navigated(state, now, value.as_string().unwrap_or_default(), true),
        // The key another tab wrote, or `-key` when it removed it.
        kind::STORED_ELSEWHERE => match value.as_string().as_deref() {
            Some("consent" | "-consent") => state.consent_stored_elsewhere(now),
            Some("interests" | "tags" | "-interests" | "-tags") => interests::credited_elsewhere(state, now),
            Some(key) => state.visitor_stored_elsewhere(now, key.starts_with('-')),
            None => {}
        },
        // Switched on when the listeners were added; late settings may switch them off.
        kind::CLICK if state.options.autocapture.clicks && !value.is_undefined() => {
            on_click(state, now, value.unchecked_ref())
        }
        kind::SUBMIT if state.options.autocapture.forms && !value.is_undefined() => {
            on_submit(state, now, value.unchecked_ref())
        }
        kind::SCROLL => {
            visitor_active(state, now);
            on_scroll(state, now);
        }
        _ => {}
    }
}

/// Input or scrolling: the page is engaged (its interests weigh more, and a `Page Engaged`
/// says so when engagement is captured), and the session lives on, events or not (a visitor reading for 40 minutes without a click is
/// in one session).
fn visitor_active(state: &mut State, now: i64) {
    // A hidden page's scroll is its own script's, not the visitor's.
    if state.hidden {
        return;
    }
    state.page.engagement.activity(now);
    state.follow_stored_session(now);
    state.touch_session(now);
}

/// After `pushState`, `replaceState` (`replaced`), `popstate` or `hashchange`: a new page if
/// the URL changed, and its view unless page views are off or the site calls `page()` for it
/// (the context is the new page's either way). A `replaceState` that changes only the query
/// rewrites the page in place (tracking parameters stripped on landing, a search box's
/// text): no new view. Nor does one while the view's automatic capture waits: a router's
/// redirect (`/` → `/en/`); the waiting view becomes the new URL's, with its referrer.
fn navigated(state: &mut State, now: i64, href: String, replaced: bool) {
    if !state.page.is_new(&href) {
        return;
    }
    if replaced && !url::is_new_path(&state.page.href, &href) {
        state.page.href = href;
        return;
    }
    if replaced && state.auto_view_at.is_some() {
        let campaigns = state.options.autocapture.campaigns;
        state.page.enter(now, Arrival::Redirect, &mut state.session, &mut state.store, campaigns);
        interests::page_view(state);
        return;
    }
    state.capture_auto_view();
    report_engagement(state, now, false);
    let previous = state.page.page[0].take().unwrap_or_default();
    let campaigns = state.options.autocapture.campaigns;
    state.follow_stored_session(now);
    state.page.enter(now, Arrival::Navigation(previous), &mut state.session, &mut state.store, campaigns);
    state.begin_auto_view(now);
    interests::page_view(state);
}

/// On leaving or hiding a page: the engaged time since the last report, and the interest
/// weight it earned (`topics`, and `tags` from the site's tag rules), on one "Page Engaged"
/// event. With engagement capture off the interests are credited on the device only.
/// `on_view`: the window still shows the view (hidden, left), not the next route of an SPA.
pub(crate) fn report_engagement(state: &mut State, now: i64, on_view: bool) {
    let engaged_ms = state.page.engagement.take(now);
    state.page.engaged_total_ms += engaged_ms;
    // Where the page is scrolled now counts too: a page that fits the window is read to its
    // end without a scroll event, and scroll capture may be off.
    if on_view {
        state.page.deepest_scroll = state.page.deepest_scroll.max(scroll_depth_now());
    }
    // A withdrawal made in another tab whose `storage` event has not come yet holds here
    // already: this event is dated after it, and would count at the collector.
    state.consent_stored_elsewhere(now);
    // A tab idle for longer than the collector keeps events: dated now instead.
    let at = Some(state.session.report_time(now)).filter(|&at| keeps_event_time(at, now)).unwrap_or(now);
    // A view the window still shows is read again before it is credited, as it is now (an
    // app renders after the view was read, a landing page's route too); not one younger than
    // its first read (`interests::page_view`): that would be the previous route's.
    let reread = on_view && now - state.page.entered_at >= i64::from(crate::AUTO_VIEW_GRACE_MS);
    let credit = interests::credit(state, at, reread);
    // Interests leave the device only with personalisation granted: credited while it is
    // pending, they stay here (a refusal must not find them queued or held).
    let credited: Vec<(String, JsValue)> = match state.consent.personalization {
        Decision::Granted => convert::entries(&credit).collect(),
        _ => Vec::new(),
    };
    if !state.options.autocapture.engagement || (engaged_ms < 1_000 && credited.is_empty()) {
        return;
    }
    let mut properties = path_property(state);
    properties.int("engaged_ms", engaged_ms);
    for (key, value) in &credited {
        properties.value(key, value);
    }
    state.capture_report(now, at, ENGAGED_EVENT, &properties);
}

fn path_property(state: &State) -> Props {
    let mut properties = Props::default();
    properties.str("path", state.page.path());
    properties
}

/// A click on something clickable: its facts as `dom::kind::CLICK` describes them.
fn on_click(state: &mut State, now: i64, facts: &Array) {
    let text = |index| dom::text(facts, index).unwrap_or_default();
    let tag = text(0);
    // The element's `data-portrait-*` attributes first: they win over what is read here.
    let mut properties = Props::default();
    let mut name = None;
    for index in (5..facts.length()).step_by(2) {
        let (attribute, value) = (text(index), text(index + 1));
        if let Some(key) = capture::data_property(&attribute) {
            properties.str(&key, &value);
        } else if attribute == "data-portrait-event" && !value.is_empty() {
            name = Some(value);
        }
    }
    properties.str("tag", &tag);
    properties.str("text", &capture::element_text(&text(1)));
    let id = text(2);
    if !id.is_empty() {
        properties.str("id", &id);
    }
    let href = Some(text(3)).filter(|href| !href.is_empty());
    if let Some(href) = &href {
        let kind = capture::link_kind(href, &state.page.site, facts.get(4).is_truthy());
        properties.str("href", href);
        properties.bool("outbound", kind.outbound);
        properties.bool("download", kind.download);
    }
    let name = match name {
        Some(name) => name,
        None if href.is_some() => "Link Clicked".into(),
        None => "Button Clicked".into(),
    };
    state.capture_auto(now, Autocaptured::Click, &name, &properties);
}

/// A form submitted: its facts as `dom::kind::SUBMIT` describes them.
fn on_submit(state: &mut State, now: i64, facts: &Array) {
    let mut properties = Props::default();
    for (index, key) in (0..).zip(["form_id", "form_name", "action"]) {
        if let Some(value) = dom::text(facts, index).filter(|v| !v.is_empty()) {
            properties.str(key, &value);
        }
    }
    properties.int("fields", dom::number(facts, 3).unwrap_or(0.0) as i64);
    state.capture_auto(now, Autocaptured::Form, "Form Submitted", &properties);
}

/// How far down the page the window reaches now, in percent ([`capture::scroll_depth`]).
pub(crate) fn scroll_depth_now() -> f64 {
    let position = dom::scroll_position();
    let at = |index| dom::number(&position, index).unwrap_or(0.0);
    capture::scroll_depth(at(0), at(1), at(2))
}

/// The deepest scroll of the view so far (its interests' weight), and the milestones it
/// reached when scroll depth is captured.
fn on_scroll(state: &mut State, now: i64) {
    let now_f = now as f64;
    let since = now_f - state.page.last_scroll_check;
    // (A clock set back makes `since` negative: due now, not after as long as the step.)
    if (0.0..SCROLL_CHECK_MS).contains(&since) {
        // The last scroll of a fling (or the End key) lands here: it is read when the window
        // ends, or 90 and 100 % would wait for the visitor's next scroll.
        if !state.page.scroll_check_due {
            state.page.scroll_check_due =
                state.timer((SCROLL_CHECK_MS - since).ceil() as i32, |state, now| {
                    // Not if another page view began meanwhile (`enter` clears it).
                    if std::mem::take(&mut state.page.scroll_check_due) {
                        on_scroll(state, now);
                    }
                });
        }
        return;
    }
    state.page.last_scroll_check = now_f;
    let depth = scroll_depth_now();
    state.page.deepest_scroll = state.page.deepest_scroll.max(depth);
    if !state.options.autocapture.scroll {
        return;
    }
    for milestone in capture::new_milestones(depth, &mut state.page.scroll_reached) {
        let mut properties = path_property(state);
        properties.int("depth", milestone.into());
        state.capture_auto(now, Autocaptured::Scroll, "Scroll Depth Reached", &properties);
    }
}
