//! Files as the window shows them: uploads under way (with progress, a
//! connection wait, or why they failed) and downloads of shared files.
//!
//! Attaching (the attach button's dialog, or files dropped on the window)
//! sends each file to the open conversation; the network thread uploads it
//! and then sends the message that shares it, which arrives like any other
//! message. An upload leaves the list once shared; a failed one stays,
//! with the reason, until dismissed. Each shared file has at most one
//! download at a time.

use std::path::PathBuf;

use chatus_client::protocol::{Conversation, FileId, FileInfo};
use chatus_client::transfer::Progress;

use super::State;
use crate::net::{Action, TransferId, TransferUpdate, display_name};

/// A file being sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upload {
    /// Its number.
    pub id: TransferId,
    /// Where it goes.
    pub conv: Conversation,
    /// The file.
    pub path: PathBuf,
    /// Its name, as shown.
    pub name: String,
    /// Bytes sent of the total, once known.
    pub progress: Option<Progress>,
    /// Where it stands.
    pub phase: UploadPhase,
}

/// Where an upload stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UploadPhase {
    /// Not started yet (the file is being read).
    Preparing,
    /// Bytes are going out.
    Sending,
    /// The connection was lost; it goes on when the connection is back.
    Waiting(String),
    /// Uploaded; the message that shares it is on its way.
    Sharing,
    /// It failed, and why.
    Failed(String),
}

/// A shared file being saved, or saved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Download {
    /// Its number.
    pub id: TransferId,
    /// Bytes received of the total, once known.
    pub progress: Option<Progress>,
    /// Where it stands.
    pub phase: DownloadPhase,
}

/// Where a download stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DownloadPhase {
    /// The save dialog is open.
    Choosing,
    /// Bytes are coming in.
    Saving,
    /// Saved here, its SHA-256 checked.
    Saved(PathBuf),
    /// It failed, and why.
    Failed(String),
}

impl Download {
    /// True while the download is under way (the Save button waits).
    pub fn busy(&self) -> bool {
        matches!(self.phase, DownloadPhase::Choosing | DownloadPhase::Saving)
    }
}

impl State {
    fn next_transfer(&mut self) -> TransferId {
        self.next_transfer += 1;
        TransferId(self.next_transfer)
    }

    /// Sends `paths` to `conv`, one upload each.
    pub(super) fn attach(&mut self, conv: &Conversation, paths: Vec<PathBuf>) -> Vec<Action> {
        let mut actions = Vec::new();
        for path in paths {
            // One upload per file at a time: two would share its resume
            // state and trip over each other's offsets.
            if self
                .uploads
                .iter()
                .any(|u| u.path == path && !matches!(u.phase, UploadPhase::Failed(_)))
            {
                self.notice(
                    format!("{} is being sent already.", display_name(&path)),
                    true,
                );
                continue;
            }
            let id = self.next_transfer();
            self.uploads.push(Upload {
                id,
                conv: conv.clone(),
                name: display_name(&path),
                path: path.clone(),
                progress: None,
                phase: UploadPhase::Preparing,
            });
            actions.push(Action::Upload {
                id,
                conv: conv.clone(),
                path,
            });
        }
        actions
    }

    /// Stops an upload (or forgets a failed one).
    pub(super) fn cancel_upload(&mut self, id: TransferId) -> Vec<Action> {
        let Some(at) = self.uploads.iter().position(|u| u.id == id) else {
            return Vec::new();
        };
        let u = self.uploads.remove(at);
        if matches!(u.phase, UploadPhase::Failed(_)) {
            Vec::new()
        } else {
            vec![Action::CancelTransfer(id)]
        }
    }

    /// Saves a shared file (into the save folder, or where the dialog
    /// says), unless it is being saved already.
    pub(super) fn save(&mut self, file: FileInfo) -> Vec<Action> {
        if self.downloads.get(&file.id).is_some_and(Download::busy) {
            return Vec::new();
        }
        let id = self.next_transfer();
        let folder = self.save_folder.clone();
        self.downloads.insert(
            file.id.clone(),
            Download {
                id,
                progress: None,
                phase: if folder.is_some() {
                    DownloadPhase::Saving
                } else {
                    DownloadPhase::Choosing
                },
            },
        );
        vec![Action::Download { id, file, folder }]
    }

    /// The download of a shared file, if one was started.
    pub fn download_of(&self, file: &FileId) -> Option<&Download> {
        self.downloads.get(file)
    }

