//! The beacon's size budget: ≤ 40 bytes per event for a batch of 500 small `track` calls.
//! (The figures themselves are reported by `cargo bench -p portrait-core --bench wire_size`.)

#[path = "common/scenarios.rs"]
mod scenarios;

use portrait_core::{beacon, segment};

#[test]
fn five_hundred_button_clicks_fit_in_40_bytes_each() {
    let (sent_at, events) = scenarios::button_clicks(500);
    let body = beacon::encode(&beacon::Batch { sent_at: Some(sent_at), dropped: 0, events: events.clone() });
    let per_event = body.len() as f64 / 500.0;
    assert!(per_event <= 40.0, "{} bytes for 500 events = {per_event:.1} bytes/event", body.len());
    // The same events as Segment JSON are an order of magnitude larger; if this ever fails,
    // the comparison in BENCHMARKS.md needs a second look.
    assert!(segment::encode_batch(&events).len() > 10 * body.len());
    assert_eq!(beacon::decode(&body).unwrap().events, events);
}
