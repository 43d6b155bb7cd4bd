//! B2B accounts: the companies people belong to, each kept as the convergent aggregate of
//! what its members' profiles report.
//!
//! A person joins an account explicitly (a `group(groupId, traits)` call) or by inference (a
//! business email domain, see [`business_domain`]). One Durable Object per account keeps an
//! [`Account`]. After each batch a profile applies, the collector sends each of the profile's
//! accounts an [`AccountUpdate`]: the profile's [`member_snapshot`] and the account traits its
//! group calls carried.
//!
//! Updates may arrive in any order, twice, or after their member was merged away or erased:
//! the account is the same whatever the order (property-tested below and in
//! `core/tests/account_laws.rs`), because every part of it is a commutative summary:
//! - a member is the newest snapshot of its profile by [`MemberVersion`], a total order, with
//!   the strongest [`AccountLink`] any snapshot carried (explicit beats inferred);
//! - account traits are last-writer-wins registers by [`Stamp`](crate::profile::Stamp), as on
//!   profiles;
//! - `gone` is a grow-only set of profile ids merged away or erased: their members are
//!   dropped and their later snapshots ignored.
//!
//! Otherwise membership only grows: a person who stops sending group calls, or changes email,
//! stays a member with their last snapshot.

use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};
use serde_json::{Value as Json, json};

use crate::audience::{Fact, Facts};
use crate::hash::fnv1a;
use crate::profile::{Profile, Stamped};
use crate::time::Timestamp;
use crate::topics::interests::Interests;
use crate::value::Value;
use crate::view;

/// Days of activity a member snapshot carries: enough for the 30-day and two 7-day windows
/// of the account view, with room for a view rendered some weeks after the last event.
pub const ACTIVITY_DAYS: i64 = 56;

/// Interests the account view lists.
pub const TOP_INTERESTS: usize = 5;

const MS_PER_DAY: i64 = 86_400_000;

/// The longest host name DNS allows (RFC 1035), in bytes.
const MAX_HOST_LEN: usize = 253;

/// The longest DNS label, in bytes.
const MAX_LABEL_LEN: usize = 63;

/// How a person came to belong to an account. Ordered: `Explicit` > `Inferred`, and an
/// account keeps the strongest link it has seen for a member, so a stated membership is never
/// downgraded by a snapshot that only inferred it. (Variant order is the stored encoding:
/// never reorder.)
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum AccountLink {
    /// From the domain of a business email.
    Inferred,
    /// From a `group` call.
    Explicit,
}

impl AccountLink {
    /// The name used in the admin API: `explicit` or `inferred`.
    pub fn as_str(self) -> &'static str {
        match self {
            AccountLink::Inferred => "inferred",
            AccountLink::Explicit => "explicit",
        }
    }
}

/// Orders snapshots of one member; the greater replaces the lesser. A profile's last event
/// time and event count never decrease and the count grows with every event applied or
/// profile merged, so a later state of a profile always has a greater version. `content`, a
/// hash of the snapshot, makes the order total over distinct snapshots, so two replicas that
/// received the same snapshots in different orders keep the same one.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct MemberVersion {
    pub last_seen: Option<Timestamp>,
    pub events: u64,
    pub content: u64,
}

/// What a profile tells one of its accounts about itself.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Member {
    pub profile_id: String,
    pub link: AccountLink,
    pub name: Option<String>,
    pub email: Option<String>,
    pub title: Option<String>,
    pub role: Option<String>,
    pub first_seen: Option<Timestamp>,
    pub last_seen: Option<Timestamp>,
    /// Events per UTC day (days since the epoch), for the [`ACTIVITY_DAYS`] days up to
    /// `last_seen`, sorted by day, days without events left out. Built from the profile's
    /// sessions, each session's events counted on the day it started: a profile keeps
    /// sessions, not event times.
    pub activity: Vec<(i64, u64)>,
    pub interests: Interests,
    /// Set by [`member_snapshot`]; see [`MemberVersion`].
    pub version: MemberVersion,
}

/// The snapshot of `profile` (called `profile_id`) for one of its accounts. Identify traits
/// give the person: `name` (else `firstName` and `lastName` joined by a space), `email`,
/// `title` (else `jobTitle`) and `role`; only non-blank strings count.
pub fn member_snapshot(profile_id: &str, profile: &Profile, link: AccountLink) -> Member {
    let text = |key: &str| match profile.traits.get(key).map(|t| &t.value) {
        Some(Value::String(text)) if !text.trim().is_empty() => Some(text.trim().to_owned()),
        _ => None,
    };
    let full_name = match (text("firstName"), text("lastName")) {
        (Some(first), Some(last)) => Some(format!("{first} {last}")),
        (first, last) => first.or(last),
    };
    let mut member = Member {
        profile_id: profile_id.to_owned(),
        link,
        name: text("name").or(full_name),
        email: text("email"),
        title: text("title").or_else(|| text("jobTitle")),
        role: text("role"),
        first_seen: profile.first_seen,
        last_seen: profile.last_seen,
        activity: daily_activity(profile),
        interests: profile.interests.clone(),
        version: MemberVersion::default(),
    };
    member.version = MemberVersion {
        last_seen: profile.last_seen,
        events: profile.event_count(),
        content: content_hash(&member),
    };
    member
}

/// Events per day for the [`ACTIVITY_DAYS`] days up to the profile's last event.
fn daily_activity(profile: &Profile) -> Vec<(i64, u64)> {
    let Some(last_seen) = profile.last_seen else {
        return Vec::new();
    };
    let last_day = day_of(last_seen);
    let mut days: BTreeMap<i64, u64> = BTreeMap::new();
    for session in &profile.sessions.recent {
        let day = day_of(session.start);
        if (0..ACTIVITY_DAYS).contains(&(last_day - day)) {
            let count = days.entry(day).or_default();
            *count = count.saturating_add(session.events);
        }
    }
    days.into_iter().collect()
}

