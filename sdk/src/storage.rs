//! Where the SDK keeps its state: first-party cookies, `localStorage`, or memory only.
//!
//! Every value is also kept in memory, so the SDK works the same when storage is missing,
//! disabled or throws (private modes, blocked cookies, a full quota): writes that fail are
//! counted, never thrown. Until consent allows storing, writes stay in memory.

use portrait_core::client::{concat, url};
use wasm_bindgen::prelude::*;

use crate::dom::{cookie_text, cookie_write};

// The browser's storage, as a few lines of JavaScript: one import per operation instead of
// web-sys's `Storage` and `HtmlDocument` bindings, and every access that can throw (disabled
// storage, a full quota, a sandboxed document) caught where it happens.
#[wasm_bindgen(inline_js = r#"
export function local_available() {
  try { return !!localStorage; } catch { return false; }
}
// What the page may have replaced (a `localStorage` polyfill) answers text or nothing:
// anything else would throw in the glue, with the module's state borrowed.
const text = (value) => (typeof value === 'string' ? value : undefined);
export function local_get(key) {
  try { return text(localStorage.getItem(key)); } catch { return undefined; }
}
export function local_write(key, value) {
  try {
    if (value === undefined) localStorage.removeItem(key);
    else localStorage.setItem(key, value);
    return true;
  } catch { return false; }
}
export function local_keys(prefix) {
  try {
    const keys = [];
    for (let i = 0; i < localStorage.length; i++) {
      const key = localStorage.key(i);
      if (key !== null && key.startsWith(prefix)) keys.push(key);
    }
    return keys;
  } catch { return []; }
}
export function secure_page() {
  return typeof location !== 'undefined' && location.protocol === 'https:';
}
"#)]
extern "C" {
    fn local_available() -> bool;
    fn local_get(key: &str) -> Option<String>;
    fn local_write(key: &str, value: Option<&str>) -> bool;
    fn local_keys(prefix: &str) -> js_sys::Array;
    fn secure_page() -> bool;
}

/// Every key the SDK writes starts with this, so [`Store::clear`] finds them all.
pub const PREFIX: &str = "portrait.";
/// The start of each page's stored queue's key (`q.<page id>`).
pub const QUEUE_PREFIX: &str = "q.";
/// The ids Segment's analytics.js stores (cookie and `localStorage`), which the SDK adopts
/// while it has none of its own ([`Store::segment_id`]).
pub const SEGMENT_IDS: [&str; 2] = ["ajs_anonymous_id", "ajs_user_id"];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Ids in a first-party cookie mirrored in `localStorage`; the rest in `localStorage`.
    CookieAndLocal,
    Local,
    /// Nothing outlives the page (cookieless).
    Memory,
}

impl Mode {
    pub fn parse(text: &str) -> Option<Mode> {
        match text {
            "cookie" | "cookie+localStorage" => Some(Mode::CookieAndLocal),
            "localStorage" => Some(Mode::Local),
            "memory" | "none" => Some(Mode::Memory),
            _ => None,
        }
    }
}

fn usable_id(id: &str) -> bool {
    !id.is_empty() && crate::call_options::id_fits(id)
}

