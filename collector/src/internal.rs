//! How the Worker and the Durable Objects talk: object names, and typed messages sent as
//! postcard bodies to an object's `call(action, body)` method over Durable Object RPC.
//!
//! RPC rather than `fetch`: a call is one method invocation with a byte array, where `fetch`
//! built a `Request`, streamed its body into the object, and built and streamed a `Response`
//! back — a fifth of the isolate's time per ingest request in the load benchmark's CPU profile
//! (`bench/profile-collector.mjs`), against ~5 % for the RPC call. Every object class serves
//! its calls with [`Object::handle`], exported by [`export_object!`]; its `fetch` answers 404
//! (in `collector/js/entry.mjs`).

use portrait_core::Rejected;
use portrait_core::account::AccountUpdate;
use portrait_core::enrich::Geo;
use portrait_core::identity::{IdKind, Identity, MergeReason, Refusal, RoutingKey};
use portrait_core::profile::Profile;
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, BTreeSet};

use wasm_bindgen::prelude::*;
use worker::wasm_bindgen_futures::JsFuture;
use worker::{Env, ObjectNamespace, SqlStorage, SqlStorageValue, State};

use crate::http::ApiError;

/// The tables of a Durable Object class, created on its first write (reads never create
/// them, so looking up an unknown object leaves no trace). Each statement is a
/// `CREATE TABLE IF NOT EXISTS name (…)`. An object learns which tables exist with one query
/// per life, not one per table and statement: a reloaded object's first batch paid for six.
pub struct Schema {
    statements: &'static [&'static str],
    /// The tables storage held when first asked, until the object creates its own.
    existing: RefCell<Option<BTreeSet<String>>>,
    ready: Cell<bool>,
}

impl Schema {
    pub const fn new(statements: &'static [&'static str]) -> Schema {
        Schema { statements, existing: RefCell::new(None), ready: Cell::new(false) }
    }

    pub fn ensure(&self, sql: &SqlStorage) -> worker::Result<()> {
        if !self.ready.get() {
            for statement in self.statements {
                let table =
                    statement.strip_prefix("CREATE TABLE IF NOT EXISTS ").and_then(|s| s.split(' ').next());
                let exists = match table {
                    Some(table) => self.existing(sql, table)?,
                    None => false,
                };
                if !exists {
                    sql.exec(statement, None)?;
                }
            }
            self.ready.set(true);
        }
        Ok(())
    }

    /// Whether `table` exists; asks storage at most once, and not at all once this object has
    /// created its tables.
    pub fn exists(&self, sql: &SqlStorage, table: &str) -> worker::Result<bool> {
        if self.ready.get() {
            return Ok(true);
        }
        self.existing(sql, table)
    }

    fn existing(&self, sql: &SqlStorage, table: &str) -> worker::Result<bool> {
        let mut existing = self.existing.borrow_mut();
        if existing.is_none() {
            // One value, not a row per table: each row is a call into JavaScript.
            let query = "SELECT group_concat(name, ' ') FROM sqlite_master WHERE type = 'table'";
            let mut tables = BTreeSet::new();
            if let Some(row) = sql.exec(query, None)?.raw().next()
                && let Some(SqlStorageValue::String(names)) = row?.into_iter().next()
            {
                tables.extend(names.split(' ').map(str::to_owned));
            }
            *existing = Some(tables);
        }
        Ok(existing.as_ref().is_some_and(|tables| tables.contains(table)))
    }

    /// After the object's storage was deleted.
    pub fn forget(&self) {
        self.ready.set(false);
        *self.existing.borrow_mut() = None;
    }
}

/// A statement an object runs on every request (the batch `INSERT`). Its text crosses into
/// JavaScript once per object life, not on every run; its blobs travel in one `ArrayBuffer`,
/// each bound as a view of it (SQLite copies what it binds). One decoded query text and one
/// `ArrayBuffer` per blob on every run were ~2 % of the isolate's time under the ingest load.
pub struct Statement {
    query: js_sys::JsString,
}

