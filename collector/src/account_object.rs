//! `AccountObject`: one Durable Object per B2B account (`{workspace}/account/{accountId}`),
//! the aggregate of what its members' profiles report (`core::account`).
//!
//! Storage: one row holding the account (postcard). Profiles send `update` after each batch
//! they apply (their member snapshot and their group traits for this account), with the
//! profiles merged into them, which stop being members; erasure sends `remove`. An account
//! whose traits name a domain registers it in the IdentityIndex, so people with a business
//! email at that domain join it by inference.

use std::cell::Cell;

use portrait_core::Timestamp;
use portrait_core::account::{self, Account, AccountFacts};
use portrait_core::changes::{self, Snapshot};
use portrait_core::config::AudienceOf;
use portrait_core::view;
use worker::{Env, Result, SqlStorage, SqlStorageValue, State};

use crate::internal::{self, AccountMessage, Answer, Link, Linked, RemoveMember, Schema};
use crate::{outbox, settings};

const SCHEMA: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS account (k INTEGER PRIMARY KEY CHECK (k = 0), \
     workspace TEXT NOT NULL, state BLOB NOT NULL, linked_domain TEXT)",
    outbox::TABLES[0],
    outbox::TABLES[1],
];

internal::export_object!(AccountObject);

/// An account's id where audiences and webhooks name their members (beside profile ids).
pub fn member_id(account_id: &str) -> String {
    format!("account:{account_id}")
}

pub struct AccountObject {
    env: Env,
    sql: SqlStorage,
    schema: Schema,
    /// Whether this object's domain is known to be registered (saves a read per update).
    domain_linked: Cell<bool>,
}

impl internal::Object for AccountObject {
    fn new(state: State, env: Env) -> Self {
        AccountObject {
            env,
            sql: state.storage().sql(),
            schema: Schema::new(SCHEMA),
            domain_linked: Cell::new(false),
        }
    }

    async fn handle(&self, action: &str, body: &[u8]) -> Result<Answer> {
        match action {
            "update" => {
                let message: AccountMessage = internal::decode(body)?;
                self.schema.ensure(&self.sql)?;
                let mut account = self.load()?.map_or_else(|| Account::new(&message.account_id), |(_, a)| a);
                if let Some(update) = message.update {
                    for from in &message.absorbed {
                        account.member_merged(from, &update.member.profile_id);
                    }
                    account.apply(update);
                }
                self.save(&message.workspace, &account)?;
                self.link_domain(&message.workspace, &account).await?;
                self.evaluate(&message.workspace, &account).await?;
                internal::answer(&())
            }
            "remove" => {
                let remove: RemoveMember = internal::decode(body)?;
                let Some((workspace, mut account)) = self.load()? else {
                    return Ok(None);
                };
                for profile_id in &remove.profile_ids {
                    account.remove_member(profile_id);
                }
                self.save(&workspace, &account)?;
                // The account's audiences may lose it with its member (an exit fires).
                self.evaluate(&workspace, &account).await?;
                internal::answer(&())
            }
            "view" => match self.load()? {
                Some((_, account)) => {
                    let mut view = account::account_json(&account, Timestamp(internal::now_ms()));
                    view::add_evaluation(&mut view, &outbox::evaluated(&self.sql, &self.schema)?);
                    internal::json(&view)
                }
                None => Ok(None),
            },
            other => internal::unknown_action("account", other),
        }
    }
}

impl AccountObject {
    fn load(&self) -> Result<Option<(String, Account)>> {
        if !self.schema.exists(&self.sql, "account")? {
            return Ok(None);
        }
        for row in self.sql.exec("SELECT workspace, state FROM account WHERE k = 0", None)?.raw() {
            if let [SqlStorageValue::String(workspace), SqlStorageValue::Blob(state)] = row?.as_slice() {
                let account = postcard::from_bytes(state)
                    .map_err(|e| worker::Error::RustError(format!("stored account: {e}")))?;
                return Ok(Some((workspace.clone(), account)));
            }
        }
        Ok(None)
    }

    fn save(&self, workspace: &str, account: &Account) -> Result<()> {
        let state =
            postcard::to_allocvec(account).map_err(|e| worker::Error::RustError(format!("account: {e}")))?;
        self.sql.exec(
            "INSERT INTO account (k, workspace, state) VALUES (0, ?, ?) \
             ON CONFLICT (k) DO UPDATE SET state = excluded.state",
            vec![workspace.into(), state.into()],
        )?;
        Ok(())
    }

    /// Re-evaluates the workspace's account audiences; entries and exits go to the audience
    /// shards (member `account:<id>`) and fire webhooks, through the outbox.
    async fn evaluate(&self, workspace: &str, account: &Account) -> Result<()> {
        let now = Timestamp(internal::now_ms());
        let before = outbox::evaluated(&self.sql, &self.schema)?;
        let outcome = settings::workspace_settings(&self.env, workspace, |w| {
            let w = w.filter(|w| w.audiences.iter().any(|a| a.of == AudienceOf::Accounts))?;
            let view = account::account_json(account, now);
            let facts = AccountFacts { account, view: &view, now };
            let audiences = w
                .audiences
                .iter()
                .filter(|a| a.of == AudienceOf::Accounts && a.parsed.as_ref().is_some_and(|r| r.eval(&facts)))
                .map(|a| a.name.clone())
                .collect();
            let snapshot = Snapshot { audiences, ..Snapshot::default() };
            let (after, changes) = changes::evaluate(&before, &snapshot, &[], now.0);
            let items = outbox::items(w, &member_id(&account.id), &changes, "account", &view, now);
            Some((after, items))
        })?;
        outbox::record(&self.sql, &before, outcome)?;
        outbox::flush(&self.sql, &self.env, workspace).await
    }

    /// Registers the domain the account's traits name, once; the first account to claim a
    /// domain keeps it (a conflict is logged).
    async fn link_domain(&self, workspace: &str, account: &Account) -> Result<()> {
        if self.domain_linked.get() {
            return Ok(());
        }
        let Some(domain) = account::domain_of_traits(&account.traits) else { return Ok(()) };
        let linked = self.sql.exec("SELECT linked_domain FROM account WHERE k = 0", None)?.raw().next();
        if let Some(Ok(row)) = linked
            && let Some(SqlStorageValue::String(done)) = row.first()
            && *done == domain
        {
            self.domain_linked.set(true);
            return Ok(());
        }
        let identity = internal::domain_identity(&domain);
        let stub = internal::index_stub(&self.env, workspace, internal::index_shard(&identity))?;
        let link = Link { identities: vec![identity], profile_id: account.id.clone(), absorbed: Vec::new() };
        let answer: Option<Linked> = internal::call(&stub, "link", &link).await?;
        for (_, owner) in answer.map(|a| a.conflicts).unwrap_or_default() {
            worker::console_warn!("domain {domain} already belongs to account {owner}");
        }
        self.sql.exec("UPDATE account SET linked_domain = ? WHERE k = 0", vec![domain.as_str().into()])?;
        self.domain_linked.set(true);
        Ok(())
    }
}