/// The UTC day number (days since the epoch) of a time.
fn day_of(at: Timestamp) -> i64 {
    at.0.div_euclid(MS_PER_DAY)
}

/// A hash of everything in a snapshot but its link (joined separately) and its version.
fn content_hash(member: &Member) -> u64 {
    let content = (
        &member.profile_id,
        &member.name,
        &member.email,
        &member.title,
        &member.role,
        &member.first_seen,
        &member.last_seen,
        &member.activity,
        &member.interests,
    );
    // Encoding these types cannot fail (every sequence has a known length); if it ever did,
    // versions would still order snapshots by time and count, only without the tie-break.
    postcard::to_allocvec(&content).map_or(0, |bytes| fnv1a(&bytes))
}

/// One update from a profile to one of its accounts.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AccountUpdate {
    pub member: Member,
    /// The account traits the profile's group calls for this account carried, each stamped
    /// by its event (last writer wins per key).
    pub traits: Vec<(String, Stamped<Value>)>,
}

/// One account (company): its traits and members, as its Durable Object keeps it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Account {
    pub id: String,
    /// From group calls, last writer wins per key.
    pub traits: BTreeMap<String, Stamped<Value>>,
    /// By profile id.
    pub members: BTreeMap<String, Member>,
    /// Profile ids merged away or erased: a late update for them is ignored.
    pub gone: BTreeSet<String>,
}

impl Account {
    pub fn new(id: &str) -> Account {
        Account { id: id.to_owned(), ..Account::default() }
    }

    /// Applies one update. The newer snapshot of a member wins (by [`MemberVersion`]), and
    /// the member keeps the strongest link of all its snapshots. The traits apply even when
    /// the member is gone: they describe the account, not the person, and applying them in
    /// every case keeps updates, merges and removals commutative.
    pub fn apply(&mut self, update: AccountUpdate) {
        for (key, candidate) in update.traits {
            match self.traits.entry(key) {
                Entry::Vacant(slot) => {
                    slot.insert(candidate);
                }
                Entry::Occupied(mut slot) => {
                    if candidate.stamp > slot.get().stamp {
                        slot.insert(candidate);
                    }
                }
            }
        }
        let member = update.member;
        if self.gone.contains(&member.profile_id) {
            return;
        }
        match self.members.entry(member.profile_id.clone()) {
            Entry::Vacant(slot) => {
                slot.insert(member);
            }
            Entry::Occupied(mut slot) => {
                let current = slot.get_mut();
                let link = current.link.max(member.link);
                if member.version > current.version {
                    *current = member;
                }
                current.link = link;
            }
        }
    }

    /// Identity merge: the profile `from` became part of `into`. `from` leaves for good (its
    /// late updates are ignored); `into` is untouched and reports the merged person with its
    /// own next update. Nothing moves from one to the other here: whether `from`'s snapshot
    /// arrived before the merge or not must not change the result. Merging a profile into
    /// itself changes nothing.
    pub fn member_merged(&mut self, from: &str, into: &str) {
        if from != into {
            self.remove_member(from);
        }
    }

    /// Erasure: the member leaves for good, and a late update for it is ignored (its account
    /// traits still apply, see [`apply`](Self::apply)).
    pub fn remove_member(&mut self, profile_id: &str) {
        self.members.remove(profile_id);
        self.gone.insert(profile_id.to_owned());
    }
}

/// The account as the admin API shows it: JSON with camelCase names and ISO-8601 times.
///
/// - `name`, `industry`, `employees`: those traits, when strings or numbers; `traits`: all.
/// - `domain`: from the traits ([`domain_of_traits`]), else the business domain most members'
///   emails share (ties: the first by name).
/// - `members`: most recently seen first (ties by profile id); `memberCount`.
/// - `engagement`: the members' events in the 30 and 7 UTC days ending with the day of
///   `now` (`events30d`, `last7d`) and in the 7 days before those (`previous7d`), and the
///   `trend` from the previous week to the last: `rising` if the last week has at least 1.25
///   times the events of the one before and at least 3 more; `falling` if it has at most 0.75
///   times and at least 3 fewer; `none` if both weeks are empty; else `steady`. The minimum
///   difference keeps a quiet account (1 event, then 2) from swinging between trends.
/// - `topInterests`: the members' interests added up, the strongest [`TOP_INTERESTS`],
///   scored at `now` (like engagement, they fade while the account is quiet), named by the
///   builtin topic model.
/// - `lastActivity`: the latest event of any member.
pub fn account_json(account: &Account, now: Timestamp) -> Json {
    let scalar = |key: &str| match account.traits.get(key).map(|t| &t.value) {
        Some(value @ (Value::String(_) | Value::Int(_) | Value::Float(_))) => json!(value),
        _ => Json::Null,
    };
    let traits: serde_json::Map<String, Json> =
        account.traits.iter().map(|(key, t)| (key.clone(), json!(t.value))).collect();
    let mut members: Vec<&Member> = account.members.values().collect();
    members.sort_by(|a, b| b.last_seen.cmp(&a.last_seen).then_with(|| a.profile_id.cmp(&b.profile_id)));
    let members_json: Vec<Json> = members
        .iter()
        .map(|m| {
            json!({
                "profileId": m.profile_id,
                "name": m.name,
                "email": m.email,
                "title": m.title,
                "role": m.role,
                "link": m.link.as_str(),
                "firstSeen": m.first_seen.map(|t| t.to_string()),
                "lastSeen": m.last_seen.map(|t| t.to_string()),
            })
        })
        .collect();
    let last_activity = account.members.values().filter_map(|m| m.last_seen).max();
    json!({
        "id": account.id,
        "name": scalar("name"),
        "domain": domain_of_traits(&account.traits).or_else(|| members_domain(account)),
        "industry": scalar("industry"),
        "employees": scalar("employees"),
        "traits": traits,
        "members": members_json,
        "memberCount": account.members.len(),
        "engagement": engagement_json(account, now),
        "topInterests": top_interests_json(account, now),
        "lastActivity": last_activity.map(|t| t.to_string()),
    })
}

