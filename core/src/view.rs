//! The profile as the admin API shows it: JSON with camelCase names, ISO-8601 times, and the
//! tags derived from the state, each with its kind and the reason behind it.

use serde_json::{Value as Json, json};

use crate::enrich::Received;
use crate::identity::{Change, Identity, LogEntry, MergeReason};
use crate::profile::Profile;
use crate::segment;
use crate::tags::{self, TagSettings};
use crate::time::Timestamp;
use crate::topics::interests::Interests;

/// The strongest `limit` interests, `[{id, name, path, score}]`, scored at `at` and named
/// by the builtin topic model.
pub(crate) fn interests_json(interests: &Interests, at: Timestamp, limit: usize) -> Json {
    let model = crate::topics::builtin();
    let top = interests.top(at.0, limit);
    Json::Array(
        top.into_iter()
            .map(|(id, score)| {
                let topic = model.and_then(|m| m.topic(id));
                json!({
                    "id": id,
                    "name": topic.map(|t| t.name.as_str()),
                    "path": topic.map(|t| t.path()),
                    "score": rounded(score),
                })
            })
            .collect(),
    )
}

/// A score as the views show it: three decimals.
pub(crate) fn rounded(score: f64) -> f64 {
    (score * 1000.0).round() / 1000.0
}

/// `GET /v1/profiles/{idType}/{id}`: the state, and its tags as of `now`.
pub fn profile_json(profile_id: &str, profile: &Profile, settings: &TagSettings, now: Timestamp) -> Json {
    let identities: Vec<Json> =
        profile.identities.iter().map(|i| json!({ "type": i.kind.as_str(), "id": i.value })).collect();
    let traits: serde_json::Map<String, Json> =
        profile.traits.iter().map(|(k, v)| (k.clone(), json!(v.value))).collect();
    let sessions: Vec<Json> = profile
        .sessions
        .recent
        .iter()
        .map(|s| json!({ "start": s.start.to_string(), "end": s.end.to_string(), "events": s.events }))
        .collect();
    json!({
        "profileId": profile_id,
        "identities": identities,
        "firstSeen": profile.first_seen.map(|t| t.to_string()),
        "lastSeen": profile.last_seen.map(|t| t.to_string()),
        "eventCount": profile.event_count(),
        "counters": profile.counters,
        "traits": traits,
        "groups": profile.groups,
        "sessions": { "count": profile.sessions.count(), "recent": sessions },
        "devices": profile.devices,
        "location": profile.location.as_ref().map(|l| &l.value),
        "mergedProfiles": profile.merged,
        "identityHistory": identity_history_json(profile),
        "tags": tags::tags(profile, settings, now),
        "series": tags::series(profile, settings, now, 30),
    })
}

/// Adds a profile's (or an account's) last evaluation to its view: `audiences` (name → entry
/// time) and `changes` (the latest transitions, oldest first).
pub fn add_evaluation(view: &mut Json, evaluated: &crate::changes::Evaluated) {
    let entered: serde_json::Map<String, Json> = evaluated
        .audiences
        .iter()
        .map(|(name, at)| (name.clone(), json!(Timestamp(*at).to_string())))
        .collect();
    view["audiences"] = Json::Object(entered);
    view["changes"] = evaluated.history.iter().map(|(at, change)| transition_json(*at, change)).collect();
}

/// One entry of a profile's (or an account's) changes: audience entries and exits,
/// lifecycle transitions, lead-score crossings.
fn transition_json(at: i64, change: &crate::webhook::Transition) -> Json {
    let mut entry = change.details();
    entry["at"] = json!(Timestamp(at).to_string());
    entry["type"] = json!(change.type_name());
    entry
}

/// A profile in a webhook delivery: its ids and the tags a CRM or a sales tool acts on.
pub fn profile_summary(profile_id: &str, profile: &Profile, tags: &[tags::Tag]) -> Json {
    const KEY_TAGS: [&str; 12] = [
        "lifecycle",
        "lead_score",
        "conversion_propensity",
        "engagement_level",
        "engagement_score",
        "intent_stage",
        "company",
        "industry",
        "employee_band",
        "job_title",
        "seniority",
        "country",
    ];
    let identities: Vec<Json> =
        profile.identities.iter().map(|i| json!({ "type": i.kind.as_str(), "id": i.value })).collect();
    let key_tags: serde_json::Map<String, Json> = tags
        .iter()
        .filter(|t| KEY_TAGS.contains(&t.name))
        .map(|t| (t.name.to_owned(), t.value.clone()))
        .collect();
    json!({ "profileId": profile_id, "identities": identities, "tags": key_tags })
}

/// The merges into a profile and the merges refused, oldest first.
fn identity_history_json(profile: &Profile) -> Json {
    let identity_json = |i: &Identity| json!({ "type": i.kind.as_str(), "id": i.value });
    let reason_json = |reason: &MergeReason| match reason {
        MergeReason::Shared(identity) => json!({ "sharedIdentity": identity_json(identity) }),
    };
    let entries = profile.identity_log.iter().map(|LogEntry { at, change }| match change {
        Change::Merged { from, identities, reason } => json!({
            "at": at.to_string(),
            "change": "merged",
            "from": from,
            "identities": identities.iter().map(identity_json).collect::<Vec<_>>(),
            "reason": reason_json(reason),
        }),
        Change::Refused { other, reason, refusal } => json!({
            "at": at.to_string(),
            "change": "refused",
            "other": other,
            "reason": reason_json(reason),
            "refusal": { "code": refusal.code(), "message": refusal.message() },
        }),
    });
    Json::Array(entries.collect())
}

/// One timeline entry: the event in Segment JSON, with what the collector added.
pub fn received_json(received: &Received) -> Json {
    let mut event = segment::to_json(&received.event);
    event["enrichment"] = json!({
        "geo": received.enrichment.geo,
        "device": received.enrichment.device,
    });
    event
}
