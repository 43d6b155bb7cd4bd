//! `WebhookObject`: the deliveries of one webhook, sharded by the profile that fired them
//! (`{workspace}/webhook/{name}/{shard}`).
//!
//! A delivery is enqueued once per idempotency key (a retried enqueue changes nothing), sent
//! by the alarm, signed (`core::webhook::sign`), and retried with exponential backoff until
//! the receiver answers 2xx or the webhook's `max_attempts` is reached: then it is dead-lettered
//! (kept with status `dead` and its last error). The log of recent deliveries is the admin
//! API's `GET /v1/webhooks/{name}/deliveries`.

use portrait_core::webhook;
use serde::{Deserialize, Serialize};
use worker::{Env, Fetch, Headers, Method, Request, RequestInit, Result, SqlStorage, SqlStorageValue, State};

use crate::internal::{self, Answer, Schema};

/// Shards per webhook.
pub const SHARDS: u64 = 8;
/// Delivered and dead deliveries kept for the log.
const LOG_KEPT: i64 = 1_000;
/// A receiver gets this long to answer.
const TIMEOUT_MS: u32 = 10_000;

const SCHEMA: &[&str] = &["CREATE TABLE IF NOT EXISTS deliveries (key TEXT PRIMARY KEY, url TEXT NOT NULL, \
     secret TEXT NOT NULL, max_attempts INTEGER NOT NULL, body TEXT NOT NULL, created INTEGER NOT NULL, \
     attempts INTEGER NOT NULL DEFAULT 0, next_at INTEGER, status TEXT NOT NULL, last_status INTEGER, \
     last_error TEXT, done_at INTEGER)"];

/// `enqueue`: one delivery.
#[derive(Serialize, Deserialize)]
pub struct Enqueue {
    /// The idempotency key: the same change of the same profile always has the same key.
    pub key: String,
    pub url: String,
    /// The name of the secret holding the signing key.
    pub secret: String,
    pub max_attempts: u32,
    pub body: String,
}

/// `forget` (an erasure): the deliveries about these `members` go (pending ones are not sent,
/// and the log keeps none of them); those about these `accounts` lose the members from the
/// account's member list they carry.
#[derive(Serialize, Deserialize)]
pub struct Forget {
    pub members: Vec<String>,
    pub accounts: Vec<String>,
}

/// What `forget` did: deliveries removed, and account deliveries the members were taken from.
#[derive(Default, Serialize, Deserialize)]
pub struct Forgotten {
    pub removed: u32,
    pub scrubbed: u32,
}

/// The shard of a member's deliveries.
pub fn shard_of(member: &str) -> u64 {
    portrait_core::hash::fnv1a(member.as_bytes()) % SHARDS
}

/// What every delivery key about `member` starts with (the rest names the change).
pub fn key_prefix(member: &str) -> String {
    format!("{:016x}-", portrait_core::hash::fnv1a(member.as_bytes()))
}

/// `log`: the newest `limit` deliveries.
#[derive(Serialize, Deserialize)]
pub struct Log {
    pub limit: u32,
}

internal::export_object!(WebhookObject);

pub struct WebhookObject {
    state: State,
    env: Env,
    sql: SqlStorage,
    schema: Schema,
}

impl internal::Object for WebhookObject {
    fn new(state: State, env: Env) -> Self {
        let sql = state.storage().sql();
        WebhookObject { state, env, sql, schema: Schema::new(SCHEMA) }
    }

    async fn alarm(&self) -> Result<()> {
        self.schema.ensure(&self.sql)?;
        let now = internal::now_ms();
        for delivery in self.due(now)? {
            self.attempt(delivery).await?;
        }
        self.sql.exec(
            "DELETE FROM deliveries WHERE status != 'pending' AND key NOT IN \
             (SELECT key FROM deliveries WHERE status != 'pending' ORDER BY done_at DESC LIMIT ?)",
            vec![LOG_KEPT.into()],
        )?;
        if let Some(next) = self.next_due()? {
            self.state.storage().set_alarm((next - now).max(0)).await?;
        }
        Ok(())
    }

