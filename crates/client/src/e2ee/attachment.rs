//! End-to-end encrypted files: what the message sharing one carries
//! inside its ciphertext, and the client's side of sending and opening
//! one.
//!
//! A file sent into an encrypted conversation is encrypted on the device
//! before upload (`transfer::Action::UploadEncrypted`: a fresh random
//! [`FileKey`] per file, XChaCha20) and uploaded under the neutral name
//! [`FileName::ENCRYPTED`] as [`MediaType::ENCRYPTED`]. The message that
//! shares it ([`Client::share_upload`]) names the upload in clear (the
//! server must know it to let the members download it) and carries, only
//! inside its Megolm ciphertext, an [`EncryptedFile`]: the real name, size
//! and media type, the key and nonce, and the SHA-256 of the ciphertext.
//!
//! Opening such a message (live, from history, or retried when its key
//! arrives) turns its `file` into the real one and remembers the
//! [`EncryptedFile`] by file id (the newest [`MAX_FILES`]), so a front end
//! that shows the file can save it with
//! `transfer::Action::DownloadEncrypted`, which checks the hash before it
//! decrypts anything ([`Client::encrypted_file`], or
//! [`Client::find_encrypted_file`] for a file id alone).

use std::collections::VecDeque;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD_NO_PAD as BASE64;
use chatus_e2ee::FileKey;
use chatus_protocol::file::FileList;
use chatus_protocol::history::Page;
use chatus_protocol::message::{Message, Sent};
use chatus_protocol::{Body, Conversation, FileId, FileInfo, FileName, MediaType, Seq, Sha256Hex};
use serde::{Deserialize, Serialize};

use super::Crypto;
use crate::error::Error;
use crate::handle::Client;
use crate::task::Op;
use crate::transfer::Uploaded;

/// How many encrypted files' keys a client keeps in memory (the oldest
/// are forgotten first; a message opened again brings its key back).
pub(crate) const MAX_FILES: usize = 5000;

/// An end-to-end encrypted file as its message describes it: what the
/// server stores (`id`, and `sha256`, the hash of the ciphertext), what
/// only the members know (the real `name`, `size` and `media_type`), and
/// the key that opens it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncryptedFile {
    /// The upload holding the ciphertext.
    pub id: FileId,
    /// The file's real name.
    pub name: FileName,
    /// Its length in bytes (the ciphertext's too).
    pub size: u64,
    /// Its real media type.
    pub media_type: MediaType,
    /// The SHA-256 of the ciphertext: every downloaded byte is checked
    /// against it before anything is decrypted or saved.
    pub sha256: Sha256Hex,
    /// The key and nonce.
    pub key: FileKey,
}

impl EncryptedFile {
    /// The file as a front end shows it: the real name, size and type (and
    /// the ciphertext's SHA-256, which is the server's `ETag`).
    pub fn info(&self) -> FileInfo {
        FileInfo {
            id: self.id.clone(),
            name: self.name.clone(),
            size: self.size,
            media_type: self.media_type.clone(),
            sha256: self.sha256.clone(),
        }
    }
}

