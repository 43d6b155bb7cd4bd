//! The profile API, behind a workspace's admin key (`Authorization: Bearer <key>`):
//!
//! - `GET    /v1/profiles/{idType}/{id}`: the profile with its tags;
//! - `GET    /v1/profiles/{idType}/{id}/events?cursor=&limit=`: the timeline, newest first;
//! - `GET    /v1/profiles/{idType}/{id}/export`: everything held on the person;
//! - `GET    /v1/profiles/{idType}/{id}/accounts`: the person's accounts;
//! - `DELETE /v1/profiles/{idType}/{id}`: erasure of the person, the profiles merged into it
//!   (their forwarding records), their index links, account memberships and webhook
//!   deliveries; with a receipt.
//! - `GET    /v1/accounts/{accountId}` and `/v1/accounts/domain/{domain}`: an account.
//! - `GET    /v1/audiences`: the workspace's audiences with their sizes;
//!   `GET /v1/audiences/{name}/members?cursor=&limit=`: their members, paginated.
//! - `GET    /v1/webhooks/{name}/deliveries?limit=`: a webhook's recent deliveries.
//!
//! - `GET    /v1/sources/{name}/stats`: what a source sent that was not profiled (bots, and
//!   refused events by error code), and the events its SDKs had to drop from a full queue.
//!
//! `idType` is `anonymous_id`, `user_id`, `email`, a custom id type of the workspace, or
//! `profile_id`. Only the admin key's own workspace is searched.

use std::collections::BTreeMap;

use futures_util::future::join_all;
use portrait_core::Timestamp;
use portrait_core::account;
use portrait_core::config::Config;
use portrait_core::identity::{Identity, IdentityRules};
use portrait_core::limits::MAX_STRING_BYTES;
use serde::Serialize;
use serde_json::{Value as Json, json};
use worker::{Env, Method, Request};

use crate::audience_object::{self, ListMembers, Members};
use crate::http::{ApiError, ApiResult, Target, json_response};
use crate::internal::{self, Erased, EventsPage, ForgetRefusals, Position, RemoveMember, Unlink, Unlinked};
use crate::settings;
use crate::source_stats::{self, Counts};
use crate::webhook_object::{self, Log};

pub async fn profiles(req: Request, method: Method, rest: &[&str], env: &Env, config: &Config) -> ApiResult {
    let authorization = req.headers().get("Authorization").ok().flatten();
    let workspace = settings::admin_workspace(config, env, authorization.as_deref())?;
    let rules = &workspace.identity;
    let workspace = workspace.id.as_str();
    let (id_type, id, action) = match rest {
        [id_type, id] => (*id_type, profile_id_segment(id)?, None),
        [id_type, id, action @ ("events" | "export" | "accounts")] => {
            (*id_type, profile_id_segment(id)?, Some(*action))
        }
        _ => {
            return Err(ApiError::new(
                404,
                "not_found",
                "expected /v1/profiles/{idType}/{id}[/events|/export|/accounts]",
            ));
        }
    };
    let (profile_id, asked) = resolve(env, workspace, rules, id_type, &id).await?;
    let stub = internal::profile_stub(env, workspace, &profile_id)?;
    let not_found = || ApiError::new(404, "profile_not_found", format!("no profile for {id_type} {id}"));
    // The router passes GET, and DELETE of the profile itself.
    match action {
        None if method == Method::Delete => erase(env, workspace, &stub, &profile_id, asked, not_found).await,
        None => {
            let profile: Json = internal::view(&stub, "state", &()).await?.ok_or_else(not_found)?;
            json_response(200, &profile)
        }
        Some("events") => {
            let target = Target::of(&req);
            let cursor = target
                .param("cursor")
                .filter(|c| !c.is_empty())
                .map(|c| Position::parse(&c).ok_or_else(bad_cursor))
                .transpose()?;
            let page = EventsPage { cursor, limit: target.limit(50)? };
            let events: Json = internal::view(&stub, "events", &page).await?.ok_or_else(not_found)?;
            json_response(200, &events)
        }
        Some("export") => {
            let export: Json = internal::view(&stub, "export", &()).await?.ok_or_else(not_found)?;
            json_response(200, &export)
        }
        Some(_accounts) => {
            let answer: Json = internal::view(&stub, "accounts", &()).await?.ok_or_else(not_found)?;
            let list = &answer["accounts"];
            let ids: Vec<String> = list
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|a| a["accountId"].as_str().map(str::to_owned))
                .collect();
            let views = join_all(ids.iter().map(|id| account_view(env, workspace, id))).await;
            let mut accounts = Vec::new();
            for (entry, view) in list.as_array().into_iter().flatten().zip(views) {
                // `null`: an account linked before its first update reached it (the profile
                // settles it after it is stored, and retries).
                accounts.push(json!({ "link": entry["link"], "account": view? }));
            }
            // The profile's own id: a merged-away id's answer is its survivor's.
            json_response(200, &json!({ "profileId": answer["profileId"], "accounts": accounts }))
        }
    }
}

