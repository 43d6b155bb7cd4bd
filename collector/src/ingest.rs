//! Ingest: `POST /v1/b` (the SDK's beacons) and Segment's HTTP Tracking API.
//!
//! The pipeline: for a beacon, authenticate the write key → check the origin → check the
//! content type and size; for Segment JSON, check the content type and size → decode →
//! authenticate (the key may be in the body) → check the origin. Then, for both: rate-limit
//! → route each person's events to their ProfileObject, one
//! request per object, as a beacon → the object decodes and validates, enriches, drops bots,
//! skips message ids it has applied and commits → answer once every object has committed.
//! A failure before that answer is a 503 the sender retries; retries are harmless.
//!
//! Each event is decoded once on its way: an SDK beacon holding one person (the usual case)
//! is forwarded untouched after a `peek` at its identities; a batch of several people, or
//! Segment JSON, is decoded here, split, time-corrected and re-encoded per person.

use std::collections::BTreeMap;

use base64::Engine;
use futures_util::future::join_all;
use portrait_core::config::{Config, SourceRef};
use portrait_core::enrich::{Geo, location_is_the_persons};
use portrait_core::identity::RoutingKey;
use portrait_core::limits::MAX_BATCH_BYTES;
use portrait_core::routing::Plan;
use portrait_core::{Decoded, Timestamp, beacon, segment};
use serde::Serialize;
use serde_json::json;
use wasm_bindgen::JsValue;
use worker::worker_sys::ext::RequestExt;
use worker::{Env, Request};

use crate::http::{self, ApiError, ApiResult, Target, json_response};
use crate::internal::{self, Applied, Apply, RejectedEvent};
use crate::profile_object::PROFILE_LIMIT;
use crate::settings;
use crate::source_stats::{self, Counts, REJECTED_PREFIX};

/// `POST /v1/b?k=<writeKey>`: the key is in the URL because `sendBeacon` cannot set headers.
pub async fn beacon(mut req: Request, env: &Env, config: &Config, target: &Target) -> ApiResult {
    let origin = http::origin(&req);
    let write_key = target.param("k");
    let result = async {
        let source = authenticate(config, write_key.as_deref(), origin.as_deref())?;
        require_content_type(&req, &["text/plain", "application/octet-stream"])?;
        let body = read_body(&mut req).await?;
        let peek = beacon::peek(&body).map_err(|e| ApiError::invalid(&e))?;
        let now = take_tokens(source, peek.events)?;
        let rules = &source.workspace.identity;
        let plan = Plan::for_beacon(body, &peek, now, rules).map_err(|e| ApiError::invalid(&e))?;
        deliver(plan, source, env, &geo(&req), now, peek.dropped).await
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
        // Random: the runtime's clock stands still during a request, and two requests of the
        // same untimed event at once must be two events.
        let arrival = (js_sys::Math::random() * 2f64.powi(53)) as u64;
        let decoded =
            match call {
                None => segment::decode_batch(&body, arrival),
                Some(call) => segment::decode_single(call, &body, arrival).map(|(event, write_key)| {
                    Decoded { events: vec![event], write_key, ..Decoded::default() }
                }),
            }
            .map_err(|e| ApiError::invalid(&e))?;
        if write_key.is_none() {
            write_key = decoded.write_key.clone();
        }
        let source = authenticate(config, write_key.as_deref(), origin.as_deref())?;
        let now = take_tokens(source, decoded.events.len())?;
        let location = match location_is_the_persons(origin.is_some(), &decoded.events) {
            true => geo(&req),
            false => Geo::default(),
        };
        let plan = Plan::split(decoded, now, &source.workspace.identity);
        deliver(plan, source, env, &location, now, 0).await
    }
    .await;
    with_cors(result, origin.as_deref(), config, write_key.as_deref())
}

