//! `history`, `conversations`, `mark_read`, `list_files`.
//!
//! - `history` needs membership of the room (or names a peer); a direct
//!   conversation that never had a message gives an empty page. The reply
//!   and its messages name the peer as registered, however it was typed.
//! - The page size is clamped to `history_page_max`, and the page to a
//!   quarter of the outbox cap in bytes (`more` then says there is more),
//!   so a reply never overflows the asker's queue.
//! - A page holds every row of its range: the messages as they stand now
//!   (current text, `edited`, `deleted`, reply quotes, reaction counts for
//!   the asker) and the changes stored in the range (`changes`), so a
//!   client resuming `after` its cursor sees every `seq` once.
//! - The page names the display names of its senders who have one
//!   (`display_names`, as they are now: a renamed sender's old messages
//!   show the new name).
//! - `list_files` needs what `history` needs and answers `files`, newest
//!   first, at most `history_page_max`.
//! - `mark_read` clamps the marker to the conversation's latest `seq` and
//!   never moves it back; a public receipt (asked for, or the default in a
//!   direct conversation) moves the public marker too and, when it moved,
//!   is announced to the conversation (`service/receipts.rs`).

use chatus_protocol::auth::Ack;
use chatus_protocol::event::{
    Change, Deleted, Edited, Emoji, Quote, Reacted, ReactionCount, excerpt,
};
use chatus_protocol::file::{FileList, ListFiles};
use chatus_protocol::history::{ConversationList, History, HistoryPage, MarkRead};
use chatus_protocol::message::Message;
use chatus_protocol::receipt::Receipt;
use chatus_protocol::{Conversation, RequestId, Seq, ServerMessage};

use super::{Cx, Outcome, Session};
use crate::error::ApiError;
use crate::service::messages::{self, page_limit, resolve};
use crate::store::{MessageRow, ReactionRow, RowKind};

/// `history`.
pub(super) async fn history(
    cx: &mut Cx<'_>,
    who: &Session,
    id: Option<RequestId>,
    h: History,
) -> Result<Outcome, ApiError> {
    let limit = page_limit(h.limit, cx.state.config().history_page_max)?;
    // The reply names the conversation as registered, not as typed.
    let (conv, found) = resolve(cx.state.hub(), cx.state.store(), who.user, &h.conv).await?;
    let (mut rows, mut more) = match found {
        Some((conv, _)) => cx.state.store().history(conv, h.page, limit).await?,
        None => (Vec::new(), false),
    };
    let forwards = matches!(h.page, chatus_protocol::history::Page::After(_));
    if messages::fit_page(&mut rows, forwards, cx.state.reply_budget()) {
        more = true;
    }
    let encrypted = found.is_some_and(|(id, _)| cx.state.hub().is_encrypted(id));
    let (mut messages, changes) = page_items(&conv, rows, encrypted);
    if let (Some((conv_id, _)), Some(first), Some(last)) =
        (found, messages.first(), messages.last())
    {
        let reactions = cx
            .state
            .store()
            .reactions(conv_id, first.seq, last.seq, who.user)
            .await?;
        attach_reactions(&mut messages, reactions);
    }
    // Reaction counts were not in the first budget: a page whose messages
    // carry many is trimmed again, as sent.
    let mut changes = changes;
    if trim_to_budget(
        &mut messages,
        &mut changes,
        forwards,
        cx.state.reply_budget(),
    ) {
        more = true;
    }
    let display_names = sender_names(cx.state.hub(), &messages);
    Ok(Outcome::Reply(ServerMessage::History(HistoryPage {
        id,
        conv,
        messages,
        changes,
        more,
        display_names,
    })))
}

/// The display names, as they are now, of a page's senders who have one.
/// At most one per message, each at most 64 characters: the page's byte
/// budget (a quarter of the outbox cap) leaves room for them.
fn sender_names(
    hub: &crate::hub::Hub,
    messages: &[Message],
) -> std::collections::BTreeMap<chatus_protocol::Username, chatus_protocol::profile::DisplayName> {
    let mut names = std::collections::BTreeMap::new();
    for m in messages {
        if names.contains_key(&m.sender) {
            continue;
        }
        if let Some(name) = hub
            .user_by_key(&m.sender.key())
            .and_then(|u| hub.display_name(u.id))
        {
            names.insert(m.sender.clone(), name);
        }
    }
    names
}

