//! `AudienceObject`: one shard of an audience's membership
//! (`{workspace}/audience/{name}/{shard}`; a member's shard is a hash of its id), so that no
//! single object sees every change of a popular audience. Members are profile ids, or
//! `account:<id>` for account audiences, each with the time it entered.

use serde::{Deserialize, Serialize};
use worker::{Env, Result, SqlStorage, SqlStorageValue, State};

use crate::internal::{self, Answer, Schema};

/// Shards per audience. Part of the storage layout: changing it loses track of members.
pub const SHARDS: u64 = 16;

const SCHEMA: &[&str] =
    &["CREATE TABLE IF NOT EXISTS members (member TEXT PRIMARY KEY, entered INTEGER NOT NULL) WITHOUT ROWID"];

/// `join` / `leave`: a member entered (at `entered`) or left.
#[derive(Serialize, Deserialize)]
pub struct Membership {
    pub member: String,
    pub entered: Option<i64>,
}

/// `list`: members after `after` (by id), at most `limit`; `count`: how many.
#[derive(Serialize, Deserialize)]
pub struct ListMembers {
    pub after: Option<String>,
    pub limit: u32,
}

#[derive(Default, Serialize, Deserialize)]
pub struct Members {
    pub members: Vec<(String, i64)>,
    pub count: u64,
}

internal::export_object!(AudienceObject);

pub struct AudienceObject {
    sql: SqlStorage,
    schema: Schema,
}

impl internal::Object for AudienceObject {
    fn new(state: State, _env: Env) -> Self {
        AudienceObject { sql: state.storage().sql(), schema: Schema::new(SCHEMA) }
    }

    async fn handle(&self, action: &str, body: &[u8]) -> Result<Answer> {
        match action {
            "change" => {
                self.schema.ensure(&self.sql)?;
                let change: Membership = internal::decode(body)?;
                match change.entered {
                    // A member that is in already keeps its first entry time (retries are harmless).
                    Some(at) => self.sql.exec(
                        "INSERT OR IGNORE INTO members (member, entered) VALUES (?, ?)",
                        vec![change.member.as_str().into(), at.into()],
                    )?,
                    None => self
                        .sql
                        .exec("DELETE FROM members WHERE member = ?", vec![change.member.as_str().into()])?,
                };
                internal::answer(&())
            }
            "list" => {
                let list: ListMembers = internal::decode(body)?;
                let mut answer = Members::default();
                // A shard no member entered yet: no tables made by reading it.
                if !self.schema.exists(&self.sql, "members")? {
                    return internal::answer(&answer);
                }
                let rows = self.sql.exec(
                    "SELECT member, entered FROM members WHERE member > ? ORDER BY member LIMIT ?",
                    vec![list.after.unwrap_or_default().into(), i64::from(list.limit).into()],
                )?;
                for row in rows.raw() {
                    if let [SqlStorageValue::String(member), SqlStorageValue::Integer(entered)] =
                        row?.as_slice()
                    {
                        answer.members.push((member.clone(), *entered));
                    }
                }
                for row in self.sql.exec("SELECT count(*) FROM members", None)?.raw() {
                    if let [SqlStorageValue::Integer(n)] = row?.as_slice() {
                        answer.count = *n as u64;
                    }
                }
                internal::answer(&answer)
            }
            other => internal::unknown_action("audience", other),
        }
    }
}

/// The shard of `member` in every audience.
pub fn shard_of(member: &str) -> u64 {
    portrait_core::hash::fnv1a(member.as_bytes()) % SHARDS
}
