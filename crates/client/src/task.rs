//! The background task that owns the connection.
//!
//! It moves between three states: connecting (hello, log in, catch up,
//! resend what is pending), connected (relay commands out and replies and
//! events in), and disconnected (wait with backoff, answer requests with
//! `Disconnected`, keep sends queued). Sends are kept until the server
//! acknowledges them and are resent with the same `client_id` after a
//! reconnect, so each is stored once; `rate_limited` sends are retried when
//! the server says, and so are catch-up requests that meet the server's
//! request budget (the catch-up waits rather than starting over). A connection quiet for [`Config::keepalive`] is pinged,
//! and one quiet for twice that is given up and replaced.
//!
//! The send queue lives in `sends`, the WebSocket reading and writing in
//! `wire`.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use chatus_protocol::auth::{Auth, Login, Register};
use chatus_protocol::event::Change;
use chatus_protocol::hello::{Hello, Limits};
use chatus_protocol::history::{Conversations, History, Page};
use chatus_protocol::message::Sent;
use chatus_protocol::{
    Body, ClientLabel, ClientMsgId, Conversation, Envelope, ErrorCode, PROTOCOL_VERSION, Request,
    RequestId, Seq, ServerMessage,
};
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt as _, StreamExt as _};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message as WsMessage;

mod sends;
mod wire;

use crate::config::{Config, Credentials, Resume};
use crate::cursors::Cursors;
use crate::e2ee::worker::Out;
use crate::error::Error;
use crate::event::{Event, Status};
pub(crate) use sends::Op;
use sends::PendingSend;
pub(crate) use wire::connect_failure;
use wire::{close_link, read, write};

/// How long a TCP connect plus upgrade may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Page size used when catching up.
const CATCH_UP_PAGE: u32 = 200;
/// Longest wait for the server's request budget between two catch-up
/// requests, whatever it says.
const MAX_PACE: Duration = Duration::from_secs(30);

type Ws = WebSocketStream<crate::tls::Stream>;

/// What the handle asks the task to do.
pub(crate) enum Command {
    /// Send a request; reply with the server's answer.
    Request {
        request: Request,
        reply: oneshot::Sender<Result<ServerMessage, Error>>,
    },
    /// Send a message until the server acknowledges it.
    Send {
        to: Conversation,
        body: Body,
        client_id: ClientMsgId,
        op: Op,
        reply: oneshot::Sender<Result<Sent, Error>>,
    },
    /// Close the connection and stop.
    Quit { reply: oneshot::Sender<()> },
    /// Pass these events on to the application, in order after what came
    /// before (messages a restored key backup opened).
    Emit(Vec<Event>),
}

/// Why a connection ended.
enum Lost {
    /// The application asked to stop.
    Quit,
    /// Stop: retrying cannot help.
    Fatal(Error),
    /// Reconnect (at once when `now`).
    Retry { error: Error, now: bool },
}

impl Lost {
    /// The connection dropped (or went silent): reconnect after backoff.
    fn dropped() -> Lost {
        Lost::Retry {
            error: Error::Disconnected,
            now: false,
        }
    }
}

/// One live connection's halves and what arrived before we were ready.
struct Link {
    sink: SplitSink<Ws, WsMessage>,
    stream: SplitStream<Ws>,
    /// Messages read while waiting for a reply, handled later in order.
    buffered: VecDeque<ServerMessage>,
    /// When the server was last heard from (any frame, pings included).
    heard: Instant,
}

pub(crate) struct Task {
    config: Config,
    /// To the end-to-end encryption worker, which passes events on.
    events: mpsc::UnboundedSender<Out>,
    /// Where the connection stands, for status lines.
    status: watch::Sender<Status>,
    /// Logged in at least once (from then on `reconnect` applies rather
    /// than `first_connect`).
    connected_once: bool,
    sends: VecDeque<PendingSend>,
    cursors: Option<Cursors>,
    /// Whether cursors hold the server's positions yet (see `Resume`).
    cursors_ready: bool,
    next_id: u64,
    /// The server's limits, from the last `welcome`.
    limits: Option<Limits>,
    /// A send was answered `rate_limited` and the queue has not drained
    /// since: send one at a time.
    throttled: bool,
}

