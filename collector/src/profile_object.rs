//! `ProfileObject`: one Durable Object per person (`{workspace}/profile/{profile_id}`).
//!
//! Storage (SQLite):
//! - `meta`: whose profile this is (workspace, profile id), written once;
//! - `batches`: one row per applied batch: its message ids, its events (postcard), the time of
//!   its newest event, the identities it added that are not yet registered in the
//!   IdentityIndex, and on some rows the profile state after it. The ids are the deduplication
//!   memory, kept while their events could still be retried (the collector refuses events
//!   older than `enrich::MAX_EVENT_AGE_MS`, so a duplicate is always recognised); the events
//!   are the timeline, kept for the newest [`TIMELINE_LEN`] events. The ids are stored as
//!   `core::dedupe` holds them (17 bytes per UUID), so that an object reads its memory back
//!   with no event decoded: it does so once per life, and an idle object is evicted within
//!   seconds, so a returning visitor's first batch pays it.
//!
//! The profile is the newest stored state with the events of the rows after it applied again
//! (`load`). A row carries the state when it is the first, a merge's or a refusal's (their
//! state is more than their rows' events), or the [`STATE_EVERY`]th since the last state.
//! Before it trims, the alarm puts the state on the newest row (when rows follow the last
//! one), so trimming never removes events a load still needs. Writing the state (~3 KB) with
//! every batch cost the ingest benchmark a tenth of its throughput. A load applies those
//! batches with the workspace's identity rules of the moment: had the rules changed since,
//! the identities learned from at most `STATE_EVERY - 1` batches follow the new rules.
//!
//! A batch is applied by one `INSERT`: SQLite applies a statement whole or not at all, so a
//! retry after a failure can never half-apply, and no explicit transaction is needed. A merge
//! writes several rows: those go in one `transactionSync`, which keeps all or none. Memory
//! (state, message ids) changes only after storage accepted every write. The message ids are
//! read into memory once per object life, so deduplication costs no query.
//!
//! `PORTRAIT_FAIL_COMMITS = N` (tests only) makes every Nth commit fail at its last write, in
//! the storage layer, to show that a failed commit leaves nothing behind and its retry
//! applies once; an erasure's deletion counts as a commit (it fails before deleting). `PORTRAIT_TRAP_ON_EVENT = name` (tests only) makes the object panic (a wasm
//! trap) while it applies a `track` of that name, after taking the profile out of memory and
//! before committing: the way a bug would, to show that a trap loses nothing and writes
//! nothing, and that the isolate recovers (`collector/js/entry.mjs`).
//! The alarm trims the timeline, the deduplication window and old states, and retries
//! identity registration.
//!
//! Identity resolution (rules in `core::identity`): after each commit the object registers
//! the identities it learned in the IdentityIndex. One already owned by another profile means
//! both are one person: this object merges itself into the owner (`merge_out` → the owner's
//! `merge_in`), unless the rules refuse, and then keeps only a forwarding record (`meta.forward_to`):
//! everything that reaches it afterwards, events or reads, goes on to the survivor. Events of
//! another known user (two people, one browser) are stored on that user's profile instead.

use std::cell::{Cell, RefCell};

use std::collections::{BTreeMap, BTreeSet};

use portrait_core::account::{self, AccountLink, AccountUpdate};
use portrait_core::changes::{self, Evaluated, Snapshot};
use portrait_core::config::{AudienceOf, RateLimit};
use portrait_core::dedupe::{self, Key, MessageIds};
use portrait_core::enrich::{Geo, LastDevice, MAX_EVENT_AGE_MS, Received, accept_beacon};
use portrait_core::identity::{self, Change, IdKind, Identity, IdentityRules, MergeReason, Refusal};
use portrait_core::profile::{self, Profile};
use portrait_core::tags::{self, ProfileFacts, TagSettings};
use portrait_core::webhook::Transition;
use portrait_core::{Call, Event, Rejected, Timestamp, Value, beacon, view};
use serde_json::json;
use wasm_bindgen::prelude::*;
use worker::{Env, Result, SqlStorage, SqlStorageValue, State};

use crate::audience_object::{self, Membership};
use crate::internal::{
    self, AccountMessage, Answer, Applied, Apply, BatchRow, Erased, EventsPage, ForgetRefusals, Link, Linked,
    MergeAnswer, MergeIn, Param, Position, RejectedEvent, Schema, Statement,
};
use crate::outbox;
use crate::settings::{self, Bucket};

/// Events one person may send: far above what a person does (bursts of thousands stay
/// welcome, e.g. a server's backfill), low enough that one hot sender cannot hold its object,
/// and with it the Worker, busy. Over it the beacon gets a 429 with Retry-After.
pub const PROFILE_LIMIT: RateLimit = RateLimit { events_per_second: 500, burst: 5_000 };

/// Events kept per profile for the timeline API (older ones are trimmed by the alarm).
pub const TIMELINE_LEN: i64 = 1_000;
/// How often the alarm trims storage: daily, unless `PORTRAIT_HOUSEKEEPING_MS` says otherwise
/// (the tests use a second).
const HOUSEKEEPING_INTERVAL_MS: i64 = 24 * 3_600_000;
const RELINK_DELAY_MS: i64 = 60_000;
/// SQL parameters travel as JavaScript numbers, exact up to 2^53 - 1.
const MAX_SAFE_INTEGER: i64 = 9_007_199_254_740_991;

/// The message ids of up to `?2` ([`SEEN_IDS_ROWS`]) batch rows after `seq` `?1`, as one value (the
/// rows' lists concatenated, which `dedupe::decode` reads), with the last row's `seq` and the
/// count. One value per row cost a reloading object a call into JavaScript per row.
const SEEN_IDS: &str = "SELECT CAST(group_concat(ids, '') AS BLOB), max(seq), count(*) FROM \
     (SELECT seq, ids FROM batches WHERE seq > ? ORDER BY seq LIMIT ?)";
/// Rows per [`SEEN_IDS`] value: 15 rows of at most 500 ids of at most 255 bytes stay under
/// SQLite's 2 MB limit on a value.
const SEEN_IDS_ROWS: i64 = 15;

/// Batch rows between two stored states: a load applies at most `STATE_EVERY - 1` batches again.
const STATE_EVERY: u32 = 8;

/// Forwarding hops followed before giving up (a chain longer than this means a bug).
const MAX_HOPS: usize = 8;

const INSERT_BATCH: &str =
    "INSERT INTO batches (newest, count, ids, beacon, receipt, state, unlinked) VALUES (?, ?, ?, ?, ?, ?, ?)";

/// `batches.seq` is a plain rowid, not `AUTOINCREMENT`: rows are deleted only below the newest
/// one, or all at once (erasure, a merge away), so a profile's `seq` never repeats without
/// `AUTOINCREMENT`'s extra write per insert (6 % of the ingest benchmark's CPU time).
const SCHEMA: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS meta (k INTEGER PRIMARY KEY CHECK (k = 0), workspace TEXT NOT NULL, \
     profile_id TEXT NOT NULL, forward_to TEXT)",
    "CREATE TABLE IF NOT EXISTS batches (seq INTEGER PRIMARY KEY, newest INTEGER NOT NULL, \
     count INTEGER NOT NULL, ids BLOB NOT NULL, beacon BLOB, receipt BLOB NOT NULL, state BLOB, unlinked BLOB)",
    outbox::TABLES[0],
    outbox::TABLES[1],
    // Every account this profile, or one merged into it, has sent a member snapshot to: an
    // erasure leaves each of them, not only those the profile belongs to now (an account
    // keeps a member whose email moved to another domain, or who was merged away).
    "CREATE TABLE IF NOT EXISTS accounts (id TEXT PRIMARY KEY)",
];

internal::export_object!(ProfileObject);