/// The business domain most members' emails share (ties: the first by name).
fn members_domain(account: &Account) -> Option<String> {
    let mut counts: BTreeMap<String, u64> = BTreeMap::new();
    for email in account.members.values().filter_map(|m| m.email.as_deref()) {
        if let Some(domain) = business_domain(email) {
            *counts.entry(domain).or_default() += 1;
        }
    }
    let mut best: Option<(String, u64)> = None;
    for (domain, count) in counts {
        if best.as_ref().is_none_or(|(_, n)| count > *n) {
            best = Some((domain, count));
        }
    }
    best.map(|(domain, _)| domain)
}

fn engagement_json(account: &Account, now: Timestamp) -> Json {
    let today = day_of(now);
    let (mut events_30d, mut last_7d, mut previous_7d) = (0u64, 0u64, 0u64);
    for (day, events) in account.members.values().flat_map(|m| &m.activity) {
        // Days after `now` (a clock behind the events') are outside every window.
        let age = today.saturating_sub(*day);
        if (0..30).contains(&age) {
            events_30d = events_30d.saturating_add(*events);
        }
        if (0..7).contains(&age) {
            last_7d = last_7d.saturating_add(*events);
        }
        if (7..14).contains(&age) {
            previous_7d = previous_7d.saturating_add(*events);
        }
    }
    let engaged_members = account
        .members
        .values()
        .filter(|m| {
            let recent = m.activity.iter().filter(|(day, _)| (0..14).contains(&today.saturating_sub(*day)));
            recent.fold(0u64, |sum, (_, events)| sum.saturating_add(*events)) >= ENGAGED_MEMBER_EVENTS
        })
        .count();
    json!({
        "events30d": events_30d,
        "last7d": last_7d,
        "previous7d": previous_7d,
        "trend": trend(last_7d, previous_7d),
        "engagedMembers14d": engaged_members,
    })
}

/// Events in 14 days that make a member engaged (`engagedMembers14d`).
pub const ENGAGED_MEMBER_EVENTS: u64 = 3;

/// What account audience rules read: `member_count`, `engaged_members_14d` (members with at
/// least [`ENGAGED_MEMBER_EVENTS`] events in the last 14 days), `events_30d`, `last_7d`,
/// `previous_7d`, `trend`, `name`, `domain`, `industry`, `employees`; `trait("…")`; and
/// `interest("…")`, the members' interests added up.
pub struct AccountFacts<'a> {
    pub account: &'a Account,
    /// [`account_json`] of the account at `now`.
    pub view: &'a Json,
    pub now: Timestamp,
}

impl Facts for AccountFacts<'_> {
    fn value(&self, name: &str) -> Fact<'_> {
        let field = match name {
            "member_count" => &self.view["memberCount"],
            "engaged_members_14d" => &self.view["engagement"]["engagedMembers14d"],
            "events_30d" => &self.view["engagement"]["events30d"],
            "last_7d" => &self.view["engagement"]["last7d"],
            "previous_7d" => &self.view["engagement"]["previous7d"],
            "trend" => &self.view["engagement"]["trend"],
            "name" | "domain" | "industry" | "employees" => &self.view[name],
            _ => &Json::Null,
        };
        crate::tags::json_fact(field)
    }

    fn interest(&self, topic: &str) -> f64 {
        let mut interests = Interests::default();
        for member in self.account.members.values() {
            interests.merge(&member.interests);
        }
        crate::tags::topic_score(&interests, topic, self.now)
    }

    fn site_tag(&self, _tag: &str) -> f64 {
        0.0
    }

    fn trait_value(&self, key: &str) -> Fact<'_> {
        self.account.traits.get(key).map_or(Fact::Null, |t| Fact::from(&t.value))
    }
}

/// The trend from the previous 7 days to the last 7, by the rule in [`account_json`].
fn trend(last_7d: u64, previous_7d: u64) -> &'static str {
    // In integers (4 × last ≥ 5 × previous is last ≥ 1.25 × previous), exact and without
    // overflow in u128.
    let (last, previous) = (u128::from(last_7d), u128::from(previous_7d));
    if last == 0 && previous == 0 {
        "none"
    } else if 4 * last >= 5 * previous && last >= previous + 3 {
        "rising"
    } else if 4 * last <= 3 * previous && previous >= last + 3 {
        "falling"
    } else {
        "steady"
    }
}

/// `[{id, name, path, score}]`: the members' interests added up, the strongest first.
fn top_interests_json(account: &Account, now: Timestamp) -> Json {
    let mut interests = Interests::default();
    for member in account.members.values() {
        interests.merge(&member.interests);
    }
    view::interests_json(&interests, now, TOP_INTERESTS)
}

