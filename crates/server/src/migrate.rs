//! `chatus migrate`: moves a single-node deployment (SQLite in a data
//! directory) into PostgreSQL, with its full history, accounts (password
//! hashes), sessions, rooms, memberships, invitations, read markers,
//! revocation and room removal events, key backups (sealed keys) and file metadata (uploads, and which message shares
//! which file), ids unchanged. The files' bytes stay in the data
//! directory's `files/`, which the node serving from PostgreSQL is given as
//! its own data directory.
//!
//! - **Streams**: every table is read in pages of [`PAGE`] rows by its
//!   primary key (keyset pagination) and written a page per transaction;
//!   no table is ever held in memory.
//! - **Idempotent**: rows go in with `ON CONFLICT DO NOTHING`, so a second
//!   run copies nothing and its report says every row was already there.
//! - **Resumable**: pages commit one by one; a run that was interrupted is
//!   finished by running it again. Until a run has verified its result, the
//!   database carries a `migration` mark and no server will serve from it.
//! - **Verified**: row counts of every table match, and every
//!   conversation has the same latest `seq`, message count, and SHA-256 of
//!   its messages' `(seq, sender, body)` on both sides (compared page by
//!   page in lock step, again without loading a table).
//!
//! The data directory is opened with its server lock: a server still
//! running on it is an error. Nodes still running on the database are an
//! error too.

use std::collections::VecDeque;
use std::path::Path;
use std::sync::{Arc, Mutex};

use rusqlite::types::ValueRef;
use sha2::Digest as _;
use tokio_postgres::types::ToSql;

use crate::store::StoreError;
use crate::store::postgres::{Conn, parse_url, redact_url, schema};
use crate::store::sqlite::{Access, SqliteStore};

/// Rows per page read and per transaction written.
pub const PAGE: usize = 2000;

/// Why a migration stopped.
#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    /// A store could not be opened or failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The migration cannot go on (a node is running, the target holds
    /// other data).
    #[error("{0}")]
    Refused(String),
    /// The copy does not match the source; the database keeps its
    /// `migration` mark, so no server serves it.
    #[error("The copy does not match the source: {0}")]
    Mismatch(String),
}

impl From<rusqlite::Error> for MigrateError {
    fn from(e: rusqlite::Error) -> Self {
        MigrateError::Store(e.into())
    }
}

/// What happened to one table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableReport {
    /// The table.
    pub table: &'static str,
    /// Rows copied by this run.
    pub copied: u64,
    /// Rows found already there (a previous run's).
    pub present: u64,
}

/// What a migration did and checked.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// Per table, in copy order.
    pub tables: Vec<TableReport>,
    /// Conversations whose messages were compared.
    pub conversations: u64,
    /// Messages compared.
    pub messages: u64,
}

impl Report {
    /// Whether this run changed nothing (everything was there already).
    pub fn unchanged(&self) -> bool {
        self.tables.iter().all(|t| t.copied == 0)
    }
}

/// A column's type, on both sides.
#[derive(Clone, Copy)]
enum Ty {
    Int,
    OptInt,
    Text,
    OptText,
    Bool,
    Bytes,
}

impl Ty {
    fn pg_array(self) -> &'static str {
        match self {
            Ty::Int | Ty::OptInt => "bigint[]",
            Ty::Text | Ty::OptText => "text[]",
            Ty::Bool => "boolean[]",
            Ty::Bytes => "bytea[]",
        }
    }
}

/// One column's values for a page, typed for PostgreSQL's `unnest`.
#[derive(Debug)]
enum Column {
    Int(Vec<Option<i64>>),
    Text(Vec<Option<String>>),
    Bool(Vec<bool>),
    Bytes(Vec<Vec<u8>>),
}

impl Column {
    fn new(ty: Ty) -> Column {
        match ty {
            Ty::Int | Ty::OptInt => Column::Int(Vec::new()),
            Ty::Text | Ty::OptText => Column::Text(Vec::new()),
            Ty::Bool => Column::Bool(Vec::new()),
            Ty::Bytes => Column::Bytes(Vec::new()),
        }
    }

