//! Removing a room for good (`chatus admin room rm`): what the store
//! records of a removal, and what it reports having erased.
//!
//! A removal deletes the room's rows from every table (messages and their
//! changes, reactions, read markers, search rows, members, invitations,
//! moderators, bans, mutes, the room itself) in one transaction, and
//! records a [`RoomRemoval`] event that running servers read (like the
//! revocation events of password resets) to drop the room from memory and
//! tell its members. The event keeps the room's last `seq`: a room created
//! later under the same name numbers its messages on from it, so that a
//! client's resume cursor for the old room neither misses nor misnumbers
//! the new room's messages.

use chatus_protocol::moderation::Reason;
use chatus_protocol::{FileId, RoomName, Seq, Timestamp};

use crate::store::ConvId;

/// A removal event, as [`crate::store::Store::room_removals_after`] reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomRemoval {
    /// The event's id (increasing).
    pub id: i64,
    /// The removed room's id.
    pub conv: ConvId,
    /// Its name.
    pub name: RoomName,
    /// Its latest `seq` when removed.
    pub last_seq: Seq,
    /// Why, as the administrator wrote it.
    pub reason: Option<Reason>,
    /// When.
    pub time: Timestamp,
}

/// What [`crate::store::Store::remove_room`] erased.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomRemoved {
    /// The event recorded.
    pub removal: RoomRemoval,
    /// How many messages the room held (changes and moderation events not
    /// counted).
    pub messages: u64,
    /// How many members it had.
    pub members: u64,
    /// Files its messages shared that no other message shares now: the
    /// caller removes them (rows and bytes).
    pub orphaned_files: Vec<FileId>,
}

/// The tables holding a room's rows by `conv_id`, children first: deleted
/// in this order, then the room's row. Both backends use this one list.
pub(crate) const ROOM_TABLES: &[&str] = &[
    "reactions",
    "read_markers",
    "members",
    "invites",
    "moderators",
    "bans",
    "mutes",
    "messages",
];
