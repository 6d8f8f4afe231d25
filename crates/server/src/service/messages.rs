//! Messages: the sequencer, fan-out, history and read markers.
//!
//! One message's path: a handler checks it and submits a [`SendJob`]; the
//! sequencer task takes every job waiting (up to 1024) and appends them to
//! the store in one durable transaction, which numbers them; the fan-out
//! task then, in that same order, encodes each message once, pushes the
//! frame to every recipient's outbox, and pushes `sent` to the sender's
//! connection. Because one task appends and one task fans out, every member
//! receives a room's messages in `seq` order, and nothing is acknowledged
//! before it is committed. Both channels are bounded: a stalled fan-out
//! holds the sequencer back (a few committed batches may wait for it),
//! whose full queue then makes senders wait.
//!
//! In cluster mode (`--bus`) the fan-out delivers through the bus's ordered
//! path instead (`crate::bus::follow`), which interleaves this node's
//! messages with other nodes' in seq order, filling gaps from the store,
//! and then publishes each stored message once; acknowledgements follow as
//! here. A single node has no bus and takes the path above unchanged.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use chatus_protocol::history::ConversationInfo;
use chatus_protocol::message::Sent;
use chatus_protocol::{
    ClientMsgId, Conversation, ErrorCode, ErrorReply, RequestId, RoomName, Seq, ServerMessage,
    Username,
};
use tokio::sync::{Notify, mpsc, oneshot};

use crate::error::ApiError;
use crate::hub::{ConnHandle, Hub};
use crate::service::budget::escaped_len;
use crate::service::presence::Announcer;
use crate::service::users::find_user;
use crate::store::{Appended, ConvId, NewMessage, Store, StoreError, User, UserId};
use crate::ws::encode;

/// Most jobs appended in one transaction.
const MAX_BATCH: usize = 1024;
/// Slack for JSON and framing around each body when budgeting bytes.
const PER_MESSAGE_OVERHEAD: usize = 160;
/// Jobs that may wait for the sequencer before senders wait too.
const QUEUE: usize = 16 * 1024;
/// Committed batches that may wait for the fan-out before the sequencer
/// waits too. A few keep both tasks busy (one appends while the other
/// delivers); a stalled fan-out then stops the sequencer, whose queue
/// fills and makes senders wait, instead of committed batches piling up
/// in memory.
const FAN_OUT_QUEUE: usize = 4;

/// The bytes a message with this body takes on the wire, budgeted: the
/// body as JSON escapes it (up to six times its UTF-8 length) plus the
/// fixed overhead.
fn wire_len(body: &chatus_protocol::Body) -> usize {
    escaped_len(body.as_str()) + PER_MESSAGE_OVERHEAD
}

/// [`wire_len`] for a history row, whose text may be gone (and whose
/// reply quote adds up to an excerpt).
fn row_len(row: &crate::store::MessageRow) -> usize {
    let quote = match &row.kind {
        crate::store::RowKind::Message {
            reply_to: Some(_), ..
        } => PER_MESSAGE_OVERHEAD + 6 * chatus_protocol::event::MAX_EXCERPT_CHARS,
        _ => 0,
    };
    row.body.as_ref().map_or(0, |b| escaped_len(b.as_str())) + PER_MESSAGE_OVERHEAD + quote
}

/// Where a message goes, resolved by the handler.
#[derive(Debug, Clone)]
pub(crate) enum Target {
    /// A room.
    Room(RoomName),
    /// A direct conversation between two users (the same one twice for a
    /// note to oneself).
    Dm {
        /// The sender.
        from: User,
        /// The recipient.
        to: User,
    },
}

/// One accepted `send`, waiting to be stored and delivered.
#[derive(Debug)]
pub(crate) struct SendJob {
    /// What to store.
    pub(crate) msg: NewMessage,
    /// Where it goes.
    pub(crate) target: Target,
    /// The sender's name.
    pub(crate) sender: Username,
    /// The file it shares, as its `message` event shows it.
    pub(crate) file: Option<chatus_protocol::FileInfo>,
    /// The message it answers, as its `message` event quotes it.
    pub(crate) quote: Option<chatus_protocol::event::Quote>,
    /// A reaction's emoji, for its `reacted` event.
    pub(crate) emoji: Option<chatus_protocol::Emoji>,
    /// The connection that sent it, for the `sent` reply.
    pub(crate) reply_to: Arc<ConnHandle>,
    /// The request's id.
    pub(crate) id: Option<RequestId>,
}

