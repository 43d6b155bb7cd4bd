//! Identity resolution as properties: any interleaving of events and identify, alias and group
//! calls across devices, with duplicates and retries, converges to the same profiles and
//! accounts.
//!
//! [`World`] is an in-memory model of the collector's protocol (`collector/src/profile_object.rs`,
//! `identity_index.rs`, `account_object.rs`): objects by profile id, the identity index,
//! forwarding records and accounts. Every decision in it is a call into `core` (routing,
//! placeholders, foreign users, the merge rules, profile and account updates), so these
//! properties test the real rules; only the plumbing is the model's own. It delivers one event
//! per beacon and runs each call to its end before the next starts: it checks the protocol's
//! logic, not the collector's concurrency or its retries of failed calls.

use std::collections::{BTreeMap, BTreeSet};

use portrait_core::account::{Account, AccountLink, AccountUpdate, Member, member_snapshot};
use portrait_core::enrich::{Device, DeviceType, Enrichment, Geo, Received};
use portrait_core::identity::{self, Change, IdKind, Identity, IdentityRules, MergeReason, RoutingKey};
use portrait_core::profile::{Profile, Stamped};
use portrait_core::{Call, Event, Map, Timestamp, Value};
use proptest::collection::vec;
use proptest::prelude::*;

/// What a profile id holds: a profile, or the profile it was merged into.
enum Object {
    Live(Box<Live>),
    Forward(String),
}

/// A profile and the message ids it applied, its own and those of the profiles merged into it
/// (the collector's `batches.ids`).
#[derive(Clone, Default)]
struct Live {
    profile: Profile,
    seen: BTreeSet<String>,
}

/// What a profile sends one of its accounts after a change (the collector's `AccountMessage`).
#[derive(Clone)]
struct AccountMessage {
    account_id: String,
    /// The profiles merged into the sender: they stop being members.
    absorbed: Vec<String>,
    update: AccountUpdate,
}

/// The collector in memory: profile objects, the IdentityIndex and the account objects.
struct World {
    rules: IdentityRules,
    objects: BTreeMap<String, Object>,
    index: BTreeMap<Identity, String>,
    accounts: BTreeMap<String, Account>,
    /// Every account message sent, so that a test can deliver stale ones again.
    sent: Vec<AccountMessage>,
    /// Deliveries so far: the time of identity log entries (the collector reads its clock).
    clock: i64,
}

impl World {
    fn new(rules: IdentityRules) -> World {
        World {
            rules,
            objects: BTreeMap::new(),
            index: BTreeMap::new(),
            accounts: BTreeMap::new(),
            sent: Vec::new(),
            clock: 0,
        }
    }

    /// The Worker's routing (`ingest`): to the profile of the event's anonymous id, else to the
    /// profile its user id is linked to.
    fn deliver(&mut self, received: &Received) {
        self.clock += 1;
        let event = &received.event;
        let key = RoutingKey::of(event.anonymous_id.as_deref(), event.user_id.as_deref(), &self.rules)
            .expect("the generators give every event a real id");
        let profile_id = match key {
            RoutingKey::User(user_id) => self.user_profile(&user_id),
            anonymous => anonymous.profile_id(),
        };
        self.apply(&profile_id, received);
    }

    /// `internal::user_profile`: the profile the index links a user id to, linking it to a
    /// new `u:<userId>` on first sight.
    fn user_profile(&mut self, user_id: &str) -> String {
        let identity = Identity { kind: IdKind::UserId, value: user_id.to_owned() };
        let first = RoutingKey::User(user_id.to_owned()).profile_id();
        self.index.entry(identity).or_insert(first).clone()
    }

