//! Workloads shared by size tests and benchmarks, so both measure the same thing.
#![allow(dead_code)] // each test crate uses a different part

use portrait_core::{Call, Context, Event, Map, Timestamp};

/// A v4-shaped UUID from a counter (xorshift, reproducible): what `crypto.randomUUID()` gives.
pub fn uuid(seed: u64) -> String {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut bytes = [0u8; 16];
    for byte in &mut bytes {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *byte = x as u8;
    }
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("{}-{}-{}-{}-{}", &hex[0..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..])
}

/// The context a browser SDK attaches on a typical page.
pub fn browser_context() -> Context {
    let mut context = Context::default();
    context.page.url = Some("https://www.example.com/pricing?utm_source=news".into());
    context.page.path = Some("/pricing".into());
    context.page.title = Some("Pricing — Example".into());
    context.page.referrer = Some("https://www.google.com/".into());
    context.user_agent = Some(
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0.0.0 Safari/537.36".into(),
    );
    context.locale = Some("en-GB".into());
    context.timezone = Some("Europe/London".into());
    context.library.name = Some("portrait.js".into());
    context.library.version = Some("0.1.0".into());
    context
}

/// `count` × `track("Button Clicked", {plan: "pro", step: 2})` from one visitor, ~0.4 s apart.
pub fn button_clicks(count: usize) -> (Timestamp, Vec<Event>) {
    let sent_at = Timestamp(1_795_892_646_000);
    let context = browser_context();
    let mut properties = Map::new();
    properties.insert("plan".into(), "pro".into());
    properties.insert("step".into(), 2.into());
    let events = (0..count)
        .map(|i| {
            let mut event = Event::new(uuid(i as u64), Call::Track { event: "Button Clicked".into() });
            event.anonymous_id = Some(uuid(u64::MAX));
            event.timestamp = Some(Timestamp(sent_at.0 - 400 * (count - i) as i64));
            event.sent_at = Some(sent_at);
            event.context = context.clone().into();
            event.properties = properties.clone();
            event
        })
        .collect();
    (sent_at, events)
}

/// A B2B visitor over three weeks: page views across the site from two devices and three
/// campaigns, product clicks, a form, an identify with eight traits, a group call.
pub fn varied_visitor(count: usize) -> Vec<portrait_core::enrich::Received> {
    use portrait_core::Value;
    use portrait_core::enrich::{Geo, LastDevice, enrich_all};
    let start = 1_795_000_000_000i64;
    let pages =
        ["/", "/pricing", "/blog/cloud-security", "/blog/data-lakes", "/docs/start", "/case-studies/acme"];
    let tracks = ["Button Clicked", "Form Submitted", "Video Played", "Plan Selected", "Docs Searched"];
    let campaigns =
        [("google", "cpc", "brand"), ("newsletter", "email", "november"), ("linkedin", "paid", "abm")];
    let user_agents = [
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0.0.0 Safari/537.36",
        "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
    ];
    let geo =
        Geo { country: Some("DE".into()), city: Some("Berlin".into()), asn: Some(3320), ..Geo::default() };
    (0..count)
        .map(|i| {
            // Bursts of 8 events a few minutes apart, bursts a day apart: many sessions.
            let at = start + (i / 8) as i64 * 86_400_000 + (i % 8) as i64 * 180_000;
            let call = match i % 10 {
                0..=4 => Call::Page { category: None, name: None },
                5..=7 => Call::Track { event: tracks[i % tracks.len()].into() },
                8 if i % 40 == 8 => Call::Group { group_id: "acme-gmbh".into() },
                _ => Call::Identify,
            };
            let mut event = Event::new(uuid(i as u64), call);
            event.anonymous_id = Some(uuid(u64::MAX - (i % 2) as u64));
            event.user_id = (i >= count / 2).then(|| "user-42".to_owned());
            event.timestamp = Some(Timestamp(at));
            event.context = browser_context().into();
            event.context_mut().page.path = Some(pages[i % pages.len()].into());
            event.context_mut().page.url = Some(format!("https://www.example.com{}", pages[i % pages.len()]));
            event.context_mut().user_agent = Some(user_agents[(i / 8) % 2].into());
            if i % 8 == 0 {
                let (source, medium, name) = campaigns[(i / 8) % campaigns.len()];
                event.context_mut().campaign.source = Some(source.into());
                event.context_mut().campaign.medium = Some(medium.into());
                event.context_mut().campaign.name = Some(name.into());
            }
            if matches!(event.call, Call::Identify) {
                for (key, value) in [
                    ("email", Value::from("ada@example.com")),
                    ("name", "Ada Lovelace".into()),
                    ("title", "VP Engineering".into()),
                    ("company", "Acme GmbH".into()),
                    ("employees", (250 + i as i64).into()),
                    ("industry", "Software".into()),
                    ("plan", "trial".into()),
                    ("newsletter", Value::Bool(true)),
                ] {
                    event.traits.insert(key.into(), value);
                }
            }
            if matches!(event.call, Call::Track { .. }) {
                event.properties.insert("plan".into(), "pro".into());
                event.properties.insert("step".into(), (i as i64 % 5).into());
            }
            enrich_all(vec![event], Timestamp(at + 1000), &geo, &mut LastDevice::default())
                .pop()
                .unwrap()
                .unwrap()
        })
        .collect()
}
