//! Files: the identifiers and metadata of a shared file, the `file` a
//! `message` carries, and `list_files` with its reply `files`.
//!
//! The bytes themselves never travel over the WebSocket: they are uploaded
//! with tus 1.0 and downloaded with plain HTTP on the same port
//! (`docs/PROTOCOL.md`, "Files"). A finished upload becomes a message by a
//! `send` whose `file` names its id.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::ErrorCode;
use crate::ids::{Conversation, InvalidValue, RequestId, RoomName, Seq, Timestamp, Username};

/// An upload's id, which is also the finished file's id: 32 lowercase
/// hexadecimal digits (128 random bits), so ids cannot be guessed.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct FileId(String);

impl FileId {
    /// Length of an id, in characters.
    pub const LEN: usize = 32;

    /// Checks `s` and wraps it.
    pub fn parse(s: impl Into<String>) -> Result<Self, InvalidValue> {
        let s = s.into();
        if s.len() != Self::LEN || !s.bytes().all(is_lower_hex) {
            return Err(InvalidValue {
                code: ErrorCode::UnknownFile,
                message: format!("A file id is {} lowercase hexadecimal digits.", Self::LEN),
            });
        }
        Ok(Self(s))
    }

    /// An id from 16 random bytes.
    pub fn from_bytes(bytes: [u8; 16]) -> Self {
        Self(hex(&bytes))
    }

    /// The id.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A SHA-256 digest as 64 lowercase hexadecimal digits: a file's content
/// address and its HTTP `ETag`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Sha256Hex(String);

impl Sha256Hex {
    /// Checks `s` and wraps it.
    pub fn parse(s: impl Into<String>) -> Result<Self, InvalidValue> {
        let s = s.into();
        if s.len() != 64 || !s.bytes().all(is_lower_hex) {
            return Err(InvalidValue {
                code: ErrorCode::InvalidMessage,
                message: "A SHA-256 is 64 lowercase hexadecimal digits.".into(),
            });
        }
        Ok(Self(s))
    }

    /// The digest's hexadecimal form.
    pub fn from_digest(digest: &[u8; 32]) -> Self {
        Self(hex(digest))
    }

    /// The hexadecimal digits.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A file's name as shown and as offered for saving: 1 to 255 bytes of
/// UTF-8 with no path separator (`/`, `\`), no control character (NUL
/// included), and not `.` or `..`, so it can never name another
/// directory. [`FileName::sanitize`] makes one out of anything.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct FileName(String);

impl FileName {
    /// Longest name, in bytes (what most file systems allow).
    pub const MAX_LEN: usize = 255;

    /// The name an end-to-end encrypted file is uploaded under, whatever
    /// its real name (which only its message's ciphertext holds).
    pub const ENCRYPTED: &'static str = "encrypted";

    /// Checks `s` and wraps it.
    pub fn parse(s: impl Into<String>) -> Result<Self, InvalidValue> {
        let s = s.into();
        if s.is_empty()
            || s.len() > Self::MAX_LEN
            || s == "."
            || s == ".."
            || s.chars().any(is_unsafe_in_name)
            || s.trim() != s
        {
            return Err(InvalidValue {
                code: ErrorCode::InvalidMessage,
                message: format!(
                    "A file name must be 1 to {} bytes, without path separators, control \
                     characters or surrounding spaces, and not . or ..",
                    Self::MAX_LEN
                ),
            });
        }
        Ok(Self(s))
    }

    /// A safe name made from any text: separators and control characters
    /// become `_`, surrounding spaces go, a name too long is cut at a
    /// character boundary (keeping its extension when it is short), and
    /// an empty result, `.` or `..` becomes `file`.
    pub fn sanitize(raw: &str) -> Self {
        let replaced: String = raw
            .chars()
            .map(|c| if is_unsafe_in_name(c) { '_' } else { c })
            .collect();
        let mut s = replaced.trim().to_owned();
        if s.len() > Self::MAX_LEN {
            let ext = s
                .rfind('.')
                .map(|i| s[i..].to_owned())
                .filter(|e| e.len() <= 16)
                .unwrap_or_default();
            let mut cut = Self::MAX_LEN - ext.len();
            while !s.is_char_boundary(cut) {
                cut -= 1;
            }
            s.truncate(cut);
            s = s.trim_end().to_owned();
            s.push_str(&ext);
        }
        if s.is_empty() || s == "." || s == ".." {
            s = "file".to_owned();
        }
        Self(s)
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn is_unsafe_in_name(c: char) -> bool {
    c == '/' || c == '\\' || c.is_control()
}

/// A media type (`image/png`): `type/subtype`, each 1 to 127 of the
/// characters RFC 6838 allows, lower-cased, without parameters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct MediaType(String);

impl MediaType {
    /// The type of bytes of unknown kind.
    pub const OCTET_STREAM: &'static str = "application/octet-stream";

    /// The type an end-to-end encrypted file is uploaded as: a ciphertext
    /// whose real name, type and key travel only inside the encrypted
    /// message that shares it. An encrypted conversation shares only
    /// files of this type, a clear one never ([`FileInfo::is_encrypted`]),
    /// and the server makes no thumbnail of one.
    pub const ENCRYPTED: &'static str = "application/vnd.chatus.encrypted";

    /// Checks `s` (case-insensitively) and wraps it lower-cased.
    pub fn parse(s: impl Into<String>) -> Result<Self, InvalidValue> {
        let s = s.into().to_ascii_lowercase();
        let ok = s.split_once('/').is_some_and(|(t, sub)| {
            [t, sub].iter().all(|p| {
                !p.is_empty()
                    && p.len() <= 127
                    && p.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"!#$&-^_.+".contains(&b))
            })
        });
        if !ok {
            return Err(InvalidValue {
                code: ErrorCode::InvalidMessage,
                message: "A media type is type/subtype, such as image/png.".into(),
            });
        }
        Ok(Self(s))
    }

    /// `s` when it is a valid media type, else `application/octet-stream`.
    pub fn or_octet_stream(s: &str) -> Self {
        Self::parse(s).unwrap_or_else(|_| Self(Self::OCTET_STREAM.to_owned()))
    }

    /// The media type.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

crate::ids::string_newtype_impls!(FileId, Sha256Hex, FileName, MediaType);
crate::ids::display_plain!(FileId, Sha256Hex, FileName, MediaType);

fn is_lower_hex(b: u8) -> bool {
    b.is_ascii_digit() || (b'a'..=b'f').contains(&b)
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 15)]));
    }
    s
}

