//! `IdentityIndex`: which profile an identifier belongs to. One object per shard
//! (`{workspace}/index/{hash % 64}`), so no object sees all identify traffic.

use portrait_core::identity::Identity;
use worker::{Env, Result, SqlStorage, SqlStorageValue, State};

use crate::internal::{self, Answer, Link, Linked, Resolve, Resolved, Schema, Unlink, Unlinked};

const SCHEMA: &[&str] = &["CREATE TABLE IF NOT EXISTS links (kind TEXT NOT NULL, value TEXT NOT NULL, \
     profile TEXT NOT NULL, PRIMARY KEY (kind, value)) WITHOUT ROWID"];

internal::export_object!(IdentityIndex);

pub struct IdentityIndex {
    sql: SqlStorage,
    schema: Schema,
}

impl internal::Object for IdentityIndex {
    fn new(state: State, _env: Env) -> Self {
        IdentityIndex { sql: state.storage().sql(), schema: Schema::new(SCHEMA) }
    }

    async fn handle(&self, action: &str, body: &[u8]) -> Result<Answer> {
        self.schema.ensure(&self.sql)?;
        match action {
            "resolve" => {
                let resolve: Resolve = internal::decode(body)?;
                match (self.lookup(&resolve.identity)?, resolve.create_as) {
                    (Some(profile_id), _) => internal::answer(&Resolved { profile_id }),
                    (None, Some(profile_id)) => {
                        self.insert(&resolve.identity, &profile_id)?;
                        internal::answer(&Resolved { profile_id })
                    }
                    (None, None) => Ok(None),
                }
            }
            "link" => {
                let link: Link = internal::decode(body)?;
                let mut conflicts = Vec::new();
                for identity in link.identities {
                    match self.lookup(&identity)? {
                        None => self.insert(&identity, &link.profile_id)?,
                        Some(owner) if owner == link.profile_id => {}
                        Some(owner) if link.absorbed.contains(&owner) => {
                            self.sql.exec(
                                "UPDATE links SET profile = ? WHERE kind = ? AND value = ?",
                                vec![
                                    link.profile_id.as_str().into(),
                                    identity.kind.as_str().into(),
                                    identity.value.as_str().into(),
                                ],
                            )?;
                        }
                        Some(owner) => conflicts.push((identity, owner)),
                    }
                }
                internal::answer(&Linked { conflicts })
            }
            "unlink" => {
                let unlink: Unlink = internal::decode(body)?;
                let mut removed = 0;
                for identity in &unlink.identities {
                    let owned = self
                        .lookup(identity)?
                        .is_some_and(|owner| owner == unlink.profile_id || unlink.absorbed.contains(&owner));
                    if owned {
                        let cursor = self.sql.exec(
                            "DELETE FROM links WHERE kind = ? AND value = ?",
                            vec![identity.kind.as_str().into(), identity.value.as_str().into()],
                        )?;
                        removed += cursor.rows_written() as u32;
                    }
                }
                internal::answer(&Unlinked { removed })
            }
            other => internal::unknown_action("index", other),
        }
    }
}

impl IdentityIndex {
    fn lookup(&self, identity: &Identity) -> Result<Option<String>> {
        let cursor = self.sql.exec(
            "SELECT profile FROM links WHERE kind = ? AND value = ?",
            vec![identity.kind.as_str().into(), identity.value.as_str().into()],
        )?;
        for row in cursor.raw() {
            if let Some(SqlStorageValue::String(profile)) = row?.into_iter().next() {
                return Ok(Some(profile));
            }
        }
        Ok(None)
    }

    fn insert(&self, identity: &Identity, profile_id: &str) -> Result<()> {
        self.sql.exec(
            "INSERT INTO links (kind, value, profile) VALUES (?, ?, ?)",
            vec![identity.kind.as_str().into(), identity.value.as_str().into(), profile_id.into()],
        )?;
        Ok(())
    }
}