    async fn handle(&self, action: &str, body: &[u8]) -> Result<Answer> {
        self.schema.ensure(&self.sql)?;
        match action {
            "enqueue" => {
                let delivery: Enqueue = internal::decode(body)?;
                let now = internal::now_ms();
                self.sql.exec(
                    "INSERT OR IGNORE INTO deliveries (key, url, secret, max_attempts, body, created, next_at, status) \
                     VALUES (?, ?, ?, ?, ?, ?, ?, 'pending')",
                    vec![
                        delivery.key.as_str().into(),
                        delivery.url.as_str().into(),
                        delivery.secret.as_str().into(),
                        i64::from(delivery.max_attempts).into(),
                        delivery.body.as_str().into(),
                        now.into(),
                        now.into(),
                    ],
                )?;
                self.state.storage().set_alarm(0).await?;
                internal::answer(&())
            }
            "forget" => {
                let forget: Forget = internal::decode(body)?;
                let mut forgotten = Forgotten::default();
                for member in &forget.members {
                    let prefix = key_prefix(member);
                    // The rows deleted, counted one by one: `rows_written` would count the
                    // key's index too.
                    let deleted = self.sql.exec(
                        "DELETE FROM deliveries WHERE substr(key, 1, ?) = ? RETURNING 1",
                        vec![(prefix.len() as i64).into(), prefix.into()],
                    )?;
                    for row in deleted.raw() {
                        row?;
                        forgotten.removed += 1;
                    }
                }
                for account in &forget.accounts {
                    forgotten.scrubbed += self.scrub(account, &forget.members)?;
                }
                internal::answer(&forgotten)
            }
            "log" => {
                let log: Log = internal::decode(body)?;
                internal::json(&self.log(log.limit)?)
            }
            other => internal::unknown_action("webhook", other),
        }
    }
}

struct Due {
    key: String,
    url: String,
    secret: String,
    max_attempts: i64,
    body: String,
    attempts: i64,
}

impl WebhookObject {
    /// Takes `members` out of the member list of each delivery about `account` (the account
    /// view, `core::account::account_json`); answers how many deliveries changed.
    fn scrub(&self, account: &str, members: &[String]) -> Result<u32> {
        let prefix = key_prefix(&crate::account_object::member_id(account));
        let rows = self.sql.exec(
            "SELECT key, body FROM deliveries WHERE substr(key, 1, ?) = ?",
            vec![(prefix.len() as i64).into(), prefix.into()],
        )?;
        let mut changed = Vec::new();
        for row in rows.raw() {
            let row = row?;
            let [SqlStorageValue::String(key), SqlStorageValue::String(body)] = row.as_slice() else {
                continue;
            };
            let Ok(mut body) = serde_json::from_str::<serde_json::Value>(body) else { continue };
            let Some(list) = body["account"]["members"].as_array_mut() else { continue };
            let before = list.len();
            list.retain(|m| !members.iter().any(|id| m["profileId"] == id.as_str()));
            let taken = before - list.len();
            if taken > 0 {
                if let Some(count) = body["account"]["memberCount"].as_u64() {
                    body["account"]["memberCount"] = (count.saturating_sub(taken as u64)).into();
                }
                changed.push((key.clone(), body.to_string()));
            }
        }
        for (key, body) in &changed {
            self.sql.exec(
                "UPDATE deliveries SET body = ? WHERE key = ?",
                vec![body.as_str().into(), key.as_str().into()],
            )?;
        }
        Ok(changed.len() as u32)
    }

    fn due(&self, now: i64) -> Result<Vec<Due>> {
        let rows = self.sql.exec(
            "SELECT key, url, secret, max_attempts, body, attempts FROM deliveries \
             WHERE status = 'pending' AND next_at <= ? ORDER BY next_at LIMIT 50",
            vec![now.into()],
        )?;
        let mut due = Vec::new();
        for row in rows.raw() {
            if let [
                SqlStorageValue::String(key),
                SqlStorageValue::String(url),
                SqlStorageValue::String(secret),
                SqlStorageValue::Integer(max_attempts),
                SqlStorageValue::String(body),
                SqlStorageValue::Integer(attempts),
            ] = row?.as_slice()
            {
                due.push(Due {
                    key: key.clone(),
                    url: url.clone(),
                    secret: secret.clone(),
                    max_attempts: *max_attempts,
                    body: body.clone(),
                    attempts: *attempts,
                });
            }
        }
        Ok(due)
    }

    fn next_due(&self) -> Result<Option<i64>> {
        let rows = self.sql.exec("SELECT min(next_at) FROM deliveries WHERE status = 'pending'", None)?;
        for row in rows.raw() {
            if let [SqlStorageValue::Integer(next)] = row?.as_slice() {
                return Ok(Some(*next));
            }
        }
        Ok(None)
    }