/// The business domain of an email address, lower-cased: `"Ann@Acme.COM "` → `acme.com`.
/// `None` when the address is malformed (no local part, or a domain that is not an ASCII host
/// name of two or more labels; an IP literal, or a Unicode domain not in its `xn--` form) or
/// when the domain belongs to a free or disposable mail provider ([`is_free_email_domain`]).
/// The domain is kept whole (`eng.acme.com` stays so): cutting it to the registrable domain
/// would need the public suffix list.
pub fn business_domain(email: &str) -> Option<String> {
    let (local, domain) = email.trim().rsplit_once('@')?;
    if local.is_empty() || domain.len() > MAX_HOST_LEN {
        return None;
    }
    let domain = domain.to_ascii_lowercase();
    (is_host_name(&domain) && !is_free_email_domain(&domain)).then_some(domain)
}

/// The account's domain from its group traits: `domain`, else the host of `website`, each
/// lower-cased without scheme, user, port, path and a leading `www.`; `None` when neither
/// holds a host name.
pub fn domain_of_traits(traits: &BTreeMap<String, Stamped<Value>>) -> Option<String> {
    ["domain", "website"].into_iter().find_map(|key| match traits.get(key).map(|t| &t.value) {
        Some(Value::String(text)) => host_of(text),
        _ => None,
    })
}

/// The host of a URL or bare host name without a leading `www.`
/// (`https://www.Acme.com:443/about` → `acme.com`), as group traits' domains are kept.
fn host_of(text: &str) -> Option<String> {
    let host = host_name(text)?;
    let bare = host.strip_prefix("www.").unwrap_or(&host);
    is_host_name(bare).then(|| bare.to_owned())
}

/// The domains an account asked for by a host name or URL may be kept under, in order: the
/// host without `www.` (as a group's declared domain is kept), then the whole host when it
/// differs (a business email's domain is kept whole: `ann@www.acme.com`). `None`: no host.
pub fn domains_asked(text: &str) -> Option<Vec<String>> {
    let host = host_name(text)?;
    Some(match host_of(&host) {
        Some(bare) if bare != host => vec![bare, host],
        _ => vec![host],
    })
}

/// The lower-cased host of a URL or bare host name (`https://www.Acme.com:443/about` →
/// `www.acme.com`); `None` when there is no host name.
fn host_name(text: &str) -> Option<String> {
    let text = text.trim();
    let rest = text.split_once("://").map_or(text, |(_, rest)| rest).trim_start_matches('/');
    let authority = rest.split(['/', '?', '#']).next()?;
    let host = authority.rsplit('@').next()?.split(':').next()?;
    if host.len() > MAX_HOST_LEN {
        return None;
    }
    let host = host.to_ascii_lowercase();
    is_host_name(&host).then_some(host)
}

/// Whether `host` is a lower-case ASCII host name of two or more labels (letters, digits,
/// inner hyphens; 1–63 bytes each, 253 in all) whose last label is not all digits, so not
/// an IPv4 address.
fn is_host_name(host: &str) -> bool {
    if host.len() > MAX_HOST_LEN {
        return false;
    }
    let mut labels = 0;
    let mut last = "";
    for label in host.split('.') {
        let valid = (1..=MAX_LABEL_LEN).contains(&label.len())
            && label.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !label.starts_with('-')
            && !label.ends_with('-');
        if !valid {
            return false;
        }
        labels += 1;
        last = label;
    }
    labels >= 2 && !last.bytes().all(|b| b.is_ascii_digit())
}

/// The npm package `free-email-domains` (free and disposable mail providers), one domain a
/// line, sorted; `#` lines are its provenance and licence.
const FREE_EMAIL_DOMAINS: &str = include_str!("../data/free_email_domains.txt");

/// The list's domains, sorted (checked by a test), read once.
fn free_email_domains() -> &'static [&'static str] {
    static DOMAINS: OnceLock<Vec<&'static str>> = OnceLock::new();
    DOMAINS
        .get_or_init(|| FREE_EMAIL_DOMAINS.lines().filter(|l| !l.is_empty() && !l.starts_with('#')).collect())
}

