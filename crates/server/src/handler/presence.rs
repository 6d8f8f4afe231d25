//! `who`: the users online now; `typing`: the caller's typing indicator.
//!
//! - `who` answers `users`, sorted by name, every entry `online: true`.
//! - Presence changes themselves are pushed as `presence` events by the
//!   auth handlers and the connection's end.
//! - `typing` needs membership of the room (or names an existing user as
//!   peer), records the state with `service::typing` and answers `ok`; the
//!   `typing` events go out from that service's task.

use chatus_protocol::auth::Ack;
use chatus_protocol::presence::{SetTyping, Users};
use chatus_protocol::{Conversation, RequestId, ServerMessage};

use super::{Cx, Outcome, Session};
use crate::error::ApiError;
use crate::service::typing::Place;
use crate::service::users::find_user;

/// `who`.
pub(super) fn who(cx: &mut Cx<'_>, id: Option<RequestId>) -> Result<Outcome, ApiError> {
    let users = cx.state.hub().online_members();
    Ok(Outcome::Reply(ServerMessage::Users(Users { id, users })))
}

/// Where `who` would type in `conv`: a room they are in, or the direct
/// conversation with an existing user.
pub(super) async fn place(
    cx: &Cx<'_>,
    who: &Session,
    conv: &Conversation,
) -> Result<Place, ApiError> {
    match conv {
        Conversation::Room(_) => {
            let (_, found) =
                crate::service::messages::resolve(cx.state.hub(), cx.state.store(), who.user, conv)
                    .await?;
            found
                .map(|(id, _)| Place::Room(id))
                .ok_or_else(|| ApiError::Internal("a room resolved without its id".into()))
        }
        Conversation::Peer(peer) => {
            let found = find_user(cx.state.hub(), cx.state.store(), peer)
                .await?
                .ok_or_else(|| ApiError::unknown_user(peer))?;
            Ok(Place::dm(who.user, found.id))
        }
    }
}

/// `typing`.
pub(super) async fn typing(
    cx: &mut Cx<'_>,
    who: &Session,
    id: Option<RequestId>,
    t: SetTyping,
) -> Result<Outcome, ApiError> {
    let place = place(cx, who, &t.conv).await?;
    cx.state.typers().set(place, who.user, t.typing);
    Ok(Outcome::Reply(ServerMessage::Ok(Ack { id })))
}

/// Ends `who`'s typing state in `conv`, if any (they sent a message there).
pub(super) async fn stop_typing(cx: &Cx<'_>, who: &Session, conv: &Conversation) {
    if !cx.state.typers().is_typing(who.user) {
        return;
    }
    if let Ok(place) = place(cx, who, conv).await {
        cx.state.typers().set(place, who.user, false);
    }
}
