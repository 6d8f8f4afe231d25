//! The background task that owns the connection.
//!
//! It moves between three states: connecting (hello, log in, catch up,
//! resend what is pending), connected (relay commands out and replies and
//! events in), and disconnected (wait with backoff, answer requests with
//! `Disconnected`, keep sends queued). Sends are kept until the server
//! acknowledges them and are resent with the same `client_id` after a
//! reconnect, so each is stored once; `rate_limited` sends are retried when
//! the server says.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use chatus_protocol::auth::{Auth, Login, Register};
use chatus_protocol::error::close;
use chatus_protocol::hello::{Hello, Limits};
use chatus_protocol::history::{Conversations, History, Page};
use chatus_protocol::message::{SendMessage, Sent};
use chatus_protocol::{
    Body, ClientLabel, ClientMsgId, Conversation, Envelope, ErrorCode, PROTOCOL_VERSION, Request,
    RequestId, Seq, ServerMessage,
};
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt as _, StreamExt as _};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::config::{Config, Credentials, Resume};
use crate::cursors::Cursors;
use crate::error::Error;
use crate::event::Event;

/// How long a TCP connect plus upgrade may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Page size used when catching up.
const CATCH_UP_PAGE: u32 = 200;
/// Most sends on the wire without an acknowledgement. Keeps the client
/// reading (acks and echoes) while it sends, so a burst of queued sends
/// never makes the server see it as a reader that cannot keep up.
const SEND_WINDOW: usize = 64;

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

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
        reply: oneshot::Sender<Result<Sent, Error>>,
    },
    /// Close the connection and stop.
    Quit { reply: oneshot::Sender<()> },
}

struct PendingSend {
    to: Conversation,
    body: Body,
    client_id: ClientMsgId,
    reply: oneshot::Sender<Result<Sent, Error>>,
    /// The request id on the current connection, once sent on it.
    request_id: Option<RequestId>,
    /// Do not send before this (after `rate_limited`).
    not_before: Option<Instant>,
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

/// One live connection's halves and what arrived before we were ready.
struct Link {
    sink: SplitSink<Ws, WsMessage>,
    stream: SplitStream<Ws>,
    /// Messages read while waiting for a reply, handled later in order.
    buffered: VecDeque<ServerMessage>,
    limits: Option<Limits>,
}

pub(crate) struct Task {
    config: Config,
    events: mpsc::UnboundedSender<Event>,
    sends: VecDeque<PendingSend>,
    cursors: Option<Cursors>,
    /// Whether cursors hold the server's positions yet (see `Resume`).
    cursors_ready: bool,
    next_id: u64,
}

impl Task {
    pub(crate) fn new(config: Config, events: mpsc::UnboundedSender<Event>) -> Self {
        let (cursors, ready) = match &config.resume {
            Resume::Off => (None, true),
            Resume::FromNow => (Some(Cursors::new()), false),
            Resume::From(c) => (Some(c.clone()), true),
        };
        Self {
            config,
            events,
            sends: VecDeque::new(),
            cursors,
            cursors_ready: ready,
            next_id: 1,
        }
    }