pub struct Store {
    mode: Mode,
    /// Whether `localStorage` is there (reading it throws when storage is disabled).
    local: bool,
    /// Every value written by this page, by key: a dozen keys at most, so a list (a map type
    /// would bring its own code into the module for nothing).
    memory: Vec<(String, String)>,
    cookie_domain: Option<String>,
    /// `document.cookie` as it was when the SDK started. Read once, not on every `get` that
    /// misses `localStorage` (a dozen at start-up on a first visit): each read is a
    /// synchronous round trip to the browser's cookie store, and what this page writes is in
    /// `memory` anyway.
    cookies: String,
    cookie_max_age_s: u32,
    secure: bool,
    /// Whether writes reach cookies and `localStorage` (consent), not just memory.
    persistent: bool,
    /// Keys written to `localStorage` even when not `persistent` ([`Store::set_personal`]).
    personal: &'static [&'static str],
    /// Writes the browser refused (quota, disabled storage).
    pub failed_writes: u32,
    /// This page's writes that did not reach `localStorage` (consent), by key, with what
    /// `localStorage` held for the key then: while it still holds that, no other tab wrote
    /// the key since, and this page's copy is the newer one ([`Store::holds_unstored`]).
    unstored: Vec<(String, Option<String>)>,
    /// Keys another tab wrote ([`Store::reload`]): read from `localStorage`, not from their
    /// cookies, from then on. The other tab wrote both, and nothing orders its cookie write
    /// with its `localStorage` write for this page: the cookie may still hold the value it
    /// replaced, which read then would stay for good.
    followed: Vec<&'static str>,
    /// The refusal of analytics in force is the visitor's own ([`Store::note_visitor_refusal`]).
    refused_by_visitor: bool,
    /// Removals reach what earlier visits stored whatever the mode ([`Store::forget_everywhere`]).
    everywhere: bool,
}

impl Store {
    pub fn new(mode: Mode, cookie_domain: Option<String>, cookie_max_age_s: u32, persistent: bool) -> Store {
        let mut store = Store {
            mode,
            local: local_available(),
            memory: Vec::new(),
            cookie_domain: None,
            cookies: String::new(),
            cookie_max_age_s,
            secure: secure_page(),
            persistent,
            personal: &[],
            failed_writes: 0,
            unstored: Vec::new(),
            followed: Vec::new(),
            refused_by_visitor: false,
            everywhere: false,
        };
        if mode == Mode::CookieAndLocal {
            // Detected when storing starts (the probe is a cookie: not before consent).
            store.cookie_domain = cookie_domain;
            store.cookies = cookie_text();
        }
        store
    }

    /// Reads a value: memory first (it has every write of this page), then the cookie (only
    /// ids have one; it is what the site's other subdomains wrote last) unless another tab of
    /// this origin wrote the key since ([`Store::followed`]), then `localStorage`.
    pub fn get(&self, key: &str) -> Option<String> {
        if let Some((_, value)) = self.memory.iter().find(|(k, _)| k == key) {
            return Some(value.clone());
        }
        if self.mode == Mode::Memory {
            return None;
        }
        let by_cookie = self.mode == Mode::CookieAndLocal && !self.followed.contains(&key);
        let cookie = by_cookie.then(|| find_cookie(&self.cookies, key)).flatten();
        cookie.or_else(|| self.local.then(|| local_get(&concat(&[PREFIX, key]))).flatten())
    }

    /// Whether this page holds its own copy of `key` (written or read back by it).
    pub fn has_copy(&self, key: &str) -> bool {
        self.memory.iter().any(|(k, _)| k == key)
    }

    /// A stored id, unless empty or longer than the collector keeps (planted by another
    /// script, say): every event carrying it would be refused, on every page.
    pub fn get_id(&self, key: &str) -> Option<String> {
        // A cookie another script planted (empty, say) does not hide the stored copy.
        match self.get(key).filter(|id| usable_id(id)) {
            None if self.follows_storage() => self.get_shared_id(key),
            found => found,
        }
    }

    /// [`Store::get_id`] from `localStorage` alone: what this origin's tabs stored.
    pub fn get_shared_id(&self, key: &str) -> Option<String> {
        self.get_shared(key).filter(|id| usable_id(id))
    }

    /// Whether this origin's `localStorage` was written for another visitor than the shared
    /// cookie names: the cookies are what the site's subdomains share, and a `reset()` on
    /// another subdomain wrote a new anonymous id there.
    pub fn local_copy_is_stale(&self) -> bool {
        let local_aid = || self.local.then(|| local_get(&concat(&[PREFIX, "aid"]))).flatten();
        self.mode == Mode::CookieAndLocal
            && find_cookie(&self.cookies, "aid")
                .is_some_and(|aid| local_aid().is_some_and(|local| local != aid))
    }

