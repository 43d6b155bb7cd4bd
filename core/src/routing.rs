//! Where a request's events go: one beacon per person, so each ProfileObject gets exactly
//! its person's events in one call, and every event is decoded once on its way in.
//!
//! ```
//! use portrait_core::{Call, Event, Timestamp, beacon, routing::Plan};
//! let mut event = Event::new("m1", Call::Identify);
//! event.anonymous_id = Some("a1".into());
//! let body = beacon::encode(&beacon::Batch { sent_at: None, dropped: 0, events: vec![event] });
//! let plan = Plan::for_beacon(body.clone(), &beacon::peek(&body).unwrap(), Timestamp(0), &Default::default()).unwrap();
//! assert_eq!(plan.groups[0].beacon, body); // one person: forwarded untouched
//! ```

use std::collections::BTreeMap;

use crate::beacon::{self, Peek};
use crate::enrich::correct_time;
use crate::error::{Error, ErrorKind};
use crate::event::Event;
use crate::identity::{IdentityRules, RoutingKey};
use crate::limits::MAX_BATCH_BYTES;
use crate::time::Timestamp;
use crate::{Decoded, Rejected};

/// One beacon per person (several for a share over the wire limit), and the events refused
/// on the way.
#[derive(Debug, PartialEq)]
pub struct Plan {
    pub groups: Vec<Group>,
    pub rejected: Vec<Rejected>,
}

#[derive(Debug, PartialEq)]
pub struct Group {
    pub key: RoutingKey,
    pub beacon: Vec<u8>,
    /// The batch index of each event in `beacon`; empty when the beacon is the request's own.
    pub indices: Vec<u32>,
}

impl Plan {
    /// An SDK beacon: forwarded as it came when all its identities route to one person (read
    /// by `peek`, without decoding the events), else decoded and split.
    pub fn for_beacon(
        body: Vec<u8>,
        peek: &Peek,
        received_at: Timestamp,
        rules: &IdentityRules,
    ) -> Result<Plan, Error> {
        let mut keys = peek.identities.iter().map(|(a, u)| RoutingKey::of(a.as_deref(), u.as_deref(), rules));
        match keys.next() {
            Some(Some(first)) if keys.all(|key| key.as_ref() == Some(&first)) => Ok(Plan {
                groups: vec![Group { key: first, beacon: body, indices: Vec::new() }],
                rejected: Vec::new(),
            }),
            _ => Ok(Plan::split(beacon::decode(&body)?, received_at, rules)),
        }
    }

    /// Splits decoded events by person and re-encodes each person's share as a beacon.
    /// Times are corrected here, against the sender's `sentAt`, which a re-encoded beacon
    /// could not carry per event; events too old to accept are refused here.
    /// An event whose ids are all placeholders is refused (`placeholder_identity`).
    pub fn split(decoded: Decoded, received_at: Timestamp, rules: &IdentityRules) -> Plan {
        let mut rejected = Vec::new();
        let mut by_key: BTreeMap<RoutingKey, (Vec<u32>, Vec<Event>)> = BTreeMap::new();
        for (index, mut event) in decoded.accepted_indices().into_iter().zip(decoded.events) {
            if let Err(error) = correct_time(&mut event, received_at) {
                rejected.push(Rejected::new(index, error));
                continue;
            }
            event.sent_at = None;
            let Some(key) = RoutingKey::of(event.anonymous_id.as_deref(), event.user_id.as_deref(), rules)
            else {
                let path = match event.anonymous_id.is_some() {
                    true => "anonymousId",
                    false => "userId",
                };
                rejected.push(Rejected::new(index, Error::new(path, ErrorKind::PlaceholderIdentity)));
                continue;
            };
            let (indices, events) = by_key.entry(key).or_default();
            indices.push(index as u32);
            events.push(event);
        }
        let mut groups = Vec::new();
        for (key, (indices, events)) in by_key {
            push_within_limit(&mut groups, &key, indices, events);
        }
        rejected.extend(decoded.rejected);
        rejected.sort_by_key(|r| r.index);
        Plan { groups, rejected }
    }
}

