//! Messages: appending (numbering, deduplication, read markers), history
//! pages and read markers.
//!
//! How `seq` stays gap-free and the same on every node: an append locks
//! its conversations' rows (`SELECT … FOR UPDATE`, in id order so that two
//! nodes' batches cannot deadlock), numbers its messages from their
//! `last_seq`, inserts them and moves `last_seq` on, all in the writer's
//! transaction. A second node appending to the same conversation waits
//! for the lock until the first commits, then reads the new `last_seq`.
//! The conversation row is the counter; no sequence object (those leave
//! gaps on rollback) and no single writer per conversation is needed.
//!
//! Deduplication across nodes: the unique index on `(sender_id,
//! client_id)`. The same id in the same conversation is caught by the
//! lookup made under the conversation's lock. The same id sent to two
//! different conversations at once on two nodes takes two different locks;
//! the second insert then waits on the index for the first to commit and
//! inserts nothing (`ON CONFLICT DO NOTHING`), and the append starts over
//! from its savepoint, where the lookup now finds the stored message.

use std::collections::{BTreeMap, HashMap};

use chatus_protocol::Seq;
use chatus_protocol::history::Page;

use crate::store::postgres::conn::Conn;
use crate::store::postgres::{events, ms, seq, ts, username};
use crate::store::{Appended, ConvId, Kind, MessageRow, NewMessage, RowKind, StoreError, UserId};

/// Rounds of an append that met a concurrent duplicate before giving up
/// (each round finds at least one more message stored, so two suffice in
/// all but contrived races).
const APPEND_ROUNDS: usize = 8;

pub(crate) async fn append(c: &Conn, batch: &[NewMessage]) -> Result<Vec<Appended>, StoreError> {
    if batch.is_empty() {
        return Ok(Vec::new());
    }
    for _ in 0..APPEND_ROUNDS {
        c.batch("SAVEPOINT append").await?;
        match append_once(c, batch).await? {
            Some(out) => {
                c.batch("RELEASE append").await?;
                return Ok(out);
            }
            None => c.batch("ROLLBACK TO append; RELEASE append").await?,
        }
    }
    Err(StoreError::Failed(
        "an append kept meeting concurrent duplicates".into(),
    ))
}