type Committed = (Vec<SendJob>, Result<Vec<Appended>, StoreError>);

/// Handle to the sequencer and fan-out tasks.
pub(crate) struct Messages {
    tx: mpsc::Sender<SendJob>,
    drain: Arc<Notify>,
    done: Mutex<Option<oneshot::Receiver<()>>>,
}

impl Messages {
    /// Starts the sequencer and fan-out tasks. One batch carries at most
    /// `batch_bytes` of messages, so that one fan-out round never pushes
    /// more than that into any connection's outbox.
    pub(crate) fn start(
        store: Arc<dyn Store>,
        hub: Arc<Hub>,
        batch_bytes: usize,
        metrics: Arc<crate::metrics::Metrics>,
        announcer: Arc<Announcer>,
        bus: Option<Arc<crate::bus::Bus>>,
    ) -> Self {
        let (tx, rx) = mpsc::channel(QUEUE);
        let (committed_tx, committed_rx) = mpsc::channel(FAN_OUT_QUEUE);
        let (done_tx, done_rx) = oneshot::channel();
        let drain = Arc::new(Notify::new());
        tokio::spawn(sequencer(
            rx,
            store,
            committed_tx,
            drain.clone(),
            batch_bytes,
            metrics,
        ));
        tokio::spawn(async move {
            fan_out(committed_rx, hub, announcer, bus).await;
            let _ = done_tx.send(());
        });
        Self {
            tx,
            drain,
            done: Mutex::new(Some(done_rx)),
        }
    }

    /// Queues a job; waits only when the sequencer is far behind.
    pub(crate) async fn submit(&self, job: SendJob) -> Result<(), ApiError> {
        self.tx.send(job).await.map_err(|_| {
            ApiError::reject(
                ErrorCode::ShuttingDown,
                "The server is shutting down; resend later.",
            )
        })
    }

    /// Stops taking jobs, finishes the queued ones (stored, delivered and
    /// acknowledged), and returns when all is done.
    pub(crate) async fn drain(&self) {
        self.drain.notify_one();
        let done = self.done.lock().ok().and_then(|mut d| d.take());
        if let Some(done) = done {
            let _ = done.await;
        }
    }
}

async fn sequencer(
    mut rx: mpsc::Receiver<SendJob>,
    store: Arc<dyn Store>,
    committed: mpsc::Sender<Committed>,
    drain: Arc<Notify>,
    batch_bytes: usize,
    metrics: Arc<crate::metrics::Metrics>,
) {
    let mut draining = false;
    loop {
        let first = tokio::select! {
            biased;
            job = rx.recv() => match job {
                Some(job) => job,
                None => break,
            },
            () = drain.notified(), if !draining => {
                // New sends now fail; those already queued are still served.
                draining = true;
                rx.close();
                continue;
            }
        };
        let jobs = take_batch(first, &mut rx, batch_bytes);
        let batch: Vec<NewMessage> = jobs.iter().map(|j| j.msg.clone()).collect();
        let (size, started) = (batch.len(), std::time::Instant::now());
        let result = store.append(batch).await;
        let stored = result.as_ref().ok().map(|outcomes| {
            outcomes
                .iter()
                .filter(|o| matches!(o, Appended::Stored { .. }))
                .count()
        });
        metrics.committed(started.elapsed(), size, stored);
        if committed.send((jobs, result)).await.is_err() {
            break;
        }
    }
}

/// One batch: `first` and the jobs waiting behind it, up to [`MAX_BATCH`]
/// jobs and about `batch_bytes` on the wire (it closes once the budget is
/// reached, so it may pass it by one message).
fn take_batch(
    first: SendJob,
    rx: &mut mpsc::Receiver<SendJob>,
    batch_bytes: usize,
) -> Vec<SendJob> {
    let mut bytes = wire_len(&first.msg.body);
    let mut jobs = vec![first];
    while jobs.len() < MAX_BATCH && bytes < batch_bytes {
        match rx.try_recv() {
            Ok(job) => {
                bytes += wire_len(&job.msg.body);
                jobs.push(job);
            }
            Err(_) => break,
        }
    }
    jobs
}

