//! The app's state, apart from any window: what is shown, and the rules
//! that turn network updates and user intents into new state and actions.
//!
//! Everything here is plain data and plain functions, so it is tested
//! without egui. Drawing code (`ui/`) reads this state and returns intents;
//! [`State::apply`] takes the network's [`Update`]s; intents and updates
//! both return the [`Action`]s to send.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use chatus_client::protocol::message::Message;
use chatus_client::protocol::presence::Member;
use chatus_client::protocol::room::RoomInfo;
use chatus_client::protocol::{
    Body, ClientMsgId, Conversation, Password, RoomName, Seq, Username, Visibility,
};
use chatus_client::{Client, Credentials, Event, ServerUrl};

use crate::net::{Action, Update};

/// Which screen is up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Screen {
    /// Host, port, name, password.
    Login,
    /// Sidebar, feed, composer.
    Chat,
}

/// Log in or create an account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LoginMode {
    /// Existing account.
    #[default]
    Login,
    /// New account.
    Register,
}

/// The login form.
#[derive(Debug, Clone, Default)]
pub struct LoginForm {
    /// Server host.
    pub host: String,
    /// Server port, as typed.
    pub port: String,
    /// User name.
    pub username: String,
    /// Password (never stored).
    pub password: String,
    /// Log in or register.
    pub mode: LoginMode,
    /// What went wrong last time.
    pub error: Option<String>,
    /// A login is in progress.
    pub busy: bool,
}

/// The connection as the status line shows it.
#[derive(Debug, Clone, PartialEq)]
pub enum Link {
    /// Not connected (login screen).
    Offline,
    /// Connecting for the first time.
    Connecting,
    /// Connected.
    Online,
    /// Lost; retrying.
    Reconnecting {
        /// Why it dropped.
        reason: String,
        /// When the next attempt is.
        retry_in: Option<Duration>,
    },
}

/// How much of a conversation's history is loaded.
#[derive(Debug, Clone, Default)]
pub struct HistoryState {
    /// The newest page was requested.
    pub requested: bool,
    /// Older messages exist beyond the oldest loaded.
    pub more_older: bool,
    /// A page is on its way.
    pub loading: bool,
}

/// One conversation as shown.
#[derive(Debug, Clone, Default)]
pub struct Conv {
    /// Loaded messages by `seq`.
    pub messages: BTreeMap<Seq, Message>,
    /// The newest `seq` known.
    pub last_seq: Seq,
    /// Our read marker.
    pub read_seq: Seq,
    /// Messages from others after the read marker.
    pub unread: u64,
    /// History loading.
    pub history: HistoryState,
    /// For rooms: public or private (when known).
    pub visibility: Option<Visibility>,
}

/// A message we wrote that the server has not stored yet.
#[derive(Debug, Clone)]
pub struct Pending {
    /// Our id for it.
    pub client_id: ClientMsgId,
    /// Where it goes.
    pub conv: Conversation,
    /// Its text.
    pub body: String,
    /// Why it failed, if it did.
    pub failed: Option<String>,
}

/// A line in the status bar.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    /// The text.
    pub text: String,
    /// Shown as an error.
    pub error: bool,
}

/// What the user did, in words the state understands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Intent {
    /// Submit the login form.
    SubmitLogin,
    /// Open a conversation.
    Select(Conversation),
    /// Send what is in the composer (commands included).
    Compose(String),
    /// Load older messages in the open conversation.
    LoadOlder,
    /// Join a room.
    Join(RoomName),
    /// Create a room.
    Create(RoomName, Visibility),
    /// Leave a room.
    Leave(RoomName),
    /// Invite someone to a room.
    Invite(RoomName, Username),
    /// Show a room's members.
    ShowMembers(RoomName),
    /// Log out (forget the token).
    Logout,
    /// Leave the app.
    Quit,
    /// Dismiss the notice.
    DismissNotice,
}

/// Everything the window shows.
#[derive(Debug, Clone)]
pub struct State {
    /// Which screen.
    pub screen: Screen,
    /// The login form.
    pub login: LoginForm,
    /// The server we talk to.
    pub server: Option<ServerUrl>,
    /// Who we are.
    pub me: Option<Username>,
    /// The connection.
    pub link: Link,
    /// Conversations we are part of.
    pub convs: BTreeMap<Conversation, Conv>,
    /// The open conversation.
    pub selected: Conversation,
    /// Rooms we can see (for joining).
    pub directory: Vec<RoomInfo>,
    /// Who is online.
    pub online: BTreeSet<Username>,
    /// Rooms we are invited to.
    pub invites: BTreeSet<RoomName>,
    /// Messages not yet stored.
    pub pending: Vec<Pending>,
    /// The status-bar notice.
    pub notice: Option<Notice>,
    /// Members of the open room, when loaded.
    pub members: Option<(RoomName, Vec<Member>)>,
    /// The user asked to leave the app.
    pub quit: bool,
}

