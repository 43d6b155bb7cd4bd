//! Sending beacons: `fetch` while the page is visible; when it is being hidden, a keepalive
//! `fetch` (it reports its outcome, unlike `sendBeacon`), and `sendBeacon` with the same bytes
//! where the browser refuses that (its 64 KiB keepalive quota, or no `fetch`), or with it
//! where it cannot keep a request alive (Firefox before 133). A request that hangs is given
//! up after a minute (more for a large body), and its batch sent again.
//!
//! The fallbacks live in `dom.js`'s `post`, beside the request: the SDK sees one outcome.
//!
//! The body is a beacon with `Content-Type: text/plain`, a CORS-safelisted request, so the
//! browser sends no preflight. No credentials: the write key is in the URL.
//!
//! The call is a few lines of JavaScript in `sdk/js/dom.js`, one import, instead of web-sys's
//! request, headers, blob and promise bindings (BENCHMARKS.md).

pub use portrait_core::client::queue::Outcome;
use wasm_bindgen::prelude::*;

use crate::dom;

/// POSTs `body`; `done` gets the outcome once the answer (or the failure) is in, with what
/// its body counted ([`Outcome::of`]). `keepalive` only when the page is being hidden:
/// keepalive requests share a 64 KiB quota.
pub fn post(url: &str, body: &[u8], keepalive: bool, done: impl FnOnce(Outcome) + 'static) {
    let done = Closure::once_into_js(move |status: u16, retry_after: Option<String>, counted: u32| {
        done(Outcome::of(status, retry_after.as_deref(), counted));
    });
    dom::post(url, body, keepalive, &done);
}
