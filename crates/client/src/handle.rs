//! [`Client`]: the handle applications hold. Every method sends a command
//! to the background task and awaits its reply on a oneshot channel; none
//! blocks a thread.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use chatus_protocol::Emoji;
use chatus_protocol::auth::{ChangePassword, Logout};
use chatus_protocol::event::{Version, Versions};
use chatus_protocol::file::{FileList, ListFiles};
use chatus_protocol::history::{
    ConversationInfo, Conversations, History, HistoryPage, MarkRead, Page,
};
use chatus_protocol::message::Sent;
use chatus_protocol::presence::{Member, SetTyping, Who};
use chatus_protocol::room::{
    CreateRoom, DeclineInvite, Invite, JoinRoom, LeaveRoom, ListMembers, ListRooms, RoomInfo,
};
use chatus_protocol::search::{Search, SearchResults};
use chatus_protocol::{
    Body, ClientMsgId, Conversation, ErrorCode, FileId, Password, Request, RoomName, Seq,
    ServerMessage, Username, Visibility,
};
use tokio::sync::{mpsc, oneshot, watch};

use crate::config::Config;
use crate::e2ee::worker::Worker;
use crate::e2ee::{Opened, Shared};
use crate::error::Error;
use crate::event::{Event, Status};
use crate::task::{Command, Op, Task};

/// A handle to a running client. Cheap to clone; the task stops when every
/// handle is dropped or [`Client::quit`] is called.
#[derive(Clone, Debug)]
pub struct Client {
    pub(crate) commands: mpsc::UnboundedSender<Command>,
    pub(crate) status: watch::Receiver<Status>,
    /// This login's end-to-end encryption state, shared with the worker.
    pub(crate) e2ee: Arc<Shared>,
}

/// The stream of [`Event`]s from a client.
pub type Events = mpsc::UnboundedReceiver<Event>;

/// What [`Client::connect`] learned when it got in.
#[derive(Debug, Clone)]
pub struct Connected {
    /// Who we are, in the server's spelling.
    pub user: Username,
    /// A new token, after a password login or registration.
    pub token: Option<chatus_protocol::Token>,
    /// The server's limits.
    pub limits: chatus_protocol::hello::Limits,
    /// Our display name, if we set one (see [`Client::set_display_name`]).
    pub display_name: Option<chatus_protocol::profile::DisplayName>,
}

static NEXT_CLIENT_ID: AtomicU64 = AtomicU64::new(0);

pub(crate) fn unexpected(msg: &ServerMessage) -> Error {
    Error::Protocol(format!("did not expect {msg:?}"))
}

impl Client {
    /// Starts the client task (inside a tokio runtime) and returns at once;
    /// progress arrives as events.
    pub fn start(config: Config) -> (Client, Events) {
        let (cmd_tx, cmd_rx) = mpsc::unbounded_channel();
        let (out_tx, out_rx) = mpsc::unbounded_channel();
        let (ev_tx, ev_rx) = mpsc::unbounded_channel();
        let (status_tx, status) = watch::channel(Status::Connecting { attempt: 1 });
        let e2ee = Shared::new(
            config.e2ee_dir.clone(),
            config.server.key(),
            config.key_source.clone(),
        );
        let worker = Worker {
            commands: cmd_tx.downgrade(),
            status: status.clone(),
            e2ee: e2ee.clone(),
            events: ev_tx,
            wake: config.wake.clone(),
            held: std::sync::Mutex::default(),
        };
        tokio::spawn(worker.run(out_rx));
        tokio::spawn(Task::new(config, out_tx, status_tx).run(cmd_rx));
        (
            Client {
                commands: cmd_tx,
                status,
                e2ee,
            },
            ev_rx,
        )
    }

    /// Where the connection stands now, updated as it changes: for a
    /// status line ("connecting…", "retrying in 4 s (connection
    /// refused)").
    pub fn status(&self) -> watch::Receiver<Status> {
        self.status.clone()
    }

