//! The page the visitor is on: its context for every event, the campaign and channel that
//! brought them, and the ids the SDK generates.

use portrait_core::client::capture::Engagement;
use portrait_core::client::session::Session;
use portrait_core::client::url;
use portrait_core::client::{campaign, concat};
use portrait_core::limits::cut_at_char;
use portrait_core::record::{ContextBlock, ContextParts, Tokens};

use crate::convert::Props;
use crate::dom::{self, page};
use crate::storage::Store;

/// The `context.library` of every event: name, version.
pub(crate) const LIBRARY: (Option<&str>, Option<&str>) =
    (Some("portrait.js"), Some(env!("CARGO_PKG_VERSION")));

/// Per page view: the context events carry, and the autocapture state that resets with it.
#[derive(Default)]
pub struct PageState {
    /// url, path, title, referrer, search (the context's `page` fields).
    pub page: [Option<String>; 5],
    /// The session's campaign: UTM fields and click ids.
    campaign: campaign::Landing,
    user_agent: Option<String>,
    locale: Option<String>,
    timezone: Option<String>,
    screen: (Option<u32>, Option<u32>, Option<f64>),
    /// The session's channel and the visitor's first touch.
    channel: Option<String>,
    first_touch: Option<(String, Option<campaign::Landing>)>,
    /// The encoded context, for the session (id, count) it was made for.
    block: Option<((i64, u32), ContextBlock)>,
    pub href: String,
    /// The site the page is part of ([`url::site`]: the cookie domain, else the page's host):
    /// links within it are not outbound, and a referrer from it is internal, sibling
    /// subdomains included.
    pub site: String,
    pub scroll_reached: u8,
    pub engagement: Engagement,
    /// Engaged time of this page view so far (`engagement` hands it out in slices).
    pub engaged_total_ms: i64,
    /// The deepest scroll of this page view, in percent.
    pub deepest_scroll: f64,
    pub last_scroll_check: f64,
    /// A scroll came within the check window: one check is due at its end.
    pub scroll_check_due: bool,
    /// When this page view began.
    pub entered_at: i64,
    /// The visitor has seen this view (it was visible at some moment): a tab opened in the
    /// background and closed unseen credits no interest.
    pub seen: bool,
    /// What this view got so far went, or must not go, to a profile now gone (a `reset()`, a
    /// withdrawal of personalisation, another tab's visitor followed): nothing more of it is
    /// credited, whether the interest module was there then or not.
    pub credit_spent: bool,
}

/// The most kept of each of the page's URL, path, title, referrer and search: a page view
/// carries each twice (its context and its properties), and the collector refuses an event
/// over 32 KB (Google Analytics keeps 1,000 characters of a URL).
const MAX_PAGE_FIELD_BYTES: usize = 2_048;

/// A page field as the SDK keeps it: at most [`MAX_PAGE_FIELD_BYTES`].
fn page_field(text: &str) -> String {
    cut_at_char(text, MAX_PAGE_FIELD_BYTES).to_owned()
}

/// How a page view begins ([`PageState::enter`]).
pub enum Arrival {
    /// The document's first view: the browser's referrer, and the canonical link.
    Landing,
    /// An SPA navigation from the view at this URL (reported as it was), its referrer.
    Navigation(String),
    /// A router's redirect before the view was counted: the waiting view's referrer, scroll
    /// milestones and engagement stay (the canonical link may still name the URL redirected
    /// from).
    Redirect,
}