    /// `ProfileObject::apply` after forwarding: an event of another known user goes to that
    /// user's profile; a message id seen before is skipped; any other event is applied and
    /// the profile settles.
    fn apply(&mut self, profile_id: &str, received: &Received) {
        let event = &received.event;
        let id = self.follow(profile_id);
        let Object::Live(live) =
            self.objects.entry(id.clone()).or_insert_with(|| Object::Live(Box::default()))
        else {
            unreachable!("`follow` ends at a live profile or a new one");
        };
        if let Some(user_id) =
            identity::foreign_user(&live.profile.identities, event.user_id.as_deref(), &self.rules)
        {
            let owner = self.user_profile(user_id);
            self.apply(&owner, received);
            return;
        }
        if !live.seen.insert(event.message_id.clone()) {
            return;
        }
        live.profile.apply_with(received, &self.rules);
        self.settle(&id);
    }

    /// `ProfileObject::settle`: link the profile's identities (which may merge it away; an
    /// alias's previous id is one of them), bring the accounts up to date.
    fn settle(&mut self, id: &str) {
        self.link_identities(id);
        self.update_accounts(id);
    }

    /// `link_identities` and the index's `link`: an identity nobody owns, or owned by this
    /// profile or one merged into it, is linked here; one owned by another profile means one
    /// person, and this profile merges into the first such owner. (The collector links only
    /// the identities learned since its last settle; relinking the others here only retries
    /// refused merges, which the rules refuse again: these tests never alias two user ids.)
    fn link_identities(&mut self, id: &str) {
        let Some(live) = self.live(id) else { return };
        let identities = live.profile.identities.clone();
        let absorbed = live.profile.merged.clone();
        let mut conflict = None;
        for identity in identities {
            match self.index.get(&identity) {
                Some(owner) if owner != id && !absorbed.contains(owner) => {
                    conflict.get_or_insert((identity, owner.clone()));
                }
                _ => {
                    self.index.insert(identity, id.to_owned());
                }
            }
        }
        if let Some((identity, owner)) = conflict {
            self.merge(id, &owner, MergeReason::Shared(identity));
        }
    }

    /// `merge_out` of `from` into `into` and `merge_in` there: the rules may refuse (both
    /// profiles log it and stay apart); else the survivor takes the state and the message ids,
    /// `from` keeps only a forwarding record, and the survivor settles.
    fn merge(&mut self, from: &str, into: &str, reason: MergeReason) {
        let into = self.follow(into);
        if into == from {
            return;
        }
        let at = Timestamp(self.clock);
        let source = self.live(from).expect("a profile merging away is live").clone();
        let target = self.live(&into).expect("`follow` ends at a live profile");
        let checked = identity::check_merge(&target.profile, &source.profile, &self.rules);
        match checked {
            Err(refusal) => {
                let ours = Change::Refused {
                    other: from.to_owned(),
                    reason: reason.clone(),
                    refusal: refusal.clone(),
                };
                self.live_mut(&into).expect("checked above").profile.log(at, ours);
                let theirs = Change::Refused { other: into.clone(), reason, refusal };
                self.live_mut(from).expect("checked above").profile.log(at, theirs);
            }
            Ok(()) => {
                let target = self.live_mut(&into).expect("checked above");
                target.profile.merge(from, &source.profile);
                let identities = source.profile.identities.iter().cloned().collect();
                target.profile.log(at, Change::Merged { from: from.to_owned(), identities, reason });
                target.seen.extend(source.seen);
                self.objects.insert(from.to_owned(), Object::Forward(into.clone()));
                self.settle(&into);
            }
        }
    }

    /// `update_accounts`, for the accounts of `group` calls: each gets the profile's snapshot,
    /// the traits its group calls carried, and the profiles merged into it.
    fn update_accounts(&mut self, id: &str) {
        let Some(live) = self.live(id) else { return };
        let profile = &live.profile;
        let absorbed: Vec<String> = profile.merged.iter().cloned().collect();
        let messages: Vec<AccountMessage> = profile
            .groups
            .iter()
            .map(|group| AccountMessage {
                account_id: group.clone(),
                absorbed: absorbed.clone(),
                update: AccountUpdate {
                    member: member_snapshot(id, profile, AccountLink::Explicit),
                    traits: profile
                        .group_traits
                        .get(group)
                        .cloned()
                        .unwrap_or_default()
                        .into_iter()
                        .collect(),
                },
            })
            .collect();
        for message in messages {
            self.sent.push(message.clone());
            self.receive(message);
        }
    }

