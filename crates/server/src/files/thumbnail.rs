//! Thumbnails: `GET`/`HEAD /files/{id}/thumbnail`.
//!
//! - Who may fetch one: whoever may download the file
//!   ([`super::download::visible`]); anyone else gets `404`.
//! - Only PNG, JPEG, GIF and WebP are thumbnailed, told by their first
//!   bytes ([`sniff`]), whatever media type the uploader declared; any
//!   other file is `404` ("no thumbnail").
//! - An end-to-end encrypted file (uploaded as
//!   `application/vnd.chatus.encrypted`) has none (`404`): its bytes are a
//!   ciphertext the server cannot read. Its sender's and receivers'
//!   clients know what it is; the server never does.
//! - Made lazily, on the first request, then kept beside the blob
//!   (`thumbs/AB/SHA256`, content-addressed like it): most files are never
//!   previewed (the CLI shows none), images uploaded before thumbnails
//!   existed get one too, and a failure here never touches an upload.
//! - Bounded: the image's declared width × height is read from its header
//!   and refused past `files.thumbnail_max_megapixels` before a pixel is
//!   decoded (`422`, naming the size and the limit), so a small file
//!   declaring a huge image costs nothing; the decoders also get the same
//!   limits, so a header that lies cannot allocate more. One thumbnail is
//!   made at a time, on a blocking thread, and requests for the same file
//!   wait for the one being made.
//! - The thumbnail fits within [`SIDE`]×[`SIDE`] (never enlarged): a PNG
//!   when the image has transparency, a JPEG otherwise. `ETag` names the
//!   file's SHA-256 and the thumbnail's recipe; `Cache-Control: private`.

use std::collections::HashMap;
use std::io::{self, Seek as _};
use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;
use chatus_protocol::{FileId, Sha256Hex};
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::{Method, Response, StatusCode};
use image::{DynamicImage, ImageFormat, ImageReader, Limits};

use super::{FileStore, Reply, full, internal, not_found, text};
use crate::state::State;

/// The longest side of a thumbnail, in pixels.
pub(crate) const SIDE: u32 = 320;

/// JPEG quality of opaque thumbnails.
const JPEG_QUALITY: u8 = 80;

/// Part of the `ETag`: changes when the recipe (size, formats) does.
const RECIPE: &str = "t320";

/// The thumbnailer's shared state: one maker at a time, and which files
/// are being made so that a second request waits for the first.
#[derive(Default)]
pub(crate) struct Thumbnails {
    /// One decode at a time: it may take `thumbnail_max_megapixels` × 4
    /// (or 8) bytes while it runs, and the machine's cores serve chat.
    maker: tokio::sync::Mutex<()>,
    /// Files whose thumbnail is being made, each with the lock its
    /// requests take; an entry no request holds is dropped by the last
    /// one, so this holds at most the files requested at this moment. A
    /// std Mutex: held only to look up.
    making: Mutex<HashMap<Sha256Hex, Arc<tokio::sync::Mutex<()>>>>,
}

/// Why a file has no thumbnail.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ThumbError {
    /// Not a PNG, JPEG, GIF or WebP image.
    #[error("The file is not a PNG, JPEG, GIF or WebP image, so it has no thumbnail.")]
    NotAnImage,
    /// Declared larger than the configured limit.
    #[error(
        "The image is {width}×{height} ({mp} megapixels), over the server's limit of {limit} \
         megapixels for thumbnails (files.thumbnail_max_megapixels)."
    )]
    TooLarge {
        /// Declared width.
        width: u32,
        /// Declared height.
        height: u32,
        /// Declared megapixels, rounded up.
        mp: u64,
        /// The limit, in megapixels.
        limit: u64,
    },
    /// The decoder refused it (damaged, or a variant it cannot read).
    #[error("The image cannot be decoded: {0}.")]
    Undecodable(String),
    /// Reading the stored file failed.
    #[error("The stored file could not be read: {0}.")]
    Io(#[from] io::Error),
}

/// The image format a file's first bytes announce, if it is one that is
/// thumbnailed.
pub(crate) fn sniff(head: &[u8]) -> Option<ImageFormat> {
    if head.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some(ImageFormat::Png)
    } else if head.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some(ImageFormat::Jpeg)
    } else if head.starts_with(b"GIF87a") || head.starts_with(b"GIF89a") {
        Some(ImageFormat::Gif)
    } else if head.len() >= 12 && &head[..4] == b"RIFF" && &head[8..12] == b"WEBP" {
        Some(ImageFormat::WebP)
    } else {
        None
    }
}

