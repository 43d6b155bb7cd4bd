//! Consent: what the visitor allowed, by category, and what the SDK may do under it.
//!
//! While `analytics` is pending the SDK holds events in memory only: nothing is stored and
//! nothing is sent. Granted, they flow; denied, they are dropped and the SDK's storage is
//! cleared. `personalization` gates the interests the page may read (the interest issue).

use serde::{Deserialize, Serialize};

use super::{concat, push_listed};
use crate::record::{Call, ContextParts, Record, Tokens};

/// The event the SDK records a consent change with: its properties are the categories
/// (`analytics`, `personalization`), each a [`Decision`]'s text.
pub const CONSENT_EVENT: &str = "Consent Updated";

/// The consent categories, as `consent.set` names them.
pub const CATEGORIES: [&str; 2] = ["analytics", "personalization"];

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

/// What the browser says about tracking, and whether the site asked to honour it (`None`:
/// not known yet, its settings have not come).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PrivacySignals {
    pub do_not_track: bool,
    pub respect_do_not_track: Option<bool>,
    pub global_privacy_control: bool,
    pub respect_global_privacy_control: Option<bool>,
}

impl Consent {
    /// The consent of the categories the visitor never decided ([`Choices::over`]):
    /// Do-Not-Track / Global Privacy Control as a refusal when the site asked to respect them,
    /// then the configured default, then granted. A signal the site may yet ask to respect
    /// (its settings have not come) holds the default back to pending: what is captured
    /// meanwhile waits for them, unsent.
    pub fn by_default(signals: PrivacySignals, default: Option<Decision>) -> Consent {
        let pairs = [
            (signals.do_not_track, signals.respect_do_not_track),
            (signals.global_privacy_control, signals.respect_global_privacy_control),
        ];
        // Whether the browser sends a signal the site's choice for is `choice`.
        let signal_sent_with =
            |choice: Option<bool>| pairs.iter().any(|&(sent, respect)| sent && respect == choice);
        let default = default.unwrap_or(Decision::Granted);
        match (signal_sent_with(Some(true)), signal_sent_with(None)) {
            (true, _) => Consent::all(Decision::Denied),
            (false, true) if default == Decision::Granted => Consent::all(Decision::Pending),
            _ => Consent::all(default),
        }
    }

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

    /// Whether the SDK may send what it queued: unless analytics is pending. Refused, the queue
    /// holds nothing but withdrawals ([`Consent::withdrawal`]): a refusal drops what was
    /// queued, and the events captured after it are dropped before the queue.
    pub fn may_send(&self) -> bool {
        self.gate() != Gate::Hold
    }

    /// Whether the SDK may write cookies and local storage.
    pub fn may_store(&self) -> bool {
        self.analytics == Decision::Granted
    }

    /// Whether the SDK may keep and use interests (topics and site tags): unless
    /// personalisation was refused. Pending counts as allowed: interests stay on the device
    /// (stored when `may_store`, or when personalisation is granted), and a refusal clears
    /// them.
    pub fn may_personalize(&self) -> bool {
        self.personalization != Decision::Denied
    }

    /// Whether a change to this consent must reach the collector although analytics is
    /// refused: personalisation is refused too ("reject all", in one call or two), and the
    /// collector may hold interests of this visitor (`collector_may_know`: events were sent,
    /// or an earlier page stored the visitor's id). A refusal drops the queue, so only this
    /// change can tell it to forget them ([`Consent::withdrawal`]).
    pub fn withdrawal_to_send(&self, collector_may_know: bool) -> bool {
        collector_may_know && self.gate() == Gate::Drop && self.personalization == Decision::Denied
    }

    /// The properties of the event a change is recorded with ([`CONSENT_EVENT`]): each
    /// category's decision.
    pub fn to_properties(&self) -> Tokens {
        let mut properties = Tokens::default();
        properties.key("analytics").str(self.analytics.as_str());
        properties.key("personalization").str(self.personalization.as_str());
        properties
    }

    /// The record of this change that goes when nothing else may
    /// ([`Consent::withdrawal_to_send`]): the anonymous id only (a user id the refusal kept
    /// from being sent must not reach the collector with it; a known visitor's profiles were
    /// merged, and the anonymous one leads to the survivor), and of the context only the
    /// `library`. The collector applies it as the withdrawal alone
    /// (`profile::is_refusal_of_analytics`).
    pub fn withdrawal(
        &self,
        message_id: &str,
        at: i64,
        anonymous_id: &str,
        library: (Option<&str>, Option<&str>),
    ) -> Record {
        let context = ContextParts { library, ..ContextParts::default() }.encode();
        let identity = (Some(anonymous_id), None);
        let properties = self.to_properties();
        Record::new(
            &Call::Track(CONSENT_EVENT),
            message_id,
            Some(at),
            identity,
            &context,
            &properties,
            &Tokens::default(),
        )
    }
}