    /// `AccountObject`'s `update`.
    fn receive(&mut self, message: AccountMessage) {
        let account_id = message.account_id;
        let account = self.accounts.entry(account_id.clone()).or_insert_with(|| Account::new(&account_id));
        for from in &message.absorbed {
            account.member_merged(from, &message.update.member.profile_id);
        }
        account.apply(message.update);
    }

    /// Delivers account messages sent earlier again, in the order `picks` gives: retries that
    /// arrive late.
    fn replay(&mut self, picks: &[u32]) {
        if self.sent.is_empty() {
            return;
        }
        for &pick in picks {
            let message = self.sent[pick as usize % self.sent.len()].clone();
            self.receive(message);
        }
    }

    /// The profile `id` ended up in, through any forwarding records (`id` itself if it is live
    /// or does not exist yet).
    fn follow(&self, id: &str) -> String {
        let mut id = id.to_owned();
        for _ in 0..=self.objects.len() {
            match self.objects.get(&id) {
                Some(Object::Forward(next)) => id = next.clone(),
                _ => return id,
            }
        }
        panic!("forwarding records form a cycle through {id}");
    }

    fn live(&self, id: &str) -> Option<&Live> {
        match self.objects.get(id) {
            Some(Object::Live(live)) => Some(live.as_ref()),
            _ => None,
        }
    }

    fn live_mut(&mut self, id: &str) -> Option<&mut Live> {
        match self.objects.get_mut(id) {
            Some(Object::Live(live)) => Some(live.as_mut()),
            _ => None,
        }
    }

    fn live_profiles(&self) -> impl Iterator<Item = (&String, &Live)> {
        self.objects.iter().filter_map(|(id, object)| match object {
            Object::Live(live) => Some((id, live.as_ref())),
            Object::Forward(_) => None,
        })
    }
}

// Generators.

const GROUPS: [&str; 2] = ["acme", "globex"];

/// Values clients send when they have no id (`guest` is blocked by [`placeholder_rules`]).
const PLACEHOLDERS: [&str; 10] = [
    "null",
    "NULL",
    " undefined ",
    "0",
    "-1",
    "anonymous",
    "[object Object]",
    "00000000-0000-0000-0000-000000000000",
    "guest",
    " Guest",
];

fn placeholder_rules() -> IdentityRules {
    IdentityRules { blocked_values: vec!["guest".into()], ..IdentityRules::default() }
}

/// Few distinct times, 11 minutes apart, so that sessions both join and split and stamps tie.
fn at(slot: i64) -> Timestamp {
    Timestamp(1_795_000_000_000 + slot * 11 * 60_000)
}

/// An accepted event: from a browser (Chrome, located at its anonymous id) if it has an
/// anonymous id, else from a server (no device, no location).
fn received(
    message_id: String,
    call: Call,
    (anonymous_id, user_id): (Option<String>, Option<String>),
    slot: i64,
    traits: Map,
) -> Received {
    let enrichment = match &anonymous_id {
        Some(device) => Enrichment {
            geo: Geo { city: Some(device.clone()), ..Geo::default() }.into(),
            device: Device {
                device_type: DeviceType::Desktop,
                browser: Some("Chrome".into()),
                ..Device::default()
            }
            .into(),
        },
        None => Enrichment::default(),
    };
    let mut event = Event::new(message_id, call);
    event.anonymous_id = anonymous_id;
    event.user_id = user_id;
    event.timestamp = Some(at(slot));
    event.traits = traits;
    Received { event, enrichment }
}

