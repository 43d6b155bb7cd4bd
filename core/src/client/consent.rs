//! Consent: what the visitor allowed, by category, and what the SDK may do under it.
//!
//! While `analytics` is pending the SDK holds events in memory only: nothing is stored and
//! nothing is sent. Granted, they flow; denied, they are dropped and the SDK's storage is
//! cleared. `personalization` gates the interests the page may read (the interest issue).

use serde::{Deserialize, Serialize};

/// Also the configuration's `consent_default` (`granted`, `denied`, `pending`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Decision {
    Granted,
    Denied,
    Pending,
}

impl Decision {
    /// `true`/`"granted"`, `false`/`"denied"`, `"pending"`; anything else is not a decision.
    pub fn parse(text: &str) -> Option<Decision> {
        match text {
            "granted" | "true" => Some(Decision::Granted),
            "denied" | "false" => Some(Decision::Denied),
            "pending" => Some(Decision::Pending),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Granted => "granted",
            Decision::Denied => "denied",
            Decision::Pending => "pending",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Consent {
    pub analytics: Decision,
    pub personalization: Decision,
}

/// What the SDK does with an event under the current consent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Gate {
    /// Queue it, persist it, send it.
    Send,
    /// Keep it in memory until consent is decided.
    Hold,
    Drop,
}

impl Consent {
    pub fn all(decision: Decision) -> Consent {
        Consent { analytics: decision, personalization: decision }
    }

    pub fn gate(&self) -> Gate {
        match self.analytics {
            Decision::Granted => Gate::Send,
            Decision::Pending => Gate::Hold,
            Decision::Denied => Gate::Drop,
        }
    }

    /// Whether the SDK may write cookies and local storage.
    pub fn may_store(&self) -> bool {
        self.analytics == Decision::Granted
    }

    /// Sets the categories named in `changes` (`(category, decision)`); unknown categories are
    /// returned as errors so the caller can report them. Returns whether anything changed.
    pub fn set<'a>(
        &mut self,
        changes: impl IntoIterator<Item = (&'a str, Decision)>,
    ) -> Result<bool, String> {
        let before = *self;
        for (category, decision) in changes {
            match category {
                "analytics" => self.analytics = decision,
                "personalization" => self.personalization = decision,
                other => {
                    return Err(format!(
                        "unknown consent category `{other}`: use analytics or personalization"
                    ));
                }
            }
        }
        Ok(*self != before)
    }

    /// The stored form, e.g. `analytics=granted,personalization=denied`.
    pub fn to_storage(&self) -> String {
        format!("analytics={},personalization={}", self.analytics.as_str(), self.personalization.as_str())
    }

    pub fn from_storage(text: &str) -> Option<Consent> {
        let mut consent = Consent::all(Decision::Pending);
        for pair in text.split(',') {
            let (category, decision) = pair.split_once('=')?;
            consent.set([(category, Decision::parse(decision)?)]).ok()?;
        }
        Some(consent)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn analytics_decides_the_gate() {
        assert_eq!(Consent::all(Decision::Granted).gate(), Gate::Send);
        assert_eq!(Consent::all(Decision::Pending).gate(), Gate::Hold);
        assert_eq!(Consent::all(Decision::Denied).gate(), Gate::Drop);
        let mixed = Consent { analytics: Decision::Granted, personalization: Decision::Denied };
        assert_eq!(mixed.gate(), Gate::Send);
        assert!(mixed.may_store());
        assert!(!Consent::all(Decision::Pending).may_store());
    }

    #[test]
    fn set_reports_changes_and_unknown_categories() {
        let mut consent = Consent::all(Decision::Pending);
        assert_eq!(consent.set([("analytics", Decision::Granted)]), Ok(true));
        assert_eq!(consent.set([("analytics", Decision::Granted)]), Ok(false));
        assert!(consent.set([("marketing", Decision::Granted)]).unwrap_err().contains("marketing"));
    }

    #[test]
    fn storage_round_trip() {
        let consent = Consent { analytics: Decision::Granted, personalization: Decision::Denied };
        assert_eq!(Consent::from_storage(&consent.to_storage()), Some(consent));
        assert_eq!(Consent::from_storage("analytics=maybe"), None);
        assert_eq!(Consent::from_storage("garbage"), None);
    }
}