    /// Starts the client and waits until it is logged in, or fails.
    /// Events before the login are consumed.
    pub async fn connect(config: Config) -> Result<(Client, Events, Connected), Error> {
        let (client, mut events) = Client::start(config);
        loop {
            match events.recv().await {
                Some(Event::Connected {
                    user,
                    token,
                    limits,
                    display_name,
                }) => {
                    return Ok((
                        client,
                        events,
                        Connected {
                            user,
                            token,
                            limits,
                            display_name,
                        },
                    ));
                }
                Some(Event::Stopped { error }) => return Err(error.unwrap_or(Error::Stopped)),
                Some(_) => {}
                None => return Err(Error::Stopped),
            }
        }
    }

    /// Checks that a ChatUs server answers at `server` (connects, says
    /// `hello`, closes), without logging in: to tell "not logged in" from
    /// "not reachable".
    /// Certificates are checked as `trust` says.
    pub async fn probe(
        server: &crate::url::ServerUrl,
        trust: &crate::known::Trust,
    ) -> Result<(), Error> {
        crate::task::probe(server, trust, std::time::Duration::from_secs(10)).await
    }

    /// A fresh id for a message: random per process, counted within it.
    pub fn new_client_id() -> ClientMsgId {
        static PREFIX: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
        let prefix = *PREFIX.get_or_init(|| getrandom::u64().unwrap_or(0));
        let n = NEXT_CLIENT_ID.fetch_add(1, Ordering::Relaxed);
        // 16 + 1 + up to 20 characters: always a valid id.
        ClientMsgId::parse(format!("{prefix:016x}-{n}"))
            .unwrap_or_else(|_| ClientMsgId::parse("x").unwrap_or_else(|_| unreachable_id()))
    }

    /// Sends any request and returns the server's reply.
    pub async fn request(&self, request: Request) -> Result<ServerMessage, Error> {
        let (reply, rx) = oneshot::channel();
        self.commands
            .send(Command::Request { request, reply })
            .map_err(|_| Error::Stopped)?;
        rx.await.map_err(|_| Error::Stopped)?
    }

    /// Hands `events` to the application through the task, after what it
    /// passed on before (a stopped client drops them).
    pub(crate) fn emit(&self, events: Vec<Event>) {
        if !events.is_empty() {
            let _ = self.commands.send(Command::Emit(events));
        }
    }

    /// Sends a message and waits until it is stored. While disconnected it
    /// waits in the queue and goes out (once) after the reconnect.
    pub async fn send(&self, to: Conversation, body: Body) -> Result<Sent, Error> {
        self.send_with_id(to, body, Self::new_client_id()).await
    }

    /// As [`Client::send`], with a chosen `client_id` (a retry of an earlier
    /// send reuses its id and is stored once).
    pub async fn send_with_id(
        &self,
        to: Conversation,
        body: Body,
        client_id: ClientMsgId,
    ) -> Result<Sent, Error> {
        self.send_file_with_id(to, body, None, client_id).await
    }

    /// As [`Client::send_with_id`], sharing a finished upload (`file`):
    /// the message carries the file's name, size, type and SHA-256.
    pub async fn send_file_with_id(
        &self,
        to: Conversation,
        body: Body,
        file: Option<FileId>,
        client_id: ClientMsgId,
    ) -> Result<Sent, Error> {
        self.queue(
            to,
            body,
            client_id,
            Op::Message {
                file,
                reply_to: None,
                encrypted: false,
            },
        )
        .await
    }