    /// Sends one delivery and records the outcome.
    async fn attempt(&self, delivery: Due) -> Result<()> {
        let outcome = self.send(&delivery).await;
        let now = internal::now_ms();
        let attempts = delivery.attempts + 1;
        let (status, code, error) = match outcome {
            Ok(code) if (200..300).contains(&code) => ("delivered", Some(code), None),
            Ok(code) => ("failed", Some(code), Some(format!("answered {code}"))),
            Err(e) => ("failed", None, Some(e.to_string())),
        };
        if status == "delivered" {
            self.sql.exec(
                "UPDATE deliveries SET status = 'delivered', attempts = ?, last_status = ?, last_error = NULL, \
                 done_at = ?, next_at = NULL WHERE key = ?",
                vec![attempts.into(), code.map(i64::from).into(), now.into(), delivery.key.as_str().into()],
            )?;
        } else if attempts >= delivery.max_attempts {
            self.sql.exec(
                "UPDATE deliveries SET status = 'dead', attempts = ?, last_status = ?, last_error = ?, done_at = ?, \
                 next_at = NULL WHERE key = ?",
                vec![
                    attempts.into(),
                    code.map(i64::from).into(),
                    error.into(),
                    now.into(),
                    delivery.key.as_str().into(),
                ],
            )?;
        } else {
            let jitter = portrait_core::hash::fnv1a(delivery.key.as_bytes());
            let next = now + webhook::backoff_ms(attempts as u32 - 1, jitter) * self.backoff_scale() / 1000;
            self.sql.exec(
                "UPDATE deliveries SET attempts = ?, last_status = ?, last_error = ?, next_at = ? WHERE key = ?",
                vec![attempts.into(), code.map(i64::from).into(), error.into(), next.into(), delivery.key.as_str().into()],
            )?;
        }
        Ok(())
    }

    async fn send(&self, delivery: &Due) -> Result<u16> {
        let secret = self.env.secret(&delivery.secret).map(|s| s.to_string()).unwrap_or_default();
        if secret.is_empty() {
            return Err(worker::Error::RustError(format!("the secret {} is not set", delivery.secret)));
        }
        let timestamp = internal::now_ms() / 1000;
        let headers = Headers::new();
        headers.set("Content-Type", "application/json")?;
        headers.set("User-Agent", "Portrait-Webhooks/1")?;
        headers.set(
            "Portrait-Signature",
            &webhook::sign(secret.as_bytes(), timestamp, delivery.body.as_bytes()),
        )?;
        headers.set("Portrait-Idempotency-Key", &delivery.key)?;
        let mut init = RequestInit::new();
        init.with_method(Method::Post).with_headers(headers).with_body(Some(delivery.body.as_str().into()));
        let request = Request::new_with_init(&delivery.url, &init)?;
        let controller = worker::AbortController::default();
        let signal = controller.signal();
        let timeout = async {
            worker::Delay::from(std::time::Duration::from_millis(u64::from(TIMEOUT_MS))).await;
            controller.abort();
        };
        let fetch = Fetch::Request(request);
        let send = fetch.send_with_signal(&signal);
        futures_util::pin_mut!(send);
        futures_util::pin_mut!(timeout);
        match futures_util::future::select(send, timeout).await {
            futures_util::future::Either::Left((response, _)) => Ok(response?.status_code()),
            futures_util::future::Either::Right(_) => {
                Err(worker::Error::RustError(format!("no answer in {TIMEOUT_MS} ms")))
            }
        }
    }

    /// Tests shrink the backoff (`PORTRAIT_WEBHOOK_BACKOFF_PERMILLE`, default 1000 = as is).
    fn backoff_scale(&self) -> i64 {
        let configured =
            self.env.var("PORTRAIT_WEBHOOK_BACKOFF_PERMILLE").ok().and_then(|v| v.to_string().parse().ok());
        configured.unwrap_or(1000)
    }

    fn log(&self, limit: u32) -> Result<serde_json::Value> {
        let rows = self.sql.exec(
            "SELECT key, status, attempts, created, done_at, next_at, last_status, last_error, body FROM deliveries \
             ORDER BY created DESC LIMIT ?",
            vec![i64::from(limit.min(1_000)).into()],
        )?;
        let mut entries = Vec::new();
        for row in rows.raw() {
            let row = row?;
            let text = |i: usize| match row.get(i) {
                Some(SqlStorageValue::String(s)) => serde_json::json!(s),
                _ => serde_json::Value::Null,
            };
            let number = |i: usize| match row.get(i) {
                Some(SqlStorageValue::Integer(n)) => Some(*n),
                _ => None,
            };
            let time = |i: usize| number(i).map(|t| portrait_core::Timestamp(t).to_string());
            let body: serde_json::Value = match row.get(8) {
                Some(SqlStorageValue::String(s)) => {
                    serde_json::from_str(s).unwrap_or(serde_json::Value::Null)
                }
                _ => serde_json::Value::Null,
            };
            entries.push(serde_json::json!({
                "key": text(0), "status": text(1), "attempts": number(2), "createdAt": time(3),
                "doneAt": time(4), "nextAttemptAt": time(5), "lastStatus": number(6), "lastError": text(7),
                "type": body["type"], "profileId": body["profile"]["profileId"],
            }));
        }
        Ok(serde_json::Value::Array(entries))
    }
}
