//! What the network says, applied to the state: [`State::apply`] takes an
//! [`Update`] (answers to our requests and the client library's events)
//! and returns the actions that follow from it.
//!
//! The server is the authority on which rooms we are in and who is online:
//! after every (re)connect its lists replace what we held, since rooms may
//! have been left from another device while we were away.

use chatus_client::Event;
use chatus_client::protocol::history::ConversationInfo;
use chatus_client::protocol::message::Message;
use chatus_client::protocol::room::RoomInfo;
use chatus_client::protocol::{Conversation, RoomName, Username, Visibility};

use super::{Link, LoginForm, Screen, State, lobby};
use crate::net::{Action, Update};

/// Shown in place of a message that could not be decrypted.
pub(crate) const UNDECRYPTABLE: &str = "\u{1f512} This message could not be decrypted.";

impl State {
    /// Takes one update from the current client (see [`State::receive`]).
    pub fn apply(&mut self, update: Update) -> Vec<Action> {
        match update {
            Update::LoginFailed(reason) => {
                let mode = self.login.mode;
                self.back_to_login(Some(reason));
                self.login.mode = mode;
                // A refused saved login was forgotten.
                self.relist_saved()
            }
            // The app's passphrase dialog takes these before the state.
            Update::Passphrase(_) => Vec::new(),
            Update::Certificate(question) => {
                let mode = self.login.mode;
                let why = match &question.pinned {
                    None => format!(
                        "{} presents a certificate no known authority signed.",
                        question.server.key()
                    ),
                    Some(pinned) => format!(
                        "The certificate of {} has changed since it was first trusted (pinned \
                         {pinned}, now {}). Someone may be intercepting the connection, or the \
                         server made a new certificate. Not connected. If its operator confirms \
                         the new fingerprint, run `chatus trust --forget {}` and log in again.",
                        question.server.key(),
                        question.fingerprint,
                        question.server.key()
                    ),
                };
                self.back_to_login(Some(why));
                self.login.mode = mode;
                self.login.certificate = Some(question);
                self.relist_saved()
            }
            Update::Event(e) => self.on_event(e),
            Update::Verify(u) => self.on_verify_update(u),
            Update::Withheld(conv, devices) => {
                self.on_withheld(&conv, devices);
                Vec::new()
            }
            Update::Encrypted(conv) => {
                self.convs.entry(conv).or_default().encrypted = true;
                Vec::new()
            }
            Update::SearchResults(result) => self.on_search(result),
            Update::AuditLog(room, result) => {
                self.on_audit(&room, result);
                Vec::new()
            }
            Update::Receipts(list) => {
                let c = self.convs.entry(list.conv).or_default();
                c.receipts = list.users.into_iter().map(|u| (u.user, u.seq)).collect();
                Vec::new()
            }
            Update::Conversations(list) => self.on_conversations(list),
            Update::Directory(rooms) => {
                for r in &rooms {
                    if let Some(c) = self.convs.get_mut(&Conversation::Room(r.name.clone())) {
                        c.visibility = Some(r.visibility);
                    }
                    if r.invited {
                        self.invites.insert(r.name.clone());
                    }
                }
                self.directory = rooms;
                Vec::new()
            }
            Update::Online(members) => {
                for m in &members {
                    self.learn_display_name(&m.user, m.display_name.clone());
                }
                self.online = members
                    .into_iter()
                    .filter(|m| m.online)
                    .map(|m| m.user)
                    .collect();
                Vec::new()
            }
            Update::Accounts { server, users } => {
                self.saved = super::SavedAccounts {
                    server: Some(server),
                    users,
                };
                Vec::new()
            }
            Update::History { conv, page, older } => self.on_history(conv, page, older),
            Update::HistoryFailed {
                conv,
                older,
                lost,
                error,
            } => self.on_history_failed(&conv, older, lost, &error),
            Update::Sent { client_id, result } => {
                match result {
                    Ok(_) => self.pending.retain(|p| p.client_id != client_id),
                    Err(e) => {
                        if let Some(p) = self.pending.iter_mut().find(|p| p.client_id == client_id)
                        {
                            p.failed = Some(e);
                        }
                    }
                }
                Vec::new()
            }
            Update::Joined(info) => {
                let conv = Conversation::Room(info.name.clone());
                self.invites.remove(&info.name);
                self.convs.entry(conv.clone()).or_default().visibility = Some(info.visibility);
                self.directory_joined(info);
                self.select(&conv)
            }
            Update::Left(room) => {
                self.notice(format!("You left #{room}."), false);
                self.on_left(&room)
            }
            Update::Members(room, members) => {
                for m in &members {
                    self.learn_display_name(&m.user, m.display_name.clone());
                }
                if self.selected == Conversation::Room(room.clone()) {
                    self.members = Some((room.clone(), members));
                    self.members_stale = false;
                    return self.want_room_devices(&room);
                }
                Vec::new()
            }
            Update::Failed(text) => {
                self.notice(text, true);
                Vec::new()
            }
            Update::Notice(text) => {
                self.notice(text, false);
                Vec::new()
            }
            Update::Backup(crate::net::BackupUpdate::RecoveryKey(key)) => {
                self.backup_to_replace = None;
                self.recovery_key = Some(key);
                Vec::new()
            }
            Update::Backup(crate::net::BackupUpdate::Exists(existing)) => {
                self.backup_to_replace = Some(existing);
                Vec::new()
            }
            Update::Picked { conv, paths } => self.attach(&conv, paths),
            Update::Transfer { id, change } => {
                self.on_transfer(id, change);
                Vec::new()
            }
            Update::Thumbnail { id, preview } => {
                self.on_preview(&id, preview);
                Vec::new()
            }
            Update::FetchedFull(result) => {
                self.on_fetched_full(result);
                Vec::new()
            }
            Update::LoggedOut => {
                self.back_to_login(None);
                // A new client gets a new session; whatever the old one
                // still says (its `Stopped`, late answers) is ignored.
                self.session = self.session.next();
                // Its login was forgotten; others may remain.
                self.relist_saved()
            }
        }
    }

