//! Who the visitor is beyond their anonymous id: the user (`identify`) and the group they
//! belong to (`group`). Each is an id and traits merged over calls, kept in the store as
//! analytics.js keeps them, so that the next page knows them.

use js_sys::{JSON, Object};
use wasm_bindgen::prelude::*;

use portrait_core::limits::MAX_EVENT_BYTES;

use crate::convert::{entries, is_plain_object, json_copy};

/// The most a party's traits may take as JSON: half of what one event may carry, the rest
/// left for the event's context (its URL, referrer, campaign, user agent) and ids.
const MAX_TRAITS_BYTES: usize = MAX_EVENT_BYTES / 2;
use crate::storage::Store;

/// The store's keys for a party: its id (also a cookie, see `COOKIE_KEYS`) and its traits.
pub type Keys = [&'static str; 2];
pub const USER: Keys = ["uid", "traits"];
pub const GROUP: Keys = ["gid", "gtraits"];

/// Who the visitor is when a page starts: their anonymous id (this site's, else Segment's
/// the first time, else `new_id()`), user and group, with the stored ids' cookies renewed.
pub fn load_visitor(store: &mut Store, new_id: impl FnOnce() -> String) -> (String, Party, Party) {
    // A `reset()` on another subdomain wrote a new anonymous id to the shared cookie: the
    // user and group this origin stored beside the old one are the forgotten visitor's. (A
    // party whose cookie is there is read from it: its copy here is merely replaced.) Their
    // interest profiles, session and attribution too (the new visitor's come with the visit
    // cookie, `State::follow_shared_visit`).
    if store.local_copy_is_stale() {
        for key in crate::VISIT_KEYS {
            store.remove(key, false);
        }
        for keys in [USER, GROUP] {
            if !store.has_cookie(keys[0]) {
                for key in keys {
                    store.remove(key, false);
                }
            }
        }
        crate::interests::forget_stored(store);
    }
    let ours = store.get_id("aid");
    // A site that used Segment: its ids, while Portrait has none of its own.
    let from_segment = |name| ours.is_none().then(|| store.segment_id(name)).flatten();
    let mut user = Party::load(store, USER);
    let segment_user = user.id.is_none().then(|| from_segment("ajs_user_id")).flatten();
    let adopted = segment_user.is_some();
    user.id = user.id.or(segment_user);
    let group = Party::load(store, GROUP);
    let anonymous_id = ours.clone().or_else(|| from_segment("ajs_anonymous_id")).unwrap_or_else(new_id);
    // The id cookies' lifetimes start again on every page (Safari ends a script's cookies
    // after 7 days). A user or group cookie that is gone is not made again from this origin's
    // copy, which another subdomain's `reset()` may have meant to end; Segment's user id is
    // stored as ours, or the next page (with an id of ours) would not read it again.
    store.set("aid", &anonymous_id, true);
    for (party, adopted) in [(&user, adopted), (&group, false)] {
        if party.id.is_some() && (adopted || store.has_cookie(party.keys[0])) {
            party.store(store);
        }
    }
    (anonymous_id, user, group)
}

pub struct Party {
    pub id: Option<String>,
    /// A plain JS object, stored as JSON.
    pub traits: Object,
    keys: Keys,
}

impl Party {
    /// The party as an earlier page stored it, or as this page holds it (or nobody). The id
    /// may come from a cookie another subdomain wrote, the traits from this origin's
    /// `localStorage`: they are kept only if they are that id's (this page's copies of both
    /// are: written together, maybe not stored while consent is pending).
    pub fn load(store: &Store, keys: Keys) -> Party {
        let id = store.get_id(keys[0]);
        let traits = store
            .get(keys[1])
            .filter(|_| keys.iter().all(|key| store.has_copy(key)) || store.get_shared(keys[0]) == id)
            // Stored before traits were bounded: every call of the party would be refused.
            .filter(|text| text.len() <= MAX_TRAITS_BYTES)
            .and_then(|text| JSON::parse(&text).ok())
            .filter(is_plain_object)
            .map_or_else(Object::new, JsCast::unchecked_into);
        Party { id, traits, keys }
    }

    /// A call names the party (`id`, when it gives one) and adds `traits`: another party's id
    /// replaces the traits, as in analytics.js. The traits are merged through a copy (what is
    /// stored), so that the page's later changes to its object do not change ours. Answers
    /// `false` when they are not kept: they cannot be copied (a cyclic object), or the
    /// party's traits would outgrow what one event may carry (every later call of the party
    /// carries them all, and each would be refused).
    pub fn update(&mut self, store: &mut Store, id: Option<String>, traits: &JsValue) -> bool {
        if let Some(id) = id {
            if self.id.as_ref().is_some_and(|current| *current != id) {
                self.traits = Object::new();
            }
            self.id = Some(id);
        }
        let copy = match traits.is_undefined() || traits.is_null() {
            true => Some(Object::new()),
            false => json_copy(traits),
        };
        let merged = copy.and_then(|copy| copy_of(&[&self.traits, &copy]));
        match merged.map(|merged| (json_text(&merged), merged)) {
            Some((text, merged)) if text.len() <= MAX_TRAITS_BYTES => {
                self.traits = merged;
                self.store_as(store, &text);
                true
            }
            _ => {
                self.store(store);
                false
            }
        }
    }

    /// Stores the id (also as a cookie) and the traits together: traits stored beside
    /// another id would pass for this one's on the next page.
    pub fn store(&self, store: &mut Store) {
        self.store_as(store, &json_text(&self.traits));
    }

    fn store_as(&self, store: &mut Store, traits: &str) {
        if let Some(id) = &self.id {
            store.set(self.keys[0], id, true);
        }
        store.set(self.keys[1], traits, false);
    }

    /// Nobody: id and traits gone, from the store too.
    pub fn forget(&mut self, store: &mut Store) {
        self.id = None;
        self.traits = Object::new();
        store.remove(self.keys[0], true);
        store.remove(self.keys[1], false);
    }

    /// `{<id_name>: id or null, traits: a copy}`, for `user()` and `group()`.
    pub fn to_js(&self, id_name: &str) -> Object {
        let party = Object::new();
        let id = self.id.as_deref().map_or(JsValue::NULL, JsValue::from);
        let _ = js_sys::Reflect::set(&party, &id_name.into(), &id);
        let traits = copy_of(&[&self.traits]).unwrap_or_default();
        let _ = js_sys::Reflect::set(&party, &"traits".into(), &traits);
        party
    }
}

/// A new object of the `objects`' entries, a later one's winning (as `Object.assign`, but
/// defined, not assigned: assigning throws for a key the page made read-only on
/// `Object.prototype`, with the state borrowed); without a `__proto__` key (assigned, it set
/// the prototype; defined, the page's own `Object.assign` of `user().traits` would).
fn copy_of(objects: &[&Object]) -> Option<Object> {
    let pairs = js_sys::Array::new();
    for (key, value) in objects.iter().flat_map(|object| entries(object)) {
        pairs.push(&js_sys::Array::of2(&key.into(), &value));
    }
    Object::from_entries(&pairs).ok()
}

fn json_text(traits: &Object) -> String {
    JSON::stringify(traits).ok().and_then(|text| text.as_string()).unwrap_or_default()
}
