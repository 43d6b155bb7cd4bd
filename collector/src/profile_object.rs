//! `ProfileObject`: one Durable Object per person (`{workspace}/profile/{profile_id}`).
//!
//! Storage (SQLite):
//! - `meta`: whose profile this is (workspace, profile id), written once;
//! - `batches`: one row per applied batch: its message ids, its events (postcard), the time of
//!   its newest event, the profile state after it, and the identities it added that are not
//!   yet registered in the IdentityIndex. The ids are the deduplication memory, kept while
//!   their events could still be retried (the collector refuses events older than
//!   `enrich::MAX_EVENT_AGE_MS`, so a duplicate is always recognised); the events are the
//!   timeline, kept for the newest [`TIMELINE_LEN`] events; the newest row's state is the
//!   profile.
//!
//! A batch is applied by one `INSERT`: SQLite applies a statement whole or not at all, so a
//! retry after a failure can never half-apply, and no explicit transaction is needed. The
//! message ids are read into memory once per object life, so deduplication costs no query.
//! The alarm trims the timeline, the deduplication window and old states, and retries
//! identity registration.

use std::cell::{Cell, RefCell};
use std::collections::HashSet;

use portrait_core::enrich::{Geo, MAX_EVENT_AGE_MS, Received, accept_beacon};
use portrait_core::profile::{Identity, Profile};
use portrait_core::view;
use portrait_core::{Rejected, Timestamp};
use serde_json::json;
use worker::{
    Date, DurableObject, Env, Request, Response, Result, SqlStorage, SqlStorageValue, State, durable_object,
};

use crate::internal::{self, Applied, Apply, Erased, EventsPage, Link, Linked, RejectedEvent, Schema};

/// Events kept per profile for the timeline API (older ones are trimmed by the alarm).
pub const TIMELINE_LEN: i64 = 1_000;
/// How often the alarm trims storage: daily, unless `PORTRAIT_HOUSEKEEPING_MS` says otherwise
/// (the tests use a second).
const HOUSEKEEPING_INTERVAL_MS: i64 = 24 * 3_600_000;
const RELINK_DELAY_MS: i64 = 60_000;
/// SQL parameters travel as JavaScript numbers, exact up to 2^53 - 1.
const MAX_SAFE_INTEGER: i64 = 9_007_199_254_740_991;

const SCHEMA: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS meta (k INTEGER PRIMARY KEY CHECK (k = 0), workspace TEXT NOT NULL, \
     profile_id TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS batches (seq INTEGER PRIMARY KEY AUTOINCREMENT, newest INTEGER NOT NULL, \
     count INTEGER NOT NULL, ids BLOB NOT NULL, beacon BLOB, receipt BLOB NOT NULL, state BLOB, unlinked BLOB)",
];

#[durable_object]
pub struct ProfileObject {
    state: State,
    env: Env,
    sql: SqlStorage,
    /// The stored profile, once read: (workspace, profile id, state).
    cache: RefCell<Option<Stored>>,
    schema: Schema,
    /// Whether an alarm is known to be scheduled (saves a storage read per batch).
    alarm_set: Cell<bool>,
    /// The message ids in `batches`, once read.
    seen: RefCell<Option<HashSet<String>>>,
}

#[derive(Clone)]
struct Stored {
    workspace: String,
    profile_id: String,
    profile: Profile,
}

impl DurableObject for ProfileObject {
    fn new(state: State, env: Env) -> Self {
        let sql = state.storage().sql();
        ProfileObject {
            state,
            env,
            sql,
            cache: RefCell::new(None),
            schema: Schema::new(SCHEMA),
            alarm_set: Cell::new(false),
            seen: RefCell::new(None),
        }
    }

