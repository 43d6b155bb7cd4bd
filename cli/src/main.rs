//! `portrait`: see what a site sends, and make beacons by hand.
//!
//! ```text
//! portrait decode [FILE]   beacon body (binary) → Segment JSON `{"batch": [...]}` on stdout
//! portrait encode [FILE]   Segment JSON `{"batch": [...]}` → beacon body on stdout
//! portrait topics [--scores] [--labels-of LABELLED]… [FILE]
//!                          pages as JSON Lines → their topics as JSON Lines on stdout
//! portrait fit-propensity [FILE] [--features a,b,…] [--l2 X]
//!                          labelled profiles as JSON Lines → propensity coefficients as TOML
//! portrait check-config FILE
//!                          validates a collector configuration (PORTRAIT_CONFIG): every
//!                          section, audience rule and webhook; errors as FILE:line:column
//! ```
//! FILE defaults to standard input. Rejected events are listed on stderr; the exit status is
//! 1 if any event was rejected, 2 if the whole body was.
//!
//! `topics` runs the built-in topic classifier (`portrait_core::topics`, the same code the SDK
//! runs in the browser) on pages given as JSON Lines with the fields `id, url, title,
//! description, keywords, headings` (all optional but `id`), and writes one line per page:
//! `{"id", "top_level_ids": [...], "label_ids": [...]}`, each list best first (at most three
//! top-level topics; `label_ids` holds them and the finer topics). A line that is not a JSON
//! object is reported on stderr with its number and skipped; the exit status is then 1.
//! `topics --scores` adds `label_scores`, the score of each of `label_ids`. `topics
//! --labels-of LABELLED` predicts only within the top-level topics that the labelled JSON
//! Lines set LABELLED (rows with `top_level_ids` / `label_ids`, like `dev.jsonl`) uses, as if
//! the model knew no others: for scoring against a set labelled the same way, whose labels
//! cannot name every topic (`dev.jsonl`'s sources name 17 of the 22).
//!
//! The beacon carries one `sentAt` for its batch and a count of events the SDK dropped; in
//! JSON they are the top-level `sentAt` and `dropped` fields (`dropped` is Portrait's own).

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::process::ExitCode;

use portrait_core::{Decoded, Timestamp, beacon, segment, topics};

mod fit;

const USAGE: &str = "usage: portrait decode|encode|topics [FILE]   (FILE defaults to stdin)
       portrait topics [--scores] [--labels-of LABELLED]… [FILE]
       portrait fit-propensity [FILE] [--features a,b,…] [--l2 X]
       portrait check-config FILE";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("fit-propensity") => return fit::run(&args[1..]),
        Some("topics") => return topics(&args[1..]),
        _ => {}
    }
    let (command, file) = match args.as_slice() {
        [command] => (command.as_str(), None),
        [command, file] => (command.as_str(), Some(file.as_str())),
        _ => return usage_error(),
    };
    let input = match read_input(file) {
        Ok(input) => input,
        Err(e) => {
            eprintln!("portrait: cannot read {}: {e}", file.unwrap_or("stdin"));
            return ExitCode::from(2);
        }
    };
    match (command, file) {
        ("check-config", Some(file)) => return check_config(file, &input),
        ("check-config", None) => return usage_error(),
        _ => {}
    }
    let result = match command {
        "decode" => beacon::decode(&input).map(|decoded| {
            let mut json = segment::batch_json(&decoded.events);
            if decoded.dropped > 0 {
                json["dropped"] = decoded.dropped.into();
            }
            let mut text = serde_json::to_vec_pretty(&json).expect("serialising to memory cannot fail");
            text.push(b'\n');
            (text, decoded)
        }),
        "encode" => encode(&input),
        _ => return usage_error(),
    };
    match result {
        Ok((output, decoded)) => {
            for rejected in &decoded.rejected {
                eprintln!("rejected {}: {}", rejected.error.kind.code(), rejected.error);
            }
            if let Err(e) = std::io::stdout().write_all(&output) {
                eprintln!("portrait: cannot write: {e}");
                return ExitCode::from(2);
            }
            ExitCode::from(u8::from(!decoded.rejected.is_empty()))
        }
        Err(error) => {
            eprintln!("portrait: {}: {error}", error.kind.code());
            ExitCode::from(2)
        }
    }
}

/// JSON → beacon. The beacon's `sentAt` is the first event's (they share one per batch).
fn encode(input: &[u8]) -> Result<(Vec<u8>, Decoded), portrait_core::Error> {
    // This run's arrival, in the ids of events without a `messageId` or a `timestamp` (each
    // such event is a new one): the clock, in nanoseconds.
    let arrival =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
    let decoded = segment::decode_batch(input, arrival)?;
    let dropped = serde_json::from_slice::<serde_json::Value>(input)
        .ok()
        .and_then(|json| json.get("dropped")?.as_u64())
        .map_or(0, |n| u32::try_from(n).unwrap_or(u32::MAX));
    let sent_at: Option<Timestamp> = decoded.events.first().and_then(|e| e.sent_at);
    if decoded.events.iter().any(|e| e.sent_at != sent_at) {
        eprintln!("portrait: events have different sentAt values; the beacon keeps the first");
    }
    let body = beacon::encode(&beacon::Batch { sent_at, dropped, events: decoded.events.clone() });
    Ok((body, decoded))
}

