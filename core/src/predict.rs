//! Conversion propensity: a logistic model over a profile's tags whose numbers live in the
//! workspace configuration, and the fit that estimates them from labelled profiles.
//!
//! `conversion_propensity` = σ(intercept + Σ coefficient_f × feature_f), σ(z) = 1 / (1 + e^−z),
//! a number in (0, 1). Each feature is a tag read by name ([`feature_value`]):
//! - a number tag is its value: `engagement_score` (≥ 0), `lead_score` (0–100),
//!   `visits_per_week`, `page_views`;
//! - a boolean tag is 1 or 0: `active_7d`;
//! - a text tag is one-hot, written `tag=value`: `intent_stage=decision` is 1 when the tag
//!   `intent_stage` has the value `"decision"`, else 0; likewise `intent_stage=consideration`,
//!   `lifecycle=known`;
//! - a missing tag is 0, and so is a tag of another type (text read as a number, a list).
//!
//! In the configuration:
//! ```toml
//! [workspaces.scoring.propensity]
//! intercept = -3.2
//! coefficients = { lead_score = 0.04, active_7d = 0.8, "intent_stage=decision" = 1.3 }
//! ```
//! `portrait fit-propensity` (cli/src/fit.rs) estimates these numbers with [`fit`] from
//! exported profiles labelled converted or not, and prints them in this form
//! ([`Propensity::to_toml`]).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde_json::Value as Json;

/// The features the tag system computes, the default of `portrait fit-propensity`.
pub const DEFAULT_FEATURES: [&str; 8] = [
    "engagement_score",
    "lead_score",
    "visits_per_week",
    "active_7d",
    "intent_stage=consideration",
    "intent_stage=decision",
    "lifecycle=known",
    "page_views",
];

/// At most this many features in a model (bounds the work per profile).
pub const MAX_FEATURES: usize = 64;
/// At most this many bytes in a tag name, and in the value of a one-hot feature.
pub const MAX_NAME_BYTES: usize = 64;
/// A contribution (or intercept) is clamped to ±this, so that an extreme tag value cannot
/// make the score NaN (σ is 0 or 1 long before).
const MAX_CONTRIBUTION: f64 = 1e6;

/// The configuration part: `[workspaces.scoring.propensity]`.
#[derive(Clone, Debug, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct Propensity {
    pub intercept: f64,
    /// Feature name (see the module documentation) → coefficient, per unit of the feature.
    pub coefficients: BTreeMap<String, f64>,
}

impl Propensity {
    /// What is wrong with the model, as `(field, message)`: a number that is not finite, a
    /// feature name that is empty or malformed, more than [`MAX_FEATURES`] features.
    pub fn problem(&self) -> Option<(String, String)> {
        if !self.intercept.is_finite() {
            return Some(("intercept".into(), "must be a finite number".into()));
        }
        if self.coefficients.len() > MAX_FEATURES {
            return Some((
                "coefficients".into(),
                format!("at most {MAX_FEATURES} features, not {}", self.coefficients.len()),
            ));
        }
        for (name, coefficient) in &self.coefficients {
            let field = format!("coefficients.{}", toml_key(name));
            if let Some(message) = feature_name_problem(name) {
                return Some((field, message));
            }
            if !coefficient.is_finite() {
                return Some((field, "must be a finite number".into()));
            }
        }
        None
    }

    /// The probability, and the features that contributed (name, coefficient × value), largest
    /// |contribution| first (ties by name), for explanations; features contributing 0 are left
    /// out. `feature` gives a feature's value by name (e.g. [`feature_value`] over the tags);
    /// a value that is not finite counts as 0.
    pub fn score(&self, feature: &dyn Fn(&str) -> f64) -> (f64, Vec<(String, f64)>) {
        let mut z = bounded(self.intercept);
        let mut contributions = Vec::new();
        for (name, &coefficient) in &self.coefficients {
            let value = feature(name);
            if !value.is_finite() {
                continue;
            }
            let contribution = bounded(coefficient * value);
            if contribution != 0.0 {
                z += contribution;
                contributions.push((name.clone(), contribution));
            }
        }
        contributions.sort_by(|a, b| b.1.abs().total_cmp(&a.1.abs()));
        (sigmoid(z), contributions)
    }

    /// The same model with each number rounded to `digits` significant digits (at least 1),
    /// for a configuration people read.
    pub fn rounded(&self, digits: usize) -> Propensity {
        let round = |x: f64| match x.is_finite() && x != 0.0 {
            true => format!("{x:.*e}", digits.max(1) - 1).parse().unwrap_or(x),
            false => x,
        };
        Propensity {
            intercept: round(self.intercept),
            coefficients: self.coefficients.iter().map(|(name, &c)| (name.clone(), round(c))).collect(),
        }
    }

    /// The model as TOML lines for under `[workspaces.scoring.propensity]`: the intercept,
    /// then one dotted key per coefficient (`coefficients."intent_stage=decision" = 1.3`).
    pub fn to_toml(&self) -> String {
        let mut out = format!("intercept = {}\n", toml_number(self.intercept));
        if self.coefficients.is_empty() {
            out.push_str("coefficients = {}\n");
        }
        for (name, &coefficient) in &self.coefficients {
            out.push_str(&format!("coefficients.{} = {}\n", toml_key(name), toml_number(coefficient)));
        }
        out
    }

