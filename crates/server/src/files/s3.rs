//! [`S3FileStore`]: the [`FileStore`] of a cluster, in an S3-compatible
//! object store (the `object_store` crate's S3 client), so that a file
//! uploaded through one node downloads through every other.
//!
//! Objects, under the bucket (and the prefix of `s3://BUCKET/PREFIX`):
//! - `partial/ID/created`: an empty marker, so that an upload holding no
//!   bytes yet exists.
//! - `partial/ID/OFFSET`: one part of an upload under way (OFFSET in 20
//!   digits, so names sort by offset), written whole by one `PUT`: parts
//!   chain from 0, and where the chain ends is the upload's offset. An
//!   acknowledged `PUT` is durable, so a part is never "synced".
//! - `blobs/SHA256`: finished files, content-addressed, assembled from the
//!   parts on promotion (streamed through the node into one object, its
//!   SHA-256 checked on the way).
//! - `thumbs/SHA256`: the thumbnail of an image blob.
//!
//! Why parts rather than S3's own multipart upload for tus: a tus chunk
//! has any size, but a multipart part must be 5 MiB or more (all but the
//! last), a multipart upload cannot be cut back (a chunk discarded), and
//! listing its parts is not what a plain S3-compatible server does alike.
//! Parts as objects need only `PUT`, `GET`, `LIST` and `DELETE`, which
//! every S3-compatible server has, and any node can resume any upload.