    fn push(&mut self, v: ValueRef<'_>) -> Result<(), MigrateError> {
        let bad = || MigrateError::Mismatch(format!("an unexpected value {v:?} in the source"));
        match (self, v) {
            (Column::Int(c), ValueRef::Integer(i)) => c.push(Some(i)),
            (Column::Int(c), ValueRef::Null) => c.push(None),
            (Column::Text(c), ValueRef::Text(t)) => {
                c.push(Some(String::from_utf8(t.to_vec()).map_err(|_| bad())?));
            }
            (Column::Text(c), ValueRef::Null) => c.push(None),
            (Column::Bool(c), ValueRef::Integer(i)) => c.push(i != 0),
            (Column::Bytes(c), ValueRef::Blob(b)) => c.push(b.to_vec()),
            _ => return Err(bad()),
        }
        Ok(())
    }

    fn as_sql(&self) -> &(dyn ToSql + Sync) {
        match self {
            Column::Int(c) => c,
            Column::Text(c) => c,
            Column::Bool(c) => c,
            Column::Bytes(c) => c,
        }
    }
}

/// A table to copy: its columns (the first `key` of them form the primary
/// key, in its order) and what to do on a conflict.
struct Table {
    name: &'static str,
    columns: &'static [(&'static str, Ty)],
    key: usize,
    /// The `ON CONFLICT` clause.
    on_conflict: &'static str,
}

