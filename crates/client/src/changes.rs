//! Applying a change (edit, deletion, reaction) to a message a client
//! shows: the one rule the CLI and the desktop app share.
//!
//! A message from `history` already shows every change up to when it was
//! fetched, and the same change may then arrive again (in a later page, or
//! live just before the page was read), so applying is idempotent: an edit
//! applies only when newer than the message's `edited`, a deletion twice is
//! one, and a reaction adds or removes its sender by name. Reactors past
//! the ones a history count names ([`MAX_REACTORS_SHOWN`]) are not known by
//! name, so a count that large may drift by one until the next page.

use chatus_protocol::Username;
use chatus_protocol::event::{Change, MAX_REACTORS_SHOWN, ReactionCount};
use chatus_protocol::message::Message;

/// Applies `change` to `message` (its target); `me` is who we are, for
/// [`ReactionCount::mine`]. Returns whether anything changed.
pub fn apply(message: &mut Message, change: &Change, me: Option<&Username>) -> bool {
    if message.seq != change.target() || message.deleted.is_some() {
        return false;
    }
    match change {
        // A moderation event changes no message.
        Change::Moderated(_) => false,
        Change::Edited(e) => {
            if message.edited.is_some_and(|s| s >= e.seq) {
                return false;
            }
            message.edited = Some(e.seq);
            if e.body.is_some() {
                message.body = e.body.clone();
            }
            true
        }
        Change::Deleted(d) => {
            message.deleted = Some(d.seq);
            message.body = None;
            message.reactions.clear();
            true
        }
        Change::Reacted(r) => {
            let by_me = me.is_some_and(|m| m.same_account(&r.sender));
            let at = message.reactions.iter().position(|c| c.emoji == r.emoji);
            match (at, r.on) {
                (None, false) => false,
                (None, true) => {
                    message.reactions.push(ReactionCount {
                        emoji: r.emoji.clone(),
                        count: 1,
                        users: vec![r.sender.clone()],
                        mine: by_me,
                    });
                    true
                }
                (Some(i), on) => {
                    let c = &mut message.reactions[i];
                    let named = c.users.iter().position(|u| u.same_account(&r.sender));
                    let known = named.is_some() || (by_me && c.mine);
                    if on {
                        if known {
                            return false;
                        }
                        c.count += 1;
                        if c.users.len() < MAX_REACTORS_SHOWN {
                            c.users.push(r.sender.clone());
                        }
                    } else {
                        let hidden = usize::try_from(c.count).unwrap_or(usize::MAX) > c.users.len();
                        if !known && !hidden {
                            return false;
                        }
                        c.count = c.count.saturating_sub(1);
                        if let Some(n) = named {
                            c.users.remove(n);
                        }
                    }
                    if by_me {
                        c.mine = on;
                    }
                    if c.count == 0 {
                        message.reactions.remove(i);
                    }
                    true
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use chatus_protocol::event::{Deleted, Edited, Reacted};
    use chatus_protocol::{Body, Conversation, Emoji, RoomName, Seq, Timestamp};

    use super::*;

    fn user(s: &str) -> Username {
        Username::parse(s).unwrap()
    }

    fn message() -> Message {
        Message {
            conv: Conversation::Room(RoomName::lobby()),
            seq: Seq(1),
            sender: user("a"),
            body: Some(Body::parse("one").unwrap()),
            time: Timestamp(0),
            file: None,
            reply_to: None,
            edited: None,
            deleted: None,
            reactions: Vec::new(),
        }
    }

    fn react(seq: u64, who: &str, on: bool) -> Change {
        Change::Reacted(Reacted {
            conv: Conversation::Room(RoomName::lobby()),
            seq: Seq(seq),
            sender: user(who),
            target: Seq(1),
            emoji: Emoji::parse("👍").unwrap(),
            on,
            time: Timestamp(0),
        })
    }

    #[test]
    fn changes_apply_once() {
        let me = user("b");
        let mut m = message();
        let edit = |seq: u64, text: &str| {
            Change::Edited(Edited {
                conv: m.conv.clone(),
                seq: Seq(seq),
                sender: user("a"),
                target: Seq(1),
                body: Some(Body::parse(text).unwrap()),
                time: Timestamp(0),
            })
        };
        let (e3, e2) = (edit(3, "three"), edit(2, "two"));
        assert!(apply(&mut m, &e3, Some(&me)));
        assert!(
            !apply(&mut m, &e2, Some(&me)),
            "an older edit changes nothing"
        );
        assert_eq!(m.body.as_ref().unwrap().as_str(), "three");

        assert!(apply(&mut m, &react(4, "b", true), Some(&me)));
        assert!(
            !apply(&mut m, &react(4, "b", true), Some(&me)),
            "twice is once"
        );
        assert!(apply(&mut m, &react(5, "c", true), Some(&me)));
        let c = &m.reactions[0];
        assert_eq!((c.count, c.mine, c.users.len()), (2, true, 2));
        assert!(apply(&mut m, &react(6, "b", false), Some(&me)));
        assert_eq!((m.reactions[0].count, m.reactions[0].mine), (1, false));
        assert!(apply(&mut m, &react(7, "c", false), Some(&me)));
        assert!(m.reactions.is_empty());

        let del = Change::Deleted(Deleted {
            conv: m.conv.clone(),
            seq: Seq(8),
            sender: user("a"),
            target: Seq(1),
            time: Timestamp(0),
        });
        assert!(apply(&mut m, &del, Some(&me)));
        assert!(m.body.is_none() && m.deleted == Some(Seq(8)));
        assert!(!apply(&mut m, &react(9, "b", true), Some(&me)));
    }
}