fn traits(pairs: &[(&str, String)]) -> Map {
    pairs.iter().map(|(key, value)| ((*key).to_owned(), Value::String(value.clone()))).collect()
}

/// A call a person makes, before it becomes an event.
#[derive(Clone, Copy, Debug)]
enum Act {
    Page,
    Track,
    /// Joins `GROUPS[n]`, setting its `plan`.
    Group(usize),
    Identify,
    /// Says that the person's device `n` (modulo their devices) was theirs.
    Alias(usize),
}

fn act() -> impl Strategy<Value = Act> {
    prop_oneof![
        Just(Act::Page),
        Just(Act::Track),
        (0..GROUPS.len()).prop_map(Act::Group),
        Just(Act::Identify),
    ]
}

fn act_or_alias() -> impl Strategy<Value = Act> {
    prop_oneof![4 => act(), 1 => (0usize..3).prop_map(Act::Alias)]
}

/// The call and traits of `act` at `slot`; `identify` are the traits of an identify call.
/// An alias needs the person's user id; without one it is a track call.
fn call_of(act: Act, slot: i64, identify: Map, alias_of: Option<String>) -> (Call, Map) {
    match (act, alias_of) {
        (Act::Page, _) => (Call::Page { category: None, name: None }, Map::new()),
        (Act::Group(n), _) => {
            (Call::Group { group_id: GROUPS[n].into() }, traits(&[("plan", format!("plan at {slot}"))]))
        }
        (Act::Identify, _) => (Call::Identify, identify),
        (Act::Alias(_), Some(previous_id)) => (Call::Alias { previous_id }, Map::new()),
        (Act::Track | Act::Alias(_), _) => (Call::Track { event: "Clicked".into() }, Map::new()),
    }
}

/// Person `p`, who shares no device or identifier with anyone: 1–3 devices, maybe a user id
/// (and then maybe a server sending with it), maybe an email, and calls from any of them.
/// Every device of a person with a user id or an email identifies with them. Given as the
/// events of each profile the person should end up with: one if they have a user id or an
/// email, else one per device.
fn person(p: usize) -> impl Strategy<Value = Vec<Vec<Received>>> {
    let acts = vec((0usize..4, act_or_alias(), 0i64..40, any::<bool>()), 0..6);
    (any::<bool>(), any::<bool>(), 1usize..=3, vec(0i64..40, 3), acts).prop_map(
        move |(has_user, has_email, devices, identify_slots, acts)| {
            let user_id = has_user.then(|| format!("user-{p}"));
            let device = |d: usize| format!("anon-{p}-{d}");
            // Source `devices` is the server, which only a person with a user id has.
            let sources = devices + usize::from(has_user);
            // Devices type the email differently; the rules normalise it.
            let identify = |source: usize, slot: i64| {
                let mut pairs = vec![("title", format!("title at {slot}"))];
                if has_email {
                    let email = match source % 2 {
                        0 => format!("Person.{p}@Gmail.com"),
                        _ => format!(" person.{p}@gmail.com"),
                    };
                    pairs.push(("email", email));
                }
                traits(&pairs)
            };
            let mut events = Vec::new();
            for (d, &slot) in identify_slots.iter().enumerate().take(devices) {
                let ids = (Some(device(d)), user_id.clone());
                events.push(received(
                    format!("p{p}-identify-{d}"),
                    Call::Identify,
                    ids,
                    slot,
                    identify(d, slot),
                ));
            }
            for (i, (source, act, slot, with_user)) in acts.into_iter().enumerate() {
                let source = source % sources;
                let anonymous_id = (source < devices).then(|| device(source));
                let alias_of = match act {
                    Act::Alias(d) => user_id.as_ref().map(|_| device(d % devices)),
                    _ => None,
                };
                // A server always sends the user id; a browser with identify and alias calls, and
                // after them as it pleases.
                let sends_user =
                    anonymous_id.is_none() || with_user || matches!(act, Act::Identify | Act::Alias(_));
                let ids = (anonymous_id, user_id.clone().filter(|_| sends_user));
                let (call, traits) = call_of(act, slot, identify(source, slot), alias_of);
                events.push(received(format!("p{p}-{i}"), call, ids, slot, traits));
            }
            if has_user || has_email {
                return vec![events];
            }
            let mut by_device: BTreeMap<Option<String>, Vec<Received>> = BTreeMap::new();
            for event in events {
                by_device.entry(event.event.anonymous_id.clone()).or_default().push(event);
            }
            by_device.into_values().collect()
        },
    )
}

