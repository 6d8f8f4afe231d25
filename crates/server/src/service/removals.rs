//! Rooms removed by a server administrator (`chatus admin room rm`, run
//! beside the server): the watcher that reads the removal events the
//! store records and drops each room from memory, telling its members and
//! invitees with `room_removed`. It runs with the accounts watcher, every
//! [`crate::service::accounts::WATCH_EVERY`]; on PostgreSQL every node
//! reads the same events, so each drops the room for its own connections.
//! The store deleted the room's rows already: requests naming the room
//! answer `unknown_room` as soon as the hub has dropped it.

use std::sync::atomic::{AtomicI64, Ordering};

use chatus_protocol::ServerMessage;
use chatus_protocol::room::RoomRemoved;

use crate::hub::Hub;
use crate::store::{Store, StoreError};
use crate::ws::encode;

/// The newest removal event acted on.
#[derive(Debug)]
pub(crate) struct Removals {
    seen: AtomicI64,
}

impl Removals {
    /// Starts after event `seen` (read before the snapshot, which holds no
    /// room removed up to it).
    pub(crate) fn new(seen: i64) -> Removals {
        Removals {
            seen: AtomicI64::new(seen),
        }
    }

    /// One round: drops the rooms removed since the last one. Returns
    /// false once the store is closed (the watcher then stops).
    pub(crate) async fn watch(&self, store: &dyn Store, hub: &Hub) -> bool {
        let after = self.seen.load(Ordering::Relaxed);
        let events = match store.room_removals_after(after).await {
            Ok(events) => events,
            Err(StoreError::Closed) => return false,
            Err(e) => {
                tracing::warn!(cause = %e, "reading room removals failed; will retry");
                return true;
            }
        };
        for e in events {
            let frame = encode(&ServerMessage::RoomRemoved(RoomRemoved {
                room: e.name.clone(),
                reason: e.reason.clone(),
            }));
            if let Some(told) = hub.drop_room(e.conv, &e.name, &frame) {
                tracing::info!(
                    room = %e.name,
                    told = told.len(),
                    "room removed by an administrator"
                );
            }
            self.seen.store(e.id, Ordering::Relaxed);
        }
        true
    }
}
