//! The page the visitor is on: its context for every event, the campaign and channel that
//! brought them, and the ids the SDK generates.

use portrait_core::client::campaign;
use portrait_core::client::capture::Engagement;
use portrait_core::client::session::Session;
use portrait_core::{Context, Library, Map, Value};

use crate::convert::field;
use crate::storage::Store;

/// Per page view: the context events carry, and the autocapture state that resets with it.
#[derive(Default)]
pub struct PageState {
    pub context: Context,
    pub href: String,
    pub host: String,
    pub scroll_reached: u8,
    pub engagement: Engagement,
    /// Engaged time of this page view so far (`engagement` hands it out in slices).
    pub engaged_total_ms: i64,
    /// The deepest scroll of this page view, in percent.
    pub deepest_scroll: f64,
    pub last_scroll_check: f64,
}

impl PageState {
    /// A page view starts (the first, or an SPA navigation from `previous_url`): reads the
    /// location, starts a session if the landing URL carries a new campaign, and keeps the
    /// session's channel and the visitor's first touch (campaign parameters are read only
    /// while the `campaigns` switch is on).
    pub fn enter(
        &mut self,
        now: i64,
        previous_url: Option<String>,
        session: &mut Session,
        store: &mut Store,
        campaigns: bool,
    ) {
        let Some(window) = web_sys::window() else { return };
        let location = window.location();
        let document = window.document();
        self.href = location.href().unwrap_or_default();
        self.host = location.hostname().unwrap_or_default();
        let search = location.search().unwrap_or_default();
        let referrer =
            previous_url.or_else(|| document.as_ref().map(|d| d.referrer())).filter(|r| !r.is_empty());
        let landing = campaigns.then(|| campaign::from_query(&search)).flatten();
        if session.touch(now, landing.as_ref().map(campaign::fingerprint)) {
            let channel = campaign::session_channel(referrer.as_deref(), &self.host, landing.as_ref());
            store.set("channel", channel.as_str(), false);
            match &landing {
                Some(_) => store.set("campaign", &search, false),
                None => store.remove("campaign", false),
            }
            if store.get("first").is_none() {
                store.set(
                    "first",
                    &format!("{}|{}", channel.as_str(), if landing.is_some() { &search } else { "" }),
                    false,
                );
            }
        }
        let navigator = window.navigator();
        let screen = window.screen().ok();
        let mut context = Context {
            user_agent: navigator.user_agent().ok(),
            locale: navigator.language(),
            // Cached: asking `Intl` costs ~20 ms on a page's first call (see `resolve_timezone`).
            timezone: store.get("tz"),
            campaign: store.get("campaign").and_then(|q| campaign::from_query(&q)).unwrap_or_default(),
            library: Library {
                name: Some("portrait.js".into()),
                version: Some(env!("CARGO_PKG_VERSION").into()),
            },
            ..Context::default()
        };
        context.page.url = Some(self.href.clone());
        context.page.path = location.pathname().ok();
        context.page.title = document.as_ref().map(|d| d.title());
        context.page.referrer = referrer;
        context.page.search = Some(search).filter(|s| !s.is_empty());
        context.screen.width = screen.as_ref().and_then(|s| s.width().ok()).map(|w| w as u32);
        context.screen.height = screen.as_ref().and_then(|s| s.height().ok()).map(|h| h as u32);
        context.screen.density = Some(window.device_pixel_ratio());
        if let Some(channel) = store.get("channel") {
            context.other.insert("channel".into(), Value::String(channel));
        }
        if let Some((channel, query)) = store.get("first").as_deref().and_then(|f| f.split_once('|')) {
            let mut first = Map::new();
            first.insert("channel".into(), Value::String(channel.into()));
            if let Some(campaign) = campaign::from_query(query) {
                let fields =
                    [("name", campaign.name), ("source", campaign.source), ("medium", campaign.medium)];
                for (key, value) in fields {
                    if let Some(value) = value {
                        first.insert(key.into(), Value::String(value));
                    }
                }
                first.extend(campaign.other);
            }
            context.other.insert("firstTouch".into(), Value::Object(first));
        }
        self.context = context;
        self.scroll_reached = 0;
        self.engaged_total_ms = 0;
        self.deepest_scroll = 0.0;
        self.engagement = Engagement::default();
        self.engagement.activity(now);
    }

    /// The properties of a page view, as analytics.js sends them.
    pub fn properties(&self) -> Map {
        let page = &self.context.page;
        let fields = [
            ("url", &page.url),
            ("path", &page.path),
            ("title", &page.title),
            ("referrer", &page.referrer),
            ("search", &page.search),
        ];
        fields.into_iter().filter_map(|(k, v)| Some((k.to_owned(), Value::String(v.clone()?)))).collect()
    }

    /// Whether `href` is a different page from the current one (for SPA navigations).
    pub fn is_new(&self, href: &str) -> bool {
        href != self.href
    }
}

/// The IANA time zone, from `Intl`, into the context and the store. Called after the SDK is
/// ready, not before: the first `Intl.DateTimeFormat` of a page costs ~20 ms (BENCHMARKS.md),
/// more than the rest of the start-up. Events captured before it lack the time zone (the
/// collector's edge geo has one too); later pages read it from the store.
pub fn resolve_timezone(page: &mut PageState, store: &mut Store) {
    if page.context.timezone.is_some() {
        return;
    }
    let options =
        js_sys::Intl::DateTimeFormat::new(&js_sys::Array::new(), &js_sys::Object::new()).resolved_options();
    if let Some(timezone) = field(&options, "timeZone").as_string() {
        store.set("tz", &timezone, false);
        page.context.timezone = Some(timezone);
    }
}

/// UUID v4s from `crypto.getRandomValues`, drawn from a pool (one call per 16 ids).
pub struct Ids {
    pool: Vec<u8>,
}

impl Ids {
    pub fn new() -> Ids {
        Ids { pool: Vec::new() }
    }

    pub fn uuid(&mut self) -> String {
        if self.pool.len() < 16 {
            self.pool = vec![0; 256];
            let crypto = web_sys::window().and_then(|w| w.crypto().ok());
            let filled = crypto.is_some_and(|c| c.get_random_values_with_u8_array(&mut self.pool).is_ok());
            if !filled {
                // No Web Crypto (very old browsers): Math.random is weaker but still unique enough.
                self.pool.iter_mut().for_each(|b| *b = (js_sys::Math::random() * 256.0) as u8);
            }
        }
        let mut bytes: Vec<u8> = self.pool.split_off(self.pool.len() - 16);
        bytes[6] = (bytes[6] & 0x0f) | 0x40;
        bytes[8] = (bytes[8] & 0x3f) | 0x80;
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut uuid = String::with_capacity(36);
        for (i, byte) in bytes.iter().enumerate() {
            if matches!(i, 4 | 6 | 8 | 10) {
                uuid.push('-');
            }
            uuid.push(HEX[usize::from(byte >> 4)] as char);
            uuid.push(HEX[usize::from(byte & 0xf)] as char);
        }
        uuid
    }
}