impl PageState {
    /// A page view starts ([`Arrival`]): reads the location, starts a session if the landing
    /// URL carries a new campaign, and keeps the session's channel and the visitor's first
    /// touch (campaign parameters are read only while the `campaigns` switch is on).
    pub fn enter(
        &mut self,
        now: i64,
        arrival: Arrival,
        session: &mut Session,
        store: &mut Store,
        campaigns: bool,
    ) {
        let facts = dom::page_facts();
        let text = |index| dom::text(&facts, index);
        self.href = text(page::URL).unwrap_or_default();
        self.site = url::site(&text(page::HOST).unwrap_or_default(), store.cookie_domain());
        let search = text(page::SEARCH).unwrap_or_default();
        // The canonical link is the document's: a router changes it only after it has rendered
        // a new route, so it names the first view alone.
        let canonical = matches!(arrival, Arrival::Landing).then(|| text(page::CANONICAL)).flatten();
        let redirect = matches!(arrival, Arrival::Redirect);
        let referrer = match arrival {
            Arrival::Landing => text(page::REFERRER),
            Arrival::Navigation(from) => Some(from),
            Arrival::Redirect => self.page[3].take(),
        };
        let referrer = referrer.filter(|r| !r.is_empty());
        let landing = campaigns.then(|| campaign::from_query(&search)).flatten();
        if session.touch(now, landing.as_ref().map(campaign::fingerprint)) {
            let channel = campaign::session_channel(referrer.as_deref(), &self.site, landing.as_ref());
            store.set("channel", channel.as_str(), false);
            let query = landing.as_ref().map(campaign::Landing::to_query);
            match &query {
                Some(query) => store.set("campaign", query, false),
                None => store.remove("campaign", false),
            }
            if store.get("first").is_none() {
                store.set("first", &concat(&[channel.as_str(), "|", query.as_deref().unwrap_or("")]), false);
            }
        }
        let path = text(page::PATH).unwrap_or_default();
        let (url, path) = url::page_location(&self.href, &path, &search, canonical.as_deref());
        self.page = [
            Some(page_field(&url)),
            Some(page_field(path)),
            text(page::TITLE).as_deref().map(page_field),
            referrer.as_deref().map(page_field),
            Some(search).filter(|s| !s.is_empty()).as_deref().map(page_field),
        ];
        self.read_visitor(store);
        self.user_agent = text(page::USER_AGENT);
        self.locale = text(page::LANGUAGE);
        // Cached: asking `Intl` costs ~20 ms on a page's first call (see `resolve_timezone`).
        self.timezone = store.get("tz");
        let screen = |index| dom::number(&facts, page::SCREEN + index);
        self.screen = (screen(0).map(|w| w as u32), screen(1).map(|h| h as u32), screen(2));
        // The route is read a moment after this (`interests::page_view`), not after the view's
        // first arrival.
        self.entered_at = now;
        // A redirect goes on with the view's measures: its scroll milestones are not reached
        // twice, nor its first moments' engagement lost.
        if redirect {
            return;
        }
        self.scroll_reached = 0;
        self.scroll_check_due = false;
        self.last_scroll_check = 0.0;
        self.engaged_total_ms = 0;
        self.deepest_scroll = 0.0;
        self.engagement = Engagement::default();
        self.credit_spent = false;
        // A tab opened in the background counts from when it is shown.
        self.seen = !dom::page_hidden();
        if self.seen {
            self.engagement.activity(now);
        }
    }

    /// The title as the page shows it now: a router sets it after rendering the route, so
    /// an automatic view (captured up to a second after the navigation) reads it again.
    pub fn refresh_title(&mut self) {
        let title = dom::text(&dom::page_facts(), page::TITLE).as_deref().map(page_field);
        if title != self.page[2] {
            self.page[2] = title;
            self.block = None;
        }
    }

    /// The visitor is forgotten (`reset()`): their session's channel and campaign and their
    /// first touch go, from the store too, so that nothing links the next visitor to them (a
    /// click id is unique to one ad click). The next visitor's session, begun by `reset()`,
    /// is a direct arrival, and so is their first touch.
    pub fn forget_visitor(&mut self, store: &mut Store) {
        store.replace("first", &concat(&[campaign::Channel::Direct.as_str(), "|"]));
        self.begin_direct_session(store);
    }

    /// A session that began without a page's arrival (`reset()`, or the visitor back at an
    /// open tab after 30 minutes): a direct one, with no campaign.
    pub fn begin_direct_session(&mut self, store: &mut Store) {
        store.remove("campaign", false);
        store.replace("channel", campaign::Channel::Direct.as_str());
        self.read_visitor(store);
    }

