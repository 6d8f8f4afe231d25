//! Drawing: each screen reads the [`crate::state::State`] and returns
//! [`crate::state::Intent`]s; nothing here talks to the network.
//!
//! - [`login`]: the first screen.
//! - [`chat`]: the chat screen's frame: sidebar, header, composer, status.
//! - [`feed`]: the message feed of one conversation.
//! - [`files`]: shared files, files being sent, dropping files.
//! - [`dialogs`]: create room, invite, browse rooms.
//! - [`style`]: colours, times and text helpers shared by the others.

pub mod chat;
pub mod dialogs;
pub mod feed;
pub mod files;
pub mod login;
pub mod style;