    async fn fetch(&self, mut req: Request) -> Result<Response> {
        match req.path().as_str() {
            "/apply" => {
                let body = req.bytes().await?;
                let (header, beacon) = postcard::take_from_bytes::<Apply>(&body)
                    .map_err(|e| worker::Error::RustError(format!("apply header: {e}")))?;
                internal::answer(&self.apply(header, beacon).await?)
            }
            "/state" => match self.load()? {
                Some(stored) => Response::from_json(&view::profile_json(&stored.profile_id, &stored.profile)),
                None => Response::error("no profile", 404),
            },
            "/events" => {
                let page: EventsPage = internal::body(&mut req).await?;
                match self.load()? {
                    Some(_) => {
                        let limit = page.limit.clamp(1, TIMELINE_LEN as u32) as usize;
                        Response::from_json(&self.events_page(page.cursor, limit)?)
                    }
                    None => Response::error("no profile", 404),
                }
            }
            "/export" => match self.load()? {
                Some(stored) => {
                    // Everything held, even past TIMELINE_LEN before the alarm trims it.
                    let events = self.events_page(None, usize::MAX)?;
                    Response::from_json(&json!({
                        "profile": view::profile_json(&stored.profile_id, &stored.profile),
                        "events": events["events"],
                        "messageIdsRemembered": self.event_count(false)?,
                    }))
                }
                None => Response::error("no profile", 404),
            },
            "/erase" => match self.load()? {
                Some(stored) => internal::answer(&self.erase(stored).await?),
                None => Response::error("no profile", 404),
            },
            other => Response::error(format!("no profile action {other}"), 400),
        }
    }

    async fn alarm(&self) -> Result<Response> {
        if self.load()?.is_none() {
            return Response::ok("empty");
        }
        let now = Date::now().as_millis() as i64;
        // Keep the events of the newest batches that hold at most TIMELINE_LEN events.
        let mut kept = 0;
        let mut oldest_kept = MAX_SAFE_INTEGER;
        let rows = self
            .sql
            .exec("SELECT seq, count FROM batches WHERE beacon IS NOT NULL ORDER BY seq DESC", None)?;
        for row in rows.raw() {
            if let [SqlStorageValue::Integer(seq), SqlStorageValue::Integer(count)] = row?.as_slice() {
                kept += count;
                if kept > TIMELINE_LEN {
                    break;
                }
                oldest_kept = *seq;
            }
        }
        self.sql.exec(
            "UPDATE batches SET beacon = NULL WHERE seq < ? AND beacon IS NOT NULL",
            vec![oldest_kept.into()],
        )?;
        // Only the newest state is the profile; older rows need none.
        self.sql.exec(
            "UPDATE batches SET state = NULL WHERE state IS NOT NULL AND seq < (SELECT max(seq) FROM batches)",
            None,
        )?;
        // One day of margin over the age limit the collector enforces at the door; the newest
        // row stays whatever its age, since it holds the profile.
        self.sql.exec(
            "DELETE FROM batches WHERE newest < ? AND seq < (SELECT max(seq) FROM batches)",
            vec![(now - MAX_EVENT_AGE_MS - 86_400_000).into()],
        )?;
        *self.seen.borrow_mut() = None;
        let next = match self.link_identities().await {
            Ok(()) => self.housekeeping_interval(),
            Err(e) => {
                worker::console_warn!("linking identities failed, retrying: {e}");
                RELINK_DELAY_MS
            }
        };
        self.state.storage().set_alarm(next).await?;
        self.alarm_set.set(true);
        Response::ok("done")
    }
}

impl ProfileObject {
    /// Decodes, validates and enriches one person's beacon (`core`), then applies the events
    /// not seen before with one `INSERT`.
    async fn apply(&self, header: Apply, beacon: &[u8]) -> Result<Applied> {
        let accepted = match accept_beacon(beacon, Timestamp(header.received_at), &header.geo) {
            Ok(accepted) => accepted,
            Err(error) => {
                let invalid = RejectedEvent::from(&Rejected { index: 0, error });
                return Ok(Applied { invalid: Some(invalid), ..Applied::default() });
            }
        };
        let original = |index: usize| header.indices.get(index).map_or(index, |&i| i as usize);
        let rejected = accepted
            .rejected
            .into_iter()
            .map(|r| {
                let index = original(r.index);
                RejectedEvent::from(&r.renumber(index))
            })
            .collect();
        let events = accepted.events.into_iter().map(|(_, received)| received).collect();
        let (applied, duplicates) = self.store(&header, events, beacon).await?;
        Ok(Applied { accepted: applied, duplicates, bots: accepted.bots, rejected, invalid: None })
    }