/// Whether a lower-case domain is a free-mail provider's: listed, or a subdomain of a listed
/// domain (`austin.rr.com` under `rr.com`, the random inboxes under a disposable provider).
/// Each parent is one more binary search, so this costs a few dozen comparisons. The price:
/// a listed entry that is itself a public suffix (the list has `net.ua`) marks every domain
/// under it as free.
fn is_free_email_domain(domain: &str) -> bool {
    let list = free_email_domains();
    let mut rest = domain;
    loop {
        if list.binary_search(&rest).is_ok() {
            return true;
        }
        match rest.split_once('.') {
            Some((_, parent)) => rest = parent,
            None => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::{Session, Sessions, Stamp};

    const DAY: i64 = MS_PER_DAY;
    /// 2026-01-01T00:00:00Z, day 20454.
    const T0: i64 = 1_767_225_600_000;

    fn stamped(at: i64, tie: u64, value: Value) -> Stamped<Value> {
        Stamped { stamp: Stamp { at: Timestamp(at), tie }, value }
    }

    fn traits(pairs: &[(&str, Value)]) -> BTreeMap<String, Stamped<Value>> {
        pairs.iter().map(|(k, v)| (k.to_string(), stamped(0, 0, v.clone()))).collect()
    }

    #[test]
    fn the_free_mail_list_is_sorted_unique_host_names() {
        let list = free_email_domains();
        assert!(list.len() > 10_000, "the list was read: {} domains", list.len());
        for pair in list.windows(2) {
            assert!(pair[0] < pair[1], "sorted, no duplicates: {pair:?}");
        }
        for domain in list {
            assert!(is_host_name(domain), "{domain:?}");
        }
        let header = FREE_EMAIL_DOMAINS.lines().next().unwrap_or_default();
        assert!(header.starts_with("# free-email-domains "), "provenance first: {header}");
    }

    #[test]
    fn an_account_asked_for_by_domain_may_be_kept_with_or_without_www() {
        let cases: &[(&str, Option<&[&str]>)] = &[
            ("acme.com", Some(&["acme.com"])),
            (" https://www.Acme.com:443/about ", Some(&["acme.com", "www.acme.com"])),
            ("www.io", Some(&["www.io"])), // `io` alone is no host name
            ("not a host", None),
            ("https://", None),
        ];
        for &(text, expected) in cases {
            let expected = expected.map(|domains| domains.iter().map(|d| d.to_string()).collect::<Vec<_>>());
            assert_eq!(domains_asked(text), expected, "{text:?}");
        }
    }

    #[test]
    fn business_domains_are_read_from_emails() {
        let long_label = format!("ann@{}.com", "a".repeat(64));
        let huge = format!("ann@{}com", "acme.".repeat(100_000));
        let cases: &[(&str, Option<&str>)] = &[
            ("Ann@Acme.COM ", Some("acme.com")),
            ("ann@eng.acme.com", Some("eng.acme.com")),
            ("ann@acme.co.uk", Some("acme.co.uk")),
            ("ann@xn--bcher-kva.de", Some("xn--bcher-kva.de")),
            ("\"a@b\"@acme.com", Some("acme.com")),
            ("ann@my-company.io", Some("my-company.io")),
            // Free and disposable providers, and their subdomains.
            ("ann@gmail.com", None),
            ("ann@GMAIL.com", None),
            ("ann@yahoo.co.uk", None),
            ("ann@mail.yahoo.co.uk", None),
            ("ann@austin.rr.com", None),
            ("ann@mailinator.com", None),
            // A listed domain's name inside another label is not its subdomain.
            ("ann@notgmail.com", Some("notgmail.com")),
            ("ann@gmail.com.acme.com", Some("gmail.com.acme.com")),
            // Malformed.
            ("", None),
            ("   ", None),
            ("ann", None),
            ("@acme.com", None),
            ("ann@", None),
            ("ann@localhost", None),
            ("ann@1.2.3.4", None),
            ("ann@[1.2.3.4]", None),
            ("ann@-acme.com", None),
            ("ann@acme-.com", None),
            ("ann@acme..com", None),
            ("ann@.acme.com", None),
            ("ann@acme.com.", None),
            ("ann@acme.com/x", None),
            ("ann@acme .com", None),
            ("ann@bücher.de", None),
            ("ann@acme.com\0", None),
            (&long_label, None),
            (&huge, None),
        ];
        for (email, expected) in cases {
            let shown: String = email.chars().take(60).collect();
            assert_eq!(business_domain(email).as_deref(), *expected, "{shown:?}");
        }
    }

    #[test]
    fn account_domains_come_from_domain_else_website() {
        let s = |text: &str| Value::String(text.into());
        type Case<'a> = (&'a [(&'a str, Value)], Option<&'a str>);
        let cases: &[Case] = &[
            (&[("domain", s("Acme.com"))], Some("acme.com")),
            (&[("domain", s(" acme.com "))], Some("acme.com")),
            (&[("website", s("https://www.Acme.com/about?x=1#top"))], Some("acme.com")),
            (&[("website", s("http://user@acme.com:8080"))], Some("acme.com")),
            (&[("website", s("//acme.com/a"))], Some("acme.com")),
            (&[("website", s("www.acme.com"))], Some("acme.com")),
            (&[("website", s("acme.com/pricing"))], Some("acme.com")),
            (&[("website", s("https://shop.acme.com"))], Some("shop.acme.com")),
            (&[("domain", s("acme.com")), ("website", s("https://other.org"))], Some("acme.com")),
            (&[("domain", s("not a domain")), ("website", s("https://other.org"))], Some("other.org")),
            (&[("domain", Value::Int(5)), ("website", s("other.org"))], Some("other.org")),
            (&[("website", s("https://192.168.0.1/"))], None),
            (&[("website", s("javascript:alert(1)"))], None),
            (&[("website", s("https://www.com"))], None),
            (&[("website", s(""))], None),
            (&[("name", s("Acme"))], None),
            (&[], None),
        ];
        for (pairs, expected) in cases {
            assert_eq!(domain_of_traits(&traits(pairs)).as_deref(), *expected, "{pairs:?}");
        }
    }

    #[test]
    fn trends_compare_the_last_week_with_the_one_before() {
        let cases = [
            ((0, 0), "none"),
            ((3, 0), "rising"),
            ((2, 0), "steady"),
            ((5, 4), "steady"),
            ((5, 2), "rising"),
            ((125, 100), "rising"),
            ((124, 100), "steady"),
            ((75, 100), "falling"),
            ((76, 100), "steady"),
            ((0, 3), "falling"),
            ((0, 2), "steady"),
            ((1, 4), "falling"),
            ((u64::MAX, u64::MAX), "steady"),
            ((u64::MAX, 0), "rising"),
            ((0, u64::MAX), "falling"),
        ];
        for ((last, previous), expected) in cases {
            assert_eq!(trend(last, previous), expected, "{last} vs {previous}");
        }
    }

    fn session(start: i64, end: i64, events: u64) -> Session {
        Session { start: Timestamp(start), end: Timestamp(end), events }
    }

    fn profile_with(traits_of: &[(&str, Value)]) -> Profile {
        Profile {
            traits: traits(traits_of),
            first_seen: Some(Timestamp(T0)),
            last_seen: Some(Timestamp(T0 + DAY)),
            counters: [("$page".to_string(), 3)].into(),
            ..Profile::default()
        }
    }

    #[test]
    fn snapshots_read_the_person_from_identify_traits() {
        let s = |text: &str| Value::String(text.into());
        type Person =
            (Option<&'static str>, Option<&'static str>, Option<&'static str>, Option<&'static str>);
        let cases: &[(&[(&str, Value)], Person)] = &[
            (
                &[
                    ("name", s("Ann Lee")),
                    ("email", s("ann@acme.com")),
                    ("title", s("CTO")),
                    ("role", s("admin")),
                ],
                (Some("Ann Lee"), Some("ann@acme.com"), Some("CTO"), Some("admin")),
            ),
            (&[("firstName", s("Ann")), ("lastName", s("Lee"))], (Some("Ann Lee"), None, None, None)),
            (&[("firstName", s("Ann"))], (Some("Ann"), None, None, None)),
            (&[("lastName", s(" Lee "))], (Some("Lee"), None, None, None)),
            (&[("name", s("A. Lee")), ("firstName", s("Ann"))], (Some("A. Lee"), None, None, None)),
            (&[("name", s("  ")), ("firstName", s("Ann"))], (Some("Ann"), None, None, None)),
            (&[("jobTitle", s("CTO"))], (None, None, Some("CTO"), None)),
            (&[("title", s("CEO")), ("jobTitle", s("CTO"))], (None, None, Some("CEO"), None)),
            (&[("name", Value::Int(7)), ("email", Value::Null), ("role", s(""))], (None, None, None, None)),
            (&[], (None, None, None, None)),
        ];
        for (pairs, (name, email, title, role)) in cases {
            let member = member_snapshot("p", &profile_with(pairs), AccountLink::Explicit);
            let got = (
                member.name.as_deref(),
                member.email.as_deref(),
                member.title.as_deref(),
                member.role.as_deref(),
            );
            assert_eq!(got, (*name, *email, *title, *role), "{pairs:?}");
        }
    }

    #[test]
    fn snapshots_count_events_on_the_day_their_session_started() {
        let last_seen = T0 + 60 * DAY + 10;
        let profile = Profile {
            first_seen: Some(Timestamp(T0)),
            last_seen: Some(Timestamp(last_seen)),
            sessions: Sessions {
                recent: vec![
                    session(T0, T0 + 60_000, 4),            // 60 days before: outside
                    session(T0 + 4 * DAY, T0 + 4 * DAY, 1), // 56 days before: outside
                    session(T0 + 5 * DAY, T0 + 5 * DAY, 2), // 55 days before: inside
                    session(T0 + 30 * DAY - 60_000, T0 + 30 * DAY + 60_000, 5), // across midnight
                    session(T0 + 30 * DAY + 3_600_000, T0 + 30 * DAY + 3_600_000, 1),
                    session(T0 + 60 * DAY, last_seen, 3),
                ],
                older: 9,
            },
            counters: [("$page".to_string(), 25)].into(),
            ..Profile::default()
        };
        let member = member_snapshot("p", &profile, AccountLink::Inferred);
        let day0 = day_of(Timestamp(T0));
        let expected = [(day0 + 5, 2), (day0 + 29, 5), (day0 + 30, 1), (day0 + 60, 3)];
        assert_eq!(member.activity, expected);
        assert_eq!(member.version.last_seen, Some(Timestamp(last_seen)));
        assert_eq!(member.version.events, 25);
        assert!(member_snapshot("p", &Profile::default(), AccountLink::Inferred).activity.is_empty());
    }

    #[test]
    fn a_later_state_of_a_profile_has_a_greater_version() {
        let mut profile = profile_with(&[("name", Value::String("Ann".into()))]);
        let before = member_snapshot("p", &profile, AccountLink::Inferred);
        // An older event arrives late: same last event, one more event.
        profile.counters.insert("$identify".into(), 1);
        profile.traits.insert("title".into(), stamped(T0, 1, Value::String("CTO".into())));
        let after = member_snapshot("p", &profile, AccountLink::Inferred);
        assert!(after.version > before.version);
        assert_eq!(
            member_snapshot("p", &profile, AccountLink::Explicit).version,
            after.version,
            "link aside"
        );
        let other = member_snapshot("q", &profile, AccountLink::Inferred);
        assert_ne!(other.version, after.version, "the content hash separates equal counts");
    }

    fn member(id: &str, link: AccountLink, last_seen: i64, name: &str) -> Member {
        let mut member = Member {
            profile_id: id.into(),
            link,
            name: Some(name.into()),
            email: None,
            title: None,
            role: None,
            first_seen: Some(Timestamp(T0)),
            last_seen: Some(Timestamp(last_seen)),
            activity: Vec::new(),
            interests: Interests::default(),
            version: MemberVersion::default(),
        };
        member.version =
            MemberVersion { last_seen: member.last_seen, events: 1, content: content_hash(&member) };
        member
    }

    fn update(member: Member) -> AccountUpdate {
        AccountUpdate { member, traits: Vec::new() }
    }

    #[test]
    fn the_newest_snapshot_wins_and_an_explicit_link_stays() {
        use AccountLink::{Explicit, Inferred};
        let old_explicit = member("p", Explicit, T0, "old");
        let new_inferred = member("p", Inferred, T0 + DAY, "new");
        for order in [[&old_explicit, &new_inferred], [&new_inferred, &old_explicit]] {
            let mut account = Account::new("acme");
            for m in order {
                account.apply(update(m.clone()));
            }
            let kept = &account.members["p"];
            assert_eq!((kept.name.as_deref(), kept.link), (Some("new"), Explicit));
        }
    }

    #[test]
    fn merged_and_erased_members_leave_for_good() {
        use AccountLink::Explicit;
        type Step<'a> = (&'a str, &'a str);
        // ("apply", id) applies a snapshot of `id`; ("merge", "from>into"); ("erase", id).
        let cases: &[(&[Step], &[&str])] = &[
            (&[("apply", "a"), ("apply", "b"), ("merge", "b>a")], &["a"]),
            (&[("merge", "b>a"), ("apply", "b"), ("apply", "a")], &["a"]),
            (&[("apply", "a"), ("merge", "a>a")], &["a"]),
            (&[("apply", "a"), ("erase", "a"), ("apply", "a")], &[]),
            (&[("erase", "a"), ("apply", "a"), ("apply", "b")], &["b"]),
            (&[("erase", "zzz"), ("apply", "a")], &["a"]),
        ];
        for (steps, expected) in cases {
            let mut account = Account::new("acme");
            for (i, (op, arg)) in steps.iter().enumerate() {
                match *op {
                    "apply" => account.apply(update(member(arg, Explicit, T0 + i as i64, arg))),
                    "merge" => {
                        let (from, into) = arg.split_once('>').unwrap_or_default();
                        account.member_merged(from, into);
                    }
                    _ => account.remove_member(arg),
                }
            }
            let ids: Vec<&str> = account.members.keys().map(String::as_str).collect();
            assert_eq!(ids, *expected, "{steps:?}");
        }
    }

    #[test]
    fn account_traits_are_last_writer_wins_even_from_gone_members() {
        let s = |text: &str| Value::String(text.into());
        let mut account = Account::new("acme");
        account.remove_member("gone");
        let mut late = update(member("gone", AccountLink::Explicit, T0, "x"));
        late.traits = vec![("plan".into(), stamped(T0 + 5, 0, s("pro")))];
        let mut early = update(member("p", AccountLink::Explicit, T0, "y"));
        early.traits =
            vec![("plan".into(), stamped(T0 + 1, 0, s("free"))), ("name".into(), stamped(T0, 0, s("Acme")))];
        account.apply(late);
        account.apply(early);
        let plan = &account.traits["plan"].value;
        assert_eq!((plan, account.traits.len()), (&s("pro"), 2));
        assert!(!account.members.contains_key("gone"));
    }

    #[test]
    fn the_view_shows_the_account_its_members_and_their_engagement() {
        let s = |text: &str| Value::String(text.into());
        let now = Timestamp(T0 + 20 * DAY + 3_600_000);
        let today = day_of(now);
        let mut ann = member("u:ann", AccountLink::Explicit, T0 + 20 * DAY, "Ann Lee");
        ann.email = Some("ann@acme.com".into());
        ann.title = Some("CTO".into());
        // last7d: days 0 and 6 ago; previous7d: 7 and 13 ago; 30d: also 29 ago; not 30 ago or tomorrow.
        ann.activity = vec![
            (today - 30, 100),
            (today - 29, 1),
            (today - 13, 1),
            (today - 7, 1),
            (today - 6, 2),
            (today, 3),
            (today + 1, 50),
        ];
        ann.interests.add(1, 1.0, now.0);
        ann.interests.add(350, 0.5, now.0);
        let mut bob = member("a:bob", AccountLink::Inferred, T0 + 2 * DAY, "Bob");
        bob.email = Some("bob@acme.com".into());
        bob.activity = vec![(today - 1, 4)];
        bob.interests.add(350, 1.0, now.0);
        let mut account = Account::new("g:acme");
        account.apply(AccountUpdate {
            member: ann,
            traits: vec![
                ("name".into(), stamped(T0, 0, s("Acme"))),
                ("employees".into(), stamped(T0, 0, Value::Int(120))),
                ("plan".into(), stamped(T0, 0, s("pro"))),
            ],
        });
        account.apply(update(bob));
        let view = account_json(&account, now);
        let expected = json!({
            "id": "g:acme",
            "name": "Acme",
            "domain": "acme.com",
            "industry": null,
            "employees": 120,
            "traits": { "name": "Acme", "employees": 120, "plan": "pro" },
            "members": [
                {
                    "profileId": "u:ann", "name": "Ann Lee", "email": "ann@acme.com", "title": "CTO",
                    "role": null, "link": "explicit", "firstSeen": "2026-01-01T00:00:00.000Z",
                    "lastSeen": "2026-01-21T00:00:00.000Z",
                },
                {
                    "profileId": "a:bob", "name": "Bob", "email": "bob@acme.com", "title": null,
                    "role": null, "link": "inferred", "firstSeen": "2026-01-01T00:00:00.000Z",
                    "lastSeen": "2026-01-03T00:00:00.000Z",
                },
            ],
            "memberCount": 2,
            "engagement": { "events30d": 12, "last7d": 9, "previous7d": 2, "trend": "rising", "engagedMembers14d": 2 },
            "topInterests": [
                { "id": 350, "name": "Celebrities & Entertainment News", "path": "/Arts & Entertainment/Celebrities & Entertainment News", "score": 1.5 },
                { "id": 1, "name": "Arts & Entertainment", "path": "/Arts & Entertainment", "score": 1.0 },
            ],
            "lastActivity": "2026-01-21T00:00:00.000Z",
        });
        assert_eq!(view, expected);
    }

    #[test]
    fn an_empty_account_has_an_empty_view() {
        let view = account_json(&Account::new("x"), Timestamp(T0));
        assert_eq!(view["members"], json!([]));
        assert_eq!(view["domain"], Json::Null);
        assert_eq!(
            view["engagement"],
            json!({ "events30d": 0, "last7d": 0, "previous7d": 0, "trend": "none", "engagedMembers14d": 0 })
        );
        assert_eq!(view["topInterests"], json!([]));
        assert_eq!(view["lastActivity"], Json::Null);
    }

    #[test]
    fn the_view_survives_hostile_state() {
        let mut hostile = member("p", AccountLink::Inferred, i64::MIN, "x");
        hostile.activity = vec![(i64::MIN, u64::MAX), (i64::MAX, u64::MAX), (0, u64::MAX), (1, u64::MAX)];
        hostile.interests.add(u16::MAX, 1.0, i64::MAX);
        let mut account = Account::new("");
        account.apply(update(hostile));
        for now in [i64::MIN, 0, 2 * DAY, i64::MAX] {
            let view = account_json(&account, Timestamp(now));
            assert_eq!(view["memberCount"], 1);
        }
        let view = account_json(&account, Timestamp(2 * DAY));
        assert_eq!(view["engagement"]["events30d"], u64::MAX, "sums saturate");
    }

    mod laws {
        use proptest::prelude::*;

        use super::super::*;
        use crate::profile::Stamp;

        /// An operation on an account, as its Durable Object receives them.
        #[derive(Clone, Debug)]
        enum Op {
            Apply(Box<AccountUpdate>),
            Merged(String, String),
            Removed(String),
        }

        fn profile_id() -> impl Strategy<Value = String> {
            prop_oneof![Just("a"), Just("b"), Just("c"), Just("d")].prop_map(String::from)
        }

        /// Snapshots with few distinct times and counts, so that equal versions but for the
        /// content hash are common.
        fn member() -> impl Strategy<Value = Member> {
            (
                profile_id(),
                any::<bool>(),
                prop::option::of("[a-z]{0,3}"),
                prop::option::of(0i64..3),
                0u64..3,
                prop::collection::vec((0i64..60, 0u64..5), 0..4),
                prop::collection::vec((0u16..4, 0.0f64..1.0), 0..3),
            )
                .prop_map(
                    |(profile_id, explicit, name, last_seen, events, activity, interests)| {
                        let mut member = Member {
                            profile_id,
                            link: if explicit { AccountLink::Explicit } else { AccountLink::Inferred },
                            name,
                            email: None,
                            title: None,
                            role: None,
                            first_seen: None,
                            last_seen: last_seen.map(Timestamp),
                            activity,
                            interests: Interests::default(),
                            version: MemberVersion::default(),
                        };
                        for (topic, weight) in interests {
                            member.interests.add(topic, weight, 0);
                        }
                        member.version = MemberVersion {
                            last_seen: member.last_seen,
                            events,
                            content: content_hash(&member),
                        };
                        member
                    },
                )
        }

        /// Traits whose value follows from their stamp: one stamp is one event, one value.
        fn account_traits() -> impl Strategy<Value = Vec<(String, Stamped<Value>)>> {
            let key = prop_oneof![Just("name"), Just("plan")].prop_map(String::from);
            prop::collection::vec((key, 0i64..3, 0u64..3), 0..3).prop_map(|items| {
                items
                    .into_iter()
                    .map(|(key, at, tie)| {
                        let value = Value::String(format!("{at}/{tie}"));
                        (key, Stamped { stamp: Stamp { at: Timestamp(at), tie }, value })
                    })
                    .collect()
            })
        }

        fn op() -> impl Strategy<Value = Op> {
            let apply = (member(), account_traits())
                .prop_map(|(member, traits)| Op::Apply(Box::new(AccountUpdate { member, traits })));
            prop_oneof![
                6 => apply,
                1 => (profile_id(), profile_id()).prop_map(|(from, into)| Op::Merged(from, into)),
                1 => profile_id().prop_map(Op::Removed),
            ]
        }

        fn run<'a>(ops: impl IntoIterator<Item = &'a Op>) -> Account {
            let mut account = Account::new("acme");
            for op in ops {
                match op {
                    Op::Apply(update) => account.apply(AccountUpdate::clone(update)),
                    Op::Merged(from, into) => account.member_merged(from, into),
                    Op::Removed(id) => account.remove_member(id),
                }
            }
            account
        }

        proptest! {
            #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

            #[test]
            fn order_and_duplicates_do_not_matter(
                ops in prop::collection::vec(op(), 0..16),
                keys in prop::collection::vec((any::<u32>(), any::<bool>()), 16),
            ) {
                let mut shuffled: Vec<(u32, &Op)> = Vec::new();
                for (op, &(key, repeat)) in ops.iter().zip(&keys) {
                    shuffled.push((key, op));
                    if repeat {
                        shuffled.push((key.rotate_left(11), op));
                    }
                }
                shuffled.sort_by_key(|(key, _)| *key);
                let in_order = run(&ops);
                let reordered = run(shuffled.into_iter().map(|(_, op)| op));
                prop_assert_eq!(&in_order, &reordered);
                let now = Timestamp(50 * MS_PER_DAY);
                prop_assert_eq!(account_json(&in_order, now), account_json(&reordered, now));
            }

            #[test]
            fn the_stored_form_round_trips(ops in prop::collection::vec(op(), 0..16)) {
                let account = run(&ops);
                let fail = |e: postcard::Error| TestCaseError::fail(e.to_string());
                let bytes = postcard::to_allocvec(&account).map_err(fail)?;
                let back: Account = postcard::from_bytes(&bytes).map_err(fail)?;
                prop_assert_eq!(back, account);
            }

            #[test]
            fn no_string_panics_the_domain_readers(text in any::<String>(), website in ".{0,40}") {
                let _ = business_domain(&text);
                let _ = business_domain(&format!("ann@{text}"));
                let stamp = Stamp { at: Timestamp(0), tie: 0 };
                let traits = BTreeMap::from([
                    ("domain".to_string(), Stamped { stamp, value: Value::String(text) }),
                    ("website".to_string(), Stamped { stamp, value: Value::String(website) }),
                ]);
                if let Some(domain) = domain_of_traits(&traits) {
                    prop_assert!(is_host_name(&domain));
                }
            }
        }
    }
}