    /// Uploads to a conversation.
    pub fn uploads_to<'a>(&'a self, conv: &'a Conversation) -> impl Iterator<Item = &'a Upload> {
        self.uploads.iter().filter(move |u| &u.conv == conv)
    }

    /// An upload or download moved on.
    pub(super) fn on_transfer(&mut self, id: TransferId, change: TransferUpdate) {
        if let Some(at) = self.uploads.iter().position(|u| u.id == id) {
            let u = &mut self.uploads[at];
            match change {
                TransferUpdate::Progress(p) => {
                    u.progress = Some(p);
                    u.phase = UploadPhase::Sending;
                }
                TransferUpdate::Waiting(why) => u.phase = UploadPhase::Waiting(why),
                TransferUpdate::Sharing => u.phase = UploadPhase::Sharing,
                TransferUpdate::Finished(_) | TransferUpdate::NotChosen => {
                    // The message that shares it is in the feed now.
                    self.uploads.remove(at);
                }
                TransferUpdate::Failed(why) => u.phase = UploadPhase::Failed(why),
            }
            return;
        }
        let Some((file, d)) = self.downloads.iter_mut().find(|(_, d)| d.id == id) else {
            // Cancelled meanwhile.
            return;
        };
        match change {
            TransferUpdate::Progress(p) => {
                d.progress = Some(p);
                d.phase = DownloadPhase::Saving;
            }
            TransferUpdate::Waiting(_) | TransferUpdate::Sharing => {}
            TransferUpdate::Finished(path) => {
                d.phase = DownloadPhase::Saved(path.unwrap_or_default());
            }
            TransferUpdate::Failed(why) => d.phase = DownloadPhase::Failed(why),
            TransferUpdate::NotChosen => {
                let file = file.clone();
                self.downloads.remove(&file);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use chatus_client::protocol::{FileName, MediaType, RoomName, Sha256Hex};

    use super::*;
    use crate::net::{Session, Update};
    use crate::state::Intent;

    fn file() -> FileInfo {
        FileInfo {
            id: FileId::parse("0123456789abcdef0123456789abcdef").unwrap(),
            name: FileName::sanitize("a.png"),
            size: 2048,
            media_type: MediaType::or_octet_stream("image/png"),
            sha256: Sha256Hex::parse("ab".repeat(32)).unwrap(),
        }
    }

    fn progress(done: u64, total: u64) -> TransferUpdate {
        TransferUpdate::Progress(Progress { done, total })
    }

    #[test]
    fn an_upload_goes_from_attached_to_shared() {
        let mut s = State::default();
        let a = s.intent(Intent::Attach(vec![
            PathBuf::from("/tmp/a.png"),
            PathBuf::from("/tmp/b.txt"),
        ]));
        let [
            Action::Upload { id, conv, path },
            Action::Upload { id: id2, .. },
        ] = &a[..]
        else {
            panic!("{a:?}")
        };
        assert_eq!(*conv, Conversation::Room(RoomName::lobby()));
        assert_eq!(path, &PathBuf::from("/tmp/a.png"));
        assert_ne!(id, id2);
        // The same file again while it is being sent: refused, said.
        assert!(
            s.intent(Intent::Attach(vec![PathBuf::from("/tmp/a.png")]))
                .is_empty()
        );
        assert!(
            s.notice
                .as_ref()
                .unwrap()
                .text
                .contains("a.png is being sent already")
        );
        assert_eq!(s.uploads.len(), 2);
        let id = *id;
        assert_eq!(s.uploads[0].name, "a.png");
        assert_eq!(s.uploads[0].phase, UploadPhase::Preparing);
        s.on_transfer(id, progress(0, 10));
        s.on_transfer(id, progress(4, 10));
        assert_eq!(s.uploads[0].phase, UploadPhase::Sending);
        assert_eq!(s.uploads[0].progress, Some(Progress { done: 4, total: 10 }));
        s.on_transfer(id, TransferUpdate::Waiting("cut".into()));
        assert_eq!(s.uploads[0].phase, UploadPhase::Waiting("cut".into()));
        // Going on after the reconnect.
        s.on_transfer(id, progress(8, 10));
        assert_eq!(s.uploads[0].phase, UploadPhase::Sending);
        s.on_transfer(id, TransferUpdate::Sharing);
        s.on_transfer(id, TransferUpdate::Finished(None));
        assert_eq!(s.uploads.len(), 1, "the other upload stays");
        // Updates from a replaced client are ignored.
        let old = s.receive(
            Session(s.session().0 + 7),
            Update::Transfer {
                id: *id2,
                change: TransferUpdate::Failed("late".into()),
            },
        );
        assert!(old.is_empty());
        assert_eq!(s.uploads[0].phase, UploadPhase::Preparing);
    }

    #[test]
    fn cancel_stops_a_running_upload_and_dismiss_forgets_a_failed_one() {
        let mut s = State::default();
        s.intent(Intent::Attach(vec![
            PathBuf::from("/tmp/a"),
            PathBuf::from("/tmp/b"),
        ]));
        let (a, b) = (s.uploads[0].id, s.uploads[1].id);
        assert!(matches!(
            &s.intent(Intent::CancelUpload(a))[..],
            [Action::CancelTransfer(x)] if *x == a
        ));
        s.on_transfer(
            b,
            TransferUpdate::Failed("The file is 4 KiB, over the limit".into()),
        );
        assert!(s.intent(Intent::CancelUpload(b)).is_empty());
        assert!(s.uploads.is_empty());
        // A late word from the cancelled one changes nothing.
        s.on_transfer(a, progress(1, 2));
        assert!(s.uploads.is_empty() && s.downloads.is_empty());
    }

    #[test]
    fn picked_files_go_where_the_dialog_was_opened_for() {
        let mut s = State::default();
        let bob = Conversation::Peer(chatus_client::protocol::Username::parse("bob").unwrap());
        s.selected = bob.clone();
        assert!(matches!(
            &s.intent(Intent::PickFiles)[..],
            [Action::PickFiles(c)] if *c == bob
        ));
        // The person moved on to another conversation meanwhile.
        s.selected = Conversation::Room(RoomName::lobby());
        let a = s.apply(Update::Picked {
            conv: bob.clone(),
            paths: vec![PathBuf::from("/tmp/x")],
        });
        assert!(matches!(&a[..], [Action::Upload { conv, .. }] if *conv == bob));
        // A closed dialog sends nothing.
        assert!(
            s.apply(Update::Picked {
                conv: bob,
                paths: vec![]
            })
            .is_empty()
        );
    }

    #[test]
    fn save_asks_once_and_remembers_the_outcome() {
        let mut s = State::default();
        let f = file();
        let a = s.intent(Intent::Save(f.clone()));
        let [
            Action::Download {
                id, folder: None, ..
            },
        ] = &a[..]
        else {
            panic!("{a:?}")
        };
        let id = *id;
        assert_eq!(s.download_of(&f.id).unwrap().phase, DownloadPhase::Choosing);
        assert!(
            s.intent(Intent::Save(f.clone())).is_empty(),
            "one at a time"
        );
        // The dialog was closed: as if Save was never pressed.
        s.on_transfer(id, TransferUpdate::NotChosen);
        assert!(s.download_of(&f.id).is_none());

        s.save_folder = Some(PathBuf::from("/tmp/saves"));
        let a = s.intent(Intent::Save(f.clone()));
        let [
            Action::Download {
                id,
                folder: Some(_),
                ..
            },
        ] = &a[..]
        else {
            panic!("{a:?}")
        };
        let id = *id;
        s.on_transfer(id, progress(1024, 2048));
        assert_eq!(s.download_of(&f.id).unwrap().phase, DownloadPhase::Saving);
        s.on_transfer(
            id,
            TransferUpdate::Finished(Some("/tmp/saves/a.png".into())),
        );
        assert_eq!(
            s.download_of(&f.id).unwrap().phase,
            DownloadPhase::Saved("/tmp/saves/a.png".into())
        );
        // Saved, it can be saved again (elsewhere), and stopped.
        let a = s.intent(Intent::Save(f.clone()));
        let [Action::Download { id, .. }] = &a[..] else {
            panic!("{a:?}")
        };
        let id = *id;
        assert!(matches!(
            &s.intent(Intent::CancelSave(f.id.clone()))[..],
            [Action::CancelTransfer(x)] if *x == id
        ));
        assert!(s.download_of(&f.id).is_none());
        s.on_transfer(id, progress(2048, 2048));
        assert!(s.download_of(&f.id).is_none(), "a late word is ignored");
    }
}