/// 1–3 people, as the events of each profile they should end up with.
fn people() -> impl Strategy<Value = Vec<Vec<Received>>> {
    (1usize..=3)
        .prop_flat_map(|n| (0..n).map(person).collect::<Vec<_>>())
        .prop_map(|people| people.into_iter().flatten().collect())
}

/// The device of [`aliased_device`] that never identifies.
const ALIASED: &str = "laptop";

/// Ann, who identifies on her phone and has server-side calls, also uses a laptop that never
/// sends her user id or email; a server's `alias("ann", previousId: "laptop")` is what joins
/// it. Returns her events but the alias, and the alias.
fn aliased_device() -> impl Strategy<Value = (Vec<Received>, Received)> {
    let acts = vec((0usize..3, act(), 0i64..40), 0..8);
    (0i64..40, 0i64..40, 0i64..40, acts).prop_map(|(identify_slot, laptop_slot, alias_slot, acts)| {
        let ann = || Some("ann".to_owned());
        let identify = traits(&[("email", "ann@gmail.com".into())]);
        let phone = (Some("phone".to_owned()), ann());
        let laptop = (Some(ALIASED.to_owned()), None);
        let page = Call::Page { category: None, name: None };
        let mut events = vec![
            received("identify".into(), Call::Identify, phone.clone(), identify_slot, identify.clone()),
            received("laptop".into(), page, laptop.clone(), laptop_slot, Map::new()),
        ];
        for (i, (source, act, slot)) in acts.into_iter().enumerate() {
            let (ids, identify) = match source {
                0 => (phone.clone(), identify.clone()),
                1 => ((None, ann()), identify.clone()),
                _ => (laptop.clone(), traits(&[("title", format!("title at {slot}"))])),
            };
            let (call, traits) = call_of(act, slot, identify, None);
            events.push(received(format!("ann-{i}"), call, ids, slot, traits));
        }
        let alias = Call::Alias { previous_id: ALIASED.into() };
        (events, received("alias".into(), alias, (None, ann()), alias_slot, Map::new()))
    })
}

/// The users of the shared browser: each signs in at the first slot of their time.
const SHARED_USERS: [(&str, i64); 2] = [("ann", 10), ("bob", 25)];
const SHARED_BROWSER: &str = "family-laptop";

/// Two people on one browser, neither resetting it: anonymous browsing (slots 0–9), then Ann
/// identifies (10) and browses with her user id (11–24), then Bob identifies on top (25) and
/// browses with his (26–39). Each also has calls from a server, sent with their user id.
fn shared_browser() -> impl Strategy<Value = Vec<Received>> {
    let session = || vec((act(), 1i64..15, any::<bool>()), 0..6);
    (vec(0i64..10, 0..3), session(), session()).prop_map(|(anonymous, ann, bob)| {
        let browser = || Some(SHARED_BROWSER.to_owned());
        let mut events: Vec<Received> = anonymous
            .into_iter()
            .enumerate()
            .map(|(i, slot)| {
                let call = Call::Page { category: None, name: None };
                received(format!("shared-{i}"), call, (browser(), None), slot, Map::new())
            })
            .collect();
        for ((user, start), session) in SHARED_USERS.into_iter().zip([ann, bob]) {
            let identify = traits(&[("email", format!("{user}@gmail.com"))]);
            let ids = (browser(), Some(user.to_owned()));
            events.push(received(format!("{user}-identify"), Call::Identify, ids, start, identify.clone()));
            for (i, (act, offset, from_server)) in session.into_iter().enumerate() {
                let anonymous_id = if from_server { None } else { browser() };
                let (call, traits) = call_of(act, start + offset, identify.clone(), None);
                let ids = (anonymous_id, Some(user.to_owned()));
                events.push(received(format!("{user}-{i}"), call, ids, start + offset, traits));
            }
        }
        events
    })
}