use std::io::{self, Seek as _, Write as _};
use std::path::{Path as FsPath, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use chatus_protocol::{FileId, Sha256Hex};
use futures_util::stream::BoxStream;
use futures_util::{StreamExt as _, TryStreamExt as _};
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path;
use object_store::{
    GetOptions, GetRange, ObjectStore, ObjectStoreExt as _, PutPayload, RetryConfig, WriteMultipart,
};
use sha2::{Digest as _, Sha256};
use tokio::io::{AsyncRead, ReadBuf};

use super::store::{BlobReader, FileFuture, FileStore, FileStoreError, SyncBlob};
use crate::config::FilesConfig;

/// Bytes a body gathers before one part is written: fewer, larger
/// objects than the local store's writes (each is one `PUT`), and one
/// chunk of the client (4 MiB) is one part.
const PART_BYTES: usize = 8 << 20;

/// Size of each part of the multipart upload that assembles a blob (S3's
/// least is 5 MiB).
const ASSEMBLE_CHUNK: usize = 8 << 20;

/// Parts of a blob's assembly in flight at once.
const ASSEMBLE_CONCURRENCY: usize = 4;

/// A blob at most this long is assembled in memory and written with one
/// `PUT` (a multipart upload needs at least one part of 5 MiB).
const SMALL_BLOB: u64 = 5 << 20;

/// Longest an operation retries a failing store before it fails (the
/// client's default is minutes; a request waiting on it is not).
const RETRY_TIMEOUT: Duration = Duration::from_secs(15);

/// The bucket and key prefix of `s3://BUCKET[/PREFIX]`, `None` when the
/// URL is not of that form. The bucket follows S3's naming rules
/// loosely (letters, digits, `.`, `-`, `_`); the prefix is path segments.
pub(crate) fn parse_url(url: &str) -> Option<(String, String)> {
    let rest = url.strip_prefix("s3://")?;
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    let bucket_ok = (3..=63).contains(&bucket.len())
        && bucket
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'));
    let prefix = prefix.trim_matches('/');
    let prefix_ok = prefix.split('/').all(|s| {
        prefix.is_empty()
            || (!s.is_empty()
                && s != "."
                && s != ".."
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_')))
    });
    (bucket_ok && prefix_ok).then(|| (bucket.to_owned(), prefix.to_owned()))
}

/// [`FileStore`] in an S3-compatible object store.
#[derive(Debug, Clone)]
pub(crate) struct S3FileStore {
    s3: Arc<AmazonS3>,
    /// The key prefix every object name starts with (may be empty).
    prefix: Arc<str>,
    /// Where a blob is copied for the image decoders, which want to seek
    /// (`DATA/files/scratch`): each copy is unlinked as soon as it is open.
    scratch: Arc<PathBuf>,
}

fn io_err(e: object_store::Error) -> io::Error {
    match e {
        object_store::Error::NotFound { .. } => io::Error::new(io::ErrorKind::NotFound, e),
        other => io::Error::other(other),
    }
}

fn missing_ok(r: object_store::Result<()>) -> io::Result<()> {
    match r {
        Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
        Err(e) => Err(io_err(e)),
    }
}

/// One part of an upload under way.
#[derive(Debug, Clone)]
struct Part {
    offset: u64,
    len: u64,
    location: Path,
}

impl S3FileStore {
    /// Connects to the store `config.store` names and checks that it
    /// answers (a listing of the prefix), so a wrong bucket, endpoint or
    /// key stops the start with a clear error.
    pub(crate) async fn open(config: &FilesConfig, data: &FsPath) -> Result<Self, FileStoreError> {
        // reqwest's TLS is built without a provider of its own (ours is
        // ring, as everywhere): make ring the process default it takes. An
        // error means one is installed already.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let url = config.store.clone().unwrap_or_default();
        let Some((bucket, prefix)) = parse_url(&url) else {
            return Err(FileStoreError::BadUrl { url });
        };
        let mut b = AmazonS3Builder::from_env()
            .with_bucket_name(&bucket)
            .with_retry(RetryConfig {
                retry_timeout: RETRY_TIMEOUT,
                max_retries: 3,
                ..RetryConfig::default()
            });
        if let Some(e) = &config.s3_endpoint {
            b = b.with_endpoint(e).with_allow_http(e.starts_with("http://"));
        }
        let region = config
            .s3_region
            .clone()
            .or_else(|| std::env::var("AWS_DEFAULT_REGION").ok())
            .or_else(|| std::env::var("AWS_REGION").ok())
            .unwrap_or_else(|| "us-east-1".to_owned());
        b = b.with_region(region);
        if let Some(k) = &config.s3_access_key_id {
            b = b.with_access_key_id(k);
        }
        if let Some(k) = &config.s3_secret_access_key {
            b = b.with_secret_access_key(&k.0);
        }
        let s3 = b.build().map_err(|source| FileStoreError::S3 {
            url: url.clone(),
            source,
        })?;
        let scratch = data.join("files").join("scratch");
        std::fs::create_dir_all(&scratch).map_err(|source| FileStoreError::Local {
            path: scratch.clone(),
            source,
        })?;
        let store = Self {
            s3: Arc::new(s3),
            prefix: prefix.into(),
            scratch: Arc::new(scratch),
        };
        store
            .s3
            .list_with_delimiter(Some(&store.path("partial")))
            .await
            .map_err(|source| FileStoreError::Unreachable { url, source })?;
        Ok(store)
    }

    fn path(&self, rest: &str) -> Path {
        if self.prefix.is_empty() {
            Path::from(rest)
        } else {
            Path::from(format!("{}/{rest}", self.prefix))
        }
    }

    /// Ids are 32 hex digits and digests 64 (checked by their types), so
    /// no name can reach outside its folder.
    fn partial_dir(&self, id: &FileId) -> Path {
        self.path(&format!("partial/{}", id.as_str()))
    }

    fn part(&self, id: &FileId, offset: u64) -> Path {
        self.path(&format!("partial/{}/{offset:020}", id.as_str()))
    }

    fn marker(&self, id: &FileId) -> Path {
        self.path(&format!("partial/{}/created", id.as_str()))
    }

    fn blob(&self, sha: &Sha256Hex) -> Path {
        self.path(&format!("blobs/{}", sha.as_str()))
    }

    fn thumb(&self, sha: &Sha256Hex) -> Path {
        self.path(&format!("thumbs/{}", sha.as_str()))
    }

    /// Every object of an upload: `None` when it has none (no such
    /// upload), else its parts by offset.
    async fn listing(&self, id: &FileId) -> io::Result<Option<Vec<Part>>> {
        let objects: Vec<_> = self
            .s3
            .list(Some(&self.partial_dir(id)))
            .try_collect()
            .await
            .map_err(io_err)?;
        if objects.is_empty() {
            return Ok(None);
        }
        let mut parts: Vec<Part> = objects
            .into_iter()
            .filter_map(|m| {
                let offset = m.location.filename()?.parse::<u64>().ok()?;
                Some(Part {
                    offset,
                    len: m.size,
                    location: m.location,
                })
            })
            .collect();
        parts.sort_by_key(|p| p.offset);
        Ok(Some(parts))
    }

    /// The parts that chain from offset 0, each starting where the one
    /// before ended. (Anything else, left by a write that failed half
    /// way, is not part of the upload and is cut off by the next sync.)
    fn chain(parts: &[Part]) -> impl Iterator<Item = &Part> {
        let mut end = 0u64;
        parts.iter().take_while(move |p| {
            let next = p.offset == end;
            end = p.offset.saturating_add(p.len);
            next
        })
    }

    fn chain_len(parts: &[Part]) -> u64 {
        Self::chain(parts).last().map_or(0, |p| p.offset + p.len)
    }

    /// An upload's bytes, part after part.
    fn read_chain(&self, parts: &[Part]) -> BoxStream<'static, io::Result<Bytes>> {
        let s3 = self.s3.clone();
        let locations: Vec<Path> = Self::chain(parts).map(|p| p.location.clone()).collect();
        futures_util::stream::iter(locations)
            .then(move |location| {
                let s3 = s3.clone();
                async move { s3.get(&location).await.map(|got| got.into_stream()) }
            })
            .try_flatten()
            .map_err(io_err)
            .boxed()
    }

    async fn remove_parts(&self, id: &FileId) -> io::Result<()> {
        let objects: Vec<Path> = self
            .s3
            .list(Some(&self.partial_dir(id)))
            .map_ok(|m| m.location)
            .try_collect()
            .await
            .map_err(io_err)?;
        for location in objects {
            missing_ok(self.s3.delete(&location).await)?;
        }
        Ok(())
    }

    /// Writes the upload's bytes into `blobs/SHA256`, checking on the way
    /// that they hash to it: a blob's name is a promise every later
    /// upload of that content relies on.
    async fn assemble(&self, parts: &[Part], sha256: &Sha256Hex) -> io::Result<()> {
        let to = self.blob(sha256);
        let len = Self::chain_len(parts);
        let mismatch = || {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("an upload's parts do not hash to {sha256}"),
            )
        };
        if len <= SMALL_BLOB {
            let mut h = Sha256::new();
            let mut all = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
            let mut bytes = self.read_chain(parts);
            while let Some(b) = bytes.try_next().await? {
                h.update(&b);
                all.extend_from_slice(&b);
            }
            if Sha256Hex::from_digest(&h.finalize().into()) != *sha256 {
                return Err(mismatch());
            }
            self.s3
                .put(&to, PutPayload::from(all))
                .await
                .map_err(io_err)?;
            return Ok(());
        }
        let upload = self.s3.put_multipart(&to).await.map_err(io_err)?;
        let mut w = WriteMultipart::new_with_chunk_size(upload, ASSEMBLE_CHUNK);
        let mut h = Sha256::new();
        let mut bytes = self.read_chain(parts);
        let copied: io::Result<()> = async {
            while let Some(b) = bytes.try_next().await? {
                w.wait_for_capacity(ASSEMBLE_CONCURRENCY)
                    .await
                    .map_err(io_err)?;
                h.update(&b);
                w.put(b);
            }
            Ok(())
        }
        .await;
        let checked = copied.and_then(|()| {
            if Sha256Hex::from_digest(&h.finalize().into()) == *sha256 {
                Ok(())
            } else {
                Err(mismatch())
            }
        });
        match checked {
            Ok(()) => w.finish().await.map(|_| ()).map_err(io_err),
            Err(e) => {
                if let Err(abort) = w.abort().await {
                    tracing::warn!(cause = %abort, "could not abort a blob's multipart upload");
                }
                Err(e)
            }
        }
    }

    /// A blob copied whole into an unlinked scratch file.
    async fn scratch_copy(&self, sha256: &Sha256Hex) -> io::Result<std::fs::File> {
        let mut name = [0u8; 12];
        getrandom::fill(&mut name).map_err(|e| io::Error::other(e.to_string()))?;
        let hex: String = name.iter().map(|b| format!("{b:02x}")).collect();
        let path = self.scratch.join(hex);
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)?;
        // Unlinked at once: the open file keeps its bytes until dropped,
        // and nothing is left behind by a crash or an error below.
        std::fs::remove_file(&path)?;
        let mut stream = self
            .s3
            .get(&self.blob(sha256))
            .await
            .map_err(io_err)?
            .into_stream();
        while let Some(chunk) = stream.next().await {
            file.write_all(&chunk.map_err(io_err)?)?;
        }
        file.seek(io::SeekFrom::Start(0))?;
        Ok(file)
    }
}

