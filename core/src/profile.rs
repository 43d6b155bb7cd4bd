//! One person's profile: the state a ProfileObject keeps, built from events in any order.
//!
//! The laws (property-tested in `core/tests/profile_laws.rs`):
//! - applying the same set of events in any order gives the same profile (deduplication by
//!   `messageId` is the caller's job: a ProfileObject remembers the ids it applied);
//! - merging B into A equals merging A into B (up to which id is kept), and merging the same
//!   profile twice changes nothing.
//!
//! Every field is therefore a commutative summary: sums, minima and maxima, unions, and
//! last-writer-wins registers ordered by [`Stamp`] (event time, then a hash of the message id).
//!
//! One exception, on purpose: a withdrawal of personalisation consent erases the interest
//! evidence dated before it (and, from then on, page views of other sources count no more),
//! and a profile keeps its evidence as sums; when the interests hold evidence a withdrawal
//! applied later would keep and evidence it would not (personalisation granted again and a
//! later read applied first, or another source's page view), all of it goes, erring on the
//! side of the withdrawal ([`Profile::withdraw_interests`]; merges likewise). The property
//! tests' events carry no interests.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::client::consent::{CONSENT_EVENT, Decision};
use crate::enrich::{DeviceType, Geo, Received};
use crate::event::{Call, Event};
use crate::identity::{Change, IdKind, Identity, IdentityRules, LogEntry, MAX_LOG_ENTRIES};
use crate::time::Timestamp;
use crate::topics::interests::{self, Interests};
use crate::topics::rules;
use crate::value::Value;

/// A gap of inactivity longer than this starts a new session.
pub const SESSION_GAP_MS: i64 = 30 * 60 * 1000;
/// Sessions kept individually; older ones are only counted (see [`Sessions`]).
pub const MAX_SESSIONS: usize = 256;
/// Bounds on what a sender chooses the keys of, so that no sender can grow a profile until its
/// storage refuses it: distinct event names counted by name, trait keys, groups. Far above
/// what a site sends. Past a bound the keys that sort last go (their counts into
/// [`OTHER_EVENTS`]): the kept keys are the smallest of all ever seen, whatever the order of
/// events and merges, so profiles stay convergent.
pub const MAX_EVENT_NAMES: usize = 1_000;
pub const MAX_TRAITS: usize = 500;
pub const MAX_GROUPS: usize = 100;
/// The counter of events whose names are past [`MAX_EVENT_NAMES`]: the total stays exact.
pub const OTHER_EVENTS: &str = "$other";

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Profile {
    pub identities: BTreeSet<Identity>,
    pub first_seen: Option<Timestamp>,
    pub last_seen: Option<Timestamp>,
    /// Events applied, by kind: the event name for `track`, `$page`, `$screen`, `$identify`,
    /// `$group`, `$alias` for the other calls.
    pub counters: BTreeMap<String, u64>,
    /// From `identify` calls, last writer wins per trait.
    pub traits: BTreeMap<String, Stamped<Value>>,
    pub sessions: Sessions,
    /// Earliest and latest page view that came from a campaign or another site.
    pub first_touch: Option<Stamped<Touch>>,
    pub last_touch: Option<Stamped<Touch>>,
    /// Location of the latest event that had one.
    /// Shared with the events it came from (and so with the rest of their request).
    pub location: Option<Stamped<Arc<Geo>>>,
    /// Events per device, keyed `type/browser/os` (e.g. `desktop/Chrome/Linux`).
    pub devices: BTreeMap<String, u64>,
    pub groups: BTreeSet<String>,
    /// The traits group calls gave each account (last writer wins per trait), kept so that
    /// an account can always be brought up to date from the profile alone.
    pub group_traits: BTreeMap<String, BTreeMap<String, Stamped<Value>>>,
    /// Profiles merged into this one, so that merging one again is a no-op.
    pub merged: BTreeSet<String>,
    /// Topic interests the browser sent (`topics` on "Page Engaged"), decayed, convergent.
    pub interests: Interests,
    /// The site's own tags the browser sent (`tags` on "Page Engaged", from the workspace's
    /// tag rules), decayed like interests.
    pub site_tags: Interests<String>,
    /// The latest withdrawal of personalisation consent the browser recorded: the interests
    /// and site tags hold only evidence dated after it (see [`Profile::withdraw_interests`]).
    pub interests_withdrawn: Option<Timestamp>,
    /// The date of the oldest evidence the interests and site tags hold: what a withdrawal
    /// applied later must erase, all of it or none.
    pub interests_since: Option<Timestamp>,
    /// Whether the interests hold evidence from page views of other sources (a server
    /// library, analytics.js), which the collector classified itself. Such a page says
    /// nothing of the visitor's consent, so after a withdrawal none counts again.
    pub interests_from_other_sources: bool,
    /// The previous ids of `alias` calls: also identities of the profile (as a user id and an
    /// anonymous id), but never a different known person in a merge (`identity::check_merge`).
    pub aliases: BTreeSet<String>,
    /// Merges into this profile and merges refused, oldest first, at most
    /// [`MAX_LOG_ENTRIES`] (the newest are kept).
    pub identity_log: BTreeSet<LogEntry>,
    /// Events per kind and UTC day, for engagement, intent and trends (see [`Activity`]).
    pub activity: Activity,
    /// Purchases (`Order Completed`), for RFM.
    pub orders: Orders,
    /// The browser language of the latest event that had one (`context.locale`).
    pub locale: Option<Stamped<String>>,
}

/// Days of activity kept: past this, every default half-life has decayed an event to
/// nothing that matters (180 days at a 30-day half-life is 1/64).
pub const ACTIVITY_DAYS: i64 = 180;
/// Page paths are kept to this many bytes (a site's sections, not its query strings).
const MAX_PATH_BYTES: usize = 128;

/// Events per kind per UTC day in the last [`ACTIVITY_DAYS`] before the newest day seen:
/// kinds are `$page <path>` for page views (so page-type rules, matched when tags are read,
/// apply to past views too), `$identify`, `$group`, `$screen`, `$alias`, and the event name
/// of a `track`. Counts are sums and the window follows the newest day, so the result does
/// not depend on the order of events or merges.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Activity {
    pub kinds: BTreeMap<String, BTreeMap<i64, u32>>,
    /// The newest day seen; days before `newest - ACTIVITY_DAYS` are dropped.
    pub newest: i64,
}

pub const MS_PER_DAY: i64 = 86_400_000;

impl Activity {
    fn add(&mut self, kind: &str, day: i64, count: u32) {
        if day <= self.newest - ACTIVITY_DAYS {
            return;
        }
        let days = self.kinds.entry(kind.to_owned()).or_default();
        let slot = days.entry(day).or_default();
        *slot = slot.saturating_add(count);
        if day > self.newest {
            self.newest = day;
            self.prune();
        }
    }

