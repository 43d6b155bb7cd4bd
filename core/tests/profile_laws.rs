//! The convergence laws of `core::profile`, stated as properties (see ARCHITECTURE.md).

mod common;
#[path = "common/scenarios.rs"]
mod scenarios;

use std::collections::BTreeSet;

use portrait_core::enrich::{Enrichment, Received};
use portrait_core::event::{Call, Event};
use portrait_core::profile::{MAX_EVENT_NAMES, MAX_GROUPS, MAX_TRAITS, ORDER_EVENT, OTHER_EVENTS, Profile};
use portrait_core::time::Timestamp;
use portrait_core::topics::interests::{ENGAGED_EVENT, SENT_TAGS, SENT_TOPICS};
use portrait_core::value::Value;
use proptest::prelude::*;

/// What a ProfileObject does: skip ids already applied, apply the rest.
fn apply_all<'a>(events: impl IntoIterator<Item = &'a Received>) -> Profile {
    let mut seen = BTreeSet::new();
    let mut profile = Profile::default();
    for received in events {
        if seen.insert(received.event.message_id.clone()) {
            profile.apply(received);
        }
    }
    profile
}

/// `events` reordered by `order` (a permutation seed per element) with some repeated.
fn shuffled_with_duplicates(events: &[Received], keys: &[(u32, bool)]) -> Vec<Received> {
    let mut out: Vec<(u32, Received)> = Vec::new();
    for (received, &(key, repeat)) in events.iter().zip(keys.iter().cycle()) {
        out.push((key, received.clone()));
        if repeat {
            out.push((key.rotate_left(7), received.clone()));
        }
    }
    out.sort_by_key(|(key, _)| *key);
    out.into_iter().map(|(_, r)| r).collect()
}

fn without_merge_record(mut profile: Profile) -> Profile {
    profile.merged.clear();
    profile
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn order_and_duplicates_do_not_matter(
        events in common::received_events(24),
        keys in proptest::collection::vec((any::<u32>(), any::<bool>()), 1..24),
    ) {
        let in_order = apply_all(&events);
        let shuffled = apply_all(&shuffled_with_duplicates(&events, &keys));
        prop_assert_eq!(&in_order, &shuffled);
        prop_assert_eq!(in_order.event_count(), events.len() as u64);
    }

    #[test]
    fn merging_split_histories_equals_seeing_them_whole(
        events in common::received_events(24),
        sides in proptest::collection::vec(any::<bool>(), 24),
    ) {
        let (left, right): (Vec<_>, Vec<_>) =
            events.iter().zip(sides.iter().cycle()).partition(|(_, side)| **side);
        let left = apply_all(left.into_iter().map(|(r, _)| r));
        let right = apply_all(right.into_iter().map(|(r, _)| r));

        let mut left_into_right = right.clone();
        left_into_right.merge("left", &left);
        let mut right_into_left = left.clone();
        right_into_left.merge("right", &right);
        let whole = apply_all(&events);
        prop_assert_eq!(without_merge_record(left_into_right.clone()), whole.clone());
        prop_assert_eq!(without_merge_record(right_into_left), whole);

        let mut twice = left_into_right.clone();
        twice.merge("left", &left);
        prop_assert_eq!(twice, left_into_right);
    }

    /// Dedupe is per profile: one message id may reach two profiles before they are linked
    /// (a client that sent it under two anonymous ids, a retry routed by a user id the index
    /// had not linked yet). The merge counts it once.
    #[test]
    fn merging_histories_that_share_events_counts_those_once(
        events in common::received_events(24),
        sides in proptest::collection::vec(0u8..3, 24),
    ) {
        let events = with_sums_of_every_kind(events);
        let side_of = |i: usize| sides[i % sides.len()];
        let shared: Vec<Received> =
            events.iter().enumerate().filter(|(i, _)| side_of(*i) == 2).map(|(_, r)| r.clone()).collect();
        let on = |side: u8| {
            apply_all(events.iter().enumerate().filter(|(i, _)| [side, 2].contains(&side_of(*i))).map(|(_, r)| r))
        };
        let (left, right) = (on(0), on(1));

        let whole = apply_all(&events);
        let mut left_into_right = right.clone();
        left_into_right.merge_sharing("left", &left, &shared);
        prop_assert_eq!(without_merge_record(left_into_right), whole.clone());
        let mut right_into_left = left.clone();
        right_into_left.merge_sharing("right", &right, &shared);
        prop_assert_eq!(without_merge_record(right_into_left), whole);
    }
}

