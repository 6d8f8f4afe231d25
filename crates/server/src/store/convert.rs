//! Conversions between stored integers and text and the store's types,
//! the same for both backends (each holds ids, counts and cursors as a
//! signed 64-bit integer).

use chatus_protocol::{Seq, Username};

use super::StoreError;

/// A stored sequence number (never negative).
pub(crate) fn seq(v: i64) -> Seq {
    Seq(u64::try_from(v).unwrap_or(0))
}

/// A stored user name; one that no longer parses means a damaged database.
pub(crate) fn username(s: String) -> Result<Username, StoreError> {
    Username::parse(s).map_err(|e| StoreError::Corrupt(e.message))
}

/// A stored value that no longer parses: the database is damaged.
pub(crate) fn corrupt(e: chatus_protocol::InvalidValue) -> StoreError {
    StoreError::Corrupt(e.message)
}

/// A stored count (never negative) as a `u32`, saturating.
pub(crate) fn u32_of(v: i64) -> u32 {
    u32::try_from(v).unwrap_or(u32::MAX)
}

/// A stored id or cursor (never negative) as a `u64`.
pub(crate) fn u64_of(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

/// An id or cursor as a stored 64-bit integer, saturating.
pub(crate) fn i64_of(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}