impl Task {
    pub(crate) fn new(
        config: Config,
        events: mpsc::UnboundedSender<Out>,
        status: watch::Sender<Status>,
    ) -> Self {
        let (cursors, ready) = match &config.resume {
            Resume::Off => (None, true),
            Resume::FromNow => (Some(Cursors::new()), false),
            Resume::From(c) => (Some(c.clone()), true),
        };
        Self {
            config,
            events,
            status,
            connected_once: false,
            sends: VecDeque::new(),
            cursors,
            cursors_ready: ready,
            next_id: 1,
            limits: None,
            throttled: false,
        }
    }

    /// Passes an event on (through the worker, which wakes the UI).
    fn emit(&self, event: Event) {
        let _ = self.events.send(Out::Event(Box::new(event)));
    }

    /// Passes events from a [`Command::Emit`] on, in order.
    fn emit_all(&self, events: Vec<Event>) {
        for event in events {
            self.emit(event);
        }
    }

    fn next_id(&mut self) -> RequestId {
        self.next_id += 1;
        RequestId(self.next_id)
    }

    /// The task body: connect, serve, and reconnect until told to stop.
    pub(crate) async fn run(mut self, mut commands: mpsc::UnboundedReceiver<Command>) {
        let mut attempt: u32 = 0;
        let error = loop {
            self.status.send_replace(Status::Connecting {
                attempt: attempt + 1,
            });
            let lost = match self.connect().await {
                Ok(link) => {
                    attempt = 0;
                    self.serve(link, &mut commands).await
                }
                Err(lost) => lost,
            };
            let (error, now) = match lost {
                Lost::Quit => break None,
                Lost::Fatal(e) => break Some(e),
                Lost::Retry { error, now } => (error, now),
            };
            attempt += 1;
            let policy = match self.config.first_connect {
                Some(first) if !self.connected_once => first,
                _ => self.config.reconnect,
            };
            if policy.attempts.is_some_and(|max| attempt > max) {
                break Some(error);
            }
            let delay = if now && attempt == 1 {
                Duration::ZERO
            } else {
                policy.delay(attempt)
            };
            tracing::debug!(cause = %error, ?delay, "disconnected");
            self.status.send_replace(Status::Waiting {
                error: error.clone(),
                retry_in: delay,
            });
            self.emit(Event::Disconnected {
                reason: error.to_string(),
                retry_in: Some(delay),
            });
            if self.wait(delay, &mut commands).await {
                break None;
            }
        };
        self.status.send_replace(Status::Stopped);
        let failure = error.clone().unwrap_or(Error::Stopped);
        for p in self.sends.drain(..) {
            let _ = p.reply.send(Err(failure.clone()));
        }
        // Requests still queued get an answer rather than a dropped channel.
        commands.close();
        while let Ok(cmd) = commands.try_recv() {
            fail_command(cmd, &failure);
        }
        self.emit(Event::Stopped { error });
    }

    /// Waits out a reconnect delay while answering commands; true on quit.
    async fn wait(
        &mut self,
        delay: Duration,
        commands: &mut mpsc::UnboundedReceiver<Command>,
    ) -> bool {
        let deadline = Instant::now() + delay;
        loop {
            tokio::select! {
                () = tokio::time::sleep_until(deadline) => return false,
                cmd = commands.recv() => match cmd {
                    None => return true,
                    Some(Command::Quit { reply }) => {
                        let _ = reply.send(());
                        return true;
                    }
                    Some(Command::Send { to, body, client_id, op, reply }) => self.sends.push_back(
                        PendingSend { to, body, client_id, op, reply, request_id: None, not_before: None },
                    ),
                    Some(Command::Request { reply, .. }) => {
                        let _ = reply.send(Err(Error::Disconnected));
                    }
                    Some(Command::Emit(events)) => self.emit_all(events),
                },
            }
        }
    }