const TABLES: &[Table] = &[
    Table {
        name: "users",
        columns: &[
            ("id", Ty::Int),
            ("name", Ty::Text),
            ("name_key", Ty::Text),
            ("name_skeleton", Ty::Text),
            ("password_hash", Ty::Text),
            ("is_admin", Ty::Bool),
            ("created_ms", Ty::Int),
            ("display_name", Ty::OptText),
        ],
        key: 1,
        on_conflict: "ON CONFLICT DO NOTHING",
    },
    Table {
        name: "conversations",
        columns: &[
            ("id", Ty::Int),
            ("kind", Ty::Text),
            ("name", Ty::OptText),
            ("visibility", Ty::OptText),
            ("user_a", Ty::OptInt),
            ("user_b", Ty::OptInt),
            ("created_by", Ty::OptInt),
            ("created_ms", Ty::Int),
            ("last_seq", Ty::Int),
            ("encrypted", Ty::Bool),
            ("seq_base", Ty::Int),
        ],
        key: 1,
        // The lobby exists in a new database already, with no message yet:
        // it takes the source's count (never a lower one).
        on_conflict: "ON CONFLICT (id) DO UPDATE SET last_seq = excluded.last_seq
                      WHERE conversations.last_seq < excluded.last_seq
                        AND conversations.kind = excluded.kind
                        AND conversations.name IS NOT DISTINCT FROM excluded.name",
    },
    Table {
        name: "members",
        columns: &[
            ("conv_id", Ty::Int),
            ("user_id", Ty::Int),
            ("joined_ms", Ty::Int),
        ],
        key: 2,
        on_conflict: "ON CONFLICT DO NOTHING",
    },
    Table {
        name: "invites",
        columns: &[
            ("conv_id", Ty::Int),
            ("user_id", Ty::Int),
            ("invited_by", Ty::Int),
            ("created_ms", Ty::Int),
        ],
        key: 2,
        on_conflict: "ON CONFLICT DO NOTHING",
    },
    Table {
        name: "sessions",
        columns: &[
            ("token_hash", Ty::Bytes),
            ("user_id", Ty::Int),
            ("created_ms", Ty::Int),
            ("expires_ms", Ty::Int),
        ],
        key: 1,
        on_conflict: "ON CONFLICT DO NOTHING",
    },
    Table {
        name: "read_markers",
        columns: &[
            ("user_id", Ty::Int),
            ("conv_id", Ty::Int),
            ("seq", Ty::Int),
            ("shown_seq", Ty::Int),
        ],
        key: 2,
        on_conflict: "ON CONFLICT DO NOTHING",
    },
    Table {
        name: "revocations",
        columns: &[
            ("id", Ty::Int),
            ("user_id", Ty::Int),
            ("created_ms", Ty::Int),
        ],
        key: 1,
        on_conflict: "ON CONFLICT DO NOTHING",
    },
    Table {
        name: "room_removals",
        columns: &[
            ("id", Ty::Int),
            ("conv_id", Ty::Int),
            ("name", Ty::Text),
            ("last_seq", Ty::Int),
            ("reason", Ty::OptText),
            ("created_ms", Ty::Int),
        ],
        key: 1,
        on_conflict: "ON CONFLICT DO NOTHING",
    },
    Table {
        name: "uploads",
        columns: &[
            ("id", Ty::Text),
            ("owner_id", Ty::Int),
            ("name", Ty::Text),
            ("media_type", Ty::Text),
            ("length", Ty::Int),
            ("sha256", Ty::OptText),
            ("created_ms", Ty::Int),
            ("updated_ms", Ty::Int),
            ("removed_ms", Ty::OptInt),
        ],
        key: 1,
        on_conflict: "ON CONFLICT DO NOTHING",
    },
    Table {
        name: "messages",
        columns: &[
            ("conv_id", Ty::Int),
            ("seq", Ty::Int),
            ("sender_id", Ty::Int),
            ("client_id", Ty::Text),
            ("time_ms", Ty::Int),
            ("body", Ty::Text),
            ("file_id", Ty::OptText),
            ("kind", Ty::Int),
            ("target", Ty::OptInt),
            ("reply_to", Ty::OptInt),
            ("edited", Ty::OptInt),
            ("deleted", Ty::OptInt),
        ],
        key: 2,
        on_conflict: "ON CONFLICT DO NOTHING",
    },
    Table {
        name: "reactions",
        columns: &[
            ("conv_id", Ty::Int),
            ("seq", Ty::Int),
            ("emoji", Ty::Text),
            ("user_id", Ty::Int),
            ("time_ms", Ty::Int),
            ("added", Ty::Int),
        ],
        key: 4,
        on_conflict: "ON CONFLICT DO NOTHING",
    },
    Table {
        name: "devices",
        columns: &[
            ("user_id", Ty::Int),
            ("device_id", Ty::Text),
            ("curve25519", Ty::Text),
            ("ed25519", Ty::Text),
            ("keys_json", Ty::Text),
            ("fallback_json", Ty::OptText),
            ("created_ms", Ty::Int),
        ],
        key: 2,
        on_conflict: "ON CONFLICT DO NOTHING",
    },
    Table {
        name: "one_time_keys",
        columns: &[
            ("user_id", Ty::Int),
            ("device_id", Ty::Text),
            ("key_id", Ty::Text),
            ("key_json", Ty::Text),
        ],
        key: 3,
        on_conflict: "ON CONFLICT DO NOTHING",
    },
    Table {
        name: "to_device",
        columns: &[
            ("id", Ty::Int),
            ("user_id", Ty::Int),
            ("device_id", Ty::Text),
            ("sender_id", Ty::Int),
            ("sender_device", Ty::Text),
            ("ciphertext", Ty::Text),
            ("time_ms", Ty::Int),
        ],
        key: 1,
        on_conflict: "ON CONFLICT DO NOTHING",
    },
    Table {
        name: "backups",
        columns: &[
            ("id", Ty::Int),
            ("user_id", Ty::Int),
            ("key_check", Ty::Text),
            ("key_count", Ty::Int),
            ("created_ms", Ty::Int),
        ],
        key: 1,
        on_conflict: "ON CONFLICT DO NOTHING",
    },
    Table {
        name: "backup_keys",
        columns: &[
            ("id", Ty::Int),
            ("backup_id", Ty::Int),
            ("conversation", Ty::Text),
            ("sender_key", Ty::Text),
            ("session_id", Ty::Text),
            ("first_known_index", Ty::Int),
            ("sealed", Ty::Text),
        ],
        key: 1,
        on_conflict: "ON CONFLICT DO NOTHING",
    },
];

/// The tables whose ids PostgreSQL generates: their counters move past the
/// copied ids.
const IDENTITIES: &[&str] = &[
    "users",
    "conversations",
    "revocations",
    "room_removals",
    "to_device",
    "backups",
    "backup_keys",
];

/// A page's key to continue after: the values of the key columns of its
/// last row.
type Key = Vec<rusqlite::types::Value>;

/// The SQLite side, read on blocking threads.
#[derive(Clone)]
struct Source {
    // A std Mutex: used on one blocking thread at a time, never across an
    // await.
    conn: Arc<Mutex<rusqlite::Connection>>,
}

