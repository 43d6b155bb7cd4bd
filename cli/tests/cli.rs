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
    // A command refused before it reads its input may have closed it already.
    let _ = child.stdin.take().unwrap().write_all(stdin);
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
fn configurations_are_checked_with_file_line_and_column() {
    let dir = std::env::temp_dir().join(format!("portrait-cli-config-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let dev = concat!(env!("CARGO_MANIFEST_DIR"), "/../collector/portrait.dev.toml");
    let (status, stdout, _) = portrait(&["check-config", dev], b"");
    let stdout = String::from_utf8(stdout).unwrap();
    assert_eq!(status, 0);
    assert!(stdout.contains("workspace demo: 2 sources"), "{stdout}");
    let bad = dir.join("bad.toml");
    let text = std::fs::read_to_string(dev).unwrap()
        + "\n[[workspaces.audiences]]\nname = \"hot\"\nrule = \"lead_score >= 60 and\"\n";
    std::fs::write(&bad, &text).unwrap();
    let (status, _, stderr) = portrait(&["check-config", bad.to_str().unwrap()], b"");
    assert_eq!(status, 1);
    let line = text.lines().count();
    let appended = text.matches("[[workspaces.audiences]]").count() - 1;
    assert!(
        stderr.starts_with(&format!("{}:{line}:", bad.display()))
            && stderr.contains(&format!("workspaces[1].audiences[{appended}].rule")),
        "{stderr}"
    );
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
        (
            2,
            "usage: portrait decode|encode|topics [FILE]   (FILE defaults to stdin)\n       \
             portrait topics [--scores] [--labels-of LABELLED]… [FILE]\n       \
             portrait fit-propensity [FILE] [--features a,b,…] [--l2 X]\n       \
             portrait check-config FILE\n"
        )
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
        r#"{"title": "No id: answered in its place, and reported"}"#,
    );
    let (status, stdout, stderr) = portrait(&["topics"], pages.as_bytes());
    assert_eq!(status, 1, "a bad line sets the status");
    assert!(stderr.starts_with("portrait: line 2: not a JSON object\nportrait: line 5: "), "{stderr}");
    assert!(stderr.ends_with("portrait: line 6: no `id` (a string or a number)\n"), "{stderr}");
    let lines: Vec<serde_json::Value> =
        String::from_utf8(stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[2]["id"], serde_json::Value::Null);
    assert_eq!(lines[0]["id"], "a");
    assert_eq!(lines[0]["top_level_ids"][0], 299, "/Sports");
    assert_eq!(lines[1]["id"], 7);
    assert_eq!(lines[1]["top_level_ids"][0], 272, "/Real Estate");
    let labels = lines[0]["label_ids"].as_array().unwrap();
    assert!(labels.contains(&lines[0]["top_level_ids"][0]), "labels hold the top-level topics");
    assert!(lines[0].get("label_scores").is_none(), "scores only when asked");

    let (status, stdout, _) = portrait(&["topics", "--scores"], pages.as_bytes());
    assert_eq!(status, 1);
    let first: serde_json::Value =
        serde_json::from_str(String::from_utf8(stdout).unwrap().lines().next().unwrap()).unwrap();
    let scores: Vec<f64> =
        first["label_scores"].as_array().unwrap().iter().map(|s| s.as_f64().unwrap()).collect();
    assert_eq!(scores.len(), first["label_ids"].as_array().unwrap().len());
    assert!(
        scores.windows(2).all(|w| w[0] >= w[1]) && scores.iter().all(|&s| s > 0.0 && s <= 1.0),
        "{scores:?}"
    );
}

#[test]
fn topics_labels_of_predicts_only_the_labelled_sets_top_level_topics() {
    let pages = r#"{"id": 7, "title": "Houses for sale and flats to rent", "keywords": ["estate agents"]}"#;
    let (_, stdout, _) = portrait(&["topics"], pages.as_bytes());
    assert!(stdout.starts_with(br#"{"id":7,"label_ids":[272"#), "/Real Estate by default");

    // A labelling with Finance (149) and a finer topic of Home & Garden (/Home & Garden/…).
    let dir = std::env::temp_dir().join(format!("portrait-cli-labels-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let labelled = dir.join("labelled.jsonl");
    let home_and_garden_child = 473; // /Home & Garden/Bed & Bath
    std::fs::write(
        &labelled,
        format!("{{\"top_level_ids\": [149], \"label_ids\": [149]}}\n\n{{\"label_ids\": [{home_and_garden_child}]}}\n"),
    )
    .unwrap();
    let (status, stdout, stderr) =
        portrait(&["topics", "--scores", "--labels-of", labelled.to_str().unwrap()], pages.as_bytes());
    assert_eq!((status, stderr.as_str()), (0, ""));
    let answer: serde_json::Value = serde_json::from_slice(&stdout).unwrap();
    let top_level: Vec<u64> =
        answer["top_level_ids"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap()).collect();
    assert!(!top_level.is_empty() && top_level.iter().all(|id| [149, 207].contains(id)), "{answer}");
    assert!(answer["label_scores"].is_array(), "flags combine");

    // A finer label names its top-level topic; a second file adds its topics.
    let finance = dir.join("finance.jsonl");
    std::fs::write(&finance, "{\"top_level_ids\": [149]}\n").unwrap();
    std::fs::write(&labelled, format!("{{\"label_ids\": [{home_and_garden_child}]}}\n")).unwrap();
    let garden = r#"{"id": 1, "title": "Kitchen renovation ideas: cabinets, worktops and sofas"}"#;
    for (files, expected) in [(vec![&labelled], vec![207]), (vec![&labelled, &finance], vec![207])] {
        let mut args = vec!["topics"];
        for file in files {
            args.extend(["--labels-of", file.to_str().unwrap()]);
        }
        let (status, stdout, stderr) = portrait(&args, garden.as_bytes());
        assert_eq!((status, stderr.as_str()), (0, ""));
        let answer: serde_json::Value = serde_json::from_slice(&stdout).unwrap();
        assert_eq!(answer["top_level_ids"], serde_json::json!(expected), "{answer}");
    }
    let (_, stdout, _) = portrait(&["topics", "--labels-of", finance.to_str().unwrap()], garden.as_bytes());
    let answer: serde_json::Value = serde_json::from_slice(&stdout).unwrap();
    assert_eq!(answer["top_level_ids"], serde_json::json!([149]), "the only topic left: {answer}");

    let path = labelled.to_str().unwrap();
    for (content, expected) in [
        ("[149]\n", format!("{path}:1: not a JSON object")),
        (
            "{\"label_ids\": [149]}\n{\"label_ids\": [\"149\"]}\n",
            format!("{path}:2: `label_ids` holds \"149\", not a topic id"),
        ),
        ("{\"label_ids\": 149}\n", format!("{path}:1: `label_ids` is 149, not a list of topic ids")),
        ("{\"top_level_ids\": [70000]}\n", format!("{path}:1: `top_level_ids` holds 70000, not a topic id")),
        ("{\"label_ids\": [9999]}\n", "--labels-of: label 9999 is not a topic of the model".to_owned()),
        ("{\"id\": 1}\n", format!("{path}: no row has `top_level_ids` or `label_ids`")),
    ] {
        std::fs::write(&labelled, content).unwrap();
        let (status, stdout, stderr) = portrait(&["topics", "--labels-of", path], pages.as_bytes());
        assert_eq!((status, stdout.len(), stderr), (2, 0, format!("portrait: {expected}\n")), "{content}");
    }
    let (status, _, stderr) =
        portrait(&["topics", "--labels-of", "/nonexistent/labels.jsonl"], pages.as_bytes());
    assert_eq!(status, 2);
    assert!(stderr.starts_with("portrait: cannot read /nonexistent/labels.jsonl: "), "{stderr}");
    let (status, _, stderr) = portrait(&["topics", "--labels-of"], pages.as_bytes());
    assert_eq!(status, 2);
    assert!(stderr.starts_with("usage: "), "{stderr}");
    std::fs::remove_dir_all(&dir).unwrap();
}

const SYNTHETIC: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../core/data/propensity_synthetic.jsonl");

/// The `key = number` lines of what `fit-propensity` prints (comments skipped, quotes of
/// keys dropped): `intercept`, `coefficients.lead_score`, `coefficients.intent_stage=decision`.
fn toml_numbers(text: &str) -> std::collections::BTreeMap<String, f64> {
    text.lines()
        .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
        .map(|line| {
            let (key, value) = line.split_once(" = ").unwrap_or_else(|| panic!("not `key = value`: {line}"));
            (key.replace('"', ""), value.parse().unwrap_or_else(|_| panic!("not a number: {line}")))
        })
        .collect()
}

/// The number after `label ` in the comment line with the figures.
fn figure(text: &str, label: &str) -> f64 {
    let line = text.lines().find(|line| line.starts_with("# rows ")).expect("a line of figures");
    let at = line.find(label).unwrap_or_else(|| panic!("no {label} in {line}")) + label.len();
    line[at..].trim_start().split([' ', ',', ';']).next().unwrap().parse().unwrap()
}

#[test]
fn fit_propensity_recovers_the_synthetic_ground_truth() {
    // TRUTH of core/data/propensity_synthetic.mjs, which drew the labels of the file.
    let truth = [
        ("engagement_score", 0.25),
        ("lead_score", 0.03),
        ("visits_per_week", 0.2),
        ("active_7d", 1.2),
        ("intent_stage=consideration", 1.2),
        ("intent_stage=decision", 2.2),
        ("lifecycle=known", 1.2),
        ("page_views", -0.04),
    ];
    let (status, stdout, stderr) = portrait(&["fit-propensity", SYNTHETIC], b"");
    assert_eq!((status, stderr.as_str()), (0, ""));
    let text = String::from_utf8(stdout).unwrap();
    assert!(
        text.starts_with(
            "# conversion propensity, fitted by `portrait fit-propensity` (l2 1): paste under \
             [workspaces.scoring.propensity]\n# rows 400, positives "
        ),
        "{text}"
    );
    let fitted = toml_numbers(&text);
    let mut keys: Vec<String> = truth.iter().map(|(name, _)| format!("coefficients.{name}")).collect();
    keys.push("intercept".into());
    keys.sort();
    assert_eq!(fitted.keys().cloned().collect::<Vec<_>>(), keys, "{text}");
    for (name, planted) in truth {
        let got = fitted[&format!("coefficients.{name}")];
        // The sign, and the size within a factor of 3 (400 rows: seeds 1–40 of the generator
        // all land within 0.42–1.73 times the truth).
        assert!(got * planted > 0.0, "{name}: fitted {got}, planted {planted}\n{text}");
        assert!((1.0 / 3.0..3.0).contains(&(got / planted)), "{name}: fitted {got}, planted {planted}");
    }
    assert!(fitted["intercept"] < -2.0, "{text}");
    assert_eq!(figure(&text, "rows"), 400.0);
    assert!(figure(&text, "AUC") > 0.75, "{text}");
    assert!(figure(&text, "CV AUC") > 0.75, "{text}");
    assert!(figure(&text, "CV AUC") <= figure(&text, "AUC"), "{text}");
    // The same input, the same output; and standard input works as the file does.
    let (_, again, _) = portrait(&["fit-propensity"], &std::fs::read(SYNTHETIC).unwrap());
    assert_eq!(String::from_utf8(again).unwrap(), text);
}

fn labelled(lead: u32, stage: &str, key: &str, label: &str) -> String {
    format!(
        r#"{{"profile": {{"profileId": "a:x", "tags": [{{"name": "lead_score", "kind": "analytical", "value": {lead}, "reason": "r"}}, {{"name": "intent_stage", "kind": "analytical", "value": "{stage}", "reason": "r"}}, {{"name": "country", "value": "GB"}}]}}, "{key}": {label}}}"#
    )
}

#[test]
fn fit_propensity_takes_features_l2_and_either_label() {
    let lines = [
        labelled(90, "decision", "converted", "true"),
        labelled(80, "decision", "label", "1"),
        labelled(70, "awareness", "label", "true"),
        labelled(60, "decision", "converted", "false"),
        labelled(30, "awareness", "label", "0"),
        labelled(20, "decision", "converted", "false"),
        labelled(10, "awareness", "label", "false"),
        labelled(85, "awareness", "converted", "true"),
    ];
    let input = lines.join("\n") + "\n\n";
    let features = "lead_score, intent_stage=decision,lifecycle=known";
    let (status, stdout, stderr) =
        portrait(&["fit-propensity", "--features", features, "--l2=0.5"], input.as_bytes());
    assert_eq!((status, stderr.as_str()), (0, ""));
    let text = String::from_utf8(stdout).unwrap();
    assert!(text.contains("(l2 0.5)"), "{text}");
    assert!(text.contains("\n# rows 8, positives 4, "), "{text}");
    assert!(
        text.contains("\n# the same in every row, so coefficient 0 (no such tag?): lifecycle=known\n"),
        "{text}"
    );
    let fitted = toml_numbers(&text);
    assert_eq!(
        fitted.keys().collect::<Vec<_>>(),
        [
            "coefficients.intent_stage=decision",
            "coefficients.lead_score",
            "coefficients.lifecycle=known",
            "intercept"
        ]
    );
    assert!(text.contains("\ncoefficients.\"intent_stage=decision\" = "), "quoted key: {text}");
    assert!(fitted["coefficients.lead_score"] > 0.0, "{text}");
    assert_eq!(fitted["coefficients.lifecycle=known"], 0.0);
    // A heavier penalty pulls the coefficient towards 0.
    let (_, stdout, _) =
        portrait(&["fit-propensity", "--l2", "50", "--features", features], input.as_bytes());
    let heavier = toml_numbers(&String::from_utf8(stdout).unwrap());
    let (light, heavy) = (fitted["coefficients.lead_score"], heavier["coefficients.lead_score"]);
    assert!(0.0 < heavy && heavy < light, "{light} → {heavy}");
}

#[test]
fn fit_propensity_reports_bad_lines_and_fits_nothing() {
    let good = labelled(50, "decision", "converted", "true");
    let input = [
        good.as_str(),
        "[1, 2]",
        "",
        "{not json",
        r#"{"profile": {"tags": []}}"#,
        r#"{"profile": {"traits": {}}, "converted": true}"#,
        r#"{"tags": [], "converted": true}"#,
        r#"{"profile": {"tags": [{"value": 3}]}, "label": false}"#,
        r#"{"profile": {"tags": []}, "converted": "yes"}"#,
        r#"{"profile": {"tags": []}, "converted": true, "label": false}"#,
        good.as_str(),
    ]
    .join("\n");
    let (status, stdout, stderr) = portrait(&["fit-propensity"], input.as_bytes());
    assert_eq!(status, 1);
    assert!(stdout.is_empty(), "nothing fitted");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines[0], "portrait: line 2: not a JSON object");
    assert!(lines[1].starts_with("portrait: line 4: key must be a string"), "{stderr}");
    assert_eq!(
        lines[2..],
        [
            r#"portrait: line 5: no label: expected "converted": true or false (or "label")"#,
            "portrait: line 6: `profile.tags` is missing or not a list",
            "portrait: line 7: no `profile` object",
            r#"portrait: line 8: `profile.tags[0]` is not a tag: expected {"name": …, "value": …}"#,
            "portrait: line 9: `converted` must be true or false",
            "portrait: line 10: `converted` and `label` disagree",
            "portrait: 8 bad line(s): nothing fitted",
        ]
    );
}

#[test]
fn fit_propensity_needs_rows_of_both_classes_and_good_arguments() {
    let (status, stdout, stderr) = portrait(&["fit-propensity"], b"\n  \n");
    assert_eq!((status, stdout.is_empty(), stderr.as_str()), (1, true, "portrait: no rows to fit on\n"));
    let input =
        [labelled(50, "decision", "converted", "false"), labelled(60, "x", "label", "false")].join("\n");
    let (status, _, stderr) = portrait(&["fit-propensity"], input.as_bytes());
    assert_eq!(
        (status, stderr.as_str()),
        (
            1,
            "portrait: all 2 rows are labelled not converted: the fit needs both converted and not \
             converted profiles\n"
        )
    );

    let usage =
        "usage: portrait fit-propensity [FILE] [--features a,b,…] [--l2 X]   (FILE defaults to stdin)\n";
    for (args, message) in [
        (&["--l2", "0"][..], "portrait: --l2 must be a number above 0, not `0`\n"),
        (&["--l2=abc"], "portrait: --l2 must be a number above 0, not `abc`\n"),
        (&["--l2"], "portrait: --l2 needs a value\n"),
        (&["--features", "lead_score,Lead"], "portrait: --features: feature `Lead`: expected a tag name"),
        (&["--features", "a,,b"], "portrait: --features: feature ``: expected a tag name"),
        (&["--features", "a,a"], "portrait: --features: feature `a`: listed twice\n"),
        (&["--verbose"], "portrait: unknown option --verbose\n"),
        (&["a.jsonl", "b.jsonl"], "portrait: one FILE at most (`b.jsonl` is a second)\n"),
    ] {
        let args = [&["fit-propensity"], args].concat();
        let (status, stdout, stderr) = portrait(&args, b"");
        assert_eq!((status, stdout.is_empty()), (2, true), "{args:?}");
        assert!(stderr.starts_with(message) && stderr.ends_with(usage), "{args:?}: {stderr}");
    }
    let (status, _, stderr) = portrait(&["fit-propensity", "/nonexistent/profiles.jsonl"], b"");
    assert_eq!(status, 2);
    assert!(stderr.starts_with("portrait: cannot read /nonexistent/profiles.jsonl: "), "{stderr}");
}