    /// Connects, says hello, logs in, catches up and resends pending sends.
    async fn connect(&mut self) -> Result<Link, Lost> {
        let ws =
            match crate::tls::websocket(&self.config.server, &self.config.trust, CONNECT_TIMEOUT)
                .await
            {
                Ok(ws) => ws,
                Err(e @ Error::Unreachable { .. }) => {
                    return Err(Lost::Retry {
                        error: e,
                        now: false,
                    });
                }
                // Certificates and schemes: retrying cannot help.
                Err(e) => return Err(Lost::Fatal(e)),
            };
        let (sink, stream) = ws.split();
        let mut link = Link {
            sink,
            stream,
            buffered: VecDeque::new(),
            heard: Instant::now(),
        };

        let label = ClientLabel::parse(self.config.client_label.clone()).ok();
        let hello = Request::Hello(Hello {
            version: PROTOCOL_VERSION,
            client: label,
            presence: self.config.presence,
        });
        match self.call(&mut link, hello).await? {
            Ok(ServerMessage::Welcome(w)) => self.limits = Some(w.limits),
            Ok(other) => return Err(Lost::Fatal(unexpected(&other))),
            Err(e) => return Err(Lost::Fatal(e)),
        }

        let login = match &self.config.credentials {
            Credentials::Token(token) => Request::Auth(Auth {
                token: token.clone(),
            }),
            Credentials::Login { username, password } => Request::Login(Login {
                username: username.clone(),
                password: password.clone(),
            }),
            Credentials::Register { username, password } => Request::Register(Register {
                username: username.clone(),
                password: password.clone(),
            }),
        };
        let authed = match self.call(&mut link, login).await? {
            Ok(ServerMessage::Authed(a)) => a,
            Ok(other) => return Err(Lost::Fatal(unexpected(&other))),
            Err(e) if e.is_fatal_for_login() => return Err(Lost::Fatal(e)),
            Err(e) => {
                return Err(Lost::Retry {
                    error: e,
                    now: false,
                });
            }
        };
        if let Some(token) = &authed.token {
            // Reconnect with the token from now on (a retried `register`
            // would fail with `username_taken`).
            self.config.credentials = Credentials::Token(token.clone());
        }
        self.connected_once = true;
        self.status.send_replace(Status::Connected);
        self.emit(Event::Connected {
            user: authed.user,
            token: authed.token,
            display_name: authed.display_name,
            limits: self.limits.unwrap_or(Limits {
                max_frame_bytes: 0,
                max_body_bytes: 0,
                history_page_max: 0,
            }),
        });

        if self.cursors.is_some() {
            self.catch_up(&mut link).await?;
        }
        // A new connection: whatever held sends back on the old one (a rate
        // limit, a server going down) is for the new server to say again.
        for p in &mut self.sends {
            p.request_id = None;
            p.not_before = None;
        }
        self.pump(&mut link).await?;
        Ok(link)
    }

    /// Sends one request and waits for its reply, buffering anything else.
    async fn call(
        &mut self,
        link: &mut Link,
        request: Request,
    ) -> Result<Result<ServerMessage, Error>, Lost> {
        let id = self.next_id();
        write(
            &mut link.sink,
            &Envelope {
                id: Some(id),
                request,
            },
        )
        .await?;
        let deadline = Instant::now() + self.config.request_timeout;
        loop {
            let msg =
                match tokio::time::timeout_at(deadline, read(&mut link.stream, &mut link.heard))
                    .await
                {
                    Err(_) => return Err(Lost::dropped()),
                    Ok(r) => r?,
                };
            if msg.reply_to() == Some(id) {
                return Ok(match msg {
                    ServerMessage::Error(e) => Err(e.into()),
                    other => Ok(other),
                });
            }
            link.buffered.push_back(msg);
        }
    }

    /// As [`Task::call`], but a `rate_limited` answer (the server's request
    /// budget) is waited out as the server says and the request sent again.
    async fn call_paced(
        &mut self,
        link: &mut Link,
        request: Request,
    ) -> Result<Result<ServerMessage, Error>, Lost> {
        loop {
            match self.call(link, request.clone()).await? {
                Err(Error::Server {
                    code: ErrorCode::RateLimited,
                    retry_after,
                    ..
                }) => {
                    let wait = retry_after.unwrap_or(Duration::from_secs(1)).min(MAX_PACE);
                    tracing::debug!(?wait, "catch-up paced by the server's request budget");
                    tokio::time::sleep(wait).await;
                }
                other => return Ok(other),
            }
        }
    }