/// Erases the person behind `stub` (`profile_id`, found by the identity `asked`). What points at the
/// profile goes before it (account links, the index), the forwarding records of the profiles
/// merged into it after it: a step that fails leaves the profile findable by its
/// `profile_id`, and the 503 names the ids to ask again by (`retry`) — the index links may be
/// gone already, so the id asked for may not find it. A merged-away profile's id answers for
/// its survivor, whose plan this is (and a forwarding record whose survivor is gone, for itself).
async fn erase(
    env: &Env,
    workspace: &str,
    stub: &internal::Stub,
    profile_id: &str,
    asked: Option<Identity>,
    not_found: impl Fn() -> ApiError + Copy,
) -> ApiResult {
    let Some(plan) = internal::call::<_, Erased>(stub, "erasure", &()).await? else {
        // The index links the id to a profile that holds nothing (a user whose only events
        // were a bot's, or refused): the link alone is erased.
        let Some(identity) = asked else { return Err(not_found()) };
        let removed = unlink(env, workspace, profile_id, Vec::new(), vec![identity.clone()]).await?;
        if removed == 0 {
            return Err(not_found());
        }
        let receipt = Receipt {
            profile_id: profile_id.to_owned(),
            identities: vec![identity_json(&identity)],
            index_entries_removed: removed,
            ..Receipt::default()
        };
        return json_response(200, &receipt);
    };
    let survivor_id = plan.profile_id.as_str();
    let stopped = |error: ApiError, left: &[&str]| stopped_erasure(error, survivor_id, left);
    let identities: Vec<Json> = plan.identities.iter().map(identity_json).collect();
    let survivor = async {
        let members = plan.member_ids();
        let removals = plan.accounts.iter().map(|account_id| {
            let remove = RemoveMember { profile_ids: members.clone() };
            async move {
                let stub = internal::account_stub(env, workspace, account_id)?;
                internal::call::<_, ()>(&stub, "remove", &remove).await
            }
        });
        for outcome in join_all(removals).await {
            outcome?;
        }
        // Another profile's record of a refused merge names the person's profile and user id.
        let forgets = plan.refused_with.iter().map(|other| {
            let forget = ForgetRefusals { profile_ids: members.clone() };
            async move {
                let stub = internal::profile_stub(env, workspace, other)?;
                internal::call::<_, u32>(&stub, "forget_refusals", &forget).await
            }
        });
        let mut refusals_forgotten = 0;
        for outcome in join_all(forgets).await {
            refusals_forgotten += outcome?.unwrap_or(0);
        }
        let deliveries = forget_deliveries(env, workspace, &plan).await?;
        let index_entries_removed =
            unlink(env, workspace, survivor_id, plan.merged.clone(), plan.identities.clone()).await?;
        let stub = internal::profile_stub(env, workspace, survivor_id)?;
        let erased: Erased = internal::call(&stub, "erase", &()).await?.ok_or_else(not_found)?;
        Ok::<_, ApiError>((deliveries, index_entries_removed, refusals_forgotten, erased))
    };
    let (deliveries, index_entries_removed, refusals_forgotten, erased) =
        survivor.await.map_err(|error| stopped(error, &[survivor_id]))?;
    // Only now: a link of a chain of forwards (one merged into a profile that merged on) that
    // went first would leave the links before it pointing at nothing. `merged` is transitive;
    // the id asked for is among it when it was merged away.
    let requested = (survivor_id != profile_id).then_some(profile_id);
    let forwarding: Vec<&str> = plan
        .merged
        .iter()
        .map(String::as_str)
        .chain(requested.filter(|id| !plan.merged.iter().any(|m| m == id)))
        .collect();
    let forwards = forwarding.iter().map(|id| async move {
        let stub = internal::profile_stub(env, workspace, id)?;
        internal::call::<_, Erased>(&stub, "erase", &()).await
    });
    let mut forwarding_records_removed = 0;
    let mut failed = None;
    let mut left = Vec::new();
    for (id, outcome) in forwarding.iter().zip(join_all(forwards).await) {
        match outcome {
            Ok(erased) => forwarding_records_removed += u32::from(erased.is_some()),
            Err(error) => {
                failed.get_or_insert(error);
                left.push(*id);
            }
        }
    }
    if let Some(error) = failed {
        return Err(stopped(error, &left));
    }
    let receipt = Receipt {
        profile_id: erased.profile_id,
        identities,
        events_removed: erased.events_removed,
        message_ids_forgotten: erased.message_ids_forgotten,
        index_entries_removed,
        merged_profiles_removed: forwarding_records_removed,
        webhook_deliveries_removed: deliveries.removed,
        webhook_deliveries_scrubbed: deliveries.scrubbed,
        accounts_left: plan.accounts,
        refusals_forgotten,
    };
    json_response(200, &receipt)
}

