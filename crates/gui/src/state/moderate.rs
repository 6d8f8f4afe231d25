//! Room moderation in the desktop app: who may act on whom (the member
//! list offers Kick, Ban, Mute and roles only where the server would
//! allow them), the composer's moderation commands (the same as the CLI's
//! `chat`, parsed by `chatus_client::moderation::command`), and what a
//! `moderated` event changes here: a line in the feed, the topic, the
//! member list, and, for the member kicked or banned, the room leaving
//! the sidebar. And the owner's audit log (*Audit log…* in the member
//! list): the room's moderation events, newest first, a page at a time.

use chatus_client::moderation::command::Command;
use chatus_client::protocol::moderation::{ActionKind, AuditPage, Moderated, Role};
use chatus_client::protocol::presence::Member;
use chatus_client::protocol::{Conversation, RoomName, Seq};

use super::State;
use crate::net::Action;

/// Entries the audit log asks for at a time.
pub const AUDIT_PAGE: u32 = 50;

/// A room's audit log as loaded so far.
#[derive(Debug, Clone)]
pub struct AuditView {
    /// The room.
    pub room: RoomName,
    /// A page is on its way.
    pub busy: bool,
    /// The moderation events loaded, newest first.
    pub entries: Vec<Moderated>,
    /// Older events remain.
    pub more: bool,
    /// Why the last page did not come (not the owner, the connection).
    pub error: Option<String>,
}

impl State {
    /// Asks for a room's audit log: from the newest, or the page before
    /// `before` (added to what is shown).
    pub(super) fn open_audit(&mut self, room: RoomName, before: Option<Seq>) -> Vec<Action> {
        let keep = before.is_some() && self.audit.as_ref().is_some_and(|a| a.room == room);
        match &mut self.audit {
            Some(a) if keep => {
                a.busy = true;
                a.error = None;
            }
            _ => {
                self.audit = Some(AuditView {
                    room: room.clone(),
                    busy: true,
                    entries: Vec::new(),
                    more: false,
                    error: None,
                });
            }
        }
        vec![Action::AuditLog(room, before)]
    }

    /// A page of the audit log, or why there is none. A page for a room
    /// no longer shown is dropped.
    pub(super) fn on_audit(&mut self, room: &RoomName, page: Result<AuditPage, String>) {
        let Some(a) = self.audit.as_mut().filter(|a| &a.room == room) else {
            return;
        };
        a.busy = false;
        match page {
            Ok(page) => {
                let last = a.entries.last().map(|m| m.seq);
                // Only entries older than those shown (a page asked twice).
                a.entries.extend(
                    page.entries
                        .into_iter()
                        .filter(|m| last.is_none_or(|l| m.seq < l)),
                );
                a.more = page.more;
            }
            Err(e) => a.error = Some(e),
        }
    }

    /// Our role in the room whose members are loaded (a plain member
    /// when unknown).
    pub fn my_role(&self, room: &RoomName) -> Role {
        match &self.members {
            Some((r, members)) if r == room => members
                .iter()
                .find(|m| self.is_me(&m.user))
                .map_or(Role::Member, |m| m.role),
            _ => Role::Member,
        }
    }

    /// May we kick, ban or mute `member` of `room`? An owner acts on
    /// everyone else, a moderator on plain members only (the server's
    /// rule; it checks again).
    pub fn may_moderate(&self, room: &RoomName, member: &Member) -> bool {
        let mine = self.my_role(room);
        !self.is_me(&member.user) && mine >= Role::Moderator && mine > member.role
    }

    /// Runs a moderation command typed in the composer, in the open room.
    pub(super) fn moderate_typed(&mut self, cmd: Command) -> Vec<Action> {
        match &self.selected {
            Conversation::Room(room) => vec![Action::Moderate(room.clone(), cmd)],
            Conversation::Peer(_) => {
                self.notice("Moderation commands work in rooms.", true);
                Vec::new()
            }
        }
    }

    /// A `moderated` event, live or from history (`live`): kept for the
    /// feed; live, it also updates the member list, and takes a room we
    /// were kicked or banned from out of the sidebar, saying so.
    pub(super) fn on_moderated(&mut self, m: Moderated, live: bool) -> Vec<Action> {
        let Conversation::Room(room) = m.conv.clone() else {
            return Vec::new();
        };
        let kind = m.action.action;
        let me = m.action.target.as_ref().is_some_and(|t| self.is_me(t));
        let removed = live && me && matches!(kind, ActionKind::Kick | ActionKind::Ban);
        if removed {
            let what = if kind == ActionKind::Ban {
                "banned you from"
            } else {
                "removed you from"
            };
            let why = m
                .action
                .reason
                .as_ref()
                .map_or(String::new(), |r| format!(": {r}"));
            self.notice(format!("{} {what} #{room}{why}.", m.actor), true);
            return self.on_left(&room);
        }
        self.convs
            .entry(m.conv.clone())
            .or_default()
            .moderation
            .insert(m.seq, m);
        if live && matches!(kind, ActionKind::Kick | ActionKind::Ban | ActionKind::Role) {
            return self.refresh_members(&room);
        }
        Vec::new()
    }