    /// intercept + Σ coefficient × value for values in the order of `names` (fitting only:
    /// no clamping, every name present).
    fn linear(&self, values: &[f64], names: &[String]) -> f64 {
        self.intercept + names.iter().zip(values).map(|(name, x)| self.coefficients[name] * x).sum::<f64>()
    }
}

/// What is wrong with a feature name, if anything: `tag` or `tag=value`, the tag 1–64
/// characters of a-z, 0-9 and `_`, the value 1–64 bytes without control characters.
pub fn feature_name_problem(name: &str) -> Option<String> {
    let (tag, value) = match name.split_once('=') {
        Some((tag, value)) => (tag, Some(value)),
        None => (name, None),
    };
    let tag_ok = (1..=MAX_NAME_BYTES).contains(&tag.len())
        && tag.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if !tag_ok {
        return Some(format!(
            "expected a tag name of 1–{MAX_NAME_BYTES} characters of a-z, 0-9 and _, or `tag=value` for \
             a text tag"
        ));
    }
    if let Some(value) = value
        && (!(1..=MAX_NAME_BYTES).contains(&value.len()) || value.chars().any(char::is_control))
    {
        return Some(format!(
            "the value in `tag=value` must be 1–{MAX_NAME_BYTES} bytes without control characters"
        ));
    }
    None
}

/// A feature's value read from tags given as (name, value) pairs (the first tag of a name
/// counts): a number tag is its number; a boolean tag 1 or 0; `tag=value` is 1 when the tag is
/// the text `value`, else 0; a missing tag, or one of another type, is 0.
pub fn feature_value(tags: &[(&str, &Json)], feature: &str) -> f64 {
    let tag = |name: &str| tags.iter().find(|(n, _)| *n == name).map(|(_, value)| *value);
    match feature.split_once('=') {
        Some((name, wanted)) => match tag(name) {
            Some(Json::String(text)) if text == wanted => 1.0,
            _ => 0.0,
        },
        None => match tag(feature) {
            Some(Json::Number(number)) => number.as_f64().filter(|x| x.is_finite()).unwrap_or(0.0),
            Some(Json::Bool(flag)) => f64::from(u8::from(*flag)),
            _ => 0.0,
        },
    }
}

/// A fitted model and how well it fits its training data.
#[derive(Clone, Debug, PartialEq)]
pub struct Fitted {
    /// Coefficients in the raw units of each feature (per point of `lead_score`, per page view).
    pub model: Propensity,
    /// Mean log loss (natural log) of `model` on the training rows.
    pub log_loss: f64,
    /// Area under the ROC curve of `model` on the training rows.
    pub auc: f64,
    pub rows: usize,
    /// Rows labelled converted.
    pub positives: usize,
    /// Features with the same value in every row: nothing to learn, coefficient 0.
    pub constant: Vec<String>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum FitError {
    NoRows,
    OneClass {
        positives: usize,
        rows: usize,
    },
    BadFeature {
        feature: String,
        message: String,
    },
    TooManyFeatures {
        count: usize,
    },
    /// `l2` must be finite and above 0.
    BadL2 {
        l2: f64,
    },
    /// Row `row` (from 0) has `found` values for `expected` features.
    RowWidth {
        row: usize,
        expected: usize,
        found: usize,
    },
    NonFinite {
        row: usize,
        feature: String,
    },
    NoConvergence {
        iterations: usize,
    },
}

impl fmt::Display for FitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FitError::NoRows => write!(f, "no rows to fit on"),
            FitError::OneClass { positives, rows } => {
                let class = if *positives == 0 { "not converted" } else { "converted" };
                write!(
                    f,
                    "all {rows} rows are labelled {class}: the fit needs both converted and not \
                     converted profiles"
                )
            }
            FitError::BadFeature { feature, message } => write!(f, "feature `{feature}`: {message}"),
            FitError::TooManyFeatures { count } => {
                write!(f, "{count} features: a model has at most {MAX_FEATURES}")
            }
            FitError::BadL2 { l2 } => write!(f, "l2 must be a finite number above 0, not {l2}"),
            FitError::RowWidth { row, expected, found } => {
                write!(f, "rows[{row}] has {found} values for {expected} features")
            }
            FitError::NonFinite { row, feature } => {
                write!(f, "rows[{row}]: the value of `{feature}` is not a finite number")
            }
            FitError::NoConvergence { iterations } => {
                write!(f, "the fit did not converge in {iterations} iterations")
            }
        }
    }
}

impl std::error::Error for FitError {}

const MAX_ITERATIONS: usize = 100;

