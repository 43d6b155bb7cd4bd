//! The page and the browser, as `sdk/js/dom.js` reads them: a few imports that answer plain
//! values (strings, numbers, arrays of them), instead of a web-sys binding per DOM interface
//! and method. What the values mean is decided here and in `portrait_core::client`.

use js_sys::{Array, Function};
use wasm_bindgen::prelude::*;

#[wasm_bindgen(module = "/js/dom.js")]
extern "C" {
    /// url, path, title, referrer, search, host, user agent, language, screen width, height
    /// and pixel ratio, canonical link: read them with [`text`] and [`number`] at the indices
    /// in [`page`].
    pub fn page_facts() -> Array;
    pub fn hostname() -> String;
    /// `document.cookie`; empty when the page's getter answers no text.
    pub fn cookie_text() -> String;
    /// Sets a cookie (`document.cookie = text`); whether the browser took the write.
    pub fn cookie_write(text: &str) -> bool;
    /// `document.hidden`: a tab opened in the background, or one the visitor left.
    pub fn page_hidden() -> bool;
    /// Do-Not-Track, then Global Privacy Control, as booleans.
    pub fn privacy_signals() -> Array;
    /// The viewport's top, its height and the document's height.
    pub fn scroll_position() -> Array;
    /// `crypto.getRandomValues`, or `Math.random` where there is no Web Crypto.
    pub fn random_bytes(bytes: &mut [u8]);
    /// Where a trap in a call from the browser into the module goes: `emit("trap", error)`.
    pub fn report_traps(emit: &Function);
    /// `setTimeout(callback, ms)`; whether the timer is set (the page's may throw).
    pub fn after(ms: i32, callback: &JsValue) -> bool;
    /// A POST of a beacon; `done(status, retryAfter, counted)` (`crate::transport::post`).
    pub fn post(url: &str, body: &[u8], keepalive: bool, done: &JsValue);
    pub fn time_zone() -> Option<String>;
    /// `console[method]("portrait: " + message, detail)`.
    pub fn console_log(method: &str, message: &str, detail: &JsValue);
    /// Adds the listeners ([`kind`]): navigations, scrolling and input always, and those
    /// `switches` (clicks, forms; 0 or 1 each) ask for; each calls `on(kind, value)`.
    pub fn listen(switches: &[u8], on: &Function);
}

/// Indices into [`page_facts`].
pub mod page {
    pub const URL: u32 = 0;
    pub const PATH: u32 = 1;
    pub const TITLE: u32 = 2;
    pub const REFERRER: u32 = 3;
    pub const SEARCH: u32 = 4;
    pub const HOST: u32 = 5;
    pub const USER_AGENT: u32 = 6;
    pub const LANGUAGE: u32 = 7;
    pub const SCREEN: u32 = 8;
    pub const CANONICAL: u32 = 11;
}

/// What a listener reports, and the value it reports with it.
pub mod kind {
    pub const PAGE_HIDE: u32 = 0;
    /// Whether the page comes back from the back/forward cache (`persisted`).
    pub const PAGE_SHOW: u32 = 1;
    pub const ONLINE: u32 = 2;
    /// Whether the page is hidden now.
    pub const VISIBILITY: u32 = 3;
    /// `pushState`, `popstate` or `hashchange`: the location's href.
    pub const NAVIGATION: u32 = 4;
    /// `replaceState`: the location's href.
    pub const REPLACED: u32 = 10;
    /// tag, text, id, href (links only, else empty), whether `download` is set, then the
    /// element's attributes as name, value, …; `undefined` if nothing clickable was clicked.
    pub const CLICK: u32 = 5;
    /// The form's id, name and action attributes (or `null`) and its number of fields.
    pub const SUBMIT: u32 = 6;
    pub const SCROLL: u32 = 7;
    /// Pointer, key or touch input.
    pub const ACTIVITY: u32 = 8;
    /// Another tab wrote a key the page follows: the consent decision or who the visitor is
    /// (the key without the store's prefix; the store has the value).
    pub const STORED_ELSEWHERE: u32 = 9;
}

/// The string at `index` of `facts`, if it is one.
pub fn text(facts: &Array, index: u32) -> Option<String> {
    facts.get(index).as_string()
}

/// The number at `index` of `facts`, if it is one.
pub fn number(facts: &Array, index: u32) -> Option<f64> {
    facts.get(index).as_f64()
}