/// The file a `message` carries (its `file` field): everything needed to
/// show it and to download it from `/files/{id}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileInfo {
    /// The file's id (its upload's id); download it from `/files/{id}`.
    pub id: FileId,
    /// The name it was uploaded with, made safe.
    pub name: FileName,
    /// Its length in bytes.
    pub size: u64,
    /// Its media type, as the uploader declared it
    /// (`application/octet-stream` when it declared none).
    pub media_type: MediaType,
    /// The SHA-256 of its bytes, which is also its `ETag`.
    pub sha256: Sha256Hex,
}

impl FileInfo {
    /// Whether the file is end-to-end encrypted: uploaded as
    /// [`MediaType::ENCRYPTED`], its bytes a ciphertext the server cannot
    /// read. (A client that opened its message shows the real name and
    /// type in its place.)
    pub fn is_encrypted(&self) -> bool {
        self.media_type.as_str() == MediaType::ENCRYPTED
    }
}

/// `list_files`: the files shared in a conversation, newest first.
///
/// Answered by `files`, or `not_member` / `unknown_room` / `unknown_user`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "ListFilesWire", into = "ListFilesWire")]
pub struct ListFiles {
    /// The conversation (`room` or `peer`).
    pub conv: Conversation,
    /// Most files wanted (1 to the server's `history_page_max`; default 50).
    pub limit: Option<u32>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListFilesWire {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    room: Option<RoomName>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    peer: Option<Username>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    limit: Option<u32>,
}

impl TryFrom<ListFilesWire> for ListFiles {
    type Error = InvalidValue;
    fn try_from(w: ListFilesWire) -> Result<Self, Self::Error> {
        Ok(ListFiles {
            conv: Conversation::from_fields(w.room, w.peer)?,
            limit: w.limit,
        })
    }
}

impl From<ListFiles> for ListFilesWire {
    fn from(l: ListFiles) -> Self {
        let (room, peer) = l.conv.into_fields();
        ListFilesWire {
            room,
            peer,
            limit: l.limit,
        }
    }
}

/// One file of a `files` reply: the file and the message that shared it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SharedFile {
    /// The file.
    pub file: FileInfo,
    /// The message's place in its conversation.
    pub seq: Seq,
    /// Who shared it.
    pub sender: Username,
    /// When it was shared.
    pub time: Timestamp,
}

/// `files`: the answer to `list_files`, newest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileList {
    /// Echo of the request `id`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<RequestId>,
    /// The conversation (`room` or `peer`).
    #[serde(flatten)]
    pub conv: Conversation,
    /// The files, newest first.
    pub files: Vec<SharedFile>,
    /// True when older files exist beyond `limit`.
    #[serde(default)]
    pub more: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_made_safe() {
        for (raw, safe) in [
            ("../../etc/passwd", ".._.._etc_passwd"),
            ("a\0b", "a_b"),
            ("x\r\ny.txt", "x__y.txt"),
            ("..", "file"),
            ("  ", "file"),
            ("C:\\win.ini", "C:_win.ini"),
            ("report.pdf", "report.pdf"),
        ] {
            let n = FileName::sanitize(raw);
            assert_eq!(n.as_str(), safe, "{raw:?}");
            assert!(FileName::parse(n.as_str()).is_ok(), "{raw:?}");
        }
        let long = format!("{}.tar.gz", "é".repeat(200));
        let n = FileName::sanitize(&long);
        assert!(n.as_str().len() <= FileName::MAX_LEN);
        assert!(n.as_str().ends_with(".gz"));
        assert!(FileName::parse("../x").is_err());
        assert!(FileName::parse("..").is_err());
        assert!(FileName::parse("a\u{7f}").is_err());
    }

    #[test]
    fn ids_digests_and_media_types_are_checked() {
        assert!(FileId::parse("0123456789abcdef0123456789abcdef").is_ok());
        assert!(FileId::parse("0123456789ABCDEF0123456789abcdef").is_err());
        assert!(FileId::parse("../../../../../../../../etc/pass").is_err());
        assert_eq!(FileId::from_bytes([0xab; 16]).as_str(), "ab".repeat(16));
        assert!(Sha256Hex::parse("0".repeat(64)).is_ok());
        assert!(Sha256Hex::parse("0".repeat(63)).is_err());
        assert_eq!(MediaType::parse("Image/PNG").unwrap().as_str(), "image/png");
        assert!(MediaType::parse("text/plain; charset=utf-8").is_err());
        assert_eq!(
            MediaType::parse(MediaType::ENCRYPTED).unwrap().as_str(),
            MediaType::ENCRYPTED
        );
        assert!(FileName::parse(FileName::ENCRYPTED).is_ok());
        assert_eq!(
            MediaType::or_octet_stream("nonsense").as_str(),
            MediaType::OCTET_STREAM
        );
    }
}