/// What an erasure removed.
#[derive(Default, Serialize)]
#[serde(rename_all = "camelCase")]
struct Receipt {
    profile_id: String,
    identities: Vec<Json>,
    events_removed: i64,
    message_ids_forgotten: i64,
    index_entries_removed: u32,
    merged_profiles_removed: u32,
    webhook_deliveries_removed: u32,
    webhook_deliveries_scrubbed: u32,
    accounts_left: Vec<String>,
    /// Entries of other profiles' identity histories that recorded a merge refused with
    /// the person.
    refusals_forgotten: u32,
}

fn identity_json(identity: &Identity) -> Json {
    json!({ "type": identity.kind.as_str(), "id": identity.value })
}

/// Removes the webhook deliveries about the person (the profile and those merged into it)
/// from every webhook of the workspace, and takes them out of the member lists that the
/// deliveries about their `accounts` carry: pending ones would send their data after the
/// erasure, and the log keeps bodies. Returns what `forget` did, added up.
async fn forget_deliveries(
    env: &Env,
    workspace: &str,
    plan: &Erased,
) -> Result<webhook_object::Forgotten, ApiError> {
    let webhooks: Vec<String> = settings::workspace_settings(env, workspace, |w| {
        w.map(|w| w.webhooks.iter().map(|h| h.name.clone()).collect())
    })?
    .unwrap_or_default();
    let members = plan.member_ids();
    // Each shard that may hold a delivery about them: asked about every member (deleting
    // by key finds only its own) and about the accounts it holds.
    let mut shards: BTreeMap<u64, Vec<String>> = BTreeMap::new();
    for member in &members {
        shards.entry(webhook_object::shard_of(member)).or_default();
    }
    for account in &plan.accounts {
        let shard = webhook_object::shard_of(&crate::account_object::member_id(account));
        shards.entry(shard).or_default().push(account.clone());
    }
    let calls = webhooks.iter().flat_map(|name| {
        let members = &members;
        shards.iter().map(move |(shard, accounts)| async move {
            let stub = internal::webhook_stub(env, workspace, name, *shard)?;
            let forget = webhook_object::Forget { members: members.clone(), accounts: accounts.clone() };
            internal::call::<_, webhook_object::Forgotten>(&stub, "forget", &forget).await
        })
    });
    let mut total = webhook_object::Forgotten::default();
    for outcome in join_all(calls).await {
        let forgotten = outcome?.unwrap_or_default();
        total.removed += forgotten.removed;
        total.scrubbed += forgotten.scrubbed;
    }
    Ok(total)
}

