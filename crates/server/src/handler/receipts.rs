//! `receipts`: the public read markers of a conversation (see
//! `service/receipts.rs` for how they are announced). Needs what `history`
//! needs: membership of the room, or an existing peer. Members who left
//! are not listed.

use chatus_protocol::receipt::{MAX_RECEIPTS, QueryReceipts, ReadUpTo, ReceiptList};
use chatus_protocol::{RequestId, ServerMessage};

use super::{Cx, Outcome, Session};
use crate::error::ApiError;
use crate::service::messages::resolve;
use crate::service::receipts::listed;

/// `receipts`.
pub(super) async fn receipts(
    cx: &mut Cx<'_>,
    who: &Session,
    id: Option<RequestId>,
    q: QueryReceipts,
) -> Result<Outcome, ApiError> {
    let (conv, found) = resolve(cx.state.hub(), cx.state.store(), who.user, &q.conv).await?;
    let place = super::presence::place(cx, who, &q.conv).await?;
    let mut users = Vec::new();
    let mut truncated = false;
    if let Some((conv_id, _)) = found {
        // One more than listed, to tell whether more follow; members who
        // left are skipped, so ask for some extra.
        let rows = cx
            .state
            .store()
            .receipts(conv_id, 2 * MAX_RECEIPTS + 1)
            .await?;
        let hub = cx.state.hub();
        for (user, seq) in rows {
            if !listed(hub, place, user) {
                continue;
            }
            if users.len() == MAX_RECEIPTS {
                truncated = true;
                break;
            }
            if let Some(name) = hub.user_name(user) {
                users.push(ReadUpTo { user: name, seq });
            }
        }
    }
    Ok(Outcome::Reply(ServerMessage::ReceiptList(ReceiptList {
        id,
        conv,
        users,
        truncated,
    })))
}
