//! The Portrait collector: a Cloudflare Worker (this entry point) and its Durable Objects.
//!
//! A thin shell: it reads HTTP requests, storage and the clock, and calls `portrait-core` for
//! every rule. Map:
//! - [`ingest`]: `POST /v1/b` (beacons) and the Segment endpoints: auth, CORS, limits,
//!   decoding, enrichment, and routing each person's events to their ProfileObject.
//! - [`admin`]: the profile API behind the admin key.
//! - [`profile_object`]: `ProfileObject`, one per person: dedupe, apply, timeline, erasure.
//! - [`identity_index`]: `IdentityIndex`, sharded by identifier hash: identifier → profile.
//! - [`account_object`]: `AccountObject`, one per B2B account: its members and traits.
//! - [`audience_object`]: `AudienceObject`, a shard of an audience's members.
//! - [`webhook_object`]: `WebhookObject`, a shard of a webhook's deliveries: signing, retries, dead letters.
//! - [`outbox`]: what profile and account changes send to audiences and webhooks.
//! - [`source_stats`]: `SourceStats`, per-source counters of what is not profiled (bots).
//! - [`settings`]: the configuration from the environment, admin keys, rate limits.
//! - [`http`]: responses, errors and CORS headers.
//! - [`size_classes`]: the wasm instance's allocator (free lists by size class).
//! - [`promptly`]: runs the Worker's and the objects' futures (no task queue).
//! - [`internal`]: object names and the typed messages between the Worker and its objects.
//!
//! Storage names always start with the workspace id, so no request can reach another
//! workspace's objects.

mod account_object;
mod admin;
mod audience_object;
mod http;
mod identity_index;
mod ingest;
mod internal;
mod outbox;
mod profile_object;
mod promptly;
mod settings;
#[cfg(any(target_arch = "wasm32", test))]
mod size_classes;
mod source_stats;
mod webhook_object;

use wasm_bindgen::JsValue;
use worker::{Env, Method, Request, Response, Result};

use crate::http::{ApiError, json_response};

#[cfg(target_arch = "wasm32")]
#[global_allocator]
static ALLOCATOR: size_classes::SizeClasses = size_classes::SizeClasses::new();

/// The Worker's `fetch` (what `#[event(fetch)]` would export, run by [`promptly`] instead of
/// wasm-bindgen's task queue).
#[wasm_bindgen::prelude::wasm_bindgen]
pub fn fetch(
    req: worker::web_sys::Request,
    env: Env,
    _ctx: worker::worker_sys::Context,
) -> std::result::Result<JsValue, JsValue> {
    promptly::run(async move {
        let response = match route(Request::from(req), &env).await {
            Ok(response) => response,
            Err(error) => error.into_response()?,
        };
        Ok(worker::web_sys::Response::from(response).into())
    })
}

/// The answer to a request that a wasm trap stranded (`js/entry.mjs` asks the fresh instance
/// for it): 503, retry.
#[wasm_bindgen::prelude::wasm_bindgen]
pub fn unavailable() -> Result<worker::web_sys::Response> {
    let error = ApiError::internal("the instance trapped while this request was in flight");
    Ok(error.into_response()?.into())
}

async fn route(req: Request, env: &Env) -> std::result::Result<Response, ApiError> {
    let target = http::Target::of(&req);
    let path = target.path();
    if path == "/healthz" {
        return json_response(200, &serde_json::json!({ "ok": true }));
    }
    let config = settings::config(env, target.host())?;
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    // HEAD is answered as GET (the runtime sends no body with it).
    let method = match req.method() {
        Method::Head => Method::Get,
        method => method,
    };
    match (method, segments.as_slice()) {
        (Method::Options, _) => http::preflight(&req, &config),
        (Method::Post, ["v1", "b"]) => ingest::beacon(req, env, &config, &target).await,
        // `/v1/import`: where analytics-ruby and analytics-java send their batches.
        (Method::Post, ["v1", "batch" | "import"]) => ingest::segment(req, env, &config, None).await,
        (Method::Post, ["v1", call @ ("track" | "identify" | "page" | "screen" | "group" | "alias")]) => {
            ingest::segment(req, env, &config, Some(call)).await
        }
        (Method::Get, ["v1", "config", write_key]) => ingest::sdk_settings(&config, write_key),
        (method @ Method::Delete, ["v1", "profiles", _, _])
        | (method @ Method::Get, ["v1", "profiles", ..]) => {
            let rest = &segments[2..];
            admin::profiles(req, method, rest, env, &config).await
        }
        (Method::Get, ["v1", "accounts", rest @ ..]) => admin::accounts(&req, rest, env, &config).await,
        (Method::Get, ["v1", "audiences", rest @ ..]) => admin::audiences(&req, rest, env, &config).await,
        (Method::Get, ["v1", "webhooks", name, "deliveries"]) => {
            admin::deliveries(&req, name, env, &config).await
        }
        (Method::Get, ["v1", "sources", source, "stats"]) => {
            admin::source_stats(&req, source, env, &config).await
        }
        (_, segments) => Err(match allowed_methods(segments) {
            Some(allow) => ApiError::method_not_allowed(&req.method(), allow),
            None => ApiError::new(404, "not_found", format!("no route for {} {path}", req.method().as_ref())),
        }),
    }
}

/// The methods a route's path answers (besides `OPTIONS`, a CORS preflight), for a 405's
/// `Allow`; `None`: no route.
fn allowed_methods(segments: &[&str]) -> Option<&'static str> {
    match segments {
        ["v1", "b" | "batch" | "import" | "track" | "identify" | "page" | "screen" | "group" | "alias"] => {
            Some("POST")
        }
        ["v1", "profiles", _, _] => Some("GET, HEAD, DELETE"),
        ["v1", "config", _]
        | ["v1", "profiles", _, _, "events" | "export" | "accounts"]
        | ["v1", "accounts", _]
        | ["v1", "accounts", "domain", _]
        | ["v1", "audiences"]
        | ["v1", "audiences", _, "members"]
        | ["v1", "webhooks", _, "deliveries"]
        | ["v1", "sources", _, "stats"] => Some("GET, HEAD"),
        _ => None,
    }
}