/// Fits a [`Propensity`] by L2-regularised logistic regression: each row is the feature
/// values in the order of `feature_names` and whether the profile converted.
///
/// Newton's method (IRLS) with a backtracking line search, from the base rate: deterministic.
/// Features are standardised (mean 0, standard deviation 1) for the fit, and the coefficients
/// mapped back to raw units; a feature constant in the data gets 0. The objective is the
/// summed log loss + `l2`/2 × Σ (standardised coefficient)², the intercept not penalised, so
/// `l2` is in units of rows: 1 is a light prior that keeps the fit defined when a feature
/// separates the classes, and the fit does not depend on the units of a feature.
pub fn fit(rows: &[(Vec<f64>, bool)], feature_names: &[String], l2: f64) -> Result<Fitted, FitError> {
    check_features(feature_names)?;
    if !(l2.is_finite() && l2 > 0.0) {
        return Err(FitError::BadL2 { l2 });
    }
    if rows.is_empty() {
        return Err(FitError::NoRows);
    }
    let width = feature_names.len();
    for (row, (values, _)) in rows.iter().enumerate() {
        if values.len() != width {
            return Err(FitError::RowWidth { row, expected: width, found: values.len() });
        }
        if let Some(j) = values.iter().position(|x| !x.is_finite()) {
            return Err(FitError::NonFinite { row, feature: feature_names[j].clone() });
        }
    }
    let positives = rows.iter().filter(|(_, converted)| *converted).count();
    if positives == 0 || positives == rows.len() {
        return Err(FitError::OneClass { positives, rows: rows.len() });
    }

    // Standardise the features that vary.
    let n = rows.len() as f64;
    let varying: Vec<usize> =
        (0..width).filter(|&j| rows.iter().any(|(x, _)| x[j] != rows[0].0[j])).collect();
    let mean: Vec<f64> = varying.iter().map(|&j| rows.iter().map(|(x, _)| x[j]).sum::<f64>() / n).collect();
    let scale: Vec<f64> = varying
        .iter()
        .zip(&mean)
        .map(|(&j, m)| (rows.iter().map(|(x, _)| (x[j] - m).powi(2)).sum::<f64>() / n).sqrt())
        .collect();
    let dim = varying.len() + 1;
    let mut design = Vec::with_capacity(rows.len() * dim);
    for (x, _) in rows {
        design.push(1.0);
        design.extend(varying.iter().zip(mean.iter().zip(&scale)).map(|(&j, (m, s))| (x[j] - m) / s));
    }
    let labels: Vec<bool> = rows.iter().map(|(_, converted)| *converted).collect();
    let beta = newton(&design, &labels, dim, l2)?;

    // Back to raw units.
    let mut coefficients: BTreeMap<String, f64> =
        feature_names.iter().map(|name| (name.clone(), 0.0)).collect();
    let mut intercept = beta[0];
    for (k, &j) in varying.iter().enumerate() {
        let raw = beta[k + 1] / scale[k];
        coefficients.insert(feature_names[j].clone(), raw);
        intercept -= raw * mean[k];
    }
    let model = Propensity { intercept, coefficients };
    let scored: Vec<(f64, bool)> =
        rows.iter().map(|(x, converted)| (model.linear(x, feature_names), *converted)).collect();
    let log_loss = scored.iter().map(|&(z, y)| loss(z, y)).sum::<f64>() / n;
    let constant = (0..width).filter(|j| !varying.contains(j)).map(|j| feature_names[j].clone()).collect();
    Ok(Fitted { model, log_loss, auc: auc(&scored), rows: rows.len(), positives, constant })
}

/// The AUC of [`fit`] judged on data it did not see: row `i` is held out in fold `i % folds`
/// (`folds` at least 2), each fold scored by the model fitted on the others, and the AUC taken
/// over all held-out scores. Deterministic; an error if any fold's fit fails.
pub fn cross_validated_auc(
    rows: &[(Vec<f64>, bool)],
    feature_names: &[String],
    l2: f64,
    folds: usize,
) -> Result<f64, FitError> {
    let folds = folds.max(2);
    if rows.is_empty() {
        return Err(FitError::NoRows);
    }
    let mut scored = Vec::with_capacity(rows.len());
    for fold in 0..folds.min(rows.len()) {
        let training: Vec<(Vec<f64>, bool)> =
            rows.iter().enumerate().filter(|(i, _)| i % folds != fold).map(|(_, row)| row.clone()).collect();
        let model = fit(&training, feature_names, l2)?.model;
        for (_, (x, converted)) in rows.iter().enumerate().filter(|(i, _)| i % folds == fold) {
            scored.push((model.linear(x, feature_names), *converted));
        }
    }
    Ok(auc(&scored))
}

/// Area under the ROC curve: the chance that a random positive scores above a random negative
/// (ties count half). NaN unless both classes are present.
pub fn auc(scored: &[(f64, bool)]) -> f64 {
    let mut sorted = scored.to_vec();
    sorted.sort_by(|a, b| a.0.total_cmp(&b.0));
    let positives = sorted.iter().filter(|(_, y)| *y).count() as f64;
    let negatives = sorted.len() as f64 - positives;
    let mut rank_sum = 0.0;
    let mut i = 0;
    while i < sorted.len() {
        let tied = sorted[i..].iter().take_while(|(s, _)| s.total_cmp(&sorted[i].0).is_eq()).count();
        let average_rank = (2 * i + tied + 1) as f64 / 2.0;
        rank_sum += average_rank * sorted[i..i + tied].iter().filter(|(_, y)| *y).count() as f64;
        i += tied;
    }
    (rank_sum - positives * (positives + 1.0) / 2.0) / (positives * negatives)
}

/// The checks [`fit`] makes on its feature list: valid names, none twice, at most
/// [`MAX_FEATURES`].
pub fn check_features(names: &[String]) -> Result<(), FitError> {
    if names.len() > MAX_FEATURES {
        return Err(FitError::TooManyFeatures { count: names.len() });
    }
    let mut seen = BTreeSet::new();
    for name in names {
        let message = match feature_name_problem(name) {
            Some(message) => message,
            None if !seen.insert(name) => "listed twice".into(),
            None => continue,
        };
        return Err(FitError::BadFeature { feature: name.clone(), message });
    }
    Ok(())
}