pub struct ProfileObject {
    state: State,
    env: Env,
    sql: SqlStorage,
    /// The stored profile, once read: (workspace, profile id, state).
    cache: RefCell<Option<Stored>>,
    schema: Schema,
    /// [`INSERT_BATCH`], its text held in JavaScript.
    insert_batch: Statement,
    /// Whether an alarm is known to be scheduled (saves a storage read per batch).
    alarm_set: Cell<bool>,
    /// The message ids in `batches`, once read.
    seen: RefCell<Option<MessageIds>>,
    /// Where this profile was merged to, once read (`Some(None)`: not merged).
    forward: RefCell<Option<Option<String>>>,
    /// Whether a merge of this profile into another is under way.
    merging: Cell<bool>,
    /// Whether the outbox may hold items to send (true until a first flush of this object's
    /// life has found it empty).
    outbox_pending: Cell<bool>,
    /// The person's `PROFILE_LIMIT` bucket, once a batch arrived.
    bucket: RefCell<Option<Bucket>>,
    /// The person's user agent, parsed once per object life rather than once per batch.
    last_device: RefCell<LastDevice>,
    /// Commits until the next injected storage failure (`PORTRAIT_FAIL_COMMITS`), if any.
    failing_commits: Option<FailingCommits>,
    /// The `track` whose application panics (`PORTRAIT_TRAP_ON_EVENT`), if any.
    trap_on_event: Option<String>,
}

/// Every `every`th commit fails at its last write: the test hook of `PORTRAIT_FAIL_COMMITS`.
struct FailingCommits {
    every: u32,
    count: Cell<u32>,
}

impl FailingCommits {
    fn from_env(env: &Env) -> Option<FailingCommits> {
        let every = env.var("PORTRAIT_FAIL_COMMITS").ok()?.to_string().parse().ok().filter(|&n| n > 0)?;
        Some(FailingCommits { every, count: Cell::new(0) })
    }

    fn fail_this_one(&self) -> bool {
        let count = self.count.get() + 1;
        self.count.set(count % self.every);
        count == self.every
    }
}

#[derive(Clone)]
struct Stored {
    workspace: String,
    profile_id: String,
    profile: Profile,
    /// Whether storage holds this profile (and its meta row); a new one's first commit writes it.
    in_storage: bool,
    /// Batch rows stored after the newest stored state (what a load applies again).
    rows_since_state: u32,
}

impl internal::Object for ProfileObject {
    fn new(state: State, env: Env) -> Self {
        let sql = state.storage().sql();
        let failing_commits = FailingCommits::from_env(&env);
        let trap_on_event = env.var("PORTRAIT_TRAP_ON_EVENT").ok().map(|name| name.to_string());
        ProfileObject {
            state,
            env,
            sql,
            cache: RefCell::new(None),
            schema: Schema::new(SCHEMA),
            insert_batch: Statement::new(INSERT_BATCH),
            alarm_set: Cell::new(false),
            seen: RefCell::new(None),
            forward: RefCell::new(None),
            merging: Cell::new(false),
            outbox_pending: Cell::new(true),
            failing_commits,
            trap_on_event,
            bucket: RefCell::new(None),
            last_device: RefCell::default(),
        }
    }

    async fn alarm(&self) -> Result<()> {
        if self.forward_target()?.is_some() {
            // A merged-away profile only has its audience exits left to send.
            if let Some((workspace, _)) = self.owner()? {
                outbox::flush(&self.sql, &self.env, &workspace).await?;
            }
            return Ok(());
        }
        let Some(stored) = self.load()? else {
            return Ok(());
        };
        // The trims below may remove events a load would apply again: the newest row takes
        // the state first (no `await` until the trims are done).
        if stored.rows_since_state > 0 {
            self.sql.exec(
                "UPDATE batches SET state = ? WHERE seq = (SELECT max(seq) FROM batches)",
                vec![stored_state(&stored.profile)?.into()],
            )?;
            if let Some(cached) = self.cache.borrow_mut().as_mut() {
                cached.rows_since_state = 0;
            }
        }
        let now = internal::now_ms();
        // Keep the events of the newest batches (by event time) that hold at most
        // TIMELINE_LEN events.
        let mut kept = 0;
        let mut oldest_kept = (MAX_SAFE_INTEGER, MAX_SAFE_INTEGER);
        let rows = self.sql.exec(
            "SELECT newest, seq, count FROM batches WHERE beacon IS NOT NULL ORDER BY newest DESC, seq DESC",
            None,
        )?;
        for row in rows.raw() {
            if let [
                SqlStorageValue::Integer(newest),
                SqlStorageValue::Integer(seq),
                SqlStorageValue::Integer(count),
            ] = row?.as_slice()
            {
                kept += count;
                if kept > TIMELINE_LEN {
                    break;
                }
                oldest_kept = (*newest, *seq);
            }
        }
        self.sql.exec(
            "UPDATE batches SET beacon = NULL WHERE (newest, seq) < (?, ?) AND beacon IS NOT NULL",
            vec![oldest_kept.0.into(), oldest_kept.1.into()],
        )?;
        // Only the newest state is the profile; older rows need none.
        self.sql.exec(
            "UPDATE batches SET state = NULL WHERE state IS NOT NULL AND seq < (SELECT max(seq) FROM batches)",
            None,
        )?;
        // One day of margin over the age limit the collector enforces at the door; the newest
        // row stays whatever its age, since it holds the profile.
        self.sql.exec(
            "DELETE FROM batches WHERE newest < ? AND unlinked IS NULL AND seq < (SELECT max(seq) FROM batches)",
            vec![(now - MAX_EVENT_AGE_MS - 86_400_000).into()],
        )?;
        *self.seen.borrow_mut() = None;
        // `settle` schedules its own retry on failure, else the next housekeeping.
        self.alarm_set.set(false);
        self.settle(true).await?;
        Ok(())
    }

    async fn handle(&self, action: &str, body: &[u8]) -> Result<Answer> {
        if let Some(target) = self.forward_target()? {
            return self.forwarded(action, body, target).await;
        }
        match action {
            "apply" => {
                let (header, beacon) = postcard::take_from_bytes::<Apply>(body)
                    .map_err(|e| worker::Error::RustError(format!("apply header: {e}")))?;
                internal::answer(&self.apply(header, beacon).await?)
            }
            "merge_in" => {
                let merge: MergeIn = internal::decode(body)?;
                internal::answer(&self.merge_in(merge).await?)
            }
            "state" => match self.load()? {
                Some(stored) => internal::json(&self.profile_json(&stored)?),
                None => Ok(None),
            },
            "events" => {
                let page: EventsPage = internal::decode(body)?;
                match self.load()? {
                    Some(_) => {
                        let limit = page.limit.clamp(1, TIMELINE_LEN as u32) as usize;
                        internal::json(&self.events_page(page.cursor, limit)?)
                    }
                    None => Ok(None),
                }
            }
            "export" => match self.load()? {
                Some(stored) => {
                    // Everything held, even past TIMELINE_LEN before the alarm trims it.
                    let events = self.events_page(None, usize::MAX)?;
                    internal::json(&json!({
                        "profile": self.profile_json(&stored)?,
                        "events": events["events"],
                        "messageIdsRemembered": self.event_count(false)?,
                        "storageBytes": self.sql.database_size(),
                    }))
                }
                None => Ok(None),
            },
            "erasure" => match self.load()? {
                Some(stored) => internal::answer(&self.erasure(stored).await?),
                None => Ok(None),
            },
            "forget_refusals" => {
                // A merge away in flight has sent the log already: the erasure fails (503) and,
                // asked again, finds the survivor.
                if self.merging.get() {
                    return Err(worker::Error::RustError("busy merging; ask again".into()));
                }
                let forget: ForgetRefusals = internal::decode(body)?;
                let Some(stored) = self.load()? else { return Ok(None) };
                let mut next = stored.clone();
                let forgotten = next.profile.forget_refusals_with(&forget.profile_ids) as u32;
                if forgotten > 0 {
                    self.commit(&stored.profile.identities, next, &[], false)?;
                }
                internal::answer(&forgotten)
            }
            "erase" => match self.load()? {
                Some(stored) => {
                    let erased = self.erasure(stored).await?;
                    self.delete_everything().await?;
                    internal::answer(&erased)
                }
                None => Ok(None),
            },
            "accounts" => match self.load()? {
                Some(stored) => {
                    let accounts = self.accounts(&stored).await?;
                    let list: Vec<serde_json::Value> = accounts
                        .into_iter()
                        .map(|(id, link)| json!({ "accountId": id, "link": link.as_str() }))
                        .collect();
                    internal::json(&json!({ "profileId": stored.profile_id, "accounts": list }))
                }
                None => Ok(None),
            },
            other => internal::unknown_action("profile", other),
        }
    }
}