/// 2–4 devices whose only ids besides their own are placeholders: a real anonymous id with a
/// placeholder user id and email, or a placeholder anonymous id with a real user id. Given as
/// the events of each device, which should stay a profile of its own.
fn placeholder_devices() -> impl Strategy<Value = Vec<Vec<Received>>> {
    let calls = vec((0..PLACEHOLDERS.len(), 0..PLACEHOLDERS.len(), any::<bool>(), 0i64..40), 1..4);
    vec((any::<bool>(), calls), 2..5).prop_map(|devices| {
        let mut out = Vec::new();
        for (d, (real_anonymous_id, calls)) in devices.into_iter().enumerate() {
            let mut events = Vec::new();
            for (i, (id, email, identifies, slot)) in calls.into_iter().enumerate() {
                let ids = match real_anonymous_id {
                    true => (Some(format!("device-{d}")), Some(PLACEHOLDERS[id].to_owned())),
                    false => (Some(PLACEHOLDERS[id].to_owned()), Some(format!("user-{d}"))),
                };
                let (call, traits) = match identifies {
                    true => (Call::Identify, traits(&[("email", PLACEHOLDERS[email].to_owned())])),
                    false => (Call::Track { event: "Clicked".into() }, Map::new()),
                };
                events.push(received(format!("d{d}-{i}"), call, ids, slot, traits));
            }
            out.push(events);
        }
        out
    })
}

/// One sort key per delivery; `true` sends the event a second time (a retry).
fn keys() -> impl Strategy<Value = Vec<(u32, bool)>> {
    vec((any::<u32>(), any::<bool>()), 1..64)
}

// Runs and checks.

/// `events` in the order `keys` gives (cycled), those with a `true` key twice.
fn interleaving(events: &[Received], keys: &[(u32, bool)]) -> Vec<Received> {
    let mut out: Vec<(u32, Received)> = Vec::new();
    for (received, &(key, retry)) in events.iter().zip(keys.iter().cycle()) {
        out.push((key, received.clone()));
        if retry {
            out.push((key.rotate_left(7), received.clone()));
        }
    }
    out.sort_by_key(|(key, _)| *key);
    out.into_iter().map(|(_, received)| received).collect()
}

/// A world after every event arrived in the order `keys` gives, with retries, and then the
/// stale account messages `replays` picks.
fn run(events: &[Received], keys: &[(u32, bool)], replays: &[u32], rules: IdentityRules) -> World {
    let mut world = World::new(rules);
    for received in interleaving(events, keys) {
        world.deliver(&received);
    }
    world.replay(replays);
    world
}

/// The profile of `events` applied in time order to one fresh profile.
fn fresh(events: &[Received], rules: &IdentityRules) -> Profile {
    let mut sorted: Vec<&Received> = events.iter().collect();
    sorted.sort_by_key(|r| (r.event.timestamp, r.event.message_id.clone()));
    let mut profile = Profile::default();
    for received in sorted {
        profile.apply_with(received, rules);
    }
    profile
}

/// A profile without the record of how it came to be (merges, refusals).
fn history_aside(mut profile: Profile) -> Profile {
    profile.identity_log.clear();
    profile.merged.clear();
    profile
}

fn message_ids(events: &[Received]) -> BTreeSet<String> {
    events.iter().map(|r| r.event.message_id.clone()).collect()
}