impl FileStore for S3FileStore {
    fn write_chunk(&self) -> usize {
        PART_BYTES
    }

    fn create_partial(&self, id: &FileId) -> FileFuture<'_, ()> {
        let marker = self.marker(id);
        Box::pin(async move {
            self.s3
                .put(&marker, PutPayload::new())
                .await
                .map(|_| ())
                .map_err(io_err)
        })
    }

    fn partial_len(&self, id: &FileId) -> FileFuture<'_, Option<u64>> {
        let id = id.clone();
        Box::pin(async move {
            Ok(self
                .listing(&id)
                .await?
                .map(|parts| Self::chain_len(&parts)))
        })
    }

    fn write_at(&self, id: &FileId, offset: u64, data: Vec<u8>) -> FileFuture<'_, ()> {
        let part = self.part(id, offset);
        Box::pin(async move {
            self.s3
                .put(&part, PutPayload::from(data))
                .await
                .map(|_| ())
                .map_err(io_err)
        })
    }

    fn sync_partial(&self, id: &FileId, len: Option<u64>) -> FileFuture<'_, ()> {
        let id = id.clone();
        Box::pin(async move {
            // A part is durable once its PUT is answered: only a cut back
            // has work to do.
            let Some(len) = len else { return Ok(()) };
            let Some(parts) = self.listing(&id).await? else {
                return Err(io::Error::new(
                    io::ErrorKind::NotFound,
                    "the upload has no partial",
                ));
            };
            for p in parts.iter().rev() {
                if p.offset >= len {
                    missing_ok(self.s3.delete(&p.location).await)?;
                } else if p.offset + p.len > len {
                    let keep = self
                        .s3
                        .get_range(&p.location, 0..len - p.offset)
                        .await
                        .map_err(io_err)?;
                    self.s3
                        .put(&p.location, PutPayload::from(keep))
                        .await
                        .map_err(io_err)?;
                }
            }
            Ok(())
        })
    }

    fn hash_partial(&self, id: &FileId) -> FileFuture<'_, Sha256Hex> {
        let id = id.clone();
        Box::pin(async move {
            let parts = self.listing(&id).await?.unwrap_or_default();
            let mut h = Sha256::new();
            let mut bytes = self.read_chain(&parts);
            while let Some(b) = bytes.try_next().await? {
                h.update(&b);
            }
            Ok(Sha256Hex::from_digest(&h.finalize().into()))
        })
    }

    fn promote(&self, id: &FileId, sha256: &Sha256Hex) -> FileFuture<'_, ()> {
        let (id, sha256) = (id.clone(), sha256.clone());
        Box::pin(async move {
            if !self.has_blob(&sha256).await? {
                let Some(parts) = self.listing(&id).await? else {
                    return Err(io::Error::new(
                        io::ErrorKind::NotFound,
                        "the upload has no partial",
                    ));
                };
                self.assemble(&parts, &sha256).await?;
            }
            self.remove_parts(&id).await
        })
    }

    fn remove_partial(&self, id: &FileId) -> FileFuture<'_, ()> {
        let id = id.clone();
        Box::pin(async move { self.remove_parts(&id).await })
    }

    fn remove_blob(&self, sha256: &Sha256Hex) -> FileFuture<'_, ()> {
        let (blob, thumb) = (self.blob(sha256), self.thumb(sha256));
        Box::pin(async move {
            missing_ok(self.s3.delete(&blob).await)?;
            missing_ok(self.s3.delete(&thumb).await)
        })
    }

    fn open_blob(&self, sha256: &Sha256Hex, start: u64, len: u64) -> FileFuture<'_, BlobReader> {
        let blob = self.blob(sha256);
        Box::pin(async move {
            if len == 0 {
                // A range of nothing is no valid `Range` header; check the
                // blob is there and read nothing.
                self.s3.head(&blob).await.map_err(io_err)?;
                return Ok(Box::new(tokio::io::empty()) as BlobReader);
            }
            let got = self
                .s3
                .get_opts(
                    &blob,
                    GetOptions {
                        range: Some(GetRange::Bounded(start..start + len)),
                        ..GetOptions::default()
                    },
                )
                .await
                .map_err(io_err)?;
            Ok(Box::new(StreamRead {
                stream: Mutex::new(got.into_stream()),
                chunk: Bytes::new(),
            }) as BlobReader)
        })
    }

    fn open_blob_blocking(&self, sha256: &Sha256Hex) -> io::Result<SyncBlob> {
        // Called on a blocking thread of the runtime: wait for the copy
        // there (the decoders want to seek, which an object stream cannot).
        let handle = tokio::runtime::Handle::try_current().map_err(io::Error::other)?;
        let file = handle.block_on(self.scratch_copy(sha256))?;
        Ok(Box::new(file))
    }

    fn has_blob(&self, sha256: &Sha256Hex) -> FileFuture<'_, bool> {
        let blob = self.blob(sha256);
        Box::pin(async move {
            match self.s3.head(&blob).await {
                Ok(_) => Ok(true),
                Err(object_store::Error::NotFound { .. }) => Ok(false),
                Err(e) => Err(io_err(e)),
            }
        })
    }

    fn read_thumb(&self, sha256: &Sha256Hex) -> FileFuture<'_, Option<Vec<u8>>> {
        let thumb = self.thumb(sha256);
        Box::pin(async move {
            match self.s3.get(&thumb).await {
                Ok(got) => Ok(Some(got.bytes().await.map_err(io_err)?.to_vec())),
                Err(object_store::Error::NotFound { .. }) => Ok(None),
                Err(e) => Err(io_err(e)),
            }
        })
    }

    fn put_thumb(&self, sha256: &Sha256Hex, thumb: Vec<u8>) -> FileFuture<'_, ()> {
        let to = self.thumb(sha256);
        Box::pin(async move {
            // A PUT replaces the object whole: no reader sees half of one.
            self.s3
                .put(&to, PutPayload::from(thumb))
                .await
                .map(|_| ())
                .map_err(io_err)
        })
    }
}

