//! Triggered actions: which profile changes fire which webhooks, what they send, how it is
//! signed, and when a failed delivery is tried again. The collector's WebhookObject does the
//! I/O; these are its rules.
//!
//! A delivery is JSON, signed like Stripe's webhooks: the header
//! `Portrait-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>` lets the
//! receiver check the sender and refuse replays (compare `t` with its clock); the header
//! `Portrait-Idempotency-Key` is the same for every attempt of one delivery, so a receiver
//! that saw it already can answer 2xx and do nothing.
//!
//! ```
//! use portrait_core::webhook::{sign, verify};
//! let header = sign(b"whsec_test", 1_700_000_000, br#"{"type":"audience.entered"}"#);
//! assert!(verify(b"whsec_test", &header, br#"{"type":"audience.entered"}"#));
//! assert!(!verify(b"whsec_other", &header, br#"{"type":"audience.entered"}"#));
//! ```

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

/// `[[workspaces.webhooks]]`.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Webhook {
    /// `[a-z0-9_-]{1,64}`: part of object names and the admin API's paths.
    pub name: String,
    /// `https://…` (or `http://` for localhost while developing).
    pub url: String,
    /// The name of the secret (wrangler secret; `.dev.vars` locally) that holds the signing key.
    pub secret: String,
    /// What fires it: `audience_entered:<audience>`, `audience_exited:<audience>`,
    /// `lifecycle_changed`, `lifecycle_changed:<stage>`, `lead_score_crossed:<threshold>`.
    pub on: Vec<String>,
    /// Attempts before a delivery is dead-lettered.
    #[serde(default = "default_attempts")]
    pub max_attempts: u32,
}

fn default_attempts() -> u32 {
    8
}

/// A change of a profile that can fire webhooks.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Transition {
    AudienceEntered(String),
    AudienceExited(String),
    LifecycleChanged {
        from: String,
        to: String,
    },
    /// The lead score went from below `threshold` to at or above it.
    LeadScoreCrossed {
        threshold: f64,
        from: f64,
        to: f64,
    },
}

impl Transition {
    /// The event type in payloads: `audience.entered`, `audience.exited`,
    /// `lifecycle.changed`, `lead_score.crossed`.
    pub fn type_name(&self) -> &'static str {
        match self {
            Transition::AudienceEntered(_) => "audience.entered",
            Transition::AudienceExited(_) => "audience.exited",
            Transition::LifecycleChanged { .. } => "lifecycle.changed",
            Transition::LeadScoreCrossed { .. } => "lead_score.crossed",
        }
    }

    /// What changed, as JSON: `{audience}`, `{from, to}` or `{threshold, from, to}`.
    pub fn details(&self) -> serde_json::Value {
        match self {
            Transition::AudienceEntered(audience) | Transition::AudienceExited(audience) => {
                serde_json::json!({ "audience": audience })
            }
            Transition::LifecycleChanged { from, to } => serde_json::json!({ "from": from, "to": to }),
            Transition::LeadScoreCrossed { threshold, from, to } => {
                serde_json::json!({ "threshold": threshold, "from": from, "to": to })
            }
        }
    }

    /// Whether the trigger `on` (one entry of [`Webhook::on`]) selects this change.
    pub fn fires(&self, on: &str) -> bool {
        let (name, argument) = on.split_once(':').map_or((on, None), |(n, a)| (n, Some(a)));
        match (self, name, argument) {
            (Transition::AudienceEntered(a), "audience_entered", Some(b))
            | (Transition::AudienceExited(a), "audience_exited", Some(b)) => a == b,
            (Transition::LifecycleChanged { .. }, "lifecycle_changed", None) => true,
            (Transition::LifecycleChanged { to, .. }, "lifecycle_changed", Some(stage)) => to == stage,
            (Transition::LeadScoreCrossed { threshold, .. }, "lead_score_crossed", Some(t)) => {
                t.parse::<f64>().is_ok_and(|t| t == *threshold)
            }
            _ => false,
        }
    }

    /// The lead-score thresholds the triggers of `webhooks` watch.
    pub fn thresholds<'w>(webhooks: impl IntoIterator<Item = &'w Webhook>) -> Vec<f64> {
        let mut thresholds: Vec<f64> = webhooks
            .into_iter()
            .flat_map(|w| &w.on)
            .filter_map(|on| on.strip_prefix("lead_score_crossed:")?.parse().ok())
            .collect();
        thresholds.sort_by(f64::total_cmp);
        thresholds.dedup();
        thresholds
    }
}