    /// Whether the page came with our cookie for `key`.
    pub fn has_cookie(&self, key: &str) -> bool {
        self.mode == Mode::CookieAndLocal && find_cookie(&self.cookies, key).is_some()
    }

    /// An id Segment's analytics.js stored on this site (`ajs_anonymous_id`, `ajs_user_id`):
    /// its cookie, else its `localStorage` entry, either JSON text (`"…"`) or plain. A site
    /// that swaps Segment's snippet for ours keeps its visitors and users.
    pub fn segment_id(&self, name: &str) -> Option<String> {
        let cookie = match self.mode {
            Mode::Memory => return None,
            Mode::CookieAndLocal => cookie_named(&self.cookies, name),
            Mode::Local => None,
        };
        let stored = cookie.or_else(|| self.local.then(|| local_get(name)).flatten())?;
        portrait_core::client::segment_stored_id(&stored).map(str::to_owned)
    }

    /// Removes Segment's stored ids ([`SEGMENT_IDS`]), as its own `reset()` does: a `reset()`
    /// while nothing may be stored (consent pending or refused) leaves no id of ours, and the
    /// next page would adopt the forgotten visitor's (`party::load_visitor`). In every storage
    /// mode: a page of the site's without cookies may be the one that resets.
    pub fn forget_segment_ids(&mut self) {
        if self.local {
            for name in SEGMENT_IDS {
                self.failed_writes += u32::from(!local_write(name, None));
            }
        }
        self.expire_cookies(&SEGMENT_IDS.map(String::from));
    }

    /// Whether this page's writes (all, or the personal keys') reach `localStorage`, which the
    /// site's other tabs share.
    pub fn shares_storage(&self) -> bool {
        (self.persistent || !self.personal.is_empty()) && self.mode != Mode::Memory && self.local
    }

    /// Whether other tabs' writes reach this page (its `localStorage`, and their `storage`
    /// events): not in memory mode, nor without `localStorage`.
    pub fn follows_storage(&self) -> bool {
        self.mode != Mode::Memory && self.local
    }

