//! What the store keeps of uploads and files: the rows, a user's usage
//! and the limits a new upload is admitted under, and what the
//! administrators' file commands list and do.

use chatus_protocol::{FileId, FileInfo, FileName, MediaType, Sha256Hex, Timestamp, Username};

use super::UserId;

/// An upload (and, once finished, a file) as stored. Its bytes are in the
/// file store (`crate::files::FileStore`): a partial file while it is
/// unfinished, then a blob named by its SHA-256.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadRow {
    /// Its id (the file's id once finished).
    pub id: FileId,
    /// Who uploads it.
    pub owner: UserId,
    /// Its name, made safe.
    pub name: FileName,
    /// Its media type.
    pub media_type: MediaType,
    /// Its declared length in bytes.
    pub length: u64,
    /// Its SHA-256, set when the last byte arrived.
    pub sha256: Option<Sha256Hex>,
    /// When it was created.
    pub created: Timestamp,
    /// When bytes last arrived (or it finished): abandoned uploads are
    /// found by this.
    pub updated: Timestamp,
}

impl UploadRow {
    /// The file's metadata, once finished.
    pub fn info(&self) -> Option<FileInfo> {
        Some(FileInfo {
            id: self.id.clone(),
            name: self.name.clone(),
            size: self.length,
            media_type: self.media_type.clone(),
            sha256: self.sha256.clone()?,
        })
    }
}

/// What one user's uploads take, as [`crate::store::Store::upload_usage`] counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct UploadUsage {
    /// Declared lengths of all their uploads, finished or not.
    pub bytes: u64,
    /// Uploads no message shares yet (under way, or finished and unsent).
    pub unshared: u64,
}

/// The bounds a user's uploads must stay within, checked by
/// [`crate::store::Store::create_upload`] together with the insert.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UploadLimits {
    /// Most bytes (declared lengths) a user's uploads may take.
    pub quota_bytes: u64,
    /// Most uploads no message shares yet.
    pub max_unshared: u64,
}

/// What [`crate::store::Store::create_upload`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UploadAdmission {
    /// Recorded.
    Created,
    /// Not recorded: the user holds `max_unshared` unshared uploads.
    TooMany(UploadUsage),
    /// Not recorded: with it the user's uploads would pass the quota.
    OverQuota(UploadUsage),
}

/// A hold on one upload for the body of one request, across the nodes of
/// a cluster (see [`crate::store::Store::hold_body`]).
#[derive(Debug, Clone)]
pub struct BodyHold {
    /// The upload.
    pub id: FileId,
    /// Its owner, whose bodies under way are counted.
    pub owner: UserId,
    /// Who holds it (unique per request).
    pub holder: String,
    /// Now.
    pub now: Timestamp,
    /// Held until then unless renewed (a node that died lets go then).
    pub until: Timestamp,
    /// Most bodies the owner may send at once, or `None` for no count (a
    /// removal).
    pub max_per_user: Option<usize>,
}

/// What [`crate::store::Store::hold_body`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HoldAdmission {
    /// Held.
    Held,
    /// Another request (on any node) holds the upload.
    Busy,
    /// The owner sends `max_per_user` bodies already.
    TooMany,
}

impl UploadLimits {
    /// Whether one more upload of `length` bytes fits beside `usage`.
    pub(crate) fn admit(self, usage: UploadUsage, length: u64) -> UploadAdmission {
        if usage.unshared >= self.max_unshared {
            UploadAdmission::TooMany(usage)
        } else if usage.bytes.saturating_add(length) > self.quota_bytes {
            UploadAdmission::OverQuota(usage)
        } else {
            UploadAdmission::Created
        }
    }
}

/// One user's files, as [`crate::store::Store::file_usage`] counts them (removed files
/// are not counted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileUsageRow {
    /// The user.
    pub user: Username,
    /// Finished uploads.
    pub files: u64,
    /// Declared lengths of all their uploads, finished or not (what the
    /// quota counts).
    pub bytes: u64,
    /// Uploads no message shares (under way, or finished and unsent).
    pub unshared: u64,
}

/// Where a file was shared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SharedIn {
    /// In a room, by name.
    Room(String),
    /// In the direct conversation of these two users.
    Direct(String, String),
}

/// One upload of a user's, as [`crate::store::Store::user_files`] lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserFileRow {
    /// The upload.
    pub upload: UploadRow,
    /// Whether an administrator removed it (its messages stay).
    pub removed: bool,
    /// The conversations in which a message shared it.
    pub shared_in: Vec<SharedIn>,
}

/// What [`crate::store::Store::remove_file`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Removal {
    /// No message shared it: its row is gone.
    Deleted(UploadRow),
    /// Messages shared it: its row stays, marked removed, so that those
    /// messages keep their `file`; it can no longer be downloaded.
    Marked(UploadRow),
    /// It had been removed before.
    AlreadyRemoved,
}
