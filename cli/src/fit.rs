//! `portrait fit-propensity [FILE] [--features a,b,…] [--l2 X]`: fits the conversion
//! propensity model (`portrait_core::predict`) on labelled profiles and prints it as TOML
//! to paste under `[workspaces.scoring.propensity]`.
//!
//! FILE (default: standard input) holds JSON Lines, one exported profile per line with its
//! label: `{"profile": <the JSON of GET /v1/profiles/…>, "converted": true|false}` (`"label"`
//! is read when `"converted"` is absent; 1 and 0 stand for true and false). Only the profile's
//! `tags` (`[{name, value, …}]`) are read, by the rules of `predict::feature_value`.
//! `--features` lists the features (default: `predict::DEFAULT_FEATURES`); `--l2` is the
//! ridge penalty on standardised coefficients, in rows (default 1).
//!
//! Exit status: 0 with the snippet on stdout; 1 when a line is bad (each one is reported on
//! stderr as `portrait: line N: …`, and nothing is fitted) or the rows cannot be fitted (none,
//! or one class); 2 for bad arguments or an unreadable file.

use std::fmt::Write as _;
use std::io::Write as _;
use std::process::ExitCode;

use portrait_core::predict::{self, FitError};
use serde_json::Value as Json;

const USAGE: &str =
    "usage: portrait fit-propensity [FILE] [--features a,b,…] [--l2 X]   (FILE defaults to stdin)";
const DEFAULT_L2: f64 = 1.0;
const FOLDS: usize = 5;
/// Significant digits of the printed numbers.
const DIGITS: usize = 4;

struct Options {
    file: Option<String>,
    features: Vec<String>,
    l2: f64,
}

pub fn run(args: &[String]) -> ExitCode {
    let options = match parse_args(args) {
        Ok(options) => options,
        Err(message) => {
            eprintln!("portrait: {message}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let input = match super::read_input(options.file.as_deref()) {
        Ok(input) => input,
        Err(e) => {
            eprintln!("portrait: cannot read {}: {e}", options.file.as_deref().unwrap_or("stdin"));
            return ExitCode::from(2);
        }
    };
    let mut rows = Vec::new();
    let mut bad_lines = 0;
    for (n, line) in
        input.split(|&b| b == b'\n').enumerate().filter(|(_, line)| !line.trim_ascii().is_empty())
    {
        match read_row(line, &options.features) {
            Ok(row) => rows.push(row),
            Err(message) => {
                eprintln!("portrait: line {}: {message}", n + 1);
                bad_lines += 1;
            }
        }
    }
    if bad_lines > 0 {
        eprintln!("portrait: {bad_lines} bad line(s): nothing fitted");
        return ExitCode::from(1);
    }
    let fitted = match predict::fit(&rows, &options.features, options.l2) {
        Ok(fitted) => fitted,
        Err(error) => {
            eprintln!("portrait: {error}");
            return ExitCode::from(1);
        }
    };
    let cv = predict::cross_validated_auc(&rows, &options.features, options.l2, FOLDS);
    let text = snippet(&fitted, cv, options.l2);
    if let Err(e) = std::io::stdout().write_all(text.as_bytes()) {
        eprintln!("portrait: cannot write: {e}");
        return ExitCode::from(2);
    }
    ExitCode::SUCCESS
}

fn parse_args(args: &[String]) -> Result<Options, String> {
    let mut options = Options { file: None, features: Vec::new(), l2: DEFAULT_L2 };
    let mut features = None;
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((flag, value)) if arg.starts_with("--") => (flag, Some(value.to_owned())),
            _ => (arg.as_str(), None),
        };
        let mut value =
            || inline.clone().or_else(|| args.next().cloned()).ok_or(format!("{flag} needs a value"));
        match flag {
            "--features" => features = Some(value()?),
            "--l2" => {
                let text = value()?;
                options.l2 = text
                    .parse()
                    .ok()
                    .filter(|l2: &f64| l2.is_finite() && *l2 > 0.0)
                    .ok_or(format!("--l2 must be a number above 0, not `{text}`"))?;
            }
            _ if arg.starts_with("--") => return Err(format!("unknown option {flag}")),
            _ if options.file.is_none() => options.file = Some(arg.clone()),
            _ => return Err(format!("one FILE at most (`{arg}` is a second)")),
        }
    }
    options.features = match features {
        Some(list) => list.split(',').map(|f| f.trim().to_owned()).collect(),
        None => predict::DEFAULT_FEATURES.iter().map(|f| f.to_string()).collect(),
    };
    predict::check_features(&options.features).map_err(|error| format!("--features: {error}"))?;
    Ok(options)
}