    /// Queues a message or a change until the server acknowledges it. A
    /// message or an edit in an end-to-end encrypted conversation (an
    /// encrypted room, or a direct conversation that is encrypted or new)
    /// is encrypted first, and its key shared with the members' devices.
    /// Reactions and deletions carry no text and go as they are.
    pub(crate) async fn queue(
        &self,
        to: Conversation,
        body: Body,
        client_id: ClientMsgId,
        op: Op,
    ) -> Result<Sent, Error> {
        if op.sealed(false).is_none() {
            return self.queue_as_is(to, body, client_id, op).await;
        }
        let mut encrypt = self.should_encrypt(&to).await?;
        // At most twice: the server may know better that a conversation is
        // encrypted (`encryption_required`). The other way round (a
        // ciphertext to a clear conversation) is never retried in clear:
        // a lying server must not be able to turn encryption off.
        for _ in 0..2 {
            let wire_body = if encrypt {
                self.encrypt_for(&to, &body).await?
            } else {
                body.clone()
            };
            let sealed = op.sealed(encrypt).unwrap_or_else(|| op.clone());
            match self
                .queue_as_is(to.clone(), wire_body, client_id.clone(), sealed)
                .await
            {
                Err(e)
                    if e.code() == Some(ErrorCode::EncryptionRequired)
                        && !encrypt
                        && self.e2ee.enabled() =>
                {
                    self.set_encrypted(&to, true);
                    encrypt = true;
                }
                Ok(sent) => {
                    self.set_encrypted(&to, encrypt);
                    return Ok(sent);
                }
                Err(e) => return Err(e),
            }
        }
        Err(Error::E2ee(
            "the server keeps refusing this message's encryption".into(),
        ))
    }

    /// Opens a message of a `history` page (or any message): a ciphertext
    /// of an encrypted conversation is decrypted in place (see
    /// [`Opened`]); a clear message is left as it is. Events need no
    /// opening: the client opens them before they arrive.
    ///
    /// In an encrypted conversation the server sends a reply's quote
    /// without its excerpt (it cannot read the quoted text); opening fills
    /// it from this client's decrypted copy of the quoted message when it
    /// has one (opened earlier in this process, or earlier in the same
    /// page: open a page's messages oldest first, as it lists them).
    pub fn open(&self, message: &mut chatus_protocol::message::Message) -> Opened {
        self.e2ee.open(message)
    }

    /// Opens several messages (a history page's, oldest first) under one
    /// lock of the device, saving its state once: as [`Client::open`].
    pub fn open_all(&self, messages: &mut [chatus_protocol::message::Message]) -> Vec<Opened> {
        self.e2ee.open_all(messages)
    }

    /// Opens a change of a `history` page: an edit's ciphertext in an
    /// encrypted conversation is decrypted in place; one that cannot be
    /// is left without a body (the message then shows as edited, with the
    /// text it had) and reported [`Opened::Undecryptable`]. Other changes
    /// are [`Opened::Clear`] (a reaction's emoji is in clear, on purpose).
    /// Live changes need no opening: the client opens them before they
    /// arrive.
    pub fn open_change(&self, change: &mut chatus_protocol::event::Change) -> Opened {
        self.e2ee.open_change(change)
    }

    /// Queues a send as given.
    async fn queue_as_is(
        &self,
        to: Conversation,
        body: Body,
        client_id: ClientMsgId,
        op: Op,
    ) -> Result<Sent, Error> {
        let (reply, rx) = oneshot::channel();
        self.commands
            .send(Command::Send {
                to,
                body,
                client_id,
                op,
                reply,
            })
            .map_err(|_| Error::Stopped)?;
        rx.await.map_err(|_| Error::Stopped)?
    }

    /// Sends a message answering message `seq` of the same conversation
    /// (queued like [`Client::send`]).
    pub async fn reply(&self, to: Conversation, seq: Seq, body: Body) -> Result<Sent, Error> {
        self.reply_with_id(to, seq, body, Self::new_client_id())
            .await
    }

    /// As [`Client::reply`], with a chosen `client_id`.
    pub async fn reply_with_id(
        &self,
        to: Conversation,
        seq: Seq,
        body: Body,
        client_id: ClientMsgId,
    ) -> Result<Sent, Error> {
        // Encrypted by `queue` where the conversation is.
        let op = Op::Message {
            file: None,
            reply_to: Some(seq),
            encrypted: false,
        };
        self.queue(to, body, client_id, op).await
    }