/// `portrait topics [--scores] [--labels-of LABELLED]… [FILE]`. `--scores`: also
/// `label_scores`, each label's score (as `pageTopics()` gives it in the browser), for
/// comparing the two. `--labels-of`: only within the top-level topics LABELLED's rows are
/// labelled with (several files: any of theirs), as if the model knew no others.
fn topics(args: &[String]) -> ExitCode {
    let mut model =
        topics::Model::decode(topics::BUILTIN_MODEL).expect("the built-in model is tested to decode");
    let (mut scores, mut file) = (false, None);
    let mut labels = BTreeSet::new();
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--scores" => scores = true,
            "--labels-of" => {
                let Some(labelled) = args.next() else { return usage_error() };
                if let Err(problem) = read_labels(labelled, &mut labels) {
                    eprintln!("portrait: {problem}");
                    return ExitCode::from(2);
                }
            }
            _ if file.is_none() && !arg.starts_with("--") => file = Some(arg.as_str()),
            _ => return usage_error(),
        }
    }
    if !labels.is_empty()
        && let Err(id) = model.restrict(&labels)
    {
        eprintln!("portrait: --labels-of: label {id} is not a topic of the model");
        return ExitCode::from(2);
    }
    match read_input(file) {
        Ok(input) => classify_pages(&model, &input, scores),
        Err(e) => {
            eprintln!("portrait: cannot read {}: {e}", file.unwrap_or("stdin"));
            ExitCode::from(2)
        }
    }
}

/// Adds the labels of the labelled JSON Lines set at `path` (each row's `top_level_ids` and
/// `label_ids`, lists of topic ids, as in `dev.jsonl`) to `labels`. The error names the file
/// and, for a row, its line.
fn read_labels(path: &str, labels: &mut BTreeSet<u16>) -> Result<(), String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {path}: {e}"))?;
    let mut found = false;
    for (n, line) in text.lines().enumerate().filter(|(_, line)| !line.trim().is_empty()) {
        let at = |problem: String| format!("{path}:{}: {problem}", n + 1);
        let row: serde_json::Value = serde_json::from_str(line).map_err(|e| at(e.to_string()))?;
        if !row.is_object() {
            return Err(at("not a JSON object".to_owned()));
        }
        for field in ["top_level_ids", "label_ids"] {
            let ids = match row.get(field) {
                None => continue,
                Some(serde_json::Value::Array(ids)) => ids,
                Some(other) => return Err(at(format!("`{field}` is {other}, not a list of topic ids"))),
            };
            for value in ids {
                let id = value.as_u64().and_then(|id| u16::try_from(id).ok());
                labels.insert(id.ok_or_else(|| at(format!("`{field}` holds {value}, not a topic id")))?);
                found = true;
            }
        }
    }
    match found {
        true => Ok(()),
        false => Err(format!("{path}: no row has `top_level_ids` or `label_ids`")),
    }
}

fn classify_pages(model: &topics::Model, input: &[u8], scores: bool) -> ExitCode {
    let mut status = ExitCode::SUCCESS;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    for (n, line) in
        input.split(|&b| b == b'\n').enumerate().filter(|(_, line)| !line.trim_ascii().is_empty())
    {
        let page: serde_json::Value = match serde_json::from_slice(line) {
            Ok(page @ serde_json::Value::Object(_)) => page,
            Ok(_) => {
                eprintln!("portrait: line {}: not a JSON object", n + 1);
                status = ExitCode::from(1);
                continue;
            }
            Err(e) => {
                eprintln!("portrait: line {}: {e}", n + 1);
                status = ExitCode::from(1);
                continue;
            }
        };
        // Answered all the same (the answers stay in the input's order), but reported.
        if !page.get("id").is_some_and(|id| id.is_string() || id.is_number()) {
            eprintln!("portrait: line {}: no `id` (a string or a number)", n + 1);
            status = ExitCode::from(1);
        }
        if let Some(problem) = topics::PageText::json_problem(&page) {
            eprintln!("portrait: line {}: {problem}", n + 1);
            status = ExitCode::from(1);
        }
        let found = model.classify(&topics::PageText::from_json(&page).features());
        let ids = |scored: &[topics::Scored]| scored.iter().map(|s| s.id).collect::<Vec<_>>();
        let mut answer = serde_json::json!({"id": page["id"], "top_level_ids": ids(&found.top_level), "label_ids": ids(&found.labels)});
        if scores {
            answer["label_scores"] = found.labels.iter().map(|s| s.score).collect();
        }
        if writeln!(out, "{answer}").is_err() {
            return ExitCode::from(2);
        }
    }
    status
}

fn read_input(file: Option<&str>) -> std::io::Result<Vec<u8>> {
    let mut input = Vec::new();
    match file {
        Some(path) => input = std::fs::read(path)?,
        None => {
            std::io::stdin().read_to_end(&mut input)?;
        }
    }
    Ok(input)
}

/// `portrait check-config FILE`: the collector's own loader on a configuration file.
fn check_config(file: &str, input: &[u8]) -> ExitCode {
    let Ok(text) = std::str::from_utf8(input) else {
        eprintln!("{file}: not UTF-8 text");
        return ExitCode::from(1);
    };
    match portrait_core::config::Config::parse(text) {
        Ok(config) => {
            for workspace in &config.workspaces {
                println!(
                    "{file}: workspace {}: {} sources, {} audiences, {} webhooks",
                    workspace.id,
                    workspace.sources.len(),
                    workspace.audiences.len(),
                    workspace.webhooks.len()
                );
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            let key = if e.key.is_empty() { String::new() } else { format!("{}: ", e.key) };
            eprintln!("{file}:{}:{}: {key}{}", e.line, e.column, e.message);
            ExitCode::from(1)
        }
    }
}

fn usage_error() -> ExitCode {
    eprintln!("{USAGE}");
    ExitCode::from(2)
}