    /// Applies the events whose message ids are new; returns (applied, duplicates). The row
    /// keeps `beacon` as received with the receipt (time, place) that re-derives the events.
    async fn store(&self, header: &Apply, events: Vec<Received>, beacon: &[u8]) -> Result<(u32, u32)> {
        if events.is_empty() {
            return Ok((0, 0));
        }
        self.schema.ensure(&self.sql)?;
        let existing = self.load()?;
        let is_new = existing.is_none();
        let stored = existing.unwrap_or(Stored {
            workspace: header.workspace.clone(),
            profile_id: header.profile_id.clone(),
            profile: Profile::default(),
        });
        let fresh: Vec<&Received> = {
            let mut seen = self.seen_ids()?;
            let seen = seen.as_mut().expect("loaded by seen_ids");
            let mut batch_ids = HashSet::new();
            events
                .iter()
                .filter(|r| {
                    !seen.contains(&r.event.message_id) && batch_ids.insert(r.event.message_id.as_str())
                })
                .collect()
        };
        let duplicates = (events.len() - fresh.len()) as u32;
        if fresh.is_empty() {
            return Ok((0, duplicates));
        }
        let mut next = stored.clone();
        for received in &fresh {
            next.profile.apply(received);
        }
        let new_identities: Vec<Identity> =
            next.profile.identities.difference(&stored.profile.identities).cloned().collect();
        let ids: Vec<&str> = fresh.iter().map(|r| r.event.message_id.as_str()).collect();
        let newest = fresh.iter().filter_map(|r| r.event.timestamp).max().map_or(0, |t| t.0);
        let receipt = Receipt { received_at: header.received_at, geo: header.geo.clone() };
        let (ids_blob, receipt, state) =
            (to_postcard(&ids)?, to_postcard(&receipt)?, to_postcard(&next.profile)?);
        let unlinked = match new_identities.is_empty() {
            true => None,
            false => Some(to_postcard(&new_identities)?),
        };
        if is_new {
            self.sql.exec(
                "INSERT OR IGNORE INTO meta (k, workspace, profile_id) VALUES (0, ?, ?)",
                vec![next.workspace.as_str().into(), next.profile_id.as_str().into()],
            )?;
        }
        self.sql.exec(
            "INSERT INTO batches (newest, count, ids, beacon, receipt, state, unlinked) VALUES (?, ?, ?, ?, ?, ?, ?)",
            vec![
                newest.into(),
                (fresh.len() as i64).into(),
                ids_blob.into(),
                beacon.to_vec().into(),
                receipt.into(),
                state.into(),
                unlinked.into(),
            ],
        )?;
        if let Some(seen) = self.seen.borrow_mut().as_mut() {
            seen.extend(ids.iter().map(|id| (*id).to_owned()));
        }
        let applied = fresh.len() as u32;
        *self.cache.borrow_mut() = Some(next);
        let linked = match new_identities.is_empty() {
            true => Ok(()),
            false => self.link_identities().await,
        };
        if let Err(e) = linked {
            // Not lost: they stay in their batch's `unlinked` and the alarm retries.
            worker::console_warn!("linking identities failed, will retry: {e}");
            self.state.storage().set_alarm(RELINK_DELAY_MS).await?;
            self.alarm_set.set(true);
        } else if !self.alarm_set.get() {
            if self.state.storage().get_alarm().await?.is_none() {
                self.state.storage().set_alarm(self.housekeeping_interval()).await?;
            }
            self.alarm_set.set(true);
        }
        Ok((applied, duplicates))
    }

