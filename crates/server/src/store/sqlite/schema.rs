//! Schema migrations, applied in order at open and recorded in SQLite's
//! `user_version`. Never edit a shipped migration; append a new one. A
//! migration is SQL, optionally followed by a Rust step in the same
//! transaction (to backfill what SQL cannot compute).

use chatus_protocol::Username;
use rusqlite::{Connection, Transaction};

use crate::store::StoreError;
use crate::store::skeleton::name_skeleton;

/// A Rust step run after a migration's SQL, in its transaction.
type Backfill = fn(&Transaction<'_>) -> Result<(), StoreError>;

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
    // 3: names are also unique by their confusable skeleton (backfilled by
    // `backfill_skeletons`; not a UNIQUE index, since names registered
    // before may already collide); administrators' password resets are
    // recorded so that a running server revokes the user's sessions.
    r#"
    ALTER TABLE users ADD COLUMN name_skeleton TEXT NOT NULL DEFAULT '';
    CREATE INDEX users_skeleton ON users(name_skeleton);
    CREATE TABLE revocations (
        id         INTEGER PRIMARY KEY AUTOINCREMENT,
        user_id    INTEGER NOT NULL,
        created_ms INTEGER NOT NULL
    );
    "#,
    // 4: sending a message now marks everything up to it read, so that
    // unread = last_seq - read_seq needs no scan. Bring the markers of
    // messages sent before that rule up to each sender's latest message.
    // (`WHERE true`: SQLite's upsert after a SELECT needs a WHERE clause.)
    r#"
    INSERT INTO read_markers (user_id, conv_id, seq)
        SELECT sender_id, conv_id, MAX(seq) FROM messages WHERE true
        GROUP BY sender_id, conv_id
        ON CONFLICT (user_id, conv_id) DO UPDATE SET seq = MAX(seq, excluded.seq);
    "#,
    // 5: files. An upload's bytes live in the file store; its row here says
    // whose it is, what it is called, and (once finished) its SHA-256. A
    // message may share one finished upload (`file_id`).
    r#"
    CREATE TABLE uploads (
        id         TEXT PRIMARY KEY,
        owner_id   INTEGER NOT NULL REFERENCES users(id),
        name       TEXT NOT NULL,
        media_type TEXT NOT NULL,
        length     INTEGER NOT NULL,
        sha256     TEXT,
        created_ms INTEGER NOT NULL,
        updated_ms INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE INDEX uploads_owner ON uploads(owner_id);
    CREATE INDEX uploads_sha256 ON uploads(sha256) WHERE sha256 IS NOT NULL;
    CREATE INDEX uploads_updated ON uploads(updated_ms);
    ALTER TABLE messages ADD COLUMN file_id TEXT;
    CREATE INDEX messages_file ON messages(file_id) WHERE file_id IS NOT NULL;
    CREATE INDEX messages_conv_files ON messages(conv_id, seq) WHERE file_id IS NOT NULL;
    "#,
    // 6: files an administrator removed. A removed upload that messages
    // shared keeps its row (so they keep their `file`) with `removed_ms`
    // set; no lookup but the history's finds it, and its bytes are gone
    // unless another upload has the same content.
    r#"
    ALTER TABLE uploads ADD COLUMN removed_ms INTEGER;
    "#,
    // 7: edits, deletions, reactions and replies. Each is a row of its
    // conversation's stream (`kind`: 0 message, 1 edit, 2 deletion,
    // 3 reaction added, 4 reaction taken back; `target` the message it
    // changes). A message row points at its latest edit (`edited`) and its
    // deletion (`deleted`); a deletion empties the body of the message and
    // of its edits. `reactions` holds the reactions as they stand now.
    // `message_text` is the one definition of a message's current text:
    // what search must index, and nothing else.
    r#"
    ALTER TABLE messages ADD COLUMN kind INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE messages ADD COLUMN target INTEGER;
    ALTER TABLE messages ADD COLUMN reply_to INTEGER;
    ALTER TABLE messages ADD COLUMN edited INTEGER;
    ALTER TABLE messages ADD COLUMN deleted INTEGER;
    CREATE INDEX messages_edits ON messages(conv_id, target) WHERE kind = 1;
    CREATE TABLE reactions (
        conv_id INTEGER NOT NULL REFERENCES conversations(id),
        seq     INTEGER NOT NULL,
        emoji   TEXT NOT NULL,
        user_id INTEGER NOT NULL REFERENCES users(id),
        time_ms INTEGER NOT NULL,
        -- The reaction event's own seq: the order reactions came in.
        added   INTEGER NOT NULL,
        PRIMARY KEY (conv_id, seq, emoji, user_id)
    ) WITHOUT ROWID;
    CREATE VIEW message_text AS
        SELECT m.conv_id, m.seq, m.sender_id, m.time_ms, COALESCE(e.body, m.body) AS body
        FROM messages m LEFT JOIN messages e ON e.conv_id = m.conv_id AND e.seq = m.edited
        WHERE m.kind = 0 AND m.deleted IS NULL;
    "#,
    // 8: end-to-end encryption. A device's identity keys (`keys_json`, the
    // client's signed JSON, with its two keys apart so that a change is
    // seen), its unclaimed one-time keys and its fallback key, and the
    // to-device messages queued for it. All key material is public and all
    // messages are ciphertext: the server cannot read them.
    r#"
    CREATE TABLE devices (
        user_id       INTEGER NOT NULL REFERENCES users(id),
        device_id     TEXT NOT NULL,
        curve25519    TEXT NOT NULL,
        ed25519       TEXT NOT NULL,
        keys_json     TEXT NOT NULL,
        fallback_json TEXT,
        created_ms    INTEGER NOT NULL,
        PRIMARY KEY (user_id, device_id)
    ) WITHOUT ROWID;
    CREATE TABLE one_time_keys (
        user_id   INTEGER NOT NULL,
        device_id TEXT NOT NULL,
        key_id    TEXT NOT NULL,
        key_json  TEXT NOT NULL,
        PRIMARY KEY (user_id, device_id, key_id),
        FOREIGN KEY (user_id, device_id) REFERENCES devices(user_id, device_id)
    ) WITHOUT ROWID;
    CREATE TABLE to_device (
        id            INTEGER PRIMARY KEY AUTOINCREMENT,
        user_id       INTEGER NOT NULL,
        device_id     TEXT NOT NULL,
        sender_id     INTEGER NOT NULL REFERENCES users(id),
        sender_device TEXT NOT NULL,
        ciphertext    TEXT NOT NULL,
        time_ms       INTEGER NOT NULL,
        FOREIGN KEY (user_id, device_id) REFERENCES devices(user_id, device_id)
    );
    CREATE INDEX to_device_recipient ON to_device(user_id, device_id, id);
    -- An end-to-end encrypted conversation: its messages' bodies are
    -- ciphertexts. Set at creation, never cleared.
    ALTER TABLE conversations ADD COLUMN encrypted INTEGER NOT NULL DEFAULT 0;
    "#,
    // 9: full-text search. `message_search` (FTS5, Porter stems over
    // unicode61 words) holds exactly `message_text`: one row per current
    // message, its rowid packing the conversation and the seq
    // (`conv_id * 2^32 + seq`, as `messages` has no rowid). Triggers keep
    // it so inside the transaction that changes a message: a new message
    // is added, and a message whose text, latest edit or deletion changes
    // is taken out and put back from the view (so a deleted message is
    // not put back). Existing messages are indexed from the view. Messages
    // of end-to-end encrypted conversations (ciphertext) are never indexed:
    // those are searched on the clients.
    r#"
    CREATE VIRTUAL TABLE message_search USING fts5(body, tokenize = 'porter unicode61');
    CREATE TRIGGER message_search_add AFTER INSERT ON messages WHEN new.kind = 0 BEGIN
        INSERT INTO message_search (rowid, body)
            SELECT t.conv_id * 4294967296 + t.seq, t.body FROM message_text t
            JOIN conversations c ON c.id = t.conv_id
            WHERE t.conv_id = new.conv_id AND t.seq = new.seq AND c.encrypted = 0;
    END;
    CREATE TRIGGER message_search_change AFTER UPDATE OF body, edited, deleted ON messages
    WHEN new.kind = 0 BEGIN
        DELETE FROM message_search WHERE rowid = new.conv_id * 4294967296 + new.seq;
        INSERT INTO message_search (rowid, body)
            SELECT t.conv_id * 4294967296 + t.seq, t.body FROM message_text t
            JOIN conversations c ON c.id = t.conv_id
            WHERE t.conv_id = new.conv_id AND t.seq = new.seq AND c.encrypted = 0;
    END;
    INSERT INTO message_search (rowid, body)
        SELECT t.conv_id * 4294967296 + t.seq, t.body FROM message_text t
        JOIN conversations c ON c.id = t.conv_id WHERE c.encrypted = 0;
    "#,
    // 10: room moderation. A room's topic, description and invite-only
    // flag; its moderators (the owner is `created_by`); its bans and
    // mutes. Each moderation action is also a row of the room's stream
    // (`messages.kind` 5, its body the action's JSON), which the audit log
    // reads through `messages_moderation`.
    r#"
    ALTER TABLE conversations ADD COLUMN topic TEXT NOT NULL DEFAULT '';
    ALTER TABLE conversations ADD COLUMN description TEXT NOT NULL DEFAULT '';
    ALTER TABLE conversations ADD COLUMN invite_only INTEGER NOT NULL DEFAULT 0;
    CREATE TABLE moderators (
        conv_id INTEGER NOT NULL REFERENCES conversations(id),
        user_id INTEGER NOT NULL REFERENCES users(id),
        PRIMARY KEY (conv_id, user_id)
    ) WITHOUT ROWID;
    CREATE TABLE bans (
        conv_id   INTEGER NOT NULL REFERENCES conversations(id),
        user_id   INTEGER NOT NULL REFERENCES users(id),
        banned_ms INTEGER NOT NULL,
        PRIMARY KEY (conv_id, user_id)
    ) WITHOUT ROWID;
    CREATE TABLE mutes (
        conv_id  INTEGER NOT NULL REFERENCES conversations(id),
        user_id  INTEGER NOT NULL REFERENCES users(id),
        until_ms INTEGER NOT NULL,
        PRIMARY KEY (conv_id, user_id)
    ) WITHOUT ROWID;
    CREATE INDEX messages_moderation ON messages(conv_id, seq) WHERE kind = 5;
    "#,
    // 11: read receipts. `shown_seq` is the public side of a read marker
    // (0: never made public); it moves only with a public `mark_read`.
    r#"
    ALTER TABLE read_markers ADD COLUMN shown_seq INTEGER NOT NULL DEFAULT 0;
    CREATE INDEX read_markers_shown ON read_markers (conv_id, shown_seq) WHERE shown_seq > 0;
    "#,
    // 12: profiles. A user's display name, shown beside the user name
    // (NULL: none). Checked by `DisplayName` before it is written.
    r#"
    ALTER TABLE users ADD COLUMN display_name TEXT;
    "#,
    // 13: rooms removed by an administrator (`chatus admin room rm`). The
    // room's rows are deleted; this event remains, for running servers to
    // drop the room (they read events after the last one they saw) and
    // for a room created later under the same name, which numbers its
    // messages on from `last_seq` (its `seq_base`; its members' read
    // markers start there). New conversation ids are taken above every
    // removed room's, so none is reused.
    r#"
    CREATE TABLE room_removals (
        id         INTEGER PRIMARY KEY AUTOINCREMENT,
        conv_id    INTEGER NOT NULL,
        name       TEXT NOT NULL,
        last_seq   INTEGER NOT NULL,
        reason     TEXT,
        created_ms INTEGER NOT NULL
    );
    CREATE INDEX room_removals_name ON room_removals(name);
    ALTER TABLE conversations ADD COLUMN seq_base INTEGER NOT NULL DEFAULT 0;
    "#,
    // 14: key backup (server-side backup of Megolm room keys). A user's one
    // backup: its id is its version, AUTOINCREMENT so that no number is
    // ever given twice (a device holding an old version can never write
    // into a newer backup), with the recovery key's public check and a
    // count of its keys. Each key is opaque ciphertext filed under its
    // slot (conversation, sender key, session id) with its first known
    // index in clear; keys go with their backup.
    r#"
    CREATE TABLE backups (
        id         INTEGER PRIMARY KEY AUTOINCREMENT,
        user_id    INTEGER NOT NULL UNIQUE REFERENCES users(id),
        key_check  TEXT NOT NULL,
        key_count  INTEGER NOT NULL DEFAULT 0,
        created_ms INTEGER NOT NULL
    );
    CREATE TABLE backup_keys (
        id                INTEGER PRIMARY KEY AUTOINCREMENT,
        backup_id         INTEGER NOT NULL REFERENCES backups(id),
        conversation      TEXT NOT NULL,
        sender_key        TEXT NOT NULL,
        session_id        TEXT NOT NULL,
        first_known_index INTEGER NOT NULL,
        sealed            TEXT NOT NULL,
        UNIQUE (backup_id, conversation, sender_key, session_id)
    );
    CREATE INDEX backup_keys_page ON backup_keys(backup_id, id);
    "#,
    // 15: a user's pending invitations, found by user: the cap on them
    // (`invites_elsewhere`, at every invitation) and the list a login
    // sends. The primary key leads with the room, so without this each was
    // a scan of every invitation on the server.
    r#"
    CREATE INDEX invites_by_user ON invites(user_id, conv_id);
    "#,
    // 16: the search index is written once per committed batch, not inside
    // each job. Migration 9's triggers wrote `message_search` inside every
    // job's savepoint, and FTS5 flushes its pending terms to disk at every
    // savepoint, so each message became a segment of its own; and a
    // trigger gives the statement that fires it a statement journal (a
    // copy of every page it touches). Durable ingest had fallen from 149 k
    // to 15 k messages/s. The store now notes which messages to index
    // (again, when `changed`) with a plain insert beside each write
    // (`search::note`), and the writer applies the notes after the batch's
    // last job, outside any savepoint, in the same transaction
    // (`search::index_pending`), so FTS5 buffers the batch and writes it
    // at the commit.
    r#"
    DROP TRIGGER message_search_add;
    DROP TRIGGER message_search_change;
    CREATE TABLE message_search_pending (
        conv_id INTEGER NOT NULL,
        seq     INTEGER NOT NULL,
        changed INTEGER NOT NULL,
        PRIMARY KEY (conv_id, seq)
    ) WITHOUT ROWID;
    "#,
];

/// The Rust step of each migration, by index.
const BACKFILLS: &[(usize, Backfill)] = &[(2, backfill_skeletons)];

/// Migration 3: the skeleton of every existing name.
fn backfill_skeletons(tx: &Transaction<'_>) -> Result<(), StoreError> {
    let users: Vec<(i64, String)> = {
        let mut st = tx.prepare("SELECT id, name FROM users")?;
        st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<Result<_, _>>()?
    };
    let mut update = tx.prepare("UPDATE users SET name_skeleton = ?1 WHERE id = ?2")?;
    for (id, name) in users {
        let name = Username::parse(name).map_err(|e| StoreError::Corrupt(e.message))?;
        update.execute(rusqlite::params![name_skeleton(&name), id])?;
    }
    Ok(())
}

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
        for (_, backfill) in BACKFILLS.iter().filter(|(at, _)| *at == i) {
            backfill(&tx)?;
        }
        tx.pragma_update(None, "user_version", (i + 1) as i64)?;
        tx.commit()?;
        // A new database runs every migration: not news. Upgrading an old
        // one is.
        if version == 0 {
            tracing::debug!(version = i + 1, "applied database migration");
        } else {
            tracing::info!(version = i + 1, "applied database migration");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A database made by an older version gets every name's skeleton.
    #[test]
    fn migration_3_backfills_skeletons() {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = Connection::open(dir.path().join("old.db")).unwrap();
        let tx = conn.transaction().unwrap();
        for (i, sql) in MIGRATIONS.iter().take(2).enumerate() {
            tx.execute_batch(sql).unwrap();
            tx.pragma_update(None, "user_version", (i + 1) as i64)
                .unwrap();
        }
        tx.commit().unwrap();
        conn.execute_batch(
            "INSERT INTO users (name, name_key, password_hash, created_ms) VALUES
             ('aIice', 'aiice', 'x', 0), ('alice', 'alice', 'x', 0), ('B0b', 'b0b', 'x', 0);",
        )
        .unwrap();
        migrate(&mut conn).unwrap();
        let got: Vec<(String, String)> = conn
            .prepare("SELECT name, name_skeleton FROM users ORDER BY id")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let want = [("aIice", "alice"), ("alice", "alice"), ("B0b", "bob")];
        let want: Vec<(String, String)> = want
            .iter()
            .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
            .collect();
        assert_eq!(got, want);
        let version: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(version, MIGRATIONS.len() as i64);
    }

    /// Markers from before the sending rule lagged their owners' own
    /// messages; migration 4 brings each up to its owner's latest message
    /// and never moves one back.
    #[test]
    fn migration_4_moves_markers_up_to_own_messages() {
        let mut conn = Connection::open_in_memory().unwrap();
        for sql in &MIGRATIONS[..3] {
            conn.execute_batch(sql).unwrap();
        }
        conn.pragma_update(None, "user_version", 3).unwrap();
        conn.execute_batch(
            "INSERT INTO users (id, name, name_key, password_hash, created_ms)
                 VALUES (1, 'a', 'a', 'x', 0), (2, 'b', 'b', 'x', 0);
             INSERT INTO messages (conv_id, seq, sender_id, client_id, time_ms, body) VALUES
                 (1, 1, 1, 'a1', 0, 'x'), (1, 2, 2, 'b1', 0, 'x'),
                 (1, 3, 1, 'a2', 0, 'x'), (1, 4, 2, 'b2', 0, 'x');
             INSERT INTO read_markers (user_id, conv_id, seq) VALUES (1, 1, 1), (2, 1, 4);",
        )
        .unwrap();
        migrate(&mut conn).unwrap();
        let marker = |user: i64| -> i64 {
            conn.query_row(
                "SELECT seq FROM read_markers WHERE user_id = ?1 AND conv_id = 1",
                [user],
                |r| r.get(0),
            )
            .unwrap()
        };
        assert_eq!(marker(1), 3, "up to a's latest own message");
        assert_eq!(marker(2), 4, "b had read further; never back");
    }
}
