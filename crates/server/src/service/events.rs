//! Changes to messages (edits, deletions, reactions) and replies: the
//! rules, checked before a change is queued, and the events the fan-out
//! sends for them.
//!
//! A change is a [`SendJob`] like a message, so it goes through the same
//! sequencer and fan-out: it gets its own `seq` in the conversation, is
//! stored in the same group commit, and reaches every member in order.
//! The store checks the target once more inside the append's transaction
//! (`store::refusal`), so a change racing a deletion cannot slip past it;
//! the checks here give the typed error at once in the common case.

use std::sync::Arc;

use chatus_protocol::event::{Deleted, Edited, Emoji, Quote, Reacted, excerpt};
use chatus_protocol::message::Message;
use chatus_protocol::{
    Body, ClientMsgId, Conversation, ErrorCode, RequestId, Seq, ServerMessage, Timestamp,
};

use crate::error::ApiError;
use crate::hub::{ConnHandle, Hub};
use crate::service::messages::{SendJob, Target, resolve};
use crate::service::users::find_user;
use crate::store::{ConvId, Kind, Refusal, Store, TargetRow, User};

/// The error a peer gets for a refused change.
pub(crate) fn refused(r: Refusal, target: Seq) -> ApiError {
    match r {
        Refusal::UnknownMessage => ApiError::reject(
            ErrorCode::UnknownMessage,
            format!("There is no message {target} in this conversation."),
        ),
        Refusal::NotAuthor => ApiError::reject(
            ErrorCode::NotAuthor,
            format!("Message {target} is someone else's."),
        ),
        Refusal::Deleted => ApiError::reject(
            ErrorCode::MessageDeleted,
            format!("Message {target} was deleted."),
        ),
    }
}

/// The conversation `user` names, which must exist: its id and where its
/// events go.
async fn existing(
    hub: &Hub,
    store: &dyn Store,
    user: &User,
    conv: &Conversation,
    seq: Seq,
) -> Result<(ConvId, Target), ApiError> {
    let (_, found) = resolve(hub, store, user.id, conv).await?;
    let Some((id, _)) = found else {
        // A direct conversation that never had a message.
        return Err(refused(Refusal::UnknownMessage, seq));
    };
    let target = match conv {
        Conversation::Room(name) => Target::Room(name.clone()),
        Conversation::Peer(peer) => {
            let to = find_user(hub, store, peer)
                .await?
                .ok_or_else(|| ApiError::unknown_user(peer))?;
            Target::Dm {
                from: user.clone(),
                to,
            }
        }
    };
    Ok((id, target))
}

/// Looks up the message a change or reply names and applies the rule the
/// store will apply again.
async fn check_target(
    store: &dyn Store,
    conv: ConvId,
    seq: Seq,
    user: &User,
    kind: Kind,
    moderator: bool,
) -> Result<TargetRow, ApiError> {
    let row = store
        .target(conv, seq)
        .await?
        .ok_or_else(|| refused(Refusal::UnknownMessage, seq))?;
    let deleted = row.body.is_none();
    // A room's moderators may delete as its creator may.
    let creator = if moderator {
        Some(user.id)
    } else {
        row.creator
    };
    if let Some(r) = crate::store::refusal(kind, user.id, 0, row.sender, deleted, creator) {
        return Err(refused(r, seq));
    }
    Ok(row)
}

/// The quote a reply to `seq` carries, checked (the message exists and is
/// not deleted). In an end-to-end encrypted conversation it has no
/// excerpt: the stored text is a ciphertext, which the server cannot read
/// and must not pass off as text.
pub(crate) async fn quote(
    store: &dyn Store,
    conv: ConvId,
    seq: Seq,
    user: &User,
    encrypted: bool,
) -> Result<Quote, ApiError> {
    let row = check_target(
        store,
        conv,
        seq,
        user,
        Kind::Message {
            reply_to: Some(seq),
        },
        false,
    )
    .await?;
    Ok(Quote {
        seq,
        sender: row.sender_name,
        excerpt: row.body.filter(|_| !encrypted).map(|b| excerpt(b.as_str())),
    })
}