    /// Registers the identities in `batches.unlinked` in their index shards; conflicts (an
    /// identifier that already belongs to another profile) are logged and left to identity
    /// resolution.
    async fn link_identities(&self) -> Result<()> {
        let Some(stored) = self.load()? else { return Ok(()) };
        let mut pending = Vec::new();
        let mut rows = Vec::new();
        for row in self.sql.exec("SELECT seq, unlinked FROM batches WHERE unlinked IS NOT NULL", None)?.raw()
        {
            if let [SqlStorageValue::Integer(seq), SqlStorageValue::Blob(bytes)] = row?.as_slice() {
                let identities: Vec<Identity> = postcard::from_bytes(bytes)
                    .map_err(|e| worker::Error::RustError(format!("unlinked identities: {e}")))?;
                pending.extend(identities);
                rows.push(*seq);
            }
        }
        for (shard, identities) in internal::by_shard(pending) {
            let stub = internal::index_stub(&self.env, &stored.workspace, shard).map_err(api_to_worker)?;
            let link = Link { identities, profile_id: stored.profile_id.clone() };
            let linked: Option<Linked> = internal::call(&stub, "link", &link).await.map_err(api_to_worker)?;
            for (identity, owner) in linked.map(|l| l.conflicts).unwrap_or_default() {
                worker::console_warn!(
                    "{} {} already belongs to profile {owner}",
                    identity.kind.as_str(),
                    identity.value
                );
            }
        }
        for seq in rows {
            self.sql.exec("UPDATE batches SET unlinked = NULL WHERE seq = ?", vec![seq.into()])?;
        }
        Ok(())
    }

    /// A page of the timeline, newest first. An event's position (its `seq` in the API and
    /// the cursor) is `batch seq × 1024 + index in the batch` (batches hold ≤ 500 events).
    fn events_page(&self, cursor: Option<i64>, limit: usize) -> Result<serde_json::Value> {
        const PER_BATCH: i64 = 1024;
        let before = cursor.unwrap_or(i64::MAX);
        let mut events = Vec::new();
        let rows = self.sql.exec(
            "SELECT seq, ids, beacon, receipt FROM batches WHERE beacon IS NOT NULL AND seq <= ? ORDER BY seq DESC",
            vec![(before / PER_BATCH).min(MAX_SAFE_INTEGER).into()],
        )?;
        'rows: for row in rows.raw() {
            if let [
                SqlStorageValue::Integer(seq),
                SqlStorageValue::Blob(ids),
                SqlStorageValue::Blob(beacon),
                SqlStorageValue::Blob(receipt),
            ] = row?.as_slice()
            {
                let batch = stored_events(ids, beacon, receipt)
                    .map_err(|e| worker::Error::RustError(format!("timeline batch {seq}: {e}")))?;
                for (index, received) in batch.iter().enumerate().rev() {
                    let position = seq * PER_BATCH + index as i64;
                    if position >= before {
                        continue;
                    }
                    let mut event = view::received_json(received);
                    event["seq"] = json!(position);
                    events.push((position, event));
                    if events.len() == limit {
                        break 'rows;
                    }
                }
            }
        }
        let next_cursor =
            (events.len() == limit).then(|| events.last().map(|(p, _)| p.to_string())).flatten();
        let events: Vec<serde_json::Value> = events.into_iter().map(|(_, e)| e).collect();
        Ok(json!({ "events": events, "nextCursor": next_cursor }))
    }

    /// Deletes everything this object holds and says what it was.
    async fn erase(&self, stored: Stored) -> Result<Erased> {
        let erased = Erased {
            profile_id: stored.profile_id,
            identities: stored.profile.identities.into_iter().collect(),
            events_removed: self.event_count(true)?,
            message_ids_forgotten: self.event_count(false)?,
        };
        let storage = self.state.storage();
        storage.delete_alarm().await?;
        storage.delete_all().await?;
        *self.cache.borrow_mut() = None;
        *self.seen.borrow_mut() = None;
        self.schema.forget();
        self.alarm_set.set(false);
        Ok(erased)
    }

    fn housekeeping_interval(&self) -> i64 {
        let configured =
            self.env.var("PORTRAIT_HOUSEKEEPING_MS").ok().and_then(|v| v.to_string().parse().ok());
        configured.unwrap_or(HOUSEKEEPING_INTERVAL_MS)
    }

    /// Events held: in the timeline (`in_timeline`), or remembered by message id.
    fn event_count(&self, in_timeline: bool) -> Result<i64> {
        let query = match in_timeline {
            true => "SELECT coalesce(sum(count), 0) FROM batches WHERE beacon IS NOT NULL",
            false => "SELECT coalesce(sum(count), 0) FROM batches",
        };
        for row in self.sql.exec(query, None)?.raw() {
            if let [SqlStorageValue::Integer(n)] = row?.as_slice() {
                return Ok(*n);
            }
        }
        Ok(0)
    }

    /// The message ids applied in the deduplication window, read from storage once.
    fn seen_ids(&self) -> Result<std::cell::RefMut<'_, Option<HashSet<String>>>> {
        let mut seen = self.seen.borrow_mut();
        if seen.is_none() {
            let mut ids = HashSet::new();
            for row in self.sql.exec("SELECT ids FROM batches", None)?.raw() {
                if let [SqlStorageValue::Blob(bytes)] = row?.as_slice() {
                    let batch: Vec<String> = postcard::from_bytes(bytes)
                        .map_err(|e| worker::Error::RustError(format!("stored message ids: {e}")))?;
                    ids.extend(batch);
                }
            }
            *seen = Some(ids);
        }
        Ok(seen)
    }

    /// The stored profile, if this object has one. Reads never create tables: an unknown
    /// profile leaves no trace.
    fn load(&self) -> Result<Option<Stored>> {
        if let Some(stored) = self.cache.borrow().as_ref() {
            return Ok(Some(stored.clone()));
        }
        if !self.schema.exists(&self.sql, "meta")? {
            return Ok(None);
        }
        let mut owner = None;
        for row in self.sql.exec("SELECT workspace, profile_id FROM meta WHERE k = 0", None)?.raw() {
            if let [SqlStorageValue::String(workspace), SqlStorageValue::String(profile_id)] = row?.as_slice()
            {
                owner = Some((workspace.clone(), profile_id.clone()));
            }
        }
        let Some((workspace, profile_id)) = owner else { return Ok(None) };
        let query = "SELECT state FROM batches WHERE state IS NOT NULL ORDER BY seq DESC LIMIT 1";
        for row in self.sql.exec(query, None)?.raw() {
            if let [SqlStorageValue::Blob(state)] = row?.as_slice() {
                let profile: Profile = postcard::from_bytes(state)
                    .map_err(|e| worker::Error::RustError(format!("stored profile: {e}")))?;
                let stored = Stored { workspace, profile_id, profile };
                *self.cache.borrow_mut() = Some(stored.clone());
                return Ok(Some(stored));
            }
        }
        Ok(None)
    }
}

