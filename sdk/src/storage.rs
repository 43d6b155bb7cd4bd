//! Where the SDK keeps its state: first-party cookies, `localStorage`, or memory only.
//!
//! Every value is also kept in memory, so the SDK works the same when storage is missing,
//! disabled or throws (private modes, blocked cookies, a full quota): writes that fail are
//! counted, never thrown. Until consent allows storing, writes stay in memory.

use portrait_core::client::url;

use wasm_bindgen::JsCast;
use web_sys::{HtmlDocument, Storage};

/// Every key the SDK writes starts with this, so [`Store::clear`] finds them all.
pub const PREFIX: &str = "portrait.";

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

pub struct Store {
    mode: Mode,
    local: Option<Storage>,
    document: Option<HtmlDocument>,
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
    /// Writes the browser refused (quota, disabled storage).
    pub failed_writes: u32,
}

impl Store {
    pub fn new(mode: Mode, cookie_domain: Option<String>, cookie_days: u32, persistent: bool) -> Store {
        let window = web_sys::window();
        // `localStorage` itself throws when storage is disabled.
        let local = window.as_ref().and_then(|w| w.local_storage().ok().flatten());
        let document =
            window.as_ref().and_then(|w| w.document()).and_then(|d| d.dyn_into::<HtmlDocument>().ok());
        let secure = window.and_then(|w| w.location().protocol().ok()).is_some_and(|p| p == "https:");
        let mut store = Store {
            mode,
            local,
            document,
            memory: Vec::new(),
            cookie_domain: None,
            cookies: String::new(),
            cookie_max_age_s: cookie_days.saturating_mul(86_400),
            secure,
            persistent,
            failed_writes: 0,
        };
        if mode == Mode::CookieAndLocal {
            store.cookie_domain = cookie_domain.or_else(|| store.detect_cookie_domain());
            store.cookies = store.live_cookies();
        }
        store
    }

    /// Reads a value: memory first (it has every write of this page), then storage.
    pub fn get(&self, key: &str) -> Option<String> {
        if let Some((_, value)) = self.memory.iter().find(|(k, _)| k == key) {
            return Some(value.clone());
        }
        if self.mode == Mode::Memory {
            return None;
        }
        let local = self.local.as_ref().and_then(|s| s.get_item(&[PREFIX, key].concat()).ok().flatten());
        local.or_else(|| {
            (self.mode == Mode::CookieAndLocal).then(|| find_cookie(&self.cookies, key)).flatten()
        })
    }

    /// Writes a value to memory and, when allowed, to storage. `cookie`: also as a cookie
    /// (for ids, so either survives the other being cleared).
    pub fn set(&mut self, key: &str, value: &str, cookie: bool) {
        match self.memory.iter_mut().find(|(k, _)| k == key) {
            Some((_, held)) => value.clone_into(held),
            None => self.memory.push((key.to_owned(), value.to_owned())),
        }
        self.write_through(key, Some(value), cookie);
    }

    /// Writes a value to storage whatever consent says: for the consent decision itself,
    /// which must be remembered even when it is a refusal.
    pub fn set_record(&mut self, key: &str, value: &str) {
        let was = std::mem::replace(&mut self.persistent, true);
        self.set(key, value, false);
        self.persistent = was;
    }

    pub fn remove(&mut self, key: &str, cookie: bool) {
        self.memory.retain(|(k, _)| k != key);
        self.write_through(key, None, cookie);
    }

    fn write_through(&mut self, key: &str, value: Option<&str>, cookie: bool) {
        if !self.persistent || self.mode == Mode::Memory {
            return;
        }
        if let Some(local) = &self.local {
            let full_key = [PREFIX, key].concat();
            let written = match value {
                Some(value) => local.set_item(&full_key, value),
                None => local.remove_item(&full_key),
            };
            self.failed_writes += u32::from(written.is_err());
        }
        if cookie && self.mode == Mode::CookieAndLocal {
            let max_age = if value.is_some() { self.cookie_max_age_s } else { 0 };
            self.write_cookie(key, value.unwrap_or(""), max_age);
        }
    }

