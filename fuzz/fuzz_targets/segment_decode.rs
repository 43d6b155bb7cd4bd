//! Any bytes: the Segment JSON decoders answer Ok or a typed error, never panic; what they
//! accept re-encodes to JSON that decodes to the same events.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portrait_core::segment;

fuzz_target!(|body: &[u8]| {
    let _ = segment::decode_single("track", body, 0);
    if let Ok(decoded) = segment::decode_batch(body, 0) {
        let again = segment::decode_batch(&segment::encode_batch(&decoded.events), 0).expect("re-encoded JSON decodes");
        assert_eq!(again.events, decoded.events);
    }
});