/// One attempt; `None` when another node stored one of the batch's ids
/// meanwhile (the caller rolls back and tries again).
async fn append_once(c: &Conn, batch: &[NewMessage]) -> Result<Option<Vec<Appended>>, StoreError> {
    let mut convs: Vec<i64> = batch.iter().map(|m| m.conv.0).collect();
    convs.sort_unstable();
    convs.dedup();
    let mut last: HashMap<ConvId, i64> = HashMap::new();
    for r in c
        .query(
            "SELECT id, last_seq FROM conversations WHERE id = ANY($1) ORDER BY id FOR UPDATE",
            &[&convs],
        )
        .await?
    {
        last.insert(ConvId(r.get(0)), r.get(1));
    }
    let senders: Vec<i64> = batch.iter().map(|m| m.sender.0).collect();
    let ids: Vec<&str> = batch.iter().map(|m| m.client_id.as_str()).collect();
    // (sender, client_id) -> (conversation, seq, time) of the stored one.
    let mut known: HashMap<(i64, String), (ConvId, i64, i64)> = HashMap::new();
    for r in c
        .query(
            "SELECT m.sender_id, m.client_id, m.conv_id, m.seq, m.time_ms
             FROM messages m JOIN unnest($1::bigint[], $2::text[]) AS k (sender, cid)
               ON m.sender_id = k.sender AND m.client_id = k.cid",
            &[&senders, &ids],
        )
        .await?
    {
        known.insert((r.get(0), r.get(1)), (ConvId(r.get(2)), r.get(3), r.get(4)));
    }
    let mut out = Vec::with_capacity(batch.len());
    let mut new = NewRows::default();
    let mut inserted = 0;
    // Later messages of a batch have higher seqs: the last one wins.
    let mut spoke: BTreeMap<(UserId, ConvId), i64> = BTreeMap::new();
    for m in batch {
        let key = (m.sender.0, m.client_id.as_str().to_owned());
        if let Some(&(conv, s, t)) = known.get(&key) {
            // The id is unique per sender, not per conversation: the same id
            // elsewhere is another message, which must not be acknowledged
            // as this one.
            out.push(if conv == m.conv {
                Appended::Duplicate {
                    seq: seq(s),
                    time: ts(t),
                }
            } else {
                Appended::ClientIdReused
            });
            continue;
        }
        // A room removed while the message was on its way.
        if !last.contains_key(&m.conv) {
            out.push(Appended::Gone);
            continue;
        }
        // A change (or reply) is checked against its target, which may be
        // among the rows not inserted yet: insert those first.
        let changes = m.kind.target().is_some();
        // A moderation event has no target but an effect to apply.
        let effect = matches!(m.kind, Kind::Moderation(_));
        if changes {
            if !flush(c, &mut new, &mut inserted).await? {
                return Ok(None);
            }
            if let Some(refused) = events::check(c, m).await? {
                out.push(Appended::Refused(refused));
                continue;
            }
        }
        let next = last.get(&m.conv).copied().unwrap_or(0) + 1;
        last.insert(m.conv, next);
        known.insert(key, (m.conv, next, ms(m.time)));
        new.push(m, next);
        spoke.insert((m.sender, m.conv), next);
        out.push(Appended::Stored { seq: seq(next) });
        if changes || effect {
            if !flush(c, &mut new, &mut inserted).await? {
                return Ok(None);
            }
            events::apply(c, m, next).await?;
        }
    }
    if !flush(c, &mut new, &mut inserted).await? {
        return Ok(None);
    }
    if inserted == 0 {
        return Ok(Some(out));
    }
    let (touched, tops): (Vec<i64>, Vec<i64>) = convs
        .iter()
        .filter_map(|id| last.get(&ConvId(*id)).map(|top| (*id, *top)))
        .unzip();
    c.exec(
        "UPDATE conversations AS c SET last_seq = v.top
         FROM unnest($1::bigint[], $2::bigint[]) AS v (id, top)
         WHERE c.id = v.id AND c.last_seq <> v.top",
        &[&touched, &tops],
    )
    .await?;
    // Sending implies having read what came before: each sender's marker
    // moves to their latest message (in key order, like every writer).
    let mut users = Vec::with_capacity(spoke.len());
    let mut marker_convs = Vec::with_capacity(spoke.len());
    let mut seqs = Vec::with_capacity(spoke.len());
    for ((u, conv), s) in spoke {
        users.push(u.0);
        marker_convs.push(conv.0);
        seqs.push(s);
    }
    c.exec(
        "INSERT INTO read_markers (user_id, conv_id, seq)
         SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::bigint[])
         ON CONFLICT (user_id, conv_id) DO UPDATE SET seq = GREATEST(read_markers.seq, excluded.seq)",
        &[&users, &marker_convs, &seqs],
    )
    .await?;
    Ok(Some(out))
}

/// Inserts the rows gathered so far (and forgets them); false when another
/// node stored one of their ids meanwhile (the caller starts over).
async fn flush(c: &Conn, new: &mut NewRows<'_>, inserted: &mut usize) -> Result<bool, StoreError> {
    if new.conv.is_empty() {
        return Ok(true);
    }
    let stored = c
        .exec(
            "INSERT INTO messages (conv_id, seq, sender_id, client_id, time_ms, body, file_id,
                                   kind, target, reply_to)
             SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::text[],
                                  $5::bigint[], $6::text[], $7::text[], $8::smallint[],
                                  $9::bigint[], $10::bigint[])
             ON CONFLICT (sender_id, client_id) DO NOTHING",
            &[
                &new.conv,
                &new.seq,
                &new.sender,
                &new.client_id,
                &new.time,
                &new.body,
                &new.file,
                &new.kind,
                &new.target,
                &new.reply_to,
            ],
        )
        .await?;
    if stored != new.conv.len() as u64 {
        return Ok(false);
    }
    *inserted += new.conv.len();
    *new = NewRows::default();
    Ok(true)
}