    /// Resets everything but the form's server and user name (and what
    /// [`State::reset`] keeps) and shows the login screen.
    fn back_to_login(&mut self, error: Option<String>) {
        let username = self
            .me
            .as_ref()
            .map_or_else(|| self.login.username.clone(), ToString::to_string);
        let login = LoginForm {
            host: self.login.host.clone(),
            port: self.login.port.clone(),
            username,
            error,
            ..LoginForm::default()
        };
        self.reset(login);
    }

    /// Records `user`'s display name (`None`: they have none).
    pub(super) fn learn_display_name(
        &mut self,
        user: &Username,
        name: Option<chatus_client::protocol::profile::DisplayName>,
    ) {
        match name {
            Some(n) => self.display_names.insert(user.clone(), n),
            None => self.display_names.remove(user),
        };
    }

    fn on_event(&mut self, event: Event) -> Vec<Action> {
        match event {
            Event::Connected {
                user, display_name, ..
            } => {
                self.learn_display_name(&user, display_name);
                self.me = Some(user.clone());
                self.online.insert(user);
                self.screen = Screen::Chat;
                self.link = Link::Online;
                self.login.busy = false;
                self.login.error = None;
                let mut actions = self.reload_selected();
                // Who is in the open room (and online) may have changed
                // while away; `reload_selected` asks only on first load.
                if let Conversation::Room(room) = &self.selected
                    && !actions
                        .iter()
                        .any(|a| matches!(a, Action::Members(r) if r == room))
                {
                    actions.push(Action::Members(room.clone()));
                }
                // The login may have just been saved.
                actions.extend(self.relist_saved());
                // The open direct conversation's marks.
                actions.extend(self.want_devices(&self.selected.clone()));
                actions
            }
            Event::Disconnected { reason, retry_in } => {
                // `Connecting` only precedes the first connection: a saved
                // login that has not reached the server yet.
                let never_connected = matches!(
                    self.link,
                    Link::Connecting
                        | Link::Reconnecting {
                            never_connected: true,
                            ..
                        }
                );
                self.link = Link::Reconnecting {
                    reason,
                    retry_in,
                    never_connected,
                };
                if self.members.is_some() {
                    self.members_stale = true;
                }
                // Nobody is told when typing stops while we are away.
                for c in self.convs.values_mut() {
                    c.typing.clear();
                }
                Vec::new()
            }
            Event::Message { message, live } => self.on_message(message, live),
            // The GUI has no encryption features yet: an undecryptable
            // message shows a marker in place of its ciphertext, and is
            // replaced when it decrypts later.
            Event::Undecryptable {
                mut message, live, ..
            } => {
                message.body = chatus_client::protocol::Body::parse(UNDECRYPTABLE).ok();
                self.on_message(message, live)
            }
            Event::Decrypted { message } => {
                if let Some(c) = self.convs.get_mut(&message.conv) {
                    c.messages.insert(message.seq, message);
                }
                Vec::new()
            }
            Event::Verification(v) => self.on_verification(v),
            // The key backup's uploads go on in the background as keys
            // arrive; the app shows the backup only when asked (the
            // account menu), so a notice per batch would be noise.
            Event::KeysBackedUp { .. } => Vec::new(),
            Event::E2eeWarning(text) => {
                self.notice(text, false);
                Vec::new()
            }
            Event::Change { change, .. } => {
                let me = self.me.clone();
                let c = self.convs.entry(change.conv().clone()).or_default();
                c.last_seq = c.last_seq.max(change.seq());
                if let Some(m) = c.messages.get_mut(&change.target()) {
                    chatus_client::changes::apply(m, &change, me.as_ref());
                }
                // A new topic shows in the room's header (from its
                // directory entry).
                if let chatus_client::protocol::Change::Moderated(m) = &change
                    && let (Some(topic), Conversation::Room(room)) = (&m.action.topic, &m.conv)
                    && let Some(r) = self.directory.iter_mut().find(|r| &r.name == room)
                {
                    r.topic = topic.clone();
                    if let Some(d) = &m.action.description {
                        r.description = d.clone();
                    }
                }
                match change {
                    chatus_client::protocol::Change::Moderated(m) => self.on_moderated(m, true),
                    _ => Vec::new(),
                }
            }
            Event::Read(r) => {
                let c = self.convs.entry(r.conv).or_default();
                if r.others > 0
                    && let Some(last) = r.users.last()
                {
                    c.unnamed_readers = Some((last.seq, r.others));
                }
                for u in r.users {
                    let at = c.receipts.entry(u.user).or_insert(u.seq);
                    *at = (*at).max(u.seq);
                }
                Vec::new()
            }
            Event::Typing(t) => {
                if !self.is_me(&t.user) {
                    let c = self.convs.entry(t.conv).or_default();
                    if t.typing {
                        c.typing.insert(t.user);
                    } else {
                        c.typing.retain(|u| !u.same_account(&t.user));
                    }
                }
                Vec::new()
            }
            Event::Presence(p) => {
                for m in p.users {
                    self.learn_display_name(&m.user, m.display_name.clone());
                    if let Some((_, members)) = &mut self.members
                        && let Some(member) =
                            members.iter_mut().find(|x| x.user.same_account(&m.user))
                    {
                        member.online = m.online;
                    }
                    if m.online {
                        self.online.insert(m.user);
                    } else {
                        self.online.remove(&m.user);
                    }
                }
                Vec::new()
            }
            Event::MemberJoined(j) => {
                if j.users.iter().any(|u| self.is_me(u)) {
                    // Joined from another session of ours.
                    let conv = Conversation::Room(j.room.clone());
                    self.convs.entry(conv).or_default();
                    if let Some(r) = self.directory.iter_mut().find(|r| r.name == j.room) {
                        r.joined = true;
                        r.invited = false;
                    }
                    self.invites.remove(&j.room);
                }
                self.refresh_members(&j.room)
            }
            Event::MemberLeft(l) => {
                if l.users.iter().any(|u| self.is_me(u)) {
                    return self.on_left(&l.room);
                }
                self.refresh_members(&l.room)
            }
            Event::RoomRemoved(r) => self.on_room_removed(&r),
            Event::Invited(i) => {
                self.notice(format!("{} invited you to #{}.", i.by, i.room), false);
                self.invites.insert(i.room);
                Vec::new()
            }
            // Shown beside the user name (`State::shown`), never alone.
            Event::Profile(p) => {
                if let Some((_, members)) = &mut self.members
                    && let Some(m) = members.iter_mut().find(|m| m.user == p.user)
                {
                    m.display_name.clone_from(&p.display_name);
                }
                self.learn_display_name(&p.user, p.display_name);
                Vec::new()
            }
            Event::Stopped { error } => {
                let why = error.map_or_else(|| "Disconnected.".to_owned(), |e| e.to_string());
                self.back_to_login(Some(why));
                self.relist_saved()
            }
        }
    }

