//! Ingest: `POST /v1/b` (the SDK's beacons) and Segment's HTTP Tracking API.
//!
//! The pipeline for both: authenticate the write key → check the origin → check the content
//! type and size → decode and validate (`core`) → rate-limit → enrich (`core`) → drop bots →
//! route each person's events to their ProfileObject, one request per object → answer once
//! every object has committed. A failure before that answer is a 503 the sender retries;
//! retries are harmless because objects skip message ids they have applied.

use std::collections::BTreeMap;

use base64::Engine;
use futures_util::future::join_all;
use portrait_core::config::{Config, SourceRef};
use portrait_core::enrich::{Geo, Received, enrich_all};
use portrait_core::limits::MAX_BATCH_BYTES;
use portrait_core::profile::{IdKind, Identity};
use portrait_core::{Decoded, Event, Rejected, Timestamp, beacon, segment};
use serde_json::json;
use wasm_bindgen::JsValue;
use worker::{Date, Env, Request, Url};

use crate::http::{self, ApiError, ApiResult, json_response};
use crate::internal::{self, Applied, Apply, Resolve, Resolved};
use crate::settings;

/// `POST /v1/b?k=<writeKey>`: the key is in the URL because `sendBeacon` cannot set headers.
pub async fn beacon(mut req: Request, env: &Env, config: &Config, url: &Url) -> ApiResult {
    let origin = http::origin(&req);
    let write_key = url.query_pairs().find(|(k, _)| k == "k").map(|(_, v)| v.into_owned());
    let result = async {
        let source = authenticate(config, write_key.as_deref(), origin.as_deref())?;
        require_content_type(&req, &["text/plain", "application/octet-stream"])?;
        let body = read_body(&mut req).await?;
        let decoded = beacon::decode(&body).map_err(|e| ApiError::invalid(&e))?;
        accept(decoded, source, env, &geo(&req)).await
    }
    .await;
    with_cors(result, origin.as_deref(), config, write_key.as_deref())
}

/// `POST /v1/batch` and the single-call endpoints. The write key comes as HTTP Basic auth
/// (user = key, as Segment's libraries send it) or as the body's `writeKey`.
pub async fn segment(mut req: Request, env: &Env, config: &Config, call: Option<&str>) -> ApiResult {
    let origin = http::origin(&req);
    let mut write_key = basic_auth_user(&req);
    let result = async {
        require_content_type(&req, &["application/json", "text/plain"])?;
        let body = read_body(&mut req).await?;
        let decoded = match call {
            None => segment::decode_batch(&body),
            Some(call) => segment::decode_single(call, &body).map(|(event, write_key)| Decoded {
                events: vec![event],
                write_key,
                ..Decoded::default()
            }),
        }
        .map_err(|e| ApiError::invalid(&e))?;
        if write_key.is_none() {
            write_key = decoded.write_key.clone();
        }
        let source = authenticate(config, write_key.as_deref(), origin.as_deref())?;
        accept(decoded, source, env, &geo(&req)).await
    }
    .await;
    with_cors(result, origin.as_deref(), config, write_key.as_deref())
}

/// `GET /v1/config/{writeKey}`: the SDK's remote settings. Public, cacheable for 5 minutes.
pub fn sdk_settings(config: &Config, write_key: &str) -> ApiResult {
    let source = config
        .source(write_key)
        .ok_or_else(|| ApiError::new(404, "unknown_write_key", "no source has this write key"))?;
    let mut response = json_response(200, &source.workspace.sdk)?;
    let headers = response.headers_mut();
    headers.set("Cache-Control", "public, max-age=300").map_err(ApiError::internal)?;
    headers.set("Access-Control-Allow-Origin", "*").map_err(ApiError::internal)?;
    Ok(response)
}

fn authenticate<'c>(
    config: &'c Config,
    write_key: Option<&str>,
    origin: Option<&str>,
) -> Result<SourceRef<'c>, ApiError> {
    let write_key = write_key.filter(|k| !k.is_empty()).ok_or_else(|| {
        ApiError::new(
            401,
            "missing_write_key",
            "send the write key as Basic auth, `writeKey`, or `?k=` for beacons",
        )
    })?;
    let source = config
        .source(write_key)
        .ok_or_else(|| ApiError::new(401, "unknown_write_key", "no source has this write key"))?;
    if let Some(origin) = origin
        && !source.source.allows_origin(origin)
    {
        return Err(ApiError::new(
            403,
            "origin_not_allowed",
            format!("origin {origin} may not use this write key"),
        ));
    }
    Ok(source)
}

