//! Inline previews of shared images: the server's thumbnails, asked for
//! when an image's card is first drawn, kept decoded in memory for at
//! most [`MAX_PREVIEWS`] files (the oldest asked for goes first), and
//! opening an image full size (saved into the cache folder, then shown by
//! the system's image viewer).

use std::collections::{BTreeMap, VecDeque};
use std::path::PathBuf;
use std::sync::Arc;

use chatus_client::protocol::{FileId, FileInfo};

use super::State;
use crate::net::Action;

/// Most previews kept (each at most 320×320 RGBA: 400 KiB).
pub const MAX_PREVIEWS: usize = 100;

/// A decoded thumbnail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Preview {
    /// Width in pixels.
    pub width: usize,
    /// Height in pixels.
    pub height: usize,
    /// RGBA, row by row (shared, so drawing never copies it).
    pub rgba: Arc<Vec<u8>>,
}

/// A file's preview, as far as it got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PreviewState {
    /// Asked for.
    Loading,
    /// Here it is.
    Ready(Preview),
    /// The file has none (not an image the server can thumbnail), or it
    /// could not be fetched: the card shows without one.
    Unavailable,
}

/// The previews kept, and the order they were asked for in.
#[derive(Debug, Clone, Default)]
pub struct Previews {
    map: BTreeMap<FileId, PreviewState>,
    order: VecDeque<FileId>,
}

impl Previews {
    /// A file's preview, if it was asked for.
    pub fn get(&self, id: &FileId) -> Option<&PreviewState> {
        self.map.get(id)
    }

    /// How many are kept.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// True when none is kept.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    fn start(&mut self, id: &FileId) {
        while self.map.len() >= MAX_PREVIEWS {
            let Some(old) = self.order.pop_front() else {
                break;
            };
            self.map.remove(&old);
        }
        self.map.insert(id.clone(), PreviewState::Loading);
        self.order.push_back(id.clone());
    }
}

/// Whether a shared file is an image the server makes thumbnails of, by
/// its declared type (the server looks at the bytes and answers "none"
/// for anything else).
pub fn is_image(file: &FileInfo) -> bool {
    matches!(
        file.media_type.as_str(),
        "image/png" | "image/jpeg" | "image/gif" | "image/webp"
    )
}

impl State {
    /// The card of `file` is shown: ask for its preview once.
    pub(super) fn want_preview(&mut self, file: &FileInfo) -> Vec<Action> {
        if !is_image(file) || self.previews.map.contains_key(&file.id) {
            return Vec::new();
        }
        self.previews.start(&file.id);
        vec![Action::Thumbnail(file.id.clone(), self.image_cache.clone())]
    }

    /// A preview arrived (or the file has none).
    pub(super) fn on_preview(&mut self, id: &FileId, preview: Option<Preview>) {
        // Only for files still kept (not pushed out meanwhile).
        if let Some(s) = self.previews.map.get_mut(id) {
            *s = preview.map_or(PreviewState::Unavailable, PreviewState::Ready);
        }
    }

    /// Open an image full size: fetched into the cache folder first.
    pub(super) fn open_full(&mut self, file: FileInfo) -> Vec<Action> {
        self.notice(format!("Opening {}…", file.name), false);
        vec![Action::OpenFull {
            file,
            cache: self.image_cache.clone(),
        }]
    }

    /// The full-size image is in the cache folder: the window opens it.
    pub(super) fn on_fetched_full(&mut self, result: Result<PathBuf, String>) {
        match result {
            Ok(path) => {
                self.notice = None;
                self.to_open = Some(path);
            }
            Err(why) => self.notice(format!("Could not open the image: {why}"), true),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chatus_client::protocol::{FileName, MediaType, Sha256Hex};

    fn file(n: u8, media: &str) -> FileInfo {
        FileInfo {
            id: FileId::from_bytes([n; 16]),
            name: FileName::sanitize("p.png"),
            size: 10,
            media_type: MediaType::parse(media).unwrap(),
            sha256: Sha256Hex::from_digest(&[n; 32]),
        }
    }

    #[test]
    fn previews_are_asked_for_once_and_kept_within_a_bound() {
        let mut s = State::default();
        let f = file(1, "image/png");
        assert!(matches!(&s.want_preview(&f)[..], [Action::Thumbnail(id, None)] if *id == f.id));
        assert!(s.want_preview(&f).is_empty(), "once");
        assert!(s.want_preview(&file(2, "text/plain")).is_empty());
        let p = Preview {
            width: 1,
            height: 1,
            rgba: Arc::new(vec![0; 4]),
        };
        s.on_preview(&f.id, Some(p.clone()));
        assert_eq!(s.previews.get(&f.id), Some(&PreviewState::Ready(p)));
        for n in 10..(10 + MAX_PREVIEWS as u8) {
            s.want_preview(&file(n, "image/jpeg"));
        }
        assert_eq!(s.previews.len(), MAX_PREVIEWS);
        assert_eq!(s.previews.get(&f.id), None, "the oldest went first");
        // An answer for a file pushed out is dropped.
        s.on_preview(&f.id, None);
        assert_eq!(s.previews.get(&f.id), None);
    }
}