/// Splits a page's rows into its messages (as they stand) and its changes.
fn page_items(
    conv: &Conversation,
    rows: Vec<MessageRow>,
    encrypted: bool,
) -> (Vec<Message>, Vec<Change>) {
    let mut messages = Vec::new();
    let mut changes = Vec::new();
    for r in rows {
        match row_item(conv.clone(), r, encrypted) {
            Some(RowItem::Message(m)) => messages.push(m),
            Some(RowItem::Change(c)) => changes.push(c),
            None => {}
        }
    }
    (messages, changes)
}

/// A stored row as a member sees it: a message as it stands, or a change.
pub(crate) enum RowItem {
    /// A message (without its reaction counts, which a page adds).
    Message(Message),
    /// An edit, a deletion or a reaction.
    Change(Change),
}

/// One stored row of `conv` as its event (`None` for a reaction whose
/// stored emoji no longer parses, which is left out). History pages and the
/// cluster bus's gap filling both read rows through this. In an end-to-end
/// encrypted conversation (`encrypted`) a reply's quote has no excerpt:
/// the quoted text is a ciphertext.
pub(crate) fn row_item(conv: Conversation, r: MessageRow, encrypted: bool) -> Option<RowItem> {
    Some(match r.kind {
        RowKind::Message {
            reply_to,
            edited,
            deleted,
        } => RowItem::Message(Message {
            conv,
            seq: r.seq,
            sender: r.sender,
            body: r.body,
            time: r.time,
            file: r.file,
            reply_to: reply_to.map(|(seq, sender, text)| Quote {
                seq,
                sender,
                excerpt: text.filter(|_| !encrypted).map(|t| excerpt(t.as_str())),
            }),
            edited,
            deleted,
            reactions: Vec::new(),
        }),
        RowKind::Edit { target } => RowItem::Change(Change::Edited(Edited {
            conv,
            seq: r.seq,
            sender: r.sender,
            target,
            body: r.body,
            time: r.time,
        })),
        RowKind::Delete { target } => RowItem::Change(Change::Deleted(Deleted {
            conv,
            seq: r.seq,
            sender: r.sender,
            target,
            time: r.time,
        })),
        RowKind::Moderation(action) => {
            RowItem::Change(Change::Moderated(chatus_protocol::moderation::Moderated {
                conv,
                seq: r.seq,
                actor: r.sender,
                action,
                time: r.time,
            }))
        }
        RowKind::React { target, on } => {
            // The stored emoji passed `Emoji::parse` when it was sent.
            let emoji = r.body.and_then(|b| Emoji::parse(b.as_str()).ok())?;
            RowItem::Change(Change::Reacted(Reacted {
                conv,
                seq: r.seq,
                sender: r.sender,
                target,
                emoji,
                on,
                time: r.time,
            }))
        }
    })
}

/// Trims a page (messages and changes, each in `seq` order) to `budget`
/// bytes as encoded, from the far end (the oldest when paging backwards,
/// the newest when forwards), keeping at least one item. Returns whether
/// anything was dropped.
fn trim_to_budget(
    messages: &mut Vec<Message>,
    changes: &mut Vec<Change>,
    forwards: bool,
    budget: usize,
) -> bool {
    let size = |v: serde_json::Result<Vec<u8>>| v.map_or(0, |b| b.len());
    let mut items: Vec<(Seq, usize)> = messages
        .iter()
        .map(|m| (m.seq, size(serde_json::to_vec(m))))
        .chain(
            changes
                .iter()
                .map(|c| (c.seq(), size(serde_json::to_vec(c)))),
        )
        .collect();
    items.sort_unstable_by_key(|(seq, _)| *seq);
    if !forwards {
        items.reverse();
    }
    let mut total = 0;
    let mut cut = None;
    for (i, (seq, len)) in items.iter().enumerate() {
        total += len;
        if i > 0 && total > budget {
            cut = Some(*seq);
            break;
        }
    }
    let Some(cut) = cut else {
        return false;
    };
    let keep = |seq: Seq| if forwards { seq < cut } else { seq > cut };
    messages.retain(|m| keep(m.seq));
    changes.retain(|c| keep(c.seq()));
    true
}

/// Puts each message's reaction counts on it (both lists in `seq` order).
fn attach_reactions(messages: &mut [Message], reactions: Vec<ReactionRow>) {
    let mut at = 0;
    for r in reactions {
        while messages.get(at).is_some_and(|m| m.seq < r.seq) {
            at += 1;
        }
        let (Some(m), Ok(emoji)) = (messages.get_mut(at), Emoji::parse(r.emoji)) else {
            continue;
        };
        if m.seq == r.seq {
            m.reactions.push(ReactionCount {
                emoji,
                count: r.count,
                users: r.users,
                mine: r.mine,
            });
        }
    }
}