impl Source {
    /// Runs `f` on a blocking thread with the connection.
    async fn with<T: Send + 'static>(
        &self,
        f: impl FnOnce(&rusqlite::Connection) -> Result<T, MigrateError> + Send + 'static,
    ) -> Result<T, MigrateError> {
        let conn = self.conn.clone();
        tokio::task::spawn_blocking(move || {
            let conn = conn
                .lock()
                .map_err(|_| MigrateError::Refused("a reader thread failed".into()))?;
            f(&conn)
        })
        .await
        .map_err(|e| MigrateError::Refused(format!("a reader thread failed: {e}")))?
    }

    /// The page of `table` after `after`: its columns, and the key of its
    /// last row (`None` when the page is empty).
    async fn page(
        &self,
        table: &'static Table,
        after: Option<Key>,
    ) -> Result<(Vec<Column>, usize, Option<Key>), MigrateError> {
        self.with(move |c| {
            let cols: Vec<&str> = table.columns.iter().map(|(n, _)| *n).collect();
            let key: Vec<&str> = cols[..table.key].to_vec();
            let key_list = key.join(", ");
            let filter = match &after {
                None => String::new(),
                Some(_) => {
                    let marks: Vec<String> = (1..=key.len()).map(|i| format!("?{i}")).collect();
                    format!("WHERE ({key_list}) > ({})", marks.join(", "))
                }
            };
            let sql = format!(
                "SELECT {} FROM {} {filter} ORDER BY {key_list} LIMIT {PAGE}",
                cols.join(", "),
                table.name
            );
            let mut st = c.prepare(&sql)?;
            let params: Vec<&dyn rusqlite::ToSql> = after
                .iter()
                .flatten()
                .map(|v| v as &dyn rusqlite::ToSql)
                .collect();
            let mut rows = st.query(params.as_slice())?;
            let mut columns: Vec<Column> = table
                .columns
                .iter()
                .map(|(_, ty)| Column::new(*ty))
                .collect();
            let mut n = 0;
            let mut last = None;
            while let Some(r) = rows.next()? {
                for (i, col) in columns.iter_mut().enumerate() {
                    col.push(r.get_ref(i)?)?;
                }
                last = Some(
                    (0..table.key)
                        .map(|i| r.get::<_, rusqlite::types::Value>(i))
                        .collect::<Result<Key, _>>()?,
                );
                n += 1;
            }
            Ok((columns, n, last))
        })
        .await
    }

    async fn count(&self, table: &'static str) -> Result<i64, MigrateError> {
        self.with(move |c| {
            Ok(c.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))?)
        })
        .await
    }
}

/// Copies `from` (a data directory) into the PostgreSQL database at `to`,
/// then verifies the copy. `progress` hears about each table when it is
/// done.
pub async fn migrate(
    from: &Path,
    to: &str,
    progress: &mut (dyn FnMut(&TableReport) + Send),
) -> Result<Report, MigrateError> {
    if !from.join(crate::store::DB_FILE).exists() {
        return Err(MigrateError::Refused(format!(
            "{} holds no ChatUs database ({} is missing)",
            from.display(),
            crate::store::DB_FILE
        )));
    }
    // Held to the end: its lock keeps a server from starting on the
    // directory meanwhile (and opening migrates an older file first).
    let store = SqliteStore::open(from, Access::Exclusive).map_err(|e| match e {
        StoreError::Io(io) => MigrateError::Refused(format!(
            "cannot take the data directory ({io}); stop the server using it first"
        )),
        other => other.into(),
    })?;
    let source = Source {
        conn: Arc::new(Mutex::new(store.reader()?)),
    };
    let config = parse_url(to)?;
    let pg = Conn::connect(&config).await.map_err(|e| match e {
        StoreError::Unavailable(why) => StoreError::Unavailable(format!(
            "cannot connect to PostgreSQL at {}: {why}",
            redact_url(to)
        )),
        other => other,
    })?;
    schema::lock(&pg).await?;
    let prepared = prepare(&pg, from).await;
    let unlocked = schema::unlock(&pg).await;
    prepared?;
    unlocked?;

    let mut report = Report::default();
    for table in TABLES {
        let t = copy(&source, &pg, table).await?;
        progress(&t);
        report.tables.push(t);
    }
    for table in IDENTITIES {
        // A removed room's id is never given to a new conversation.
        let removed = if *table == "conversations" {
            "(SELECT max(conv_id) FROM room_removals)"
        } else {
            "1"
        };
        let sql = format!(
            "SELECT setval(pg_get_serial_sequence('{table}', 'id'),
                           GREATEST((SELECT max(id) FROM {table}), {removed}, 1))"
        );
        pg.batch(&sql).await?;
    }
    verify(&source, &pg, &mut report).await?;
    pg.batch("DELETE FROM cluster_meta WHERE key = 'migration'")
        .await?;
    drop(store);
    Ok(report)
}

