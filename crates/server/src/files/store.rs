//! [`FileStore`]: where the bytes of files live, behind a trait (the local
//! disk here; an S3-compatible object store for a cluster in
//! [`super::s3`]), as the message store is behind [`crate::store::Store`];
//! [`open`] picks one from the configuration.
//!
//! [`LocalFileStore`] keeps, under `DATA/files/`:
//! - `partial/ID`: an upload's bytes so far; its length is the upload's
//!   offset. Bytes are fsynced before an offset is reported to a client.
//! - `blobs/AB/SHA256`: finished files, content-addressed by SHA-256, so
//!   the same file uploaded twice is stored once.
//! - `thumbs/AB/SHA256`: the thumbnail of an image blob (PNG or JPEG, told
//!   apart by its first bytes), made on first request; removed with its
//!   blob.
//!
//! A finished partial is hashed, fsynced and renamed into `blobs/` (the
//! directory fsynced too): a crash leaves either the partial (resumable)
//! or the whole blob, never a damaged stored file.

use std::future::Future;
use std::io::{self, Read as _, Seek as _, Write as _};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;

use chatus_protocol::{FileId, Sha256Hex};
use sha2::{Digest as _, Sha256};
use tokio::io::AsyncRead;

/// A boxed future of the file store.
pub(crate) type FileFuture<'a, T> = Pin<Box<dyn Future<Output = io::Result<T>> + Send + 'a>>;

/// A readable slice of a stored file.
pub(crate) type BlobReader = Box<dyn AsyncRead + Send + Sync + Unpin>;

/// Why a file store could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum FileStoreError {
    /// A local directory of the file store could not be made.
    #[error("Cannot make the file store's directory {path}: {source}")]
    Local {
        /// The directory.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// `files.store` is not an `s3://` URL.
    #[error("The file store {url} is not of the form s3://BUCKET or s3://BUCKET/PREFIX.")]
    BadUrl {
        /// What was given.
        url: String,
    },
    /// The S3 client could not be set up (a bad endpoint, say).
    #[error("The S3 file store {url} cannot be used: {source}")]
    S3 {
        /// The store's URL.
        url: String,
        /// Why.
        source: object_store::Error,
    },
    /// The S3 store did not answer, or refused the node's credentials.
    #[error(
        "The S3 file store {url} is unreachable or refused access (check --s3-endpoint and the \
         AWS_* credentials): {source}"
    )]
    Unreachable {
        /// The store's URL.
        url: String,
        /// Why.
        source: object_store::Error,
    },
}

/// The file store the configuration names: S3 when `files.store` is set,
/// else `files/` in the data directory.
pub(crate) async fn open(
    config: &crate::config::Config,
) -> Result<Arc<dyn FileStore>, FileStoreError> {
    Ok(match &config.files.store {
        Some(_) => Arc::new(super::s3::S3FileStore::open(&config.files, &config.data).await?),
        None => Arc::new(LocalFileStore::open(&config.data).map_err(|source| {
            FileStoreError::Local {
                path: config.data.join("files"),
                source,
            }
        })?),
    })
}

/// Where file bytes live. Methods are object-safe (boxed futures), as for
/// the message store.
pub(crate) trait FileStore: Send + Sync + 'static {
    /// How many bytes of a body to gather before one [`FileStore::write_at`]:
    /// the most of a body held in memory at once.
    fn write_chunk(&self) -> usize {
        256 * 1024
    }

    /// Creates an empty partial file for a new upload.
    fn create_partial(&self, id: &FileId) -> FileFuture<'_, ()>;

    /// The bytes a partial holds (the upload's offset), `None` when there
    /// is no partial by that id.
    fn partial_len(&self, id: &FileId) -> FileFuture<'_, Option<u64>>;

    /// Writes `data` at `offset` of a partial (blocking I/O: call it on a
    /// blocking thread through [`FileStore::write_at`]'s future).
    fn write_at(&self, id: &FileId, offset: u64, data: Vec<u8>) -> FileFuture<'_, ()>;

    /// Makes a partial's bytes durable (fsync) and, when `len` is given,
    /// first cuts it back to `len` bytes (a chunk discarded).
    fn sync_partial(&self, id: &FileId, len: Option<u64>) -> FileFuture<'_, ()>;

    /// The SHA-256 of a partial's bytes, read from disk.
    fn hash_partial(&self, id: &FileId) -> FileFuture<'_, Sha256Hex>;

    /// Moves a partial into the content store under `sha256`; when that
    /// content is stored already, the partial is dropped instead.
    fn promote(&self, id: &FileId, sha256: &Sha256Hex) -> FileFuture<'_, ()>;

    /// Removes a partial; removing a missing one succeeds.
    fn remove_partial(&self, id: &FileId) -> FileFuture<'_, ()>;

    /// Removes a stored file and its thumbnail; removing a missing one
    /// succeeds.
    fn remove_blob(&self, sha256: &Sha256Hex) -> FileFuture<'_, ()>;

    /// Opens `len` bytes of a stored file from `start`.
    fn open_blob(&self, sha256: &Sha256Hex, start: u64, len: u64) -> FileFuture<'_, BlobReader>;

    /// Opens a stored file for blocking reads with seeking (the image
    /// decoders want both): call it on a blocking thread.
    fn open_blob_blocking(&self, sha256: &Sha256Hex) -> io::Result<SyncBlob>;

    /// Whether a stored file exists.
    fn has_blob(&self, sha256: &Sha256Hex) -> FileFuture<'_, bool>;

    /// A stored file's thumbnail (a small image, read whole), `None` when
    /// none was made.
    fn read_thumb(&self, sha256: &Sha256Hex) -> FileFuture<'_, Option<Vec<u8>>>;

    /// Stores a stored file's thumbnail (written aside, then renamed, so a
    /// reader never sees half of one).
    fn put_thumb(&self, sha256: &Sha256Hex, thumb: Vec<u8>) -> FileFuture<'_, ()>;
}