/// A value bound to a [`Statement`]'s `?`.
pub enum Param<'a> {
    /// Exact as a JavaScript number up to 2^53 - 1.
    Int(i64),
    Blob(Option<&'a [u8]>),
}

#[wasm_bindgen]
extern "C" {
    /// A Durable Object's `SqlStorage`, for [`Statement`]'s call.
    type SqlHandle;

    /// `SqlStorage.exec(query, ...bindings)` with the query as a JavaScript string.
    #[wasm_bindgen(structural, method, catch, variadic, js_name = exec)]
    fn exec(this: &SqlHandle, query: &js_sys::JsString, bindings: &js_sys::Array)
    -> Result<JsValue, JsValue>;
}

impl Statement {
    pub fn new(query: &str) -> Statement {
        Statement { query: query.into() }
    }

    pub fn run(&self, sql: &SqlStorage, params: &[Param]) -> worker::Result<()> {
        let blobs: Vec<&[u8]> = params
            .iter()
            .filter_map(|p| match p {
                Param::Blob(blob) => *blob,
                Param::Int(_) => None,
            })
            .collect();
        let buffer = js_sys::Uint8Array::from(blobs.concat().as_slice());
        let bindings = js_sys::Array::new_with_length(params.len() as u32);
        let mut at = 0;
        for (index, param) in params.iter().enumerate() {
            let value = match param {
                Param::Int(n) => JsValue::from_f64(*n as f64),
                Param::Blob(None) => JsValue::NULL,
                Param::Blob(Some(bytes)) => {
                    let end = at + bytes.len() as u32;
                    let view = buffer.subarray(at, end);
                    at = end;
                    view.into()
                }
            };
            bindings.set(index as u32, value);
        }
        let sql: &JsValue = sql.as_ref();
        sql.unchecked_ref::<SqlHandle>().exec(&self.query, &bindings)?;
        Ok(())
    }
}

/// Number of IdentityIndex shards per workspace. Changing it remaps identifiers: treat it as
/// part of the storage format.
pub const INDEX_SHARDS: u64 = 64;

/// Milliseconds since the epoch, by the Workers clock (read without building a `Date`).
pub fn now_ms() -> i64 {
    js_sys::Date::now() as i64
}

pub fn profile_stub(env: &Env, workspace: &str, profile_id: &str) -> Result<Stub, ApiError> {
    stub(env, "PROFILES", &format!("{workspace}/profile/{profile_id}"))
}

pub fn stats_stub(env: &Env, workspace: &str, source: &str, shard: u64) -> Result<Stub, ApiError> {
    stub(env, "STATS", &format!("{workspace}/stats/{source}/{shard}"))
}

pub fn account_stub(env: &Env, workspace: &str, account_id: &str) -> Result<Stub, ApiError> {
    stub(env, "ACCOUNTS", &format!("{workspace}/account/{account_id}"))
}

pub fn audience_stub(env: &Env, workspace: &str, audience: &str, shard: u64) -> Result<Stub, ApiError> {
    stub(env, "AUDIENCES", &format!("{workspace}/audience/{audience}/{shard}"))
}

pub fn webhook_stub(env: &Env, workspace: &str, webhook: &str, shard: u64) -> Result<Stub, ApiError> {
    stub(env, "WEBHOOKS", &format!("{workspace}/webhook/{webhook}/{shard}"))
}

pub fn index_shard(identity: &Identity) -> u64 {
    identity.hash() % INDEX_SHARDS
}

pub fn index_stub(env: &Env, workspace: &str, shard: u64) -> Result<Stub, ApiError> {
    stub(env, "IDENTITIES", &format!("{workspace}/index/{shard}"))
}

fn stub(env: &Env, binding: &'static str, name: &str) -> Result<Stub, ApiError> {
    let stub = namespace(env, binding).and_then(|namespace| namespace.get_by_name(name));
    Ok(stub.map_err(ApiError::internal)?.into_rpc())
}

