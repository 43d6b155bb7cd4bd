//! `SourceStats`: counters kept per source for what is not profiled: bot events, events
//! refused (by error code) and events the source's SDKs dropped from a full queue.
//! Sharded (`{workspace}/stats/{source}/{0..8}`) so a crawler storm on one source does not
//! funnel into one object; only requests that carried such events write here.

use serde::{Deserialize, Serialize};
use worker::{Env, Result, SqlStorage, SqlStorageValue, State};

use crate::internal::{self, Answer, Schema};

pub const SHARDS: u64 = 8;

/// The counters of refused events are named this and their error code (`rejected:too_old`).
pub const REJECTED_PREFIX: &str = "rejected:";

/// `add`: counter increments. `read`: all counters.
#[derive(Default, Serialize, Deserialize)]
pub struct Counts {
    pub counts: Vec<(String, i64)>,
}

const SCHEMA: &[&str] = &["CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, n INTEGER NOT NULL)"];

internal::export_object!(SourceStats);

pub struct SourceStats {
    sql: SqlStorage,
    schema: Schema,
}

impl internal::Object for SourceStats {
    fn new(state: State, _env: Env) -> Self {
        SourceStats { sql: state.storage().sql(), schema: Schema::new(SCHEMA) }
    }

    async fn handle(&self, action: &str, body: &[u8]) -> Result<Answer> {
        self.schema.ensure(&self.sql)?;
        match action {
            "add" => {
                let add: Counts = internal::decode(body)?;
                for (name, n) in &add.counts {
                    self.sql.exec(
                        "INSERT INTO counters (name, n) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET n = n + excluded.n",
                        vec![name.as_str().into(), (*n).into()],
                    )?;
                }
                internal::answer(&Counts::default())
            }
            "read" => {
                let mut counts = Vec::new();
                for row in self.sql.exec("SELECT name, n FROM counters", None)?.raw() {
                    if let [SqlStorageValue::String(name), SqlStorageValue::Integer(n)] = row?.as_slice() {
                        counts.push((name.clone(), *n));
                    }
                }
                internal::answer(&Counts { counts })
            }
            other => internal::unknown_action("stats", other),
        }
    }
}
