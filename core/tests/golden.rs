//! Golden vectors: bytes on disk that pin the beacon format and the Segment JSON mapping.
//! A change that alters them is a format change: it needs a new beacon version, not a bless.
//! To regenerate after a deliberate change: `PORTRAIT_BLESS=1 cargo test -p portrait-core --test golden`.

use std::path::PathBuf;

use portrait_core::{Call, Event, Map, Timestamp, Value, beacon, segment};

fn data(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data").join(name)
}

fn check_golden(name: &str, actual: &[u8]) {
    let path = data(name);
    if std::env::var_os("PORTRAIT_BLESS").is_some() {
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(
        expected == actual,
        "{name} differs from the golden file; see the comment at the top of golden.rs"
    );
}

fn object(entries: &[(&str, Value)]) -> Map {
    entries.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect()
}

/// One of each call, with the context a browser SDK sends.
fn golden_batch() -> beacon::Batch {
    let sent_at = Timestamp(1_795_892_646_000);
    let at = |offset: i64| Some(Timestamp(sent_at.0 + offset));
    let mut events = vec![
        Event::new(
            "6f1c2b9e-3a4d-4e5f-8a6b-7c8d9e0f1a2b",
            Call::Page { category: Some("Docs".into()), name: None },
        ),
        Event::new("0b0e6a52-5d0e-4a7e-9b39-d1c6a0f3e2a1", Call::Track { event: "Button Clicked".into() }),
        Event::new("custom-id-1", Call::Identify),
        Event::new("d3a9c1e0-0000-4000-8000-000000000004", Call::Group { group_id: "acme".into() }),
        Event::new("d3a9c1e0-0000-4000-8000-000000000005", Call::Alias { previous_id: "anon-1".into() }),
        Event::new("d3a9c1e0-0000-4000-8000-000000000006", Call::Screen { name: Some("Home".into()) }),
    ];
    for (i, event) in events.iter_mut().enumerate() {
        event.anonymous_id = Some("anon-1".into());
        event.timestamp = at(-1500 + 300 * i as i64);
        event.sent_at = Some(sent_at);
        let context = event.context_mut();
        context.page.url = Some("https://example.com/docs/start?utm_source=news".into());
        context.page.path = Some("/docs/start".into());
        context.page.title = Some("Getting started".into());
        context.page.search = Some("?utm_source=news".into());
        context.campaign.source = Some("news".into());
        context.campaign.other.insert("gclid".into(), "Cj0KCQ".into());
        context.user_agent = Some("Mozilla/5.0 (X11; Linux x86_64) Chrome/156.0 Safari/537.36".into());
        context.locale = Some("en-GB".into());
        context.timezone = Some("Europe/London".into());
        context.screen.width = Some(1920);
        context.screen.height = Some(1080);
        context.screen.density = Some(1.5);
        context.library.name = Some("portrait.js".into());
        context.library.version = Some("0.1.0".into());
    }
    events[1].properties = object(&[("plan", "pro".into()), ("step", 2.into())]);
    events[2].user_id = Some("user-42".into());
    events[2].traits = object(&[
        ("email", "ada@example.com".into()),
        ("score", Value::Float(0.75)),
        ("tags", Value::Array(vec!["a".into(), Value::Null, Value::Bool(true)])),
        ("address", Value::Object(object(&[("city", "Zürich".into())]))),
    ]);
    events[3].traits = object(&[("name", "Acme 株式会社".into()), ("employees", 250.into())]);
    beacon::Batch { sent_at: Some(sent_at), dropped: 3, events }
}

#[test]
fn beacon_v1_bytes_are_pinned() {
    let batch = golden_batch();
    let body = beacon::encode(&batch);
    check_golden("beacon_v1.bin", &body);
    let decoded = beacon::decode(&std::fs::read(data("beacon_v1.bin")).unwrap()).unwrap();
    assert_eq!(decoded.events, batch.events);
    assert_eq!(decoded.dropped, 3);
}

/// The Segment view of the golden beacon, as `portrait decode` prints it (`dropped` is
/// Portrait's own top-level field).
#[test]
fn beacon_v1_as_segment_json_is_pinned() {
    let batch = golden_batch();
    let mut body = segment::batch_json(&batch.events);
    body["dropped"] = batch.dropped.into();
    let mut json = serde_json::to_vec_pretty(&body).unwrap();
    json.push(b'\n');
    check_golden("beacon_v1.json", &json);
    let decoded = segment::decode_batch(&json, 0).unwrap();
    assert_eq!(decoded.events, golden_batch().events);
}

/// Bodies as Segment's libraries send them (`*.json`) and the canonical events they decode to
/// (`*.expected.json`): unknown fields ignored, `integrations` and `context.ip` dropped,
/// numeric ids kept as text, batch-level `sentAt`/`context` applied, missing ids derived.
#[test]
fn segment_fixtures_decode_as_pinned() {
    let dir = data("segment");
    let mut inputs: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|p| {
            p.extension().is_some_and(|e| e == "json") && !p.to_string_lossy().ends_with(".expected.json")
        })
        .collect();
    inputs.sort();
    assert!(inputs.len() >= 3, "fixtures missing in {}", dir.display());
    for input in inputs {
        let name = input.file_stem().unwrap().to_string_lossy().into_owned();
        let body = std::fs::read(&input).unwrap();
        // `track.json` is the body of a single-call endpoint named by its file name.
        let decoded = match name.split_once('.') {
            Some(("single", call)) => vec![segment::decode_single(call, &body, 0).unwrap().0],
            _ => {
                let decoded = segment::decode_batch(&body, 0).unwrap();
                assert!(decoded.rejected.is_empty(), "{name}: {:?}", decoded.rejected);
                decoded.events
            }
        };
        let mut json = serde_json::to_vec_pretty(&segment::batch_json(&decoded)).unwrap();
        json.push(b'\n');
        check_golden(&format!("segment/{name}.expected.json"), &json);
    }
}

#[test]
fn a_missing_message_id_is_derived_from_the_content() {
    let body = br#"{"userId":"u1","event":"Signed Up","timestamp":"2026-11-28T19:04:06Z"}"#;
    let first = segment::decode_single("track", body, 0).unwrap().0;
    let again = segment::decode_single("track", body, 0).unwrap().0;
    let other = segment::decode_single("track", br#"{"userId":"u2","event":"Signed Up"}"#, 0).unwrap().0;
    assert!(first.message_id.starts_with("content-"), "{}", first.message_id);
    assert_eq!(first.message_id, again.message_id);
    assert_ne!(first.message_id, other.message_id);
    // A retry stamps `sentAt` again, and arrives later: still the same event.
    let retried = br#"{"userId":"u1","event":"Signed Up","timestamp":"2026-11-28T19:04:06Z","sentAt":"2026-11-28T19:05:00Z"}"#;
    assert_eq!(segment::decode_single("track", retried, 1).unwrap().0.message_id, first.message_id);
}

#[test]
fn an_event_without_message_id_or_timestamp_is_a_new_one_each_time_it_arrives() {
    let body = br#"{"batch":[{"type":"track","userId":"u1","event":"Clicked"},{"type":"track","userId":"u1","event":"Clicked"}]}"#;
    let ids =
        |arrival| segment::decode_batch(body, arrival).unwrap().events.into_iter().map(|e| e.message_id);
    let first: Vec<String> = ids(0).collect();
    assert_ne!(first[0], first[1], "two clicks in one batch");
    assert!(ids(1).all(|id| !first.contains(&id)), "the same clicks sent again");
    assert_eq!(ids(0).collect::<Vec<_>>(), first, "the same arrival: the same ids");
}