/// An erasure's failure part way (a 503, to retry): says which profile ids to ask again by.
/// Another answer (a 404: a concurrent erasure went first) is passed on as it is.
fn stopped_erasure(mut error: ApiError, profile_id: &str, left: &[&str]) -> ApiError {
    if error.status != 503 {
        return error;
    }
    let retry: Vec<String> =
        left.iter().map(|id| format!("/v1/profiles/profile_id/{}", encode(id))).collect();
    error.message = format!(
        "the erasure of profile {profile_id} stopped part way ({}): ask again by each path of `retry` (the id asked for may be unlinked already)",
        error.message
    );
    error.details = Some(Box::new(json!({ "profileId": profile_id, "retry": retry })));
    error
}

pub async fn source_stats(req: &Request, source: &str, env: &Env, config: &Config) -> ApiResult {
    let authorization = req.headers().get("Authorization").ok().flatten();
    let workspace = settings::admin_workspace(config, env, authorization.as_deref())?;
    if !workspace.sources.iter().any(|s| s.name == source) {
        return Err(ApiError::new(
            404,
            "unknown_source",
            format!("no source named {source} in this workspace"),
        ));
    }
    let workspace = workspace.id.as_str();
    let reads = (0..source_stats::SHARDS).map(|shard| async move {
        let stub = internal::stats_stub(env, workspace, source, shard)?;
        internal::call::<_, Counts>(&stub, "read", &()).await
    });
    let mut totals: BTreeMap<String, i64> = BTreeMap::new();
    for read in join_all(reads).await {
        for (name, n) in read?.unwrap_or_default().counts {
            *totals.entry(name).or_default() += n;
        }
    }
    let total = |name: &str| totals.get(name).copied().unwrap_or(0);
    let rejected: BTreeMap<&str, i64> = totals
        .iter()
        .filter_map(|(name, n)| Some((name.strip_prefix(source_stats::REJECTED_PREFIX)?, *n)))
        .collect();
    json_response(
        200,
        &json!({
            "source": source,
            "botEvents": total("bot_events"),
            "sdkDroppedEvents": total("sdk_dropped_events"),
            "rejectedEvents": rejected,
        }),
    )
}

/// `GET /v1/accounts/{accountId}` and `GET /v1/accounts/domain/{domain}`.
pub async fn accounts(req: &Request, rest: &[&str], env: &Env, config: &Config) -> ApiResult {
    let authorization = req.headers().get("Authorization").ok().flatten();
    let workspace = settings::admin_workspace(config, env, authorization.as_deref())?.id.as_str();
    let candidates = match rest {
        ["domain", domain] => {
            let domains = account::domains_asked(&decode(domain, "domain")?).ok_or_else(|| {
                ApiError::new(400, "bad_id", "expected a host name such as `acme.com`").at("domain")
            })?;
            let mut candidates = Vec::new();
            for domain in &domains {
                candidates.push(internal::account_of_domain(env, workspace, domain).await?);
            }
            candidates
        }
        [id] => vec![decode(id, "accountId")?],
        _ => {
            return Err(ApiError::new(
                404,
                "not_found",
                "expected /v1/accounts/{accountId} or /v1/accounts/domain/{domain}",
            ));
        }
    };
    for account_id in &candidates {
        if let Some(account) = account_view(env, workspace, account_id).await? {
            return json_response(200, &account);
        }
    }
    Err(ApiError::new(404, "account_not_found", format!("no account {}", candidates[0])))
}