/// Under the start-up lock: the schema is current, no node is running,
/// and the `migration` mark is set.
async fn prepare(pg: &Conn, from: &Path) -> Result<(), MigrateError> {
    schema::migrate(pg).await?;
    let alive = pg
        .query(
            "SELECT node_id FROM cluster_nodes
             WHERE seen_ms > (extract(epoch from clock_timestamp()) * 1000)::bigint - $1",
            &[&schema::NODE_ALIVE_MS],
        )
        .await?;
    if let Some(r) = alive.first() {
        return Err(MigrateError::Refused(format!(
            "node {} is serving from this database; stop every node before migrating into it",
            r.get::<_, String>(0)
        )));
    }
    let mark = format!("from {}", from.display());
    pg.exec(
        "INSERT INTO cluster_meta (key, value) VALUES ('migration', $1) ON CONFLICT DO NOTHING",
        &[&mark],
    )
    .await?;
    Ok(())
}

/// Copies one table, a page per transaction.
async fn copy(
    source: &Source,
    pg: &Conn,
    table: &'static Table,
) -> Result<TableReport, MigrateError> {
    let names: Vec<&str> = table.columns.iter().map(|(n, _)| *n).collect();
    let arrays: Vec<String> = table
        .columns
        .iter()
        .enumerate()
        .map(|(i, (_, ty))| format!("${}::{}", i + 1, ty.pg_array()))
        .collect();
    let sql = format!(
        "INSERT INTO {} ({}) SELECT * FROM unnest({}) {}",
        table.name,
        names.join(", "),
        arrays.join(", "),
        table.on_conflict
    );
    let insert = pg
        .client
        .prepare(&sql)
        .await
        .map_err(crate::store::postgres::pg_error)?;
    let mut report = TableReport {
        table: table.name,
        copied: 0,
        present: 0,
    };
    let mut after = None;
    loop {
        let (columns, n, last) = source.page(table, after.take()).await?;
        if n == 0 {
            break;
        }
        let params: Vec<&(dyn ToSql + Sync)> = columns.iter().map(Column::as_sql).collect();
        let copied = pg
            .client
            .execute(&insert, &params)
            .await
            .map_err(crate::store::postgres::pg_error)?;
        report.copied += copied;
        report.present += n as u64 - copied;
        // A long table says how far it got now and then.
        if (report.copied + report.present).is_multiple_of(50 * PAGE as u64) {
            tracing::info!(
                table = table.name,
                rows = report.copied + report.present,
                "copying"
            );
        }
        if n < PAGE {
            break;
        }
        after = last;
    }
    Ok(report)
}

/// One conversation's messages, summarised.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Summary {
    conv: i64,
    max_seq: i64,
    count: u64,
    digest: [u8; 32],
}

/// Folds a stream of messages, in (conversation, seq) order, into one
/// [`Summary`] per conversation.
#[derive(Default)]
struct Summarizer {
    current: Option<(i64, i64, u64, sha2::Sha256)>,
    done: VecDeque<Summary>,
}

impl Summarizer {
    fn push(&mut self, conv: i64, seq: i64, sender: i64, body: &str) {
        if self.current.as_ref().is_some_and(|c| c.0 != conv) {
            self.finish();
        }
        let cur = self
            .current
            .get_or_insert_with(|| (conv, 0, 0, sha2::Sha256::new()));
        cur.1 = seq;
        cur.2 += 1;
        cur.3.update(seq.to_be_bytes());
        cur.3.update(sender.to_be_bytes());
        cur.3.update((body.len() as u64).to_be_bytes());
        cur.3.update(body.as_bytes());
    }

    fn finish(&mut self) {
        if let Some((conv, max_seq, count, h)) = self.current.take() {
            self.done.push_back(Summary {
                conv,
                max_seq,
                count,
                digest: h.finalize().into(),
            });
        }
    }
}