    /// Replaces the text of our message `seq`; `sent` names the edit's own
    /// `seq`. Queued like a send: it goes out once, after a reconnect if
    /// need be; in an encrypted conversation the new text is encrypted as
    /// a message is.
    pub async fn edit(&self, to: Conversation, seq: Seq, body: Body) -> Result<Sent, Error> {
        let op = Op::Edit {
            seq,
            encrypted: false,
        };
        self.queue(to, body, Self::new_client_id(), op).await
    }

    /// Deletes our message `seq` (or any, in a room we created): its text
    /// is erased on the server.
    pub async fn delete(&self, to: Conversation, seq: Seq) -> Result<Sent, Error> {
        // The body of a deletion is never sent; the queue wants one.
        let body = Body::parse("-").map_err(|e| Error::Server {
            code: e.code,
            message: e.message,
            retry_after: None,
        })?;
        self.queue(to, body, Self::new_client_id(), Op::Delete(seq))
            .await
    }

    /// Adds (`on`) or takes back our reaction `emoji` on message `seq`.
    pub async fn react(
        &self,
        to: Conversation,
        seq: Seq,
        emoji: Emoji,
        on: bool,
    ) -> Result<Sent, Error> {
        let body = Body::parse(emoji.as_str()).map_err(|e| Error::Server {
            code: e.code,
            message: e.message,
            retry_after: None,
        })?;
        self.queue(to, body, Self::new_client_id(), Op::React(seq, emoji, on))
            .await
    }

    /// Every text message `seq` had, oldest first (empty once deleted),
    /// decrypted in an encrypted conversation; a version this device
    /// cannot decrypt keeps its ciphertext (see
    /// [`Client::versions_opened`] to tell).
    pub async fn versions(&self, conv: Conversation, seq: Seq) -> Result<Vec<Version>, Error> {
        Ok(self
            .versions_opened(conv, seq)
            .await?
            .into_iter()
            .map(|(v, _)| v)
            .collect())
    }

    /// As [`Client::versions`], with what opening each version found.
    pub async fn versions_opened(
        &self,
        conv: Conversation,
        seq: Seq,
    ) -> Result<Vec<(Version, Opened)>, Error> {
        match self
            .request(Request::Versions(Versions {
                conv: conv.clone(),
                seq,
            }))
            .await?
        {
            ServerMessage::Versions(v) => Ok(self.e2ee.open_versions(&conv, v.versions)),
            other => Err(unexpected(&other)),
        }
    }

    /// Messages matching a search, best first (see `search` in
    /// docs/PROTOCOL.md); `more` and `next` page on.
    pub async fn search(&self, search: Search) -> Result<SearchResults, Error> {
        match self.request(Request::Search(search)).await? {
            ServerMessage::SearchResults(r) => Ok(r),
            other => Err(unexpected(&other)),
        }
    }

    /// The files shared in a conversation, newest first.
    pub async fn list_files(
        &self,
        conv: Conversation,
        limit: Option<u32>,
    ) -> Result<FileList, Error> {
        match self
            .request(Request::ListFiles(ListFiles { conv, limit }))
            .await?
        {
            ServerMessage::Files(f) => Ok(f),
            other => Err(unexpected(&other)),
        }
    }

    /// A page of history.
    pub async fn history(
        &self,
        conv: Conversation,
        page: Page,
        limit: Option<u32>,
    ) -> Result<HistoryPage, Error> {
        match self
            .request(Request::History(History { conv, page, limit }))
            .await?
        {
            ServerMessage::History(h) => Ok(h),
            other => Err(unexpected(&other)),
        }
    }