/// `GET /v1/config/{writeKey}`: the SDK's remote settings. Public, cacheable for 5 minutes;
/// any page may read the answer, a 404 for an unknown key too (the SDK reports it).
pub fn sdk_settings(config: &Config, write_key: &str) -> ApiResult {
    let mut response = match config.source(write_key) {
        Some(source) => {
            let mut response = json_response(200, &source.workspace.sdk)?;
            response.headers_mut().set("Cache-Control", "public, max-age=300").map_err(ApiError::internal)?;
            response
        }
        None => ApiError::new(404, "unknown_write_key", "no source has this write key")
            .into_response()
            .map_err(ApiError::internal)?,
    };
    http::allow_origin(&mut response, "*").map_err(ApiError::internal)?;
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

/// CORS headers for origins the key's source allows, on success and on error alike, and for
/// any origin on an error, so the SDK can read the status (and `Retry-After`) to decide
/// whether to retry.
fn with_cors(result: ApiResult, origin: Option<&str>, config: &Config, write_key: Option<&str>) -> ApiResult {
    let allowed = match (origin, write_key.and_then(|k| config.source(k))) {
        (Some(origin), Some(source)) if source.source.allows_origin(origin) => Some(origin),
        _ => None,
    };
    let mut response = match result {
        Ok(response) => response,
        Err(error) => error.into_response().map_err(ApiError::internal)?,
    };
    match (allowed, response.status_code() >= 400) {
        (Some(origin), _) => http::allow_origin(&mut response, origin).map_err(ApiError::internal)?,
        // Any page may read a refusal (a wrong key, a foreign origin): it holds no data, and
        // the SDK must see the 401 or 403 to stop retrying and report it.
        (None, true) => http::allow_origin(&mut response, "*").map_err(ApiError::internal)?,
        (None, false) => {}
    }
    Ok(response)
}

fn basic_auth_user(req: &Request) -> Option<String> {
    let header = req.headers().get("Authorization").ok()??;
    let encoded = http::credentials(&header, "Basic")?;
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

/// Reads the body, refusing (413) a declared length over the limit at once, and a chunked
/// body as soon as it passes the limit.
async fn read_body(req: &mut Request) -> Result<Vec<u8>, ApiError> {
    // gzip and deflate bodies arrive decompressed (`collector/js/entry.mjs`).
    let encoding = req.headers().get("Content-Encoding").ok().flatten().unwrap_or_default();
    if !encoding.trim().is_empty() && !encoding.trim().eq_ignore_ascii_case("identity") {
        return Err(ApiError::new(
            415,
            "unsupported_content_encoding",
            format!("content encoding `{encoding}` is not accepted; send the body as is, gzip or deflate"),
        ));
    }
    let too_large = |size: u64| {
        ApiError::invalid(&portrait_core::Error::new("", portrait_core::ErrorKind::BodyTooLarge { size }))
    };
    // As a u64: a length past 4 GB would not fit wasm's `usize`, and is too large all the same.
    let declared =
        req.headers().get("Content-Length").ok().flatten().and_then(|v| v.trim().parse::<u64>().ok());
    match declared {
        Some(size) if size > MAX_BATCH_BYTES as u64 => return Err(too_large(size)),
        // The runtime holds the body to its declared length: read it in one piece.
        Some(_) => {
            return req.bytes().await.map_err(|e| ApiError::new(400, "unreadable_body", e.to_string()));
        }
        None => {}
    }
    let mut stream = req.stream().map_err(ApiError::internal)?;
    let mut body = Vec::new();
    use futures_util::StreamExt;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| ApiError::new(400, "unreadable_body", e.to_string()))?;
        body.extend_from_slice(&chunk);
        if body.len() > MAX_BATCH_BYTES {
            return Err(too_large(body.len() as u64));
        }
    }
    Ok(body)
}

/// The location the edge attached to the request (`request.cf`), by its typed getters (no
/// property name built per field); a missing or odd field is `None`, never an error.
/// Locally, Miniflare supplies its own `cf`.
fn geo(req: &Request) -> Geo {
    let Some(cf) = req.inner().cf() else { return Geo::default() };
    let text = |field: Result<Option<String>, JsValue>| field.ok().flatten().filter(|s| !s.is_empty());
    Geo {
        country: text(cf.country()),
        region: text(cf.region()),
        city: text(cf.city()),
        postal_code: text(cf.postal_code()),
        timezone: text(cf.timezone().map(Some)),
        continent: text(cf.continent()),
        asn: cf.asn().ok().flatten(),
        as_organization: text(cf.as_organization()),
    }
}

/// Takes the events from the source's rate budget; the time is the events' `receivedAt`.
fn take_tokens(source: SourceRef<'_>, events: usize) -> Result<Timestamp, ApiError> {
    let now = internal::now_ms();
    settings::take_tokens(&source.source.write_key, source.source.rate_limit, events, now as f64)?;
    Ok(Timestamp(now))
}

/// The answer to an accepted batch (a struct, not a `json!` map: built per request).
#[derive(Serialize)]
struct IngestAnswer<'a> {
    accepted: u32,
    duplicates: u32,
    bots: u32,
    rejected: &'a [RejectedEvent],
}

/// Adds `counts` to the source's statistics (one shard of them, by time).
async fn add_counts(
    env: &Env,
    source: SourceRef<'_>,
    received_at: Timestamp,
    counts: Vec<(String, i64)>,
) -> Result<(), ApiError> {
    if counts.is_empty() {
        return Ok(());
    }
    let shard = received_at.0.unsigned_abs() % source_stats::SHARDS;
    let stub = internal::stats_stub(env, &source.workspace.id, &source.source.name, shard)?;
    internal::call::<_, Counts>(&stub, "add", &Counts { counts }).await?;
    Ok(())
}