/// Each of `groups` is held whole by exactly one live profile, which holds nothing else and
/// equals the profile of the group's events seen at once; no event is counted twice.
fn check_profiles(world: &World, groups: &[Vec<Received>]) -> Result<(), TestCaseError> {
    for group in groups {
        let ids = message_ids(group);
        let holders: Vec<&Live> =
            world.live_profiles().map(|(_, live)| live).filter(|live| !live.seen.is_disjoint(&ids)).collect();
        prop_assert_eq!(holders.len(), 1, "profiles holding {:?}", ids);
        prop_assert_eq!(&holders[0].seen, &ids);
        prop_assert_eq!(history_aside(holders[0].profile.clone()), history_aside(fresh(group, &world.rules)));
    }
    let counted: u64 = world.live_profiles().map(|(_, live)| live.profile.event_count()).sum();
    prop_assert_eq!(counted, groups.iter().map(|group| group.len() as u64).sum::<u64>());
    Ok(())
}

/// Each account has the members and traits it would have had from only the last update of
/// each live profile in it: stale updates, and those of profiles merged away, left no trace.
fn check_accounts(world: &World) -> Result<(), TestCaseError> {
    let mut expected: BTreeMap<String, Account> = BTreeMap::new();
    for (id, live) in world.live_profiles() {
        for group in &live.profile.groups {
            let traits = live.profile.group_traits.get(group).cloned().unwrap_or_default();
            let update = AccountUpdate {
                member: member_snapshot(id, &live.profile, AccountLink::Explicit),
                traits: traits.into_iter().collect(),
            };
            expected.entry(group.clone()).or_insert_with(|| Account::new(group)).apply(update);
        }
    }
    prop_assert_eq!(world.accounts.keys().collect::<Vec<_>>(), expected.keys().collect::<Vec<_>>());
    for (id, account) in &world.accounts {
        prop_assert_eq!(&account.members, &expected[id].members, "members of {}", id);
        prop_assert_eq!(&account.traits, &expected[id].traits, "traits of {}", id);
    }
    Ok(())
}

/// A lookup by any identity a live profile holds finds, through the index and any forwarding
/// records, a live profile that holds it.
fn check_index(world: &World) -> Result<(), TestCaseError> {
    for (id, live) in world.live_profiles() {
        for identity in &live.profile.identities {
            let owner = world.index.get(identity).map(|owner| world.follow(owner));
            let found = owner.as_deref().and_then(|owner| world.live(owner));
            prop_assert!(
                found.is_some_and(|l| l.profile.identities.contains(identity)),
                "{:?} of {}",
                identity,
                id
            );
        }
    }
    Ok(())
}

/// The live profiles by the message ids they hold, history aside: what two interleavings
/// agree on, whichever profile ids survived.
fn contents(world: &World) -> BTreeMap<BTreeSet<String>, Profile> {
    world.live_profiles().map(|(_, live)| (live.seen.clone(), history_aside(live.profile.clone()))).collect()
}

/// An account's traits and members, the members' profile ids blanked (with the part of their
/// version hashed from them): what two interleavings agree on.
type WithoutIds = (BTreeMap<String, Stamped<Value>>, Vec<Member>);

fn accounts_without_ids(world: &World) -> BTreeMap<String, WithoutIds> {
    let blank = |member: &Member| {
        let mut member = member.clone();
        member.profile_id.clear();
        member.version.content = 0;
        member
    };
    let accounts = world.accounts.iter();
    accounts
        .map(|(id, a)| (id.clone(), (a.traits.clone(), a.members.values().map(blank).collect())))
        .collect()
}