    fn tally(&mut self, kind: &str, day: i64, tally: Tally) {
        if tally == Tally::Add {
            return self.add(kind, day, 1);
        }
        let Some(days) = self.kinds.get_mut(kind) else { return };
        if let Some(count) = days.get_mut(&day) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                days.remove(&day);
            }
        }
        if days.is_empty() {
            self.kinds.remove(kind);
        }
    }

    fn merge(&mut self, other: &Activity) {
        for (kind, days) in &other.kinds {
            for (&day, &count) in days {
                self.add(kind, day, count);
            }
        }
    }

    fn prune(&mut self) {
        let oldest = self.newest - ACTIVITY_DAYS;
        self.kinds.retain(|_, days| {
            days.retain(|&day, _| day > oldest);
            !days.is_empty()
        });
    }

    /// Events of the kinds `wanted` selects on days in `[from, to]`.
    pub fn count(&self, wanted: impl Fn(&str) -> bool, from: i64, to: i64) -> u64 {
        self.kinds
            .iter()
            .filter(|(kind, _)| wanted(kind))
            .flat_map(|(_, days)| days.range(from..=to).map(|(_, &n)| u64::from(n)))
            .sum()
    }

    /// The kind of an event, as counted here.
    pub fn kind(event: &Event) -> String {
        match &event.call {
            Call::Page { .. } => {
                let path = event.context.page.path.as_deref().unwrap_or("/");
                let path = path.split(['?', '#']).next().unwrap_or("/");
                format!("$page {}", crate::limits::cut_at_char(path, MAX_PATH_BYTES))
            }
            Call::Track { event } => event.clone(),
            other => format!("${}", other.type_name()),
        }
    }
}

/// The library name the Portrait SDK sends: its pages are classified in the browser, which
/// reads the whole page and the visitor's attention, and arrive as `Page Engaged` topics.
pub const SDK_LIBRARY: &str = "portrait.js";
/// The attention a page view from another source is credited with (the SDK's scale: 0.1 for
/// a glance, 1 for two engaged minutes read to the end), since nothing measured it.
pub const SERVER_PAGE_ATTENTION: f64 = 0.3;

/// The interest evidence an event carries: a "Page Engaged" event's topics and site tags (the
/// SDK's, read in the browser), or the collector's own topics for a page view of another
/// source.
#[derive(Default)]
struct Evidence {
    topics: Vec<(u16, f64)>,
    tags: Vec<(String, f64)>,
    other_source: bool,
}

impl Evidence {
    fn of(event: &Event) -> Evidence {
        match &event.call {
            Call::Track { event: name } if name == interests::ENGAGED_EVENT => {
                let sent = |key| event.properties.get(key).unwrap_or(&Value::Null);
                // Only the taxonomy's topics: made-up ids would take the profile's places.
                let known = |id: &u16| crate::topics::builtin().is_none_or(|m| m.topic(*id).is_some());
                let topic_id = |v: &Value| match v {
                    Value::Int(id) => u16::try_from(*id).ok().filter(known),
                    _ => None,
                };
                let site_tag = |v: &Value| match v {
                    Value::String(tag) if rules::is_tag(tag) => Some(tag.clone()),
                    _ => None,
                };
                Evidence {
                    topics: interests::sent_pairs(sent(interests::SENT_TOPICS), topic_id),
                    tags: interests::sent_pairs(sent(interests::SENT_TAGS), site_tag),
                    other_source: false,
                }
            }
            Call::Page { .. } if event.context.library.name.as_deref() != Some(SDK_LIBRARY) => Evidence {
                // Each label's score is positive: every one is evidence.
                topics: page_topics(event)
                    .into_iter()
                    .map(|label| (label.id, SERVER_PAGE_ATTENTION * f64::from(label.score)))
                    .collect(),
                tags: Vec::new(),
                other_source: true,
            },
            _ => Evidence::default(),
        }
    }

    fn is_empty(&self) -> bool {
        self.topics.is_empty() && self.tags.is_empty()
    }
}

/// The collector's own view of a page another source reported (a server library,
/// analytics.js): the topics of its URL, title and name, by the builtin model.
fn page_topics(event: &Event) -> Vec<crate::topics::model::Scored> {
    let Some(model) = crate::topics::builtin() else { return Vec::new() };
    let page = &event.context.page;
    let mut titles: Vec<String> = page.title.iter().cloned().collect();
    if let Call::Page { name: Some(name), .. } = &event.call {
        titles.push(name.clone());
    }
    let url = page.url.clone().or_else(|| page.path.clone()).unwrap_or_default();
    model.evidence(&crate::topics::PageText { url, titles, ..Default::default() }.features())
}

/// Purchases: counts and revenue in integer cents, so that sums are exact in any order.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Orders {
    pub count: u64,
    pub revenue_cents: i64,
    pub first: Option<Timestamp>,
    pub last: Option<Timestamp>,
}

/// The Segment e-commerce spec's event for a purchase.
pub const ORDER_EVENT: &str = "Order Completed";

impl Orders {
    fn tally(&mut self, event: &Event, at: Timestamp, tally: Tally) {
        let amount = ["revenue", "total", "value"].iter().find_map(|key| match event.properties.get(*key) {
            Some(Value::Int(n)) => Some(*n as f64),
            Some(Value::Float(x)) if x.is_finite() => Some(*x),
            _ => None,
        });
        let cents = (amount.unwrap_or(0.0) * 100.0).round().clamp(-1e15, 1e15) as i64;
        match tally {
            Tally::Add => {
                self.count += 1;
                self.revenue_cents = self.revenue_cents.saturating_add(cents);
                self.first = min_option(self.first, Some(at));
                self.last = self.last.max(Some(at));
            }
            Tally::TakeBack => {
                self.count = self.count.saturating_sub(1);
                self.revenue_cents = self.revenue_cents.saturating_sub(cents);
            }
        }
    }

    fn merge(&mut self, other: &Orders) {
        self.count += other.count;
        self.revenue_cents = self.revenue_cents.saturating_add(other.revenue_cents);
        self.first = min_option(self.first, other.first);
        self.last = self.last.max(other.last);
    }
}

/// Orders concurrent writes: event time first, then a hash of the message id so that two
/// events with the same time resolve the same way everywhere.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Stamp {
    pub at: Timestamp,
    pub tie: u64,
}