impl ProfileObject {
    /// Decodes, validates and enriches one person's beacon (`core`), then applies the events
    /// not seen before with one `INSERT`. Events of another known user go to that user's
    /// profile.
    async fn apply(&self, header: Apply, beacon: &[u8]) -> Result<Applied> {
        let received_at = Timestamp(header.received_at);
        let accepted =
            match accept_beacon(beacon, received_at, &header.geo, &mut self.last_device.borrow_mut()) {
                Ok(accepted) => accepted,
                Err(error) => {
                    let invalid = RejectedEvent::from(&Rejected { index: 0, error });
                    return Ok(Applied { invalid: Some(invalid), ..Applied::default() });
                }
            };
        if let Err(wait) = self.take_tokens(accepted.events.len()) {
            return Ok(Applied { throttled: Some(wait), ..Applied::default() });
        }
        let original = |index: usize| header.indices.get(index).map_or(index, |&i| i as usize);
        let all_valid = accepted.rejected.is_empty() && accepted.bots == 0;
        let rejected = accepted
            .rejected
            .into_iter()
            .map(|r| {
                let index = original(r.index);
                RejectedEvent::from(&r.renumber(index))
            })
            .collect();
        let rules = self.rules(&header.workspace)?;
        let (own, foreign) = self.partition(accepted.events, &rules)?;
        // The beacon as received is kept only when every event in it is this person's.
        let whole = (all_valid && foreign.is_empty()).then_some(beacon);
        let (accepted_here, duplicates) = self.store(&header, own, whole, &rules).await?;
        let mut answer = Applied {
            accepted: accepted_here,
            duplicates,
            bots: accepted.bots,
            rejected,
            ..Applied::default()
        };
        for (user_id, events) in foreign {
            let indices = events.iter().map(|(i, _)| original(*i) as u32).collect();
            let events = events.into_iter().map(|(_, r)| r.event).collect();
            let redirected = self.redirect(&header, &user_id, events, indices).await?;
            answer.accepted += redirected.accepted;
            answer.duplicates += redirected.duplicates;
            answer.throttled = answer.throttled.max(redirected.throttled);
            answer.rejected.extend(redirected.rejected);
        }
        Ok(answer)
    }

    /// Takes `events` from the person's `PROFILE_LIMIT` bucket, or says how long to wait.
    fn take_tokens(&self, events: usize) -> std::result::Result<(), u64> {
        let now_ms = internal::now_ms() as f64;
        let mut bucket = self.bucket.borrow_mut();
        let bucket = bucket.get_or_insert_with(|| Bucket::full(PROFILE_LIMIT, now_ms));
        bucket.take(PROFILE_LIMIT, events, now_ms)
    }

    /// Splits a beacon's events (in time order) into this person's and, by user id, those of
    /// other known users: once a profile has a user id, an event naming another one belongs to
    /// that user (`core::identity::foreign_user`).
    fn partition(
        &self,
        events: Vec<(usize, Received)>,
        rules: &IdentityRules,
    ) -> Result<(Vec<Received>, ByUser)> {
        let mut foreign = ByUser::new();
        if events.iter().all(|(_, r)| r.event.user_id.is_none()) {
            return Ok((events.into_iter().map(|(_, r)| r).collect(), foreign));
        }
        let mut identities = self.with_stored(|s| s.profile.identities.clone())?;
        let mut own = Vec::new();
        for (index, received) in events {
            let user_id = received.event.user_id.as_deref();
            match identity::foreign_user(&identities, user_id, rules) {
                Some(user) => foreign.entry(user.to_owned()).or_default().push((index, received)),
                None => {
                    if let Some(user) = user_id.and_then(|u| rules.identity(IdKind::UserId, u)) {
                        identities.insert(user);
                    }
                    own.push(received);
                }
            }
        }
        Ok((own, foreign))
    }

    /// Applies events of another user to that user's profile (created if new).
    async fn redirect(
        &self,
        header: &Apply,
        user_id: &str,
        events: Vec<Event>,
        indices: Vec<u32>,
    ) -> Result<Applied> {
        let profile_id = internal::user_profile(&self.env, &header.workspace, user_id).await?;
        let stub = internal::profile_stub(&self.env, &header.workspace, &profile_id)?;
        let beacon = beacon::encode(&beacon::Batch { sent_at: None, dropped: 0, events });
        let redirected = Apply {
            workspace: header.workspace.clone(),
            profile_id,
            received_at: header.received_at,
            geo: header.geo.clone(),
            indices,
        };
        Ok(internal::apply(&stub, &redirected, &beacon).await?)
    }

    /// Applies the events whose message ids are new; returns (applied, duplicates). The row
    /// keeps the beacon as received (`whole`, when it holds just `events`) with the receipt
    /// (time, place) that re-derives the events; otherwise a beacon of the applied events
    /// only, so that other people's events, invalid ones and duplicates are never stored here.
    async fn store(
        &self,
        header: &Apply,
        events: Vec<Received>,
        whole: Option<&[u8]>,
        rules: &IdentityRules,
    ) -> Result<(u32, u32)> {
        if events.is_empty() {
            return Ok((0, 0));
        }
        self.schema.ensure(&self.sql)?;
        // Added to the profile's ids at once (which also catches an id repeated in the batch),
        // and forgotten if the batch is not stored.
        let fresh: Vec<(&Received, Key)> = {
            let mut seen = self.seen_ids()?;
            let seen = seen.as_mut().expect("loaded by seen_ids");
            events
                .iter()
                .map(|r| (r, Key::of(&r.event.message_id)))
                .filter(|&(_, key)| seen.add(key))
                .collect()
        };
        let duplicates = (events.len() - fresh.len()) as u32;
        if fresh.is_empty() {
            return Ok((0, duplicates));
        }
        let whole = whole.filter(|_| fresh.len() == events.len());
        let learned = self.or_forget_ids(self.commit_fresh(header, &fresh, whole, rules))?;
        self.settle(learned).await?;
        Ok((fresh.len() as u32, duplicates))
    }

    /// Applies and stores the batch's new events (`fresh`; `whole`: the beacon as received,
    /// when it holds exactly these); returns whether the profile learned identities.
    fn commit_fresh(
        &self,
        header: &Apply,
        fresh: &[(&Received, Key)],
        whole: Option<&[u8]>,
        rules: &IdentityRules,
    ) -> Result<bool> {
        let mut next = self.take_or_new(&header.workspace, &header.profile_id)?;
        // A visitor's refusal of analytics (`profile::is_refusal_of_analytics`) withdraws from
        // the profile held here; for one this object does not hold, it withdraws nothing and
        // is no reason to start one. Its row keeps no location: it records a refusal.
        let refusals_only = fresh.iter().all(|(r, _)| profile::is_refusal_of_analytics(&r.event));
        if refusals_only && !next.in_storage {
            return Ok(false);
        }
        let before = next.profile.identities.clone();
        for (received, _) in fresh {
            self.trap_if_asked(&received.event);
            next.profile.apply_with(received, rules);
        }
        let newest = fresh.iter().filter_map(|(r, _)| r.event.timestamp).max().map_or(0, |t| t.0);
        let geo = if refusals_only { Geo::default() } else { header.geo.clone() };
        let receipt = Receipt { received_at: header.received_at, geo };
        let beacon = match whole {
            Some(beacon) => beacon.to_vec(),
            None => {
                let events = fresh.iter().map(|(r, _)| r.event.clone()).collect();
                beacon::encode(&beacon::Batch { sent_at: None, dropped: 0, events })
            }
        };
        let keys: Vec<Key> = fresh.iter().map(|&(_, key)| key).collect();
        let row = Row {
            newest,
            count: fresh.len() as i64,
            ids: dedupe::encode(&keys),
            beacon: Some(beacon),
            receipt: to_postcard(&receipt)?,
        };
        self.commit(&before, next, &[row], true)
    }

