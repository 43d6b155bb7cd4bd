//! Bytes per event on the wire: the beacon format next to Segment JSON for the same events.
//! Run: `cargo bench -p portrait-core --bench wire_size` (prints a Markdown table).

#[path = "../tests/common/scenarios.rs"]
mod scenarios;

use portrait_core::{beacon, segment};

fn main() {
    println!("| batch | beacon bytes | beacon bytes/event | Segment JSON bytes/event | ratio |");
    println!("|---|---:|---:|---:|---:|");
    for count in [1, 20, 500] {
        let (sent_at, events) = scenarios::button_clicks(count);
        let beacon =
            beacon::encode(&beacon::Batch { sent_at: Some(sent_at), dropped: 0, events: events.clone() });
        let json = segment::encode_batch(&events);
        println!(
            "| {count} × track(\"Button Clicked\", {{plan, step}}) | {} | {:.1} | {:.1} | {:.1}× |",
            beacon.len(),
            beacon.len() as f64 / count as f64,
            json.len() as f64 / count as f64,
            json.len() as f64 / beacon.len() as f64,
        );
    }
}
