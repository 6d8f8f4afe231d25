//! Profiles: setting a display name, and telling those who see it.
//!
//! The store is written first, then the hub; a change is delivered as one
//! `profile` event to the user's connections and to everyone who shares a
//! room or a direct conversation with them (`Hub::deliver_profile`), and in
//! a cluster told to the other nodes (`DirChange::Profile`), which update
//! their hubs and deliver it to their own connections the same way. Setting
//! the name one already has changes nothing and sends nothing.
//!
//! A change reaches everyone who shares a conversation with the user, the
//! whole lobby included, and is a durable write: so changes have a limit
//! of their own ([`CHANGES_PER_MIN`], in bursts of [`CHANGE_BURST`]), far
//! below what the request budget alone would let through.

use chatus_protocol::ServerMessage;
use chatus_protocol::profile::{DisplayName, Profile};

use crate::bus::wire::DirChange;
use crate::error::ApiError;
use crate::hub::Hub;
use crate::ratelimit::{Keyed, Rate};
use crate::store::{Store, User, UserId};
use crate::ws::encode;

/// Display name changes a user may make a minute, once the burst is spent.
pub(crate) const CHANGES_PER_MIN: f64 = 6.0;

/// Display name changes a user may make at once.
pub(crate) const CHANGE_BURST: u32 = 3;

/// The rate of display name changes per user.
pub(crate) fn change_rate() -> Rate {
    Rate::new(CHANGES_PER_MIN / 60.0, CHANGE_BURST)
}

/// `set_display_name`: sets `user`'s display name, or clears it (`None`).
pub(crate) async fn set_display_name(
    hub: &Hub,
    store: &dyn Store,
    limits: &Keyed<UserId>,
    user: &User,
    name: Option<DisplayName>,
) -> Result<(), ApiError> {
    if hub.display_name(user.id) == name {
        return Ok(());
    }
    limits
        .take(user.id)
        .map_err(|retry_after| ApiError::RateLimited {
            retry_after,
            what: "display name changes",
        })?;
    store.set_display_name(user.id, name.clone()).await?;
    hub.set_display_name(user.id, name.clone());
    hub.tell(|| DirChange::Profile {
        user: user.id.0,
        display_name: name.clone(),
    });
    announce(hub, user, name);
    Ok(())
}

/// Delivers `user`'s new display name to this node's connections that see
/// them (the node that made the change, or one told over the bus).
pub(crate) fn announce(hub: &Hub, user: &User, display_name: Option<DisplayName>) {
    let event = ServerMessage::Profile(Profile {
        user: user.name.clone(),
        display_name,
    });
    hub.deliver_profile(user.id, &encode(&event));
}