/// Whether `a` and `b` hold the same members, in any order.
fn same_members(a: &[Member], b: &[Member]) -> bool {
    let mut unmatched = b.to_vec();
    a.len() == b.len()
        && a.iter().all(|member| match unmatched.iter().position(|other| other == member) {
            Some(i) => {
                unmatched.swap_remove(i);
                true
            }
            None => false,
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1024, ..ProptestConfig::default() })]

    #[test]
    fn people_who_share_no_device_converge_whatever_the_order(
        groups in people(),
        first in keys(),
        second in keys(),
        replays in vec(any::<u32>(), 0..32),
    ) {
        let events: Vec<Received> = groups.iter().flatten().cloned().collect();
        let one = run(&events, &first, &replays, IdentityRules::default());
        let two = run(&events, &second, &[], IdentityRules::default());
        for world in [&one, &two] {
            check_profiles(world, &groups)?;
            check_index(world)?;
            check_accounts(world)?;
        }
        prop_assert_eq!(contents(&one), contents(&two));
        let (one, two) = (accounts_without_ids(&one), accounts_without_ids(&two));
        prop_assert_eq!(one.keys().collect::<Vec<_>>(), two.keys().collect::<Vec<_>>());
        for (id, (traits, members)) in &one {
            prop_assert_eq!(traits, &two[id].0, "traits of {}", id);
            prop_assert!(same_members(members, &two[id].1), "members of {}: {:?} ≠ {:?}", id, members, two[id].1);
        }
    }

    /// The alias arrives at any point, before or after the laptop's first event: its previous
    /// id is an identity of the aliasing profile, so whichever comes second merges.
    #[test]
    fn an_alias_joins_a_device_that_never_identified(
        (events, alias) in aliased_device(),
        keys in keys(),
        alias_at in any::<usize>(),
    ) {
        let mut order = interleaving(&events, &keys);
        order.insert(alias_at % (order.len() + 1), alias.clone());
        let mut world = World::new(IdentityRules::default());
        for received in &order {
            world.deliver(received);
        }
        let everything: Vec<Received> = events.into_iter().chain([alias]).collect();
        check_profiles(&world, &[everything])?;
        check_index(&world)?;
        check_accounts(&world)?;
    }

    #[test]
    fn two_people_on_one_browser_stay_apart(events in shared_browser(), keys in keys()) {
        let mut world = World::new(IdentityRules::default());
        for received in interleaving(&events, &keys) {
            world.deliver(&received);
            for (id, live) in world.live_profiles() {
                let users: Vec<&str> = live.profile.user_ids().collect();
                prop_assert!(users.len() <= 1, "{} holds {:?}", id, users);
            }
        }
        let mut held: Vec<String> = world.live_profiles().flat_map(|(_, live)| live.seen.clone()).collect();
        held.sort();
        prop_assert_eq!(held, message_ids(&events).into_iter().collect::<Vec<_>>());
        let counted: u64 = world.live_profiles().map(|(_, live)| live.profile.event_count()).sum();
        prop_assert_eq!(counted, events.len() as u64);
        check_index(&world)?;
        for (user, _) in SHARED_USERS {
            let holders: Vec<&Live> = world
                .live_profiles()
                .map(|(_, live)| live)
                .filter(|live| live.profile.user_ids().any(|u| u == user))
                .collect();
            prop_assert_eq!(holders.len(), 1, "profiles of {}", user);
            let theirs = events.iter().filter(|r| r.event.user_id.as_deref() == Some(user));
            for received in theirs {
                prop_assert!(holders[0].seen.contains(&received.event.message_id), "{:?}", received.event);
            }
        }
    }

    #[test]
    fn placeholder_ids_link_nothing(devices in placeholder_devices(), keys in keys()) {
        let events: Vec<Received> = devices.iter().flatten().cloned().collect();
        let world = run(&events, &keys, &[], placeholder_rules());
        check_profiles(&world, &devices)?;
        check_index(&world)?;
        for identity in world.index.keys() {
            prop_assert!(!world.rules.is_placeholder(&identity.value), "{:?} is linked", identity);
        }
    }
}