thread_local! {
    /// Each binding's namespace, looked up once per isolate: `env` is the isolate's, the same
    /// for every request, and the lookup (a property read and a type check in JavaScript) was
    /// ~1 % of the isolate's time under the ingest load.
    static NAMESPACES: RefCell<Vec<(&'static str, ObjectNamespace)>> = const { RefCell::new(Vec::new()) };
}

fn namespace(env: &Env, binding: &'static str) -> worker::Result<ObjectNamespace> {
    NAMESPACES.with_borrow_mut(|namespaces| {
        if let Some((_, namespace)) = namespaces.iter().find(|(name, _)| *name == binding) {
            return Ok(namespace.clone());
        }
        let namespace = env.durable_object(binding)?;
        namespaces.push((binding, namespace.clone()));
        Ok(namespace)
    })
}

#[wasm_bindgen]
extern "C" {
    /// A Durable Object's stub, seen as the RPC method every object class exports.
    #[derive(Debug)]
    pub type Stub;

    #[wasm_bindgen(method, catch)]
    fn call(this: &Stub, action: &str, body: js_sys::Uint8Array) -> Result<js_sys::Promise, JsValue>;
}

/// What an object answers to a call: bytes (postcard, or JSON for the admin views), or `None`
/// when what was asked for does not exist.
pub type Answer = Option<Vec<u8>>;

/// A Durable Object class of the collector, exported to JavaScript by [`export_object!`].
pub(crate) trait Object: 'static {
    fn new(state: State, env: Env) -> Self;

    /// Serves the calls of [`post`]: `action` with its postcard `body`.
    async fn handle(&self, action: &str, body: &[u8]) -> worker::Result<Answer>;

    /// Housekeeping the object scheduled with an alarm; only some objects set one.
    async fn alarm(&self) -> worker::Result<()> {
        Ok(())
    }
}

/// Exports an [`Object`] as the JavaScript class of the same name (`collector/js/entry.mjs`
/// wraps it in a `DurableObject`): its constructor, `alarm()` and `call(action, body)`, the
/// method [`post`] invokes over RPC. The class holds the object behind an `Rc`, so that a call
/// still running after its first `await` keeps the object alive.
macro_rules! export_object {
    ($object:ident) => {
        /// The JavaScript class of this module's Durable Object (`internal::export_object!`).
        pub mod class {
            use std::rc::Rc;
            use wasm_bindgen::prelude::*;
            use $crate::internal::Object;

            #[wasm_bindgen(js_name = $object)]
            pub struct Class(Rc<super::$object>);

            #[wasm_bindgen(js_class = $object)]
            impl Class {
                #[wasm_bindgen(constructor)]
                pub fn new(state: worker::worker_sys::DurableObjectState, env: worker::Env) -> Class {
                    Class(Rc::new(<super::$object as Object>::new(worker::State::from(state), env)))
                }

                /// An answer, or a `Promise` of one when the call awaits something.
                pub fn call(&self, action: String, body: Vec<u8>) -> Result<JsValue, JsValue> {
                    let object = Rc::clone(&self.0);
                    $crate::promptly::run(async move {
                        $crate::internal::to_js(object.handle(&action, &body).await)
                    })
                }

                pub fn alarm(&self) -> Result<JsValue, JsValue> {
                    let object = Rc::clone(&self.0);
                    $crate::promptly::run(async move {
                        object.alarm().await.map(|()| JsValue::UNDEFINED).map_err(JsValue::from)
                    })
                }
            }
        }
    };
}
pub(crate) use export_object;

/// An answer as RPC carries it: a `Uint8Array`, `null`, or a thrown `Error`.
pub(crate) fn to_js(answer: worker::Result<Answer>) -> Result<JsValue, JsValue> {
    match answer {
        Ok(Some(bytes)) => Ok(js_sys::Uint8Array::from(&bytes[..]).into()),
        Ok(None) => Ok(JsValue::NULL),
        Err(error) => Err(js_sys::Error::new(&error.to_string()).into()),
    }
}