/// Minimises Σ loss(xᵢ·β, yᵢ) + l2/2 × Σ_{k≥1} β_k² over β (`design`: rows of `dim` values,
/// the first 1).
fn newton(design: &[f64], labels: &[bool], dim: usize, l2: f64) -> Result<Vec<f64>, FitError> {
    let objective = |beta: &[f64]| {
        let data: f64 = design.chunks_exact(dim).zip(labels).map(|(x, &y)| loss(dot(x, beta), y)).sum();
        data + l2 / 2.0 * beta[1..].iter().map(|b| b * b).sum::<f64>()
    };
    let positives = labels.iter().filter(|y| **y).count() as f64;
    let mut beta = vec![0.0; dim];
    beta[0] = (positives / (labels.len() as f64 - positives)).ln();
    let mut value = objective(&beta);
    for _ in 0..MAX_ITERATIONS {
        let mut gradient = vec![0.0; dim];
        let mut hessian = vec![0.0; dim * dim];
        for (x, &y) in design.chunks_exact(dim).zip(labels) {
            let p = sigmoid(dot(x, &beta));
            let (residual, weight) = (p - f64::from(u8::from(y)), p * (1.0 - p));
            for a in 0..dim {
                gradient[a] += residual * x[a];
                for b in 0..=a {
                    hessian[a * dim + b] += weight * x[a] * x[b];
                }
            }
        }
        for a in 1..dim {
            gradient[a] += l2 * beta[a];
            hessian[a * dim + a] += l2;
        }
        let step = solve_positive_definite(&hessian, &gradient, dim);
        let decrement = dot(&gradient, &step);
        if decrement <= 1e-12 * value.max(1.0) {
            return Ok(beta);
        }
        let mut t = 1.0;
        loop {
            let candidate: Vec<f64> = beta.iter().zip(&step).map(|(b, d)| b - t * d).collect();
            let candidate_value = objective(&candidate);
            if candidate_value <= value - 1e-4 * t * decrement {
                (beta, value) = (candidate, candidate_value);
                break;
            }
            t /= 2.0;
            if t < 1e-10 {
                // No decrease left to find at this precision: the optimum.
                return Ok(beta);
            }
        }
    }
    Err(FitError::NoConvergence { iterations: MAX_ITERATIONS })
}

/// Solves H x = g for a symmetric positive definite H given by its lower triangle (Cholesky),
/// adding a growing ridge if rounding makes it fail.
fn solve_positive_definite(h: &[f64], g: &[f64], dim: usize) -> Vec<f64> {
    let largest = (0..dim).map(|i| h[i * dim + i]).fold(f64::MIN_POSITIVE, f64::max);
    let mut ridge = 0.0;
    loop {
        if let Some(x) = cholesky_solve(h, g, dim, ridge) {
            return x;
        }
        ridge = if ridge == 0.0 { largest * 1e-12 } else { ridge * 100.0 };
    }
}

fn cholesky_solve(h: &[f64], g: &[f64], dim: usize, ridge: f64) -> Option<Vec<f64>> {
    let mut l = vec![0.0; dim * dim];
    for i in 0..dim {
        for j in 0..=i {
            let mut s = h[i * dim + j] + if i == j { ridge } else { 0.0 };
            for k in 0..j {
                s -= l[i * dim + k] * l[j * dim + k];
            }
            if i == j {
                if !(s > 0.0 && s.is_finite()) {
                    return None;
                }
                l[i * dim + i] = s.sqrt();
            } else {
                l[i * dim + j] = s / l[j * dim + j];
            }
        }
    }
    let mut x = g.to_vec();
    for i in 0..dim {
        for k in 0..i {
            x[i] -= l[i * dim + k] * x[k];
        }
        x[i] /= l[i * dim + i];
    }
    for i in (0..dim).rev() {
        for k in i + 1..dim {
            x[i] -= l[k * dim + i] * x[k];
        }
        x[i] /= l[i * dim + i];
    }
    Some(x)
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn sigmoid(z: f64) -> f64 {
    if z >= 0.0 {
        1.0 / (1.0 + (-z).exp())
    } else {
        let e = z.exp();
        e / (1.0 + e)
    }
}

/// −log P(y | z): log(1 + e^z) − y·z, without overflow.
fn loss(z: f64, converted: bool) -> f64 {
    let softplus = z.max(0.0) + (-z.abs()).exp().ln_1p();
    if converted { softplus - z } else { softplus }
}

fn bounded(x: f64) -> f64 {
    if x.is_nan() { 0.0 } else { x.clamp(-MAX_CONTRIBUTION, MAX_CONTRIBUTION) }
}

/// A TOML key: bare when it can be, else a quoted basic string.
fn toml_key(name: &str) -> String {
    if !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') {
        return name.to_owned();
    }
    let mut quoted = String::from("\"");
    for c in name.chars() {
        match c {
            '"' => quoted.push_str("\\\""),
            '\\' => quoted.push_str("\\\\"),
            c if c.is_control() => quoted.push_str(&format!("\\u{:04X}", u32::from(c))),
            c => quoted.push(c),
        }
    }
    quoted.push('"');
    quoted
}