    fn emit(&self, event: Event) {
        if self.events.send(event).is_ok()
            && let Some(wake) = &self.config.wake
        {
            wake();
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
            if self
                .config
                .reconnect
                .attempts
                .is_some_and(|max| attempt > max)
            {
                break Some(error);
            }
            let delay = if now && attempt == 1 {
                Duration::ZERO
            } else {
                self.config.reconnect.delay(attempt)
            };
            tracing::debug!(cause = %error, ?delay, "disconnected");
            self.emit(Event::Disconnected {
                reason: error.to_string(),
                retry_in: Some(delay),
            });
            if self.wait(delay, &mut commands).await {
                break None;
            }
        };
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
                    Some(Command::Send { to, body, client_id, reply }) => self.sends.push_back(
                        PendingSend { to, body, client_id, reply, request_id: None, not_before: None },
                    ),
                    Some(Command::Request { reply, .. }) => {
                        let _ = reply.send(Err(Error::Disconnected));
                    }
                },
            }
        }
    }

    /// Connects, says hello, logs in, catches up and resends pending sends.
    async fn connect(&mut self) -> Result<Link, Lost> {
        let url = self.config.server.endpoint();
        let unreachable = |reason: String| Lost::Retry {
            error: Error::Unreachable {
                url: self.config.server.to_string(),
                reason,
            },
            now: false,
        };
        let ws = match tokio::time::timeout(
            CONNECT_TIMEOUT,
            tokio_tungstenite::connect_async_with_config(url.as_str(), None, true),
        )
        .await
        {
            Err(_) => return Err(unreachable("timed out".into())),
            Ok(Err(e)) => return Err(unreachable(e.to_string())),
            Ok(Ok((ws, _))) => ws,
        };
        let (sink, stream) = ws.split();
        let mut link = Link {
            sink,
            stream,
            buffered: VecDeque::new(),
            limits: None,
        };

        let label = ClientLabel::parse(self.config.client_label.clone()).ok();
        let hello = Request::Hello(Hello {
            version: PROTOCOL_VERSION,
            client: label,
        });
        match self.call(&mut link, hello).await? {
            Ok(ServerMessage::Welcome(w)) => link.limits = Some(w.limits),
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
        self.emit(Event::Connected {
            user: authed.user,
            token: authed.token,
            limits: link.limits.unwrap_or(Limits {
                max_frame_bytes: 0,
                max_body_bytes: 0,
                history_page_max: 0,
            }),
        });

        if self.cursors.is_some() {
            self.catch_up(&mut link).await?;
        }
        for p in &mut self.sends {
            p.request_id = None;
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
            let msg = match tokio::time::timeout_at(deadline, read(&mut link.stream)).await {
                Err(_) => {
                    return Err(Lost::Retry {
                        error: Error::Disconnected,
                        now: false,
                    });
                }
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

    /// Fetches what was missed in every conversation since its cursor.
    async fn catch_up(&mut self, link: &mut Link) -> Result<(), Lost> {
        let list = match self
            .call(link, Request::Conversations(Conversations {}))
            .await?
        {
            Ok(ServerMessage::Conversations(l)) => l.conversations,
            Ok(other) => return Err(Lost::Fatal(unexpected(&other))),
            Err(e) => {
                tracing::warn!(cause = %e, "could not list conversations to catch up");
                return Ok(());
            }
        };
        let Some(mut cursors) = self.cursors.take() else {
            return Ok(());
        };
        if !self.cursors_ready {
            for info in &list {
                if cursors.get(&info.conv).is_none() {
                    cursors.set(info.conv.clone(), info.last_seq);
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
                let reply = match self.call(link, req).await {
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
                    Err(e) => {
                        tracing::debug!(cause = %e, conv = %info.conv, "catch-up skipped");
                        break;
                    }
                };
                let last = h.messages.last().map(|m| m.seq);
                for m in h.messages {
                    if cursors.advance(&m.conv, m.seq) {
                        self.emit(Event::Message {
                            message: m,
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

    /// Puts queued sends on the wire, oldest first, up to the window.
    async fn pump(&mut self, link: &mut Link) -> Result<(), Lost> {
        let now = Instant::now();
        let mut in_flight = self.sends.iter().filter(|p| p.request_id.is_some()).count();
        for i in 0..self.sends.len() {
            if in_flight >= SEND_WINDOW {
                break;
            }
            let p = &self.sends[i];
            if p.request_id.is_none() && p.not_before.is_none_or(|t| t <= now) {
                self.transmit(link, i).await?;
                in_flight += 1;
            }
        }
        Ok(())
    }

    /// Puts pending send `i` on the wire with a fresh request id.
    async fn transmit(&mut self, link: &mut Link, i: usize) -> Result<(), Lost> {
        let id = self.next_id();
        let Some(p) = self.sends.get_mut(i) else {
            return Ok(());
        };
        p.request_id = Some(id);
        p.not_before = None;
        let request = Request::Send(SendMessage {
            to: p.to.clone(),
            body: p.body.clone(),
            client_id: p.client_id.clone(),
        });
        write(
            &mut link.sink,
            &Envelope {
                id: Some(id),
                request,
            },
        )
        .await
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
        let lost = loop {
            let retry_at = self
                .sends
                .iter()
                .filter(|p| p.request_id.is_none())
                .filter_map(|p| p.not_before)
                .min();
            tokio::select! {
                msg = read(&mut link.stream) => match msg {
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
                    Some(Command::Send { to, body, client_id, reply }) => {
                        self.sends.push_back(PendingSend { to, body, client_id, reply, request_id: None, not_before: None });
                        if let Err(lost) = self.pump(&mut link).await {
                            break lost;
                        }
                    }
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
            ServerMessage::Presence(p) => self.emit(Event::Presence(p)),
            ServerMessage::MemberJoined(m) => self.emit(Event::MemberJoined(m)),
            ServerMessage::MemberLeft(m) => self.emit(Event::MemberLeft(m)),
            ServerMessage::Invited(m) => self.emit(Event::Invited(m)),
            other => tracing::debug!(?other, "ignored an unsolicited reply"),
        }
    }

    fn on_send_reply(&mut self, i: usize, msg: ServerMessage) {
        match msg {
            ServerMessage::Sent(sent) => {
                if let Some(p) = self.sends.remove(i) {
                    let _ = p.reply.send(Ok(sent));
                }
            }
            ServerMessage::Error(e) if e.code == ErrorCode::RateLimited => {
                let wait = Duration::from_millis(e.retry_after_ms.unwrap_or(1000));
                if let Some(p) = self.sends.get_mut(i) {
                    p.request_id = None;
                    p.not_before = Some(Instant::now() + wait);
                }
            }
            ServerMessage::Error(e)
                if matches!(e.code, ErrorCode::ShuttingDown | ErrorCode::Internal) =>
            {
                // Not stored; resend after the next (re)connect.
                if let Some(p) = self.sends.get_mut(i) {
                    p.request_id = None;
                    p.not_before = Some(Instant::now() + Duration::from_secs(1));
                }
            }
            ServerMessage::Error(e) => {
                if let Some(p) = self.sends.remove(i) {
                    let _ = p.reply.send(Err(e.into()));
                }
            }
            other => {
                if let Some(p) = self.sends.remove(i) {
                    let _ = p.reply.send(Err(unexpected(&other)));
                }
            }
        }
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

async fn write(sink: &mut SplitSink<Ws, WsMessage>, env: &Envelope) -> Result<(), Lost> {
    sink.send(WsMessage::Text(env.encode().into()))
        .await
        .map_err(|_| Lost::Retry {
            error: Error::Disconnected,
            now: false,
        })
}

/// Reads the next server message, skipping control frames.
async fn read(stream: &mut SplitStream<Ws>) -> Result<ServerMessage, Lost> {
    loop {
        match stream.next().await {
            Some(Ok(WsMessage::Text(text))) => match ServerMessage::decode(&text) {
                Ok(m) => return Ok(m),
                Err(e) => {
                    tracing::warn!(cause = %e, "skipped a message this client does not understand");
                }
            },
            Some(Ok(WsMessage::Close(frame))) => return Err(lost_by_close(frame)),
            Some(Ok(_)) => {}
            Some(Err(_)) | None => {
                return Err(Lost::Retry {
                    error: Error::Disconnected,
                    now: false,
                });
            }
        }
    }
}

/// Maps the server's close frame to what the client does next.
fn lost_by_close(frame: Option<CloseFrame>) -> Lost {
    let (code, reason) = match frame {
        Some(f) => (u16::from(f.code), f.reason.to_string()),
        None => (1005, String::new()),
    };
    let error = Error::Closed { code, reason };
    match code {
        close::SESSION_ENDED | close::UNSUPPORTED_VERSION | close::NORMAL => Lost::Fatal(error),
        close::LAGGING => Lost::Retry { error, now: true },
        _ => Lost::Retry { error, now: false },
    }
}

/// Sends a normal close and waits briefly for the server's close reply.
async fn close_link(link: &mut Link, reason: &str) {
    let frame = CloseFrame {
        code: CloseCode::Normal,
        reason: reason.to_owned().into(),
    };
    if link.sink.send(WsMessage::Close(Some(frame))).await.is_err() {
        return;
    }
    let _ = tokio::time::timeout(Duration::from_secs(2), async {
        while let Some(Ok(msg)) = link.stream.next().await {
            if matches!(msg, WsMessage::Close(_)) {
                break;
            }
        }
    })
    .await;
}