/// Sends each group to its profile and adds up the answers. `sdk_dropped`: the events the
/// sending SDK's full queue dropped, counted per source.
async fn deliver(
    plan: Plan,
    source: SourceRef<'_>,
    env: &Env,
    geo: &Geo,
    received_at: Timestamp,
    sdk_dropped: u32,
) -> ApiResult {
    let workspace = &source.workspace.id;
    let calls = plan.groups.into_iter().map(|group| async move {
        let profile_id = match &group.key {
            RoutingKey::User(user_id) => internal::user_profile(env, workspace, user_id).await?,
            anonymous => anonymous.profile_id(),
        };
        let stub = internal::profile_stub(env, workspace, &profile_id)?;
        let header = Apply {
            workspace: workspace.clone(),
            profile_id,
            received_at: received_at.0,
            geo: geo.clone(),
            indices: group.indices,
        };
        internal::apply(&stub, &header, &group.beacon).await
    });
    let mut total =
        Applied { rejected: plan.rejected.iter().map(RejectedEvent::from).collect(), ..Applied::default() };
    let mut throttled = None;
    let mut failed = None;
    for outcome in join_all(calls).await {
        let applied = match outcome {
            Ok(applied) => applied,
            // The other people's objects may have applied theirs: counted below.
            Err(error) => {
                failed.get_or_insert(error);
                continue;
            }
        };
        if let Some(invalid) = applied.invalid {
            let mut error = ApiError::new(400, "malformed", invalid.message);
            error.code = invalid.code.into();
            error.path = invalid.path;
            return Err(error);
        }
        throttled = throttled.max(applied.throttled);
        total.accepted += applied.accepted;
        total.duplicates += applied.duplicates;
        total.bots += applied.bots;
        total.rejected.extend(applied.rejected);
    }
    let nothing_accepted = total.accepted == 0 && total.duplicates == 0 && total.bots == 0;
    let mut counts = Vec::new();
    // The first batch to apply any of its events counts its dropped count: a retry finds
    // them applied (duplicates), and one refused whole is answered 400 (the SDK hands its
    // count on to the next batch). So does one answered 429 for one person, or 503 for a
    // failure, after the others' objects applied theirs: its answer says so
    // (`dropped_counted`), and the SDK does not send the count again (its retry may be
    // split, and a part with none of the applied events would count it again).
    let dropped_counted = sdk_dropped > 0 && total.duplicates == 0 && !nothing_accepted;
    if dropped_counted {
        counts.push(("sdk_dropped_events".to_owned(), i64::from(sdk_dropped)));
    }
    let limited = throttled.map(|wait| settings::rate_limited("one person", PROFILE_LIMIT, wait));
    let stopped = match (failed, limited) {
        // A failure's 503, retried no sooner than the throttled person may send again.
        (Some(mut error), Some(limited)) => {
            error.retry_after_seconds = error.retry_after_seconds.max(limited.retry_after_seconds);
            Some(error)
        }
        (failed, limited) => failed.or(limited),
    };
    if let Some(mut error) = stopped {
        add_counts(env, source, received_at, counts).await?;
        if dropped_counted {
            error.details = Some(Box::new(json!({ "dropped_counted": sdk_dropped })));
        }
        return Err(error);
    }
    total.rejected.sort_by_key(|r| r.index);
    if total.bots > 0 {
        counts.push(("bot_events".to_owned(), i64::from(total.bots)));
    }
    // By code: the answer's `rejected` list is read by no Segment library, so the source's
    // stats are where a team finds the events it sends that are refused.
    let mut rejected_by_code: BTreeMap<&str, i64> = BTreeMap::new();
    for rejected in &total.rejected {
        *rejected_by_code.entry(rejected.code.as_str()).or_default() += 1;
    }
    counts.extend(rejected_by_code.into_iter().map(|(code, n)| (format!("{REJECTED_PREFIX}{code}"), n)));
    add_counts(env, source, received_at, counts).await?;
    match total.rejected.first() {
        Some(first) if nothing_accepted => {
            let mut error = ApiError::new(400, "rejected", first.message.clone());
            error.code = first.code.clone().into();
            error.path = first.path.clone();
            error.details = Some(Box::new(json!({ "rejected": total.rejected })));
            Err(error)
        }
        _ => json_response(
            200,
            &IngestAnswer {
                accepted: total.accepted,
                duplicates: total.duplicates,
                bots: total.bots,
                rejected: &total.rejected,
            },
        ),
    }
}