impl Webhook {
    /// What is wrong with this webhook, as (field, message); `audiences` are the names the
    /// workspace declares, so a trigger cannot name one that does not exist.
    pub fn problem(&self, audiences: &[&str]) -> Option<(String, String)> {
        let valid_name = (1..=64).contains(&self.name.len())
            && self
                .name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
        if !valid_name {
            return Some(("name".into(), "must be 1–64 characters of a-z, 0-9, _ and -".into()));
        }
        // The host itself, not a prefix of one (`http://localhost.example.com` is not local).
        let local = ["http://127.0.0.1", "http://localhost"].iter().any(|prefix| {
            self.url.strip_prefix(prefix).is_some_and(|rest| rest.is_empty() || rest.starts_with([':', '/']))
        });
        if !(self.url.starts_with("https://") || local) || self.url.len() > 2048 {
            return Some(("url".into(), "must be an https:// URL (http:// only for localhost)".into()));
        }
        let valid_secret = !self.secret.is_empty()
            && self.secret.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_');
        if !valid_secret {
            return Some(("secret".into(), "the name of a secret: A-Z, 0-9 and _".into()));
        }
        if self.on.is_empty() {
            return Some(("on".into(), "at least one trigger".into()));
        }
        for (i, on) in self.on.iter().enumerate() {
            let (name, argument) = on.split_once(':').map_or((on.as_str(), None), |(n, a)| (n, Some(a)));
            let valid = match (name, argument) {
                ("audience_entered" | "audience_exited", Some(a)) => audiences.contains(&a),
                ("lifecycle_changed", None) => true,
                ("lifecycle_changed", Some(stage)) => {
                    crate::tags::Lifecycle::ALL.iter().any(|l| l.as_str() == stage)
                }
                ("lead_score_crossed", Some(t)) => t.parse::<f64>().is_ok_and(|t| (0.0..=100.0).contains(&t)),
                _ => false,
            };
            if !valid {
                return Some((
                    format!("on[{i}]"),
                    format!(
                        "`{on}` is not a trigger: audience_entered:<audience>, audience_exited:<audience>, \
                         lifecycle_changed[:<stage>] or lead_score_crossed:<0–100> (audiences: {})",
                        audiences.join(", ")
                    ),
                ));
            }
        }
        if !(1..=50).contains(&self.max_attempts) {
            return Some(("max_attempts".into(), "must be 1–50".into()));
        }
        None
    }
}

/// The JSON body of a delivery: its idempotency key as `id`, the change, when, and the
/// subject (a profile or an account, as [`crate::view::profile_summary`] and the account view
/// show them).
pub fn payload(
    key: &str,
    transition: &Transition,
    subject_kind: &str,
    subject: serde_json::Value,
    at: crate::Timestamp,
) -> String {
    let mut body = serde_json::json!({
        "id": key,
        "type": transition.type_name(),
        "createdAt": at.to_string(),
        "change": transition.details(),
    });
    body[subject_kind] = subject;
    body.to_string()
}

/// The `Portrait-Signature` header for `body` sent at `timestamp` (unix seconds).
pub fn sign(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    format!("t={timestamp},v1={}", hex(&mac(secret, timestamp, body)))
}

/// Whether `header` is a valid signature of `body` under `secret` (constant-time compare).
pub fn verify(secret: &[u8], header: &str, body: &[u8]) -> bool {
    let mut timestamp = None;
    let mut signature = None;
    for part in header.split(',') {
        match part.split_once('=') {
            Some(("t", t)) => timestamp = t.parse::<i64>().ok(),
            Some(("v1", v)) => signature = Some(v),
            _ => {}
        }
    }
    match (timestamp, signature) {
        (Some(t), Some(v)) => {
            crate::config::constant_time_eq(hex(&mac(secret, t, body)).as_bytes(), v.as_bytes())
        }
        _ => false,
    }
}

