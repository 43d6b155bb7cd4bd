//! Any bytes: the beacon decoder and `peek` answer Ok or a typed error, never panic; what the
//! decoder accepts re-encodes to a beacon that decodes to the same events.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portrait_core::beacon;

fuzz_target!(|body: &[u8]| {
    let _ = beacon::peek(body);
    if let Ok(decoded) = beacon::decode(body) {
        let batch = beacon::Batch {
            sent_at: decoded.events.first().and_then(|e| e.sent_at),
            dropped: decoded.dropped,
            events: decoded.events,
        };
        let again = beacon::decode(&beacon::encode(&batch)).expect("a re-encoded batch decodes");
        assert_eq!(again.events, batch.events);
    }
});