async fn fan_out(
    mut rx: mpsc::Receiver<Committed>,
    hub: Arc<Hub>,
    announcer: Arc<Announcer>,
    bus: Option<Arc<crate::bus::Bus>>,
) {
    while let Some((jobs, result)) = rx.recv().await {
        match result {
            Ok(outcomes) => {
                // A sender's arrival is announced before their message.
                let senders: HashSet<UserId> = jobs.iter().map(|j| j.msg.sender).collect();
                if hub.arrival_pending(&senders) {
                    announcer.flush(&hub);
                }
                match &bus {
                    None => deliver_batch(&hub, &jobs, &outcomes, true),
                    Some(bus) => {
                        // Cluster mode: delivered in seq order with what
                        // other nodes stored (gaps filled from the store),
                        // then published once each; then the acks.
                        let stored = stored_events(&jobs, &outcomes);
                        for (conv, events) in by_conversation(&stored) {
                            bus.deliver(conv, events).await;
                        }
                        bus.publish_messages(&stored);
                        deliver_batch(&hub, &jobs, &outcomes, false);
                    }
                }
            }
            Err(e) => {
                let unreachable = matches!(e, StoreError::Unavailable(_));
                if unreachable {
                    tracing::warn!(cause = %e, messages = jobs.len(), "storing messages failed");
                } else {
                    tracing::error!(cause = ?e, messages = jobs.len(), "storing messages failed");
                }
                for job in jobs {
                    let reply = if unreachable {
                        crate::error::unavailable(job.id)
                    } else {
                        ErrorReply::new(
                            job.id,
                            ErrorCode::Internal,
                            "The message could not be stored; send it again.",
                        )
                    };
                    job.reply_to
                        .outbox
                        .push(encode(&ServerMessage::Error(reply)));
                }
            }
        }
    }
}

/// The messages of a batch that were stored now, as the bus carries them.
fn stored_events(jobs: &[SendJob], outcomes: &[Appended]) -> Vec<crate::bus::wire::MessageEvent> {
    jobs.iter()
        .zip(outcomes)
        .filter_map(|(job, outcome)| match *outcome {
            Appended::Stored { seq } => {
                // The conversation is a placeholder: each node sets it per
                // recipient (`Item::for_conv`).
                let placeholder = Conversation::Peer(job.sender.clone());
                let event = crate::service::events::event(job, placeholder, seq, job.msg.time)?;
                Some(crate::bus::wire::MessageEvent {
                    conv: job.msg.conv.0,
                    seq,
                    item: crate::bus::wire::Item::from_event(event)?,
                })
            }
            _ => None,
        })
        .collect()
}

/// Stored messages grouped by conversation, in order of first appearance
/// (a batch numbers each conversation's messages consecutively).
fn by_conversation(
    events: &[crate::bus::wire::MessageEvent],
) -> Vec<(ConvId, Vec<crate::bus::wire::MessageEvent>)> {
    let mut out: Vec<(ConvId, Vec<crate::bus::wire::MessageEvent>)> = Vec::new();
    for e in events {
        match out.iter_mut().find(|(c, _)| c.0 == e.conv) {
            Some((_, v)) => v.push(e.clone()),
            None => out.push((ConvId(e.conv), vec![e.clone()])),
        }
    }
    out
}