    /// Fetches what was missed in every conversation since its cursor.
    async fn catch_up(&mut self, link: &mut Link) -> Result<(), Lost> {
        let list = match self
            .call_paced(link, Request::Conversations(Conversations {}))
            .await?
        {
            Ok(ServerMessage::Conversations(l)) => {
                let _ = self
                    .events
                    .send(Out::Conversations(l.conversations.clone()));
                l.conversations
            }
            Ok(other) => return Err(Lost::Fatal(unexpected(&other))),
            // Without the list there is no knowing what was missed: going
            // on would let the next live message jump a cursor over a gap.
            Err(e) => {
                return Err(Lost::Retry {
                    error: e,
                    now: false,
                });
            }
        };
        let Some(mut cursors) = self.cursors.take() else {
            return Ok(());
        };
        if !self.cursors_ready {
            // "From now" means from `authed`: messages that arrived while
            // the list was on its way are already counted in `last_seq` but
            // are live, so the cursor starts just before the first of them.
            for info in &list {
                if cursors.get(&info.conv).is_none() {
                    let first_live = link
                        .buffered
                        .iter()
                        .filter_map(|m| match live_change(m) {
                            Some(c) if *c.conv() == info.conv => Some(c.seq()),
                            _ => match m {
                                ServerMessage::Message(m) if m.conv == info.conv => Some(m.seq),
                                _ => None,
                            },
                        })
                        .min();
                    let from = match first_live {
                        Some(first) if first <= info.last_seq => Seq(first.0.saturating_sub(1)),
                        _ => info.last_seq,
                    };
                    cursors.set(info.conv.clone(), from);
                }
            }
            self.cursors_ready = true;
            self.cursors = Some(cursors);
            return Ok(());
        }
        let mut result = Ok(());
        for info in list {
            let from = cursors.get(&info.conv);
            if from.is_some_and(|f| f >= info.last_seq) || info.last_seq == Seq(0) {
                continue;
            }
            let mut page = match from {
                Some(f) => Page::After(f),
                // A conversation new to us: its latest page is enough.
                None => Page::Latest,
            };
            loop {
                let req = Request::History(History {
                    conv: info.conv.clone(),
                    page,
                    limit: Some(CATCH_UP_PAGE),
                });
                let reply = match self.call_paced(link, req).await {
                    Ok(r) => r,
                    Err(lost) => {
                        result = Err(lost);
                        break;
                    }
                };
                let h = match reply {
                    Ok(ServerMessage::History(h)) => h,
                    Ok(other) => {
                        result = Err(Lost::Fatal(unexpected(&other)));
                        break;
                    }
                    // Left (or never in) since: nothing to catch up there.
                    Err(e)
                        if matches!(
                            e.code(),
                            Some(
                                ErrorCode::NotMember
                                    | ErrorCode::UnknownRoom
                                    | ErrorCode::UnknownUser
                            )
                        ) =>
                    {
                        tracing::debug!(cause = %e, conv = %info.conv, "catch-up skipped");
                        break;
                    }
                    Err(e) => {
                        result = Err(Lost::Retry {
                            error: e,
                            now: false,
                        });
                        break;
                    }
                };
                let last = h
                    .messages
                    .last()
                    .map(|m| m.seq)
                    .max(h.changes.last().map(Change::seq));
                // Messages and changes, merged back into `seq` order.
                let mut changes = h.changes.into_iter().peekable();
                for m in h.messages {
                    while let Some(c) = changes.next_if(|c| c.seq() < m.seq) {
                        if cursors.advance(c.conv(), c.seq()) {
                            self.emit(Event::Change {
                                change: c,
                                live: false,
                            });
                        }
                    }
                    if cursors.advance(&m.conv, m.seq) {
                        self.emit(Event::Message {
                            message: m,
                            live: false,
                        });
                    }
                }
                for c in changes {
                    if cursors.advance(c.conv(), c.seq()) {
                        self.emit(Event::Change {
                            change: c,
                            live: false,
                        });
                    }
                }
                match (h.more, page, last) {
                    (true, Page::After(_), Some(last)) => page = Page::After(last),
                    _ => break,
                }
            }
            if result.is_err() {
                break;
            }
        }
        self.cursors = Some(cursors);
        result
    }