/// The plaintext of a message sharing an encrypted file, as JSON (only
/// ever inside a Megolm ciphertext).
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Envelope {
    /// The format's version (1).
    chatus_file: u8,
    /// The message's text (its caption).
    body: Body,
    file: FileWire,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileWire {
    id: FileId,
    name: FileName,
    size: u64,
    media_type: MediaType,
    sha256: Sha256Hex,
    /// The key, unpadded base64 of 32 bytes.
    key: String,
    /// The nonce, unpadded base64 of 24 bytes.
    nonce: String,
}

/// The envelope's one version.
const VERSION: u8 = 1;

/// The plaintext of a message with caption `body` sharing `file`.
pub(crate) fn seal(body: &Body, file: &EncryptedFile) -> Result<Body, Error> {
    let env = Envelope {
        chatus_file: VERSION,
        body: body.clone(),
        file: FileWire {
            id: file.id.clone(),
            name: file.name.clone(),
            size: file.size,
            media_type: file.media_type.clone(),
            sha256: file.sha256.clone(),
            key: BASE64.encode(file.key.key()),
            nonce: BASE64.encode(file.key.nonce()),
        },
    };
    let json = serde_json::to_string(&env).map_err(|e| Error::E2ee(e.to_string()))?;
    Body::parse(json)
        .map_err(|e| Error::E2ee(format!("the file's message is too long: {}", e.message)))
}

/// Reads a decrypted plaintext as an envelope: the caption and the file.
/// Fuzzed (`crate::fuzzing::file_envelope`): no input panics.
pub(crate) fn unseal(plaintext: &str) -> Result<(Body, EncryptedFile), String> {
    let env: Envelope = serde_json::from_str(plaintext).map_err(|e| e.to_string())?;
    if env.chatus_file != VERSION {
        return Err(format!("version {} is not known", env.chatus_file));
    }
    let decode = |what: &str, s: &str| {
        BASE64
            .decode(s)
            .map_err(|_| format!("its {what} is not base64"))
    };
    let key: [u8; 32] = decode("key", &env.file.key)?
        .try_into()
        .map_err(|_| "its key is not 32 bytes".to_owned())?;
    let nonce: [u8; 24] = decode("nonce", &env.file.nonce)?
        .try_into()
        .map_err(|_| "its nonce is not 24 bytes".to_owned())?;
    Ok((
        env.body,
        EncryptedFile {
            id: env.file.id,
            name: env.file.name,
            size: env.file.size,
            media_type: env.file.media_type,
            sha256: env.file.sha256,
            key: FileKey::from_parts(key, nonce),
        },
    ))
}

/// The keys of encrypted files this client opened, by file id.
#[derive(Default)]
pub(crate) struct FileKeys {
    files: std::collections::HashMap<FileId, EncryptedFile>,
    order: VecDeque<FileId>,
}

impl FileKeys {
    fn remember(&mut self, file: EncryptedFile) {
        let id = file.id.clone();
        if self.files.insert(id.clone(), file).is_none() {
            if self.order.len() >= MAX_FILES
                && let Some(old) = self.order.pop_front()
            {
                self.files.remove(&old);
            }
            self.order.push_back(id);
        }
    }

    pub(crate) fn get(&self, id: &FileId) -> Option<&EncryptedFile> {
        self.files.get(id)
    }
}

impl Crypto {
    /// After a message of an encrypted conversation decrypted to
    /// `plaintext`: when it shares an encrypted file, reads the envelope,
    /// puts the real file in the message, remembers its key, and returns
    /// the caption; otherwise returns the plaintext as it is. An error is
    /// a sentence for [`super::Opened::Undecryptable`].
    pub(crate) fn open_file(
        &mut self,
        message: &mut Message,
        plaintext: Body,
    ) -> Result<Body, String> {
        let Some(shared) = message.file.as_ref().filter(|f| f.is_encrypted()) else {
            return Ok(plaintext);
        };
        match unseal(plaintext.as_str()) {
            Ok((body, file)) => {
                // The server names the upload; the sender named it inside
                // the ciphertext. A server pointing the message at other
                // bytes is caught here (and by the hash at download).
                if file.id != shared.id {
                    return Err(format!(
                        "its sender shared file {}, but the server says {}",
                        file.id, shared.id
                    ));
                }
                if file.sha256 != shared.sha256 || file.size != shared.size {
                    return Err(
                        "the server's copy of its file is not the one its sender encrypted".into(),
                    );
                }
                message.file = Some(file.info());
                self.file_keys.remember(file);
                Ok(body)
            }
            // An edited file message: its current text is the edit's, and
            // the file is known if its first version was opened here.
            Err(_) if message.edited.is_some() => {
                if let Some(f) = self.file_keys.get(&shared.id) {
                    message.file = Some(f.info());
                }
                Ok(plaintext)
            }
            Err(e) => Err(format!("its file's details do not read ({e})")),
        }
    }
}

impl Client {
    /// Whether messages and files to `to` are end-to-end encrypted (an
    /// encrypted room, or a direct conversation that is encrypted or new,
    /// on a client with a device): a file for it must be uploaded with
    /// `transfer::Action::UploadEncrypted`.
    pub async fn encrypts(&self, to: &Conversation) -> Result<bool, Error> {
        self.should_encrypt(to).await
    }

    /// Shares a finished upload in `to` with `caption` (the file's name
    /// when `None`), with the upload's `client_id`, so a retry is stored
    /// once. An encrypted upload ([`Uploaded::key`]) goes only into an
    /// encrypted conversation, its name, type and key inside the message's
    /// ciphertext; a clear one is shared as [`Client::send_file_with_id`]
    /// shares it.
    pub async fn share_upload(
        &self,
        to: Conversation,
        caption: Option<Body>,
        up: &Uploaded,
    ) -> Result<Sent, Error> {
        let caption = match caption {
            Some(c) => c,
            None => Body::parse(up.name.as_str()).map_err(|e| Error::E2ee(e.message))?,
        };
        let Some(file) = up.encrypted() else {
            return self
                .send_file_with_id(to, caption, Some(up.id.clone()), up.client_id.clone())
                .await;
        };
        if !self.should_encrypt(&to).await? {
            // Never in clear: the envelope holds the file's key.
            return Err(Error::E2ee(format!(
                "{} is not end-to-end encrypted; upload the file without encryption to share it there",
                crate::e2ee::conv_key(&to)
            )));
        }
        let body = seal(&caption, &file)?;
        if let Some(c) = self.e2ee.lock().as_mut() {
            c.file_keys.remember(file);
        }
        let op = Op::Message {
            file: Some(up.id.clone()),
            reply_to: None,
            encrypted: false,
        };
        self.queue(to, body, up.client_id.clone(), op).await
    }

    /// The encrypted file `id` as this client knows it from the message
    /// that shared it (opened in this process), with its key; `None` when
    /// no such message was opened here.
    pub fn encrypted_file(&self, id: &FileId) -> Option<EncryptedFile> {
        self.e2ee.lock().as_ref()?.file_keys.get(id).cloned()
    }

    /// The encrypted file `id`, found through the message that shares it:
    /// known already, or looked up in `conv` (or in each encrypted
    /// conversation of ours when `None`) with `list_files`, then that
    /// message fetched and opened. Fails with a sentence when no message
    /// here shares it or this device cannot decrypt the one that does.
    pub async fn find_encrypted_file(
        &self,
        id: &FileId,
        conv: Option<Conversation>,
    ) -> Result<EncryptedFile, Error> {
        if let Some(f) = self.encrypted_file(id) {
            return Ok(f);
        }
        let convs = match conv {
            Some(c) => vec![c],
            None => self
                .conversations()
                .await?
                .into_iter()
                .filter(|i| i.encrypted)
                .map(|i| i.conv)
                .collect(),
        };
        for conv in convs {
            let list = self.list_files(conv.clone(), None).await?;
            let Some(shared) = list.files.iter().find(|f| &f.file.id == id) else {
                continue;
            };
            let page = self
                .history(conv.clone(), Page::Before(Seq(shared.seq.0 + 1)), Some(1))
                .await?;
            let mut found = page.messages.into_iter().find(|m| m.seq == shared.seq);
            if let Some(m) = &mut found
                && let super::Opened::Undecryptable { reason } = self.open(m)
            {
                return Err(Error::E2ee(format!(
                    "the message sharing file {id} could not be decrypted: {reason}"
                )));
            }
            if let Some(f) = self.encrypted_file(id) {
                return Ok(f);
            }
        }
        Err(Error::E2ee(format!(
            "no encrypted message of yours shares file {id} (or it is older than 50 files in its conversation)"
        )))
    }

    /// Gives each encrypted file of a `list_files` answer (uploaded under
    /// the neutral name) its real name, size and type, from the message
    /// that shared it: known already, or fetched from history and opened
    /// (one request per file this process has not seen). A file whose
    /// message this device cannot decrypt keeps the neutral name and is
    /// returned with why, for the front end to say.
    pub async fn open_files(&self, list: &mut FileList) -> Result<Vec<(FileId, String)>, Error> {
        let mut closed = Vec::new();
        for shared in &mut list.files {
            if !shared.file.is_encrypted() {
                continue;
            }
            if self.encrypted_file(&shared.file.id).is_none() {
                let page = self
                    .history(
                        list.conv.clone(),
                        Page::Before(Seq(shared.seq.0.saturating_add(1))),
                        Some(1),
                    )
                    .await?;
                match page.messages.into_iter().find(|m| m.seq == shared.seq) {
                    Some(mut m) => {
                        if let super::Opened::Undecryptable { reason } = self.open(&mut m) {
                            closed.push((shared.file.id.clone(), reason));
                            continue;
                        }
                    }
                    None => {
                        closed.push((shared.file.id.clone(), "its message is gone".into()));
                        continue;
                    }
                }
            }
            match self.encrypted_file(&shared.file.id) {
                Some(f) => shared.file = f.info(),
                None => closed.push((
                    shared.file.id.clone(),
                    "its message names no encrypted file".into(),
                )),
            }
        }
        Ok(closed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file() -> EncryptedFile {
        EncryptedFile {
            id: FileId::from_bytes([7; 16]),
            name: FileName::sanitize("report.pdf"),
            size: 12,
            media_type: MediaType::or_octet_stream("application/pdf"),
            sha256: Sha256Hex::from_digest(&[1; 32]),
            key: FileKey::generate().unwrap(),
        }
    }

    #[test]
    fn an_envelope_reads_back_and_a_damaged_one_is_refused() {
        let f = file();
        let sealed = seal(&Body::parse("the report").unwrap(), &f).unwrap();
        let (body, back) = unseal(sealed.as_str()).unwrap();
        assert_eq!(body.as_str(), "the report");
        assert_eq!(back, f);
        // A text message is no envelope; nor is one with a short key or
        // an unknown field.
        assert!(unseal("hello").is_err());
        let short = sealed.as_str().replace(&BASE64.encode(f.key.key()), "AAAA");
        assert!(unseal(&short).unwrap_err().contains("32 bytes"));
        let extra = sealed.as_str().replacen('{', "{\"x\":1,", 1);
        assert!(unseal(&extra).is_err());
    }
}