/// A TOML float: `{:?}` always has a `.` or an exponent, both valid TOML.
fn toml_number(x: f64) -> String {
    match x {
        x if x.is_nan() => "nan".into(),
        f64::INFINITY => "inf".into(),
        f64::NEG_INFINITY => "-inf".into(),
        x => format!("{x:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn model(intercept: f64, coefficients: &[(&str, f64)]) -> Propensity {
        Propensity {
            intercept,
            coefficients: coefficients.iter().map(|(name, c)| (name.to_string(), *c)).collect(),
        }
    }

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|name| name.to_string()).collect()
    }

    /// SplitMix64: a fixed-seed generator for test data.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> f64 {
            self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
        }

        fn normal(&mut self) -> f64 {
            let (u, v) = (1.0 - self.next(), self.next());
            (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
        }
    }

    /// Rows drawn from `truth` over the features `visits` (≈ N(10, 3)), `pages` (≈ 500 ×
    /// log-normal: large units), `active` (bool) and `stage=decision` (one-hot).
    fn planted(truth: &Propensity, rows: usize, seed: u64) -> Vec<(Vec<f64>, bool)> {
        let names = names(&["visits", "pages", "active", "stage=decision"]);
        let mut rng = Rng(seed);
        (0..rows)
            .map(|_| {
                let visits = 10.0 + 3.0 * rng.normal();
                let pages = (500.0 * (0.5 * rng.normal()).exp()).round();
                let active = f64::from(u8::from(rng.next() < 0.4));
                let decision = f64::from(u8::from(rng.next() < 0.3));
                let x = vec![visits, pages, active, decision];
                let p = sigmoid(truth.linear(&x, &names));
                (x, rng.next() < p)
            })
            .collect()
    }

    fn truth() -> Propensity {
        model(-2.0, &[("visits", 0.3), ("pages", -0.004), ("active", 0.8), ("stage=decision", 1.5)])
    }

    #[test]
    fn score_of_a_known_model() {
        let m = model(-1.0, &[("lead_score", 0.04), ("intent_stage=decision", 1.5), ("active_7d", -0.5)]);
        let (score_tags, stage, yes) = (json!(50), json!("decision"), json!(true));
        let tags = [("lead_score", &score_tags), ("intent_stage", &stage), ("active_7d", &yes)];
        let (p, why) = m.score(&|f| feature_value(&tags, f));
        // z = -1 + 0.04 × 50 + 1.5 - 0.5 = 2; σ(2) = 1 / (1 + e^-2).
        assert!((p - 0.880_797_077_977_882_3).abs() < 1e-12, "{p}");
        let why: Vec<(&str, f64)> = why.iter().map(|(n, c)| (n.as_str(), *c)).collect();
        assert_eq!(why, [("lead_score", 2.0), ("intent_stage=decision", 1.5), ("active_7d", -0.5)]);

        // Largest magnitude first, whatever the sign.
        let (_, why) = m.score(&|f| if f == "active_7d" { 6.0 } else { 1.0 });
        let why: Vec<(&str, f64)> = why.iter().map(|(n, c)| (n.as_str(), *c)).collect();
        assert_eq!(why, [("active_7d", -3.0), ("intent_stage=decision", 1.5), ("lead_score", 0.04)]);

        let (p, why) = m.score(&|_| 0.0);
        assert!((p - 0.268_941_421_369_995_1).abs() < 1e-12, "σ(-1): {p}");
        assert!(why.is_empty(), "features worth 0 explain nothing");

        // Extreme values keep the score a probability; a NaN value counts as 0.
        let (p, why) = m.score(&|f| if f == "lead_score" { 1e308 } else { f64::NAN });
        assert_eq!((p, why), (1.0, vec![("lead_score".to_string(), 1e6)]));
        let (p, _) = m.score(&|f| if f == "active_7d" { 1e308 } else { 0.0 });
        assert_eq!(p, 0.0);
        let (p, _) = model(0.0, &[]).score(&|_| 1.0);
        assert_eq!(p, 0.5);
    }

    #[test]
    fn feature_values_follow_the_tag_rules() {
        let values = [
            json!(12.5),
            json!(true),
            json!(false),
            json!("decision"),
            json!("42"),
            json!(null),
            json!([1, 2]),
            json!(7),
        ];
        let tags = [
            ("engagement_score", &values[0]),
            ("active_7d", &values[1]),
            ("customer", &values[2]),
            ("intent_stage", &values[3]),
            ("lifecycle", &values[4]),
            ("country", &values[5]),
            ("interests", &values[6]),
            ("engagement_score", &values[7]),
        ];
        let cases = [
            ("engagement_score", 12.5), // a number; the first tag of a name counts
            ("active_7d", 1.0),
            ("customer", 0.0),
            ("intent_stage=decision", 1.0),
            ("intent_stage=consideration", 0.0),
            ("intent_stage=decis", 0.0), // the whole value
            ("intent_stage=Decision", 0.0),
            ("intent_stage", 0.0),   // text read as a number
            ("lifecycle", 0.0),      // "42" is text, not a number
            ("lifecycle=42", 1.0),   // … but one-hot matches it
            ("active_7d=true", 0.0), // one-hot is for text tags
            ("country", 0.0),
            ("country=null", 0.0),
            ("interests", 0.0),
            ("page_views", 0.0), // missing
            ("page_views=3", 0.0),
        ];
        for (feature, expected) in cases {
            assert_eq!(feature_value(&tags, feature), expected, "{feature}");
        }
        assert_eq!(feature_value(&[], "lead_score"), 0.0);
        let stage = json!("a=b");
        assert_eq!(feature_value(&[("x", &stage)], "x=a=b"), 1.0, "the value may hold `=`");
    }

    #[test]
    fn fit_recovers_a_planted_model() {
        let truth = truth();
        let names = names(&["visits", "pages", "active", "stage=decision"]);
        let rows = planted(&truth, 20_000, 7);
        let fitted = fit(&rows, &names, 1.0).unwrap();
        // Standard errors at 20,000 rows are about 0.01 (visits), 0.0001 (pages), 0.04
        // (active, decision, intercept).
        let close = |name: &str, tolerance: f64| {
            let (got, want) = (fitted.model.coefficients[name], truth.coefficients[name]);
            assert!((got - want).abs() < tolerance, "{name}: fitted {got}, planted {want}");
        };
        close("visits", 0.04);
        close("pages", 0.0004);
        close("active", 0.15);
        close("stage=decision", 0.15);
        assert!((fitted.model.intercept - truth.intercept).abs() < 0.25, "{}", fitted.model.intercept);
        assert_eq!((fitted.rows, fitted.positives), (20_000, rows.iter().filter(|r| r.1).count()));
        assert!(fitted.constant.is_empty());
        assert_eq!(fitted.model.problem(), None);
        // The fit is the optimum on its data: no worse than the truth, and the reported
        // figures are those of the raw-unit model.
        let scored: Vec<(f64, bool)> = rows.iter().map(|(x, y)| (truth.linear(x, &names), *y)).collect();
        let truth_loss = scored.iter().map(|&(z, y)| loss(z, y)).sum::<f64>() / rows.len() as f64;
        assert!(fitted.log_loss <= truth_loss + 1e-6, "{} > {truth_loss}", fitted.log_loss);
        assert!(fitted.log_loss > truth_loss - 0.01);
        assert!((fitted.auc - auc(&scored)).abs() < 0.01, "{} vs {}", fitted.auc, auc(&scored));
        let p0 = sigmoid(fitted.model.linear(&rows[0].0, &names));
        let (p0_score, _) = fitted.model.score(&|f| rows[0].0[names.iter().position(|n| n == f).unwrap()]);
        assert!((p0 - p0_score).abs() < 1e-12);
        // The optimum of the documented objective: no step along a standardised coefficient
        // (or the intercept) lowers the summed log loss + l2/2 × Σ (coefficient × sd)².
        let sd: Vec<f64> = (0..names.len())
            .map(|j| {
                let mean = rows.iter().map(|(x, _)| x[j]).sum::<f64>() / rows.len() as f64;
                (rows.iter().map(|(x, _)| (x[j] - mean).powi(2)).sum::<f64>() / rows.len() as f64).sqrt()
            })
            .collect();
        let penalised = |m: &Propensity, l2: f64| {
            let data: f64 = rows.iter().map(|(x, y)| loss(m.linear(x, &names), *y)).sum();
            data + l2 / 2.0 * names.iter().zip(&sd).map(|(n, s)| (m.coefficients[n] * s).powi(2)).sum::<f64>()
        };
        for l2 in [1.0, 2_000.0] {
            let optimum = fit(&rows, &names, l2).unwrap().model;
            let best = penalised(&optimum, l2);
            for (j, name) in names.iter().enumerate() {
                for step in [-1e-3, 1e-3] {
                    let mut moved = optimum.clone();
                    *moved.coefficients.get_mut(name).unwrap() += step / sd[j];
                    assert!(penalised(&moved, l2) > best, "l2 {l2}: {name} {step:+}");
                    let mut moved = optimum.clone();
                    moved.intercept += step;
                    assert!(penalised(&moved, l2) > best, "l2 {l2}: intercept {step:+}");
                }
            }
        }
        // Deterministic, bit for bit.
        assert_eq!(fit(&rows, &names, 1.0).unwrap(), fitted);
    }

    #[test]
    fn the_fit_does_not_depend_on_units_and_skips_constant_features() {
        let names = names(&["visits", "pages", "active", "stage=decision"]);
        let rows = planted(&truth(), 2_000, 11);
        let fitted = fit(&rows, &names, 1.0).unwrap();
        // Pages counted in thousands: the coefficient is 1000 times larger, nothing else moves.
        let thousands: Vec<(Vec<f64>, bool)> =
            rows.iter().map(|(x, y)| (vec![x[0], x[1] / 1000.0, x[2], x[3]], *y)).collect();
        let rescaled = fit(&thousands, &names, 1.0).unwrap();
        let (a, b) = (fitted.model.coefficients["pages"], rescaled.model.coefficients["pages"]);
        assert!((b / a - 1000.0).abs() < 1e-6, "{a} {b}");
        assert!((fitted.model.intercept - rescaled.model.intercept).abs() < 1e-9);
        assert!((fitted.log_loss - rescaled.log_loss).abs() < 1e-12);

        // A feature that never varies gets 0 and is reported.
        let mut with_constant = names.clone();
        with_constant.push("lifecycle=known".into());
        let rows5: Vec<(Vec<f64>, bool)> =
            rows.iter().map(|(x, y)| ([x.as_slice(), &[0.1]].concat(), *y)).collect();
        let fitted5 = fit(&rows5, &with_constant, 1.0).unwrap();
        assert_eq!(fitted5.constant, ["lifecycle=known"]);
        assert_eq!(fitted5.model.coefficients["lifecycle=known"], 0.0);
        assert!((fitted5.model.coefficients["visits"] - fitted.model.coefficients["visits"]).abs() < 1e-9);

        // More regularisation shrinks the standardised coefficients towards 0.
        let strong = fit(&rows, &names, 500.0).unwrap();
        for name in &names {
            let (light, heavy) = (fitted.model.coefficients[name], strong.model.coefficients[name]);
            assert!(heavy.abs() < light.abs() && heavy * light > 0.0, "{name}: {light} → {heavy}");
        }
    }

    #[test]
    fn a_separating_feature_still_fits() {
        let names = names(&["x"]);
        let rows: Vec<(Vec<f64>, bool)> = (0..20).map(|i| (vec![f64::from(i)], i >= 10)).collect();
        let fitted = fit(&rows, &names, 1e-3).unwrap();
        assert!(fitted.model.coefficients["x"] > 1.0, "{:?}", fitted.model);
        assert_eq!(fitted.auc, 1.0);
        assert!(fitted.log_loss < 0.05);
    }

    #[test]
    fn fit_errors() {
        let f = names(&["lead_score", "active_7d"]);
        let row = |a: f64, b: f64, y: bool| (vec![a, b], y);
        assert_eq!(fit(&[], &f, 1.0), Err(FitError::NoRows));
        assert_eq!(FitError::NoRows.to_string(), "no rows to fit on");
        let negatives = [row(1.0, 0.0, false), row(2.0, 1.0, false)];
        let error = fit(&negatives, &f, 1.0).unwrap_err();
        assert_eq!(error, FitError::OneClass { positives: 0, rows: 2 });
        assert_eq!(
            error.to_string(),
            "all 2 rows are labelled not converted: the fit needs both converted and not converted profiles"
        );
        let positives = [row(1.0, 0.0, true), row(2.0, 1.0, true), row(3.0, 1.0, true)];
        let error = fit(&positives, &f, 1.0).unwrap_err();
        assert_eq!(error, FitError::OneClass { positives: 3, rows: 3 });
        assert!(error.to_string().starts_with("all 3 rows are labelled converted:"), "{error}");
        let good = [row(1.0, 0.0, true), row(2.0, 1.0, false)];
        assert!(fit(&good, &f, 1.0).is_ok());

        let error = fit(&[row(1.0, 0.0, true), row(f64::NAN, 1.0, false)], &f, 1.0).unwrap_err();
        assert_eq!(error, FitError::NonFinite { row: 1, feature: "lead_score".into() });
        assert_eq!(error.to_string(), "rows[1]: the value of `lead_score` is not a finite number");
        let error = fit(&[row(1.0, f64::INFINITY, true), row(2.0, 1.0, false)], &f, 1.0).unwrap_err();
        assert_eq!(error, FitError::NonFinite { row: 0, feature: "active_7d".into() });
        let error = fit(&[row(1.0, 0.0, true), (vec![1.0], false)], &f, 1.0).unwrap_err();
        assert_eq!(error, FitError::RowWidth { row: 1, expected: 2, found: 1 });
        assert_eq!(error.to_string(), "rows[1] has 1 values for 2 features");

        for l2 in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            let error = fit(&good, &f, l2).unwrap_err();
            assert!(matches!(error, FitError::BadL2 { .. }), "{l2}: {error}");
        }
        assert_eq!(FitError::BadL2 { l2: 0.0 }.to_string(), "l2 must be a finite number above 0, not 0");

        for (bad, message) in [
            ("", "expected a tag name"),
            ("Lead_Score", "expected a tag name"),
            ("=decision", "expected a tag name"),
            ("intent_stage=", "the value in `tag=value`"),
            ("lead_score", "listed twice"),
        ] {
            let list = names(&["lead_score", bad]);
            let error = fit(&[(vec![1.0, 0.0], true), (vec![0.0, 1.0], false)], &list, 1.0).unwrap_err();
            let FitError::BadFeature { feature, message: got } = &error else { panic!("{bad}: {error}") };
            assert_eq!(feature, bad);
            assert!(got.starts_with(message), "{bad}: {got}");
            assert!(error.to_string().starts_with(&format!("feature `{bad}`: ")), "{error}");
        }
        let many: Vec<String> = (0..65).map(|i| format!("f{i}")).collect();
        assert_eq!(fit(&[], &many, 1.0), Err(FitError::TooManyFeatures { count: 65 }));
        assert_eq!(
            FitError::TooManyFeatures { count: 65 }.to_string(),
            "65 features: a model has at most 64"
        );
    }

    #[test]
    fn problems_of_a_configured_model() {
        let valid =
            model(-3.2, &[("lead_score", 0.04), ("intent_stage=decision", 1.3), ("x=United Kingdom", 0.2)]);
        assert_eq!(valid.problem(), None);
        assert_eq!(model(0.0, &[]).problem(), None);
        let sixty_four: Vec<(String, f64)> = (0..64).map(|i| (format!("f{i}"), 0.1)).collect();
        let sixty_four = Propensity { intercept: 0.0, coefficients: sixty_four.into_iter().collect() };
        assert_eq!(sixty_four.problem(), None);
        let mut sixty_five = sixty_four.clone();
        sixty_five.coefficients.insert("f64".into(), 0.1);

        let long = "a".repeat(65);
        let long_value = format!("a={long}");
        let cases: Vec<(Propensity, String, &str)> = vec![
            (model(f64::NAN, &[]), "intercept".into(), "must be a finite number"),
            (model(f64::INFINITY, &[("a", 1.0)]), "intercept".into(), "must be a finite number"),
            (
                model(0.0, &[("lead_score", f64::NEG_INFINITY)]),
                "coefficients.lead_score".into(),
                "must be a finite",
            ),
            (model(0.0, &[("a=b", f64::NAN)]), "coefficients.\"a=b\"".into(), "must be a finite number"),
            (model(0.0, &[("", 1.0)]), "coefficients.\"\"".into(), "expected a tag name"),
            (model(0.0, &[("Lead Score", 1.0)]), "coefficients.\"Lead Score\"".into(), "expected a tag name"),
            (model(0.0, &[("lead-score", 1.0)]), "coefficients.lead-score".into(), "expected a tag name"),
            (model(0.0, &[(&long, 1.0)]), format!("coefficients.{long}"), "expected a tag name"),
            (model(0.0, &[("stage=", 1.0)]), "coefficients.\"stage=\"".into(), "the value in `tag=value`"),
            (model(0.0, &[("stage=a\nb", 1.0)]), "coefficients.\"stage=a\\u000Ab\"".into(), "the value in"),
            (model(0.0, &[(&long_value, 1.0)]), format!("coefficients.\"{long_value}\""), "the value in"),
            (sixty_five, "coefficients".to_owned(), "at most 64 features, not 65"),
        ];
        for (m, field, message) in cases {
            let (got_field, got_message) = m.problem().unwrap_or_else(|| panic!("{m:?} passes"));
            assert_eq!(got_field, field);
            assert!(got_message.starts_with(message), "{field}: {got_message}");
        }
    }

    #[test]
    fn the_toml_reads_back_as_the_configuration() {
        let m = model(
            -3.25,
            &[
                ("lead_score", 0.04),
                ("intent_stage=decision", 1.0),
                ("page_views", -1e-7),
                ("q=\"a\\b\"", 2.0),
            ],
        );
        let text = m.to_toml();
        assert!(
            text.starts_with("intercept = -3.25\ncoefficients.\"intent_stage=decision\" = 1.0\n"),
            "{text}"
        );
        assert!(text.contains("\ncoefficients.page_views = -1e-7\n"), "{text}");
        assert_eq!(toml::from_str::<Propensity>(&text).unwrap(), m);
        let empty = model(1.5, &[]);
        assert_eq!(toml::from_str::<Propensity>(&empty.to_toml()).unwrap(), empty);
        // As it sits in a workspace, inline or dotted.
        #[derive(serde::Deserialize)]
        struct Scoring {
            propensity: Propensity,
        }
        let pasted = format!("[propensity]\n{text}");
        assert_eq!(toml::from_str::<Scoring>(&pasted).unwrap().propensity, m);
        let inline = "[propensity]\nintercept = -3.2\ncoefficients = { lead_score = 0.04, \"intent_stage=decision\" = 1.3 }";
        let read = toml::from_str::<Scoring>(inline).unwrap().propensity;
        assert_eq!(read, model(-3.2, &[("lead_score", 0.04), ("intent_stage=decision", 1.3)]));
        assert!(toml::from_str::<Propensity>("intercept = 0.0\ncoefficients = {}\nbias = 1.0").is_err());

        let r = model(-4.98321, &[("a", 0.040123456), ("b", 0.0), ("c", -123456.7)]).rounded(4);
        assert_eq!(r, model(-4.983, &[("a", 0.04012), ("b", 0.0), ("c", -123500.0)]));
    }

    #[test]
    fn auc_counts_ordered_pairs() {
        assert_eq!(auc(&[(0.1, false), (0.4, true), (0.35, false), (0.8, true)]), 1.0);
        assert_eq!(auc(&[(0.1, false), (0.4, false), (0.35, true), (0.8, true)]), 0.75);
        assert_eq!(auc(&[(0.5, true), (0.5, false)]), 0.5);
        assert_eq!(auc(&[(0.9, false), (0.5, true), (0.5, false), (0.1, true)]), 0.125);
        assert!(auc(&[(0.5, true)]).is_nan());
    }

    #[test]
    fn cross_validation_judges_unseen_rows() {
        let names = names(&["visits", "pages", "active", "stage=decision"]);
        let rows = planted(&truth(), 1_000, 3);
        let training = fit(&rows, &names, 1.0).unwrap().auc;
        let cv = cross_validated_auc(&rows, &names, 1.0, 5).unwrap();
        assert!(cv > 0.7 && cv <= training + 0.01, "cv {cv}, training {training}");
        assert_eq!(cross_validated_auc(&rows, &names, 1.0, 5).unwrap(), cv);
        // Noise features: the training AUC flatters, the cross-validated one does not.
        let mut rng = Rng(5);
        let noise: Vec<(Vec<f64>, bool)> =
            (0..60).map(|_| ((0..10).map(|_| rng.normal()).collect(), rng.next() < 0.5)).collect();
        let noise_names: Vec<String> = (0..10).map(|i| format!("n{i}")).collect();
        let training = fit(&noise, &noise_names, 1.0).unwrap().auc;
        let cv = cross_validated_auc(&noise, &noise_names, 1.0, 5).unwrap();
        assert!(training > 0.7 && cv < 0.65, "training {training}, cv {cv}");
        // A fold whose training rows hold one class.
        let one = [(vec![1.0], true), (vec![2.0], false), (vec![3.0], false)];
        let error = cross_validated_auc(&one, &names[..1], 1.0, 3).unwrap_err();
        assert!(matches!(error, FitError::OneClass { .. }), "{error}");
        assert_eq!(cross_validated_auc(&[], &names, 1.0, 5), Err(FitError::NoRows));
    }
}
