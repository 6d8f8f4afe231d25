//! `register`, `login`, `auth`, `logout`.
//!
//! - On success the connection is attached to the user in the hub *before*
//!   `authed` is queued, so any message stored after the client reads
//!   `authed` reaches it live, and anything earlier is in history: a client
//!   that then pages history from its last `seq` misses nothing.
//! - The first connection of a user is announced as `presence` online
//!   (coalesced, see [`crate::service::presence`]); a user the server has
//!   not seen before (a new account) is also announced as joining the lobby.
//! - `logout` revokes the token and closes every connection that used it.

use chatus_protocol::auth::{Ack, Auth, Authed, Login, Register};
use chatus_protocol::error::close;
use chatus_protocol::{RequestId, ServerMessage};

use super::{Cx, Outcome, Session};
use crate::error::ApiError;
use crate::service::accounts::LoggedIn;
use crate::service::messages::encode;

fn logged_in(cx: &mut Cx<'_>, id: Option<RequestId>, li: LoggedIn) -> Outcome {
    let hub = cx.state.hub();
    let new_here = hub.add_user(li.user, &li.name, &[hub.lobby()]);
    hub.attach(li.user, cx.conn, li.token_hash);
    cx.span.record("user", li.name.as_str());
    tracing::info!("logged in");
    *cx.session = Some(Session {
        user: li.user,
        name: li.name.clone(),
        token_hash: li.token_hash,
    });
    let reply = ServerMessage::Authed(Authed {
        id,
        user: li.name.clone(),
        token: li.token,
        expires: li.expires,
    });
    cx.conn.outbox.push(encode(&reply));
    if new_here {
        // A new account is a new lobby member: member lists grow.
        hub.announce_membership(hub.lobby(), li.user, true);
    }
    Outcome::Nothing
}

fn peer_ip(cx: &Cx<'_>) -> std::net::IpAddr {
    cx.conn.peer.ip()
}

/// `register`.
pub(super) async fn register(
    cx: &mut Cx<'_>,
    id: Option<RequestId>,
    r: Register,
) -> Result<Outcome, ApiError> {
    let lobby = cx.state.hub().lobby();
    let li = cx
        .state
        .accounts()
        .register(&r.username, &r.password, peer_ip(cx), lobby)
        .await?;
    Ok(logged_in(cx, id, li))
}

/// `login`.
pub(super) async fn login(
    cx: &mut Cx<'_>,
    id: Option<RequestId>,
    r: Login,
) -> Result<Outcome, ApiError> {
    let li = cx
        .state
        .accounts()
        .login(&r.username, &r.password, peer_ip(cx))
        .await?;
    Ok(logged_in(cx, id, li))
}

/// `auth`.
pub(super) async fn auth(
    cx: &mut Cx<'_>,
    id: Option<RequestId>,
    r: Auth,
) -> Result<Outcome, ApiError> {
    let li = cx.state.accounts().resume(&r.token, peer_ip(cx)).await?;
    Ok(logged_in(cx, id, li))
}

/// `logout`.
pub(super) async fn logout(
    cx: &mut Cx<'_>,
    who: &Session,
    id: Option<RequestId>,
) -> Result<Outcome, ApiError> {
    cx.state.accounts().logout(who.token_hash).await?;
    for conn in cx
        .state
        .hub()
        .session_connections(who.user, &who.token_hash)
    {
        if conn.id != cx.conn.id {
            conn.outbox.close(close::SESSION_ENDED, "logged out", false);
        }
    }
    Ok(Outcome::Close(
        Some(ServerMessage::Ok(Ack { id })),
        close::NORMAL,
        "logged out",
    ))
}