/// Delivers one committed batch. Each room's new messages go to each
/// member connection in one push (the writer then sends them in one
/// system call); direct messages go to their two parties; then every
/// sender gets its `sent`, after the message event it confirms. With
/// `deliver` false (cluster mode, where the bus delivered them) only the
/// acknowledgements go out.
fn deliver_batch(hub: &Arc<Hub>, jobs: &[SendJob], outcomes: &[Appended], deliver: bool) {
    // Rooms in order of first appearance, with their frames in seq order.
    let mut rooms: Vec<(ConvId, Seq, Vec<Bytes>)> = Vec::new();
    // Each with whether it answers a moderation action stored now.
    let mut acks: Vec<(&Arc<ConnHandle>, Bytes, bool)> = Vec::with_capacity(jobs.len());
    // Moderation events stored now, applied once delivered.
    let mut moderation: Vec<&SendJob> = Vec::new();
    for (job, outcome) in jobs.iter().zip(outcomes) {
        let (seq, time, duplicate) = match *outcome {
            Appended::Stored { seq } => {
                if matches!(job.msg.kind, crate::store::Kind::Moderation(_)) {
                    moderation.push(job);
                }
                (seq, job.msg.time, false)
            }
            Appended::Duplicate { seq, time } => (seq, time, true),
            Appended::Refused(r) => {
                let target = job.msg.kind.target().unwrap_or_default();
                let reply = crate::service::events::refused(r, target).into_reply(job.id);
                acks.push((&job.reply_to, encode(&ServerMessage::Error(reply)), false));
                continue;
            }
            Appended::Gone => {
                let reply = ErrorReply::new(
                    job.id,
                    ErrorCode::UnknownRoom,
                    match &job.target {
                        Target::Room(name) => format!("The room {name} was removed."),
                        _ => "This conversation no longer exists.".to_owned(),
                    },
                );
                acks.push((&job.reply_to, encode(&ServerMessage::Error(reply)), false));
                continue;
            }
            Appended::ClientIdReused => {
                let reply = ErrorReply::new(
                    job.id,
                    ErrorCode::InvalidClientId,
                    format!(
                        "The client_id {} was already used for another conversation; \
                         nothing was stored. Use a new client_id for each message.",
                        job.msg.client_id.as_str()
                    ),
                );
                acks.push((&job.reply_to, encode(&ServerMessage::Error(reply)), false));
                continue;
            }
        };
        // A job always has its event (see `events::event`); were one
        // missing, its frame is left out rather than made up, and the
        // client's cursor passes the gap.
        let event = |conv: Conversation| {
            let m = crate::service::events::event(job, conv, seq, time);
            if m.is_none() {
                tracing::error!(seq = seq.0, "a stored change had no event");
            }
            m.map(|m| encode(&m))
        };
        let ack_conv = match &job.target {
            Target::Room(name) => {
                if !duplicate
                    && deliver
                    && let Some(frame) = event(Conversation::Room(name.clone()))
                {
                    match rooms.iter_mut().find(|(c, _, _)| *c == job.msg.conv) {
                        Some((_, last, frames)) => {
                            *last = seq;
                            frames.push(frame);
                        }
                        None => rooms.push((job.msg.conv, seq, vec![frame])),
                    }
                }
                Conversation::Room(name.clone())
            }
            Target::Dm { from, to } => {
                // Each side sees the other as the peer.
                if !duplicate
                    && deliver
                    && let Some(for_sender) = event(Conversation::Peer(to.name.clone()))
                    && let Some(for_recipient) = if from.id == to.id {
                        Some(for_sender.clone())
                    } else {
                        event(Conversation::Peer(from.name.clone()))
                    }
                {
                    hub.deliver_dm(
                        job.msg.conv,
                        seq,
                        (from.id, &for_sender),
                        (to.id, &for_recipient),
                    );
                }
                Conversation::Peer(to.name.clone())
            }
        };
        let sent = ServerMessage::Sent(Sent {
            id: job.id,
            conv: ack_conv,
            client_id: job.msg.client_id.clone(),
            seq,
            time,
            duplicate,
        });
        let moderated = !duplicate && matches!(job.msg.kind, crate::store::Kind::Moderation(_));
        acks.push((&job.reply_to, encode(&sent), moderated));
    }
    for (conv, last, frames) in &rooms {
        hub.deliver_room_frames(*conv, *last, frames);
    }
    // After delivery, so that a kicked or banned member got the event;
    // before the acknowledgements, so that the actor sees the effect once
    // answered.
    // Cluster mode: a moderation action told the other nodes is answered
    // once they applied it (`bus/settle.rs`), on a task of its own so the
    // writer never waits; the batch's other acknowledgements go at once.
    let mut settle_from = None;
    if !moderation.is_empty() {
        let told = hub.told();
        for job in &moderation {
            crate::service::moderation::applied(hub, job);
        }
        settle_from = (hub.told() != told).then_some(told);
    }
    let mut later = Vec::new();
    for (conn, frame, moderated) in acks {
        if moderated && settle_from.is_some() {
            later.push((conn.clone(), frame));
        } else {
            conn.outbox.push(frame);
        }
    }
    if let Some(told) = settle_from {
        let hub = hub.clone();
        tokio::spawn(async move {
            hub.settled_since(told).await;
            for (conn, frame) in later {
                conn.outbox.push(frame);
            }
        });
    }
}