    /// Starts or stops writing to storage. Starting writes what memory holds.
    pub fn set_persistent(&mut self, persistent: bool, cookie_keys: &[&str]) {
        let starting = persistent && !self.persistent;
        self.persistent = persistent;
        if starting {
            for (key, value) in self.memory.clone() {
                self.write_through(&key, Some(&value), cookie_keys.contains(&key.as_str()));
            }
        }
    }

    /// Removes everything the SDK stored, memory included, except `keep`.
    pub fn clear(&mut self, cookie_keys: &[&str], keep: &[&str]) {
        let was = std::mem::replace(&mut self.persistent, true);
        for key in self.keys("") {
            if !keep.contains(&key.as_str()) {
                self.remove(&key, false);
            }
        }
        for key in cookie_keys {
            self.remove(key, true);
        }
        self.memory.retain(|(key, _)| keep.contains(&key.as_str()));
        self.persistent = was;
    }

    /// The keys in `localStorage` under `PREFIX + prefix`, without `PREFIX`.
    pub fn keys(&self, prefix: &str) -> Vec<String> {
        let Some(local) = &self.local else { return Vec::new() };
        let length = local.length().unwrap_or(0);
        (0..length)
            .filter_map(|i| local.key(i).ok().flatten())
            .filter_map(|key| key.strip_prefix(PREFIX).map(str::to_owned))
            .filter(|key| key.starts_with(prefix))
            .collect()
    }

    fn live_cookies(&self) -> String {
        self.document.as_ref().and_then(|d| d.cookie().ok()).unwrap_or_default()
    }

    fn write_cookie(&mut self, key: &str, value: &str, max_age_s: u32) {
        let Some(document) = &self.document else { return };
        let mut cookie = [&cookie_name(key), "=", &url::percent_encode(value), "; Path=/; Max-Age="].concat();
        portrait_core::client::push_unsigned(&mut cookie, max_age_s.into(), 10);
        cookie.push_str("; SameSite=Lax");
        if let Some(domain) = &self.cookie_domain {
            cookie.push_str("; Domain=");
            cookie.push_str(domain);
        }
        if self.secure {
            cookie.push_str("; Secure");
        }
        self.failed_writes += u32::from(document.set_cookie(&cookie).is_err());
    }

    /// The broadest domain the browser lets this page set a cookie on (`example.co.uk` for
    /// `www.shop.example.co.uk`): found, as analytics.js does, by trying each suffix from the
    /// shortest until one sticks. `None` for IP addresses and single-label hosts.
    fn detect_cookie_domain(&mut self) -> Option<String> {
        let host = web_sys::window()?.location().hostname().ok()?;
        let is_ip = host.as_bytes().contains(&b':') || host.bytes().all(|b| b.is_ascii_digit() || b == b'.');
        if is_ip || !host.as_bytes().contains(&b'.') {
            return None;
        }
        let labels: Vec<&str> = host.split('.').collect();
        (2..=labels.len()).map(|n| labels[labels.len() - n..].join(".")).find(|domain| {
            self.cookie_domain = Some(domain.clone());
            self.write_cookie("probe", "1", 10);
            let stuck = find_cookie(&self.live_cookies(), "probe").is_some();
            self.write_cookie("probe", "", 0);
            stuck
        })
    }
}

/// The value of our cookie for `key` in a `document.cookie` string.
fn find_cookie(cookies: &str, key: &str) -> Option<String> {
    let name = cookie_name(key);
    cookies.split(';').find_map(|pair| {
        let (k, v) = pair.trim().split_once('=')?;
        (k == name).then(|| url::percent_decode(v))
    })
}

/// `portrait.aid` → `portrait_aid` (cookie names avoid dots for old parsers).
fn cookie_name(key: &str) -> String {
    ["portrait_", &key.replace('.', "_")].concat()
}