/// An object's byte stream as an `AsyncRead`. The stream sits in a Mutex
/// only to be `Sync` (a response body must be); it is reached through
/// `get_mut`, never locked.
struct StreamRead {
    stream: Mutex<BoxStream<'static, object_store::Result<Bytes>>>,
    chunk: Bytes,
}

impl AsyncRead for StreamRead {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        while this.chunk.is_empty() {
            let stream = this
                .stream
                .get_mut()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            match stream.poll_next_unpin(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(None) => return Poll::Ready(Ok(())),
                Poll::Ready(Some(Err(e))) => return Poll::Ready(Err(io_err(e))),
                Poll::Ready(Some(Ok(b))) => this.chunk = b,
            }
        }
        let n = this.chunk.len().min(buf.remaining());
        buf.put_slice(&this.chunk.split_to(n));
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::parse_url;

    #[test]
    fn urls_name_a_bucket_and_a_prefix() {
        let ok = |u: &str, b: &str, p: &str| {
            assert_eq!(parse_url(u), Some((b.to_owned(), p.to_owned())), "{u}");
        };
        ok("s3://chatus", "chatus", "");
        ok("s3://chatus/", "chatus", "");
        ok("s3://chatus-files/eu/prod", "chatus-files", "eu/prod");
        for bad in [
            "chatus",
            "s3://",
            "s3://ab",
            "s3://a b",
            "s3://bucket/../x",
            "s3://bucket/a//b",
            "https://bucket",
        ] {
            assert_eq!(parse_url(bad), None, "{bad}");
        }
    }
}