/// Resolves a conversation for `user`: the room (which they must be in) or
/// the direct conversation with a peer (which may not exist yet: `None`).
/// Also returns the conversation as replies name it: a peer in their
/// registered spelling, whatever case the client typed.
pub(crate) async fn resolve(
    hub: &Hub,
    store: &dyn Store,
    user: UserId,
    conv: &Conversation,
) -> Result<(Conversation, Option<(ConvId, Seq)>), ApiError> {
    match conv {
        Conversation::Room(name) => {
            let room = hub
                .room(name, user)
                .filter(|r| !hub.moderation().is_banned(r.id, user))
                .ok_or_else(|| ApiError::unknown_room(name))?;
            if !room.joined {
                if room.visibility == chatus_protocol::Visibility::Private && !room.invited {
                    return Err(ApiError::unknown_room(name));
                }
                return Err(ApiError::reject(
                    ErrorCode::NotMember,
                    format!("You are not a member of {name}; join it first."),
                ));
            }
            Ok((conv.clone(), Some((room.id, room.last_seq))))
        }
        Conversation::Peer(peer) => {
            let found = find_user(hub, store, peer)
                .await?
                .ok_or_else(|| ApiError::unknown_user(peer))?;
            Ok((Conversation::Peer(found.name), hub.dm(user, found.id)))
        }
    }
}

/// Builds the job for a `send` from `user` (already checked: body limits,
/// rate limit, and the file is a finished upload of theirs), opening a
/// direct conversation when needed (encrypted when `encrypt`, the body
/// being a ciphertext). An encrypted conversation takes only ciphertexts
/// (`encryption_required`), a clear one only bodies (`not_encrypted`).
#[expect(
    clippy::too_many_arguments,
    reason = "each argument is a distinct part of the send"
)]
pub(crate) async fn prepare_send(
    hub: &Hub,
    store: &dyn Store,
    user: User,
    to: &Conversation,
    body: chatus_protocol::Body,
    encrypt: bool,
    client_id: ClientMsgId,
    file: Option<chatus_protocol::FileInfo>,
    reply_to: Arc<ConnHandle>,
    id: Option<RequestId>,
) -> Result<SendJob, ApiError> {
    let time = crate::service::accounts::now();
    let (conv, target) = match to {
        Conversation::Room(name) => {
            let (conv, _) = resolve(hub, store, user.id, to)
                .await?
                .1
                .ok_or_else(|| ApiError::unknown_room(name))?;
            crate::service::moderation::check_not_muted_fresh(hub, store, conv, name, user.id)
                .await?;
            (conv, Target::Room(name.clone()))
        }
        Conversation::Peer(peer) => {
            let found = find_user(hub, store, peer)
                .await?
                .ok_or_else(|| ApiError::unknown_user(peer))?;
            // A direct conversation is encrypted when its first message
            // is a ciphertext (a client that encrypts sends one from the
            // start); one begun in plaintext stays so.
            let conv = match hub.dm(user.id, found.id) {
                Some((conv, _)) => conv,
                None => {
                    let (row, encrypted) = store
                        .open_dm_encrypted(user.id, found.id, time, encrypt)
                        .await?;
                    if encrypted {
                        hub.set_encrypted(row.id);
                    }
                    hub.add_dm(&row);
                    hub.tell(|| crate::bus::wire::DirChange::Dm {
                        id: row.id.0,
                        a: row.users.0.0,
                        b: row.users.1.0,
                    });
                    row.id
                }
            };
            (
                conv,
                Target::Dm {
                    from: user.clone(),
                    to: found,
                },
            )
        }
    };
    check_encryption(hub, conv, encrypt)?;
    if let Some(f) = &file {
        check_file_encryption(hub, conv, f)?;
    }
    Ok(SendJob {
        msg: NewMessage {
            conv,
            sender: user.id,
            client_id,
            body,
            time,
            file: file.as_ref().map(|f| f.id.clone()),
            kind: crate::store::Kind::Message { reply_to: None },
        },
        target,
        sender: user.name,
        file,
        quote: None,
        emoji: None,
        reply_to,
        id,
    })
}

