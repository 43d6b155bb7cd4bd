//! Every limit and every rejection, as data: input, expected code, expected message.

use portrait_core::event::Call;
use portrait_core::value::Value;
use portrait_core::{ErrorKind, beacon, limits, segment};
use serde_json::{Value as Json, json};

/// Wraps one event in a batch and returns the rejection message (or "ok").
fn verdict(event: Json) -> String {
    let body = serde_json::to_vec(&json!({ "batch": [event] })).unwrap();
    let decoded = segment::decode_batch(&body, 0).unwrap();
    match decoded.rejected.as_slice() {
        [] => "ok".to_owned(),
        [rejected] => format!("{}: {}", rejected.error.kind.code(), rejected.error),
        many => panic!("one event, {} rejections", many.len()),
    }
}

fn track(extra: Json) -> Json {
    let mut event = json!({ "type": "track", "event": "Clicked", "anonymousId": "a1", "messageId": "m1" });
    event.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    event
}

/// `{"a":{"a":…}}` with `levels` objects.
fn nested(levels: usize) -> Json {
    (0..levels).fold(json!(1), |inner, _| json!({ "a": inner }))
}

#[test]
fn limits_at_their_boundaries() {
    let long = |n: usize| "x".repeat(n);
    let cases: Vec<(&str, Json, String)> = vec![
        ("a plain event", track(json!({})), "ok".into()),
        // properties is the outermost of the nested objects: level 1 of 8.
        ("nesting at the limit", track(json!({ "properties": nested(8) })), "ok".into()),
        (
            "nesting past the limit",
            track(json!({ "properties": nested(9) })),
            "too_deep: batch[0].properties.a.a.a.a.a.a.a.a: nesting deeper than 8".into(),
        ),
        (
            "nesting through arrays",
            track(json!({ "properties": { "items": [1, 2, nested(7)] } })),
            "too_deep: batch[0].properties.items[2].a.a.a.a.a.a: nesting deeper than 8".into(),
        ),
        ("key at the limit", track(json!({ "properties": { long(255): 1 } })), "ok".into()),
        (
            "key past the limit",
            track(json!({ "traits": { long(256): 1 } })),
            format!("key_too_long: batch[0].traits.{}…: key of 256 bytes exceeds the limit of 255 bytes", long(64)),
        ),
        (
            "a prototype-pollution key",
            track(json!({ "properties": { "a": { "__proto__": { "admin": true } } } })),
            "forbidden_key: batch[0].properties.a.__proto__: `__proto__` is not accepted as a key (JavaScript would read it as a prototype)".into(),
        ),
        ("a key merely like it", track(json!({ "properties": { "proto": 1, "constructor": 2 } })), "ok".into()),
        ("string at the limit", track(json!({ "properties": { "s": long(8192) } })), "ok".into()),
        (
            "string past the limit",
            track(json!({ "properties": { "list": [long(8193)] } })),
            "string_too_long: batch[0].properties.list[0]: string of 8193 bytes exceeds the limit of 8192 bytes".into(),
        ),
        (
            "context string past the limit",
            track(json!({ "context": { "page": { "title": long(8193) } } })),
            "string_too_long: batch[0].context.page.title: string of 8193 bytes exceeds the limit of 8192 bytes".into(),
        ),
        ("id at the limit", track(json!({ "userId": long(255) })), "ok".into()),
        (
            "id past the limit",
            track(json!({ "userId": long(256) })),
            "id_too_long: batch[0].userId: value of 256 bytes exceeds the limit of 255 bytes".into(),
        ),
        (
            "event past the size limit",
            track(json!({ "properties": { "a": long(8000), "b": long(8000), "c": long(8000), "d": long(8000), "e": long(8000) } })),
            "event_too_large: batch[0]: event of 40120 bytes exceeds the limit of 32768 bytes".into(),
        ),
        (
            "no identity",
            json!({ "type": "track", "event": "Clicked", "anonymousId": "", "messageId": "m1" }),
            "no_identity: batch[0]: one of anonymousId or userId is required".into(),
        ),
        ("user id alone", json!({ "type": "identify", "userId": 42, "messageId": "m1" }), "ok".into()),
        (
            "a timestamp that is not one",
            track(json!({ "timestamp": "yesterday" })),
            "bad_timestamp: batch[0].timestamp: expected an ISO-8601 timestamp with a time zone".into(),
        ),
        (
            "a timestamp before 2000",
            track(json!({ "timestamp": "1999-12-31T23:59:59.999Z" })),
            "timestamp_out_of_range: batch[0].timestamp: timestamp outside 2000-01-01T00:00:00.000Z .. 2100-01-01T00:00:00.000Z".into(),
        ),
        ("the first valid millisecond", track(json!({ "timestamp": "2000-01-01T00:00:00Z" })), "ok".into()),
        (
            "a device clock reset to 1970, with its sentAt: corrected, not refused",
            track(json!({ "timestamp": "1970-01-01T00:00:10Z", "sentAt": "1970-01-01T00:00:15Z" })),
            "ok".into(),
        ),
        (
            "a plausible timestamp with a sentAt in 1970: one of them is wrong",
            track(json!({ "timestamp": "2026-11-20T10:00:00Z", "sentAt": "1970-01-01T00:00:15Z" })),
            "timestamp_out_of_range: batch[0].sentAt: timestamp outside 2000-01-01T00:00:00.000Z .. 2100-01-01T00:00:00.000Z".into(),
        ),
        (
            "a sentAt before 2000 without a timestamp",
            track(json!({ "sentAt": "1970-01-01T00:00:15Z" })),
            "timestamp_out_of_range: batch[0].sentAt: timestamp outside 2000-01-01T00:00:00.000Z .. 2100-01-01T00:00:00.000Z".into(),
        ),
        (
            "properties of the wrong type",
            track(json!({ "properties": [] })),
            "wrong_type: batch[0].properties: expected object, found array".into(),
        ),
        (
            "a context field of the wrong type",
            track(json!({ "context": { "page": { "url": 7 } } })),
            "wrong_type: batch[0].context.page.url: expected string, found number".into(),
        ),
        (
            "an unknown call",
            json!({ "type": "launch", "anonymousId": "a1" }),
            "unknown_type: batch[0].type: unknown call type `launch` (expected page, screen, track, identify, group or alias)".into(),
        ),
        (
            "a track without its event",
            json!({ "type": "track", "anonymousId": "a1" }),
            "missing_field: batch[0].event: required field is missing".into(),
        ),
        (
            "a group without its id",
            json!({ "type": "group", "userId": "u1", "groupId": "" }),
            "missing_field: batch[0].groupId: required field is missing".into(),
        ),
        ("an item that is not an object", json!(7), "wrong_type: batch[0]: expected object, found number".into()),
    ];
    let mut failures = Vec::new();
    for (name, event, expected) in cases {
        let got = verdict(event);
        if got != expected {
            failures.push(format!("{name}:\n  expected {expected}\n  got      {got}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn whole_body_errors() {
    let too_many = serde_json::to_vec(&json!({ "batch": vec![track(json!({})); 501] })).unwrap();
    let too_big = vec![b' '; limits::MAX_BATCH_BYTES + 1];
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("501 events", too_many, "too_many_events: batch: 501 events exceed the limit of 500 per batch"),
        ("body too big", too_big, "body_too_large: body of 512001 bytes exceeds the limit of 512000 bytes"),
        (
            "not JSON",
            b"{\"batch\": [".to_vec(),
            "malformed: malformed body: EOF while parsing a list at line 1 column 11",
        ),
        (
            "duplicate keys",
            br#"{"batch": [], "batch": []}"#.to_vec(),
            "malformed: malformed body: duplicate key `batch` at line 1 column 21",
        ),
        ("no batch", b"{}".to_vec(), "missing_field: batch: required field is missing"),
        ("batch not a list", br#"{"batch": {}}"#.to_vec(), "wrong_type: batch: expected array, found object"),
        ("not an object", b"[]".to_vec(), "wrong_type: expected object, found array"),
        (
            "NaN is not JSON",
            br#"{"batch": [], "x": NaN}"#.to_vec(),
            "malformed: malformed body: expected value at line 1 column 20",
        ),
    ];
    for (name, body, expected) in cases {
        let error = segment::decode_batch(&body, 0).expect_err(name);
        assert_eq!(format!("{}: {error}", error.kind.code()), expected, "{name}");
    }
    assert!(ErrorKind::BodyTooLarge { size: 1 }.is_size_limit());
}

#[test]
fn a_bad_event_does_not_sink_its_batch() {
    let body = serde_json::to_vec(&json!({ "batch": [
        track(json!({ "messageId": "first" })),
        track(json!({ "messageId": "second", "timestamp": "never" })),
        track(json!({ "messageId": "third" })),
    ]}))
    .unwrap();
    let decoded = segment::decode_batch(&body, 0).unwrap();
    let ids: Vec<&str> = decoded.events.iter().map(|e| e.message_id.as_str()).collect();
    assert_eq!(ids, ["first", "third"]);
    assert_eq!(decoded.rejected.len(), 1);
    assert_eq!(decoded.rejected[0].index, 1);
    assert_eq!(decoded.rejected[0].error.path, "batch[1].timestamp");
}

#[test]
fn original_timestamp_is_the_time_when_there_is_no_timestamp() {
    let body = serde_json::to_vec(&json!({ "batch": [
        track(json!({ "originalTimestamp": "2026-11-20T10:00:00Z" })),
        track(json!({ "timestamp": "2026-11-21T10:00:00Z", "originalTimestamp": "2026-11-20T10:00:00Z" })),
        // Read only in place of `timestamp`: a broken one beside it is left alone.
        track(json!({ "timestamp": "2026-11-21T10:00:00Z", "originalTimestamp": "never" })),
        track(json!({ "originalTimestamp": "never" })),
    ]}))
    .unwrap();
    let decoded = segment::decode_batch(&body, 0).unwrap();
    let times: Vec<String> = decoded.events.iter().map(|e| e.timestamp.unwrap().to_string()).collect();
    assert_eq!(times, ["2026-11-20T10:00:00.000Z", "2026-11-21T10:00:00.000Z", "2026-11-21T10:00:00.000Z"]);
    assert_eq!(decoded.rejected.len(), 1);
    assert_eq!(decoded.rejected[0].error.path, "batch[3].originalTimestamp");
}

#[test]
fn single_call_bodies_take_their_type_from_the_endpoint() {
    let body = br#"{"type":"identify","event":"Signed Up","userId":"u1","writeKey":"wk"}"#;
    let (event, write_key) = segment::decode_single("track", body, 0).unwrap();
    assert_eq!(event.call.type_name(), "track");
    assert_eq!(write_key.as_deref(), Some("wk"));
    let error = segment::decode_single("track", br#"{"userId":"u1"}"#, 0).unwrap_err();
    assert_eq!(error.to_string(), "event: required field is missing");
}

#[test]
fn beacon_whole_body_errors() {
    let mut future = beacon::MAGIC.to_vec();
    future.push(9);
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("empty", vec![], "not_a_beacon: not a Portrait beacon (bad magic bytes)"),
        (
            "JSON sent to the beacon endpoint",
            b"{\"batch\":[]}".to_vec(),
            "not_a_beacon: not a Portrait beacon (bad magic bytes)",
        ),
        (
            "a future version",
            future,
            "unsupported_version: beacon format version 9 is not supported (this collector reads version 1)",
        ),
        (
            "truncated",
            vec![0xB7, b'P', 1, 0],
            "malformed: malformed body: beacon: Hit the end of buffer, expected more data",
        ),
        (
            "too big",
            vec![0; limits::MAX_BATCH_BYTES + 1],
            "body_too_large: body of 512001 bytes exceeds the limit of 512000 bytes",
        ),
    ];
    for (name, body, expected) in cases {
        let error = beacon::decode(&body).expect_err(name);
        assert_eq!(format!("{}: {error}", error.kind.code()), expected, "{name}");
    }
}

/// A beacon whose properties name one key twice (two string-table entries with the same text,
/// which no encoder writes) loses that event only, with the key in the message.
#[test]
fn a_beacon_key_given_twice_rejects_its_event() {
    use portrait_core::{Call, Event, Value};
    let event = |id: &str, properties: &[&str]| {
        let mut event = Event::new(id, Call::Track { event: "Clicked".into() });
        event.anonymous_id = Some("a1".into());
        event.properties = properties.iter().map(|key| (key.to_string(), Value::Int(1))).collect();
        event
    };
    let batch = beacon::Batch {
        sent_at: None,
        dropped: 0,
        events: vec![event("m1", &["zq", "zr"]), event("m2", &[])],
    };
    let mut body = beacon::encode(&batch);
    let at = body.windows(3).position(|w| w == b"\x02zr").expect("the key `zr` in the string table");
    body[at + 2] = b'q';
    let decoded = beacon::decode(&body).unwrap();
    assert_eq!(decoded.events.iter().map(|e| e.message_id.as_str()).collect::<Vec<_>>(), ["m2"]);
    let [rejected] = decoded.rejected.as_slice() else { panic!("one rejection: {:?}", decoded.rejected) };
    assert_eq!(rejected.index, 0);
    assert_eq!(
        format!("{}: {}", rejected.error.kind.code(), rejected.error),
        "malformed: batch[0].properties: malformed body: duplicate key `zq`"
    );
}

/// Both decoders measure an event the same way (the beacon measures a shared context once):
/// an event of exactly the limit passes both, one byte more fails both with the same size.
#[test]
fn the_size_limit_is_the_same_in_both_formats() {
    use portrait_core::{Call, Event, Timestamp};
    let make = |padding: usize| {
        let mut event = Event::new("m1", Call::Track { event: "Sized".into() });
        event.anonymous_id = Some("a1".into());
        event.timestamp = Some(Timestamp(1_795_892_646_000));
        event.context_mut().page.url = Some("https://example.com/".into());
        event.context_mut().user_agent = Some("Mozilla/5.0".into());
        for (i, chunk) in ["a", "b", "c", "d", "e"].iter().enumerate() {
            let len = if i == 4 { padding } else { 8000 };
            event.properties.insert((*chunk).into(), "x".repeat(len).as_str().into());
        }
        event
    };
    let base = segment::json_len(&make(0));
    let exact = make(limits::MAX_EVENT_BYTES - base);
    assert_eq!(segment::json_len(&exact), limits::MAX_EVENT_BYTES);
    let over = make(limits::MAX_EVENT_BYTES - base + 1);
    for (event, expected) in [(exact, None), (over, Some(limits::MAX_EVENT_BYTES + 1))] {
        let json = segment::decode_batch(&segment::encode_batch(std::slice::from_ref(&event)), 0).unwrap();
        let beacon = beacon::decode(&beacon::encode(&beacon::Batch {
            sent_at: None,
            dropped: 0,
            events: vec![event],
        }))
        .unwrap();
        for decoded in [json, beacon] {
            let size = decoded.rejected.first().map(|r| match r.error.kind {
                ErrorKind::EventTooLarge { size } => size,
                ref other => panic!("{other:?}"),
            });
            assert_eq!(size, expected);
        }
    }
}

#[test]
fn a_rejection_can_be_renumbered_for_the_batch_it_came_from() {
    let error = portrait_core::Error::new("properties.a", ErrorKind::TooDeep);
    let moved = portrait_core::Rejected::new(1, error).renumber(7);
    assert_eq!((moved.index, moved.error.path.as_str()), (7, "batch[7].properties.a"));
}

#[test]
fn half_a_utf16_pair_is_read_as_a_replacement_character_not_a_malformed_batch() {
    // As `JSON.stringify` writes a string cut inside an emoji: a lone high surrogate, a lone
    // low one, a whole pair (kept), and an escaped backslash before `ud83d` (text, kept).
    let body = br#"{"batch":[{"type":"track","event":"Cut \ud83d","anonymousId":"a1","messageId":"m1",
        "properties":{"low":"\udc00!","pair":"\ud83d\ude00","text":"\\ud83d","end":"\ud83d"}}]}"#;
    let decoded = segment::decode_batch(body, 0).unwrap();
    assert!(decoded.rejected.is_empty(), "{:?}", decoded.rejected);
    let event = &decoded.events[0];
    let Call::Track { event: name } = &event.call else { panic!("{:?}", event.call) };
    assert_eq!(name, "Cut \u{FFFD}");
    let text = |key: &str| match event.properties.get(key) {
        Some(Value::String(s)) => s.clone(),
        other => panic!("{key}: {other:?}"),
    };
    assert_eq!(
        [text("low"), text("pair"), text("text"), text("end")],
        ["\u{FFFD}!", "😀", "\\ud83d", "\u{FFFD}"]
    );
    // Still malformed for anything else wrong with it.
    let broken = br#"{"batch":[{"type":"track","event":"Cut \ud83d"}"#;
    assert_eq!(segment::decode_batch(broken, 0).unwrap_err().kind.code(), "malformed");
}

#[test]
fn a_computed_screen_width_and_a_numeric_library_version_are_read_not_refused() {
    let body = serde_json::to_vec(&json!({ "batch": [track(json!({ "context": {
        "screen": { "width": 1920.0, "height": 1080 },
        "library": { "name": "analytics-python", "version": 2 },
    }}))]}))
    .unwrap();
    let decoded = segment::decode_batch(&body, 0).unwrap();
    assert!(decoded.rejected.is_empty(), "{:?}", decoded.rejected);
    let context = &decoded.events[0].context;
    assert_eq!((context.screen.width, context.screen.height), (Some(1920), Some(1080)));
    assert_eq!(context.library.version.as_deref(), Some("2"));
    for (width, expected) in
        [(json!(1920.5), "wrong_type"), (json!(-1.0), "wrong_type"), (json!(1e12), "wrong_type")]
    {
        assert_eq!(
            verdict(track(json!({ "context": { "screen": { "width": width } } }))).split(':').next(),
            Some(expected)
        );
    }
}

#[test]
fn a_clock_reset_to_1970_is_corrected_by_its_sent_at() {
    let body = br#"{"batch":[{"type":"track","event":"Late Clock","anonymousId":"a1","messageId":"m1",
        "timestamp":"1970-01-01T00:00:10Z","sentAt":"1970-01-01T00:00:15Z"}]}"#;
    let mut event = segment::decode_batch(body, 0).unwrap().events.remove(0);
    let received = portrait_core::Timestamp::parse_iso8601("2026-12-02T12:00:00Z").unwrap();
    portrait_core::enrich::correct_time(&mut event, received).unwrap();
    assert_eq!(event.timestamp.unwrap().to_string(), "2026-12-02T11:59:55.000Z");
}
