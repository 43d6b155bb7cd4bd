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
use portrait_core::account::{self, Account};
use worker::{
    Date, DurableObject, Env, Request, Response, Result, SqlStorage, SqlStorageValue, State, durable_object,
};

use crate::internal::{self, AccountMessage, Link, Linked, RemoveMember, Schema};

const SCHEMA: &[&str] = &["CREATE TABLE IF NOT EXISTS account (k INTEGER PRIMARY KEY CHECK (k = 0), \
     workspace TEXT NOT NULL, state BLOB NOT NULL, linked_domain TEXT)"];

#[durable_object]
pub struct AccountObject {
    env: Env,
    sql: SqlStorage,
    schema: Schema,
    /// Whether this object's domain is known to be registered (saves a read per update).
    domain_linked: Cell<bool>,
}

impl DurableObject for AccountObject {
    fn new(state: State, env: Env) -> Self {
        AccountObject {
            env,
            sql: state.storage().sql(),
            schema: Schema::new(SCHEMA),
            domain_linked: Cell::new(false),
        }
    }

    async fn fetch(&self, mut req: Request) -> Result<Response> {
        match req.path().as_str() {
            "/update" => {
                let message: AccountMessage = internal::body(&mut req).await?;
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
                internal::answer(&())
            }
            "/remove" => {
                let remove: RemoveMember = internal::body(&mut req).await?;
                let Some((workspace, mut account)) = self.load()? else {
                    return Response::error("no account", 404);
                };
                account.remove_member(&remove.profile_id);
                self.save(&workspace, &account)?;
                internal::answer(&())
            }
            "/view" => match self.load()? {
                Some((_, account)) => Response::from_json(&account::account_json(
                    &account,
                    Timestamp(Date::now().as_millis() as i64),
                )),
                None => Response::error("no account", 404),
            },
            other => Response::error(format!("no account action {other}"), 400),
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