fn lobby() -> Conversation {
    Conversation::Room(RoomName::lobby())
}

impl Default for State {
    fn default() -> Self {
        Self {
            screen: Screen::Login,
            login: LoginForm {
                host: "127.0.0.1".into(),
                port: "7500".into(),
                ..LoginForm::default()
            },
            server: None,
            me: None,
            link: Link::Offline,
            convs: BTreeMap::new(),
            selected: lobby(),
            directory: Vec::new(),
            online: BTreeSet::new(),
            invites: BTreeSet::new(),
            pending: Vec::new(),
            notice: None,
            members: None,
            quit: false,
        }
    }
}

impl State {
    /// The window title: `ChatUs — USER@HOST:PORT` once logged in.
    pub fn title(&self) -> String {
        match (&self.me, &self.server) {
            (Some(me), Some(s)) => format!("ChatUs — {me}@{}:{}", s.host(), s.port()),
            _ => "ChatUs".into(),
        }
    }

    fn notice(&mut self, text: impl Into<String>, error: bool) {
        self.notice = Some(Notice {
            text: text.into(),
            error,
        });
    }

    /// True when `user` is us.
    pub fn is_me(&self, user: &Username) -> bool {
        self.me.as_ref().is_some_and(|me| me.same_account(user))
    }

    /// Starts connecting with a stored token (the app's start-up path).
    pub fn resume_session(&mut self, server: ServerUrl, credentials: Credentials) -> Vec<Action> {
        self.server = Some(server.clone());
        self.screen = Screen::Chat;
        self.link = Link::Connecting;
        vec![Action::Connect {
            server,
            credentials,
        }]
    }

    /// Handles a user intent.
    pub fn intent(&mut self, intent: Intent) -> Vec<Action> {
        match intent {
            Intent::SubmitLogin => self.submit_login(),
            Intent::Select(conv) => self.select(&conv),
            Intent::Compose(text) => self.compose(&text),
            Intent::LoadOlder => self.load_older(),
            Intent::Join(room) => vec![Action::Join(room)],
            Intent::Create(room, vis) => vec![Action::Create(room, vis)],
            Intent::Leave(room) => {
                if room.is_lobby() {
                    self.notice("Everyone stays in the lobby.", true);
                    Vec::new()
                } else {
                    vec![Action::Leave(room)]
                }
            }
            Intent::Invite(room, user) => vec![Action::Invite(room, user)],
            Intent::ShowMembers(room) => vec![Action::Members(room)],
            Intent::Logout => vec![Action::Logout],
            Intent::Quit => {
                self.quit = true;
                vec![Action::Disconnect]
            }
            Intent::DismissNotice => {
                self.notice = None;
                Vec::new()
            }
        }
    }