/// The rule for a file a `send` shares: an end-to-end encrypted
/// conversation takes only files encrypted on the sender's device
/// (uploaded as [`MediaType::ENCRYPTED`](chatus_protocol::MediaType::ENCRYPTED):
/// `encryption_required`), so a client that does not encrypt files cannot
/// put one there in clear; a clear one never takes them (`not_encrypted`),
/// since its members would get no key.
pub(crate) fn check_file_encryption(
    hub: &Hub,
    conv: ConvId,
    file: &chatus_protocol::FileInfo,
) -> Result<(), ApiError> {
    match (hub.is_encrypted(conv), file.is_encrypted()) {
        (true, false) => Err(ApiError::reject(
            ErrorCode::EncryptionRequired,
            "This conversation is end-to-end encrypted: share a file encrypted on your device, \
             uploaded as application/vnd.chatus.encrypted.",
        )),
        (false, true) => Err(ApiError::reject(
            ErrorCode::NotEncrypted,
            "This conversation is not end-to-end encrypted: an encrypted file's members would \
             have no key; share the file in clear.",
        )),
        _ => Ok(()),
    }
}

/// The rule `send` and `edit` share: an end-to-end encrypted conversation
/// takes only ciphertexts (`encryption_required`), a clear one only bodies
/// (`not_encrypted`).
pub(crate) fn check_encryption(hub: &Hub, conv: ConvId, encrypt: bool) -> Result<(), ApiError> {
    match (hub.is_encrypted(conv), encrypt) {
        (true, false) => Err(ApiError::reject(
            ErrorCode::EncryptionRequired,
            "This conversation is end-to-end encrypted: send a ciphertext, not a body.",
        )),
        (false, true) => Err(ApiError::reject(
            ErrorCode::NotEncrypted,
            "This conversation is not end-to-end encrypted: send a body, not a ciphertext.",
        )),
        _ => Ok(()),
    }
}

/// `conversations`: the rooms `user` is in and their direct conversations
/// with messages, with read state. O(conversations): latest seqs come from
/// the hub and read markers by key from the store; since sending moves the
/// sender's own marker, every message after the marker is someone else's
/// and `unread` is the difference, with nothing to count.
pub(crate) async fn conversations(
    hub: &Hub,
    store: &dyn Store,
    user: UserId,
) -> Result<Vec<ConversationInfo>, ApiError> {
    let rooms = hub.rooms_of(user);
    let dms = hub.dms_of(user);
    let ids: Vec<ConvId> = rooms
        .iter()
        .map(|r| r.0)
        .chain(dms.iter().map(|d| d.0))
        .collect();
    let markers = store.read_markers(user, ids).await?;
    let convs = rooms
        .into_iter()
        .map(|(id, name, last)| (id, Conversation::Room(name), last))
        .chain(
            dms.into_iter()
                .map(|(id, peer, last)| (id, Conversation::Peer(peer), last)),
        );
    Ok(convs
        .zip(markers)
        .map(|((id, conv, last_seq), read)| {
            // A message is committed (and the sender's marker moved) a moment
            // before the hub learns its seq: never report a marker ahead of
            // the latest message.
            let read_seq = read.min(last_seq);
            ConversationInfo {
                conv,
                last_seq,
                read_seq,
                unread: last_seq.0 - read_seq.0,
                encrypted: hub.is_encrypted(id),
            }
        })
        .collect())
}

/// Trims a history page (oldest first) to `budget` bytes on the wire
/// (bodies as JSON escapes them, plus overhead), so a reply always fits in
/// the asker's outbox. Keeps at least one message.
/// Paging backwards drops the oldest; paging forwards drops the newest.
/// Returns whether anything was dropped.
pub(crate) fn fit_page(
    rows: &mut Vec<crate::store::MessageRow>,
    forwards: bool,
    budget: usize,
) -> bool {
    let mut total = 0;
    let mut keep = 0;
    let order: Box<dyn Iterator<Item = &crate::store::MessageRow>> = if forwards {
        Box::new(rows.iter())
    } else {
        Box::new(rows.iter().rev())
    };
    for r in order {
        total += row_len(r);
        if keep > 0 && total > budget {
            break;
        }
        keep += 1;
    }
    if keep == rows.len() {
        return false;
    }
    if forwards {
        rows.truncate(keep);
    } else {
        rows.drain(..rows.len() - keep);
    }
    true
}