    /// `result`, with the message ids held in memory forgotten if it failed: ids added for
    /// rows that were not stored must not count as seen (they are read again from storage).
    fn or_forget_ids<T>(&self, result: Result<T>) -> Result<T> {
        if result.is_err() {
            *self.seen.borrow_mut() = None;
        }
        result
    }

    /// The test hook of `PORTRAIT_TRAP_ON_EVENT`: panics (a wasm trap) on a `track` of that name.
    fn trap_if_asked(&self, event: &Event) {
        if let (Some(trap), Call::Track { event }) = (&self.trap_on_event, &event.call)
            && trap == event
        {
            panic!("PORTRAIT_TRAP_ON_EVENT: {event}");
        }
    }

    /// Writes `rows` and the new state `next` (of a profile that had the identities `before`)
    /// without an `await` between the statements, so the Durable Object commits them together
    /// or not at all; then updates the in-memory copies. Returns whether the profile learned
    /// identities (to register). `by_events`: `next` is the stored profile with the events of
    /// `rows` applied, and nothing else (a batch; not a merge or a recorded change), so a load
    /// can rebuild it from those rows and the state need not be written every time.
    fn commit(
        &self,
        before: &BTreeSet<Identity>,
        mut next: Stored,
        rows: &[Row],
        by_events: bool,
    ) -> Result<bool> {
        let new_identities: Vec<Identity> = next.profile.identities.difference(before).cloned().collect();
        let unlinked = match new_identities.is_empty() {
            true => None,
            false => Some(to_postcard(&new_identities)?),
        };
        let replayable = by_events && next.in_storage && next.rows_since_state + 1 < STATE_EVERY;
        let state = match replayable {
            true => None,
            false => Some(stored_state(&next.profile)?),
        };
        let write = || -> Result<()> {
            if !next.in_storage {
                self.sql.exec(
                    "INSERT OR IGNORE INTO meta (k, workspace, profile_id) VALUES (0, ?, ?)",
                    vec![next.workspace.as_str().into(), next.profile_id.as_str().into()],
                )?;
            }
            let state_only;
            let (last, earlier) = match rows.split_last() {
                Some((last, earlier)) => (last, earlier),
                None => {
                    state_only = Row::state_only()?;
                    (&state_only, &[][..])
                }
            };
            for row in earlier {
                self.insert_row(&self.insert_batch, row, None, None)?;
            }
            // An injected failure hits the last write: the earlier ones must not survive it.
            match self.failing_commits.as_ref().is_some_and(FailingCommits::fail_this_one) {
                // A table that does not exist: the storage layer itself refuses the write.
                true => self.insert_row(
                    &Statement::new(&INSERT_BATCH.replace("batches", "injected_failure")),
                    last,
                    state.as_deref(),
                    unlinked.as_deref(),
                ),
                false => self.insert_row(&self.insert_batch, last, state.as_deref(), unlinked.as_deref()),
            }
        };
        match rows.len() {
            // One row statement: it applies whole or not at all (the meta row is idempotent).
            0 | 1 => write()?,
            _ => self.in_transaction(write)?,
        }
        next.in_storage = true;
        next.rows_since_state = match replayable {
            true => next.rows_since_state + 1,
            false => 0,
        };
        *self.cache.borrow_mut() = Some(next);
        Ok(!new_identities.is_empty())
    }

    fn insert_row(
        &self,
        insert: &Statement,
        row: &Row,
        state: Option<&[u8]>,
        unlinked: Option<&[u8]>,
    ) -> Result<()> {
        insert.run(
            &self.sql,
            &[
                Param::Int(row.newest),
                Param::Int(row.count),
                Param::Blob(Some(&row.ids)),
                Param::Blob(row.beacon.as_deref()),
                Param::Blob(Some(&row.receipt)),
                Param::Blob(state),
                Param::Blob(unlinked),
            ],
        )
    }

    /// After a commit: registers new identities (`link`: there may be some), merges into the
    /// owner of one that another profile already holds, brings the profile's accounts up to
    /// date and re-evaluates its audiences and triggers. A failure leaves the identities marked
    /// unlinked and the outbox full, and the alarm retries.
    async fn settle(&self, link: bool) -> Result<()> {
        let outcome = async {
            if link {
                self.link_identities().await?;
            }
            self.update_accounts().await?;
            self.evaluate().await
        }
        .await;
        if let Err(e) = &outcome {
            worker::console_warn!("settling identities failed, will retry: {e}");
            // The tests' short housekeeping interval makes retries short too.
            let delay = RELINK_DELAY_MS.min(self.housekeeping_interval());
            self.state.storage().set_alarm(delay).await?;
            self.alarm_set.set(true);
        } else if !self.alarm_set.get() {
            if self.state.storage().get_alarm().await?.is_none() {
                self.state.storage().set_alarm(self.housekeeping_interval()).await?;
            }
            self.alarm_set.set(true);
        }
        Ok(())
    }

    /// Registers the identities in `batches.unlinked` in their index shards. An identity that
    /// already belongs to another profile starts a merge into that profile; the rows are
    /// marked linked once the merge is done or refused.
    async fn link_identities(&self) -> Result<()> {
        let Some(stored) = self.load()? else { return Ok(()) };
        let mut pending = Vec::new();
        let mut rows = Vec::new();
        for row in self.sql.exec("SELECT seq, unlinked FROM batches WHERE unlinked IS NOT NULL", None)?.raw()
        {
            if let [SqlStorageValue::Integer(seq), SqlStorageValue::Blob(bytes)] = row?.as_slice() {
                let identities: Vec<Identity> = postcard::from_bytes(bytes).map_err(decode_error)?;
                pending.extend(identities);
                rows.push(*seq);
            }
        }
        if pending.is_empty() {
            return Ok(());
        }
        let absorbed: Vec<String> = stored.profile.merged.iter().cloned().collect();
        let mut conflicts = Vec::new();
        for (shard, identities) in internal::by_shard(pending) {
            let stub = internal::index_stub(&self.env, &stored.workspace, shard)?;
            let link = Link { identities, profile_id: stored.profile_id.clone(), absorbed: absorbed.clone() };
            let linked: Option<Linked> = internal::call(&stub, "link", &link).await?;
            conflicts.extend(linked.map(|l| l.conflicts).unwrap_or_default());
        }
        // Merging into the first owner is enough: the survivor links what it receives and
        // meets any other owner itself.
        if let Some((identity, owner)) = conflicts.into_iter().next() {
            self.merge_out(owner, MergeReason::Shared(identity)).await?;
        }
        if self.forward_target()?.is_none() {
            for seq in rows {
                self.sql.exec("UPDATE batches SET unlinked = NULL WHERE seq = ?", vec![seq.into()])?;
            }
        }
        Ok(())
    }

    /// Merges this profile into `target`: sends its state and rows, then the rows applied
    /// meanwhile, until none arrived during the last call; then keeps only a forwarding
    /// record. Refused merges are recorded on both profiles.
    async fn merge_out(&self, target: String, reason: MergeReason) -> Result<MergeAnswer> {
        if self.merging.replace(true) {
            return Ok(MergeAnswer::Busy);
        }
        let outcome = self.merge_rounds(target, reason).await;
        self.merging.set(false);
        outcome
    }

