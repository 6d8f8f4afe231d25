//! `register`, `login`, `auth`, `logout`, `change_password`.
//!
//! - On success the connection is attached to the user in the hub *before*
//!   `authed` is queued, so any message stored after the client reads
//!   `authed` reaches it live, and anything earlier is in history: a client
//!   that then pages history from its last `seq` misses nothing.
//! - A user may have at most `max_connections_per_user` logged-in
//!   connections; one more is refused with `too_many_connections` (and a
//!   session made for it is revoked).
//! - After attaching, the session is looked up again: a logout that raced
//!   the login removed it, and the login backs out with `invalid_token`
//!   (see [`crate::service::accounts`] for why no window is left).
//! - The first connection of a user is announced as `presence` online
//!   (coalesced, see [`crate::service::presence`]); a user the server has
//!   not seen before (a new account) is also announced as joining the lobby.
//! - `logout` revokes the token (with `everywhere`, every session of the
//!   user) and closes every connection that used it.
//! - `change_password` checks the current password (a login attempt for the
//!   limits), stores the new one, and revokes every other session.

use chatus_protocol::auth::{Ack, Auth, Authed, ChangePassword, Login, Logout, Register};
use chatus_protocol::error::close;
use chatus_protocol::{ErrorCode, RequestId, ServerMessage};

use super::{Cx, Outcome, Session};
use crate::error::ApiError;
use crate::service::accounts::{Holder, LoggedIn, invalid_token};
use crate::ws::encode;

async fn logged_in(
    cx: &mut Cx<'_>,
    id: Option<RequestId>,
    li: LoggedIn,
) -> Result<Outcome, ApiError> {
    let hub = cx.state.hub();
    let accounts = cx.state.accounts();
    let new_here = hub.add_user(li.user, &li.name, &[hub.lobby()]);
    if new_here {
        // A new account is a new lobby member: member lists grow.
        hub.announce_membership(hub.lobby(), li.user, true);
        hub.tell(|| crate::bus::wire::DirChange::User {
            id: li.user.0,
            name: li.name.clone(),
        });
    }
    if hub.is_clustered() {
        crate::service::rooms::catch_up_user(hub, cx.state.store(), li.user).await?;
    }
    let max = cx.state.config().max_connections_per_user;
    if hub.attach(li.user, cx.conn, li.token_hash, max).is_err() {
        if li.token.is_some() {
            // Made for this login alone; nobody else holds it.
            accounts.forget_new_session(li.token_hash).await?;
        }
        return Err(ApiError::reject(
            ErrorCode::TooManyConnections,
            format!(
                "{} already has {max} connections logged in; close one first.",
                li.name
            ),
        ));
    }
    // Revoked while this login was under way: back out.
    if !accounts.is_cached(&li.token_hash) {
        hub.detach(li.user, cx.conn);
        return Err(invalid_token());
    }
    cx.span.record("user", li.name.as_str());
    tracing::info!("logged in");
    *cx.session = Some(Session {
        user: li.user,
        name: li.name.clone(),
        token_hash: li.token_hash,
        expires: li.expires,
    });
    let reply = ServerMessage::Authed(Authed {
        id,
        user: li.name.clone(),
        token: li.token,
        expires: li.expires,
        display_name: hub.display_name(li.user),
    });
    cx.conn.outbox.push(encode(&reply));
    Ok(Outcome::Nothing)
}

fn peer_ip(cx: &Cx<'_>) -> std::net::IpAddr {
    cx.conn.peer.ip()
}

/// Runs a password check (or hash) unless the connection is closed first
/// (login timeout, shutdown): dropping it takes the job off the hashing
/// queue, or stops waiting for it, so no thread hashes for a connection
/// that is gone.
async fn unless_closed<T>(
    cx: &Cx<'_>,
    work: impl Future<Output = Result<T, ApiError>>,
) -> Result<T, ApiError> {
    tokio::select! {
        r = work => r,
        () = cx.conn.outbox.closed() => Err(ApiError::Busy {
            retry_after: std::time::Duration::from_secs(1),
        }),
    }
}

/// `register`.
pub(super) async fn register(
    cx: &mut Cx<'_>,
    id: Option<RequestId>,
    r: Register,
) -> Result<Outcome, ApiError> {
    let lobby = cx.state.hub().lobby();
    let accounts = cx.state.accounts();
    let li = unless_closed(
        cx,
        accounts.register(&r.username, &r.password, peer_ip(cx), lobby),
    )
    .await?;
    logged_in(cx, id, li).await
}

/// `login`.
pub(super) async fn login(
    cx: &mut Cx<'_>,
    id: Option<RequestId>,
    r: Login,
) -> Result<Outcome, ApiError> {
    let accounts = cx.state.accounts();
    let li = unless_closed(cx, accounts.login(&r.username, &r.password, peer_ip(cx))).await?;
    logged_in(cx, id, li).await
}

/// `auth`.
pub(super) async fn auth(
    cx: &mut Cx<'_>,
    id: Option<RequestId>,
    r: Auth,
) -> Result<Outcome, ApiError> {
    let li = cx
        .state
        .accounts()
        .resume(&r.token, peer_ip(cx), cx.state.hub())
        .await?;
    logged_in(cx, id, li).await
}

/// `logout`.
pub(super) async fn logout(
    cx: &mut Cx<'_>,
    who: &Session,
    id: Option<RequestId>,
    r: &Logout,
) -> Result<Outcome, ApiError> {
    let accounts = cx.state.accounts();
    let hub = cx.state.hub();
    if r.everywhere {
        accounts
            .logout_everywhere(who.user, hub, cx.conn.id)
            .await?;
    } else {
        accounts
            .logout(who.user, who.token_hash, hub, cx.conn.id)
            .await?;
    }
    Ok(Outcome::Close(
        Some(ServerMessage::Ok(Ack { id })),
        close::NORMAL,
        "logged out",
    ))
}

/// `change_password`.
pub(super) async fn change_password(
    cx: &mut Cx<'_>,
    who: &Session,
    id: Option<RequestId>,
    r: ChangePassword,
) -> Result<Outcome, ApiError> {
    let holder = Holder {
        user: who.user,
        name: &who.name,
        token_hash: who.token_hash,
    };
    let change = cx.state.accounts().change_password(
        holder,
        &r.current,
        &r.new,
        peer_ip(cx),
        cx.state.hub(),
    );
    unless_closed(cx, change).await?;
    Ok(Outcome::Reply(ServerMessage::Ok(Ack { id })))
}
