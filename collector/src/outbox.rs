//! What a profile's or an account's changes cause elsewhere — audience membership updates and
//! webhook deliveries — written to the object's `outbox` table in the same synchronous step
//! as the change itself, then sent; a failed send stays in the outbox and the object's alarm
//! sends it again. The receivers are idempotent (membership by member id, deliveries by
//! idempotency key), so a repeated send changes nothing.

use portrait_core::Timestamp;
use portrait_core::changes::Evaluated;
use portrait_core::config::Workspace;
use portrait_core::webhook::{self, Transition};
use serde::{Deserialize, Serialize};
use worker::{Env, SqlStorage, SqlStorageValue};

use crate::audience_object::{self, Membership};
use crate::internal::{self, Schema};
use crate::webhook_object::{self, Enqueue};

/// The outbox table and the last evaluation, in the schema of every object that has them.
pub const TABLES: [&str; 2] = [
    "CREATE TABLE IF NOT EXISTS outbox (id INTEGER PRIMARY KEY AUTOINCREMENT, item BLOB NOT NULL)",
    "CREATE TABLE IF NOT EXISTS evaluated (k INTEGER PRIMARY KEY CHECK (k = 0), state BLOB NOT NULL)",
];

/// The object's last evaluation of its audiences and triggers (none yet: the default).
pub fn evaluated(sql: &SqlStorage, schema: &Schema) -> worker::Result<Evaluated> {
    if !schema.exists(sql, "evaluated")? {
        return Ok(Evaluated::default());
    }
    for row in sql.exec("SELECT state FROM evaluated WHERE k = 0", None)?.raw() {
        if let [SqlStorageValue::Blob(bytes)] = row?.as_slice() {
            return postcard::from_bytes(bytes)
                .map_err(|e| worker::Error::RustError(format!("evaluated: {e}")));
        }
    }
    Ok(Evaluated::default())
}

/// Writes a new evaluation and the items its changes cause, when it differs from `before`
/// (no `await`: one step); returns whether anything was written.
pub fn record(
    sql: &SqlStorage,
    before: &Evaluated,
    outcome: Option<(Evaluated, Vec<Item>)>,
) -> worker::Result<bool> {
    let Some((after, items)) = outcome.filter(|(after, items)| after != before || !items.is_empty()) else {
        return Ok(false);
    };
    let state =
        postcard::to_allocvec(&after).map_err(|e| worker::Error::RustError(format!("evaluated: {e}")))?;
    sql.exec(
        "INSERT INTO evaluated (k, state) VALUES (0, ?) ON CONFLICT (k) DO UPDATE SET state = excluded.state",
        vec![state.into()],
    )?;
    write_items(sql, &items)?;
    Ok(true)
}

#[derive(Serialize, Deserialize)]
pub enum Item {
    Audience { name: String, change: Membership },
    Webhook { name: String, shard: u64, delivery: Enqueue },
}

/// The items `changes` of `member` cause: membership updates for audience entries and exits,
/// and a delivery for each webhook a change fires. `subject` is what deliveries say about the
/// member (`subject_kind`: `profile` or `account`).
pub fn items(
    workspace: &Workspace,
    member: &str,
    changes: &[Transition],
    subject_kind: &str,
    subject: &serde_json::Value,
    at: Timestamp,
) -> Vec<Item> {
    let mut items = Vec::new();
    for (i, change) in changes.iter().enumerate() {
        match change {
            Transition::AudienceEntered(name) => items.push(Item::Audience {
                name: name.clone(),
                change: Membership { member: member.to_owned(), entered: Some(at.0) },
            }),
            Transition::AudienceExited(name) => items.push(Item::Audience {
                name: name.clone(),
                change: Membership { member: member.to_owned(), entered: None },
            }),
            Transition::LifecycleChanged { .. } | Transition::LeadScoreCrossed { .. } => {}
        }
        for hook in workspace.webhooks.iter().filter(|h| h.on.iter().any(|on| change.fires(on))) {
            // One key per change of this member: the same for every attempt and every resend.
            let key = format!("{}{}-{i}-{}", webhook_object::key_prefix(member), at.0, hook.name);
            items.push(Item::Webhook {
                name: hook.name.clone(),
                shard: webhook_object::shard_of(member),
                delivery: Enqueue {
                    body: webhook::payload(&key, change, subject_kind, subject.clone(), at),
                    key,
                    url: hook.url.clone(),
                    secret: hook.secret.clone(),
                    max_attempts: hook.max_attempts,
                },
            });
        }
    }
    items
}

/// Writes items to the outbox (no `await`: part of the caller's synchronous write).
fn write_items(sql: &SqlStorage, items: &[Item]) -> worker::Result<()> {
    for item in items {
        let bytes =
            postcard::to_allocvec(item).map_err(|e| worker::Error::RustError(format!("outbox: {e}")))?;
        sql.exec("INSERT INTO outbox (item) VALUES (?)", vec![bytes.into()])?;
    }
    Ok(())
}

/// Sends what the outbox holds, oldest first; stops at the first failure (the alarm retries).
pub async fn flush(sql: &SqlStorage, env: &Env, workspace: &str) -> worker::Result<()> {
    let mut pending = Vec::new();
    for row in sql.exec("SELECT id, item FROM outbox ORDER BY id", None)?.raw() {
        if let [SqlStorageValue::Integer(id), SqlStorageValue::Blob(bytes)] = row?.as_slice() {
            pending.push((*id, bytes.clone()));
        }
    }
    for (id, bytes) in pending {
        let item: Item = postcard::from_bytes(&bytes)
            .map_err(|e| worker::Error::RustError(format!("outbox item: {e}")))?;
        match item {
            Item::Audience { name, change } => {
                let shard = audience_object::shard_of(&change.member);
                let stub = internal::audience_stub(env, workspace, &name, shard)?;
                internal::call::<_, ()>(&stub, "change", &change).await?;
            }
            Item::Webhook { name, shard, delivery } => {
                let stub = internal::webhook_stub(env, workspace, &name, shard)?;
                internal::call::<_, ()>(&stub, "enqueue", &delivery).await?;
            }
        }
        sql.exec("DELETE FROM outbox WHERE id = ?", vec![id.into()])?;
    }
    Ok(())
}