    /// The visitor's campaign, session channel and first touch, as stored (this page's
    /// writes included), for the context of the events from now on.
    pub fn read_visitor(&mut self, store: &Store) {
        self.campaign = store.get("campaign").and_then(|q| campaign::from_query(&q)).unwrap_or_default();
        self.channel = store.get("channel");
        self.first_touch = store.get("first").and_then(|first| {
            let (channel, query) = first.split_once('|')?;
            Some((channel.to_owned(), campaign::from_query(query)))
        });
        self.block = None;
    }

    /// The context of an event captured now, in `session`: made once per page view and
    /// session.
    pub fn context(&mut self, session: &Session) -> &ContextBlock {
        let key = (session.id, session.count);
        if self.block.as_ref().is_none_or(|(made_for, _)| *made_for != key) {
            self.block = Some((key, self.encode_context(session)));
        }
        &self.block.as_ref().expect("made above").1
    }

    fn encode_context(&self, session: &Session) -> ContextBlock {
        let mut other = Tokens::default();
        if let Some(channel) = &self.channel {
            other.key("channel").str(channel);
        }
        if let Some((channel, landing)) = &self.first_touch {
            let at = other.key("firstTouch").open(true);
            other.key("channel").str(channel);
            let mut entries = 1;
            if let Some(landing) = landing {
                for (key, value) in ["name", "source", "medium"].iter().zip(&landing.utm) {
                    if let Some(value) = value {
                        other.key(key).str(value);
                        entries += 1;
                    }
                }
                for (id, value) in &landing.click_ids {
                    other.key(id).str(value);
                    entries += 1;
                }
            }
            other.close(at, entries);
        }
        let at = other.key("session").open(true);
        other.key("id").int(session.id).key("count").int(session.count.into());
        other.close(at, 2);
        let mut click_ids = Tokens::default();
        for (id, value) in &self.campaign.click_ids {
            click_ids.key(id).str(value);
        }
        let parts = ContextParts {
            page: self.page.each_ref().map(Option::as_deref),
            campaign: self.campaign.utm.each_ref().map(Option::as_deref),
            campaign_other: Some(&click_ids),
            user_agent: self.user_agent.as_deref(),
            locale: self.locale.as_deref(),
            timezone: self.timezone.as_deref(),
            screen: self.screen,
            library: LIBRARY,
            other: Some(&other),
            ..ContextParts::default()
        };
        parts.encode()
    }

    /// The properties of a page view, as analytics.js sends them: its `name` and `category`,
    /// then the page's URL, path, title, referrer and search (after `props`' own: these fill
    /// only the keys the call left out).
    pub fn properties(&self, props: &mut Props, name: Option<&str>, category: Option<&str>) {
        name_and_category(props, name, category);
        for (key, value) in ["url", "path", "title", "referrer", "search"].iter().zip(&self.page) {
            if let Some(value) = value {
                props.str(key, value);
            }
        }
    }

    pub fn path(&self) -> &str {
        self.page[1].as_deref().unwrap_or_default()
    }

    /// Whether `href` is a different page from the current one (`url::is_new_page`).
    pub fn is_new(&self, href: &str) -> bool {
        url::is_new_page(&self.href, href)
    }
}

/// A view's `name` and `category` (`page`, `screen`) in its properties, as analytics.js
/// sends them.
pub fn name_and_category(props: &mut Props, name: Option<&str>, category: Option<&str>) {
    for (key, value) in [("name", name), ("category", category)] {
        if let Some(value) = value {
            props.str(key, value);
        }
    }
}

/// The IANA time zone, from `Intl`, into the context and the store. Called after the SDK is
/// ready, not before: the first `Intl.DateTimeFormat` of a page costs ~20 ms (BENCHMARKS.md),
/// more than the rest of the start-up. Events captured before it lack the time zone (the
/// collector's edge geo has one too); later pages read it from the store.
pub fn resolve_timezone(page: &mut PageState, store: &mut Store) {
    if page.timezone.is_some() {
        return;
    }
    if let Some(timezone) = dom::time_zone() {
        store.set("tz", &timezone, false);
        page.timezone = Some(timezone);
        page.block = None;
    }
}

/// UUID v4s from `crypto.getRandomValues` (`dom::random_bytes`), drawn from a pool (one call per 16 ids).
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
            dom::random_bytes(&mut self.pool);
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