    /// Another tab wrote `keys`: this page's copies of them that differ from what is stored go,
    /// so that reading them reads what is stored and storing again never writes them back
    /// (the cookies are read again too, but `localStorage` decides `keys` from now on:
    /// [`Store::followed`]). Nothing is written.
    pub fn reload(&mut self, keys: &[&'static str]) {
        if self.mode == Mode::CookieAndLocal {
            self.cookies = cookie_text();
        }
        for key in keys {
            if !self.followed.contains(key) {
                self.followed.push(key);
            }
        }
        self.memory.retain(|(key, value)| {
            !keys.contains(&key.as_str()) || local_get(&concat(&[PREFIX, key])).as_ref() == Some(value)
        });
        self.forget_unstored(keys);
    }

    /// Whether this page holds a copy of `key` it could not store (consent) that is newer
    /// than what `localStorage` holds: no tab wrote or removed the key since.
    pub fn holds_unstored(&self, key: &str) -> bool {
        self.unstored.iter().any(|(k, before)| k == key && local_get(&concat(&[PREFIX, key])) == *before)
    }

    fn forget_unstored(&mut self, keys: &[&str]) {
        self.unstored.retain(|(key, _)| !keys.contains(&key.as_str()));
    }

    /// Holds `value` as this page's copy of `key` without writing it: it is stored already,
    /// and the page writes it back if storing starts again (see [`Store::clear`]).
    pub fn hold(&mut self, key: &str, value: &str) {
        match self.memory.iter_mut().find(|(k, _)| k == key) {
            Some((_, held)) => value.clone_into(held),
            None => self.memory.push((key.to_owned(), value.to_owned())),
        }
    }

    /// What `localStorage` holds for `key` now, other tabs' writes included (not memory).
    pub fn get_shared(&self, key: &str) -> Option<String> {
        local_get(&concat(&[PREFIX, key]))
    }

    /// Writes the cookie of `key` alone, when consent allows storing: a value for the site's
    /// other subdomains, which this origin reads from nowhere else ([`Store::cookies_now`]).
    pub fn set_cookie(&mut self, key: &str, value: &str) {
        if self.persistent && self.mode == Mode::CookieAndLocal {
            self.write_cookie(&cookie_name(key), value, self.cookie_max_age_s);
        }
    }

    /// The site's cookies as they are now, the site's other subdomains' writes included; none
    /// without cookies. One read of `document.cookie` serves several keys.
    pub fn cookies_now(&self) -> Cookies {
        Cookies(if self.mode == Mode::CookieAndLocal { cookie_text() } else { String::new() })
    }

    /// Writes a value to memory and, when allowed, to storage. `cookie`: also as a cookie
    /// (for ids, so either survives the other being cleared).
    pub fn set(&mut self, key: &str, value: &str, cookie: bool) {
        self.hold(key, value);
        self.write_through(key, value, cookie);
    }

    /// Forgets what is stored for `key` and writes `value`: the forgotten visitor's value must
    /// not stay stored when the write cannot reach storage (consent), as a removal always does.
    pub fn replace(&mut self, key: &str, value: &str) {
        self.remove(key, false);
        self.set(key, value, false);
    }

    /// Writes a value to storage whatever consent says: for the consent decision itself,
    /// which must be remembered even when it is a refusal.
    pub fn set_record(&mut self, key: &str, value: &str) {
        let was = std::mem::replace(&mut self.persistent, true);
        self.set(key, value, false);
        self.persistent = was;
    }

    /// Removes a value from memory and from storage. Forgetting needs no consent: a removal
    /// reaches storage even while writes may not (`reset()` while consent is pending must not
    /// leave an earlier visit's user id for the next page to read).
    pub fn remove(&mut self, key: &str, cookie: bool) {
        self.memory.retain(|(k, _)| k != key);
        self.forget_unstored(&[key]);
        if self.mode != Mode::Memory || self.everywhere {
            self.remove_stored(key, cookie && (self.mode == Mode::CookieAndLocal || self.everywhere));
        }
    }

    /// Runs `forget` with removals reaching `localStorage` and the cookies whatever the mode:
    /// `reset()` forgets the visitor in what earlier visits stored, from a page without
    /// cookies too (the next page with them would read the forgotten user back).
    pub fn forget_everywhere(&mut self, forget: impl FnOnce(&mut Store)) {
        self.everywhere = true;
        forget(self);
        self.everywhere = false;
    }

    /// Removes `key` from `localStorage` and (`cookie`) its cookie wherever it may be set.
    fn remove_stored(&mut self, key: &str, cookie: bool) {
        if self.local {
            self.failed_writes += u32::from(!local_write(&concat(&[PREFIX, key]), None));
        }
        if cookie {
            self.expire_cookies(&[cookie_name(key)]);
        }
    }

    /// Writes to storage when allowed, and notes whether this page's copy of `key` reached
    /// `localStorage` ([`Store::holds_unstored`]).
    fn write_through(&mut self, key: &str, value: &str, cookie: bool) {
        if self.write_out(key, value, cookie) {
            self.forget_unstored(&[key]);
        } else if self.follows_storage() && !self.unstored.iter().any(|(k, _)| k == key) {
            self.unstored.push((key.to_owned(), local_get(&concat(&[PREFIX, key]))));
        }
    }

    /// Writes to storage when allowed; answers whether the value reached `localStorage`.
    fn write_out(&mut self, key: &str, value: &str, cookie: bool) -> bool {
        if !(self.persistent || self.personal.contains(&key)) || self.mode == Mode::Memory {
            return false;
        }
        let mut reached = false;
        if self.local {
            let local_key = concat(&[PREFIX, key]);
            reached = local_write(&local_key, Some(value));
            if !reached {
                self.failed_writes += 1;
                // A refused write (storage full) must not leave the previous value to be read
                // back on the next page: another user's traits, say. Except a stored queue's:
                // its events would be lost with it, and those sent since are sent again and
                // dropped by the collector (by messageId).
                if !key.starts_with(QUEUE_PREFIX) {
                    local_write(&local_key, None);
                }
            }
        }
        if cookie && self.persistent && self.mode == Mode::CookieAndLocal {
            self.write_cookie(&cookie_name(key), value, self.cookie_max_age_s);
        }
        reached
    }

    /// The cookie domain: the site's `cookieDomain` as given, or the broadest the browser
    /// accepts (`example.co.uk` for `www.shop.example.co.uk`, never a hosting platform's
    /// shared suffix such as `github.io`) once storing found it; `None` before that and
    /// without cookies.
    pub fn cookie_domain(&self) -> Option<&str> {
        self.cookie_domain.as_deref()
    }

    /// Starts or stops writing to storage. Starting finds the cookie domain (unless the
    /// site gave one) and writes what memory holds.
    pub fn set_persistent(&mut self, persistent: bool, cookie_keys: &[&str]) {
        let starting = persistent && !self.persistent;
        self.persistent = persistent;
        if starting {
            if self.mode == Mode::CookieAndLocal && self.cookie_domain.is_none() {
                self.cookie_domain = self.detect_cookie_domain();
            }
            // The personal keys were stored all along: what is stored (other tabs' writes
            // included) is newer than this page's copy.
            let personal = self.personal;
            self.write_memory(|key| !personal.contains(&key), cookie_keys);
        }
    }

    /// Writes what memory holds of the keys `wanted` picks through to storage (storing started).
    fn write_memory(&mut self, wanted: impl Fn(&str) -> bool, cookie_keys: &[&str]) {
        for (key, value) in self.memory.clone() {
            if wanted(&key) {
                self.write_through(&key, &value, cookie_keys.contains(&key.as_str()));
            }
        }
    }

    /// Lets `keys` reach `localStorage` whatever [`Store::set_persistent`] says (the interest
    /// profiles, under personalisation consent alone), writing what memory holds of them
    /// unless storage was on already (then what is stored, other tabs' credits included, is
    /// newer than this page's copy).
    pub fn set_personal(&mut self, keys: &'static [&'static str]) {
        let before = std::mem::replace(&mut self.personal, keys);
        if !self.persistent {
            self.write_memory(|key| keys.contains(&key) && !before.contains(&key), &[]);
        }
    }