/// CORS headers for origins the key's source allows, on success and on error alike, so the
/// SDK can read the status (and `Retry-After`) to decide whether to retry.
fn with_cors(result: ApiResult, origin: Option<&str>, config: &Config, write_key: Option<&str>) -> ApiResult {
    let allowed = match (origin, write_key.and_then(|k| config.source(k))) {
        (Some(origin), Some(source)) if source.source.allows_origin(origin) => Some(origin),
        _ => None,
    };
    let mut response = match result {
        Ok(response) => response,
        Err(error) => error.into_response().map_err(ApiError::internal)?,
    };
    if let Some(origin) = allowed {
        http::allow_origin(&mut response, origin).map_err(ApiError::internal)?;
    }
    Ok(response)
}

fn basic_auth_user(req: &Request) -> Option<String> {
    let header = req.headers().get("Authorization").ok()??;
    let encoded = header.strip_prefix("Basic ")?.trim();
    let decoded = base64::engine::general_purpose::STANDARD.decode(encoded).ok()?;
    let text = String::from_utf8(decoded).ok()?;
    Some(text.split_once(':').map_or(text.as_str(), |(user, _)| user).to_owned())
}

fn require_content_type(req: &Request, accepted: &[&str]) -> Result<(), ApiError> {
    let content_type = req.headers().get("Content-Type").ok().flatten().unwrap_or_default();
    let media_type = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    match accepted.contains(&media_type.as_str()) {
        true => Ok(()),
        false => Err(ApiError::new(
            415,
            "unsupported_media_type",
            format!("content type `{content_type}` is not accepted here; use {}", accepted.join(" or ")),
        )),
    }
}

/// Reads the body, refusing (413) as soon as it passes the limit, whatever Content-Length says.
async fn read_body(req: &mut Request) -> Result<Vec<u8>, ApiError> {
    let too_large = |size: usize| {
        ApiError::invalid(&portrait_core::Error::new("", portrait_core::ErrorKind::BodyTooLarge { size }))
    };
    let declared = req.headers().get("Content-Length").ok().flatten().and_then(|v| v.parse::<usize>().ok());
    if let Some(size) = declared.filter(|&size| size > MAX_BATCH_BYTES) {
        return Err(too_large(size));
    }
    let mut stream = req.stream().map_err(ApiError::internal)?;
    let mut body = Vec::new();
    use futures_util::StreamExt;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| ApiError::new(400, "unreadable_body", e.to_string()))?;
        body.extend_from_slice(&chunk);
        if body.len() > MAX_BATCH_BYTES {
            return Err(too_large(body.len()));
        }
    }
    Ok(body)
}

/// The location the edge attached to the request (`request.cf`); read field by field so a
/// missing field is `None`, never an error. Locally, Miniflare supplies its own `cf`.
fn geo(req: &Request) -> Geo {
    let cf = js_sys::Reflect::get(req.inner(), &JsValue::from_str("cf")).unwrap_or(JsValue::UNDEFINED);
    let field = |key: &str| js_sys::Reflect::get(&cf, &JsValue::from_str(key)).unwrap_or(JsValue::UNDEFINED);
    let text = |key: &str| field(key).as_string().filter(|s| !s.is_empty());
    Geo {
        country: text("country"),
        region: text("region"),
        city: text("city"),
        postal_code: text("postalCode"),
        timezone: text("timezone"),
        continent: text("continent"),
        asn: field("asn").as_f64().map(|n| n as u32),
        as_organization: text("asOrganization"),
    }
}

