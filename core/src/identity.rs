//! Identity resolution rules: which identifiers a person has, which values are placeholders
//! that must never link anyone, and when two profiles may become one.
//!
//! The collector runs the protocol (objects, index, forwarding; see ARCHITECTURE.md); every
//! decision it takes is a function here, so the rules are tested natively:
//!
//! ```
//! use portrait_core::identity::{IdKind, IdentityRules};
//! let rules = IdentityRules::default();
//! assert!(rules.identity(IdKind::UserId, "undefined").is_none()); // a placeholder links nothing
//! let email = rules.identity(IdKind::Email, "  Ann@Example.COM ").unwrap();
//! assert_eq!(email.value, "ann@example.com");
//! ```

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::profile::Profile;
use crate::time::Timestamp;

/// Anonymous ids a profile may gather by merges (devices, cleared cookies) before further
/// merges are refused: past it, a profile is more likely a shared or scripted client.
pub const DEFAULT_MAX_ANONYMOUS_IDS: u32 = 100;
/// Entries kept in a profile's identity log (merges and refusals), newest kept.
pub const MAX_LOG_ENTRIES: usize = 200;

/// Values that clients send when they have no real id (case-insensitive, trimmed). Linking on
/// them would fuse every visitor of a buggy integration into one profile.
const PLACEHOLDERS: &[&str] = &[
    "",
    "null",
    "undefined",
    "anonymous",
    "0",
    "-1",
    "none",
    "nil",
    "nan",
    "[object object]",
    "00000000-0000-0000-0000-000000000000",
];

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum IdKind {
    AnonymousId,
    UserId,
    Email,
    /// A type declared in the workspace's configuration (e.g. `crm_id`), read from a trait.
    Custom(String),
}

impl IdKind {
    pub const BUILT_IN: [IdKind; 3] = [IdKind::AnonymousId, IdKind::UserId, IdKind::Email];

    /// The name used in APIs: `anonymous_id`, `user_id`, `email`, or the custom type's name.
    pub fn as_str(&self) -> &str {
        match self {
            IdKind::AnonymousId => "anonymous_id",
            IdKind::UserId => "user_id",
            IdKind::Email => "email",
            IdKind::Custom(name) => name,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Identity {
    pub kind: IdKind,
    pub value: String,
}

impl Identity {
    /// A stable hash of `kind:value`, for sharding (it decides storage locations: never change it).
    pub fn hash(&self) -> u64 {
        let mut hash = crate::hash::Fnv1a::new(crate::hash::OFFSET_BASIS);
        for part in [self.kind.as_str().as_bytes(), b":", self.value.as_bytes()] {
            hash.update(part);
        }
        hash.finish()
    }
}

/// A custom identifier type: identify calls carrying `trait_key` link the person by it.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CustomId {
    /// `[a-z0-9_]{1,32}`, not a built-in type nor `profile_id`; the API's `{idType}`.
    pub name: String,
    #[serde(rename = "trait")]
    pub trait_key: String,
}

/// A workspace's identity settings (`[workspaces.identity]`), with safe defaults.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct IdentityRules {
    /// Placeholder values of this workspace's integrations, blocked like the built-in ones.
    pub blocked_values: Vec<String>,
    pub max_anonymous_ids: u32,
    /// Index emails by the hex SHA-256 of the normalised address instead of the address.
    pub hash_emails: bool,
    pub custom_ids: Vec<CustomId>,
}

impl Default for IdentityRules {
    fn default() -> IdentityRules {
        IdentityRules {
            blocked_values: Vec::new(),
            max_anonymous_ids: DEFAULT_MAX_ANONYMOUS_IDS,
            hash_emails: false,
            custom_ids: Vec::new(),
        }
    }
}

impl IdentityRules {
    /// Whether `value` is a placeholder that must never link anything.
    pub fn is_placeholder(&self, value: &str) -> bool {
        let value = value.trim();
        PLACEHOLDERS.iter().any(|p| value.eq_ignore_ascii_case(p))
            || self.blocked_values.iter().any(|b| value.eq_ignore_ascii_case(b.trim()))
    }

    /// The identity `value` names, normalised (emails trimmed and lower-cased, then hashed if
    /// configured), or `None` for a placeholder.
    pub fn identity(&self, kind: IdKind, value: &str) -> Option<Identity> {
        if self.is_placeholder(value) {
            return None;
        }
        let value = match kind {
            IdKind::Email => {
                let email = value.trim().to_lowercase();
                if !email.contains('@') {
                    return None;
                }
                match self.hash_emails {
                    true => sha256_hex(&email),
                    false => email,
                }
            }
            IdKind::AnonymousId | IdKind::UserId | IdKind::Custom(_) => value.to_owned(),
        };
        Some(Identity { kind, value })
    }