    /// The server's list of our conversations, after a (re)connect: adds
    /// and updates them, and drops rooms it no longer has (left from
    /// another device while we were away). Direct conversations stay: the
    /// list only has those with messages.
    fn on_conversations(&mut self, list: Vec<ConversationInfo>) -> Vec<Action> {
        let mut actions = Vec::new();
        let gone: Vec<RoomName> = self
            .rooms()
            .map(|(r, _)| r.clone())
            .filter(|r| {
                !r.is_lobby() && !list.iter().any(|i| i.conv == Conversation::Room(r.clone()))
            })
            .collect();
        for room in gone {
            actions.extend(self.on_left(&room));
        }
        for info in list {
            self.respell(&info.conv);
            let c = self.convs.entry(info.conv.clone()).or_default();
            c.last_seq = c.last_seq.max(info.last_seq);
            c.read_seq = c.read_seq.max(info.read_seq);
            c.encrypted = info.encrypted;
            c.unread = if info.conv == self.selected {
                0
            } else {
                info.unread
            };
            // Mentions are found in the text of messages as they arrive;
            // the server does not count them.
            if c.unread == 0 {
                c.mentions = 0;
            }
        }
        actions.extend(self.reload_selected());
        // Receipts that moved while we were away were not announced to us.
        if self.link == Link::Online {
            actions.push(Action::Receipts(self.selected.clone()));
        }
        actions
    }

