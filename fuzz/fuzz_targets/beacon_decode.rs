//! Any bytes: the beacon decoder, `peek` and `message_ids` answer Ok or a typed error, never
//! panic; what the decoder accepts re-encodes to a beacon that decodes to the same events,
//! and `message_ids` lists those events' ids.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portrait_core::beacon;

fuzz_target!(|body: &[u8]| {
    let _ = beacon::peek(body);
    let ids = beacon::message_ids(body);
    if let Ok(decoded) = beacon::decode(body) {
        if decoded.rejected.is_empty() {
            let decoded_ids: Vec<&str> = decoded.events.iter().map(|e| e.message_id.as_str()).collect();
            assert_eq!(ids.expect("a beacon that decodes lists its ids"), decoded_ids);
        }
        let batch = beacon::Batch {
            sent_at: decoded.events.first().and_then(|e| e.sent_at),
            dropped: decoded.dropped,
            events: decoded.events,
        };
        let again = beacon::decode(&beacon::encode(&batch)).expect("a re-encoded batch decodes");
        assert_eq!(again.events, batch.events);
    }
});