/// The new rows of a batch, column by column (sent as arrays: one
/// statement inserts them all).
#[derive(Default)]
struct NewRows<'a> {
    conv: Vec<i64>,
    seq: Vec<i64>,
    sender: Vec<i64>,
    client_id: Vec<&'a str>,
    time: Vec<i64>,
    body: Vec<&'a str>,
    file: Vec<Option<&'a str>>,
    kind: Vec<i16>,
    target: Vec<Option<i64>>,
    reply_to: Vec<Option<i64>>,
}

impl<'a> NewRows<'a> {
    fn push(&mut self, m: &'a NewMessage, seq: i64) {
        self.conv.push(m.conv.0);
        self.seq.push(seq);
        self.sender.push(m.sender.0);
        self.client_id.push(m.client_id.as_str());
        self.time.push(ms(m.time));
        self.body.push(match m.kind {
            Kind::Delete { .. } => "",
            _ => m.body.as_str(),
        });
        self.file.push(m.file.as_ref().map(|f| f.as_str()));
        self.kind.push(i16::try_from(m.kind.code()).unwrap_or(0));
        let (target, reply_to) = match m.kind {
            Kind::Message { reply_to } => (None, reply_to),
            k => (k.target(), None),
        };
        self.target.push(target.map(events::sql_seq));
        self.reply_to.push(reply_to.map(events::sql_seq));
    }
}

/// The columns of a history row (see SQLite's `HISTORY_SELECT`).
macro_rules! history_select {
    () => {
        "SELECT m.seq, u.name, m.body, m.time_ms,
            f.id, f.name, f.length, f.media_type, f.sha256,
            m.kind::BIGINT, m.target, m.reply_to, m.edited, m.deleted, t.body, qu.name, qt.body
         FROM messages m JOIN users u ON u.id = m.sender_id LEFT JOIN uploads f ON f.id = m.file_id
         LEFT JOIN message_text t ON t.conv_id = m.conv_id AND t.seq = m.seq
         LEFT JOIN messages q ON q.conv_id = m.conv_id AND q.seq = m.reply_to
         LEFT JOIN users qu ON qu.id = q.sender_id
         LEFT JOIN message_text qt ON qt.conv_id = m.conv_id AND qt.seq = m.reply_to"
    };
}

pub(crate) async fn history(
    c: &Conn,
    conv: ConvId,
    page: Page,
    limit: u32,
) -> Result<(Vec<MessageRow>, bool), StoreError> {
    let fetch = i64::from(limit) + 1;
    const OLDER: &str = concat!(
        history_select!(),
        " WHERE m.conv_id = $1 AND m.seq < $2 ORDER BY m.seq DESC LIMIT $3"
    );
    const NEWER: &str = concat!(
        history_select!(),
        " WHERE m.conv_id = $1 AND m.seq > $2 ORDER BY m.seq ASC LIMIT $3"
    );
    let bound = |s: Seq| i64::try_from(s.0).unwrap_or(i64::MAX);
    let (sql, bound) = match page {
        Page::Latest => (OLDER, i64::MAX),
        Page::Before(s) => (OLDER, bound(s)),
        Page::After(s) => (NEWER, bound(s)),
    };
    let mut out = Vec::new();
    for r in c.query(sql, &[&conv.0, &bound, &fetch]).await? {
        out.push(history_row(&r)?);
    }
    let more = out.len() > limit as usize;
    out.truncate(limit as usize);
    if !matches!(page, Page::After(_)) {
        out.reverse();
    }
    Ok((out, more))
}

pub(crate) async fn read_markers(
    c: &Conn,
    user: UserId,
    convs: &[ConvId],
) -> Result<Vec<Seq>, StoreError> {
    let ids: Vec<i64> = convs.iter().map(|c| c.0).collect();
    let found: HashMap<i64, i64> = c
        .query(
            "SELECT conv_id, seq FROM read_markers WHERE user_id = $1 AND conv_id = ANY($2)",
            &[&user.0, &ids],
        )
        .await?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    Ok(ids
        .iter()
        .map(|id| seq(found.get(id).copied().unwrap_or(0)))
        .collect())
}