    async fn merge_rounds(&self, mut target: String, reason: MergeReason) -> Result<MergeAnswer> {
        let Some(stored) = self.load()? else {
            return Ok(MergeAnswer::Refused(Refusal::DifferentUsers {
                ours: String::new(),
                theirs: String::new(),
            }));
        };
        'targets: for _ in 0..MAX_HOPS {
            if target == stored.profile_id {
                return Ok(MergeAnswer::Merged);
            }
            let stub = internal::profile_stub(&self.env, &stored.workspace, &target)?;
            let mut sent_up_to = 0;
            let mut first = true;
            let mut accounts_sent = Vec::new();
            loop {
                let rows = self.rows_after(sent_up_to)?;
                // An account reached while the last round was in flight goes in another.
                let accounts = self.reached_accounts()?;
                if !first && rows.is_empty() && accounts == accounts_sent {
                    // No await since the check: nothing can have arrived in between.
                    self.become_forward(&stored.profile_id, &target)?;
                    if let Err(e) = outbox::flush(&self.sql, &self.env, &stored.workspace).await {
                        worker::console_warn!("leaving audiences failed, will retry: {e}");
                        // The tests' short housekeeping interval makes retries short too.
                        let delay = RELINK_DELAY_MS.min(self.housekeeping_interval());
                        self.state.storage().set_alarm(delay).await?;
                    }
                    return Ok(MergeAnswer::Merged);
                }
                sent_up_to = rows.iter().map(|r| r.seq).max().unwrap_or(sent_up_to);
                let merge = MergeIn {
                    workspace: stored.workspace.clone(),
                    from: stored.profile_id.clone(),
                    into: target.clone(),
                    reason: reason.clone(),
                    profile: if first { self.load()?.map(|s| s.profile) } else { None },
                    rows,
                    accounts: accounts.clone(),
                };
                accounts_sent = accounts;
                let answer: Option<MergeAnswer> = internal::call(&stub, "merge_in", &merge).await?;
                match answer {
                    Some(MergeAnswer::Merged) => first = false,
                    Some(MergeAnswer::Refused(refusal)) => {
                        let change = Change::Refused { other: target, reason, refusal: refusal.clone() };
                        self.record(change)?;
                        return Ok(MergeAnswer::Refused(refusal));
                    }
                    Some(MergeAnswer::Forwarded(next)) => {
                        target = next;
                        continue 'targets;
                    }
                    Some(MergeAnswer::Busy) => {
                        return Err(worker::Error::RustError(format!("{target} is busy merging")));
                    }
                    None => return Err(worker::Error::RustError(format!("merge_in {target} answered 404"))),
                }
            }
        }
        Err(worker::Error::RustError("merge: forwarding chain too long".into()))
    }

    /// `merge_in` on the survivor: checks the rules, merges the state (once: `merged`
    /// remembers; the events both profiles applied counted once), imports the rows whose
    /// message ids are new, applies the events of rows sent after the state, and links what
    /// it learned.
    async fn merge_in(&self, merge: MergeIn) -> Result<MergeAnswer> {
        if self.merging.get() {
            return Ok(MergeAnswer::Busy);
        }
        self.schema.ensure(&self.sql)?;
        let rules = self.rules(&merge.workspace)?;
        let stored = self.load_or_new(&merge.workspace, &merge.into)?;
        let mut next = stored.clone();
        let now = Timestamp(internal::now_ms());
        // Whether the rows' events are counted by a state merged now. A state sent again (a
        // retried merge whose answer was lost, or a merge restarted here because the profile
        // it went to first has since merged into this one) is not merged twice, and the rows
        // not seen before hold events that the state merged then did not count.
        let mut state_covers_rows = false;
        if let Some(theirs) = &merge.profile
            && !next.profile.merged.contains(&merge.from)
        {
            if let Err(refusal) = identity::check_merge(&next.profile, theirs, &rules) {
                let change =
                    Change::Refused { other: merge.from, reason: merge.reason, refusal: refusal.clone() };
                self.record(change)?;
                return Ok(MergeAnswer::Refused(refusal));
            }
            let shared = self.events_applied_here(&merge.rows)?;
            next.profile.merge_sharing(&merge.from, theirs, &shared);
            state_covers_rows = true;
            let identities = theirs.identities.iter().cloned().collect();
            next.profile
                .log(now, Change::Merged { from: merge.from.clone(), identities, reason: merge.reason });
        }
        let mut rows = Vec::new();
        {
            let mut seen = self.seen_ids()?;
            let seen = seen.as_mut().expect("loaded by seen_ids");
            for row in merge.rows {
                let ids = dedupe::decode(&row.ids).map_err(decode_error)?;
                let new_ids: Vec<Key> = ids.into_iter().filter(|key| !seen.holds(key)).collect();
                if new_ids.is_empty() {
                    continue;
                }
                // Rows sent after the state merged hold events it does not count yet.
                if !state_covers_rows && let Some(beacon) = &row.beacon {
                    let events =
                        stored_events(&row.ids, beacon, &row.receipt, &mut self.last_device.borrow_mut())
                            .map_err(worker::Error::RustError)?;
                    for received in events.iter().filter(|r| !seen.contains(&r.event.message_id)) {
                        next.profile.apply_with(received, &rules);
                    }
                }
                seen.extend(new_ids.iter().copied());
                rows.push(Row {
                    newest: row.newest,
                    count: new_ids.len() as i64,
                    ids: dedupe::encode(&new_ids),
                    beacon: row.beacon,
                    receipt: row.receipt,
                });
            }
        }
        self.or_forget_ids(self.commit(&stored.profile.identities, next, &rows, false))?;
        // After the commit: a merge that fails is sent again, with its accounts.
        self.note_accounts(&merge.accounts)?;
        self.settle(true).await?;
        Ok(MergeAnswer::Merged)
    }

    /// The events of a merge's `rows` that this profile applied too (one message id that
    /// reached both profiles before they were linked): their state counts them, so the merge
    /// takes them back once (`Profile::merge_sharing`). A row whose events were trimmed from
    /// the timeline (no beacon) cannot say what they were.
    fn events_applied_here(&self, rows: &[BatchRow]) -> Result<Vec<Received>> {
        let seen = self.seen_ids()?;
        let seen = seen.as_ref().expect("loaded by seen_ids");
        let mut shared = Vec::new();
        for row in rows {
            let Some(beacon) = &row.beacon else { continue };
            let ids = dedupe::decode(&row.ids).map_err(decode_error)?;
            if !ids.iter().any(|key| seen.holds(key)) {
                continue;
            }
            // Taking back is a correction: a row that no longer decodes must not stop the merge.
            match stored_events(&row.ids, beacon, &row.receipt, &mut self.last_device.borrow_mut()) {
                Ok(events) => {
                    shared.extend(events.into_iter().filter(|r| seen.contains(&r.event.message_id)))
                }
                Err(e) => worker::console_warn!("merge: a row's shared events unreadable: {e}"),
            }
        }
        Ok(shared)
    }

    /// Records a merge refused with another profile.
    fn record(&self, change: Change) -> Result<()> {
        let Some(stored) = self.load()? else { return Ok(()) };
        let mut next = stored.clone();
        next.profile.log(Timestamp(internal::now_ms()), change);
        self.commit(&stored.profile.identities, next, &[], false).map(|_| ())
    }

    /// The rows after `seq` that applied events, as a merge sends them.
    fn rows_after(&self, seq: i64) -> Result<Vec<BatchRow>> {
        let mut rows = Vec::new();
        let cursor = self.sql.exec(
            "SELECT seq, newest, count, ids, beacon, receipt FROM batches WHERE seq > ? AND count > 0 ORDER BY seq",
            vec![seq.into()],
        )?;
        for row in cursor.raw() {
            let values = row?;
            if let [
                SqlStorageValue::Integer(seq),
                SqlStorageValue::Integer(newest),
                SqlStorageValue::Integer(count),
                SqlStorageValue::Blob(ids),
                beacon,
                SqlStorageValue::Blob(receipt),
            ] = values.as_slice()
            {
                let beacon = match beacon {
                    SqlStorageValue::Blob(bytes) => Some(bytes.clone()),
                    _ => None,
                };
                rows.push(BatchRow {
                    seq: *seq,
                    newest: *newest,
                    count: *count,
                    ids: ids.clone(),
                    beacon,
                    receipt: receipt.clone(),
                });
            }
        }
        Ok(rows)
    }

    /// Keeps only the forwarding record: the survivor holds everything now. The profile
    /// leaves its audiences (the survivor joins them on its own evaluation; no webhook fires
    /// for a merge).
    fn become_forward(&self, profile_id: &str, target: &str) -> Result<()> {
        let leave = |name| outbox::Item::Audience {
            name,
            change: Membership { member: profile_id.to_owned(), entered: None },
        };
        let before = self.evaluated()?;
        let leaves: Vec<outbox::Item> = before.audiences.keys().cloned().map(leave).collect();
        outbox::record(&self.sql, &before, Some((Evaluated::default(), leaves)))?;
        self.sql.exec("UPDATE meta SET forward_to = ? WHERE k = 0", vec![target.into()])?;
        self.sql.exec("DELETE FROM batches", None)?;
        *self.forward.borrow_mut() = Some(Some(target.to_owned()));
        *self.cache.borrow_mut() = None;
        *self.seen.borrow_mut() = None;
        Ok(())
    }

    /// Where this profile was merged to, if it was.
    fn forward_target(&self) -> Result<Option<String>> {
        if let Some(known) = self.forward.borrow().as_ref() {
            return Ok(known.clone());
        }
        let mut target = None;
        if self.schema.exists(&self.sql, "meta")? {
            for row in self.sql.exec("SELECT forward_to FROM meta WHERE k = 0", None)?.raw() {
                if let Some(SqlStorageValue::String(to)) = row?.into_iter().next() {
                    target = Some(to);
                }
            }
        }
        *self.forward.borrow_mut() = Some(target.clone());
        Ok(target)
    }

    /// A merged-away profile: events and reads go on to the survivor; a merge into it is
    /// told where to go; erasure removes the forwarding record.
    async fn forwarded(&self, action: &str, body: &[u8], target: String) -> Result<Answer> {
        let workspace = self.owner()?.map(|(workspace, _)| workspace).unwrap_or_default();
        let stub = internal::profile_stub(&self.env, &workspace, &target)?;
        match action {
            "apply" => {
                let (mut header, beacon) = postcard::take_from_bytes::<Apply>(body)
                    .map_err(|e| worker::Error::RustError(format!("apply header: {e}")))?;
                header.profile_id = target;
                internal::answer(&internal::apply(&stub, &header, beacon).await?)
            }
            "merge_in" => internal::answer(&MergeAnswer::Forwarded(target)),
            "erase" => {
                let erased = self.forwarding_erasure()?;
                self.delete_everything().await?;
                internal::answer(&erased)
            }
            // A survivor erased already (an erasure asked again after it failed past that):
            // what is left is this record, erased as a profile of its own.
            "erasure" => match internal::post(&stub, action, body).await? {
                None => internal::answer(&self.forwarding_erasure()?),
                plan => Ok(plan),
            },
            action => Ok(internal::post(&stub, action, body).await?),
        }
    }

    /// The erasure of a forwarding record: its own id, nothing else.
    fn forwarding_erasure(&self) -> Result<Erased> {
        Ok(Erased {
            profile_id: self.owner()?.map(|(_, id)| id).unwrap_or_default(),
            identities: Vec::new(),
            merged: Vec::new(),
            accounts: Vec::new(),
            refused_with: Vec::new(),
            events_removed: 0,
            message_ids_forgotten: 0,
        })
    }

    /// Re-evaluates the tags that fire things — audiences, lifecycle, lead score — and sends
    /// what changed to audience shards and webhooks (through the outbox). Skipped when the
    /// workspace declares no audiences and no webhooks.
    async fn evaluate(&self) -> Result<()> {
        let Some(workspace) = self.with_stored(|s| Some(s.workspace.clone()))? else { return Ok(()) };
        let fires_anything = settings::workspace_settings(&self.env, &workspace, |w| {
            w.is_some_and(|w| !w.audiences.is_empty() || !w.webhooks.is_empty())
        })?;
        if !fires_anything && !self.outbox_pending.get() {
            return Ok(());
        }
        let Some(stored) = self.load()? else { return Ok(()) };
        let now = Timestamp(internal::now_ms());
        let before = self.evaluated()?;
        let outcome = settings::workspace_settings(&self.env, &stored.workspace, |workspace| {
            let workspace = workspace.filter(|w| !w.audiences.is_empty() || !w.webhooks.is_empty())?;
            let tags = tags::tags(&stored.profile, &workspace.scoring, now);
            let facts = ProfileFacts { tags: &tags, profile: &stored.profile, now };
            let tag = |name: &str| tags.iter().find(|t| t.name == name).map(|t| &t.value);
            let snapshot = Snapshot {
                audiences: workspace
                    .audiences
                    .iter()
                    .filter(|a| {
                        a.of == AudienceOf::People && a.parsed.as_ref().is_some_and(|r| r.eval(&facts))
                    })
                    .map(|a| a.name.clone())
                    .collect(),
                lifecycle: tag("lifecycle").and_then(|v| v.as_str()).map(str::to_owned),
                lead_score: tag("lead_score").and_then(serde_json::Value::as_f64),
            };
            let (after, changes) =
                changes::evaluate(&before, &snapshot, &Transition::thresholds(&workspace.webhooks), now.0);
            let subject = view::profile_summary(&stored.profile_id, &stored.profile, &tags);
            let items = outbox::items(workspace, &stored.profile_id, &changes, "profile", &subject, now);
            Some((after, items))
        })?;
        if outbox::record(&self.sql, &before, outcome)? {
            self.outbox_pending.set(true);
        }
        if self.outbox_pending.get() {
            outbox::flush(&self.sql, &self.env, &stored.workspace).await?;
            self.outbox_pending.set(false);
        }
        Ok(())
    }

    /// Reads the stored profile in place (no copy), if there is one.
    fn with_stored<R: Default>(&self, read: impl FnOnce(&Stored) -> R) -> Result<R> {
        if self.cache.borrow().is_none() && self.load()?.is_none() {
            return Ok(R::default());
        }
        Ok(self.cache.borrow().as_ref().map(read).unwrap_or_default())
    }

    /// The last evaluation of this profile's audiences and triggers.
    fn evaluated(&self) -> Result<Evaluated> {
        outbox::evaluated(&self.sql, &self.schema)
    }

    /// Sends each account of the profile its member snapshot and the traits its group calls
    /// gave: explicit accounts from `group` calls, an inferred one from a business email.
    async fn update_accounts(&self) -> Result<()> {
        // Most profiles belong to no account: find that out without copying the profile.
        if !self.with_stored(|s| !s.profile.groups.is_empty() || s.profile.traits.contains_key("email"))? {
            return Ok(());
        }
        let Some(stored) = self.load()? else { return Ok(()) };
        let accounts = self.accounts(&stored).await?;
        // An erasure or a merge away may have run during that lookup: then nothing is noted
        // (it would bring back tables in an erased object) and nothing is sent.
        if self.forward_target()?.is_some() || self.load()?.is_none() {
            return Ok(());
        }
        // Noted before they are sent, with no await between: an erasure may then ask an
        // account that never got its update, never miss one that did.
        self.note_accounts(&accounts.iter().map(|(id, _)| id.clone()).collect::<Vec<_>>())?;
        for (account_id, link) in accounts {
            let traits = stored.profile.group_traits.get(&account_id).cloned().unwrap_or_default();
            let update = AccountUpdate {
                member: account::member_snapshot(&stored.profile_id, &stored.profile, link),
                traits: traits.into_iter().collect(),
            };
            let message = AccountMessage {
                workspace: stored.workspace.clone(),
                account_id: account_id.clone(),
                absorbed: stored.profile.merged.iter().cloned().collect(),
                update: Some(update),
            };
            let stub = internal::account_stub(&self.env, &stored.workspace, &account_id)?;
            internal::call::<_, ()>(&stub, "update", &message).await?;
        }
        Ok(())
    }

    /// Adds `ids` to the accounts this profile has reached.
    fn note_accounts(&self, ids: &[String]) -> Result<()> {
        self.schema.ensure(&self.sql)?;
        for id in ids {
            self.sql.exec("INSERT OR IGNORE INTO accounts (id) VALUES (?)", vec![id.as_str().into()])?;
        }
        Ok(())
    }

    /// The accounts this profile, or one merged into it, has sent a member snapshot to.
    fn reached_accounts(&self) -> Result<Vec<String>> {
        let mut ids = Vec::new();
        if self.schema.exists(&self.sql, "accounts")? {
            for row in self.sql.exec("SELECT id FROM accounts ORDER BY id", None)?.raw() {
                if let Some(SqlStorageValue::String(id)) = row?.into_iter().next() {
                    ids.push(id);
                }
            }
        }
        Ok(ids)
    }

    /// The accounts this profile belongs to: its groups, and the account of its business email
    /// domain (the group account that declared that domain, else `domain:<domain>`).
    async fn accounts(&self, stored: &Stored) -> Result<Vec<(String, AccountLink)>> {
        let mut accounts: Vec<(String, AccountLink)> =
            stored.profile.groups.iter().map(|g| (g.clone(), AccountLink::Explicit)).collect();
        let email = match stored.profile.traits.get("email").map(|t| &t.value) {
            Some(Value::String(email)) => account::business_domain(email),
            _ => None,
        };
        // A group that declared the domain already holds the person explicitly.
        let declared = |domain: &str| {
            stored
                .profile
                .group_traits
                .values()
                .any(|t| account::domain_of_traits(t).as_deref() == Some(domain))
        };
        if let Some(domain) = email.filter(|d| !declared(d)) {
            let account_id = internal::account_of_domain(&self.env, &stored.workspace, &domain).await?;
            if !accounts.iter().any(|(id, _)| *id == account_id) {
                accounts.push((account_id, AccountLink::Inferred));
            }
        }
        Ok(accounts)
    }

    /// A page of the timeline, newest first by event time (so the histories of merged
    /// profiles interleave); `cursor` is the position of the last event of the previous page.
    /// The timeline holds at most about [`TIMELINE_LEN`] events, so a page sorts them all.
    fn events_page(&self, cursor: Option<Position>, limit: usize) -> Result<serde_json::Value> {
        let mut events = Vec::new();
        let rows =
            self.sql.exec("SELECT seq, ids, beacon, receipt FROM batches WHERE beacon IS NOT NULL", None)?;
        for row in rows.raw() {
            if let [
                SqlStorageValue::Integer(seq),
                SqlStorageValue::Blob(ids),
                SqlStorageValue::Blob(beacon),
                SqlStorageValue::Blob(receipt),
            ] = row?.as_slice()
            {
                let batch = stored_events(ids, beacon, receipt, &mut self.last_device.borrow_mut())
                    .map_err(|e| worker::Error::RustError(format!("timeline batch {seq}: {e}")))?;
                for (index, received) in batch.into_iter().enumerate() {
                    let at = received.event.timestamp.map_or(0, |t| t.0);
                    let position = Position { at, seq: *seq, index: index as i64 };
                    if cursor.is_none_or(|before| position < before) {
                        events.push((position, received));
                    }
                }
            }
        }
        events.sort_by_key(|(position, _)| std::cmp::Reverse(*position));
        events.truncate(limit);
        let next_cursor =
            (events.len() == limit).then(|| events.last().map(|(p, _)| p.to_string())).flatten();
        let events: Vec<serde_json::Value> = events
            .iter()
            .map(|(position, received)| {
                let mut event = view::received_json(received);
                event["cursor"] = json!(position.to_string());
                event
            })
            .collect();
        Ok(json!({ "events": events, "nextCursor": next_cursor }))
    }

    /// Deletes everything this object holds and says what it was; the profile leaves its
    /// audiences first (no webhook fires for an erasure).
    /// What erasing this profile removes, once it has left its audiences (which it may do
    /// more than once: erasure retried after a failure starts here again).
    async fn erasure(&self, stored: Stored) -> Result<Erased> {
        for name in self.evaluated()?.audiences.into_keys() {
            let change = Membership { member: stored.profile_id.clone(), entered: None };
            let stub = internal::audience_stub(
                &self.env,
                &stored.workspace,
                &name,
                audience_object::shard_of(&stored.profile_id),
            )?;
            internal::call::<_, ()>(&stub, "change", &change).await?;
        }
        let mut accounts: BTreeSet<String> =
            self.accounts(&stored).await?.into_iter().map(|(id, _)| id).collect();
        accounts.extend(self.reached_accounts()?);
        let mut refused_with = stored.profile.refused_with();
        refused_with.remove(&stored.profile_id);
        refused_with.retain(|id| !stored.profile.merged.contains(id));
        let erased = Erased {
            profile_id: stored.profile_id,
            identities: stored.profile.identities.into_iter().collect(),
            merged: stored.profile.merged.into_iter().collect(),
            accounts: accounts.into_iter().collect(),
            refused_with: refused_with.into_iter().collect(),
            events_removed: self.event_count(true)?,
            message_ids_forgotten: self.event_count(false)?,
        };
        Ok(erased)
    }

    async fn delete_everything(&self) -> Result<()> {
        // An erasure is a commit too: a failure injected here leaves everything in place.
        if self.failing_commits.as_ref().is_some_and(FailingCommits::fail_this_one) {
            return Err(worker::Error::RustError("injected failure (PORTRAIT_FAIL_COMMITS)".into()));
        }
        let storage = self.state.storage();
        storage.delete_alarm().await?;
        storage.delete_all().await?;
        *self.cache.borrow_mut() = None;
        *self.seen.borrow_mut() = None;
        *self.forward.borrow_mut() = None;
        self.schema.forget();
        self.alarm_set.set(false);
        Ok(())
    }

    fn housekeeping_interval(&self) -> i64 {
        let configured =
            self.env.var("PORTRAIT_HOUSEKEEPING_MS").ok().and_then(|v| v.to_string().parse().ok());
        configured.unwrap_or(HOUSEKEEPING_INTERVAL_MS)
    }

    /// The profile and its tags as of now, by the workspace's scoring settings.
    fn profile_json(&self, stored: &Stored) -> Result<serde_json::Value> {
        let now = Timestamp(internal::now_ms());
        let mut json = settings::workspace_settings(&self.env, &stored.workspace, |w| {
            let defaults = TagSettings::default();
            let scoring = w.map_or(&defaults, |w| &w.scoring);
            view::profile_json(&stored.profile_id, &stored.profile, scoring, now)
        })?;
        view::add_evaluation(&mut json, &self.evaluated()?);
        Ok(json)
    }

    fn rules(&self, workspace: &str) -> Result<IdentityRules> {
        Ok(settings::workspace_settings(&self.env, workspace, |w| {
            w.map(|w| w.identity.clone()).unwrap_or_default()
        })?)
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
    fn seen_ids(&self) -> Result<std::cell::RefMut<'_, Option<MessageIds>>> {
        let mut seen = self.seen.borrow_mut();
        if seen.is_none() {
            // Every row's list, concatenated, then decoded and added at once: the set is sized once.
            let mut stored = Vec::new();
            let mut after = 0; // `seq` counts from 1
            loop {
                let query = self.sql.exec(SEEN_IDS, vec![after.into(), SEEN_IDS_ROWS.into()])?;
                let Some(row) = query.raw().next().transpose()? else { break };
                let [
                    SqlStorageValue::Blob(lists),
                    SqlStorageValue::Integer(last),
                    SqlStorageValue::Integer(count),
                ] = row.as_slice()
                else {
                    break; // no rows after `after`: NULLs
                };
                stored.extend_from_slice(lists);
                if *count < SEEN_IDS_ROWS {
                    break;
                }
                after = *last;
            }
            let mut ids = MessageIds::default();
            if !stored.is_empty() {
                ids.extend(dedupe::decode(&stored).map_err(decode_error)?);
            }
            *seen = Some(ids);
        }
        Ok(seen)
    }

    /// Whose profile this object holds: (workspace, profile id), once written.
    fn owner(&self) -> Result<Option<(String, String)>> {
        if !self.schema.exists(&self.sql, "meta")? {
            return Ok(None);
        }
        for row in self.sql.exec("SELECT workspace, profile_id FROM meta WHERE k = 0", None)?.raw() {
            if let [SqlStorageValue::String(workspace), SqlStorageValue::String(profile_id)] = row?.as_slice()
            {
                return Ok(Some((workspace.clone(), profile_id.clone())));
            }
        }
        Ok(None)
    }

    /// The stored profile, if this object has one. Reads never create tables: an unknown
    /// profile leaves no trace.
    fn load(&self) -> Result<Option<Stored>> {
        if let Some(stored) = self.cache.borrow().as_ref() {
            return Ok(Some(stored.clone()));
        }
        let Some((workspace, profile_id)) = self.owner()? else { return Ok(None) };
        let query = "SELECT seq, state FROM batches WHERE state IS NOT NULL ORDER BY seq DESC LIMIT 1";
        let mut newest_state = None;
        for row in self.sql.exec(query, None)?.raw() {
            if let [SqlStorageValue::Integer(seq), SqlStorageValue::Blob(state)] = row?.as_slice() {
                let profile = Profile::from_stored(state)
                    .map_err(|e| worker::Error::RustError(format!("stored data: {e}")))?;
                newest_state = Some((*seq, profile));
            }
        }
        let Some((state_seq, mut profile)) = newest_state else { return Ok(None) };
        let rules = self.rules(&workspace)?;
        let mut rows_since_state = 0;
        let later = "SELECT ids, beacon, receipt FROM batches WHERE seq > ? ORDER BY seq";
        for row in self.sql.exec(later, vec![state_seq.into()])?.raw() {
            let values = row?;
            let [SqlStorageValue::Blob(ids), SqlStorageValue::Blob(beacon), SqlStorageValue::Blob(receipt)] =
                values.as_slice()
            else {
                let detail = "a batch after the newest state holds no events";
                return Err(worker::Error::RustError(format!("stored data: {detail}")));
            };
            let events = stored_events(ids, beacon, receipt, &mut self.last_device.borrow_mut())
                .map_err(worker::Error::RustError)?;
            for received in events {
                profile.apply_with(&received, &rules);
            }
            rows_since_state += 1;
        }
        let stored = Stored { workspace, profile_id, profile, in_storage: true, rows_since_state };
        *self.cache.borrow_mut() = Some(stored.clone());
        Ok(Some(stored))
    }

    /// The stored profile, or an empty one for `profile_id` (written by the first commit).
    fn load_or_new(&self, workspace: &str, profile_id: &str) -> Result<Stored> {
        Ok(self.load()?.unwrap_or_else(|| Stored {
            workspace: workspace.to_owned(),
            profile_id: profile_id.to_owned(),
            profile: Profile::default(),
            in_storage: false,
            rows_since_state: 0,
        }))
    }

    /// Like [`Self::load_or_new`], but takes the profile out of memory instead of copying it.
    /// Until a commit puts it back, memory holds none: after a failed commit the next batch
    /// reads the stored profile again.
    fn take_or_new(&self, workspace: &str, profile_id: &str) -> Result<Stored> {
        if let Some(stored) = self.cache.borrow_mut().take() {
            return Ok(stored);
        }
        let stored = self.load_or_new(workspace, profile_id)?;
        self.cache.borrow_mut().take();
        Ok(stored)
    }

    /// Runs `writes` in one SQLite transaction (`storage.transactionSync`): if any statement
    /// fails, none of them is kept.
    fn in_transaction(&self, writes: impl FnOnce() -> Result<()>) -> Result<()> {
        let storage = self.state.storage();
        let storage: &TransactionalStorage = storage.as_raw().unchecked_ref();
        let mut writes = Some(writes);
        let mut failure = None;
        // A stack closure: valid during the call, which is synchronous.
        let mut run = || -> std::result::Result<JsValue, JsValue> {
            match writes.take().map_or(Ok(()), |writes| writes()) {
                Ok(()) => Ok(JsValue::UNDEFINED),
                Err(e) => {
                    let thrown = JsValue::from_str(&e.to_string());
                    failure = Some(e);
                    Err(thrown) // transactionSync rolls back when the callback throws
                }
            }
        };
        let result = storage.transaction_sync(&mut run);
        match (failure, result) {
            (Some(e), _) => Err(e),
            (None, Err(e)) => Err(worker::Error::from(e)),
            (None, Ok(_)) => Ok(()),
        }
    }
}