    /// Whether the visitor refused analytics on this page (`consent.set`): their refusal
    /// clears what earlier visits stored even in `memory` mode; a default's does not (such a
    /// page reads no decision stored before, and the visitor may have granted it there).
    pub fn note_visitor_refusal(&mut self, refused: bool) {
        self.refused_by_visitor = refused;
    }

    /// Removes everything the SDK stored, memory included, except `keep`; the `cookie_keys`
    /// are expired wherever an earlier visit may have set them ([`Store::expire_cookies`]), so
    /// that a refusal writes no cookie, not even the domain probe. A page without cookies
    /// (`localStorage`, or `memory` when the refusal is the visitor's) clears what an
    /// earlier visit with them stored too, as a refusal must.
    pub fn clear(&mut self, cookie_keys: &[&str], keep: &[&str]) {
        // What is kept stays in memory, so that storing again (a grant after a refusal)
        // writes it back: the page's anonymous id must not change with a decision.
        let kept: Vec<(String, String)> =
            self.memory.iter().filter(|(key, _)| keep.contains(&key.as_str())).cloned().collect();
        if self.mode != Mode::Memory || self.refused_by_visitor {
            for key in self.keys("") {
                if !keep.contains(&key.as_str()) {
                    self.remove_stored(&key, false);
                }
            }
            for key in cookie_keys {
                self.remove_stored(key, false);
            }
            self.expire_cookies(&cookie_keys.iter().map(|key| cookie_name(key)).collect::<Vec<_>>());
        }
        // Nothing this page holds unstored is newer than storage now (the parties go).
        self.unstored.clear();
        self.memory = kept;
    }