/// What the visitor decided, category by category (`None`: never decided): what the SDK
/// stores under `consent`, and what the site's other tabs follow. A page works under these
/// over the default ([`Choices::over`]), so that a category the visitor never decided
/// follows the site's default as it is on each page: not the default of the day they
/// decided another category, nor the pending that stands in while the settings are late.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Choices {
    pub analytics: Option<Decision>,
    pub personalization: Option<Decision>,
}

impl Choices {
    /// Records the decisions in `changes` (`(category, decision)`). A category it does not
    /// know (a consent tool's `marketing`) is left out, not the call: a refusal sent with one
    /// still holds. Answers the message naming the first unknown category, for the caller to
    /// report.
    pub fn set<'a>(&mut self, changes: impl IntoIterator<Item = (&'a str, Decision)>) -> Option<String> {
        let mut unknown = None;
        for (category, decision) in changes {
            match category {
                "analytics" => self.analytics = Some(decision),
                "personalization" => self.personalization = Some(decision),
                other => {
                    unknown.get_or_insert_with(|| {
                        concat(&["unknown consent category `", other, "`: use analytics or personalization"])
                    });
                }
            }
        }
        unknown
    }

    /// The consent these choices give where `default` ([`Consent::by_default`]) holds for
    /// the categories not decided.
    pub fn over(self, default: Consent) -> Consent {
        Consent {
            analytics: self.analytics.unwrap_or(default.analytics),
            personalization: self.personalization.unwrap_or(default.personalization),
        }
    }

    /// The stored form: the categories granted or refused, e.g.
    /// `analytics=granted,personalization=denied` or `personalization=denied` (empty when
    /// none is). A decision of pending (a consent tool asking again) holds on its page; the
    /// next page starts from the default for it.
    pub fn to_storage(&self) -> String {
        let mut text = String::new();
        for (category, decision) in [("analytics", self.analytics), ("personalization", self.personalization)]
        {
            if let Some(decision) = Choices::decided(decision) {
                push_listed(&mut text, ",", &[category, "=", decision.as_str()]);
            }
        }
        text
    }

    /// `None` for text that is not a stored form (it is then no decision at all). A stored
    /// pending is no decision: earlier versions stored every category, the default's
    /// pending (while the settings were late) too.
    pub fn from_storage(text: &str) -> Option<Choices> {
        let mut choices = Choices::default();
        for pair in text.split(',').filter(|pair| !pair.is_empty()) {
            let (category, decision) = pair.split_once('=')?;
            if choices.set([(category, Decision::parse(decision)?)]).is_some() {
                return None;
            }
        }
        Some(Choices {
            analytics: Choices::decided(choices.analytics),
            personalization: Choices::decided(choices.personalization),
        })
    }

    /// A decision that lasts past its page: granted or denied, not pending.
    fn decided(decision: Option<Decision>) -> Option<Decision> {
        decision.filter(|&decision| decision != Decision::Pending)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_refusal_of_personalisation_stops_interests() {
        let with = |personalization| Consent { analytics: Decision::Denied, personalization };
        assert!(with(Decision::Granted).may_personalize());
        assert!(with(Decision::Pending).may_personalize());
        assert!(!with(Decision::Denied).may_personalize());
    }

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
    fn only_a_refusal_of_both_tells_the_collector_despite_analytics() {
        use Decision::{Denied, Granted, Pending};
        let consent = |analytics, personalization| Consent { analytics, personalization };
        // (consent after the change, whether the collector may know the visitor, sent)
        let cases = [
            (consent(Denied, Denied), true, true),
            // It knows nothing of this visitor: nothing to forget.
            (consent(Denied, Denied), false, false),
            // Personalisation kept, or undecided: nothing to forget.
            (consent(Denied, Granted), true, false),
            (consent(Denied, Pending), true, false),
            // Analytics allowed, or pending: the change is queued or held as any event.
            (consent(Granted, Denied), true, false),
            (consent(Pending, Denied), true, false),
        ];
        for (after, known, sent) in cases {
            assert_eq!(after.withdrawal_to_send(known), sent, "{after:?}, known: {known}");
        }
    }

    #[test]
    fn the_withdrawal_is_a_refusal_the_collector_applies_alone() {
        let refused = Consent::all(Decision::Denied);
        let record = refused.withdrawal("m1", 1_800_000_000_000, "anon", (Some("portrait.js"), Some("1.0")));
        let body = crate::beacon::encode_records(Some(1_800_000_000_000), 0, [&record]);
        let event = crate::beacon::decode(&body).unwrap().events.remove(0);
        assert!(crate::profile::is_refusal_of_analytics(&event));
        assert_eq!((event.anonymous_id.as_deref(), event.user_id.as_deref()), (Some("anon"), None));
        let decision = |key: &str| event.properties.get(key).cloned();
        let denied = Some(crate::value::Value::String("denied".into()));
        assert_eq!((decision("analytics"), decision("personalization")), (denied.clone(), denied));
        let context = &event.context;
        assert_eq!((&context.page.url, &context.user_agent), (&None, &None), "no page or device");
        assert_eq!(context.library.name.as_deref(), Some("portrait.js"));
    }

    #[test]
    fn set_records_decisions_and_reports_unknown_categories() {
        let mut choices = Choices::default();
        assert_eq!(choices.set([("analytics", Decision::Granted)]), None);
        // A consent tool's own categories beside ours: ours still change.
        let unknown = choices.set([("analytics", Decision::Denied), ("marketing", Decision::Denied)]);
        assert!(unknown.unwrap().contains("marketing"));
        assert_eq!(choices, Choices { analytics: Some(Decision::Denied), personalization: None });
        assert_eq!(Choices::from_storage("analytics=granted,marketing=granted"), None);
    }

    #[test]
    fn the_default_is_signals_then_the_configured_default() {
        let gpc = PrivacySignals {
            global_privacy_control: true,
            respect_global_privacy_control: Some(true),
            ..Default::default()
        };
        let ignored =
            PrivacySignals { do_not_track: true, respect_do_not_track: Some(false), ..Default::default() };
        // The settings that may ask to respect the signal have not come.
        let undecided = PrivacySignals { respect_global_privacy_control: None, ..gpc };
        let cases = [
            (gpc, Some(Decision::Granted), Decision::Denied),
            (gpc, Some(Decision::Pending), Decision::Denied),
            (ignored, None, Decision::Granted),
            (ignored, Some(Decision::Pending), Decision::Pending),
            (undecided, Some(Decision::Granted), Decision::Pending),
            (undecided, Some(Decision::Denied), Decision::Denied),
            (PrivacySignals { global_privacy_control: false, ..undecided }, None, Decision::Granted),
        ];
        for (signals, default, expected) in cases {
            assert_eq!(
                Consent::by_default(signals, default),
                Consent::all(expected),
                "{signals:?} {default:?}"
            );
        }
    }

    #[test]
    fn the_visitors_decisions_hold_and_undecided_categories_follow_the_default() {
        let refused_personalisation = Choices { analytics: None, personalization: Some(Decision::Denied) };
        // Decided when the default was granted; the site now asks first: analytics, never
        // decided, waits like everyone's.
        assert_eq!(
            refused_personalisation.over(Consent::all(Decision::Pending)),
            Consent { analytics: Decision::Pending, personalization: Decision::Denied }
        );
        // Analytics granted while the settings were late (pending stood in): personalisation
        // follows the default they bring.
        let granted_analytics = Choices { analytics: Some(Decision::Granted), personalization: None };
        assert_eq!(granted_analytics.over(Consent::all(Decision::Granted)), Consent::all(Decision::Granted));
        // A decision of pending is one (a consent tool asking again), and holds.
        let asked_again = Choices { analytics: Some(Decision::Pending), personalization: None };
        assert_eq!(
            asked_again.over(Consent::all(Decision::Granted)),
            Consent { analytics: Decision::Pending, personalization: Decision::Granted }
        );
    }

    #[test]
    fn storage_round_trip() {
        let cases = [
            Choices { analytics: Some(Decision::Granted), personalization: Some(Decision::Denied) },
            Choices { analytics: None, personalization: Some(Decision::Denied) },
            Choices::default(),
        ];
        for choices in cases {
            assert_eq!(Choices::from_storage(&choices.to_storage()), Some(choices));
        }
        assert_eq!(cases[1].to_storage(), "personalization=denied");
        // A decision of pending lasts its page.
        let asked_again = Choices { analytics: Some(Decision::Pending), ..cases[1] };
        assert_eq!(asked_again.to_storage(), "personalization=denied");
        // Written by earlier versions, with every category (pending the default's).
        assert_eq!(Choices::from_storage("analytics=granted,personalization=denied"), Some(cases[0]));
        assert_eq!(
            Choices::from_storage("analytics=granted,personalization=pending"),
            Some(Choices { analytics: Some(Decision::Granted), personalization: None })
        );
        assert_eq!(Choices::from_storage("analytics=maybe"), None);
        assert_eq!(Choices::from_storage("garbage"), None);
    }
}