/// A stored file read with blocking I/O.
pub(crate) type SyncBlob = Box<dyn ReadSeek + Send>;

/// `Read` and `Seek` together, as one trait object.
pub(crate) trait ReadSeek: io::Read + io::Seek {}

impl<T: io::Read + io::Seek> ReadSeek for T {}

/// [`FileStore`] on the local disk, under the data directory.
#[derive(Debug, Clone)]
pub(crate) struct LocalFileStore {
    root: Arc<PathBuf>,
}

/// How much of a file is read at a time when hashing it.
const HASH_BUF: usize = 256 * 1024;

impl LocalFileStore {
    /// A store under `data/files`, creating its directories.
    pub(crate) fn open(data: &Path) -> io::Result<Self> {
        let root = data.join("files");
        std::fs::create_dir_all(root.join("partial"))?;
        std::fs::create_dir_all(root.join("blobs"))?;
        std::fs::create_dir_all(root.join("thumbs"))?;
        Ok(Self {
            root: Arc::new(root),
        })
    }

    /// Ids are 32 hex digits and digests 64 (checked by their types), so
    /// neither can name anything outside these directories.
    fn partial(&self, id: &FileId) -> PathBuf {
        self.root.join("partial").join(id.as_str())
    }

    fn blob(&self, sha: &Sha256Hex) -> PathBuf {
        self.root
            .join("blobs")
            .join(&sha.as_str()[..2])
            .join(sha.as_str())
    }

    fn thumb(&self, sha: &Sha256Hex) -> PathBuf {
        self.root
            .join("thumbs")
            .join(&sha.as_str()[..2])
            .join(sha.as_str())
    }

    fn blocking<T, F>(&self, f: F) -> FileFuture<'static, T>
    where
        T: Send + 'static,
        F: FnOnce() -> io::Result<T> + Send + 'static,
    {
        Box::pin(async move {
            tokio::task::spawn_blocking(f)
                .await
                .map_err(|e| io::Error::other(e.to_string()))?
        })
    }
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

fn ignore_missing(r: io::Result<()>) -> io::Result<()> {
    match r {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

impl FileStore for LocalFileStore {
    fn create_partial(&self, id: &FileId) -> FileFuture<'_, ()> {
        let path = self.partial(id);
        self.blocking(move || {
            std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)?
                .sync_all()?;
            if let Some(dir) = path.parent() {
                sync_dir(dir)?;
            }
            Ok(())
        })
    }

    fn partial_len(&self, id: &FileId) -> FileFuture<'_, Option<u64>> {
        let path = self.partial(id);
        self.blocking(move || match std::fs::metadata(&path) {
            Ok(m) => Ok(Some(m.len())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        })
    }

    fn write_at(&self, id: &FileId, offset: u64, data: Vec<u8>) -> FileFuture<'_, ()> {
        let path = self.partial(id);
        self.blocking(move || {
            let mut f = std::fs::OpenOptions::new().write(true).open(&path)?;
            f.seek(io::SeekFrom::Start(offset))?;
            f.write_all(&data)
        })
    }

