//! Schema migrations, applied in order at open and recorded in SQLite's
//! `user_version`. Never edit a shipped migration; append a new one.

use rusqlite::Connection;

use crate::store::StoreError;

/// Migration `i` moves `user_version` from `i` to `i + 1`.
const MIGRATIONS: &[&str] = &[
    // 1: accounts, sessions, conversations (rooms and direct), messages.
    r#"
    CREATE TABLE users (
        id            INTEGER PRIMARY KEY,
        name          TEXT NOT NULL,
        name_key      TEXT NOT NULL UNIQUE,
        password_hash TEXT NOT NULL,
        is_admin      INTEGER NOT NULL DEFAULT 0,
        created_ms    INTEGER NOT NULL
    );
    CREATE TABLE sessions (
        token_hash BLOB PRIMARY KEY,
        user_id    INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        created_ms INTEGER NOT NULL,
        expires_ms INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE INDEX sessions_user ON sessions(user_id);
    -- A room (kind 'room', with a name) or a direct conversation (kind 'dm',
    -- between user_a <= user_b). last_seq numbers its messages.
    CREATE TABLE conversations (
        id          INTEGER PRIMARY KEY,
        kind        TEXT NOT NULL CHECK (kind IN ('room', 'dm')),
        name        TEXT UNIQUE,
        visibility  TEXT CHECK (visibility IN ('public', 'private')),
        user_a      INTEGER REFERENCES users(id),
        user_b      INTEGER REFERENCES users(id),
        created_by  INTEGER REFERENCES users(id),
        created_ms  INTEGER NOT NULL,
        last_seq    INTEGER NOT NULL DEFAULT 0,
        UNIQUE (user_a, user_b)
    );
    CREATE TABLE members (
        conv_id   INTEGER NOT NULL REFERENCES conversations(id),
        user_id   INTEGER NOT NULL REFERENCES users(id),
        joined_ms INTEGER NOT NULL,
        PRIMARY KEY (conv_id, user_id)
    ) WITHOUT ROWID;
    CREATE TABLE invites (
        conv_id    INTEGER NOT NULL REFERENCES conversations(id),
        user_id    INTEGER NOT NULL REFERENCES users(id),
        invited_by INTEGER NOT NULL REFERENCES users(id),
        created_ms INTEGER NOT NULL,
        PRIMARY KEY (conv_id, user_id)
    ) WITHOUT ROWID;
    CREATE TABLE read_markers (
        user_id INTEGER NOT NULL REFERENCES users(id),
        conv_id INTEGER NOT NULL REFERENCES conversations(id),
        seq     INTEGER NOT NULL,
        PRIMARY KEY (user_id, conv_id)
    ) WITHOUT ROWID;
    CREATE TABLE messages (
        conv_id   INTEGER NOT NULL REFERENCES conversations(id),
        seq       INTEGER NOT NULL,
        sender_id INTEGER NOT NULL REFERENCES users(id),
        client_id TEXT NOT NULL,
        time_ms   INTEGER NOT NULL,
        body      TEXT NOT NULL,
        PRIMARY KEY (conv_id, seq)
    ) WITHOUT ROWID;
    -- Idempotent sends: one message per (sender, client_id).
    CREATE UNIQUE INDEX messages_client_id ON messages(sender_id, client_id);
    INSERT INTO conversations (kind, name, visibility, created_ms) VALUES ('room', 'lobby', 'public', 0);
    "#,
    // 2: expired sessions are purged now and then; find them by expiry.
    r#"
    CREATE INDEX sessions_expires ON sessions(expires_ms);
    "#,
];

/// Brings the database up to the newest schema.
pub(crate) fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    let version = usize::try_from(version).unwrap_or(usize::MAX);
    if version > MIGRATIONS.len() {
        return Err(StoreError::Corrupt(format!(
            "the database has schema version {version}, newer than this server knows ({}); \
             upgrade ChatUs",
            MIGRATIONS.len()
        )));
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(version) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", (i + 1) as i64)?;
        tx.commit()?;
        tracing::info!(version = i + 1, "applied database migration");
    }
    Ok(())
}