/// Makes the thumbnail of an image read from `blob`: the encoded bytes.
/// Blocking: run it on a blocking thread.
pub(crate) fn render(
    blob: impl io::Read + io::Seek,
    max_megapixels: u64,
) -> Result<Vec<u8>, ThumbError> {
    let mut blob = io::BufReader::new(blob);
    let mut head = [0u8; 16];
    let n = read_up_to(&mut blob, &mut head)?;
    let format = sniff(&head[..n]).ok_or(ThumbError::NotAnImage)?;
    blob.seek(io::SeekFrom::Start(0))?;
    let undecodable = |e: image::ImageError| ThumbError::Undecodable(e.to_string());
    let (width, height) = ImageReader::with_format(&mut blob, format)
        .into_dimensions()
        .map_err(undecodable)?;
    let pixels = u64::from(width) * u64::from(height);
    let limit = max_megapixels.saturating_mul(1_000_000);
    if pixels > limit {
        return Err(ThumbError::TooLarge {
            width,
            height,
            mp: pixels.div_ceil(1_000_000),
            limit: max_megapixels,
        });
    }
    blob.seek(io::SeekFrom::Start(0))?;
    let mut reader = ImageReader::with_format(&mut blob, format);
    let mut limits = Limits::default();
    limits.max_image_width = Some(width);
    limits.max_image_height = Some(height);
    // 16-bit RGBA at the limit, plus the decoders' own buffers.
    limits.max_alloc = Some(limit.saturating_mul(8).saturating_add(64 << 20));
    reader.limits(limits);
    let img = reader.decode().map_err(undecodable)?;
    let small = if width > SIDE || height > SIDE {
        img.thumbnail(SIDE, SIDE)
    } else {
        img
    };
    encode(&small).map_err(undecodable)
}

/// PNG when the image has an alpha channel, JPEG otherwise.
fn encode(img: &DynamicImage) -> Result<Vec<u8>, image::ImageError> {
    let mut out = io::Cursor::new(Vec::new());
    if img.color().has_alpha() {
        img.to_rgba8().write_to(&mut out, ImageFormat::Png)?;
    } else {
        let rgb = img.to_rgb8();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, JPEG_QUALITY)
            .encode_image(&rgb)?;
    }
    Ok(out.into_inner())
}

fn read_up_to(r: &mut impl io::Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

/// The media type of stored thumbnail bytes (PNG or JPEG), `None` for
/// anything else (a thumbnail cut short by a crash: it is made again).
fn thumb_type(b: &[u8]) -> Option<&'static str> {
    match sniff(b) {
        Some(ImageFormat::Png) => Some("image/png"),
        Some(ImageFormat::Jpeg) => Some("image/jpeg"),
        _ => None,
    }
}

/// Answers `GET`/`HEAD /files/{id}/thumbnail` (`id` is `None` when
/// malformed).
pub(crate) async fn handle(
    state: &State,
    peer: std::net::IpAddr,
    method: &Method,
    headers: &HeaderMap,
    id: Option<FileId>,
) -> Reply {
    if let Some(refused) = super::download::get_or_head_only(method) {
        return refused;
    }
    let up = match super::download::visible(state, peer, headers, id).await {
        Ok(up) => up,
        Err(res) => return res,
    };
    let Some(sha) = up.sha256 else {
        return not_found();
    };
    if up.media_type.as_str() == chatus_protocol::MediaType::ENCRYPTED {
        return text(
            StatusCode::NOT_FOUND,
            "An end-to-end encrypted file has no thumbnail: the server cannot read it.\n",
        );
    }
    let thumb = match thumbnail(state, &sha).await {
        Ok(t) => t,
        Err(ThumbError::NotAnImage) => {
            return text(
                StatusCode::NOT_FOUND,
                format!("{}\n", ThumbError::NotAnImage),
            );
        }
        Err(e @ (ThumbError::TooLarge { .. } | ThumbError::Undecodable(_))) => {
            return text(StatusCode::UNPROCESSABLE_ENTITY, format!("{e}\n"));
        }
        Err(ThumbError::Io(e)) if e.kind() == io::ErrorKind::NotFound => {
            return internal("a stored file is missing", &e);
        }
        Err(ThumbError::Io(e)) => return internal("could not make a thumbnail", &e),
    };
    let (kind, bytes) = thumb;
    let etag = format!("\"{sha}-{RECIPE}\"");
    let fresh = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    let len = bytes.len();
    let mut res = if fresh {
        let mut res = Response::new(full(Bytes::new()));
        *res.status_mut() = StatusCode::NOT_MODIFIED;
        res
    } else {
        let body = if method == Method::GET {
            Bytes::from(bytes)
        } else {
            Bytes::new()
        };
        let mut res = Response::new(full(body));
        let h = res.headers_mut();
        h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
        h.insert(
            "x-content-type-options",
            HeaderValue::from_static("nosniff"),
        );
        res
    };
    let h = res.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&etag) {
        h.insert(header::ETAG, v);
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("private"));
    res
}

/// The thumbnail of the stored file `sha` (its media type and bytes),
/// made and kept when there is none yet.
async fn thumbnail(state: &State, sha: &Sha256Hex) -> Result<(&'static str, Vec<u8>), ThumbError> {
    let files = state.files();
    let store = files.store.clone();
    if let Some(t) = stored(&*store, sha).await? {
        return Ok(t);
    }
    let thumbs = &files.thumbs;
    let turn = thumbs
        .making
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .entry(sha.clone())
        .or_default()
        .clone();
    let made = {
        let _mine = turn.lock().await;
        make(state, &store, sha).await
    };
    // The last request for this file drops its entry.
    {
        let mut m = thumbs.making.lock().unwrap_or_else(PoisonError::into_inner);
        if Arc::strong_count(&turn) == 2 {
            m.remove(sha);
        }
    }
    made
}

