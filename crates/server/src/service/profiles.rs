//! Profiles: setting a display name, and telling those who see it.
//!
//! The store is written first, then the hub; a change is delivered as one
//! `profile` event to the user's connections and to everyone who shares a
//! room or a direct conversation with them (`Hub::deliver_profile`), and in
//! a cluster told to the other nodes (`DirChange::Profile`), which update
//! their hubs and deliver it to their own connections the same way. Setting
//! the name one already has changes nothing and sends nothing.

use chatus_protocol::ServerMessage;
use chatus_protocol::profile::{DisplayName, Profile};

use crate::bus::wire::DirChange;
use crate::error::ApiError;
use crate::hub::Hub;
use crate::store::{Store, User};
use crate::ws::encode;

/// `set_display_name`: sets `user`'s display name, or clears it (`None`).
pub(crate) async fn set_display_name(
    hub: &Hub,
    store: &dyn Store,
    user: &User,
    name: Option<DisplayName>,
) -> Result<(), ApiError> {
    if hub.display_name(user.id) == name {
        return Ok(());
    }
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