impl Stamp {
    pub fn of(event: &Event) -> Stamp {
        Stamp {
            at: event.timestamp.unwrap_or(Timestamp(0)),
            tie: crate::hash::fnv1a(event.message_id.as_bytes()),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Stamped<T> {
    pub stamp: Stamp,
    pub value: T,
}

/// Keeps a candidate stamped `stamp` in `slot` if the slot is empty or the stamp wins (the
/// later or the earlier, per `later_wins`). The value is made only when kept: most events
/// repeat what the slot holds.
fn keep<T>(slot: &mut Option<Stamped<T>>, stamp: Stamp, later_wins: bool, value: impl FnOnce() -> T) {
    let replace = match slot {
        None => true,
        Some(current) if later_wins => stamp > current.stamp,
        Some(current) => stamp < current.stamp,
    };
    if replace {
        *slot = Some(Stamped { stamp, value: value() });
    }
}

/// Where a visit came from.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Touch {
    pub source: Option<String>,
    pub medium: Option<String>,
    pub campaign: Option<String>,
    pub term: Option<String>,
    pub content: Option<String>,
    /// Host of the referring page, when it was another site.
    pub referrer_host: Option<String>,
}

impl Touch {
    /// The marketing channel of this touch (`core::client::campaign::channel`).
    pub fn channel(&self) -> crate::client::campaign::Channel {
        let campaign = crate::client::campaign::Landing {
            utm: [self.campaign.clone(), self.source.clone(), self.medium.clone(), None, None],
            click_ids: Vec::new(),
        };
        let referrer = self.referrer_host.as_ref().map(|host| format!("https://{host}/"));
        crate::client::campaign::channel(referrer.as_deref(), "", Some(&campaign))
    }

    /// The touch of a page view, if it came from a campaign or from another site.
    fn of(event: &Event) -> Option<Touch> {
        if !matches!(event.call, Call::Page { .. } | Call::Screen { .. }) {
            return None;
        }
        let campaign = &event.context.campaign;
        let page_host = event.context.page.url.as_deref().and_then(host);
        let referrer_host =
            event.context.page.referrer.as_deref().and_then(host).filter(|r| Some(r) != page_host.as_ref());
        let touch = Touch {
            source: campaign.source.clone(),
            medium: campaign.medium.clone(),
            campaign: campaign.name.clone(),
            term: campaign.term.clone(),
            content: campaign.content.clone(),
            referrer_host,
        };
        (touch != Touch::default()).then_some(touch)
    }
}

/// The host of an absolute URL, lower-cased, without port.
fn host(url: &str) -> Option<String> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split(['/', '?', '#']).next()?;
    let host = authority.rsplit('@').next()?.split(':').next()?;
    (!host.is_empty()).then(|| host.to_ascii_lowercase())
}

/// Activity grouped into sessions: maximal runs of events with no gap over
/// [`SESSION_GAP_MS`]. Which runs exist depends only on the set of event times, so the
/// result is the same in any order of arrival. Past [`MAX_SESSIONS`] the oldest are only
/// counted (an event older than every kept session then counts as a session of its own).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Sessions {
    /// Disjoint, sorted by start.
    pub recent: Vec<Session>,
    pub older: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Session {
    pub start: Timestamp,
    pub end: Timestamp,
    pub events: u64,
}

impl Sessions {
    pub fn count(&self) -> u64 {
        self.older + self.recent.len() as u64
    }

    fn tally(&mut self, at: Timestamp, tally: Tally) {
        if tally == Tally::Add {
            return self.add(Session { start: at, end: at, events: 1 });
        }
        // The session holding `at` (none when it is only counted in `older` now).
        let Some(i) = self.recent.iter().position(|s| s.start <= at && at <= s.end) else { return };
        self.recent[i].events = self.recent[i].events.saturating_sub(1);
        if self.recent[i].events == 0 {
            self.recent.remove(i);
        }
    }

    fn add(&mut self, session: Session) {
        let joins = |s: &Session| {
            s.start.0 - SESSION_GAP_MS <= session.end.0 && session.start.0 <= s.end.0 + SESSION_GAP_MS
        };
        let mut merged = session;
        self.recent.retain(|s| {
            if joins(s) {
                merged.start = merged.start.min(s.start);
                merged.end = merged.end.max(s.end);
                merged.events += s.events;
                false
            } else {
                true
            }
        });
        let at = self.recent.partition_point(|s| s.start < merged.start);
        self.recent.insert(at, merged);
        while self.recent.len() > MAX_SESSIONS {
            self.recent.remove(0);
            self.older += 1;
        }
    }
}

/// The stored form of a [`Profile`] ([`Profile::to_stored`]) starts with these two bytes and
/// [`STORED_VERSION`]. postcard is positional: a state another build wrote, with other
/// fields, would be read into the wrong ones without an error; with the version it is refused.
/// The first byte never starts an unversioned state (a count of over 10,000 identities).
const STORED_HEADER: [u8; 2] = [0xFF, b'P'];
/// The version of `Profile`'s fields: bump it with every change to them (a test pins the
/// stored form of a sample profile, and fails until it is bumped and the sample rewritten).
pub const STORED_VERSION: u8 = 2;

/// A stored state this build cannot read.
#[derive(Debug, PartialEq)]
pub enum StoredError {
    /// Written by a build whose `Profile` had other fields (`None`: before versions).
    Version(Option<u8>),
    Malformed(String),
}

impl std::fmt::Display for StoredError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoredError::Version(found) => write!(
                f,
                "a profile state of format {}, and this build reads format {STORED_VERSION}: \
                 delete the stored state of the older build (a `.state/` folder locally)",
                found.map_or("1 (unversioned)".to_owned(), |v| v.to_string())
            ),
            StoredError::Malformed(detail) => write!(f, "a profile state that does not decode: {detail}"),
        }
    }
}

impl Profile {
    /// The stored form: [`STORED_HEADER`], [`STORED_VERSION`], then postcard.
    pub fn to_stored(&self) -> Result<Vec<u8>, postcard::Error> {
        let mut bytes = STORED_HEADER.to_vec();
        bytes.push(STORED_VERSION);
        bytes.extend(postcard::to_allocvec(self)?);
        Ok(bytes)
    }

    /// Reads [`to_stored`](Self::to_stored)'s form of this build's `Profile`, and refuses
    /// any other (an older build's, or none).
    pub fn from_stored(bytes: &[u8]) -> Result<Profile, StoredError> {
        match bytes.strip_prefix(&STORED_HEADER) {
            Some([STORED_VERSION, state @ ..]) => {
                postcard::from_bytes(state).map_err(|e| StoredError::Malformed(e.to_string()))
            }
            Some([version, ..]) => Err(StoredError::Version(Some(*version))),
            _ => Err(StoredError::Version(None)),
        }
    }
    /// Applies one accepted event with the default identity rules.
    pub fn apply(&mut self, received: &Received) {
        self.apply_with(received, &IdentityRules::default());
    }