    /// We are no longer in `room` (left here, elsewhere, or while away).
    pub(super) fn on_left(&mut self, room: &RoomName) -> Vec<Action> {
        self.convs.remove(&Conversation::Room(room.clone()));
        if let Some(i) = self.directory.iter().position(|r| &r.name == room) {
            let r = &mut self.directory[i];
            r.joined = false;
            r.members = r.members.saturating_sub(1);
            // A private room is only listed for members and invitees.
            if r.visibility == Visibility::Private && !r.invited {
                self.directory.remove(i);
            }
        }
        if self.members.as_ref().is_some_and(|(r, _)| r == room) {
            self.members = None;
        }
        if self.selected == Conversation::Room(room.clone()) {
            return self.select(&lobby());
        }
        Vec::new()
    }

    /// We joined a room: its directory entry says so (added if missing).
    fn directory_joined(&mut self, info: RoomInfo) {
        let info = RoomInfo {
            joined: true,
            invited: false,
            ..info
        };
        match self.directory.iter_mut().find(|r| r.name == info.name) {
            Some(r) => *r = info,
            None => {
                let at = self
                    .directory
                    .partition_point(|r| r.name.as_str() < info.name.as_str());
                self.directory.insert(at, info);
            }
        }
    }

    pub(super) fn refresh_members(&mut self, room: &RoomName) -> Vec<Action> {
        if self.members.as_ref().is_some_and(|(r, _)| r == room) {
            return vec![Action::Members(room.clone())];
        }
        Vec::new()
    }

    /// Names compare without case, so `/msg Bob` and a message from `bob`
    /// share one conversation; this makes it show the server's spelling
    /// (the account's) rather than whatever was typed first.
    pub(super) fn respell(&mut self, conv: &Conversation) {
        let Conversation::Peer(peer) = conv else {
            return;
        };
        let differs = self
            .convs
            .get_key_value(conv)
            .is_some_and(|(k, _)| match k {
                Conversation::Peer(held) => held.as_str() != peer.as_str(),
                Conversation::Room(_) => false,
            });
        if !differs {
            return;
        }
        if let Some(c) = self.convs.remove(conv) {
            self.convs.insert(conv.clone(), c);
        }
        if self.selected == *conv {
            self.selected = conv.clone();
        }
    }

    fn on_message(&mut self, m: Message, live: bool) -> Vec<Action> {
        self.respell(&m.conv);
        let mine = self.is_me(&m.sender);
        let selected = m.conv == self.selected;
        let mentioned = !mine && self.mentions_me(&m);
        let c = self.convs.entry(m.conv.clone()).or_default();
        if c.messages.contains_key(&m.seq) {
            return Vec::new();
        }
        c.last_seq = c.last_seq.max(m.seq);
        c.typing.retain(|u| !u.same_account(&m.sender));
        if mine {
            c.read_seq = c.read_seq.max(m.seq);
        } else if !selected && m.seq > c.read_seq {
            c.unread += 1;
            if mentioned {
                c.mentions += 1;
            }
        }
        let notify = self.notification(&m, live);
        let c = self.convs.entry(m.conv.clone()).or_default();
        c.messages.insert(m.seq, m);
        let mut actions: Vec<Action> = notify.into_iter().collect();
        if selected && !mine {
            actions.extend(self.mark_read());
        }
        actions
    }
}