    /// Rooms we may see.
    pub async fn rooms(&self) -> Result<Vec<RoomInfo>, Error> {
        match self.request(Request::ListRooms(ListRooms {})).await? {
            ServerMessage::Rooms(r) => {
                let convs: Vec<(Conversation, bool)> = r
                    .rooms
                    .iter()
                    .filter(|i| i.joined)
                    .map(|i| (Conversation::Room(i.name.clone()), i.encrypted))
                    .collect();
                self.e2ee.learn(convs.iter().map(|(c, e)| (c, *e)));
                Ok(r.rooms)
            }
            other => Err(unexpected(&other)),
        }
    }

    /// Members of a room with their presence.
    pub async fn members(&self, room: RoomName) -> Result<Vec<Member>, Error> {
        match self
            .request(Request::ListMembers(ListMembers { room }))
            .await?
        {
            ServerMessage::Members(m) => Ok(m.members),
            other => Err(unexpected(&other)),
        }
    }

    /// Users online now.
    pub async fn who(&self) -> Result<Vec<Member>, Error> {
        match self.request(Request::Who(Who {})).await? {
            ServerMessage::Users(u) => Ok(u.users),
            other => Err(unexpected(&other)),
        }
    }

    /// Creates a room and joins it.
    pub async fn create_room(
        &self,
        room: RoomName,
        visibility: Visibility,
    ) -> Result<RoomInfo, Error> {
        self.create(room, visibility, false).await
    }

    /// Creates a private, end-to-end encrypted room and joins it: every
    /// message to it is encrypted, for good.
    pub async fn create_encrypted_room(&self, room: RoomName) -> Result<RoomInfo, Error> {
        self.create(room, Visibility::Private, true).await
    }

    async fn create(
        &self,
        room: RoomName,
        visibility: Visibility,
        encrypted: bool,
    ) -> Result<RoomInfo, Error> {
        match self
            .request(Request::CreateRoom(CreateRoom {
                room,
                visibility,
                encrypted,
            }))
            .await?
        {
            ServerMessage::Joined(j) => {
                self.set_encrypted(&Conversation::Room(j.room.name.clone()), j.room.encrypted);
                Ok(j.room)
            }
            other => Err(unexpected(&other)),
        }
    }

    /// Joins a room.
    pub async fn join(&self, room: RoomName) -> Result<RoomInfo, Error> {
        match self.request(Request::JoinRoom(JoinRoom { room })).await? {
            ServerMessage::Joined(j) => {
                self.set_encrypted(&Conversation::Room(j.room.name.clone()), j.room.encrypted);
                Ok(j.room)
            }
            other => Err(unexpected(&other)),
        }
    }

    /// Leaves a room.
    pub async fn leave(&self, room: RoomName) -> Result<(), Error> {
        match self.request(Request::LeaveRoom(LeaveRoom { room })).await? {
            ServerMessage::Ok(_) => Ok(()),
            other => Err(unexpected(&other)),
        }
    }

    /// Invites a user to a room.
    pub async fn invite(&self, room: RoomName, user: Username) -> Result<(), Error> {
        match self.request(Request::Invite(Invite { room, user })).await? {
            ServerMessage::Ok(_) => Ok(()),
            other => Err(unexpected(&other)),
        }
    }

    /// Declines our invitation to a room: the server forgets it (a private
    /// room then leaves our room list). Fails with `not_invited` when we
    /// hold none.
    pub async fn decline_invite(&self, room: RoomName) -> Result<(), Error> {
        match self
            .request(Request::DeclineInvite(DeclineInvite { room }))
            .await?
        {
            ServerMessage::Ok(_) => Ok(()),
            other => Err(unexpected(&other)),
        }
    }

    /// Our conversations with their read state.
    pub async fn conversations(&self) -> Result<Vec<ConversationInfo>, Error> {
        match self
            .request(Request::Conversations(Conversations {}))
            .await?
        {
            ServerMessage::Conversations(c) => {
                self.e2ee
                    .learn(c.conversations.iter().map(|i| (&i.conv, i.encrypted)));
                Ok(c.conversations)
            }
            other => Err(unexpected(&other)),
        }
    }

