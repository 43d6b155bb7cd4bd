//! The laws of the wire formats, stated as properties: no input panics a decoder, and every
//! valid event survives a round trip through either format unchanged.

mod common;

use portrait_core::record::Record;
use portrait_core::{beacon, segment, validate::validate};
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn generated_events_are_valid((_, events) in common::batch()) {
        for event in &events {
            prop_assert_eq!(validate(event), Ok(()));
        }
    }

    #[test]
    fn beacon_round_trips((sent_at, events) in common::batch(), dropped in any::<u32>()) {
        let batch = beacon::Batch { sent_at, dropped, events };
        let decoded = beacon::decode(&beacon::encode(&batch)).unwrap();
        prop_assert!(decoded.rejected.is_empty(), "{:?}", decoded.rejected);
        prop_assert_eq!(decoded.dropped, dropped);
        prop_assert_eq!(decoded.events, batch.events);
    }

    /// The SDK's path (events captured as records, stored, read back, sealed) writes exactly
    /// the bytes `encode` writes for the events.
    #[test]
    fn records_encode_as_their_events_do((sent_at, events) in common::batch(), dropped in any::<u32>()) {
        let records: Vec<Record> = events
            .iter()
            .map(|event| Record::from_bytes(Record::from_event(event).as_bytes().to_vec()).unwrap())
            .collect();
        for (record, event) in records.iter().zip(&events) {
            prop_assert_eq!(record.message_id(), event.message_id.as_str());
        }
        let from_records = beacon::encode_records(sent_at.map(|t| t.0), dropped, &records);
        prop_assert_eq!(from_records, beacon::encode(&beacon::Batch { sent_at, dropped, events }));
    }

    /// Damaged record bytes are refused, never half read: any cut, and any byte changed
    /// where it changes the structure.
    #[test]
    fn damaged_records_are_refused((_, events) in common::batch(), cut in any::<prop::sample::Index>()) {
        if let Some(event) = events.first() {
            let bytes = Record::from_event(event).as_bytes().to_vec();
            let cut = cut.index(bytes.len());
            prop_assert!(Record::from_bytes(bytes[..cut].to_vec()).is_none());
            let mut longer = bytes.clone();
            longer.push(0);
            prop_assert!(Record::from_bytes(longer).is_none());
        }
    }

    /// `peek` agrees with `decode` on what a beacon holds, without decoding the events.
    #[test]
    fn peek_sees_the_events_and_identities((sent_at, events) in common::batch()) {
        let body = beacon::encode(&beacon::Batch { sent_at, dropped: 0, events: events.clone() });
        let peek = beacon::peek(&body).unwrap();
        prop_assert_eq!(peek.events, events.len());
        for event in &events {
            let pair = (event.anonymous_id.clone(), event.user_id.clone());
            prop_assert!(peek.identities.contains(&pair));
        }
    }

    #[test]
    fn segment_json_round_trips((_, events) in common::batch()) {
        let decoded = segment::decode_batch(&segment::encode_batch(&events), 0).unwrap();
        prop_assert!(decoded.rejected.is_empty(), "{:?}", decoded.rejected);
        prop_assert_eq!(decoded.events, events);
    }

    /// The compact internal form (storage, Worker → Durable Object) loses nothing either.
    #[test]
    fn compact_form_round_trips((_, events) in common::batch()) {
        let bytes = postcard::to_allocvec(&events).unwrap();
        prop_assert_eq!(postcard::from_bytes::<Vec<portrait_core::Event>>(&bytes).unwrap(), events);
    }

    #[test]
    fn random_bytes_never_panic_the_beacon_decoder(tail in proptest::collection::vec(any::<u8>(), 0..512)) {
        // With and without a valid header, so the postcard layer is reached too.
        let _ = beacon::decode(&tail);
        let mut body = beacon::MAGIC.to_vec();
        body.push(beacon::VERSION);
        body.extend_from_slice(&tail);
        let _ = beacon::decode(&body);
        let _ = beacon::peek(&body);
    }

    #[test]
    fn mutated_beacons_never_panic((sent_at, events) in common::batch(), flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8)) {
        let mut body = beacon::encode(&beacon::Batch { sent_at, dropped: 0, events });
        for (at, byte) in flips {
            let at = at % body.len();
            body[at] = byte;
        }
        let _ = beacon::decode(&body);
        let _ = beacon::peek(&body);
        body.truncate(body.len() / 2);
        let _ = beacon::decode(&body);
        let _ = beacon::peek(&body);
    }

    #[test]
    fn random_bytes_never_panic_the_json_decoder(body in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = segment::decode_batch(&body, 0);
        let _ = segment::decode_single("track", &body, 0);
    }

    #[test]
    fn random_json_never_panics_the_json_decoder(value in common::value(), wrap in any::<bool>()) {
        let body = match wrap {
            true => serde_json::to_vec(&serde_json::json!({ "batch": [value] })).unwrap(),
            false => serde_json::to_vec(&value).unwrap(),
        };
        let _ = segment::decode_batch(&body, 0);
        for call in ["page", "screen", "track", "identify", "group", "alias"] {
            let _ = segment::decode_single(call, &body, 0);
        }
    }
}