/// The kept thumbnail, if there is a whole one.
async fn stored(
    store: &dyn FileStore,
    sha: &Sha256Hex,
) -> Result<Option<(&'static str, Vec<u8>)>, ThumbError> {
    Ok(store
        .read_thumb(sha)
        .await?
        .and_then(|b| thumb_type(&b).map(|k| (k, b))))
}

/// Makes and keeps the thumbnail (unless a request before this one just
/// did).
async fn make(
    state: &State,
    store: &Arc<dyn FileStore>,
    sha: &Sha256Hex,
) -> Result<(&'static str, Vec<u8>), ThumbError> {
    if let Some(t) = stored(&**store, sha).await? {
        return Ok(t);
    }
    let files = state.files();
    let max_mp = files.config.thumbnail_max_megapixels;
    let bytes = {
        let _maker = files.thumbs.maker.lock().await;
        let (store, sha) = (store.clone(), sha.clone());
        tokio::task::spawn_blocking(move || render(store.open_blob_blocking(&sha)?, max_mp))
            .await
            .map_err(|e| ThumbError::Io(io::Error::other(e.to_string())))??
    };
    let kind = thumb_type(&bytes)
        .ok_or_else(|| ThumbError::Io(io::Error::other("a thumbnail was encoded wrongly")))?;
    {
        // Under the content store's gate, so a blob being removed meanwhile
        // leaves no thumbnail behind.
        let _gate = files.blobs.lock().await;
        if store.has_blob(sha).await? {
            store.put_thumb(sha, bytes.clone()).await?;
        }
    }
    Ok((kind, bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_are_told_by_their_first_bytes() {
        assert_eq!(sniff(b"\x89PNG\r\n\x1a\n...."), Some(ImageFormat::Png));
        assert_eq!(sniff(&[0xFF, 0xD8, 0xFF, 0xE0]), Some(ImageFormat::Jpeg));
        assert_eq!(sniff(b"GIF89a.."), Some(ImageFormat::Gif));
        assert_eq!(sniff(b"RIFF\0\0\0\0WEBPVP8 "), Some(ImageFormat::WebP));
        assert_eq!(sniff(b"RIFF\0\0\0\0WAVEfmt "), None);
        assert_eq!(sniff(b"hello world"), None);
        assert_eq!(sniff(b""), None);
    }

    #[test]
    fn a_large_image_is_made_small_and_a_small_one_kept_as_it_is() {
        for (w, h, alpha) in [(1000, 500, false), (100, 80, true), (200, 900, true)] {
            let img = if alpha {
                DynamicImage::new_rgba8(w, h)
            } else {
                DynamicImage::new_rgb8(w, h)
            };
            let mut png = io::Cursor::new(Vec::new());
            img.write_to(&mut png, ImageFormat::Png).unwrap();
            png.set_position(0);
            let out = render(png, 40).unwrap();
            let got = image::load_from_memory(&out).unwrap();
            assert!(got.width() <= SIDE && got.height() <= SIDE);
            assert_eq!(
                thumb_type(&out),
                Some(if alpha { "image/png" } else { "image/jpeg" })
            );
            if w <= SIDE && h <= SIDE {
                assert_eq!((got.width(), got.height()), (w, h));
            } else {
                let big = w.max(h);
                assert_eq!(got.width().max(got.height()), SIDE, "{w}×{h}");
                // The aspect ratio is kept (to a pixel).
                let want = u64::from(w.min(h)) * u64::from(SIDE) / u64::from(big);
                let small = u64::from(got.width().min(got.height()));
                assert!(small.abs_diff(want) <= 1, "{w}×{h} became {got:?}");
            }
        }
    }

    #[test]
    fn gif_and_webp_are_thumbnailed_too() {
        let img = DynamicImage::ImageRgba8(image::ImageBuffer::from_fn(640, 100, |x, _| {
            image::Rgba([(x % 256) as u8, 0, 0, 255])
        }));
        for format in [ImageFormat::Gif, ImageFormat::WebP] {
            let mut enc = io::Cursor::new(Vec::new());
            img.write_to(&mut enc, format).unwrap();
            assert_eq!(sniff(enc.get_ref()), Some(format));
            enc.set_position(0);
            let out = render(enc, 40).unwrap();
            let got = image::load_from_memory(&out).unwrap();
            assert_eq!((got.width(), got.height()), (SIDE, 50), "{format:?}");
        }
    }

    #[test]
    fn other_files_are_not_images() {
        let r = render(io::Cursor::new(b"just text".to_vec()), 40);
        assert!(matches!(r, Err(ThumbError::NotAnImage)), "{r:?}");
        let r = render(io::Cursor::new(b"\x89PNG\r\n\x1a\ngarbage".to_vec()), 40);
        assert!(matches!(r, Err(ThumbError::Undecodable(_))), "{r:?}");
    }
}