    /// Applies one accepted event. Not idempotent by itself: callers skip message ids they
    /// have already applied. Identities come from the event's ids and from identify traits
    /// (`email`, the workspace's custom id types); placeholders are not identities.
    pub fn apply_with(&mut self, received: &Received, rules: &IdentityRules) {
        let event = &received.event;
        let stamp = Stamp::of(event);
        let at = stamp.at;
        if is_consent_event(event) && decision(event, "personalization") == Some(Decision::Denied) {
            self.withdraw_interests(at);
        }
        // A visitor who refused analytics: the SDK sends only a withdrawal of personalisation
        // (`Consent::withdrawal_to_send`). It is no activity: nothing but the withdrawal counts
        // (no identity, visit, session, location or device).
        if is_refusal_of_analytics(event) {
            return;
        }
        let ids = [(IdKind::AnonymousId, &event.anonymous_id), (IdKind::UserId, &event.user_id)];
        for (kind, id) in ids {
            // Most events repeat an id the profile holds: found without building an `Identity`
            // (these ids are held as sent, so the text compares as is).
            let Some(id) = id.as_deref().filter(|&id| !self.holds(&kind, id)) else { continue };
            if let Some(identity) = rules.identity(kind, id) {
                self.identities.insert(identity);
            }
        }
        self.first_seen = Some(self.first_seen.map_or(at, |t| t.min(at)));
        self.last_seen = Some(self.last_seen.map_or(at, |t| t.max(at)));
        self.tally(received, Tally::Add);
        match &event.call {
            Call::Identify => {
                for (key, value) in &event.traits {
                    keep_latest(&mut self.traits, key, &Stamped { stamp, value: value.clone() });
                }
                let trait_ids = std::iter::once((IdKind::Email, "email")).chain(
                    rules.custom_ids.iter().map(|c| (IdKind::Custom(c.name.clone()), c.trait_key.as_str())),
                );
                for (kind, key) in trait_ids {
                    let value = match event.traits.get(key) {
                        Some(Value::String(text)) => text.clone(),
                        Some(Value::Int(n)) => n.to_string(),
                        _ => continue,
                    };
                    if let Some(identity) = rules.identity(kind, &value) {
                        self.identities.insert(identity);
                    }
                }
            }
            Call::Group { group_id } => {
                self.groups.insert(group_id.clone());
                let traits = self.group_traits.entry(group_id.clone()).or_default();
                for (key, value) in &event.traits {
                    keep_latest(traits, key, &Stamped { stamp, value: value.clone() });
                }
            }
            // Segment's previousId may be a user id or an anonymous id: the profile holds it as
            // both, so whichever profile owns it meets this one in the index and they merge.
            Call::Alias { previous_id } => {
                if !rules.is_placeholder(previous_id) {
                    self.aliases.insert(previous_id.clone());
                }
                for kind in [IdKind::UserId, IdKind::AnonymousId] {
                    if let Some(identity) = rules.identity(kind, previous_id) {
                        self.identities.insert(identity);
                    }
                }
            }
            Call::Page { .. } | Call::Screen { .. } | Call::Track { .. } => {}
        }
        let evidence = Evidence::of(event);
        if !evidence.is_empty() && self.counts_evidence(&evidence, at) {
            self.note_interests(at);
            self.interests_from_other_sources |= evidence.other_source;
            for (topic, weight) in evidence.topics {
                self.interests.add(topic, weight, at.0);
            }
            for (tag, weight) in evidence.tags {
                self.site_tags.add(tag, weight, at.0);
            }
        }
        if let Some(locale) = event.context.locale.as_deref().filter(|l| !l.is_empty()) {
            keep(&mut self.locale, stamp, true, || locale.to_owned());
        }
        if let Some(touch) = Touch::of(event) {
            keep(&mut self.first_touch, stamp, false, || touch.clone());
            keep(&mut self.last_touch, stamp, true, || touch);
        }
        let enrichment = &received.enrichment;
        if !enrichment.geo.is_empty() {
            keep(&mut self.location, stamp, true, || Arc::clone(&enrichment.geo));
        }
        self.bound();
    }

    /// Adds what `received` counts to the profile's sums (events by kind and device,
    /// sessions, daily activity, orders), or takes it back: the fields that would count an
    /// event twice if it were applied twice. Everything else holds it once however often.
    fn tally(&mut self, received: &Received, tally: Tally) {
        let event = &received.event;
        let at = Stamp::of(event).at;
        tally_count(&mut self.counters, &counter_key(&event.call), tally);
        self.sessions.tally(at, tally);
        self.activity.tally(&Activity::kind(event), at.0.div_euclid(MS_PER_DAY), tally);
        if matches!(&event.call, Call::Track { event } if event == ORDER_EVENT) {
            self.orders.tally(event, at, tally);
        }
        let device = &received.enrichment.device;
        if device.device_type != DeviceType::Unknown {
            // `join`, not `format!`: this runs per event, and wasm's formatting machinery is slow.
            let key = [
                device.device_type.as_str(),
                device.browser.as_deref().unwrap_or("unknown"),
                device.os.as_deref().unwrap_or("unknown"),
            ]
            .join("/");
            tally_count(&mut self.devices, &key, tally);
        }
    }

    /// Whether the interests take `evidence` dated `at`: the SDK's only after the latest
    /// withdrawal, other sources' only while no withdrawal is known (the SDK, which knows
    /// the consent, sends its own topics).
    fn counts_evidence(&self, evidence: &Evidence, at: Timestamp) -> bool {
        match evidence.other_source {
            true => self.interests_withdrawn.is_none(),
            false => self.takes_interests(at),
        }
    }

    /// Personalisation consent withdrawn at `at`: the interests and site tags held from before
    /// it go, evidence the SDK dated at or before `at` is ignored from now on, whenever it
    /// arrives, and page views of other sources no longer count at all (they cannot say
    /// whether personalisation was granted again). The result does not depend on the order of
    /// events, except in one case, which errs on the side of the withdrawal: when the profile
    /// holds evidence it would have kept and evidence it would not (personalisation granted
    /// again and a later read applied first, or a page view of another source), all of it goes.
    fn withdraw_interests(&mut self, at: Timestamp) {
        if self.interests_withdrawn.is_some_and(|withdrawn| withdrawn >= at) {
            return;
        }
        self.interests_withdrawn = Some(at);
        if !self.keeps_interests_after(at) {
            self.forget_interests();
        }
    }

    /// Whether all the evidence the interests hold survives a withdrawal at `at`.
    fn keeps_interests_after(&self, at: Timestamp) -> bool {
        self.interests_since.is_none_or(|since| since > at && !self.interests_from_other_sources)
    }

    /// Whether interest evidence dated `at` counts: only after the latest withdrawal.
    fn takes_interests(&self, at: Timestamp) -> bool {
        self.interests_withdrawn.is_none_or(|withdrawn| at > withdrawn)
    }

    /// The interests now hold evidence dated `at`.
    fn note_interests(&mut self, at: Timestamp) {
        self.interests_since = min_option(self.interests_since, Some(at));
    }

