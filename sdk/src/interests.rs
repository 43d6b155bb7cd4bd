//! The SDK's side of the interest module (`sdk/interests`, a second wasm module the loader
//! fetches after `ready`): the calls the pipeline makes into it when it is there, and the
//! storage it leaves to the SDK. Until it arrives (or with `topics: false`) each call does
//! nothing, and "Page Engaged" events carry no topics.

use wasm_bindgen::prelude::*;

use crate::State;
use crate::convert::field;
use crate::storage::Store;

/// Where the profiles are stored (the module names them the same way).
pub const STORED_KEYS: [&str; 2] = ["interests", "tags"];

#[wasm_bindgen]
extern "C" {
    /// An instance of the module's `Interests` class, as the loader hands it over. Each call
    /// catches: a throw must not unwind through the SDK's borrowed state.
    pub type InterestModule;
    #[wasm_bindgen(method, catch, js_name = pageView)]
    fn page_view(this: &InterestModule) -> Result<(), JsValue>;
    #[wasm_bindgen(method, catch)]
    fn classify(this: &InterestModule) -> Result<(), JsValue>;
    #[wasm_bindgen(method, catch)]
    fn credit(
        this: &InterestModule,
        engaged_ms: f64,
        scroll_percent: f64,
        stored: &JsValue,
        at: f64,
    ) -> Result<JsValue, JsValue>;
    #[wasm_bindgen(method, catch)]
    fn load(this: &InterestModule, stored: &JsValue) -> Result<(), JsValue>;
    #[wasm_bindgen(method, catch)]
    fn personalize(this: &InterestModule, allowed: bool) -> Result<(), JsValue>;
}

/// What the loader needs to start the module: `{personalize, stored: {interests, tags}}`.
pub fn host(state: &State) -> JsValue {
    let host = js_sys::Object::new();
    let _ = js_sys::Reflect::set(&host, &"personalize".into(), &state.consent.may_personalize().into());
    let _ = js_sys::Reflect::set(&host, &"stored".into(), &stored_profiles(state));
    host.into()
}

/// The profiles as stored (`{interests, tags}`), none without personalisation.
fn stored_profiles(state: &State) -> JsValue {
    let personalize = state.consent.may_personalize();
    stored_texts(STORED_KEYS.map(|key| state.store.get(key).filter(|_| personalize)))
}

/// A page view starts (an SPA navigation); the page is classified when the automatic view
/// reads its title, a second later: a router that fetches the route's data renders it after
/// the navigation, and the previous route's content must not be credited to this view.
pub fn page_view(state: &mut State) {
    call(state, &InterestModule::page_view);
    state.timer(crate::AUTO_VIEW_GRACE_MS, |state, now| {
        // A timer left from an earlier view (navigations within the second) leaves a view
        // that began later to its own.
        if now - state.page.entered_at >= i64::from(crate::AUTO_VIEW_GRACE_MS) - 10 {
            call(state, &InterestModule::classify);
            // The route is rendered: how much of it the window shows counts too (it may
            // fit the window, and be left by the next navigation without a scroll).
            let depth = crate::autocapture::scroll_depth_now();
            state.page.deepest_scroll = state.page.deepest_scroll.max(depth);
        }
    });
}

/// Credits the page with the attention it got so far, as evidence of time `at`: stores the
/// profiles it changed and answers what the "Page Engaged" event carries of it
/// (`{topics, tags}`; `undefined` when nothing was credited). `reread`: the page is read
/// again first, as it is now.
pub fn credit(state: &mut State, at: i64, reread: bool) -> JsValue {
    // Never for a view the visitor did not see, nor one whose visitor is gone.
    if !state.page.seen || state.page.credit_spent {
        return JsValue::UNDEFINED;
    }
    if reread {
        call(state, &InterestModule::classify);
    }
    let Some(module) = &state.interests else { return JsValue::UNDEFINED };
    // The profiles as stored now: another tab may have credited, or cleared, them since this
    // page read them, and the module adds this page's credit to those, not to its own copy.
    // `undefined` when this page keeps them in memory only.
    let stored = match state.store.shares_storage() {
        true => stored_texts(STORED_KEYS.map(|key| state.store.get_shared(key))),
        false => JsValue::UNDEFINED,
    };
    let engaged_ms = state.page.engaged_total_ms as f64;
    let credited = match module.credit(engaged_ms, state.page.deepest_scroll, &stored, at as f64) {
        Ok(credited) => credited,
        Err(error) => {
            state.error("the interest module failed", error);
            return JsValue::UNDEFINED;
        }
    };
    let stored = field(&credited, "stored");
    for key in STORED_KEYS {
        if let Some(text) = field(&stored, key).as_string() {
            state.store.set(key, &text, false);
        }
    }
    field(&credited, "properties")
}

/// `{interests, tags}`, each stored text that is there.
fn stored_texts(texts: [Option<String>; 2]) -> JsValue {
    let stored = js_sys::Object::new();
    for (key, text) in STORED_KEYS.into_iter().zip(texts) {
        if let Some(text) = text {
            let _ = js_sys::Reflect::set(&stored, &key.into(), &text.into());
        }
    }
    stored.into()
}

/// Removes the stored profiles (removals need no consent).
pub fn forget_stored(store: &mut Store) {
    for key in STORED_KEYS {
        store.remove(key, false);
    }
}

/// The module forgets its copy of the profiles (personalisation withdrawn: the stored ones
/// went with the decision, `store_as_consented`; a new visitor: `reset()` removed them).
pub fn forget_in_module(state: &mut State) {
    state.page.credit_spent = true;
    let none = stored_texts([None, None]);
    call(state, &|module| module.load(&none));
}

/// The module takes the profiles as stored now: another tab changed the visitor (this view's
/// attention so far is no one's now).
pub fn reload_in_module(state: &mut State) {
    state.page.credit_spent = true;
    load_stored_in_module(state);
}

fn load_stored_in_module(state: &mut State) {
    let stored = stored_profiles(state);
    call(state, &|module| module.load(&stored));
}

/// Another tab of the site credited a page (`storage` event): this page's `interests()`,
/// `show-if` elements and `interests` event follow what is stored now.
pub fn credited_elsewhere(state: &mut State, now: i64) {
    // A consent decision there is written after the profiles: this page follows it first.
    state.consent_stored_elsewhere(now);
    if !state.store.shares_storage() {
        return;
    }
    state.store.reload(&STORED_KEYS);
    load_stored_in_module(state);
}

/// Personalisation consent changed: the module shows and credits only with it.
pub fn personalize(state: &mut State) {
    let allowed = state.consent.may_personalize();
    call(state, &|module| module.personalize(allowed));
}

fn call(state: &mut State, method: &dyn Fn(&InterestModule) -> Result<(), JsValue>) {
    if let Some(Err(error)) = state.interests.as_ref().map(method) {
        state.error("the interest module failed", error);
    }
}