/// An account as stored; `None` before its first update.
async fn account_view(env: &Env, workspace: &str, account_id: &str) -> Result<Option<Json>, ApiError> {
    let stub = internal::account_stub(env, workspace, account_id)?;
    internal::view(&stub, "view", &()).await
}

/// The profile id behind `{idType}/{id}`, without creating anything, and the identity it
/// was found by (none for a `profile_id`).
async fn resolve(
    env: &Env,
    workspace: &str,
    rules: &IdentityRules,
    id_type: &str,
    id: &str,
) -> Result<(String, Option<Identity>), ApiError> {
    if id_type == "profile_id" {
        return Ok((id.to_owned(), None));
    }
    let kind = rules.kind(id_type).ok_or_else(|| {
        ApiError::new(
            400,
            "bad_id_type",
            format!("unknown id type `{id_type}` (anonymous_id, user_id, email, profile_id, or a custom type of this workspace)"),
        )
        .at("idType")
    })?;
    let not_found = || ApiError::new(404, "profile_not_found", format!("no profile for {id_type} {id}"));
    let identity = rules.identity(kind, id).ok_or_else(not_found)?;
    let owner = internal::owner(env, workspace, identity.clone()).await?.ok_or_else(not_found)?;
    Ok((owner, Some(identity)))
}

/// Removes the erased profile's identities from the index; returns how many links went.
async fn unlink(
    env: &Env,
    workspace: &str,
    profile_id: &str,
    absorbed: Vec<String>,
    identities: Vec<Identity>,
) -> Result<u32, ApiError> {
    let calls = internal::by_shard(identities).into_iter().map(|(shard, identities)| {
        let absorbed = absorbed.clone();
        async move {
            let stub = internal::index_stub(env, workspace, shard)?;
            let unlink = Unlink { identities, profile_id: profile_id.to_owned(), absorbed };
            internal::call::<_, Unlinked>(&stub, "unlink", &unlink).await
        }
    });
    let mut removed = 0;
    for outcome in join_all(calls).await {
        removed += outcome?.map_or(0, |u| u.removed);
    }
    Ok(removed)
}