/// Sends a typed message to `action` on `stub` and decodes its typed answer (postcard both
/// ways). `Ok(None)` when the object has no such thing; a failure is a retryable internal error.
pub async fn call<B: Serialize, R: DeserializeOwned>(
    stub: &Stub,
    action: &str,
    body: &B,
) -> Result<Option<R>, ApiError> {
    let answer = post(stub, action, &postcard::to_allocvec(body).map_err(ApiError::internal)?).await?;
    answer.map(|bytes| postcard::from_bytes(&bytes).map_err(ApiError::internal)).transpose()
}

/// Like [`call`], for the admin views, which the object renders as JSON for the Worker to pass on.
pub async fn view<B: Serialize>(
    stub: &Stub,
    action: &str,
    body: &B,
) -> Result<Option<serde_json::Value>, ApiError> {
    let answer = post(stub, action, &postcard::to_allocvec(body).map_err(ApiError::internal)?).await?;
    answer.map(|bytes| serde_json::from_slice(&bytes).map_err(ApiError::internal)).transpose()
}

/// An object's typed answer to [`call`].
pub fn answer(value: &impl Serialize) -> worker::Result<Answer> {
    postcard::to_allocvec(value).map(Some).map_err(|e| worker::Error::RustError(format!("answer: {e}")))
}

/// An object's answer to [`view`].
pub fn json(value: &impl Serialize) -> worker::Result<Answer> {
    serde_json::to_vec(value).map(Some).map_err(|e| worker::Error::RustError(format!("answer: {e}")))
}

/// An object's answer to an action it does not have.
pub fn unknown_action(object: &str, action: &str) -> worker::Result<Answer> {
    Err(worker::Error::RustError(format!("no {object} action {action}")))
}

/// The profile an identity is linked to in the IdentityIndex, if any.
pub async fn owner(env: &Env, workspace: &str, identity: Identity) -> Result<Option<String>, ApiError> {
    let stub = index_stub(env, workspace, index_shard(&identity))?;
    let resolved: Option<Resolved> = call(&stub, "resolve", &Resolve { identity, create_as: None }).await?;
    Ok(resolved.map(|r| r.profile_id))
}

/// The profile of a user id, linking it to a new `u:<userId>` profile on first sight.
pub async fn user_profile(env: &Env, workspace: &str, user_id: &str) -> Result<String, ApiError> {
    let key = RoutingKey::User(user_id.to_owned());
    let identity = Identity { kind: IdKind::UserId, value: user_id.to_owned() };
    let stub = index_stub(env, workspace, index_shard(&identity))?;
    let resolve = Resolve { identity, create_as: Some(key.profile_id()) };
    let resolved: Option<Resolved> = call(&stub, "resolve", &resolve).await?;
    resolved.map(|r| r.profile_id).ok_or_else(|| ApiError::internal("resolve answered 404"))
}

/// The index entry of an account's domain: the group account that declared it (`domain` or
/// `website` trait). Kept in the IdentityIndex under a kind no API accepts.
pub fn domain_identity(domain: &str) -> Identity {
    Identity { kind: IdKind::Custom(ACCOUNT_DOMAIN.to_owned()), value: domain.to_owned() }
}

/// Not a valid custom id type name (`-` is refused there), so it cannot collide with one.
const ACCOUNT_DOMAIN: &str = "account-domain";

/// The account `domain` belongs to: the group's that declared it, else the one inferred from
/// it (`domain:{domain}`, as a business email makes it).
pub async fn account_of_domain(env: &Env, workspace: &str, domain: &str) -> Result<String, ApiError> {
    let declared = owner(env, workspace, domain_identity(domain)).await?;
    Ok(declared.unwrap_or_else(|| format!("domain:{domain}")))
}

/// Identities grouped by their IdentityIndex shard.
pub fn by_shard(identities: impl IntoIterator<Item = Identity>) -> BTreeMap<u64, Vec<Identity>> {
    let mut shards: BTreeMap<u64, Vec<Identity>> = BTreeMap::new();
    for identity in identities {
        shards.entry(index_shard(&identity)).or_default().push(identity);
    }
    shards
}

