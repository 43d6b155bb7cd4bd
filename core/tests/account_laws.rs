//! The convergence laws of `core::account` over real profile histories: an account that gets
//! every update a history produced, in any order and with repeats, equals one that got only
//! the last, and an identity merge leaves only the profile merged into.

mod common;

use portrait_core::Call;
use portrait_core::Value;
use portrait_core::account::{Account, AccountLink, AccountUpdate, member_snapshot};
use portrait_core::enrich::Received;
use portrait_core::profile::{Profile, Stamp, Stamped};
use proptest::prelude::*;

/// A profile as the collector keeps it for accounts: the profile, and the traits of the group
/// calls it applied.
#[derive(Clone, Default)]
struct Member {
    profile: Profile,
    group_traits: Vec<(String, Stamped<Value>)>,
}

impl Member {
    fn apply(&mut self, received: &Received) {
        self.profile.apply(received);
        if let Call::Group { .. } = received.event.call {
            let stamp = Stamp::of(&received.event);
            for (key, value) in &received.event.traits {
                self.group_traits.push((key.clone(), Stamped { stamp, value: value.clone() }));
            }
        }
    }

    /// What the collector sends after a batch: explicit once the profile made a group call.
    fn update(&self, profile_id: &str) -> AccountUpdate {
        let link = if self.profile.groups.is_empty() { AccountLink::Inferred } else { AccountLink::Explicit };
        AccountUpdate {
            member: member_snapshot(profile_id, &self.profile, link),
            traits: self.group_traits.clone(),
        }
    }
}

/// The updates a profile sends while it applies `events` one batch (here: one event) at a
/// time, and its final state.
fn history(profile_id: &str, events: &[&Received]) -> (Member, Vec<AccountUpdate>) {
    let mut member = Member::default();
    let mut updates = Vec::new();
    for received in events {
        member.apply(received);
        updates.push(member.update(profile_id));
    }
    (member, updates)
}

#[derive(Clone, Debug)]
enum Op {
    Apply(Box<AccountUpdate>),
    Merged(&'static str, &'static str),
}

fn run<'a>(ops: impl IntoIterator<Item = &'a Op>) -> Account {
    let mut account = Account::new("acme");
    for op in ops {
        match op {
            Op::Apply(update) => account.apply(AccountUpdate::clone(update)),
            Op::Merged(from, into) => account.member_merged(from, into),
        }
    }
    account
}

/// `ops` reordered by `keys` (one sort key per element) with some repeated.
fn shuffled_with_repeats(ops: &[Op], keys: &[(u32, bool)]) -> Vec<Op> {
    let mut out: Vec<(u32, Op)> = Vec::new();
    for (op, &(key, repeat)) in ops.iter().zip(keys.iter().cycle()) {
        out.push((key, op.clone()));
        if repeat {
            out.push((key.rotate_left(7), op.clone()));
        }
    }
    out.sort_by_key(|(key, _)| *key);
    out.into_iter().map(|(_, op)| op).collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn every_update_of_a_history_in_any_order_equals_the_last(
        events in common::received_events(24),
        keys in proptest::collection::vec((any::<u32>(), any::<bool>()), 1..24),
    ) {
        let (_, updates) = history("p", &events.iter().collect::<Vec<_>>());
        let ops: Vec<Op> = updates.iter().map(|update| Op::Apply(Box::new(update.clone()))).collect();
        let everything = run(&shuffled_with_repeats(&ops, &keys));
        let last_only = run(ops.last());
        prop_assert_eq!(everything, last_only);
    }

    #[test]
    fn a_merge_leaves_the_profile_merged_into_whatever_the_order(
        events in common::received_events(24),
        sides in proptest::collection::vec(any::<bool>(), 24),
        keys in proptest::collection::vec((any::<u32>(), any::<bool>()), 1..64),
    ) {
        let (left, right): (Vec<_>, Vec<_>) =
            events.iter().zip(sides.iter().cycle()).partition(|(_, side)| **side);
        let left: Vec<&Received> = left.into_iter().map(|(received, _)| received).collect();
        let right: Vec<&Received> = right.into_iter().map(|(received, _)| received).collect();
        let (x, x_updates) = history("x", &left);
        let (mut y, y_updates) = history("y", &right);
        y.profile.merge("x", &x.profile);
        y.group_traits.extend(x.group_traits.iter().cloned());
        let after_merge = y.update("y");

        let mut ops: Vec<Op> =
            x_updates.into_iter().chain(y_updates).map(|update| Op::Apply(Box::new(update))).collect();
        ops.push(Op::Apply(Box::new(after_merge.clone())));
        ops.push(Op::Merged("x", "y"));
        let everything = run(&shuffled_with_repeats(&ops, &keys));
        let expected = run(&[Op::Apply(Box::new(after_merge)), Op::Merged("x", "y")]);
        prop_assert_eq!(&everything, &expected);
        prop_assert!(!everything.members.contains_key("x"));
    }
}