    fn submit_login(&mut self) -> Vec<Action> {
        let f = &mut self.login;
        if f.busy {
            return Vec::new();
        }
        let host = f.host.trim();
        let port: Result<u16, _> = f.port.trim().parse();
        let server = match port {
            Ok(p) if p > 0 => ServerUrl::parse(&format!("{host}:{p}")).map_err(|e| e.to_string()),
            _ => Err("The port must be a number from 1 to 65535.".into()),
        };
        let username = Username::parse(f.username.trim()).map_err(|e| e.message);
        let password = Password::parse(f.password.clone()).map_err(|e| e.message);
        let (server, username, password) = match (server, username, password) {
            (Ok(s), Ok(u), Ok(p)) => (s, u, p),
            (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => {
                f.error = Some(e);
                return Vec::new();
            }
        };
        if f.mode == LoginMode::Register && f.password.chars().count() < 8 {
            f.error = Some("A password needs at least 8 characters.".into());
            return Vec::new();
        }
        f.error = None;
        f.busy = true;
        f.password.clear();
        self.server = Some(server.clone());
        self.link = Link::Connecting;
        let credentials = match f.mode {
            LoginMode::Login => Credentials::Login { username, password },
            LoginMode::Register => Credentials::Register { username, password },
        };
        vec![Action::Connect {
            server,
            credentials,
        }]
    }

    fn select(&mut self, conv: &Conversation) -> Vec<Action> {
        self.selected = conv.clone();
        self.members = None;
        let c = self.convs.entry(conv.clone()).or_default();
        let mut actions = Vec::new();
        if !c.history.requested {
            c.history.requested = true;
            c.history.loading = true;
            actions.push(Action::History {
                conv: conv.clone(),
                before: None,
            });
        }
        if let Conversation::Room(room) = &conv {
            actions.push(Action::Members(room.clone()));
        }
        actions.extend(self.mark_read());
        actions
    }

    /// Marks the open conversation read up to its newest message.
    pub fn mark_read(&mut self) -> Vec<Action> {
        let conv = self.selected.clone();
        let Some(c) = self.convs.get_mut(&conv) else {
            return Vec::new();
        };
        let newest = c
            .messages
            .keys()
            .next_back()
            .copied()
            .unwrap_or(Seq(0))
            .max(c.last_seq);
        c.unread = 0;
        if newest > c.read_seq {
            c.read_seq = newest;
            return vec![Action::MarkRead(conv, newest)];
        }
        Vec::new()
    }

    fn load_older(&mut self) -> Vec<Action> {
        let conv = self.selected.clone();
        let Some(c) = self.convs.get_mut(&conv) else {
            return Vec::new();
        };
        if c.history.loading || !c.history.more_older {
            return Vec::new();
        }
        let Some(oldest) = c.messages.keys().next().copied() else {
            return Vec::new();
        };
        c.history.loading = true;
        vec![Action::History {
            conv,
            before: Some(oldest),
        }]
    }

    fn compose(&mut self, text: &str) -> Vec<Action> {
        let trimmed = text.trim();
        if trimmed.is_empty() {
            return Vec::new();
        }
        if trimmed == "quit" || trimmed == "/quit" {
            return self.intent(Intent::Quit);
        }
        if let Some(rest) = trimmed.strip_prefix("//") {
            return self.send(self.selected.clone(), format!("/{rest}"));
        }
        let Some(cmd) = trimmed.strip_prefix('/') else {
            return self.send(self.selected.clone(), text.trim_end().to_owned());
        };
        let (name, rest) = cmd.split_once(char::is_whitespace).unwrap_or((cmd, ""));
        let rest = rest.trim();
        match name {
            "join" | "j" => match RoomName::parse(rest.trim_start_matches('#')) {
                Ok(room) => vec![Action::Join(room)],
                Err(e) => {
                    self.notice(format!("/join ROOM: {}", e.message), true);
                    Vec::new()
                }
            },
            "leave" | "part" => match &self.selected {
                Conversation::Room(r) => {
                    let r = r.clone();
                    self.intent(Intent::Leave(r))
                }
                Conversation::Peer(_) => {
                    self.notice("/leave works in rooms.", true);
                    Vec::new()
                }
            },
            "msg" | "m" => {
                let parsed = rest.split_once(char::is_whitespace).map(|(u, t)| {
                    (
                        Username::parse(u.trim_start_matches('@')),
                        t.trim().to_owned(),
                    )
                });
                match parsed {
                    Some((Ok(user), body)) if !body.is_empty() => {
                        let conv = Conversation::Peer(user);
                        let mut actions = self.select(&conv);
                        actions.extend(self.send(conv, body));
                        actions
                    }
                    _ => {
                        self.notice("Usage: /msg USER TEXT", true);
                        Vec::new()
                    }
                }
            }
            other => {
                self.notice(
                    format!("Unknown command /{other}. Try /join, /leave, /msg or /quit."),
                    true,
                );
                Vec::new()
            }
        }
    }

    fn send(&mut self, conv: Conversation, text: String) -> Vec<Action> {
        let body = match Body::parse(text) {
            Ok(b) => b,
            Err(_) => return Vec::new(),
        };
        let client_id = Client::new_client_id();
        self.pending.push(Pending {
            client_id: client_id.clone(),
            conv: conv.clone(),
            body: body.to_string(),
            failed: None,
        });
        vec![Action::Send {
            conv,
            body,
            client_id,
        }]
    }

    /// Takes one update from the network.
    pub fn apply(&mut self, update: Update) -> Vec<Action> {
        match update {
            Update::LoginFailed(reason) => {
                self.screen = Screen::Login;
                self.link = Link::Offline;
                self.login.busy = false;
                self.login.error = Some(reason);
                Vec::new()
            }
            Update::Event(e) => self.on_event(e),
            Update::Conversations(list) => {
                for info in list {
                    let c = self.convs.entry(info.conv.clone()).or_default();
                    c.last_seq = c.last_seq.max(info.last_seq);
                    c.read_seq = c.read_seq.max(info.read_seq);
                    c.unread = if info.conv == self.selected {
                        0
                    } else {
                        info.unread
                    };
                }
                let mut actions = Vec::new();
                if !self
                    .convs
                    .get(&self.selected)
                    .is_some_and(|c| c.history.requested)
                {
                    actions.extend(self.select(&self.selected.clone()));
                }
                actions
            }
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
                self.online = members
                    .into_iter()
                    .filter(|m| m.online)
                    .map(|m| m.user)
                    .collect();
                Vec::new()
            }
            Update::History { conv, page, older } => {
                let c = self.convs.entry(conv).or_default();
                c.history.loading = false;
                if older
                    || c.messages.is_empty()
                    || page
                        .messages
                        .first()
                        .is_some_and(|m| Some(&m.seq) <= c.messages.keys().next())
                {
                    c.history.more_older = page.more;
                }
                for m in page.messages {
                    c.last_seq = c.last_seq.max(m.seq);
                    c.messages.insert(m.seq, m);
                }
                if !older { self.mark_read() } else { Vec::new() }
            }
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
                self.select(&conv)
            }
            Update::Left(room) => {
                self.convs.remove(&Conversation::Room(room.clone()));
                self.notice(format!("You left #{room}."), false);
                if self.selected == Conversation::Room(room) {
                    return self.select(&lobby());
                }
                Vec::new()
            }
            Update::Members(room, members) => {
                if self.selected == Conversation::Room(room.clone()) {
                    self.members = Some((room, members));
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
            Update::LoggedOut => {
                let login = LoginForm {
                    host: self.login.host.clone(),
                    port: self.login.port.clone(),
                    username: self
                        .me
                        .as_ref()
                        .map_or_else(String::new, ToString::to_string),
                    ..LoginForm::default()
                };
                *self = State {
                    login,
                    ..State::default()
                };
                Vec::new()
            }
        }
    }

    fn on_event(&mut self, event: Event) -> Vec<Action> {
        match event {
            Event::Connected { user, .. } => {
                self.me = Some(user.clone());
                self.online.insert(user);
                self.screen = Screen::Chat;
                self.link = Link::Online;
                self.login.busy = false;
                self.login.error = None;
                Vec::new()
            }
            Event::Disconnected { reason, retry_in } => {
                self.link = Link::Reconnecting { reason, retry_in };
                Vec::new()
            }
            Event::Message { message, .. } => self.on_message(message),
            Event::Presence(p) => {
                for m in p.users {
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
                }
                self.refresh_members(&j.room)
            }
            Event::MemberLeft(l) => {
                if l.users.iter().any(|u| self.is_me(u)) {
                    self.convs.remove(&Conversation::Room(l.room.clone()));
                    if self.selected == Conversation::Room(l.room) {
                        return self.select(&lobby());
                    }
                    return Vec::new();
                }
                self.refresh_members(&l.room)
            }
            Event::Invited(i) => {
                self.notice(format!("{} invited you to #{}.", i.by, i.room), false);
                self.invites.insert(i.room);
                Vec::new()
            }
            Event::Stopped { error } => {
                let why = error.map_or_else(|| "Disconnected.".to_owned(), |e| e.to_string());
                let login = LoginForm {
                    host: self.login.host.clone(),
                    port: self.login.port.clone(),
                    username: self
                        .me
                        .as_ref()
                        .map_or_else(String::new, ToString::to_string),
                    error: Some(why),
                    ..LoginForm::default()
                };
                let quit = self.quit;
                *self = State {
                    login,
                    quit,
                    ..State::default()
                };
                Vec::new()
            }
        }
    }

    fn refresh_members(&mut self, room: &RoomName) -> Vec<Action> {
        if self.members.as_ref().is_some_and(|(r, _)| r == room) {
            return vec![Action::Members(room.clone())];
        }
        Vec::new()
    }

    fn on_message(&mut self, m: Message) -> Vec<Action> {
        let mine = self.is_me(&m.sender);
        let selected = m.conv == self.selected;
        let c = self.convs.entry(m.conv.clone()).or_default();
        if c.messages.contains_key(&m.seq) {
            return Vec::new();
        }
        c.last_seq = c.last_seq.max(m.seq);
        if mine {
            c.read_seq = c.read_seq.max(m.seq);
        } else if !selected && m.seq > c.read_seq {
            c.unread += 1;
        }
        c.messages.insert(m.seq, m);
        if selected && !mine {
            self.mark_read()
        } else {
            Vec::new()
        }
    }

    /// Conversations for the sidebar: rooms (by name), then direct ones.
    pub fn rooms(&self) -> impl Iterator<Item = (&RoomName, &Conv)> {
        self.convs.iter().filter_map(|(k, v)| match k {
            Conversation::Room(r) => Some((r, v)),
            Conversation::Peer(_) => None,
        })
    }

    /// Direct conversations for the sidebar.
    pub fn directs(&self) -> impl Iterator<Item = (&Username, &Conv)> {
        self.convs.iter().filter_map(|(k, v)| match k {
            Conversation::Peer(p) => Some((p, v)),
            Conversation::Room(_) => None,
        })
    }

    /// Pending messages of a conversation.
    pub fn pending_in<'a>(&'a self, conv: &'a Conversation) -> impl Iterator<Item = &'a Pending> {
        self.pending.iter().filter(move |p| &p.conv == conv)
    }
}

#[cfg(test)]
mod tests;