    /// `room_removed`: a server administrator removed a room. It leaves
    /// the sidebar, the directory and the invitations, saying so.
    pub(super) fn on_room_removed(
        &mut self,
        r: &chatus_client::protocol::room::RoomRemoved,
    ) -> Vec<Action> {
        let why = r
            .reason
            .as_ref()
            .map_or(String::new(), |x| format!(": {}", x.as_str()));
        self.notice(
            format!(
                "Room #{} was removed by the server administrator{why}.",
                r.room
            ),
            true,
        );
        self.invites.remove(&r.room);
        let actions = self.on_left(&r.room);
        self.directory.retain(|d| d.name != r.room);
        actions
    }
}

#[cfg(test)]
mod tests {
    use chatus_client::protocol::moderation::{Action as Act, Reason};
    use chatus_client::protocol::{Seq, Timestamp};

    use super::*;
    use crate::state::tests::{connected as logged_in, user};

    fn member(name: &str, role: Role) -> Member {
        Member {
            user: user(name),
            online: true,
            role,
            display_name: None,
        }
    }

    fn banned(target: &str, by: &str) -> Moderated {
        let mut action = Act::new(ActionKind::Ban);
        action.target = Some(user(target));
        action.reason = Some(Reason::parse("spam".to_owned()).unwrap());
        Moderated {
            conv: Conversation::Room(RoomName::parse("dev").unwrap()),
            seq: Seq(7),
            actor: user(by),
            time: Timestamp(1),
            action,
        }
    }

    #[test]
    fn ranks_decide_who_may_act_on_whom() {
        let mut s = logged_in("alice");
        let dev = RoomName::parse("dev").unwrap();
        let list = vec![
            member("alice", Role::Moderator),
            member("bob", Role::Member),
            member("carol", Role::Owner),
            member("dave", Role::Moderator),
        ];
        s.members = Some((dev.clone(), list.clone()));
        assert_eq!(s.my_role(&dev), Role::Moderator);
        let may: Vec<bool> = list.iter().map(|m| s.may_moderate(&dev, m)).collect();
        assert_eq!(may, [false, true, false, false]);
        // Another room's list says nothing about this one.
        assert_eq!(s.my_role(&RoomName::lobby()), Role::Member);
    }

    #[test]
    fn a_ban_is_a_feed_line_for_others_and_the_way_out_for_its_target() {
        let mut s = logged_in("alice");
        let dev = Conversation::Room(RoomName::parse("dev").unwrap());
        s.convs.entry(dev.clone()).or_default();
        s.on_moderated(banned("bob", "alice"), true);
        assert!(s.convs[&dev].moderation.contains_key(&Seq(7)));

        let mut s = logged_in("bob");
        s.convs.entry(dev.clone()).or_default();
        s.on_moderated(banned("bob", "alice"), true);
        assert!(!s.convs.contains_key(&dev), "the room left the sidebar");
        let notice = s.notice.as_ref().map(|n| n.text.as_str());
        assert_eq!(notice, Some("alice banned you from #dev: spam."));
    }

    /// Issue 13: a room an administrator removed leaves the sidebar and
    /// the directory, with a notice; the view goes back to the lobby.
    #[test]
    fn a_removed_room_leaves_the_sidebar_with_a_notice() {
        use chatus_client::protocol::room::RoomRemoved;
        let mut s = logged_in("bob");
        let name = RoomName::parse("dev").unwrap();
        let dev = Conversation::Room(name.clone());
        s.convs.entry(dev.clone()).or_default();
        s.selected = dev.clone();
        s.on_room_removed(&RoomRemoved {
            room: name.clone(),
            reason: Some(Reason::parse("spam".to_owned()).unwrap()),
        });
        assert!(!s.convs.contains_key(&dev), "the room left the sidebar");
        assert!(s.directory.iter().all(|r| r.name != name));
        assert_ne!(s.selected, dev);
        let notice = s.notice.as_ref().map(|n| n.text.as_str());
        assert_eq!(
            notice,
            Some("Room #dev was removed by the server administrator: spam.")
        );
    }
}
