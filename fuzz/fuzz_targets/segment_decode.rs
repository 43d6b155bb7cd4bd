//! Any bytes: the Segment JSON decoders answer Ok or a typed error, never panic; what they
//! accept re-encodes to JSON that decodes to the same events.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portrait_core::segment;

fuzz_target!(|body: &[u8]| {
    let _ = segment::decode_single("track", body);
    if let Ok(decoded) = segment::decode_batch(body) {
        let again = segment::decode_batch(&segment::encode_batch(&decoded.events)).expect("re-encoded JSON decodes");
        assert_eq!(again.events, decoded.events);
    }
});
