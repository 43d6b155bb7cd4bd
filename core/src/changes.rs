//! What changed in a profile's (or an account's) tags since they were last evaluated:
//! audience entries and exits, lifecycle transitions, lead-score thresholds crossed. The
//! collector evaluates after every change it commits, keeps the [`Evaluated`] state next to
//! the profile, and turns each [`Transition`] into webhook deliveries and audience
//! membership updates.
//!
//! ```
//! use portrait_core::changes::{Evaluated, evaluate, Snapshot};
//! use portrait_core::webhook::Transition;
//! let before = Evaluated::default();
//! let now = Snapshot { audiences: vec!["hot".into()], lifecycle: Some("mql".into()), lead_score: Some(64.0) };
//! let (after, changes) = evaluate(&before, &now, &[60.0], 1_000);
//! assert_eq!(changes, [Transition::AudienceEntered("hot".into())]); // a first look fires no lifecycle change
//! assert_eq!(after.audiences["hot"], 1_000);
//! ```

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::webhook::Transition;

/// Transitions kept in [`Evaluated::history`].
pub const HISTORY_LEN: usize = 100;

/// The state of the last evaluation.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Evaluated {
    /// Audience → when the member entered (ms since the epoch).
    pub audiences: BTreeMap<String, i64>,
    pub lifecycle: Option<String>,
    pub lead_score: Option<f64>,
    /// The latest transitions with their times, oldest first.
    pub history: Vec<(i64, Transition)>,
}

/// What the tags say now.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Snapshot {
    pub audiences: Vec<String>,
    pub lifecycle: Option<String>,
    pub lead_score: Option<f64>,
}

/// The new state and the transitions from `before` to `now` (at `at`). Lifecycle and
/// lead-score transitions need a previous value: the first evaluation only records them.
pub fn evaluate(
    before: &Evaluated,
    now: &Snapshot,
    thresholds: &[f64],
    at: i64,
) -> (Evaluated, Vec<Transition>) {
    let mut after = before.clone();
    let mut changes = Vec::new();
    after.audiences.retain(|name, _| {
        let stays = now.audiences.contains(name);
        if !stays {
            changes.push(Transition::AudienceExited(name.clone()));
        }
        stays
    });
    for name in &now.audiences {
        if !after.audiences.contains_key(name) {
            after.audiences.insert(name.clone(), at);
            changes.push(Transition::AudienceEntered(name.clone()));
        }
    }
    if let (Some(from), Some(to)) = (&before.lifecycle, &now.lifecycle)
        && from != to
    {
        changes.push(Transition::LifecycleChanged { from: from.clone(), to: to.clone() });
    }
    after.lifecycle = now.lifecycle.clone();
    if let (Some(from), Some(to)) = (before.lead_score, now.lead_score) {
        for &threshold in thresholds {
            if from < threshold && to >= threshold {
                changes.push(Transition::LeadScoreCrossed { threshold, from, to });
            }
        }
    }
    after.lead_score = now.lead_score;
    after.history.extend(changes.iter().map(|c| (at, c.clone())));
    let excess = after.history.len().saturating_sub(HISTORY_LEN);
    after.history.drain(..excess);
    (after, changes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot(audiences: &[&str], lifecycle: &str, lead_score: f64) -> Snapshot {
        Snapshot {
            audiences: audiences.iter().map(|a| (*a).to_owned()).collect(),
            lifecycle: Some(lifecycle.into()),
            lead_score: Some(lead_score),
        }
    }

    #[test]
    fn entries_exits_lifecycle_and_crossings_are_found_once() {
        let thresholds = [50.0, 80.0];
        let (first, changes) =
            evaluate(&Evaluated::default(), &snapshot(&["a"], "known", 40.0), &thresholds, 1);
        assert_eq!(changes, [Transition::AudienceEntered("a".into())]);
        let (second, changes) = evaluate(&first, &snapshot(&["b"], "mql", 85.0), &thresholds, 2);
        assert_eq!(
            changes,
            [
                Transition::AudienceExited("a".into()),
                Transition::AudienceEntered("b".into()),
                Transition::LifecycleChanged { from: "known".into(), to: "mql".into() },
                Transition::LeadScoreCrossed { threshold: 50.0, from: 40.0, to: 85.0 },
                Transition::LeadScoreCrossed { threshold: 80.0, from: 40.0, to: 85.0 },
            ]
        );
        assert_eq!(second.audiences, BTreeMap::from([("b".to_owned(), 2)]));
        // Nothing new: nothing fires, and the entry time stays.
        let (third, changes) = evaluate(&second, &snapshot(&["b"], "mql", 60.0), &thresholds, 3);
        assert!(changes.is_empty());
        assert_eq!(third.audiences["b"], 2);
        // Falling under a threshold and rising again crosses it again.
        let (_, changes) = evaluate(&third, &snapshot(&["b"], "mql", 81.0), &thresholds, 4);
        assert_eq!(changes, [Transition::LeadScoreCrossed { threshold: 80.0, from: 60.0, to: 81.0 }]);
    }

    #[test]
    fn the_history_is_bounded() {
        let mut state = Evaluated::default();
        for at in 0..300 {
            let audiences: &[&str] = if at % 2 == 0 { &["a"] } else { &[] };
            state = evaluate(&state, &snapshot(audiences, "known", 0.0), &[], at).0;
        }
        assert_eq!(state.history.len(), HISTORY_LEN);
        assert_eq!(state.history.last().map(|(at, _)| *at), Some(299));
    }
}