    /// Sets our display name (`None` clears it). Shown beside our user name,
    /// never instead of it; those who share a conversation with us get
    /// [`Event::Profile`], and so do our own connections.
    pub async fn set_display_name(
        &self,
        display_name: Option<chatus_protocol::profile::DisplayName>,
    ) -> Result<(), Error> {
        let request = chatus_protocol::profile::SetDisplayName { display_name };
        match self.request(Request::SetDisplayName(request)).await? {
            ServerMessage::Ok(_) => Ok(()),
            other => Err(unexpected(&other)),
        }
    }

    /// Says that we started (`true`) or stopped typing in `conv`. The
    /// server lets the state lapse after about five seconds: while the
    /// user types, call this again every three seconds or so.
    pub async fn set_typing(&self, conv: Conversation, typing: bool) -> Result<(), Error> {
        match self
            .request(Request::Typing(SetTyping { conv, typing }))
            .await?
        {
            ServerMessage::Ok(_) => Ok(()),
            other => Err(unexpected(&other)),
        }
    }

    /// Moves our read marker, with the conversation's default receipt
    /// (public in a direct conversation, private in a room).
    pub async fn mark_read(&self, conv: Conversation, seq: Seq) -> Result<(), Error> {
        self.mark_read_as(conv, seq, None).await
    }

    /// Moves our read marker, showing it to the members (`Public`) or not
    /// (`Private`); `None`: the conversation's default.
    pub async fn mark_read_as(
        &self,
        conv: Conversation,
        seq: Seq,
        receipt: Option<chatus_protocol::receipt::Receipt>,
    ) -> Result<(), Error> {
        match self
            .request(Request::MarkRead(MarkRead { conv, seq, receipt }))
            .await?
        {
            ServerMessage::Ok(_) => Ok(()),
            other => Err(unexpected(&other)),
        }
    }

    /// The members' public read markers in a conversation, furthest first.
    pub async fn receipts(
        &self,
        conv: Conversation,
    ) -> Result<chatus_protocol::receipt::ReceiptList, Error> {
        match self
            .request(Request::Receipts(chatus_protocol::receipt::QueryReceipts {
                conv,
            }))
            .await?
        {
            ServerMessage::ReceiptList(r) => Ok(r),
            other => Err(unexpected(&other)),
        }
    }

    /// Revokes our token on the server; the connection then closes and the
    /// client stops.
    pub async fn logout(&self) -> Result<(), Error> {
        match self.request(Request::Logout(Logout::default())).await? {
            ServerMessage::Ok(_) => Ok(()),
            other => Err(unexpected(&other)),
        }
    }

    /// Revokes every session of our user on the server (every device is
    /// logged out); the connection then closes and the client stops.
    pub async fn logout_everywhere(&self) -> Result<(), Error> {
        match self
            .request(Request::Logout(Logout { everywhere: true }))
            .await?
        {
            ServerMessage::Ok(_) => Ok(()),
            other => Err(unexpected(&other)),
        }
    }

    /// Changes our password. The server checks `current` (a wrong one is
    /// `bad_credentials`, and counts as a failed login), stores `new`, and
    /// revokes every other session of the user; this client stays logged
    /// in with its token and keeps reconnecting with it.
    pub async fn change_password(&self, current: Password, new: Password) -> Result<(), Error> {
        match self
            .request(Request::ChangePassword(ChangePassword { current, new }))
            .await?
        {
            ServerMessage::Ok(_) => Ok(()),
            other => Err(unexpected(&other)),
        }
    }

    /// Closes the connection cleanly (a WebSocket close frame) and stops.
    pub async fn quit(&self) {
        let (reply, rx) = oneshot::channel();
        if self.commands.send(Command::Quit { reply }).is_ok() {
            let _ = rx.await;
        }
    }
}

#[cold]
fn unreachable_id() -> ClientMsgId {
    // `ClientMsgId::parse("x")` cannot fail; this keeps the code panic-free.
    ClientMsgId::parse("0").unwrap_or_else(|_| unreachable_id())
}