/// Clamps a requested page size to the server's maximum.
pub(crate) fn page_limit(asked: Option<u32>, max: u32) -> Result<u32, ApiError> {
    match asked {
        None => Ok(50.min(max)),
        Some(0) => Err(ApiError::reject(
            ErrorCode::InvalidMessage,
            "The limit must be at least 1.",
        )),
        Some(n) => Ok(n.min(max)),
    }
}

#[cfg(test)]
mod tests {
    use chatus_protocol::{Body, Seq, Timestamp, Username};

    use super::*;
    use crate::store::MessageRow;

    fn rows(n: u64, size: usize) -> Vec<MessageRow> {
        rows_of(n, &"x".repeat(size))
    }

    fn rows_of(n: u64, body: &str) -> Vec<MessageRow> {
        (1..=n)
            .map(|i| MessageRow {
                seq: Seq(i),
                sender: Username::parse("a").unwrap(),
                body: Some(Body::parse(body).unwrap()),
                time: Timestamp(0),
                file: None,
                kind: crate::store::RowKind::Message {
                    reply_to: None,
                    edited: None,
                    deleted: None,
                },
            })
            .collect()
    }

    fn job(body: &Body, conn: &Arc<ConnHandle>) -> SendJob {
        SendJob {
            msg: NewMessage {
                conv: ConvId(1),
                sender: UserId(1),
                client_id: ClientMsgId::parse("c").unwrap(),
                body: body.clone(),
                time: Timestamp(0),
                file: None,
                kind: crate::store::Kind::Message { reply_to: None },
            },
            target: Target::Room(RoomName::lobby()),
            sender: Username::parse("a").unwrap(),
            file: None,
            quote: None,
            emoji: None,
            reply_to: conn.clone(),
            id: None,
        }
    }

    /// A fan-out round was budgeted by UTF-8 length too: sends of control
    /// characters queued behind a busy store left as one batch of 1.5
    /// times the outbox cap, pushed into every member's outbox at once, so
    /// every member was closed as lagging however fast it read.
    #[test]
    fn batches_are_budgeted_by_their_escaped_length() {
        let conn = Arc::new(ConnHandle::new(
            crate::hub::ConnId(1),
            "127.0.0.1:1".parse().unwrap(),
            1 << 20,
            0,
        ));
        let body = Body::parse("\u{1}".repeat(16 * 1024)).unwrap();
        let wire = 6 * 16 * 1024 + PER_MESSAGE_OVERHEAD;
        let (tx, mut rx) = mpsc::channel(64);
        for _ in 0..20 {
            tx.try_send(job(&body, &conn)).unwrap();
        }
        let budget = 128 * 1024;
        let first = rx.try_recv().unwrap();
        let batch = take_batch(first, &mut rx, budget);
        assert_eq!(batch.len(), 2, "the budget, passed by at most one message");
        assert!(batch.len() * wire < budget + wire);
        // Plain bodies of the same length fill it with many more.
        let plain = Body::parse("x".repeat(16 * 1024)).unwrap();
        let (tx, mut rx) = mpsc::channel(64);
        for _ in 0..20 {
            tx.try_send(job(&plain, &conn)).unwrap();
        }
        let first = rx.try_recv().unwrap();
        assert_eq!(take_batch(first, &mut rx, budget).len(), 8);
    }