async fn accept(decoded: Decoded, source: SourceRef<'_>, env: &Env, geo: &Geo) -> ApiResult {
    let now = Date::now().as_millis() as f64;
    settings::take_tokens(
        source.source.write_key.get_ref(),
        source.source.rate_limit,
        decoded.events.len(),
        now,
    )?;
    let received_at = Timestamp(now as i64);
    let indices = decoded.accepted_indices();
    let mut rejected = decoded.rejected;
    let mut bots = 0u32;
    let mut accepted: Vec<Received> = Vec::with_capacity(decoded.events.len());
    for (index, enriched) in indices.into_iter().zip(enrich_all(decoded.events, received_at, geo)) {
        match enriched {
            Ok(received) if received.is_bot() => bots += 1,
            Ok(received) => accepted.push(received),
            Err(error) => rejected.push(Rejected::new(index, error)),
        }
    }
    rejected.sort_by_key(|r| r.index);
    let workspace = source.workspace.id.get_ref();
    let groups = route(accepted, env, workspace).await?;
    let calls = groups.into_iter().map(|(profile_id, events)| async move {
        let stub = internal::profile_stub(env, workspace, &profile_id)?;
        let apply = Apply { workspace: workspace.clone(), profile_id, events };
        internal::call::<_, Applied>(&stub, "apply", &apply).await
    });
    let (mut applied, mut duplicates) = (0u32, 0u32);
    for outcome in join_all(calls).await {
        let counts = outcome?.ok_or_else(|| ApiError::internal("apply answered 404"))?;
        applied += counts.applied;
        duplicates += counts.duplicates;
    }
    if bots > 0 {
        worker::console_log!("source {}: {bots} bot events dropped", source.source.name);
    }
    let rejected_json: Vec<serde_json::Value> = rejected
        .iter()
        .map(|r| json!({ "index": r.index, "code": r.error.kind.code(), "message": r.error.message(), "path": r.error.path }))
        .collect();
    let body =
        json!({ "accepted": applied, "duplicates": duplicates, "bots": bots, "rejected": rejected_json });
    let nothing_accepted = applied == 0 && duplicates == 0 && bots == 0;
    match rejected.first() {
        Some(first) if nothing_accepted => {
            let mut error = ApiError::invalid(&first.error);
            error.status = 400;
            error.details = Some(Box::new(json!({ "rejected": body["rejected"] })));
            Err(error)
        }
        _ => json_response(200, &body),
    }
}

/// Groups events by the profile they belong to. Events with an anonymous id go to that
/// id's profile; events with only a user id go to the profile the IdentityIndex knows for
/// it (creating the link on first sight).
async fn route(
    events: Vec<Received>,
    env: &Env,
    workspace: &str,
) -> Result<BTreeMap<String, Vec<Received>>, ApiError> {
    let mut groups: BTreeMap<String, Vec<Received>> = BTreeMap::new();
    let mut by_user: BTreeMap<String, Vec<Received>> = BTreeMap::new();
    for received in events {
        match routing_key(&received.event) {
            RoutingKey::Anonymous(id) => {
                groups.entry(internal::profile_id_for_anonymous(&id)).or_default().push(received)
            }
            RoutingKey::User(id) => by_user.entry(id).or_default().push(received),
        }
    }
    let lookups = by_user.keys().map(|user_id| async move {
        let identity = Identity::new(IdKind::UserId, user_id);
        let stub = internal::index_stub(env, workspace, internal::index_shard(&identity))?;
        let resolve = Resolve { identity, create_as: Some(internal::profile_id_for_user(user_id)) };
        let resolved: Option<Resolved> = internal::call(&stub, "resolve", &resolve).await?;
        resolved.map(|r| r.profile_id).ok_or_else(|| ApiError::internal("resolve answered 404"))
    });
    let profile_ids = join_all(lookups).await;
    for ((_, events), profile_id) in by_user.into_iter().zip(profile_ids) {
        groups.entry(profile_id?).or_default().extend(events);
    }
    Ok(groups)
}

enum RoutingKey {
    Anonymous(String),
    User(String),
}

fn routing_key(event: &Event) -> RoutingKey {
    match event.anonymous_id.as_deref().filter(|id| !id.is_empty()) {
        Some(id) => RoutingKey::Anonymous(id.to_owned()),
        // Validation guarantees one of the two.
        None => RoutingKey::User(event.user_id.clone().unwrap_or_default()),
    }
}