    fn forget_interests(&mut self) {
        self.interests = Interests::default();
        self.site_tags = Interests::default();
        self.interests_since = None;
        self.interests_from_other_sources = false;
    }

    /// Whether the profile holds this identity, as far as a scan of a few finds out: `false`
    /// may also mean "not looked" (more than a few identities), never a wrong `true`.
    fn holds(&self, kind: &IdKind, value: &str) -> bool {
        self.identities.len() <= 16
            && self.identities.iter().any(|identity| identity.kind == *kind && identity.value == value)
    }

    /// Merges `other` (the profile called `other_id`) into this one. Merging a profile that
    /// was already merged, directly or through another, changes nothing.
    pub fn merge(&mut self, other_id: &str, other: &Profile) {
        self.merge_sharing(other_id, other, &[]);
    }

    /// [`merge`](Self::merge), when both profiles applied the events `shared` (one message
    /// id that reached each before they were linked: dedupe is per profile): what those
    /// added to the sums and the interests counts once.
    pub fn merge_sharing(&mut self, other_id: &str, other: &Profile, shared: &[Received]) {
        if self.merged.contains(other_id) {
            return;
        }
        self.identities.extend(other.identities.iter().cloned());
        self.aliases.extend(other.aliases.iter().cloned());
        self.first_seen = min_option(self.first_seen, other.first_seen);
        self.last_seen = self.last_seen.max(other.last_seen);
        add_counts(&mut self.counters, &other.counters);
        for (key, theirs) in &other.traits {
            keep_latest(&mut self.traits, key, theirs);
        }
        for (group, traits) in &other.group_traits {
            let mine = self.group_traits.entry(group.clone()).or_default();
            for (key, theirs) in traits {
                keep_latest(mine, key, theirs);
            }
        }
        for session in &other.sessions.recent {
            self.sessions.add(*session);
        }
        self.sessions.older += other.sessions.older;
        if let Some(touch) = &other.first_touch {
            keep(&mut self.first_touch, touch.stamp, false, || touch.value.clone());
        }
        if let Some(touch) = &other.last_touch {
            keep(&mut self.last_touch, touch.stamp, true, || touch.value.clone());
        }
        if let Some(location) = &other.location {
            keep(&mut self.location, location.stamp, true, || location.value.clone());
        }
        add_counts(&mut self.devices, &other.devices);
        self.activity.merge(&other.activity);
        self.orders.merge(&other.orders);
        if let Some(locale) = &other.locale {
            keep(&mut self.locale, locale.stamp, true, || locale.value.clone());
        }
        self.groups.extend(other.groups.iter().cloned());
        // The later withdrawal holds for both: a side keeps its evidence if all of it would
        // survive that withdrawal, and loses all of it otherwise (erring on the side of the
        // withdrawal, as `withdraw_interests` does), whichever side merges.
        let withdrawn = self.interests_withdrawn.max(other.interests_withdrawn);
        let keeps = |p: &Profile| withdrawn.is_none_or(|w| p.keeps_interests_after(w));
        let (keeps_ours, keeps_theirs) = (keeps(self), keeps(other));
        // A shared event's interest evidence is in the merge twice when both sides keep
        // their interests and both hold evidence as old as it.
        let both_since = match keeps_ours && keeps_theirs {
            true => self.interests_since.zip(other.interests_since).map(|(a, b)| a.max(b)),
            false => None,
        };
        if !keeps_ours {
            self.forget_interests();
        }
        if keeps_theirs {
            self.interests.merge(&other.interests);
            self.site_tags.merge(&other.site_tags);
            self.interests_since = min_option(self.interests_since, other.interests_since);
            self.interests_from_other_sources |= other.interests_from_other_sources;
        }
        self.interests_withdrawn = withdrawn;
        self.merged.insert(other_id.to_owned());
        self.merged.extend(other.merged.iter().cloned());
        self.identity_log.extend(other.identity_log.iter().cloned());
        self.trim_log();
        self.bound();
        for received in shared.iter().filter(|r| !is_refusal_of_analytics(&r.event)) {
            self.take_back(received, both_since);
        }
    }

    /// Takes back what applying `received` a second time added (see
    /// [`merge_sharing`](Self::merge_sharing)); its interest evidence when both sides held
    /// evidence from `both_since` on, and it is dated after that.
    fn take_back(&mut self, received: &Received, both_since: Option<Timestamp>) {
        self.tally(received, Tally::TakeBack);
        let at = Stamp::of(&received.event).at;
        let evidence = Evidence::of(&received.event);
        if both_since.is_some_and(|since| since <= at) && self.counts_evidence(&evidence, at) {
            for (topic, weight) in &evidence.topics {
                self.interests.take_back(topic, *weight, at.0);
            }
            for (tag, weight) in &evidence.tags {
                self.site_tags.take_back(tag, *weight, at.0);
            }
        }
    }

    /// Applies the bounds on sender-chosen keys ([`MAX_EVENT_NAMES`] and its neighbours).
    fn bound(&mut self) {
        if self.counters.len() > MAX_EVENT_NAMES {
            let mut other = self.counters.remove(OTHER_EVENTS).unwrap_or(0);
            while self.counters.len() > MAX_EVENT_NAMES - 1 {
                other += self.counters.pop_last().map_or(0, |(_, n)| n);
            }
            self.counters.insert(OTHER_EVENTS.to_owned(), other);
        }
        keep_first(&mut self.traits, MAX_TRAITS);
        keep_first(&mut self.group_traits, MAX_GROUPS);
        for traits in self.group_traits.values_mut() {
            keep_first(traits, MAX_TRAITS);
        }
        while self.groups.len() > MAX_GROUPS {
            self.groups.pop_last();
        }
    }

    /// Records a merge or a refused merge in the identity log.
    pub fn log(&mut self, at: Timestamp, change: Change) {
        self.identity_log.insert(LogEntry { at, change });
        self.trim_log();
    }

    /// The profiles this one's log records a refused merge with.
    pub fn refused_with(&self) -> BTreeSet<String> {
        let other = |entry: &LogEntry| match &entry.change {
            Change::Refused { other, .. } => Some(other.clone()),
            Change::Merged { .. } => None,
        };
        self.identity_log.iter().filter_map(other).collect()
    }

    /// Forgets the refused merges with any of `profile_ids` (an erased person's profile and
    /// those merged into it): each names that person's profile, and their user id. Returns
    /// how many entries went.
    pub fn forget_refusals_with(&mut self, profile_ids: &[String]) -> usize {
        let before = self.identity_log.len();
        self.identity_log.retain(
            |entry| !matches!(&entry.change, Change::Refused { other, .. } if profile_ids.contains(other)),
        );
        before - self.identity_log.len()
    }

    fn trim_log(&mut self) {
        while self.identity_log.len() > MAX_LOG_ENTRIES {
            self.identity_log.pop_first();
        }
    }