    /// The id type an API names: a built-in one or a declared custom one.
    pub fn kind(&self, name: &str) -> Option<IdKind> {
        IdKind::BUILT_IN.into_iter().find(|kind| kind.as_str() == name).or_else(|| {
            self.custom_ids.iter().find(|c| c.name == name).map(|c| IdKind::Custom(c.name.clone()))
        })
    }

    /// What is wrong with these settings, as (field, message).
    pub fn problem(&self) -> Option<(String, String)> {
        if self.max_anonymous_ids == 0 {
            return Some(("max_anonymous_ids".into(), "must be at least 1".into()));
        }
        for (i, value) in self.blocked_values.iter().enumerate() {
            if value.trim().is_empty() || value.len() > crate::limits::MAX_ID_BYTES {
                return Some((
                    format!("blocked_values[{i}]"),
                    format!(
                        "must be 1–{} bytes (empty values are always blocked)",
                        crate::limits::MAX_ID_BYTES
                    ),
                ));
            }
        }
        let mut names = BTreeSet::new();
        for (i, custom) in self.custom_ids.iter().enumerate() {
            let valid = (1..=32).contains(&custom.name.len())
                && custom.name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
            if !valid {
                return Some((
                    format!("custom_ids[{i}].name"),
                    "must be 1–32 characters of a-z, 0-9 and _".into(),
                ));
            }
            let reserved =
                IdKind::BUILT_IN.iter().any(|k| k.as_str() == custom.name) || custom.name == "profile_id";
            if reserved || !names.insert(custom.name.as_str()) {
                return Some((
                    format!("custom_ids[{i}].name"),
                    format!("`{}` is a built-in id type or declared twice", custom.name),
                ));
            }
            if custom.trait_key.is_empty() || custom.trait_key.len() > crate::limits::MAX_KEY_BYTES {
                return Some((
                    format!("custom_ids[{i}].trait"),
                    format!("must be 1–{} bytes", crate::limits::MAX_KEY_BYTES),
                ));
            }
        }
        None
    }
}

fn sha256_hex(text: &str) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(text.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

/// Where an event goes before identity resolution: the profile of its anonymous id if it has
/// a real one, else the profile its user id is linked to (created on first sight).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum RoutingKey {
    Anonymous(String),
    User(String),
}

impl RoutingKey {
    /// `None` when neither id is present and real (placeholders do not count).
    pub fn of(
        anonymous_id: Option<&str>,
        user_id: Option<&str>,
        rules: &IdentityRules,
    ) -> Option<RoutingKey> {
        let real = |id: Option<&str>| id.filter(|id| !rules.is_placeholder(id)).map(str::to_owned);
        real(anonymous_id).map(RoutingKey::Anonymous).or_else(|| real(user_id).map(RoutingKey::User))
    }

    /// The id of the profile first created for this key: `a:<anonymousId>` or `u:<userId>`.
    pub fn profile_id(&self) -> String {
        match self {
            RoutingKey::Anonymous(id) => format!("a:{id}"),
            RoutingKey::User(id) => format!("u:{id}"),
        }
    }
}

/// Why two profiles were united: both hold this identity (the index links it to the
/// survivor). An `alias` gives its profile the previous id, so it merges the same way.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum MergeReason {
    Shared(Identity),
}

/// Why a merge was refused; both profiles record it and stay apart.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Refusal {
    /// Each profile has a user id the other lacks: two known people.
    DifferentUsers { ours: String, theirs: String },
    /// The merged profile would hold more anonymous ids than allowed.
    TooManyAnonymousIds { limit: u32 },
}

impl Refusal {
    pub fn code(&self) -> &'static str {
        match self {
            Refusal::DifferentUsers { .. } => "different_users",
            Refusal::TooManyAnonymousIds { .. } => "too_many_anonymous_ids",
        }
    }

    pub fn message(&self) -> String {
        match self {
            Refusal::DifferentUsers { ours, theirs } => {
                format!("user id {ours} and user id {theirs} are different people: not merged")
            }
            Refusal::TooManyAnonymousIds { limit } => {
                format!(
                    "merging would pass {limit} anonymous ids on one profile: the existing links are kept"
                )
            }
        }
    }
}