    /// The sequencer handed committed batches to the fan-out over an
    /// unbounded channel: with the fan-out stalled, it went on taking jobs
    /// and committing them, and the batches piled up in memory. Now, with
    /// nobody reading, it stops after filling the fan-out channel, its own
    /// queue fills and stays full, and each batch taken by the fan-out lets
    /// exactly one more job in.
    #[tokio::test]
    async fn a_stalled_fan_out_stops_the_sequencer() {
        use crate::store::NewUser;
        use crate::store::sqlite::{Access, SqliteStore};

        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(SqliteStore::open(dir.path(), Access::Exclusive).unwrap());
        let lobby = store.snapshot(Timestamp(0)).await.unwrap().rooms[0].id;
        let user = store
            .create_user(NewUser {
                name: Username::parse("a").unwrap(),
                password_hash: "x".into(),
                is_admin: false,
                created: Timestamp(0),
                join: vec![lobby],
                session: None,
            })
            .await
            .unwrap()
            .id;
        let conn = Arc::new(ConnHandle::new(
            crate::hub::ConnId(1),
            "127.0.0.1:1".parse().unwrap(),
            1 << 20,
            0,
        ));
        let body = Body::parse("x").unwrap();
        let job = |i: usize| {
            let mut j = job(&body, &conn);
            j.msg.conv = lobby;
            j.msg.sender = user;
            j.msg.client_id = ClientMsgId::parse(format!("c{i}")).unwrap();
            j
        };
        const JOBS: usize = 4;
        const BATCHES: usize = 2;
        let (tx, rx) = mpsc::channel(JOBS);
        let (committed_tx, mut committed_rx) = mpsc::channel(BATCHES);
        // A one-byte budget: every batch is one job.
        tokio::spawn(sequencer(
            rx,
            store.clone(),
            committed_tx,
            Arc::new(Notify::new()),
            1,
            Arc::default(),
        ));
        let stored = || async {
            let (rows, _) = store
                .history(lobby, chatus_protocol::history::Page::Latest, 100)
                .await
                .unwrap();
            rows.len()
        };
        let stored_reaches = |n: usize| async move {
            tokio::time::timeout(std::time::Duration::from_secs(20), async {
                while stored().await < n {
                    tokio::task::yield_now().await;
                }
            })
            .await
            .expect("the sequencer stored the jobs it could take");
        };
        // Two batches fill the fan-out channel, a third waits in the
        // sequencer's hands, and the queue behind it fills up.
        let mut next = 0;
        for _ in 0..BATCHES + 1 + JOBS {
            tx.send(job(next)).await.unwrap();
            next += 1;
        }
        stored_reaches(BATCHES + 1).await;
        assert!(
            matches!(
                tx.try_send(job(next)),
                Err(mpsc::error::TrySendError::Full(_))
            ),
            "the sequencer stopped taking jobs"
        );
        assert_eq!(stored().await, BATCHES + 1, "nothing more was committed");
        // Each batch the fan-out takes lets one more job through.
        for round in 1..=3 {
            let (jobs, result) = committed_rx.recv().await.unwrap();
            assert_eq!((jobs.len(), result.unwrap().len()), (1, 1));
            stored_reaches(BATCHES + 1 + round).await;
            tx.try_send(job(next)).unwrap();
            next += 1;
            assert!(
                matches!(
                    tx.try_send(job(next)),
                    Err(mpsc::error::TrySendError::Full(_))
                ),
                "full again after one job"
            );
            assert_eq!(stored().await, BATCHES + 1 + round);
        }
    }

    /// Bodies of control characters are six times longer on the wire than
    /// in UTF-8; budgeting the page by UTF-8 length let it grow past the
    /// outbox cap and close the asker as lagging.
    #[test]
    fn pages_are_budgeted_by_their_escaped_length() {
        let body = "\u{1}".repeat(1000);
        let mut r = rows_of(10, &body);
        assert!(fit_page(&mut r, false, 3 * (6000 + PER_MESSAGE_OVERHEAD)));
        assert_eq!(r.iter().map(|m| m.seq.0).collect::<Vec<_>>(), [8, 9, 10]);
    }

    #[test]
    fn pages_fit_the_budget_from_the_right_end() {
        let mut r = rows(10, 1000);
        assert!(fit_page(&mut r, false, 3 * (1000 + PER_MESSAGE_OVERHEAD)));
        assert_eq!(r.iter().map(|m| m.seq.0).collect::<Vec<_>>(), [8, 9, 10]);
        let mut r = rows(10, 1000);
        assert!(fit_page(&mut r, true, 3 * (1000 + PER_MESSAGE_OVERHEAD)));
        assert_eq!(r.iter().map(|m| m.seq.0).collect::<Vec<_>>(), [1, 2, 3]);
        let mut r = rows(2, 100_000);
        assert!(fit_page(&mut r, false, 10));
        assert_eq!(r.len(), 1, "at least one message, however big");
        let mut r = rows(3, 10);
        assert!(!fit_page(&mut r, false, 1 << 20));
        assert_eq!(r.len(), 3);
    }
}