    /// The user ids of this profile (one, unless an `alias` joined two).
    pub fn user_ids(&self) -> impl Iterator<Item = &str> {
        self.identities.iter().filter(|i| i.kind == IdKind::UserId).map(|i| i.value.as_str())
    }

    pub fn event_count(&self) -> u64 {
        self.counters.values().sum()
    }

    /// The device seen most often (ties: the first by key).
    pub fn main_device(&self) -> Option<&str> {
        let mut best: Option<(&str, u64)> = None;
        for (key, &count) in &self.devices {
            if best.is_none_or(|(_, n)| count > n) {
                best = Some((key, count));
            }
        }
        best.map(|(key, _)| key)
    }
}

/// A consent event's decision for `category` (`analytics`, `personalization`), if it has one.
fn decision(event: &Event, category: &str) -> Option<Decision> {
    match event.properties.get(category) {
        Some(Value::String(text)) => Decision::parse(text),
        _ => None,
    }
}

/// A `Consent Updated` that refuses analytics: what the SDK sends to withdraw personalisation
/// when it may send nothing else.
pub fn is_refusal_of_analytics(event: &Event) -> bool {
    is_consent_event(event) && decision(event, "analytics") == Some(Decision::Denied)
}

fn is_consent_event(event: &Event) -> bool {
    matches!(&event.call, Call::Track { event: name } if name == CONSENT_EVENT)
}

fn counter_key(call: &Call) -> std::borrow::Cow<'_, str> {
    match call {
        Call::Track { event } => event.as_str().into(),
        other => format!("${}", other.type_name()).into(),
    }
}

/// Whether an event is counted or taken back (a merge found it counted on both sides).
#[derive(Clone, Copy, PartialEq)]
enum Tally {
    Add,
    TakeBack,
}

/// Counts one event under `key`, or takes one back: from [`OTHER_EVENTS`] when the key was
/// folded into it; a count that reaches 0 goes.
fn tally_count(counts: &mut BTreeMap<String, u64>, key: &str, tally: Tally) {
    if tally == Tally::Add {
        return add_count(counts, key, 1);
    }
    let key = if counts.contains_key(key) { key } else { OTHER_EVENTS };
    if let Some(count) = counts.get_mut(key) {
        *count = count.saturating_sub(1);
        if *count == 0 {
            counts.remove(key);
        }
    }
}

/// Adds `n` to `key`'s count; the key is copied only when it is new (a per-event allocation
/// showed up in the collector's profile).
fn add_count(counts: &mut BTreeMap<String, u64>, key: &str, n: u64) {
    match counts.get_mut(key) {
        Some(count) => *count += n,
        None => {
            counts.insert(key.to_owned(), n);
        }
    }
}

/// Sets `key` to `candidate` unless a later write is already there.
fn keep_latest(map: &mut BTreeMap<String, Stamped<Value>>, key: &str, candidate: &Stamped<Value>) {
    match map.get_mut(key) {
        Some(current) if current.stamp >= candidate.stamp => {}
        Some(current) => *current = candidate.clone(),
        None => {
            map.insert(key.to_owned(), candidate.clone());
        }
    }
}

fn keep_first<V>(map: &mut BTreeMap<String, V>, len: usize) {
    while map.len() > len {
        map.pop_last();
    }
}

fn add_counts(into: &mut BTreeMap<String, u64>, from: &BTreeMap<String, u64>) {
    for (key, n) in from {
        add_count(into, key, *n);
    }
}

