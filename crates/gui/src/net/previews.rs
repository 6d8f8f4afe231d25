//! Image previews on the network thread: a shared image's thumbnail
//! fetched with the session token and decoded here (never on the UI
//! thread), and an image fetched whole into the cache folder to be opened
//! full size by the system's viewer.

use std::path::PathBuf;
use std::sync::Arc;

use chatus_client::protocol::{FileId, FileInfo};
use chatus_client::thumbnail::thumbnail;
use chatus_client::transfer::{self, Endpoint};
use tokio::sync::watch;

use super::transfers::{Link, describe};
use super::{Out, Update};
use crate::state::Preview;

/// Largest preview decoded, per side: the server's are at most 320.
const MAX_SIDE: u32 = 1024;

/// The largest encrypted image fetched whole for its preview.
const MAX_ENCRYPTED_PREVIEW: u64 = 16 * 1024 * 1024;

/// The largest image decoded for a preview, per side (a decompression bomb
/// is refused by its header, before any pixel is allocated).
const MAX_DECODED_SIDE: u32 = 8192;

/// The box a preview fits, as the server's thumbnails do.
const PREVIEW_SIDE: u32 = 320;

/// The connection's endpoint, waiting for one.
async fn endpoint(mut link: watch::Receiver<Link>) -> Option<Endpoint> {
    let l = link.wait_for(|l| l.endpoint.is_some()).await.ok()?;
    l.endpoint.clone()
}

/// Fetches and decodes file `id`'s thumbnail, and reports it. An
/// end-to-end encrypted image has none on the server (it holds only
/// ciphertext): one this device opened and no larger than
/// [`MAX_ENCRYPTED_PREVIEW`] is fetched whole into the cache folder (where
/// opening it full size finds it), checked and decrypted there, and
/// scaled down here, as Element does for an image sent without a
/// thumbnail.
pub(super) fn spawn_thumbnail(
    client: &chatus_client::Client,
    link: &watch::Sender<Link>,
    out: &Out,
    id: FileId,
    cache: Option<PathBuf>,
) {
    let out = out.clone();
    let link = link.subscribe();
    let encrypted = client.encrypted_file(&id);
    tokio::spawn(async move {
        if let Some(f) = encrypted {
            let preview = if f.size <= MAX_ENCRYPTED_PREVIEW {
                let info = f.info();
                match fetch_full(link, &info, Some(f), cache).await {
                    Ok(path) => tokio::task::spawn_blocking(move || scale_down(&path))
                        .await
                        .ok()
                        .flatten(),
                    Err(e) => {
                        tracing::debug!(cause = %e, %id, "no preview of an encrypted image");
                        None
                    }
                }
            } else {
                None
            };
            out.send(Update::Thumbnail { id, preview });
            return;
        }
        let preview = match endpoint(link).await {
            Some(to) => match thumbnail(&to, &id).await {
                Ok(Some(t)) => tokio::task::spawn_blocking(move || decode(&t.bytes))
                    .await
                    .ok()
                    .flatten(),
                Ok(None) => None,
                Err(e) => {
                    tracing::debug!(cause = %e, %id, "no preview");
                    None
                }
            },
            None => None,
        };
        out.send(Update::Thumbnail { id, preview });
    });
}

/// A thumbnail decoded to RGBA, `None` when it is not an image this
/// decodes or is larger than a thumbnail can be.
pub fn decode(bytes: &[u8]) -> Option<Preview> {
    let mut reader = image::ImageReader::new(std::io::Cursor::new(bytes))
        .with_guessed_format()
        .ok()?;
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    reader.limits(limits);
    let img = reader.decode().ok()?.to_rgba8();
    Some(Preview {
        width: img.width() as usize,
        height: img.height() as usize,
        rgba: Arc::new(img.into_raw()),
    })
}

/// An image file decoded and scaled to fit [`PREVIEW_SIDE`] (as the
/// server's thumbnails are), `None` when it is not an image this decodes
/// or it is larger than [`MAX_DECODED_SIDE`] a side.
fn scale_down(path: &std::path::Path) -> Option<Preview> {
    let mut reader = image::ImageReader::open(path)
        .ok()?
        .with_guessed_format()
        .ok()?;
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(MAX_DECODED_SIDE);
    limits.max_image_height = Some(MAX_DECODED_SIDE);
    reader.limits(limits);
    let img = reader
        .decode()
        .ok()?
        .thumbnail(PREVIEW_SIDE, PREVIEW_SIDE)
        .to_rgba8();
    Some(Preview {
        width: img.width() as usize,
        height: img.height() as usize,
        rgba: Arc::new(img.into_raw()),
    })
}

/// Where an image is kept to be opened: in `cache` (else the user's
/// cache folder), by its SHA-256 (so opening it again fetches nothing),
/// under its own name.
fn cache_path(file: &FileInfo, cache: Option<PathBuf>) -> Option<PathBuf> {
    let root = match cache {
        Some(c) => c,
        None => dirs::cache_dir()?.join("chatus").join("images"),
    };
    Some(root.join(file.sha256.as_str()).join(file.name.as_str()))
}

/// Fetches a shared image whole into the cache folder (resumable and
/// checked by SHA-256, like a Save), and reports where it is.
pub(super) fn spawn_fetch_full(
    client: &chatus_client::Client,
    link: watch::Receiver<Link>,
    out: &Out,
    file: FileInfo,
    cache: Option<PathBuf>,
) {
    let out = out.clone();
    // An end-to-end encrypted image opens through its key (checked, then
    // decrypted into the cache folder, which is this device's own).
    let encrypted = client.encrypted_file(&file.id);
    tokio::spawn(async move {
        let result = fetch_full(link, &file, encrypted, cache).await;
        out.send(Update::FetchedFull(result));
    });
}

async fn fetch_full(
    link: watch::Receiver<Link>,
    file: &FileInfo,
    encrypted: Option<chatus_client::EncryptedFile>,
    cache: Option<PathBuf>,
) -> Result<PathBuf, String> {
    let dest = cache_path(file, cache).ok_or("There is no cache folder to keep it in.")?;
    if tokio::fs::metadata(&dest)
        .await
        .is_ok_and(|m| m.len() == file.size)
    {
        return Ok(dest);
    }
    if let Some(dir) = dest.parent() {
        tokio::fs::create_dir_all(dir)
            .await
            .map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    let to = endpoint(link).await.ok_or("The client stopped.")?;
    // Replacing is safe: the folder is ours and named by the content.
    match encrypted {
        Some(f) => transfer::download_encrypted(&to, &f, Some(&dest), true, &mut |_| {}).await,
        None => transfer::download(&to, &file.id, Some(&dest), true, &mut |_| {}).await,
    }
    .map(|got| got.path)
    .map_err(|e| describe(&e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thumbnails_are_decoded_and_other_bytes_are_not() {
        let img = image::RgbImage::from_pixel(3, 2, image::Rgb([10, 20, 30]));
        let mut png = std::io::Cursor::new(Vec::new());
        img.write_to(&mut png, image::ImageFormat::Png).unwrap();
        let p = decode(png.get_ref()).unwrap();
        assert_eq!((p.width, p.height, p.rgba.len()), (3, 2, 24));
        assert_eq!(&p.rgba[..4], &[10, 20, 30, 255]);
        assert_eq!(decode(b"not an image"), None);
        let big = image::RgbImage::new(MAX_SIDE + 1, 1);
        let mut png = std::io::Cursor::new(Vec::new());
        big.write_to(&mut png, image::ImageFormat::Png).unwrap();
        assert_eq!(decode(png.get_ref()), None, "larger than a thumbnail");
    }
}