/// Moves the read marker, and with `shown` the public one; true when the
/// public marker moved (the update's row lock orders concurrent marks of
/// one user from several nodes).
pub(crate) async fn mark_read(
    c: &Conn,
    user: UserId,
    conv: ConvId,
    s: Seq,
    shown: bool,
) -> Result<bool, StoreError> {
    let s = i64::try_from(s.0).unwrap_or(i64::MAX);
    c.exec(
        "INSERT INTO read_markers (user_id, conv_id, seq) VALUES ($1, $2, $3)
         ON CONFLICT (user_id, conv_id) DO UPDATE SET seq = GREATEST(read_markers.seq, excluded.seq)",
        &[&user.0, &conv.0, &s],
    )
    .await?;
    if !shown {
        return Ok(false);
    }
    let moved = c
        .exec(
            "UPDATE read_markers SET shown_seq = $3
             WHERE user_id = $1 AND conv_id = $2 AND shown_seq < $3",
            &[&user.0, &conv.0, &s],
        )
        .await?;
    Ok(moved > 0)
}

/// The public read markers of `conv`, furthest first.
pub(crate) async fn receipts(
    c: &Conn,
    conv: ConvId,
    limit: usize,
) -> Result<Vec<(UserId, Seq)>, StoreError> {
    let rows = c
        .query(
            "SELECT user_id, shown_seq FROM read_markers
             WHERE conv_id = $1 AND shown_seq > 0 ORDER BY shown_seq DESC, user_id LIMIT $2",
            &[&conv.0, &i64::try_from(limit).unwrap_or(i64::MAX)],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| (UserId(r.get(0)), seq(r.get(1))))
        .collect())
}

/// Reads a row selected by `history_select!`.
fn history_row(r: &tokio_postgres::Row) -> Result<MessageRow, StoreError> {
    let kind: i64 = r.get(9);
    let target = seq(r.get::<_, Option<i64>>(10).unwrap_or(0));
    let (row_kind, body) = match kind {
        0 => {
            let reply_to: Option<i64> = r.get(11);
            let quoted: Option<String> = r.get(15);
            let edited: Option<i64> = r.get(12);
            let deleted: Option<i64> = r.get(13);
            (
                RowKind::Message {
                    reply_to: match (reply_to, quoted) {
                        (Some(q), Some(name)) => {
                            Some((seq(q), username(name)?, events::body(r.get(16))?))
                        }
                        _ => None,
                    },
                    edited: edited.map(seq),
                    deleted: deleted.map(seq),
                },
                events::body(r.get(14))?,
            )
        }
        1 => (RowKind::Edit { target }, events::body(r.get(2))?),
        2 => (RowKind::Delete { target }, None),
        3 | 4 => (
            RowKind::React {
                target,
                on: kind == 3,
            },
            events::body(r.get(2))?,
        ),
        crate::store::moderation::KIND_CODE => {
            let raw: String = r.get(2);
            (
                RowKind::Moderation(crate::store::moderation::action(&raw)?),
                // Kept so that a page's byte budget counts the action.
                events::body(Some(raw))?,
            )
        }
        k => return Err(StoreError::Corrupt(format!("unknown message kind {k}"))),
    };
    Ok(MessageRow {
        seq: seq(r.get(0)),
        sender: username(r.get(1))?,
        body,
        time: ts(r.get(3)),
        file: super::files::file_at(r, 4)?,
        kind: row_kind,
    })
}

/// A room's moderation events, newest first (see `Store::audit_log`).
pub(crate) async fn audit_log(
    c: &Conn,
    conv: ConvId,
    before: Option<Seq>,
    limit: u32,
) -> Result<(Vec<MessageRow>, bool), StoreError> {
    const SQL: &str = concat!(
        history_select!(),
        " WHERE m.conv_id = $1 AND m.kind = 5 AND m.seq < $2 ORDER BY m.seq DESC LIMIT $3"
    );
    let bound = before.map_or(i64::MAX, |s| i64::try_from(s.0).unwrap_or(i64::MAX));
    let mut out = Vec::new();
    for r in c
        .query(SQL, &[&conv.0, &bound, &(i64::from(limit) + 1)])
        .await?
    {
        out.push(history_row(&r)?);
    }
    let more = out.len() > limit as usize;
    out.truncate(limit as usize);
    Ok((out, more))
}