fn min_option(a: Option<Timestamp>, b: Option<Timestamp>) -> Option<Timestamp> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A page view about network security, sent by `library`.
    fn page_view(id: &str, at: i64, library: &str) -> Received {
        let mut event = Event::new(id, Call::Page { category: None, name: Some("Firewall rules".into()) });
        event.anonymous_id = Some("a".into());
        event.timestamp = Some(Timestamp(at));
        event.context_mut().page.title = Some("Network security: firewalls and VPNs explained".into());
        event.context_mut().page.url = Some("https://example.com/blog/network-security-firewalls".into());
        event.context_mut().library.name = Some(library.into());
        Received { event, enrichment: Default::default() }
    }

    #[test]
    fn refusals_with_an_erased_person_are_forgotten_and_the_rest_kept() {
        use crate::identity::{MergeReason, Refusal};
        let reason = MergeReason::Shared(Identity { kind: IdKind::AnonymousId, value: "shared".into() });
        let refused = |other: &str, theirs: &str| Change::Refused {
            other: other.into(),
            reason: reason.clone(),
            refusal: Refusal::DifferentUsers { ours: "bob".into(), theirs: theirs.into() },
        };
        let mut bob = Profile::default();
        bob.log(Timestamp(T), refused("u:alice", "alice"));
        bob.log(Timestamp(T + 1), refused("a:alices-laptop", "alice"));
        bob.log(Timestamp(T + 2), refused("u:carol", "carol"));
        bob.log(Timestamp(T + 3), Change::Merged { from: "a:phone".into(), identities: Vec::new(), reason });
        assert_eq!(
            bob.refused_with(),
            BTreeSet::from(["u:alice".into(), "a:alices-laptop".into(), "u:carol".into()])
        );

        let alice = ["u:alice".to_owned(), "a:alices-laptop".to_owned()];
        assert_eq!(bob.forget_refusals_with(&alice), 2);
        assert_eq!(bob.refused_with(), BTreeSet::from(["u:carol".to_owned()]));
        assert_eq!(bob.identity_log.len(), 2, "the merge stays");
        assert_eq!(bob.forget_refusals_with(&alice), 0, "asked again: nothing more");
    }

    #[test]
    fn pages_from_other_sources_are_classified_here_and_the_sdks_are_not() {
        let mut server = Profile::default();
        server.apply(&page_view("m1", T, "analytics-node"));
        let top = server.interests.top(T, 3);
        let model = crate::topics::builtin().unwrap();
        let paths: Vec<String> =
            top.iter().filter_map(|(id, _)| model.topic(*id)).map(|t| t.path().to_owned()).collect();
        assert!(paths.iter().any(|p| p.starts_with("/Computers & Electronics")), "{paths:?}");
        assert!(top.iter().all(|(_, score)| *score <= SERVER_PAGE_ATTENTION + 1e-9));
        let mut browser = Profile::default();
        browser.apply(&page_view("m1", T, SDK_LIBRARY));
        assert!(browser.interests.is_empty(), "the SDK sends its own topics");
        let mut unreadable = page_view("m2", T, "analytics-node");
        unreadable.event.call = Call::Page { category: None, name: None };
        unreadable.event.context_mut().page.title = Some("Qzxv".into());
        unreadable.event.context_mut().page.url = Some("https://zq.xv/qz".into());
        let mut blank = Profile::default();
        blank.apply(&unreadable);
        assert!(blank.interests.is_empty(), "no word the model knows: no topics, not its prior");
    }

    #[test]
    fn sent_topics_outside_the_taxonomy_are_left_out() {
        let pair = |id: i64, weight: f64| Value::Array(vec![Value::Int(id), Value::Float(weight)]);
        let mut event = Event::new("m1", Call::Track { event: "Page Engaged".into() });
        event.anonymous_id = Some("a".into());
        event.timestamp = Some(Timestamp(1_800_000_000_000));
        event
            .properties
            .insert("topics".into(), Value::Array(vec![pair(299, 0.5), pair(60_000, 1.0), pair(2, 1.0)]));
        let mut profile = Profile::default();
        profile.apply(&Received { event, enrichment: Default::default() });
        let ids: Vec<u16> =
            profile.interests.top(1_800_000_000_000, 10).into_iter().map(|(id, _)| id).collect();
        assert_eq!(ids, [299]);
    }

    fn engaged(id: &str, at: i64, topic: i64) -> Received {
        let mut event = Event::new(id, Call::Track { event: interests::ENGAGED_EVENT.into() });
        event.anonymous_id = Some("a".into());
        event.timestamp = Some(Timestamp(at));
        let pair = |key: Value| Value::Array(vec![Value::Array(vec![key, Value::Float(0.5)])]);
        event.properties.insert(interests::SENT_TOPICS.into(), pair(Value::Int(topic)));
        event.properties.insert(interests::SENT_TAGS.into(), pair(Value::String("intent:pricing".into())));
        Received { event, enrichment: Default::default() }
    }

    fn consent(id: &str, at: i64, personalization: Decision) -> Received {
        let mut event = Event::new(id, Call::Track { event: CONSENT_EVENT.into() });
        event.anonymous_id = Some("a".into());
        event.timestamp = Some(Timestamp(at));
        event.properties.insert("personalization".into(), Value::String(personalization.as_str().into()));
        Received { event, enrichment: Default::default() }
    }

    fn topic_ids(profile: &Profile) -> Vec<u16> {
        profile.interests.top(T + 10_000, 10).into_iter().map(|(id, _)| id).collect()
    }

    const T: i64 = 1_800_000_000_000;

    #[test]
    fn a_withdrawal_of_personalisation_erases_the_interests_before_it_in_any_order() {
        // Read about sport, withdrew, granted again and read about concerts.
        let events = [
            engaged("m1", T, 299),
            consent("m2", T + 1_000, Decision::Denied),
            consent("m3", T + 2_000, Decision::Granted),
            engaged("m4", T + 3_000, 4),
        ];
        // The read after the grant counts, unless both reads came before the withdrawal: then
        // it goes with the other (the one case where order matters, on the side of the
        // withdrawal).
        in_every_order(&events, |profile, order, expected| {
            assert_eq!(profile.site_tags.is_empty(), expected.is_empty(), "{order:?}");
            assert_eq!(profile.interests_withdrawn, Some(Timestamp(T + 1_000)));
        });
    }

    /// Applies the four `events` (the withdrawal second) in every order, and checks that the
    /// interests hold topic 4 unless the first and the last event both came before the
    /// withdrawal; `check` gets each profile, its order and the topics expected.
    fn in_every_order(events: &[Received; 4], check: impl Fn(&Profile, &[usize; 4], &[u16])) {
        let orders = (0..256usize).map(|n| [n % 4, n / 4 % 4, n / 16 % 4, n / 64]);
        for order in orders.filter(|o| (0..4).all(|i| o.contains(&i))) {
            let mut profile = Profile::default();
            order.iter().for_each(|&i| profile.apply(&events[i]));
            let before_withdrawal =
                |event| order.iter().position(|&i| i == event) < order.iter().position(|&i| i == 1);
            let expected: &[u16] = if before_withdrawal(0) && before_withdrawal(3) { &[] } else { &[4] };
            assert_eq!(topic_ids(&profile), expected, "{order:?}");
            check(&profile, &order, expected);
        }
    }

    #[test]
    fn after_a_withdrawal_page_views_of_other_sources_no_longer_count_in_any_order() {
        // Withdrew, granted again in the browser, then a server library reported a page view
        // (it cannot know the consent) and the browser sent a read.
        let events = [
            page_view("m1", T + 3_000, "analytics-node"),
            consent("m2", T + 1_000, Decision::Denied),
            consent("m3", T + 2_000, Decision::Granted),
            engaged("m4", T + 4_000, 4),
        ];
        // The page view never counts; the read does, unless both came before the withdrawal
        // (then it goes with the page view, on the side of the withdrawal).
        in_every_order(&events, |profile, order, _| {
            assert!(!profile.interests_from_other_sources, "{order:?}");
        });
        // Merged with a profile that withdrew, either way round, a page view goes too.
        let mut withdrew = Profile::default();
        withdrew.apply(&events[1]);
        let mut server = Profile::default();
        server.apply(&events[0]);
        assert!(!server.interests.is_empty());
        for (mut into, from) in [(withdrew.clone(), &server), (server.clone(), &withdrew)] {
            into.merge("other", from);
            assert_eq!(topic_ids(&into), [0u16; 0]);
            assert!(!into.interests_from_other_sources);
        }
    }

    #[test]
    fn a_refusal_of_analytics_only_withdraws() {
        let mut profile = Profile::default();
        profile.apply(&engaged("m1", T, 299));
        let before = profile.clone();
        let mut refusal = consent("m2", T + 60_000, Decision::Denied);
        refusal.event.properties.insert("analytics".into(), Value::String("denied".into()));
        refusal.enrichment.geo = Arc::new(Geo { country: Some("FR".into()), ..Geo::default() });
        refusal.event.user_id = Some("user-never-identified".into());
        profile.apply(&refusal);
        assert_eq!(topic_ids(&profile), [0u16; 0], "the interests go");
        assert_eq!(profile.interests_withdrawn, Some(Timestamp(T + 60_000)));
        // No visit of a visitor who refused analytics: no session, activity, count, place, nor
        // an identity the refusal names (a user id its dropped `identify` would have added).
        assert_eq!(
            (profile.last_seen, &profile.sessions, &profile.activity, &profile.counters, &profile.location),
            (before.last_seen, &before.sessions, &before.activity, &before.counters, &before.location)
        );
        assert_eq!(profile.identities, before.identities);
        // Analytics refused alone (personalisation kept): nothing changes at all.
        let mut kept = before.clone();
        refusal.event.properties.insert("personalization".into(), Value::String("granted".into()));
        kept.apply(&refusal);
        assert_eq!(kept, before);
    }

    #[test]
    fn weights_that_add_nothing_do_not_date_the_interests() {
        // A topic outside the taxonomy, before the withdrawal: nothing for it to erase.
        let mut unknown = engaged("m0", T, 60_000);
        unknown.event.properties.remove(interests::SENT_TAGS);
        let events = [unknown, engaged("m2", T + 3_000, 4), consent("m1", T + 1_000, Decision::Denied)];
        for order in [[0, 1, 2], [2, 0, 1], [1, 0, 2]] {
            let mut profile = Profile::default();
            order.iter().for_each(|&i| profile.apply(&events[i]));
            assert_eq!(topic_ids(&profile), [4], "{order:?}");
        }
    }

    #[test]
    fn the_later_withdrawal_holds_for_merged_profiles() {
        let mut withdrew = Profile::default();
        withdrew.apply(&engaged("m1", T, 299));
        withdrew.apply(&consent("m2", T + 1_000, Decision::Denied));
        let mut other_device = Profile::default();
        other_device.apply(&engaged("m3", T - 1_000, 1));
        for (mut into, from) in [(withdrew.clone(), &other_device), (other_device.clone(), &withdrew)] {
            into.merge("other", from);
            assert_eq!(topic_ids(&into), [0u16; 0]);
            assert_eq!(into.interests_withdrawn, Some(Timestamp(T + 1_000)));
            // Evidence from before the withdrawal that arrives later is ignored.
            into.apply(&engaged("m4", T + 500, 4));
            assert_eq!(topic_ids(&into), [0u16; 0]);
        }
        // A read after the withdrawal, on the other device, is kept.
        let mut read_later = Profile::default();
        read_later.apply(&engaged("m5", T + 2_000, 4));
        for (mut into, from) in [(withdrew.clone(), &read_later), (read_later.clone(), &withdrew)] {
            into.merge("other", from);
            assert_eq!(topic_ids(&into), [4]);
        }
    }

    #[test]
    fn the_stored_form_is_versioned_and_other_versions_are_refused() {
        // An empty profile's stored form, and a filled one's: a field added to `Profile`, or
        // to what it holds, changes them. Then bump `STORED_VERSION` and pin the new forms.
        let empty = Profile::default().to_stored().unwrap();
        assert_eq!(empty, PINNED_EMPTY, "Profile's fields changed: bump STORED_VERSION, then pin {empty:?}");
        let profile = filled_profile();
        let stored = profile.to_stored().unwrap();
        let pinned = (stored.len(), crate::hash::fnv1a(&stored));
        assert_eq!(
            pinned, PINNED_FILLED,
            "the stored form changed: if Profile's fields (or those of what it holds) did, bump STORED_VERSION; then pin {pinned:?}"
        );
        assert_eq!(Profile::from_stored(&stored), Ok(profile));
        let mut older = stored.clone();
        older[2] = STORED_VERSION - 1;
        assert_eq!(Profile::from_stored(&older), Err(StoredError::Version(Some(STORED_VERSION - 1))));
        // A state from before versions: postcard alone.
        let unversioned = postcard::to_allocvec(&Profile::default()).unwrap();
        assert_eq!(Profile::from_stored(&unversioned), Err(StoredError::Version(None)));
        assert!(matches!(Profile::from_stored(&stored[..10]), Err(StoredError::Malformed(_))));
    }

    /// `filled_profile().to_stored()`: its length and FNV-1a hash.
    const PINNED_FILLED: (usize, u64) = (547, 6_580_730_838_707_260_574);

    /// A profile with something in each kind of field, built without the topic model (whose
    /// retraining must not move the pin): traits, a group's, an alias, an order, a campaign
    /// touch, a location and a device, sent interests and site tags, a withdrawal.
    fn filled_profile() -> Profile {
        let mut profile = Profile::default();
        let event = |id: &str, call: Call| {
            let mut event = Event::new(id, call);
            event.anonymous_id = Some("a".into());
            event.user_id = Some("u".into());
            event.timestamp = Some(Timestamp(T));
            event.context_mut().library.name = Some(SDK_LIBRARY.into());
            event.context_mut().locale = Some("en-GB".into());
            event
        };
        let enrichment = crate::enrich::Enrichment {
            geo: Arc::new(Geo { country: Some("GB".into()), ..Geo::default() }),
            device: Arc::new(crate::enrich::Device {
                device_type: DeviceType::Desktop,
                browser: Some("Chrome".into()),
                ..crate::enrich::Device::default()
            }),
        };
        let mut identify = event("f1", Call::Identify);
        identify.traits.insert("plan".into(), Value::String("pro".into()));
        let mut group = event("f2", Call::Group { group_id: "acme".into() });
        group.traits.insert("employees".into(), Value::Int(250));
        let mut order = event("f3", Call::Track { event: ORDER_EVENT.into() });
        order.properties.insert("revenue".into(), Value::Float(99.5));
        let mut page = event("f4", Call::Page { category: None, name: None });
        page.context_mut().campaign.source = Some("newsletter".into());
        let alias = event("f5", Call::Alias { previous_id: "legacy-1".into() });
        for event in [identify, group, order, page, alias] {
            profile.apply(&Received { event, enrichment: enrichment.clone() });
        }
        profile.apply(&engaged("f6", T + 1_000, 299));
        profile.apply(&consent("f7", T + 500, Decision::Denied));
        profile
    }

    /// `Profile::default().to_stored()`: the header, the version, and each field's empty form
    /// (one byte each, the 30 fields of version 2).
    const PINNED_EMPTY: &[u8] = &[
        0xFF, b'P', 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        0,
    ];

    #[test]
    fn hosts_are_read_from_urls() {
        let cases = [
            ("https://www.Google.com/search?q=x", Some("www.google.com")),
            ("http://user@example.com:8080/a", Some("example.com")),
            ("https://example.com?x", Some("example.com")),
            ("/relative/path", None),
            ("", None),
        ];
        for (url, expected) in cases {
            assert_eq!(host(url).as_deref(), expected, "{url}");
        }
    }

    #[test]
    fn sessions_split_on_half_an_hour_of_silence() {
        let mut sessions = Sessions::default();
        let minute = 60_000;
        for t in [0, 10, 29, 100, 125, 60] {
            sessions.add(Session { start: Timestamp(t * minute), end: Timestamp(t * minute), events: 1 });
        }
        // 0,10,29,60 chain (gaps ≤ 30 min: 29→60 is 31 min, so no): {0,10,29} {60} {100,125}
        let spans: Vec<(i64, i64, u64)> =
            sessions.recent.iter().map(|s| (s.start.0 / minute, s.end.0 / minute, s.events)).collect();
        assert_eq!(spans, [(0, 29, 3), (60, 60, 1), (100, 125, 2)]);
        // An event at 45 bridges {0..29} and {60}.
        sessions.add(Session { start: Timestamp(45 * minute), end: Timestamp(45 * minute), events: 1 });
        assert_eq!(sessions.recent[0].end.0 / minute, 60);
        assert_eq!(sessions.count(), 2);
    }
}
