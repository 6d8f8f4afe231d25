//! Request handlers, one file per message family, and the one gate in front
//! of them.
//!
//! [`dispatch`] enforces the preconditions every request shares: it fits
//! its budget (see `metering`), `hello` comes first, and a request that
//! [`Request::needs_session`] arrives on a logged-in connection. Handlers
//! behind the gate receive the [`Session`] (the authenticated user), never
//! a name the client typed. Each handler returns an [`Outcome`] or an
//! [`ApiError`], which `dispatch` turns into frames.

mod auth;
mod backup;
mod event;
mod hello;
pub(crate) mod history;
mod keys;
mod message;
mod metering;
mod moderation;
mod presence;
mod profile;
mod receipts;
mod room;
mod search;

pub(crate) use metering::MAX_REQUEST_COST;

use std::sync::Arc;

use chatus_protocol::error::close;
use chatus_protocol::hello::Pong;
use chatus_protocol::{
    Envelope, ErrorCode, ErrorReply, Request, RequestId, ServerMessage, Timestamp, Username,
};

use crate::error::ApiError;
use crate::hub::ConnHandle;
use crate::service::moderation::Request as Mod;
use crate::state::State;
use crate::store::{TokenHash, User, UserId};
use crate::ws::encode;

/// Who is logged in on a connection.
#[derive(Debug, Clone)]
pub(crate) struct Session {
    /// The user's id.
    pub(crate) user: UserId,
    /// The user's name, as registered.
    pub(crate) name: Username,
    /// The session's token hash (for logout).
    pub(crate) token_hash: TokenHash,
    /// When the session expires, as last known; the gate looks again in the
    /// session cache once it has passed (the token may have been extended
    /// by a login elsewhere).
    pub(crate) expires: Timestamp,
}

impl Session {
    fn who(&self) -> User {
        User {
            id: self.user,
            name: self.name.clone(),
        }
    }
}

/// What a handler works with: the server and this connection.
pub(crate) struct Cx<'a> {
    /// The server.
    pub(crate) state: &'a State,
    /// This connection.
    pub(crate) conn: &'a Arc<ConnHandle>,
    /// Whether `hello` was received.
    pub(crate) said_hello: &'a mut bool,
    /// The logged-in user, once there is one.
    pub(crate) session: &'a mut Option<Session>,
    /// The connection's tracing span (gets the user recorded).
    pub(crate) span: &'a tracing::Span,
}

/// What a handler asks for besides an error.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// Send this reply.
    Reply(ServerMessage),
    /// Nothing to send now (the handler pushed, or a task will).
    Nothing,
    /// Send the reply (if any), then close with this code and reason.
    Close(Option<ServerMessage>, u16, &'static str),
}

