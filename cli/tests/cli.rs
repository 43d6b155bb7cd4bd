//! The `portrait` binary, run as a user would, on the golden vectors of `portrait-core`.

use std::io::Write;
use std::process::{Command, Stdio};

const GOLDEN_BIN: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../core/tests/data/beacon_v1.bin");
const GOLDEN_JSON: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../core/tests/data/beacon_v1.json");

fn portrait(args: &[&str], stdin: &[u8]) -> (i32, Vec<u8>, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_portrait"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    let output = child.wait_with_output().unwrap();
    (output.status.code().unwrap(), output.stdout, String::from_utf8(output.stderr).unwrap())
}

#[test]
fn decode_prints_the_segment_view() {
    let (status, stdout, stderr) = portrait(&["decode", GOLDEN_BIN], b"");
    assert_eq!((status, stderr.as_str()), (0, ""));
    assert_eq!(stdout, std::fs::read(GOLDEN_JSON).unwrap());
}

#[test]
fn encode_reverses_decode_byte_for_byte() {
    let (status, stdout, stderr) = portrait(&["encode"], &std::fs::read(GOLDEN_JSON).unwrap());
    assert_eq!((status, stderr.as_str()), (0, ""));
    assert_eq!(stdout, std::fs::read(GOLDEN_BIN).unwrap());
}

#[test]
fn rejected_events_are_listed_and_set_the_status() {
    let body = br#"{"batch":[{"type":"track","event":"A","userId":"u"},{"type":"track","event":"B"}]}"#;
    let (status, stdout, stderr) = portrait(&["encode"], body);
    assert_eq!(status, 1);
    assert_eq!(stderr, "rejected no_identity: batch[1]: one of anonymousId or userId is required\n");
    let (status, json, _) = portrait(&["decode"], &stdout);
    assert_eq!(status, 0);
    assert!(String::from_utf8(json).unwrap().contains("\"event\": \"A\""));
}

#[test]
fn bad_input_is_a_clear_error() {
    let (status, _, stderr) = portrait(&["decode"], b"{\"batch\":[]}");
    assert_eq!(
        (status, stderr.as_str()),
        (2, "portrait: not_a_beacon: not a Portrait beacon (bad magic bytes)\n")
    );
    let (status, _, stderr) = portrait(&["frobnicate"], b"");
    assert_eq!(
        (status, stderr.as_str()),
        (2, "usage: portrait decode|encode|topics [FILE]   (FILE defaults to stdin)\n")
    );
    let (status, _, stderr) = portrait(&["decode", "/nonexistent/beacon.bin"], b"");
    assert_eq!(status, 2);
    assert!(stderr.starts_with("portrait: cannot read /nonexistent/beacon.bin: "), "{stderr}");
}

#[test]
fn topics_classifies_json_lines_and_reports_bad_lines() {
    let pages = concat!(
        r#"{"id": "a", "title": "Premier League football results", "url": "https://example.com/sport/football"}"#,
        "\n[1, 2]\n",
        r#"{"id": 7, "title": "Houses for sale and flats to rent", "keywords": ["estate agents"]}"#,
        "\n\n{not json\n",
    );
    let (status, stdout, stderr) = portrait(&["topics"], pages.as_bytes());
    assert_eq!(status, 1, "a bad line sets the status");
    assert!(stderr.starts_with("portrait: line 2: not a JSON object\nportrait: line 5: "), "{stderr}");
    let lines: Vec<serde_json::Value> =
        String::from_utf8(stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["id"], "a");
    assert_eq!(lines[0]["top_level_ids"][0], 299, "/Sports");
    assert_eq!(lines[1]["id"], 7);
    assert_eq!(lines[1]["top_level_ids"][0], 272, "/Real Estate");
    let labels = lines[0]["label_ids"].as_array().unwrap();
    assert!(labels.contains(&lines[0]["top_level_ids"][0]), "labels hold the top-level topics");
}
