//! `set_display_name`: the caller's display name.
//!
//! - The name was checked while decoding (`invalid_display_name`); `null`
//!   clears it.
//! - Answered by `ok` after the store has it; the caller's connections and
//!   everyone sharing a room or a direct conversation with them get
//!   `profile` first (see `service::profiles`).
//! - At most 3 changes at once and 6 a minute after that (`rate_limited`);
//!   setting the name one has is free.

use chatus_protocol::auth::Ack;
use chatus_protocol::profile::SetDisplayName;
use chatus_protocol::{RequestId, ServerMessage};

use super::{Cx, Outcome, Session};
use crate::error::ApiError;

/// `set_display_name`.
pub(super) async fn set_display_name(
    cx: &mut Cx<'_>,
    who: &Session,
    id: Option<RequestId>,
    r: SetDisplayName,
) -> Result<Outcome, ApiError> {
    crate::service::profiles::set_display_name(
        cx.state.hub(),
        cx.state.store(),
        cx.state.profile_limits(),
        &who.who(),
        r.display_name,
    )
    .await?;
    Ok(Outcome::Reply(ServerMessage::Ok(Ack { id })))
}
