//! Workloads shared by size tests and benchmarks, so both measure the same thing.

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
            event.context = context.clone();
            event.properties = properties.clone();
            event
        })
        .collect();
    (sent_at, events)
}