    /// Expires cookies on this host (host-only, no `Domain`) and on each of its parent
    /// domains: an earlier visit, or a subdomain, may have set them on any (the browser
    /// ignores the domains it refuses). The cookies are read again after: what they held must
    /// not be read back.
    fn expire_cookies(&mut self, names: &[String]) {
        let found = self.cookie_domain.take();
        let host = crate::dom::hostname();
        let mut parents = url::cookie_domains(&host);
        loop {
            for name in names {
                self.write_cookie(name, "", 0);
            }
            let Some(parent) = parents.next() else { break };
            self.cookie_domain = Some(parent);
        }
        self.cookie_domain = found;
        self.cookies = cookie_text();
    }

    /// The keys in `localStorage` under `PREFIX + prefix`, without `PREFIX`.
    pub fn keys(&self, prefix: &str) -> Vec<String> {
        match self.local {
            true => local_keys(&concat(&[PREFIX, prefix]))
                .iter()
                .filter_map(|key| Some(key.as_string()?.strip_prefix(PREFIX)?.to_owned()))
                .collect(),
            false => Vec::new(),
        }
    }

    /// Writes the cookie `name` (its key's [`cookie_name`]).
    fn write_cookie(&mut self, name: &str, value: &str, max_age_s: u32) {
        let mut cookie = concat(&[name, "=", &url::percent_encode(value), "; Path=/; Max-Age="]);
        portrait_core::client::push_unsigned(&mut cookie, max_age_s.into(), 10);
        cookie.push_str("; SameSite=Lax");
        if let Some(domain) = &self.cookie_domain {
            cookie.push_str("; Domain=");
            cookie.push_str(domain);
        }
        if self.secure {
            cookie.push_str("; Secure");
        }
        self.failed_writes += u32::from(!cookie_write(&cookie));
    }

    /// The broadest domain the browser lets this page set a cookie on (`example.co.uk` for
    /// `www.shop.example.co.uk`): found, as analytics.js does, by trying each of
    /// `url::cookie_domains` until one sticks.
    fn detect_cookie_domain(&mut self) -> Option<String> {
        url::cookie_domains(&crate::dom::hostname()).find(|domain| {
            self.cookie_domain = Some(domain.clone());
            // A value of this page's own: another tab's probe (the same name, on a domain
            // that works) must not make a public suffix look usable.
            let mut value = [0u8; 4];
            crate::dom::random_bytes(&mut value);
            let mut mark = String::new();
            portrait_core::client::push_unsigned(&mut mark, u32::from_le_bytes(value).into(), 16);
            let probe = cookie_name("probe");
            self.write_cookie(&probe, &mark, 10);
            let stuck = cookie_named(&cookie_text(), &probe).is_some_and(|found| found == mark);
            self.write_cookie(&probe, "", 0);
            stuck
        })
    }
}

/// A snapshot of the site's cookies ([`Store::cookies_now`]).
pub struct Cookies(String);

impl Cookies {
    /// The value of our cookie for `key`.
    pub fn get(&self, key: &str) -> Option<String> {
        find_cookie(&self.0, key)
    }
}

/// The value of our cookie for `key` in a `document.cookie` string.
fn find_cookie(cookies: &str, key: &str) -> Option<String> {
    cookie_named(cookies, &cookie_name(key))
}

/// The value of the cookie `name` in a `document.cookie` string, percent-decoded (a `+` is a
/// `+` in a cookie, not a space as in a query: Segment's cookies keep `jane+test@x.com`).
fn cookie_named(cookies: &str, name: &str) -> Option<String> {
    cookies.split(';').find_map(|pair| {
        let (k, v) = pair.trim().split_once('=')?;
        (k == name).then(|| url::percent_decode(&v.replace('+', "%2B")))
    })
}

/// `portrait.aid` → `portrait_aid` (cookie names avoid dots for old parsers).
fn cookie_name(key: &str) -> String {
    concat(&["portrait_", &key.replace('.', "_")])
}