/// `events` with some made "Page Engaged" (topics and a site tag) and "Order Completed"
/// (revenue), which the random calls never are: the sums a merge must not count twice.
fn with_sums_of_every_kind(mut events: Vec<Received>) -> Vec<Received> {
    let pair = |key: Value, weight: f64| Value::Array(vec![Value::Array(vec![key, Value::Float(weight)])]);
    for (i, received) in events.iter_mut().enumerate() {
        let event = &mut received.event;
        match i % 4 {
            1 => {
                event.call = Call::Track { event: ENGAGED_EVENT.into() };
                let topic = [1, 350, 351][i % 3];
                event
                    .properties
                    .insert(SENT_TOPICS.into(), pair(Value::Int(topic), 0.1 * (i % 10 + 1) as f64));
                event.properties.insert(SENT_TAGS.into(), pair(Value::String("intent:pricing".into()), 0.4));
            }
            2 => {
                event.call = Call::Track { event: ORDER_EVENT.into() };
                event.properties.insert("revenue".into(), Value::Int(i as i64 * 7));
            }
            _ => {}
        }
    }
    events
}

/// A sender choosing keys without end (event names, trait keys, groups) cannot grow a profile
/// past its bounds, and the bounded profile is still convergent, its event count exact.
#[test]
fn sender_chosen_keys_are_bounded_and_still_convergent() {
    let event = |i: usize, call: Call| {
        let mut event = Event::new(scenarios::uuid(i as u64), call);
        event.anonymous_id = Some("flooder".into());
        event.timestamp = Some(Timestamp(1_795_892_646_000 + i as i64));
        event
    };
    let mut events = Vec::new();
    for i in 0..1_500 {
        events.push(event(i, Call::Track { event: format!("Event {}", (i * 7_919) % 1_500) }));
    }
    for i in 0..700 {
        let mut identify = event(10_000 + i, Call::Identify);
        identify.traits.insert(format!("trait_{i:04}"), (i as i64).into());
        events.push(identify);
    }
    for i in 0..150 {
        let mut group = event(20_000 + i, Call::Group { group_id: format!("group-{i:03}") });
        group.traits.insert("name".into(), format!("Company {i}").as_str().into());
        events.push(group);
    }
    let received: Vec<Received> =
        events.into_iter().map(|event| Received { event, enrichment: Enrichment::default() }).collect();
    let whole = apply_all(&received);
    assert_eq!(whole.event_count(), received.len() as u64, "the total stays exact");
    assert_eq!(whole.counters.len(), MAX_EVENT_NAMES);
    assert!(whole.counters[OTHER_EVENTS] > 0);
    assert_eq!(
        (whole.traits.len(), whole.groups.len(), whole.group_traits.len()),
        (MAX_TRAITS, MAX_GROUPS, MAX_GROUPS)
    );

    let reversed = apply_all(received.iter().rev());
    assert_eq!(reversed, whole);
    let (odd, even): (Vec<_>, Vec<_>) = received.iter().enumerate().partition(|(i, _)| i % 2 == 1);
    let mut merged = apply_all(odd.into_iter().map(|(_, r)| r));
    merged.merge("even", &apply_all(even.into_iter().map(|(_, r)| r)));
    assert_eq!(without_merge_record(merged), whole);
}

#[test]
fn state_after_200_varied_events_fits_in_4_kb() {
    let profile = apply_all(&scenarios::varied_visitor(200));
    assert_eq!(profile.event_count(), 200);
    let size = postcard::to_allocvec(&profile).unwrap().len();
    eprintln!("profile state after 200 varied events: {size} bytes");
    assert!(size <= 4096, "{size} bytes");
    let decoded: Profile = postcard::from_bytes(&postcard::to_allocvec(&profile).unwrap()).unwrap();
    assert_eq!(decoded, profile);
}