/// When and where a batch was received: with its beacon, what re-derives its events.
#[derive(serde::Serialize, serde::Deserialize)]
struct Receipt {
    received_at: i64,
    geo: Geo,
}

/// The events a batch row applied, re-derived from its beacon and receipt (enrichment is
/// pure); `ids` are the message ids the row applied, in order.
fn stored_events(ids: &[u8], beacon: &[u8], receipt: &[u8]) -> std::result::Result<Vec<Received>, String> {
    let ids: Vec<String> = postcard::from_bytes(ids).map_err(|e| e.to_string())?;
    let receipt: Receipt = postcard::from_bytes(receipt).map_err(|e| e.to_string())?;
    let accepted =
        accept_beacon(beacon, Timestamp(receipt.received_at), &receipt.geo).map_err(|e| e.to_string())?;
    let mut wanted: HashSet<&str> = ids.iter().map(String::as_str).collect();
    Ok(accepted
        .events
        .into_iter()
        .map(|(_, r)| r)
        .filter(|r| wanted.remove(r.event.message_id.as_str()))
        .collect())
}

fn to_postcard(value: &impl serde::Serialize) -> Result<Vec<u8>> {
    postcard::to_allocvec(value).map_err(|e| worker::Error::RustError(format!("encoding: {e}")))
}

fn api_to_worker(error: crate::http::ApiError) -> worker::Error {
    worker::Error::RustError(format!("{}: {}", error.code, error.message))
}