fn mac(secret: &[u8], timestamp: i64, body: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac.finalize().into_bytes().to_vec()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Milliseconds to wait before attempt `attempt + 1` after `attempt` failures: 5 s doubling
/// to at most an hour, plus up to 20 % taken from `jitter` (any number: a hash of the
/// delivery, so retries of many deliveries spread out, deterministically).
pub fn backoff_ms(attempt: u32, jitter: u64) -> i64 {
    let base = 5_000i64.saturating_mul(1i64 << attempt.min(20)).min(3_600_000);
    base + (jitter % 1_000) as i64 * base / 5_000
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_match_rfc_4231_hmac_and_verify() {
        // RFC 4231 test case 2, through the same MAC: key "Jefe", data "what do ya want for nothing?".
        let mut mac = Hmac::<Sha256>::new_from_slice(b"Jefe").unwrap();
        mac.update(b"what do ya want for nothing?");
        assert_eq!(
            hex(&mac.finalize().into_bytes()),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        let header = sign(b"secret", 1_800_000_000, b"{}");
        assert!(header.starts_with("t=1800000000,v1="));
        assert!(verify(b"secret", &header, b"{}"));
        assert!(!verify(b"secret", &header, b"{ }"), "another body");
        assert!(!verify(b"secret", &header.replace("t=1800000000", "t=1800000001"), b"{}"), "another time");
        assert!(!verify(b"secret", "v1=00", b"{}"));
    }

    #[test]
    fn triggers_select_their_changes() {
        let entered = Transition::AudienceEntered("hot".into());
        let lifecycle = Transition::LifecycleChanged { from: "known".into(), to: "mql".into() };
        let crossed = Transition::LeadScoreCrossed { threshold: 60.0, from: 55.0, to: 62.0 };
        let cases = [
            (&entered, "audience_entered:hot", true),
            (&entered, "audience_exited:hot", false),
            (&entered, "audience_entered:cold", false),
            (&lifecycle, "lifecycle_changed", true),
            (&lifecycle, "lifecycle_changed:mql", true),
            (&lifecycle, "lifecycle_changed:customer", false),
            (&crossed, "lead_score_crossed:60", true),
            (&crossed, "lead_score_crossed:70", false),
        ];
        for (transition, on, expected) in cases {
            assert_eq!(transition.fires(on), expected, "{transition:?} on {on}");
        }
    }

    #[test]
    fn backoff_doubles_up_to_an_hour_with_bounded_jitter() {
        assert_eq!(backoff_ms(0, 0), 5_000);
        assert_eq!(backoff_ms(1, 0), 10_000);
        assert_eq!(backoff_ms(3, 0), 40_000);
        assert_eq!(backoff_ms(30, 0), 3_600_000);
        for jitter in [1, 499, 999, u64::MAX] {
            let wait = backoff_ms(2, jitter);
            assert!((20_000..24_000).contains(&wait), "{wait}");
        }
    }

    #[test]
    fn webhook_problems_name_their_field() {
        let hook = Webhook {
            name: "crm".into(),
            url: "https://hooks.example.com/x".into(),
            secret: "WEBHOOK_SECRET".into(),
            on: vec!["audience_entered:hot".into(), "lead_score_crossed:60".into()],
            max_attempts: 8,
        };
        assert_eq!(hook.problem(&["hot"]), None);
        let field = |change: fn(&mut Webhook)| {
            let mut bad = hook.clone();
            change(&mut bad);
            bad.problem(&["hot"]).map(|(field, _)| field)
        };
        assert_eq!(field(|h| h.url = "http://example.com".into()).as_deref(), Some("url"));
        assert_eq!(field(|h| h.url = "http://localhost.example.com/x".into()).as_deref(), Some("url"));
        assert_eq!(field(|h| h.url = "http://127.0.0.1.example.com".into()).as_deref(), Some("url"));
        assert_eq!(field(|h| h.url = "http://localhost:8080/hooks".into()), None);
        assert_eq!(field(|h| h.url = "http://127.0.0.1/hooks".into()), None);
        assert_eq!(field(|h| h.on = vec!["audience_entered:cold".into()]).as_deref(), Some("on[0]"));
        assert_eq!(field(|h| h.on = vec!["lead_score_crossed:101".into()]).as_deref(), Some("on[0]"));
        assert_eq!(field(|h| h.secret = "lower".into()).as_deref(), Some("secret"));
        assert_eq!(field(|h| h.max_attempts = 0).as_deref(), Some("max_attempts"));
        assert_eq!(Transition::thresholds([&hook]), [60.0]);
    }
}