/// Calls `action` on `stub` with `bytes`; the answer's bytes, or `None` when the object has no
/// such thing.
pub async fn post(stub: &Stub, action: &str, bytes: &[u8]) -> Result<Answer, ApiError> {
    let failed = |e: JsValue| {
        let message =
            e.dyn_ref::<js_sys::Error>().map_or_else(|| format!("{e:?}"), |e| String::from(e.message()));
        ApiError::internal(format!("{action}: {message}"))
    };
    let answer = JsFuture::from(stub.call(action, js_sys::Uint8Array::from(bytes)).map_err(failed)?)
        .await
        .map_err(failed)?;
    Ok((!answer.is_null()).then(|| js_sys::Uint8Array::new(&answer).to_vec()))
}

/// Decodes the postcard body of a call.
pub fn decode<T: DeserializeOwned>(body: &[u8]) -> worker::Result<T> {
    postcard::from_bytes(body).map_err(|e| worker::Error::RustError(format!("internal request: {e}")))
}

/// `apply`: one person's events. The body is this header (postcard) followed by a beacon,
/// either the SDK's own (forwarded untouched when it holds one person) or one the Worker made
/// from its share of a larger batch.
#[derive(Serialize, Deserialize)]
pub struct Apply {
    pub workspace: String,
    pub profile_id: String,
    pub received_at: i64,
    pub geo: Geo,
    /// The batch index of each event of the beacon; empty when they are the same.
    pub indices: Vec<u32>,
}

/// The answer to `apply`, and (summed over objects, as JSON) to the sender.
#[derive(Default, Serialize, Deserialize)]
pub struct Applied {
    pub accepted: u32,
    pub duplicates: u32,
    pub bots: u32,
    pub rejected: Vec<RejectedEvent>,
    /// A beacon that could not be decoded at all (only possible for a forwarded one).
    pub invalid: Option<RejectedEvent>,
    /// Nothing was applied: the person is over `profile_object::PROFILE_LIMIT`; retry after
    /// this many seconds.
    pub throttled: Option<u64>,
}

#[derive(Serialize, Deserialize)]
pub struct RejectedEvent {
    pub index: usize,
    pub code: String,
    pub message: String,
    pub path: String,
}

impl From<&Rejected> for RejectedEvent {
    fn from(rejected: &Rejected) -> RejectedEvent {
        RejectedEvent {
            index: rejected.index,
            code: rejected.error.kind.code().to_owned(),
            message: rejected.error.message(),
            path: rejected.error.path.clone(),
        }
    }
}

/// Sends `apply` with `beacon` after its header.
pub async fn apply(stub: &Stub, header: &Apply, beacon: &[u8]) -> Result<Applied, ApiError> {
    let mut body = postcard::to_allocvec(header).map_err(ApiError::internal)?;
    body.extend_from_slice(beacon);
    let answer =
        post(stub, "apply", &body).await?.ok_or_else(|| ApiError::internal("apply answered none"))?;
    postcard::from_bytes(&answer).map_err(ApiError::internal)
}

/// `erase`: what the object held before it deleted everything.
#[derive(Serialize, Deserialize)]
pub struct Erased {
    pub profile_id: String,
    pub identities: Vec<Identity>,
    /// Profiles merged into this one: their objects hold forwarding records to erase too.
    pub merged: Vec<String>,
    pub accounts: Vec<String>,
    /// Other profiles that record a refused merge with this one (or one merged into it).
    pub refused_with: Vec<String>,
    pub events_removed: i64,
    pub message_ids_forgotten: i64,
}

impl Erased {
    /// The ids the person's data may be filed under: the profile's and those merged into it.
    pub fn member_ids(&self) -> Vec<String> {
        std::iter::once(&self.profile_id).chain(&self.merged).cloned().collect()
    }
}

/// `events`: a page of the timeline, newest first, after `cursor` (see [`Position`]).
#[derive(Serialize, Deserialize)]
pub struct EventsPage {
    pub cursor: Option<Position>,
    pub limit: u32,
}

