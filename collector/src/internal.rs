//! How the Worker and the Durable Objects talk: object names, and typed requests sent as
//! postcard bodies in a `POST https://internal/<action>` to an object's stub.

use portrait_core::Rejected;
use portrait_core::enrich::Geo;
use portrait_core::profile::Identity;
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use std::cell::Cell;
use std::collections::BTreeMap;

use worker::{Env, Method, Request, RequestInit, Response, SqlStorage, Stub};

use crate::http::ApiError;

/// The tables of a Durable Object class, created on its first write (reads never create
/// them, so looking up an unknown object leaves no trace).
pub struct Schema {
    statements: &'static [&'static str],
    ready: Cell<bool>,
}

impl Schema {
    pub const fn new(statements: &'static [&'static str]) -> Schema {
        Schema { statements, ready: Cell::new(false) }
    }

    pub fn ensure(&self, sql: &SqlStorage) -> worker::Result<()> {
        if !self.ready.get() {
            for statement in self.statements {
                sql.exec(statement, None)?;
            }
            self.ready.set(true);
        }
        Ok(())
    }

    /// Whether `table` exists; asks storage only until this object has created its tables.
    pub fn exists(&self, sql: &SqlStorage, table: &str) -> worker::Result<bool> {
        if self.ready.get() {
            return Ok(true);
        }
        let query = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?";
        Ok(sql.exec(query, vec![table.into()])?.raw().next().is_some())
    }

    /// After the object's storage was deleted.
    pub fn forget(&self) {
        self.ready.set(false);
    }
}

/// Number of IdentityIndex shards per workspace. Changing it remaps identifiers: treat it as
/// part of the storage format.
pub const INDEX_SHARDS: u64 = 64;

pub fn profile_stub(env: &Env, workspace: &str, profile_id: &str) -> Result<Stub, ApiError> {
    stub(env, "PROFILES", &format!("{workspace}/profile/{profile_id}"))
}

pub fn stats_stub(env: &Env, workspace: &str, source: &str, shard: u64) -> Result<Stub, ApiError> {
    stub(env, "STATS", &format!("{workspace}/stats/{source}/{shard}"))
}

pub fn index_shard(identity: &Identity) -> u64 {
    identity.hash() % INDEX_SHARDS
}

pub fn index_stub(env: &Env, workspace: &str, shard: u64) -> Result<Stub, ApiError> {
    stub(env, "IDENTITIES", &format!("{workspace}/index/{shard}"))
}

fn stub(env: &Env, binding: &str, name: &str) -> Result<Stub, ApiError> {
    env.durable_object(binding).and_then(|namespace| namespace.get_by_name(name)).map_err(ApiError::internal)
}

/// Sends a typed message to `action` on `stub` and decodes its typed answer (postcard both
/// ways). A 404 from the object is `Ok(None)`; any other failure is a retryable internal error.
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
pub fn answer(value: &impl Serialize) -> worker::Result<Response> {
    let bytes = postcard::to_allocvec(value).map_err(|e| worker::Error::RustError(format!("answer: {e}")))?;
    Response::from_bytes(bytes)
}

/// Identities grouped by their IdentityIndex shard.
pub fn by_shard(identities: impl IntoIterator<Item = Identity>) -> BTreeMap<u64, Vec<Identity>> {
    let mut shards: BTreeMap<u64, Vec<Identity>> = BTreeMap::new();
    for identity in identities {
        shards.entry(index_shard(&identity)).or_default().push(identity);
    }
    shards
}

/// Sends a request body to `action`; the answer's bytes, or `None` for a 404.
async fn post(stub: &Stub, action: &str, bytes: &[u8]) -> Result<Option<Vec<u8>>, ApiError> {
    let mut init = RequestInit::new();
    init.with_method(Method::Post).with_body(Some(js_sys::Uint8Array::from(bytes).into()));
    let request =
        Request::new_with_init(&format!("https://internal/{action}"), &init).map_err(ApiError::internal)?;
    let mut response = stub.fetch_with_request(request).await.map_err(ApiError::internal)?;
    match response.status_code() {
        200 => response.bytes().await.map(Some).map_err(ApiError::internal),
        404 => Ok(None),
        status => {
            let text = response.text().await.unwrap_or_default();
            Err(ApiError::internal(format!("{action} answered {status}: {text}")))
        }
    }
}

/// Decodes the postcard body of an internal request.
pub async fn body<T: DeserializeOwned>(req: &mut Request) -> worker::Result<T> {
    let bytes = req.bytes().await?;
    postcard::from_bytes(&bytes).map_err(|e| worker::Error::RustError(format!("internal request: {e}")))
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
    let answer = post(stub, "apply", &body).await?.ok_or_else(|| ApiError::internal("apply answered 404"))?;
    postcard::from_bytes(&answer).map_err(ApiError::internal)
}

/// `erase`: what the object held before it deleted everything.
#[derive(Serialize, Deserialize)]
pub struct Erased {
    pub profile_id: String,
    pub identities: Vec<Identity>,
    pub events_removed: i64,
    pub message_ids_forgotten: i64,
}

/// `events`: a page of the timeline, newest first, before `cursor` (a sequence number).
#[derive(Serialize, Deserialize)]
pub struct EventsPage {
    pub cursor: Option<i64>,
    pub limit: u32,
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
/// already belong to another profile (reported back as conflicts).
#[derive(Serialize, Deserialize)]
pub struct Link {
    pub identities: Vec<Identity>,
    pub profile_id: String,
}

#[derive(Serialize, Deserialize)]
pub struct Linked {
    pub conflicts: Vec<(Identity, String)>,
}

/// `unlink` on an index shard: forget these identities if they point at `profile_id`.
pub type Unlink = Link;

#[derive(Serialize, Deserialize)]
pub struct Unlinked {
    pub removed: u32,
}