/// One entry of a profile's identity history.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct LogEntry {
    pub at: Timestamp,
    pub change: Change,
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Change {
    /// `from` was merged into this profile, bringing `identities`.
    Merged { from: String, identities: Vec<Identity>, reason: MergeReason },
    /// A merge with `other` was refused.
    Refused { other: String, reason: MergeReason, refusal: Refusal },
}

/// Decides whether profile `from` may be merged into profile `into`: not if each has a user
/// id the other lacks — ids an `alias` named on either side do not count, since the alias
/// said they are the same person — nor past the anonymous-id limit.
pub fn check_merge(into: &Profile, from: &Profile, rules: &IdentityRules) -> Result<(), Refusal> {
    let aliased = |id: &str| into.aliases.contains(id) || from.aliases.contains(id);
    let users = |p: &Profile| -> BTreeSet<String> {
        p.user_ids().filter(|u| !aliased(u)).map(str::to_owned).collect()
    };
    let (ours, theirs) = (users(into), users(from));
    if let (Some(only_ours), Some(only_theirs)) =
        (ours.difference(&theirs).next(), theirs.difference(&ours).next())
    {
        return Err(Refusal::DifferentUsers { ours: only_ours.clone(), theirs: only_theirs.clone() });
    }
    let anonymous = into.identities.union(&from.identities).filter(|i| i.kind == IdKind::AnonymousId).count();
    if anonymous > rules.max_anonymous_ids as usize {
        return Err(Refusal::TooManyAnonymousIds { limit: rules.max_anonymous_ids });
    }
    Ok(())
}