/// Adds a person's events as one beacon, or as several when one would be over the wire limit
/// the profile object applies ([`MAX_BATCH_BYTES`]): an event may take more bytes as a beacon
/// than it did as JSON (a float `0.5` is 9), so a person's share of a batch under the limit
/// may be over it. Halved until each part fits (an event alone always does: ≤ 32 KB as JSON).
fn push_within_limit(groups: &mut Vec<Group>, key: &RoutingKey, mut indices: Vec<u32>, events: Vec<Event>) {
    let batch = beacon::Batch { sent_at: None, dropped: 0, events };
    let encoded = beacon::encode(&batch);
    let mut events = batch.events;
    if encoded.len() <= MAX_BATCH_BYTES || events.len() < 2 {
        groups.push(Group { key: key.clone(), beacon: encoded, indices });
        return;
    }
    let half = events.len() / 2;
    let (later_events, later_indices) = (events.split_off(half), indices.split_off(half));
    push_within_limit(groups, key, indices, events);
    push_within_limit(groups, key, later_indices, later_events);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Call;

    fn event(id: &str, anonymous_id: Option<&str>, user_id: Option<&str>, at: i64) -> Event {
        let mut event = Event::new(id, Call::Track { event: "E".into() });
        event.anonymous_id = anonymous_id.map(str::to_owned);
        event.user_id = user_id.map(str::to_owned);
        event.timestamp = Some(Timestamp(at));
        event
    }

    fn plan(events: Vec<Event>, received_at: i64) -> Plan {
        let body = beacon::encode(&beacon::Batch { sent_at: None, dropped: 0, events });
        Plan::for_beacon(
            body.clone(),
            &beacon::peek(&body).unwrap(),
            Timestamp(received_at),
            &IdentityRules::default(),
        )
        .unwrap()
    }

    #[test]
    fn a_persons_share_over_the_wire_limit_as_a_beacon_goes_as_several() {
        let now = 1_795_892_646_000;
        // 20 events of 4,000 floats: ~36 KB each as a beacon (9 bytes a float), ~720 KB in all.
        let floats = crate::value::Value::Array(vec![crate::value::Value::Float(0.5); 4_000]);
        let events: Vec<Event> = (0..20)
            .map(|i| {
                let mut event = event(&i.to_string(), Some("a"), None, now);
                event.properties.insert("scores".into(), floats.clone());
                event
            })
            .collect();
        let plan =
            Plan::split(Decoded { events, ..Decoded::default() }, Timestamp(now), &IdentityRules::default());
        assert!(plan.groups.len() > 1, "{} beacons", plan.groups.len());
        let mut indices: Vec<u32> = Vec::new();
        for group in &plan.groups {
            assert_eq!(group.key, RoutingKey::Anonymous("a".into()));
            assert!(group.beacon.len() <= MAX_BATCH_BYTES, "{} bytes", group.beacon.len());
            let decoded = beacon::decode(&group.beacon).unwrap();
            assert_eq!(decoded.events.len(), group.indices.len());
            indices.extend(&group.indices);
        }
        assert_eq!(indices, (0..20).collect::<Vec<u32>>(), "every event once, in order");
    }

    #[test]
    fn one_person_is_forwarded_untouched_even_after_an_identify() {
        let now = 1_795_892_646_000;
        // The same anonymous id with and without a user id: two identities, one person.
        let plan = plan(vec![event("1", Some("a"), None, now), event("2", Some("a"), Some("u"), now)], now);
        assert_eq!(plan.groups.len(), 1);
        assert_eq!(plan.groups[0].key, RoutingKey::Anonymous("a".into()));
        assert!(plan.groups[0].indices.is_empty());
    }

    #[test]
    fn several_people_are_split_with_their_batch_indices() {
        let now = 1_795_892_646_000;
        let too_old = now - crate::enrich::MAX_EVENT_AGE_MS - 1;
        let events = vec![
            event("1", Some("a"), None, now),
            event("2", None, Some("u"), now),
            event("3", Some("b"), None, too_old),
            event("4", Some("a"), None, now),
        ];
        let plan = plan(events, now);
        let groups: Vec<(RoutingKey, Vec<u32>, Vec<String>)> = plan
            .groups
            .iter()
            .map(|g| {
                let ids =
                    beacon::decode(&g.beacon).unwrap().events.into_iter().map(|e| e.message_id).collect();
                (g.key.clone(), g.indices.clone(), ids)
            })
            .collect();
        assert_eq!(
            groups,
            [
                (RoutingKey::Anonymous("a".into()), vec![0, 3], vec!["1".to_owned(), "4".to_owned()]),
                (RoutingKey::User("u".into()), vec![1], vec!["2".to_owned()]),
            ]
        );
        let rejected: Vec<(usize, &str)> =
            plan.rejected.iter().map(|r| (r.index, r.error.kind.code())).collect();
        assert_eq!(rejected, [(2, "too_old")]);
    }
}