/// `conversations`.
pub(super) async fn conversations(
    cx: &mut Cx<'_>,
    who: &Session,
    id: Option<RequestId>,
) -> Result<Outcome, ApiError> {
    let conversations = messages::conversations(cx.state.hub(), cx.state.store(), who.user).await?;
    Ok(Outcome::Reply(ServerMessage::Conversations(
        ConversationList { id, conversations },
    )))
}

/// `mark_read`.
pub(super) async fn mark_read(
    cx: &mut Cx<'_>,
    who: &Session,
    id: Option<RequestId>,
    m: MarkRead,
) -> Result<Outcome, ApiError> {
    if let (_, Some((conv, last))) =
        resolve(cx.state.hub(), cx.state.store(), who.user, &m.conv).await?
    {
        let receipt = m.receipt.unwrap_or_else(|| Receipt::default_for(&m.conv));
        let seq = m.seq.min(last);
        let shown = receipt == Receipt::Public && seq.0 > 0;
        if cx
            .state
            .store()
            .mark_read(who.user, conv, seq, shown)
            .await?
        {
            let place = super::presence::place(cx, who, &m.conv).await?;
            cx.state.receipts().record(place, who.user, seq);
        }
    }
    Ok(Outcome::Reply(ServerMessage::Ok(Ack { id })))
}

/// `list_files`.
pub(super) async fn list_files(
    cx: &mut Cx<'_>,
    who: &Session,
    id: Option<RequestId>,
    l: ListFiles,
) -> Result<Outcome, ApiError> {
    let limit = page_limit(l.limit, cx.state.config().history_page_max)?;
    let (conv, files, more) =
        crate::service::files::list(cx.state.hub(), cx.state.store(), who.user, &l.conv, limit)
            .await?;
    Ok(Outcome::Reply(ServerMessage::Files(FileList {
        id,
        conv,
        files,
        more,
    })))
}

#[cfg(test)]
mod tests {
    use chatus_protocol::event::Deleted;
    use chatus_protocol::{Body, RoomName, Timestamp, Username};

    use super::*;

    fn user(s: &str) -> Username {
        Username::parse(s).unwrap()
    }

    fn message(seq: u64, reactions: usize) -> Message {
        Message {
            conv: Conversation::Room(RoomName::lobby()),
            seq: Seq(seq),
            sender: user("a"),
            body: Some(Body::parse("x").unwrap()),
            time: Timestamp(0),
            file: None,
            reply_to: None,
            edited: None,
            deleted: None,
            reactions: (0..reactions)
                .map(|i| ReactionCount {
                    emoji: Emoji::parse(char::from_u32(0x1F600 + i as u32).unwrap().to_string())
                        .unwrap(),
                    count: 100,
                    users: (0..10).map(|u| user(&format!("someone{u}"))).collect(),
                    mine: false,
                })
                .collect(),
        }
    }

    /// A page of messages with many reactions each was sent whole: counts
    /// are added after the page was fitted by its texts, and it could pass
    /// the asker's outbox cap (closing them as lagging at every opening of
    /// the room).
    #[test]
    fn pages_heavy_with_reactions_are_trimmed_from_the_far_end() {
        let one = serde_json::to_vec(&message(1, 40)).unwrap().len();
        let deletion = Change::Deleted(Deleted {
            conv: Conversation::Room(RoomName::lobby()),
            seq: Seq(4),
            sender: user("a"),
            target: Seq(1),
            time: Timestamp(0),
        });
        let page = || {
            (
                vec![message(1, 40), message(2, 40), message(3, 40)],
                vec![deletion.clone()],
            )
        };
        let (mut messages, mut changes) = page();
        assert!(trim_to_budget(
            &mut messages,
            &mut changes,
            false,
            one + 200
        ));
        let seqs: Vec<u64> = messages.iter().map(|m| m.seq.0).collect();
        assert_eq!((seqs, changes.len()), (vec![3], 1), "the newest kept");
        let (mut messages, mut changes) = page();
        assert!(trim_to_budget(
            &mut messages,
            &mut changes,
            true,
            2 * one + 10
        ));
        let seqs: Vec<u64> = messages.iter().map(|m| m.seq.0).collect();
        assert_eq!((seqs, changes.len()), (vec![1, 2], 0), "the oldest kept");
        let (mut messages, mut changes) = page();
        assert!(!trim_to_budget(&mut messages, &mut changes, true, 1 << 20));
        assert_eq!((messages.len(), changes.len()), (3, 1));
        let (mut messages, mut changes) = page();
        assert!(trim_to_budget(&mut messages, &mut changes, false, 1));
        assert_eq!(messages.len() + changes.len(), 1, "at least one item");
    }
}