/// The user id of an event that belongs to another person than the profile holding
/// `profile_ids`: the profile already has a user id and the event names a different one.
/// Such an event is stored on that user's profile instead (two people, one browser).
pub fn foreign_user<'e>(
    profile_ids: &BTreeSet<Identity>,
    user_id: Option<&'e str>,
    rules: &IdentityRules,
) -> Option<&'e str> {
    let user_id = user_id.filter(|id| !rules.is_placeholder(id))?;
    let mut users = profile_ids.iter().filter(|i| i.kind == IdKind::UserId).peekable();
    let known = users.peek().is_some();
    (known && !users.any(|i| i.value == user_id)).then_some(user_id)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(list: &[(IdKind, &str)]) -> BTreeSet<Identity> {
        list.iter().map(|(kind, value)| Identity { kind: kind.clone(), value: (*value).into() }).collect()
    }

    fn profile(list: &[(IdKind, &str)], aliases: &[&str]) -> Profile {
        Profile {
            identities: ids(list),
            aliases: aliases.iter().map(|a| (*a).to_owned()).collect(),
            ..Profile::default()
        }
    }

    #[test]
    fn placeholders_never_name_anyone() {
        let rules = IdentityRules { blocked_values: vec!["guest".into()], ..IdentityRules::default() };
        for value in [
            "",
            "  ",
            "null",
            "NULL",
            "undefined",
            "anonymous",
            "0",
            "-1",
            "00000000-0000-0000-0000-000000000000",
            "Guest",
        ] {
            assert!(rules.identity(IdKind::UserId, value).is_none(), "{value:?}");
            assert!(rules.identity(IdKind::AnonymousId, value).is_none(), "{value:?}");
        }
        for value in ["u1", "00", "anon-1", "10"] {
            assert!(rules.identity(IdKind::UserId, value).is_some(), "{value:?}");
        }
        assert_eq!(RoutingKey::of(Some("null"), Some("u1"), &rules), Some(RoutingKey::User("u1".into())));
        assert_eq!(RoutingKey::of(Some("0"), Some("guest"), &rules), None);
    }

    #[test]
    fn emails_are_normalised_and_optionally_hashed() {
        let plain = IdentityRules::default();
        assert_eq!(plain.identity(IdKind::Email, " Ann@Example.COM ").unwrap().value, "ann@example.com");
        assert!(plain.identity(IdKind::Email, "not an email").is_none());
        let hashed = IdentityRules { hash_emails: true, ..IdentityRules::default() };
        let value = hashed.identity(IdKind::Email, "Ann@Example.com").unwrap().value;
        assert_eq!(value.len(), 64);
        assert_eq!(value, hashed.identity(IdKind::Email, "ann@example.com ").unwrap().value);
        // `printf 'ann@example.com' | sha256sum`
        assert_eq!(value, "71d4f55f72fa128dfb468a1a3901507c804b74316488744d769d7f4b16696476");
    }

    #[test]
    fn merges_are_refused_between_two_known_users() {
        let rules = IdentityRules::default();
        type Ids<'a> = &'a [(IdKind, &'a str)];
        let cases: &[(Ids, Ids, Option<&str>)] = &[
            (&[(IdKind::UserId, "u1")], &[(IdKind::AnonymousId, "a1")], None),
            (&[(IdKind::AnonymousId, "a1")], &[(IdKind::UserId, "u1")], None),
            (&[(IdKind::UserId, "u1")], &[(IdKind::UserId, "u1"), (IdKind::AnonymousId, "a")], None),
            (&[(IdKind::UserId, "u1")], &[(IdKind::UserId, "u2")], Some("different_users")),
            // After alias(u2, previousId: u1) the aliasing profile holds both user ids.
            (&[(IdKind::UserId, "u1")], &[(IdKind::UserId, "u1"), (IdKind::UserId, "u2")], None),
            (&[(IdKind::UserId, "u1"), (IdKind::UserId, "u2")], &[(IdKind::UserId, "u1")], None),
        ];
        for (into, from, expected) in cases {
            let outcome = check_merge(&profile(into, &[]), &profile(from, &[]), &rules).err();
            assert_eq!(outcome.as_ref().map(Refusal::code), *expected, "{into:?} ← {from:?}");
        }
        // Two devices that each aliased their own anonymous id hold it as a user id too: the
        // aliased ids are not people.
        let one = profile(&[(IdKind::UserId, "u"), (IdKind::UserId, "anon-1")], &["anon-1"]);
        let two = profile(&[(IdKind::UserId, "u"), (IdKind::UserId, "anon-2")], &["anon-2"]);
        assert_eq!(check_merge(&one, &two, &rules), Ok(()));
    }

    #[test]
    fn merges_stop_at_the_anonymous_id_limit() {
        let rules = IdentityRules { max_anonymous_ids: 3, ..IdentityRules::default() };
        let into =
            profile(&[(IdKind::AnonymousId, "a"), (IdKind::AnonymousId, "b"), (IdKind::UserId, "u")], &[]);
        assert!(check_merge(&into, &profile(&[(IdKind::AnonymousId, "b")], &[]), &rules).is_ok());
        let refused = check_merge(
            &into,
            &profile(&[(IdKind::AnonymousId, "c"), (IdKind::AnonymousId, "d")], &[]),
            &rules,
        );
        assert_eq!(refused, Err(Refusal::TooManyAnonymousIds { limit: 3 }));
    }

    #[test]
    fn events_of_another_user_are_foreign() {
        let rules = IdentityRules::default();
        let known = ids(&[(IdKind::AnonymousId, "a"), (IdKind::UserId, "u1")]);
        let unknown = ids(&[(IdKind::AnonymousId, "a")]);
        assert_eq!(foreign_user(&known, Some("u2"), &rules), Some("u2"));
        assert_eq!(foreign_user(&known, Some("u1"), &rules), None);
        assert_eq!(foreign_user(&known, Some("null"), &rules), None);
        assert_eq!(foreign_user(&known, None, &rules), None);
        assert_eq!(foreign_user(&unknown, Some("u2"), &rules), None);
    }

    #[test]
    fn settings_problems_name_their_field() {
        let bad = |rules: IdentityRules| rules.problem().map(|(field, _)| field);
        assert_eq!(
            bad(IdentityRules { max_anonymous_ids: 0, ..IdentityRules::default() }).as_deref(),
            Some("max_anonymous_ids")
        );
        assert_eq!(
            bad(IdentityRules { blocked_values: vec![" ".into()], ..IdentityRules::default() }).as_deref(),
            Some("blocked_values[0]")
        );
        let custom = |name: &str| IdentityRules {
            custom_ids: vec![CustomId { name: name.into(), trait_key: "crmId".into() }],
            ..IdentityRules::default()
        };
        assert_eq!(bad(custom("crm_id")), None);
        assert_eq!(bad(custom("email")).as_deref(), Some("custom_ids[0].name"));
        assert_eq!(bad(custom("CRM")).as_deref(), Some("custom_ids[0].name"));
        assert_eq!(custom("crm_id").kind("crm_id"), Some(IdKind::Custom("crm_id".into())));
        assert_eq!(custom("crm_id").kind("profile_id"), None);
    }
}