    /// The connected state: relays commands out and messages in.
    async fn serve(
        &mut self,
        mut link: Link,
        commands: &mut mpsc::UnboundedReceiver<Command>,
    ) -> Lost {
        let mut pending: HashMap<RequestId, oneshot::Sender<Result<ServerMessage, Error>>> =
            HashMap::new();
        while let Some(msg) = link.buffered.pop_front() {
            self.on_message(msg, &mut pending);
        }
        if let Err(lost) = self.pump(&mut link).await {
            return lost;
        }
        let keepalive = self.config.keepalive;
        let mut pinged = false;
        let lost = loop {
            let retry_at = self
                .sends
                .iter()
                .filter(|p| p.request_id.is_none())
                .filter_map(|p| p.not_before)
                .min();
            // Quiet for `keepalive`: ping; quiet for twice that: the
            // connection is dead even if TCP has not noticed (a laptop
            // that slept, a network that changed).
            let check_at = link.heard + if pinged { keepalive * 2 } else { keepalive };
            tokio::select! {
                () = tokio::time::sleep_until(check_at) => {
                    let quiet = link.heard.elapsed();
                    if quiet >= keepalive * 2 {
                        break Lost::dropped();
                    }
                    if quiet >= keepalive {
                        if link.sink.send(WsMessage::Ping(Vec::new().into())).await.is_err() {
                            break Lost::dropped();
                        }
                        pinged = true;
                    } else {
                        pinged = false;
                    }
                }
                msg = read(&mut link.stream, &mut link.heard) => match msg {
                    Ok(msg) => {
                        let ack = msg.reply_to().is_some() && !pending.is_empty() || matches!(msg, ServerMessage::Sent(_) | ServerMessage::Error(_));
                        self.on_message(msg, &mut pending);
                        if ack
                            && let Err(lost) = self.pump(&mut link).await {
                                break lost;
                            }
                    }
                    Err(lost) => break lost,
                },
                cmd = commands.recv() => match cmd {
                    None => {
                        close_link(&mut link, "client dropped").await;
                        break Lost::Quit;
                    }
                    Some(Command::Quit { reply }) => {
                        close_link(&mut link, "quit").await;
                        let _ = reply.send(());
                        break Lost::Quit;
                    }
                    Some(Command::Request { request, reply }) => {
                        let id = self.next_id();
                        if let Err(lost) = write(&mut link.sink, &Envelope { id: Some(id), request }).await {
                            let _ = reply.send(Err(Error::Disconnected));
                            break lost;
                        }
                        pending.insert(id, reply);
                    }
                    Some(Command::Send { to, body, client_id, op, reply }) => {
                        self.sends.push_back(PendingSend { to, body, client_id, op, reply, request_id: None, not_before: None });
                        if let Err(lost) = self.pump(&mut link).await {
                            break lost;
                        }
                    }
                    Some(Command::Emit(events)) => self.emit_all(events),
                },
                () = sleep_until_opt(retry_at) => {
                    if let Err(lost) = self.pump(&mut link).await {
                        break lost;
                    }
                }
            }
        };
        for (_, reply) in pending {
            let _ = reply.send(Err(Error::Disconnected));
        }
        for p in &mut self.sends {
            p.request_id = None;
        }
        lost
    }