/// A close the connection must perform after a request.
pub(crate) type CloseRequest = (u16, &'static str);

/// Handles one decoded request, pushing its reply; returns a close request
/// when the connection must end.
pub(crate) async fn dispatch(cx: &mut Cx<'_>, env: Envelope) -> Option<CloseRequest> {
    let id = env.id;
    let kind = env.request.kind();
    // Read only for requests that settle: in cluster mode it takes a lock.
    let told = changes_directory(&env.request).then(|| cx.state.hub().told());
    let outcome = route(cx, id, env.request).await;
    if let Some(told) = told {
        cx.state.hub().settled_since(told).await;
    }
    match outcome {
        Ok(Outcome::Reply(m)) => {
            cx.conn.outbox.push(encode(&m));
            None
        }
        Ok(Outcome::Nothing) => None,
        Ok(Outcome::Close(reply, code, reason)) => {
            if let Some(m) = reply {
                cx.conn.outbox.push(encode(&m));
            }
            Some((code, reason))
        }
        Err(e) => {
            if let ApiError::Rejected { code, .. } = &e {
                tracing::debug!(request = kind, %code, "request refused");
            }
            let reply = e.into_reply(id);
            cx.state.metrics().error(reply.code);
            cx.conn.outbox.push(encode(&ServerMessage::Error(reply)));
            None
        }
    }
}

/// Whether a request may change the directory that every node caches (see
/// `bus/settle.rs`): in cluster mode its reply waits until the other nodes
/// applied what it changed, so that the actor's next request, through any
/// node, sees it. (Moderation is answered by the writer, which waits the
/// same way; messages, and what follows them, are ordered by `seq`.)
fn changes_directory(req: &Request) -> bool {
    matches!(
        req,
        Request::Register(_)
            | Request::Logout(_)
            | Request::ChangePassword(_)
            | Request::CreateRoom(_)
            | Request::JoinRoom(_)
            | Request::LeaveRoom(_)
            | Request::Invite(_)
            | Request::DeclineInvite(_)
            | Request::SetDisplayName(_)
    )
}

/// The gate: within budget, hello first, then sessions where declared, and
/// only while the session lasts.
async fn route(cx: &mut Cx<'_>, id: Option<RequestId>, req: Request) -> Result<Outcome, ApiError> {
    metering::charge(cx, &req)?;
    if !*cx.said_hello && !matches!(req, Request::Hello(_)) {
        return Err(ApiError::reject(
            ErrorCode::HelloRequired,
            "Send hello with the protocol version first.",
        ));
    }
    if req.needs_session() {
        let Some(mut who) = cx.session.clone() else {
            return Err(ApiError::reject(
                ErrorCode::Unauthenticated,
                "Log in first (register, login or auth).",
            ));
        };
        if who.expires <= crate::service::accounts::now() {
            match cx.state.accounts().live_until(&who.token_hash) {
                Some(expires) => {
                    who.expires = expires;
                    if let Some(s) = cx.session.as_mut() {
                        s.expires = expires;
                    }
                }
                None => return Ok(session_ended(id)),
            }
        }
        return authed(cx, &who, id, req).await;
    }
    anonymous(cx, id, req).await
}

/// The answer to a request on a connection whose session expired or was
/// revoked: `invalid_token`, then close with 4001.
fn session_ended(id: Option<RequestId>) -> Outcome {
    let reply = ErrorReply::new(
        id,
        ErrorCode::InvalidToken,
        "Your session has expired or was revoked; log in again.",
    );
    Outcome::Close(
        Some(ServerMessage::Error(reply)),
        close::SESSION_ENDED,
        "session ended",
    )
}

fn misrouted(req: &Request) -> ApiError {
    ApiError::Internal(format!(
        "request {} reached the wrong side of the gate",
        req.kind()
    ))
}

async fn anonymous(
    cx: &mut Cx<'_>,
    id: Option<RequestId>,
    req: Request,
) -> Result<Outcome, ApiError> {
    if cx.session.is_some()
        && matches!(
            req,
            Request::Register(_) | Request::Login(_) | Request::Auth(_)
        )
    {
        return Err(ApiError::reject(
            ErrorCode::AlreadyAuthenticated,
            "This connection is already logged in.",
        ));
    }
    match req {
        Request::Hello(h) => hello::hello(cx, id, &h),
        Request::Ping(_) => Ok(Outcome::Reply(ServerMessage::Pong(Pong { id }))),
        Request::Register(r) => auth::register(cx, id, r).await,
        Request::Login(r) => auth::login(cx, id, r).await,
        Request::Auth(r) => auth::auth(cx, id, r).await,
        other => Err(misrouted(&other)),
    }
}

async fn authed(
    cx: &mut Cx<'_>,
    who: &Session,
    id: Option<RequestId>,
    req: Request,
) -> Result<Outcome, ApiError> {
    match req {
        Request::Logout(r) => auth::logout(cx, who, id, &r).await,
        Request::ChangePassword(r) => auth::change_password(cx, who, id, r).await,
        Request::CreateRoom(r) => room::create(cx, who, id, r).await,
        Request::JoinRoom(r) => room::join(cx, who, id, r).await,
        Request::LeaveRoom(r) => room::leave(cx, who, id, r).await,
        Request::Invite(r) => room::invite(cx, who, id, r).await,
        Request::DeclineInvite(r) => room::decline(cx, who, id, &r).await,
        Request::ListRooms(_) => room::list(cx, who, id),
        Request::ListMembers(r) => room::members(cx, who, id, &r),
        Request::Who(_) => presence::who(cx, id),
        Request::Typing(r) => presence::typing(cx, who, id, r).await,
        Request::Send(r) => message::send(cx, who, id, r).await,
        Request::Edit(r) => event::edit(cx, who, id, r).await,
        Request::Delete(r) => event::delete(cx, who, id, r).await,
        Request::React(r) => event::react(cx, who, id, r).await,
        Request::Versions(r) => event::versions(cx, who, id, r).await,
        Request::History(r) => history::history(cx, who, id, r).await,
        Request::Conversations(_) => history::conversations(cx, who, id).await,
        Request::MarkRead(r) => history::mark_read(cx, who, id, r).await,
        Request::Receipts(r) => receipts::receipts(cx, who, id, r).await,
        Request::ListFiles(r) => history::list_files(cx, who, id, r).await,
        Request::UploadKeys(r) => keys::upload(cx, who, id, r).await,
        Request::Devices(r) => keys::devices(cx, id, r).await,
        Request::ClaimKeys(r) => keys::claim(cx, id, r).await,
        Request::SendToDevice(r) => keys::send(cx, who, id, r).await,
        Request::ToDevice(r) => keys::fetch(cx, who, id, r).await,
        Request::DeleteDevice(r) => keys::delete(cx, who, id, r).await,
        Request::Search(r) => search::search(cx, who, id, r).await,
        Request::SetTopic(r) => moderation::act(cx, who, id, Mod::Topic(r)).await,
        Request::SetRole(r) => moderation::act(cx, who, id, Mod::Role(r)).await,
        Request::Kick(r) => moderation::act(cx, who, id, Mod::Kick(r)).await,
        Request::Ban(r) => moderation::act(cx, who, id, Mod::Ban(r)).await,
        Request::Unban(r) => moderation::act(cx, who, id, Mod::Unban(r)).await,
        Request::Mute(r) => moderation::act(cx, who, id, Mod::Mute(r)).await,
        Request::Unmute(r) => moderation::act(cx, who, id, Mod::Unmute(r)).await,
        Request::SetInviteOnly(r) => moderation::act(cx, who, id, Mod::InviteOnly(r)).await,
        Request::AuditLog(r) => moderation::audit_log(cx, who, id, r).await,
        Request::SetDisplayName(r) => profile::set_display_name(cx, who, id, r).await,
        Request::CreateBackup(r) => backup::create(cx, who, id, r).await,
        Request::GetBackup(_) => backup::get(cx, who, id).await,
        Request::PutBackupKeys(r) => backup::put(cx, who, id, r).await,
        Request::GetBackupKeys(r) => backup::keys(cx, who, id, r).await,
        Request::DeleteBackup(_) => backup::delete(cx, who, id).await,
        other => Err(misrouted(&other)),
    }
}