    fn sync_partial(&self, id: &FileId, len: Option<u64>) -> FileFuture<'_, ()> {
        let path = self.partial(id);
        self.blocking(move || {
            let f = std::fs::OpenOptions::new().write(true).open(&path)?;
            if let Some(len) = len {
                f.set_len(len)?;
            }
            f.sync_all()
        })
    }

    fn hash_partial(&self, id: &FileId) -> FileFuture<'_, Sha256Hex> {
        let path = self.partial(id);
        self.blocking(move || {
            let mut f = std::fs::File::open(&path)?;
            let mut h = Sha256::new();
            let mut buf = vec![0u8; HASH_BUF];
            loop {
                let n = f.read(&mut buf)?;
                if n == 0 {
                    break;
                }
                h.update(&buf[..n]);
            }
            Ok(Sha256Hex::from_digest(&h.finalize().into()))
        })
    }

    fn promote(&self, id: &FileId, sha256: &Sha256Hex) -> FileFuture<'_, ()> {
        let from = self.partial(id);
        let to = self.blob(sha256);
        self.blocking(move || {
            if to.exists() {
                return ignore_missing(std::fs::remove_file(&from));
            }
            let dir = to
                .parent()
                .ok_or_else(|| io::Error::other("a blob path has no parent"))?;
            std::fs::create_dir_all(dir)?;
            std::fs::File::open(&from)?.sync_all()?;
            std::fs::rename(&from, &to)?;
            sync_dir(dir)?;
            if let Some(p) = from.parent() {
                sync_dir(p)?;
            }
            Ok(())
        })
    }

    fn remove_partial(&self, id: &FileId) -> FileFuture<'_, ()> {
        let path = self.partial(id);
        self.blocking(move || ignore_missing(std::fs::remove_file(path)))
    }

    fn remove_blob(&self, sha256: &Sha256Hex) -> FileFuture<'_, ()> {
        let path = self.blob(sha256);
        let thumb = self.thumb(sha256);
        self.blocking(move || {
            ignore_missing(std::fs::remove_file(path))?;
            ignore_missing(std::fs::remove_file(thumb))
        })
    }

    fn open_blob(&self, sha256: &Sha256Hex, start: u64, len: u64) -> FileFuture<'_, BlobReader> {
        let path = self.blob(sha256);
        Box::pin(async move {
            use tokio::io::{AsyncReadExt as _, AsyncSeekExt as _};
            let mut f = tokio::fs::File::open(&path).await?;
            f.seek(io::SeekFrom::Start(start)).await?;
            Ok(Box::new(f.take(len)) as BlobReader)
        })
    }

    fn open_blob_blocking(&self, sha256: &Sha256Hex) -> io::Result<SyncBlob> {
        Ok(Box::new(std::fs::File::open(self.blob(sha256))?))
    }

    fn has_blob(&self, sha256: &Sha256Hex) -> FileFuture<'_, bool> {
        let path = self.blob(sha256);
        self.blocking(move || path.try_exists())
    }

    fn read_thumb(&self, sha256: &Sha256Hex) -> FileFuture<'_, Option<Vec<u8>>> {
        let path = self.thumb(sha256);
        self.blocking(move || match std::fs::read(&path) {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        })
    }

    fn put_thumb(&self, sha256: &Sha256Hex, thumb: Vec<u8>) -> FileFuture<'_, ()> {
        let to = self.thumb(sha256);
        self.blocking(move || {
            let dir = to
                .parent()
                .ok_or_else(|| io::Error::other("a thumbnail path has no parent"))?;
            std::fs::create_dir_all(dir)?;
            // A thumbnail can be made again, so it is not fsynced: a crash
            // loses at most one, never leaves half of one under its name.
            let tmp = to.with_extension("tmp");
            std::fs::write(&tmp, &thumb)?;
            std::fs::rename(&tmp, &to)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt as _;

    #[tokio::test]
    async fn the_same_content_is_stored_once_and_chunks_can_be_cut_back() {
        let dir = tempfile::tempdir().unwrap();
        let s = LocalFileStore::open(dir.path()).unwrap();
        let a = FileId::from_bytes([1; 16]);
        let b = FileId::from_bytes([2; 16]);
        for id in [&a, &b] {
            s.create_partial(id).await.unwrap();
            s.write_at(id, 0, b"hello ".to_vec()).await.unwrap();
            s.write_at(id, 6, b"worldXX".to_vec()).await.unwrap();
            s.sync_partial(id, Some(11)).await.unwrap();
            assert_eq!(s.partial_len(id).await.unwrap(), Some(11));
        }
        let sha = s.hash_partial(&a).await.unwrap();
        assert_eq!(sha, s.hash_partial(&b).await.unwrap());
        s.promote(&a, &sha).await.unwrap();
        s.promote(&b, &sha).await.unwrap();
        assert_eq!(s.partial_len(&a).await.unwrap(), None);
        assert_eq!(s.partial_len(&b).await.unwrap(), None);
        let blobs = std::fs::read_dir(dir.path().join("files/blobs").join(&sha.as_str()[..2]))
            .unwrap()
            .count();
        assert_eq!(blobs, 1);
        let mut got = String::new();
        s.open_blob(&sha, 6, 5)
            .await
            .unwrap()
            .read_to_string(&mut got)
            .await
            .unwrap();
        assert_eq!(got, "world");
    }
}