/// Percent-encodes an id as a path segment (user ids, so profile ids, may hold anything).
fn encode(id: &str) -> String {
    percent_encoding::utf8_percent_encode(id, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// Percent-decodes a path segment (ids may hold `@`, `+`, spaces, anything); `field` names it
/// in the error.
fn decode(segment: &str, field: &str) -> Result<String, ApiError> {
    percent_encoding::percent_decode_str(segment).decode_utf8().map(|s| s.into_owned()).map_err(|_| {
        ApiError::new(400, "bad_id", format!("the {field} is not valid UTF-8 once percent-decoded")).at(field)
    })
}

/// A profile route's `{id}`: decoded, and no longer than any id a profile may have (an email
/// or a custom id from a trait, a text value).
fn profile_id_segment(segment: &str) -> Result<String, ApiError> {
    let id = decode(segment, "id")?;
    if id.is_empty() || id.len() > MAX_STRING_BYTES {
        let message =
            format!("the id must be 1–{MAX_STRING_BYTES} bytes once percent-decoded, not {}", id.len());
        return Err(ApiError::new(400, "bad_id", message).at("id"));
    }
    Ok(id)
}

fn bad_cursor() -> ApiError {
    ApiError::new(400, "bad_parameter", "`cursor` must be a `nextCursor` of this API").at("cursor")
}

/// `GET /v1/audiences` and `GET /v1/audiences/{name}/members?cursor=&limit=`.
pub async fn audiences(req: &Request, rest: &[&str], env: &Env, config: &Config) -> ApiResult {
    let authorization = req.headers().get("Authorization").ok().flatten();
    let workspace = settings::admin_workspace(config, env, authorization.as_deref())?;
    let id = workspace.id.as_str();
    match rest {
        [] => {
            let sizes = workspace.audiences.iter().map(|a| async move {
                let page = audience_page(env, id, &a.name, None, 0).await?;
                Ok::<_, ApiError>(json!({
                    "name": a.name, "of": a.of.as_str(), "rule": a.rule, "size": page.0,
                }))
            });
            let mut list = Vec::new();
            for size in join_all(sizes).await {
                list.push(size?);
            }
            json_response(200, &json!({ "audiences": list }))
        }
        [name, "members"] => {
            if !workspace.audiences.iter().any(|a| a.name == *name) {
                return Err(ApiError::new(404, "unknown_audience", format!("no audience named {name}")));
            }
            let target = Target::of(req);
            let limit = target.limit(50)?;
            let cursor = target.param("cursor").filter(|c| !c.is_empty());
            let (size, members, next) = audience_page(env, id, name, cursor.as_deref(), limit).await?;
            json_response(
                200,
                &json!({ "audience": name, "size": size, "members": members, "nextCursor": next }),
            )
        }
        _ => Err(ApiError::new(404, "not_found", "expected /v1/audiences or /v1/audiences/{name}/members")),
    }
}

/// The size of an audience and up to `limit` members after `cursor` (`<shard>:<last member>`),
/// walking the shards in order; the cursor of the next page.
async fn audience_page(
    env: &Env,
    workspace: &str,
    audience: &str,
    cursor: Option<&str>,
    limit: u32,
) -> Result<(u64, Vec<Json>, Option<String>), ApiError> {
    let (first_shard, mut after) = match cursor {
        Some(cursor) => {
            let (shard, member) = cursor.split_once(':').ok_or_else(bad_cursor)?;
            let shard =
                shard.parse::<u64>().ok().filter(|&s| s < audience_object::SHARDS).ok_or_else(bad_cursor)?;
            (shard, Some(member.to_owned()))
        }
        None => (0, None),
    };
    let mut size = 0;
    let mut members = Vec::new();
    let mut next = None;
    for shard in 0..audience_object::SHARDS {
        let stub = internal::audience_stub(env, workspace, audience, shard)?;
        let wanted = if shard < first_shard { 0 } else { limit.saturating_sub(members.len() as u32) };
        let list =
            ListMembers { after: if shard == first_shard { after.take() } else { None }, limit: wanted };
        let page: Members = internal::call(&stub, "list", &list).await?.unwrap_or_default();
        size += page.count;
        for (member, entered) in &page.members {
            members.push(json!({ "id": member, "enteredAt": Timestamp(*entered).to_string() }));
            if members.len() as u32 == limit {
                next = Some(format!("{shard}:{member}"));
            }
        }
    }
    Ok((size, members, next.filter(|_| limit > 0)))
}

/// `GET /v1/webhooks/{name}/deliveries?limit=`: the newest deliveries of every shard.
pub async fn deliveries(req: &Request, name: &str, env: &Env, config: &Config) -> ApiResult {
    let authorization = req.headers().get("Authorization").ok().flatten();
    let workspace = settings::admin_workspace(config, env, authorization.as_deref())?;
    if !workspace.webhooks.iter().any(|w| w.name == name) {
        return Err(ApiError::new(404, "unknown_webhook", format!("no webhook named {name}")));
    }
    let limit = Target::of(req).limit(100)?;
    let id = workspace.id.as_str();
    let logs = (0..webhook_object::SHARDS).map(|shard| async move {
        let stub = internal::webhook_stub(env, id, name, shard)?;
        internal::view(&stub, "log", &Log { limit }).await
    });
    let mut entries = Vec::new();
    for log in join_all(logs).await {
        if let Some(Json::Array(shard_entries)) = log? {
            entries.extend(shard_entries);
        }
    }
    entries.sort_by(|a, b| b["createdAt"].as_str().cmp(&a["createdAt"].as_str()));
    entries.truncate(limit as usize);
    json_response(200, &json!({ "webhook": name, "deliveries": entries }))
}