/// Where an event sits in a timeline: its time, its batch row, its index in the batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Position {
    pub at: i64,
    pub seq: i64,
    pub index: i64,
}

impl Position {
    /// The API's cursor text: `at.seq.index`.
    pub fn parse(text: &str) -> Option<Position> {
        let mut parts = text.split('.').map(|p| p.parse::<i64>().ok());
        match (parts.next(), parts.next(), parts.next(), parts.next()) {
            (Some(Some(at)), Some(Some(seq)), Some(Some(index)), None) => Some(Position { at, seq, index }),
            _ => None,
        }
    }
}

impl std::fmt::Display for Position {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}.{}", self.at, self.seq, self.index)
    }
}

/// One stored batch row, as a merge moves it to the surviving profile.
#[derive(Clone, Serialize, Deserialize)]
pub struct BatchRow {
    pub seq: i64,
    pub newest: i64,
    pub count: i64,
    /// The message ids the row applied, as `core::dedupe::encode` stores them.
    pub ids: Vec<u8>,
    /// The beacon as received, while the row is in the timeline.
    pub beacon: Option<Vec<u8>>,
    pub receipt: Vec<u8>,
}

/// `merge_in` on the surviving profile. The first message of a merge carries the merged
/// profile's state, whose rows are already counted in it; later ones carry only rows applied
/// while the merge was under way, whose events the survivor applies itself.
#[derive(Serialize, Deserialize)]
pub struct MergeIn {
    pub workspace: String,
    pub from: String,
    /// The survivor's profile id (its object may hold nothing yet after an erasure).
    pub into: String,
    pub reason: MergeReason,
    pub profile: Option<Profile>,
    pub rows: Vec<BatchRow>,
    /// The accounts the merged-away profile has reached: the survivor's erasure leaves them.
    pub accounts: Vec<String>,
}

#[derive(Serialize, Deserialize)]
pub enum MergeAnswer {
    Merged,
    Refused(Refusal),
    /// The survivor was itself merged away: merge into this profile instead.
    Forwarded(String),
    /// The survivor is merging into a third profile; try again later.
    Busy,
}

/// `resolve` on an index shard: the profile of `identity`, creating the link to
/// `create_as` if there is none yet.
#[derive(Serialize, Deserialize)]
pub struct Resolve {
    pub identity: Identity,
    pub create_as: Option<String>,
}

#[derive(Serialize, Deserialize)]
pub struct Resolved {
    pub profile_id: String,
}

/// `link` on an index shard: these identities belong to `profile_id`, unless they
/// already belong to another profile (reported back as conflicts). Links held by profiles in
/// `absorbed` (merged into `profile_id`) move to it.
#[derive(Serialize, Deserialize)]
pub struct Link {
    pub identities: Vec<Identity>,
    pub profile_id: String,
    pub absorbed: Vec<String>,
}

#[derive(Serialize, Deserialize)]
pub struct Linked {
    pub conflicts: Vec<(Identity, String)>,
}

/// `unlink` on an index shard: forget these identities if they point at `profile_id` or at
/// one of `absorbed`.
pub type Unlink = Link;

#[derive(Serialize, Deserialize)]
pub struct Unlinked {
    pub removed: u32,
}

/// `update` on an AccountObject: a member's snapshot (none for an erased member), and the
/// profiles merged into it, which stop being members.
#[derive(Serialize, Deserialize)]
pub struct AccountMessage {
    pub workspace: String,
    pub account_id: String,
    pub absorbed: Vec<String>,
    pub update: Option<AccountUpdate>,
}

/// `forget_refusals` on a ProfileObject: the refused merges with an erased person's profiles
/// (by the ids of their profile and of the profiles merged into it) go from its history.
/// Answered with how many entries went.
#[derive(Serialize, Deserialize)]
pub struct ForgetRefusals {
    pub profile_ids: Vec<String>,
}

/// `remove` on an AccountObject: an erased member, by the ids of its profile and of the
/// profiles merged into it.
#[derive(Serialize, Deserialize)]
pub struct RemoveMember {
    pub profile_ids: Vec<String>,
}