/// Counts every table on both sides, then compares every conversation's
/// summary, reading both sides a page at a time in lock step.
async fn verify(source: &Source, pg: &Conn, report: &mut Report) -> Result<(), MigrateError> {
    for table in TABLES {
        let there = source.count(table.name).await?;
        let sql = format!("SELECT count(*) FROM {}", table.name);
        let here: i64 = pg
            .client
            .query_one(&sql, &[])
            .await
            .map_err(crate::store::postgres::pg_error)?
            .get(0);
        if there != here {
            return Err(MigrateError::Mismatch(format!(
                "{} has {there} rows in the data directory and {here} in PostgreSQL{}",
                table.name,
                if here > there {
                    " (migrate into an empty database)"
                } else {
                    ""
                }
            )));
        }
    }
    let (mut a, mut b) = (Summarizer::default(), Summarizer::default());
    let (mut after_a, mut after_b) = ((0i64, 0i64), (0i64, 0i64));
    let (mut end_a, mut end_b) = (false, false);
    while !(end_a && end_b && a.done.is_empty() && b.done.is_empty()) {
        if !end_a {
            let after = after_a;
            let rows = source
                .with(move |c| {
                    let mut st = c.prepare_cached(
                        "SELECT conv_id, seq, sender_id, body FROM messages
                         WHERE (conv_id, seq) > (?1, ?2) ORDER BY conv_id, seq LIMIT ?3",
                    )?;
                    let rows = st
                        .query_map(rusqlite::params![after.0, after.1, PAGE as i64], |r| {
                            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get::<_, String>(3)?))
                        })?
                        .collect::<Result<Vec<(i64, i64, i64, String)>, _>>()?;
                    Ok(rows)
                })
                .await?;
            end_a = rows.len() < PAGE;
            for (conv, seq, sender, body) in &rows {
                a.push(*conv, *seq, *sender, body);
                after_a = (*conv, *seq);
            }
            if end_a {
                a.finish();
            }
        }
        if !end_b {
            let rows = pg
                .query(
                    "SELECT conv_id, seq, sender_id, body FROM messages
                     WHERE (conv_id, seq) > ($1, $2) ORDER BY conv_id, seq LIMIT $3",
                    &[&after_b.0, &after_b.1, &(PAGE as i64)],
                )
                .await?;
            end_b = rows.len() < PAGE;
            for r in &rows {
                let (conv, seq) = (r.get(0), r.get(1));
                b.push(conv, seq, r.get(2), r.get(3));
                after_b = (conv, seq);
            }
            if end_b {
                b.finish();
            }
        }
        while let (Some(x), Some(y)) = (a.done.front(), b.done.front()) {
            if x != y {
                return Err(MigrateError::Mismatch(format!(
                    "conversation {} differs: latest seq {} and {} messages in the data \
                     directory, latest seq {} and {} messages in PostgreSQL{}",
                    x.conv,
                    x.max_seq,
                    x.count,
                    y.max_seq,
                    y.count,
                    if x.conv == y.conv && x.count == y.count {
                        " (the same count, other contents)"
                    } else {
                        ""
                    }
                )));
            }
            report.conversations += 1;
            report.messages += x.count;
            a.done.pop_front();
            b.done.pop_front();
        }
        if end_a && end_b && (a.done.is_empty() != b.done.is_empty()) {
            return Err(MigrateError::Mismatch(
                "one side has messages in conversations the other has not".into(),
            ));
        }
    }
    // Every conversation's counter matches its messages, on the copy.
    let bad = pg
        .query_opt(
            "SELECT c.id, c.last_seq, COALESCE(max(m.seq), 0)::bigint FROM conversations c
             LEFT JOIN messages m ON m.conv_id = c.id
             GROUP BY c.id HAVING c.last_seq <> COALESCE(max(m.seq), 0) LIMIT 1",
            &[],
        )
        .await?;
    if let Some(r) = bad {
        return Err(MigrateError::Mismatch(format!(
            "conversation {} counts {} messages but its latest is {}",
            r.get::<_, i64>(0),
            r.get::<_, i64>(1),
            r.get::<_, i64>(2)
        )));
    }
    Ok(())
}