    fn on_message(
        &mut self,
        msg: ServerMessage,
        pending: &mut HashMap<RequestId, oneshot::Sender<Result<ServerMessage, Error>>>,
    ) {
        if let Some(id) = msg.reply_to() {
            if let Some(reply) = pending.remove(&id) {
                let _ = reply.send(match msg {
                    ServerMessage::Error(e) => Err(e.into()),
                    other => Ok(other),
                });
                return;
            }
            if let Some(i) = self.sends.iter().position(|p| p.request_id == Some(id)) {
                self.on_send_reply(i, msg);
            }
            return;
        }
        match msg {
            ServerMessage::Message(m) => {
                if let Some(c) = &mut self.cursors
                    && !c.advance(&m.conv, m.seq)
                {
                    return;
                }
                self.emit(Event::Message {
                    message: m,
                    live: true,
                });
            }
            ServerMessage::Edited(e) => self.on_change(Change::Edited(e)),
            ServerMessage::Deleted(d) => self.on_change(Change::Deleted(d)),
            ServerMessage::Reacted(r) => self.on_change(Change::Reacted(r)),
            ServerMessage::Moderated(m) => self.on_change(Change::Moderated(m)),
            ServerMessage::Presence(p) => self.emit(Event::Presence(p)),
            ServerMessage::Typing(t) => self.emit(Event::Typing(t)),
            ServerMessage::Read(r) => self.emit(Event::Read(r)),
            ServerMessage::MemberJoined(m) => self.emit(Event::MemberJoined(m)),
            ServerMessage::MemberLeft(m) => self.emit(Event::MemberLeft(m)),
            ServerMessage::Invited(m) => self.emit(Event::Invited(m)),
            ServerMessage::RoomRemoved(r) => {
                // The room is gone with its messages; nothing to resume.
                if let Some(c) = &mut self.cursors {
                    c.remove(&Conversation::Room(r.room.clone()));
                }
                self.emit(Event::RoomRemoved(r));
            }
            ServerMessage::Profile(p) => self.emit(Event::Profile(p)),
            ServerMessage::DeviceMessage(m) => {
                let _ = self.events.send(Out::DeviceMessage(m.message));
            }
            ServerMessage::KeyCount(_) => {
                let _ = self.events.send(Out::KeyCount);
            }
            other => tracing::debug!(?other, "ignored an unsolicited reply"),
        }
    }
}

impl Task {
    /// A live change: past the cursor (like a message), then emitted.
    fn on_change(&mut self, change: Change) {
        if let Some(c) = &mut self.cursors
            && !c.advance(change.conv(), change.seq())
        {
            return;
        }
        self.emit(Event::Change { change, live: true });
    }
}

/// The change a server message is, if it is one.
fn live_change(m: &ServerMessage) -> Option<Change> {
    match m {
        ServerMessage::Edited(e) => Some(Change::Edited(e.clone())),
        ServerMessage::Deleted(d) => Some(Change::Deleted(d.clone())),
        ServerMessage::Reacted(r) => Some(Change::Reacted(r.clone())),
        ServerMessage::Moderated(m) => Some(Change::Moderated(m.clone())),
        _ => None,
    }
}

/// Opens a connection to `server`, says hello and closes: is a ChatUs
/// server there?
pub(crate) async fn probe(
    server: &crate::url::ServerUrl,
    trust: &crate::known::Trust,
    timeout: Duration,
) -> Result<(), Error> {
    let unreachable = |reason: String| Error::Unreachable {
        url: server.to_string(),
        reason,
    };
    let mut ws = crate::tls::websocket(server, trust, timeout).await?;
    let hello = Envelope {
        id: Some(RequestId(1)),
        request: Request::Hello(Hello {
            version: PROTOCOL_VERSION,
            client: None,
            presence: false,
        }),
    };
    let answer = tokio::time::timeout(timeout, async {
        ws.send(WsMessage::Text(hello.encode().into())).await.ok()?;
        loop {
            match ws.next().await?.ok()? {
                WsMessage::Text(t) => return ServerMessage::decode(&t).ok(),
                WsMessage::Close(_) => return None,
                _ => {}
            }
        }
    })
    .await;
    let _ = ws.close(None).await;
    match answer {
        Ok(Some(ServerMessage::Welcome(_))) => Ok(()),
        Ok(Some(ServerMessage::Error(e))) => Err(e.into()),
        Ok(_) => Err(unreachable("it does not answer as a ChatUs server".into())),
        Err(_) => Err(unreachable("timed out".into())),
    }
}

fn fail_command(cmd: Command, error: &Error) {
    match cmd {
        Command::Request { reply, .. } => {
            let _ = reply.send(Err(error.clone()));
        }
        Command::Send { reply, .. } => {
            let _ = reply.send(Err(error.clone()));
        }
        Command::Quit { reply } => {
            let _ = reply.send(());
        }
        Command::Emit(_) => {}
    }
}

fn unexpected(msg: &ServerMessage) -> Error {
    Error::Protocol(format!("did not expect {msg:?}"))
}

async fn sleep_until_opt(t: Option<Instant>) {
    match t {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}