/// One line: the feature values of the profile's tags, and whether it converted.
fn read_row(line: &[u8], features: &[String]) -> Result<(Vec<f64>, bool), String> {
    let json: Json = serde_json::from_slice(line).map_err(|e| e.to_string())?;
    let Json::Object(object) = &json else {
        return Err("not a JSON object".into());
    };
    let converted = label(object)?;
    let Some(Json::Object(profile)) = object.get("profile") else {
        return Err("no `profile` object".into());
    };
    let Some(Json::Array(tags)) = profile.get("tags") else {
        return Err("`profile.tags` is missing or not a list".into());
    };
    let mut named = Vec::with_capacity(tags.len());
    for (i, tag) in tags.iter().enumerate() {
        let Some(Json::String(name)) = tag.get("name") else {
            return Err(format!("`profile.tags[{i}]` is not a tag: expected {{\"name\": …, \"value\": …}}"));
        };
        named.push((name.as_str(), tag.get("value").unwrap_or(&Json::Null)));
    }
    let values = features.iter().map(|feature| predict::feature_value(&named, feature)).collect();
    Ok((values, converted))
}

/// `converted`, else `label`: true or false (1 or 0).
fn label(object: &serde_json::Map<String, Json>) -> Result<bool, String> {
    let read = |key: &str| match object.get(key) {
        None => Ok(None),
        Some(Json::Bool(flag)) => Ok(Some(*flag)),
        Some(Json::Number(n)) if n.as_f64() == Some(1.0) => Ok(Some(true)),
        Some(Json::Number(n)) if n.as_f64() == Some(0.0) => Ok(Some(false)),
        Some(_) => Err(format!("`{key}` must be true or false")),
    };
    match (read("converted")?, read("label")?) {
        (Some(converted), Some(label)) if converted != label => {
            Err("`converted` and `label` disagree".into())
        }
        (Some(converted), _) => Ok(converted),
        (None, Some(label)) => Ok(label),
        (None, None) => Err("no label: expected \"converted\": true or false (or \"label\")".into()),
    }
}

/// The TOML lines, after comments on where they go and how well they fit.
fn snippet(fitted: &predict::Fitted, cv: Result<f64, FitError>, l2: f64) -> String {
    let mut text = String::new();
    let _ = writeln!(
        text,
        "# conversion propensity, fitted by `portrait fit-propensity` (l2 {l2}): paste under \
         [workspaces.scoring.propensity]"
    );
    let cv = match cv {
        Ok(auc) => format!("{FOLDS}-fold CV AUC {auc:.3}"),
        Err(error) => format!("{FOLDS}-fold CV AUC not computed: {error}"),
    };
    let _ = writeln!(
        text,
        "# rows {}, positives {}, log loss {:.4}, AUC {:.3} (training data); {cv}",
        fitted.rows, fitted.positives, fitted.log_loss, fitted.auc
    );
    if !fitted.constant.is_empty() {
        let _ = writeln!(
            text,
            "# the same in every row, so coefficient 0 (no such tag?): {}",
            fitted.constant.join(", ")
        );
    }
    text.push_str(&fitted.model.rounded(DIGITS).to_toml());
    text
}