/// Events by user id, each with its index in the beacon.
type ByUser = BTreeMap<String, Vec<(usize, Received)>>;

/// A batch row to write: `state` and `unlinked` are added by [`ProfileObject::commit`].
struct Row {
    newest: i64,
    count: i64,
    ids: Vec<u8>,
    beacon: Option<Vec<u8>>,
    receipt: Vec<u8>,
}

impl Row {
    /// A row that only carries a new state (a merge or a refusal recorded, no events).
    fn state_only() -> Result<Row> {
        let receipt = Receipt { received_at: 0, geo: Geo::default() };
        Ok(Row {
            newest: 0,
            count: 0,
            ids: to_postcard(&Vec::<String>::new())?,
            beacon: None,
            receipt: to_postcard(&receipt)?,
        })
    }
}

fn decode_error(e: postcard::Error) -> worker::Error {
    worker::Error::RustError(format!("stored data: {e}"))
}

/// When and where a batch was received: with its beacon, what re-derives its events.
#[derive(serde::Serialize, serde::Deserialize)]
struct Receipt {
    received_at: i64,
    geo: Geo,
}

/// The events a batch row applied, re-derived from its beacon and receipt (enrichment is
/// pure); `ids` are the message ids the row applied (`dedupe::encode`d). `last`: the object's
/// parsed user agent, so that rows of one browser parse it once, not once per row.
fn stored_events(
    ids: &[u8],
    beacon: &[u8],
    receipt: &[u8],
    last: &mut LastDevice,
) -> std::result::Result<Vec<Received>, String> {
    let receipt: Receipt = postcard::from_bytes(receipt).map_err(|e| e.to_string())?;
    let accepted = accept_beacon(beacon, Timestamp(receipt.received_at), &receipt.geo, last)
        .map_err(|e| e.to_string())?;
    let mut wanted = MessageIds::default();
    wanted.extend(dedupe::decode(ids).map_err(|e| e.to_string())?);
    Ok(accepted
        .events
        .into_iter()
        .map(|(_, r)| r)
        .filter(|r| wanted.remove(&Key::of(&r.event.message_id)))
        .collect())
}

/// A profile's stored state, versioned (`Profile::to_stored`).
fn stored_state(profile: &Profile) -> Result<Vec<u8>> {
    profile.to_stored().map_err(|e| worker::Error::RustError(format!("encoding: {e}")))
}

fn to_postcard(value: &impl serde::Serialize) -> Result<Vec<u8>> {
    postcard::to_allocvec(value).map_err(|e| worker::Error::RustError(format!("encoding: {e}")))
}

#[wasm_bindgen]
extern "C" {
    /// The part of `DurableObjectStorage` that workers-rs does not wrap.
    #[wasm_bindgen(extends = js_sys::Object)]
    type TransactionalStorage;

    #[wasm_bindgen(method, catch, js_name = transactionSync)]
    fn transaction_sync(
        this: &TransactionalStorage,
        callback: &mut dyn FnMut() -> std::result::Result<JsValue, JsValue>,
    ) -> std::result::Result<JsValue, JsValue>;
}