/// One change to queue: where, what, and how it is acknowledged.
pub(crate) struct Change {
    /// The conversation, as the request named it.
    pub(crate) conv: Conversation,
    /// The kind (with its target).
    pub(crate) kind: Kind,
    /// An edit's text, or a reaction's emoji.
    pub(crate) body: Body,
    /// The reaction's emoji, for its event.
    pub(crate) emoji: Option<Emoji>,
    /// The request's `client_id`.
    pub(crate) client_id: ClientMsgId,
    /// An edit's body is a ciphertext (false for the other kinds).
    pub(crate) encrypted: bool,
}

/// Checks a change by `user` and builds its job.
pub(crate) async fn prepare_change(
    hub: &Hub,
    store: &dyn Store,
    user: User,
    change: Change,
    reply_to: Arc<ConnHandle>,
    id: Option<RequestId>,
) -> Result<SendJob, ApiError> {
    let seq = change.kind.target().unwrap_or_default();
    let (conv, target) = existing(hub, store, &user, &change.conv, seq).await?;
    let mut moderator = false;
    if let Target::Room(name) = &target {
        if matches!(change.kind, Kind::Edit { .. } | Kind::React { .. }) {
            crate::service::moderation::check_not_muted_fresh(hub, store, conv, name, user.id)
                .await?;
        }
        if hub.is_clustered() && matches!(change.kind, Kind::Delete { .. }) {
            // A role given on another node a moment ago counts here too.
            crate::service::moderation::refresh(hub, store, name, user.id).await?;
        }
        moderator =
            hub.moderation().role(conv, user.id) >= chatus_protocol::moderation::Role::Moderator;
    }
    if matches!(change.kind, Kind::Edit { .. }) {
        crate::service::messages::check_encryption(hub, conv, change.encrypted)?;
    }
    check_target(store, conv, seq, &user, change.kind, moderator).await?;
    Ok(SendJob {
        msg: crate::store::NewMessage {
            conv,
            sender: user.id,
            client_id: change.client_id,
            body: change.body,
            time: crate::service::accounts::now(),
            file: None,
            kind: change.kind,
        },
        target,
        sender: user.name,
        file: None,
        quote: None,
        emoji: change.emoji,
        reply_to,
        id,
    })
}

/// The event a stored job becomes, for the members of `conv`; `None` only
/// for a reaction job built without its emoji, or a moderation job whose
/// body is not an action, which the handlers never make.
pub(crate) fn event(
    job: &SendJob,
    conv: Conversation,
    seq: Seq,
    time: Timestamp,
) -> Option<ServerMessage> {
    let sender = job.sender.clone();
    Some(match job.msg.kind {
        Kind::Message { .. } => ServerMessage::Message(Message {
            conv,
            seq,
            sender,
            body: Some(job.msg.body.clone()),
            time,
            file: job.file.clone(),
            reply_to: job.quote.clone(),
            edited: None,
            deleted: None,
            reactions: Vec::new(),
        }),
        Kind::Edit { target } => ServerMessage::Edited(Edited {
            conv,
            seq,
            sender,
            target,
            body: Some(job.msg.body.clone()),
            time,
        }),
        Kind::Delete { target } => ServerMessage::Deleted(Deleted {
            conv,
            seq,
            sender,
            target,
            time,
        }),
        // The job's body is the action's JSON, made by
        // `service::moderation`.
        Kind::Moderation(_) => ServerMessage::Moderated(chatus_protocol::moderation::Moderated {
            conv,
            seq,
            actor: sender,
            action: serde_json::from_str(job.msg.body.as_str()).ok()?,
            time,
        }),
        Kind::React { target, on } => ServerMessage::Reacted(Reacted {
            conv,
            seq,
            sender,
            target,
            emoji: job.emoji.clone()?,
            on,
            time,
        }),
    })
}
