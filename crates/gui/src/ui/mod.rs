//! Drawing: each screen reads the [`crate::state::State`] and returns
//! [`crate::state::Intent`]s; nothing here talks to the network.
//!
//! - [`login`]: the first screen.
//! - [`chat`]: the chat screen's frame: sidebar, header, composer, status.
//! - [`feed`]: the message feed of one conversation.
//! - [`files`]: shared files, files being sent, dropping files.
//! - [`members`]: a room's member list, with moderation for its owner and
//!   moderators.
//! - [`dialogs`]: create room, invite, browse rooms, search, topic, kick
//!   and ban, a user's devices.
//! - [`verify`]: device verification: the dialog comparing emoji, the
//!   devices dialog's body, and the header's mark of unverified devices.
//! - [`backup`]: the key backup's windows; [`rekey`]: the form changing
//!   the passphrase that seals this device's keys.
//! - [`style`]: colours, times and text helpers shared by the others.

pub mod backup;
pub mod chat;
pub mod dialogs;
pub mod feed;
pub mod files;
pub mod login;
pub mod members;
pub mod rekey;
pub mod style;
pub mod verify;
