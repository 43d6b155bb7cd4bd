//! The profile as the admin API shows it: JSON with camelCase names, ISO-8601 times, and the
//! tags derived from the state, each with its kind and the reason behind it.

use serde::Serialize;
use serde_json::{Value as Json, json};

use crate::enrich::Received;
use crate::identity::{Change, Identity, LogEntry, MergeReason};
use crate::profile::{Profile, Stamped, Touch};
use crate::segment;
use crate::time::Timestamp;
use crate::topics::interests::Interests;
use crate::topics::{BUILTIN_MODEL, Model};

/// factual: stated or observed; analytical: computed from behaviour; predictive: estimated.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TagKind {
    Factual,
    Analytical,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Tag {
    pub name: &'static str,
    pub kind: TagKind,
    pub value: Json,
    /// When the value last changed (the event it came from), if it came from one event.
    #[serde(rename = "changedAt", skip_serializing_if = "Option::is_none")]
    pub changed_at: Option<String>,
    /// The rule or events behind the value.
    pub reason: String,
}

/// The tags of a profile. The tag-system issue extends this set; each tag here is derived
/// only from the profile state, so it is always current.
pub fn tags(profile: &Profile) -> Vec<Tag> {
    let mut tags = Vec::new();
    let mut tag = |name, kind, value: Json, changed_at: Option<String>, reason: String| {
        tags.push(Tag { name, kind, value, changed_at, reason });
    };
    if let Some(Stamped { stamp, value: geo }) = &profile.location {
        let at = Some(stamp.at.to_string());
        let fields = [
            ("country", &geo.country),
            ("region", &geo.region),
            ("city", &geo.city),
            ("timezone", &geo.timezone),
            ("network", &geo.as_organization),
        ];
        for (name, value) in fields {
            if let Some(value) = value {
                tag(
                    name,
                    TagKind::Factual,
                    json!(value),
                    at.clone(),
                    "edge location of the latest event".into(),
                );
            }
        }
    }
    if let Some(device) = profile.main_device() {
        let count = profile.devices[device];
        let mut parts = device.splitn(3, '/');
        let reason = format!("most used device: {count} of {} events", profile.event_count());
        for name in ["device_type", "browser", "os"] {
            if let Some(part) = parts.next().filter(|p| *p != "unknown") {
                tag(name, TagKind::Factual, json!(part), None, reason.clone());
            }
        }
    }
    for (name, slot) in [("first_touch", &profile.first_touch), ("last_touch", &profile.last_touch)] {
        if let Some(Stamped { stamp, value }) = slot {
            tag(
                name,
                TagKind::Factual,
                touch_json(value),
                Some(stamp.at.to_string()),
                "campaign or referrer of a page view".into(),
            );
        }
    }
    if let (false, Some(last_seen)) = (profile.interests.is_empty(), profile.last_seen) {
        tag(
            "interests",
            TagKind::Analytical,
            interests_json(&profile.interests, last_seen, 10),
            None,
            "topics of the pages read, classified in the browser, weighted by attention, \
             halved every 14 days; scored as of the last event"
                .into(),
        );
    }
    if let (false, Some(last_seen)) = (profile.site_tags.is_empty(), profile.last_seen) {
        let top = profile.site_tags.top(last_seen.0, 10);
        let value =
            top.into_iter().map(|(tag, score)| json!({ "tag": tag, "score": rounded(score) })).collect();
        tag(
            "site_tags",
            TagKind::Analytical,
            Json::Array(value),
            None,
            "the workspace's tag rules matched on pages read, weighted by attention, halved every \
             14 days; scored as of the last event"
                .into(),
        );
    }
    let page_views = profile.counters.get("$page").copied().unwrap_or(0);
    tag("page_views", TagKind::Analytical, json!(page_views), None, "count of page calls".into());
    tag(
        "sessions",
        TagKind::Analytical,
        json!(profile.sessions.count()),
        None,
        format!("runs of activity without a {}-minute gap", crate::profile::SESSION_GAP_MS / 60_000),
    );
    tags
}

/// The strongest `limit` interests, `[{id, name, path, score}]`, scored at `at` and named
/// by the builtin topic model.
pub(crate) fn interests_json(interests: &Interests, at: Timestamp, limit: usize) -> Json {
    static MODEL: std::sync::OnceLock<Option<Model>> = std::sync::OnceLock::new();
    let model = MODEL.get_or_init(|| Model::decode(BUILTIN_MODEL).ok());
    let top = interests.top(at.0, limit);
    Json::Array(
        top.into_iter()
            .map(|(id, score)| {
                let topic = model.as_ref().and_then(|m| m.topic(id));
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
fn rounded(score: f64) -> f64 {
    (score * 1000.0).round() / 1000.0
}

fn touch_json(touch: &Touch) -> Json {
    let mut map = serde_json::Map::new();
    let fields = [
        ("source", &touch.source),
        ("medium", &touch.medium),
        ("campaign", &touch.campaign),
        ("term", &touch.term),
        ("content", &touch.content),
        ("referrerHost", &touch.referrer_host),
    ];
    for (key, value) in fields {
        if let Some(value) = value {
            map.insert(key.into(), json!(value));
        }
    }
    Json::Object(map)
}

/// `GET /v1/profiles/{idType}/{id}`.
pub fn profile_json(profile_id: &str, profile: &Profile) -> Json {
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
        "tags": tags(profile),
    })
}

/// The merges into a profile and the merges refused, oldest first.
fn identity_history_json(profile: &Profile) -> Json {
    let identity_json = |i: &Identity| json!({ "type": i.kind.as_str(), "id": i.value });
    let reason_json = |reason: &MergeReason| match reason {
        MergeReason::Shared(identity) => json!({ "sharedIdentity": identity_json(identity) }),
        MergeReason::Alias { previous_id } => json!({ "alias": previous_id }),
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
