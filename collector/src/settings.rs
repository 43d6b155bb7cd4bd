//! Configuration from the environment, admin keys from secrets, and per-source rate limits.
//!
//! The configuration is the TOML text of the `PORTRAIT_CONFIG` variable (see
//! `collector/portrait.dev.toml` and the README); it is parsed once per isolate: bindings are
//! fixed for an isolate's life (changing them deploys a new version).

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use portrait_core::config::{Config, Environment, RateLimit, Workspace, constant_time_eq};
use worker::Env;

use crate::http::{ApiError, credentials};

thread_local! {
    static PARSED: RefCell<Option<Rc<Config>>> = const { RefCell::new(None) };
    static BUCKETS: RefCell<HashMap<String, Bucket>> = RefCell::new(HashMap::new());
}

/// The configuration for a request to `url`, or a 503 that says what is wrong with it.
pub fn config(env: &Env, host: &str) -> Result<Rc<Config>, ApiError> {
    let config = parsed(env)?;
    let local = matches!(host, "127.0.0.1" | "localhost" | "[::1]");
    if config.environment == Environment::Development && !local {
        return Err(ApiError::new(
            503,
            "development_config",
            "this deployment runs the development configuration, whose keys are public; \
             set PORTRAIT_CONFIG to a production configuration",
        ));
    }
    Ok(config)
}

/// The settings of `workspace`, for objects (the Worker checked the workspace's key), or the
/// defaults if the workspace was removed from the configuration since.
pub fn workspace_settings<T>(
    env: &Env,
    workspace: &str,
    read: impl FnOnce(Option<&Workspace>) -> T,
) -> Result<T, ApiError> {
    let config = parsed(env)?;
    Ok(read(config.workspaces.iter().find(|w| w.id == workspace)))
}

/// `PORTRAIT_CONFIG`, parsed once per isolate.
fn parsed(env: &Env) -> Result<Rc<Config>, ApiError> {
    let config = match PARSED.with_borrow(Clone::clone) {
        Some(config) => config,
        None => {
            let text = env
                .var("PORTRAIT_CONFIG")
                .map_err(|_| ApiError::new(503, "no_config", "the PORTRAIT_CONFIG variable is not set"))?
                .to_string();
            let config = Rc::new(Config::parse(&text).map_err(|e| {
                worker::console_error!("PORTRAIT_CONFIG: {e}");
                ApiError::new(503, "bad_config", format!("PORTRAIT_CONFIG: {e}"))
            })?);
            PARSED.set(Some(config.clone()));
            config
        }
    };
    Ok(config)
}

/// The workspace whose admin key is presented as `Authorization: Bearer <key>`.
pub fn admin_workspace<'c>(
    config: &'c Config,
    env: &Env,
    authorization: Option<&str>,
) -> Result<&'c Workspace, ApiError> {
    let presented = authorization.and_then(|h| credentials(h, "Bearer")).ok_or_else(|| {
        ApiError::new(401, "missing_admin_key", "send the admin key as `Authorization: Bearer <key>`")
    })?;
    let mut found = None;
    for workspace in &config.workspaces {
        for secret in &workspace.admin_key_secrets {
            // A secret that is not set matches nothing (and is reported, not fatal).
            let Ok(key) = env.secret(secret) else {
                worker::console_warn!("admin key secret {} is not set", secret);
                continue;
            };
            let key = key.to_string();
            if !key.is_empty() && constant_time_eq(key.as_bytes(), presented.trim().as_bytes()) {
                // One key set as two workspaces' secrets: which one it opens is no guess to make.
                if found.is_some_and(|first: &Workspace| first.id != workspace.id) {
                    return Err(ApiError::new(
                        503,
                        "bad_config",
                        "this admin key is the value of two workspaces' secrets: give each its own",
                    ));
                }
                found = Some(workspace);
            }
        }
    }
    found.ok_or_else(|| ApiError::new(401, "bad_admin_key", "the admin key is not valid"))
}

/// A token bucket: `limit.events_per_second` refill, `limit.burst` capacity. Sources keep one
/// per isolate (cheap, never a shared bottleneck, approximate across isolates: documented in
/// SECURITY.md and ARCHITECTURE.md); each ProfileObject keeps one for its person.
pub struct Bucket {
    tokens: f64,
    updated_ms: f64,
}

impl Bucket {
    pub fn full(limit: RateLimit, now_ms: f64) -> Bucket {
        Bucket { tokens: f64::from(limit.burst), updated_ms: now_ms }
    }

    /// Takes `events` tokens, or says how many seconds to wait before trying again.
    pub fn take(&mut self, limit: RateLimit, events: usize, now_ms: f64) -> Result<(), u64> {
        let burst = f64::from(limit.burst);
        let rate = f64::from(limit.events_per_second);
        self.tokens = (self.tokens + (now_ms - self.updated_ms).max(0.0) / 1000.0 * rate).min(burst);
        self.updated_ms = now_ms;
        // A batch larger than the burst passes when the bucket is full, then empties it.
        let wanted = (events as f64).min(burst);
        if wanted <= self.tokens {
            self.tokens -= wanted;
            return Ok(());
        }
        Err(((wanted - self.tokens) / rate).ceil().max(1.0) as u64)
    }
}

/// A 429 with `Retry-After: wait` for a limit of `limit` on `what`.
pub fn rate_limited(what: &str, limit: RateLimit, wait: u64) -> ApiError {
    let message =
        format!("{what} is limited to {} events per second (burst {})", limit.events_per_second, limit.burst);
    ApiError { retry_after_seconds: Some(wait), ..ApiError::new(429, "rate_limited", message) }
}

/// Takes `events` tokens from the source's bucket, or says how long to wait.
pub fn take_tokens(write_key: &str, limit: RateLimit, events: usize, now_ms: f64) -> Result<(), ApiError> {
    BUCKETS.with_borrow_mut(|buckets| {
        let bucket = buckets.entry(write_key.to_owned()).or_insert_with(|| Bucket::full(limit, now_ms));
        bucket.take(limit, events, now_ms).map_err(|wait| rate_limited("this source", limit, wait))
    })
}
