//! Sending beacons: `fetch` while the page is visible, `sendBeacon` when it is being hidden.
//!
//! The body is a beacon with `Content-Type: text/plain`, a CORS-safelisted request, so the
//! browser sends no preflight. No credentials: the write key is in the URL.

use js_sys::{Function, Promise, Reflect, Uint8Array};
pub use portrait_core::client::queue::Outcome;
use wasm_bindgen::prelude::*;
use web_sys::{Blob, BlobPropertyBag, RequestInit, Response};

/// POSTs `body`; `done` gets the outcome once the answer (or the failure) is in.
/// `keepalive` only when the page is being hidden: keepalive requests share a 64 KiB quota.
pub fn post(url: &str, body: &[u8], keepalive: bool, done: impl FnOnce(Outcome) + 'static) {
    let Some(window) = web_sys::window() else {
        return done(Outcome::of(0, None));
    };
    let init = RequestInit::new();
    init.set_method("POST");
    init.set_body(&Uint8Array::from(body));
    let headers = js_sys::Object::new();
    let _ = Reflect::set(&headers, &"Content-Type".into(), &"text/plain".into());
    init.set_headers(&headers);
    init.set_credentials(web_sys::RequestCredentials::Omit);
    if keepalive {
        // web-sys has no `keepalive` setter.
        let _ = Reflect::set(&init, &"keepalive".into(), &true.into());
    }
    let promise: Promise = window.fetch_with_str_and_init(url, &init);
    let done = std::rc::Rc::new(std::cell::Cell::new(Some(done)));
    let settle = {
        let done = done.clone();
        move |outcome: Outcome| {
            if let Some(done) = done.take() {
                done(outcome);
            }
        }
    };
    let settle_error = settle.clone();
    let on_answer = Closure::once_into_js(move |response: JsValue| {
        let response: Response = response.unchecked_into();
        let retry_after = response.headers().get("Retry-After").ok().flatten();
        settle(Outcome::of(response.status(), retry_after.as_deref()));
    });
    let on_error = Closure::once_into_js(move |_: JsValue| settle_error(Outcome::of(0, None)));
    // `Promise::then2` wants typed closures; the plain functions are smaller.
    if let Ok(then) = Reflect::get(&promise, &"then".into()).and_then(|f| f.dyn_into::<Function>()) {
        let _ = then.call2(&promise, &on_answer, &on_error);
    }
}

/// Hands `body` to `navigator.sendBeacon`; `false` when the browser refused it (quota) or
/// has no `sendBeacon`.
pub fn beacon(url: &str, body: &[u8]) -> bool {
    let Some(window) = web_sys::window() else { return false };
    let parts = js_sys::Array::of1(&Uint8Array::from(body));
    let options = BlobPropertyBag::new();
    options.set_type("text/plain");
    let Ok(blob) = Blob::new_with_u8_array_sequence_and_options(&parts, &options) else { return false };
    window.navigator().send_beacon_with_opt_blob(url, Some(&blob)).unwrap_or(false)
}
