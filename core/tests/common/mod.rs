//! Proptest strategies for valid events, shared by the property suites.
#![allow(dead_code)] // each test crate uses a different part

use portrait_core::{Call, Campaign, Context, Event, Library, Map, Page, Screen, Timestamp, Value};
use proptest::collection::{btree_map, vec};
use proptest::option;
use proptest::prelude::*;

/// Short text, including non-ASCII, quotes and control characters.
pub fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-zA-Z0-9 _.-]{0,12}",
        any::<String>().prop_map(|s| s.chars().take(12).collect()),
        Just(String::new()),
    ]
}

fn key() -> impl Strategy<Value = String> {
    text()
}

pub fn value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::Int),
        any::<f64>().prop_filter("finite", |x| x.is_finite()).prop_map(Value::Float),
        text().prop_map(Value::String),
    ];
    // Depth 5 below a top-level map stays inside the nesting limit of 8.
    leaf.prop_recursive(5, 48, 6, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..6).prop_map(Value::Array),
            btree_map(key(), inner, 0..6).prop_map(Value::Object),
        ]
    })
}

pub fn map() -> impl Strategy<Value = Map> {
    btree_map(key(), value(), 0..5)
}

/// A map for an `other` field: never a key that the typed fields own.
fn other_map(reserved: &'static [&'static str]) -> impl Strategy<Value = Map> {
    map().prop_map(move |mut m| {
        m.retain(|k, _| !reserved.contains(&k.as_str()));
        m
    })
}

fn id() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9-]{1,24}"
}

pub fn call() -> impl Strategy<Value = Call> {
    prop_oneof![
        (option::of(text()), option::of(text())).prop_map(|(category, name)| Call::Page { category, name }),
        option::of(text()).prop_map(|name| Call::Screen { name }),
        id().prop_map(|event| Call::Track { event }),
        Just(Call::Identify),
        id().prop_map(|group_id| Call::Group { group_id }),
        id().prop_map(|previous_id| Call::Alias { previous_id }),
    ]
}

pub fn context() -> impl Strategy<Value = Context> {
    let page = (vec(option::of(text()), 5), other_map(&["url", "path", "title", "referrer", "search"]))
        .prop_map(|(f, other)| Page {
            url: f[0].clone(),
            path: f[1].clone(),
            title: f[2].clone(),
            referrer: f[3].clone(),
            search: f[4].clone(),
            other,
        });
    let campaign = (vec(option::of(text()), 5), other_map(&["name", "source", "medium", "term", "content"]))
        .prop_map(|(f, other)| Campaign {
            name: f[0].clone(),
            source: f[1].clone(),
            medium: f[2].clone(),
            term: f[3].clone(),
            content: f[4].clone(),
            other,
        });
    let screen = (option::of(any::<u32>()), option::of(any::<u32>()), option::of(0.5f64..4.0))
        .prop_map(|(width, height, density)| Screen { width, height, density });
    let library =
        (option::of(text()), option::of(text())).prop_map(|(name, version)| Library { name, version });
    let reserved = &["page", "campaign", "userAgent", "locale", "timezone", "screen", "library", "ip"];
    (page, campaign, vec(option::of(text()), 3), screen, library, other_map(reserved)).prop_map(
        |(page, campaign, f, screen, library, other)| Context {
            page,
            campaign,
            user_agent: f[0].clone(),
            locale: f[1].clone(),
            timezone: f[2].clone(),
            screen,
            library,
            other,
        },
    )
}

pub fn timestamp() -> impl Strategy<Value = Timestamp> {
    (946_684_800_000i64..4_102_444_800_000).prop_map(Timestamp)
}

/// A valid event as a decoder returns it: no `receivedAt`, and `sentAt` as given.
pub fn event(sent_at: Option<Timestamp>) -> impl Strategy<Value = Event> {
    let message_id = prop_oneof![
        any::<[u8; 16]>().prop_map(|b| {
            let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
            format!("{}-{}-{}-{}-{}", &hex[0..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..])
        }),
        id(),
    ];
    let identity = prop_oneof![
        (id(), option::of(id())).prop_map(|(a, u)| (Some(a), u)),
        id().prop_map(|u| (None, Some(u))),
    ];
    (message_id, call(), identity, option::of(timestamp()), context(), map(), map()).prop_map(
        move |(message_id, call, (anonymous_id, user_id), timestamp, context, properties, traits)| Event {
            message_id,
            call,
            anonymous_id,
            user_id,
            timestamp,
            sent_at,
            received_at: None,
            context: context.into(),
            properties,
            traits,
        },
    )
}

/// A batch of events sharing one `sentAt`, as the beacon carries them.
pub fn batch() -> impl Strategy<Value = (Option<Timestamp>, Vec<Event>)> {
    option::of(timestamp()).prop_flat_map(|sent_at| (Just(sent_at), vec(event(sent_at), 0..6)))
}

/// Accepted events as a ProfileObject sees them: enriched, with unique message ids.
pub fn received_events(max: usize) -> impl Strategy<Value = Vec<portrait_core::enrich::Received>> {
    use portrait_core::enrich::{Device, DeviceType, Enrichment, Geo, Received};
    let geo = prop_oneof![
        Just(Geo::default()),
        Just(Geo { country: Some("DE".into()), city: Some("Berlin".into()), ..Geo::default() }),
        Just(Geo { country: Some("FR".into()), asn: Some(3215), ..Geo::default() }),
    ];
    let device = prop_oneof![
        Just(Device::default()),
        Just(Device {
            device_type: DeviceType::Desktop,
            browser: Some("Chrome".into()),
            ..Device::default()
        }),
        Just(Device { device_type: DeviceType::Mobile, os: Some("iPhone".into()), ..Device::default() }),
    ];
    // Few distinct times so that ties, shared sessions and equal stamps are common.
    let time = (0i64..40).prop_map(|k| Timestamp(1_795_000_000_000 + k * 11 * 60_000));
    vec((event(None), time, geo, device), 0..max).prop_map(|items| {
        items
            .into_iter()
            .enumerate()
            .map(|(i, (mut event, time, geo, device))| {
                event.message_id = format!("m{i}");
                event.timestamp = Some(time);
                Received { event, enrichment: Enrichment { geo: geo.into(), device: device.into() } }
            })
            .collect()
    })
}
