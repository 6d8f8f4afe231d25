//! Open-time checks: a damaged database is refused with a message naming
//! the file and what to do, never rebuilt or opened half-way; and a new
//! database is created complete, so that a half-created one is never
//! mistaken for a damaged one.
//!
//! Before SQLite sees the file ([`check_file`]):
//! - missing: fine (a new server), unless its write-ahead log is there
//!   with content, which means the database file itself was lost;
//! - empty, shorter than SQLite's 100-byte header, or without SQLite's
//!   magic bytes: refused (a new database is never empty, see
//!   [`create`]);
//! - a page size in the header that SQLite cannot have, or a length that
//!   is not a whole number of pages: refused (truncated);
//! - fewer pages than the header counts while the log is empty (after a
//!   clean shutdown, or before any write): refused (truncated at a page
//!   boundary). With a log that holds frames, a checkpoint may have been
//!   cut short by a crash, which SQLite repairs from the log, so this rule
//!   would be wrong then and is not applied.
//!
//! Once SQLite has it open ([`quick_check`]): `PRAGMA quick_check`, which
//! reads every page and checks every b-tree's structure (not that indexes
//! match their tables; that is `integrity_check`, several times slower).

use std::fs::File;
use std::io::Read as _;
use std::path::{Path, PathBuf};

use rusqlite::Connection;

use crate::store::StoreError;

/// The first 16 bytes of every SQLite database.
const MAGIC: &[u8; 16] = b"SQLite format 3\0";
/// Length of SQLite's database header.
const HEADER: usize = 100;

/// A damaged database, with the sentence saying how.
fn damaged(path: &Path, problem: impl Into<String>) -> StoreError {
    StoreError::Damaged {
        path: path.to_owned(),
        problem: problem.into(),
    }
}

/// The write-ahead log beside a database file.
pub(crate) fn wal_path(db: &Path) -> PathBuf {
    let mut p = db.as_os_str().to_owned();
    p.push("-wal");
    PathBuf::from(p)
}

/// Checks the database file before SQLite opens it. Returns whether it
/// exists.
pub(crate) fn check_file(path: &Path) -> Result<bool, StoreError> {
    let wal_len = std::fs::metadata(wal_path(path)).map_or(0, |m| m.len());
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if wal_len > 0 {
                return Err(damaged(
                    path,
                    format!(
                        "the file is missing, but its write-ahead log ({}) holds {wal_len} bytes: \
                         the database file was lost",
                        wal_path(path).display()
                    ),
                ));
            }
            return Ok(false);
        }
        Err(e) => return Err(StoreError::Io(e)),
    };
    if !meta.is_file() {
        return Err(damaged(path, "it is not a regular file"));
    }
    let len = meta.len();
    if len == 0 {
        return Err(damaged(
            path,
            "the file is empty (0 bytes), which a ChatUs database never is: it was truncated",
        ));
    }
    let mut head = [0u8; HEADER];
    let got = read_up_to(path, &mut head)?;
    if got < HEADER {
        return Err(damaged(
            path,
            format!("the file is {len} bytes long, shorter than any SQLite database"),
        ));
    }
    if &head[..16] != MAGIC {
        return Err(damaged(
            path,
            "the file is not a SQLite database (it does not start with SQLite's header)",
        ));
    }
    let page = match u16::from_be_bytes([head[16], head[17]]) {
        1 => 65536,
        n => u64::from(n),
    };
    if !page.is_power_of_two() || !(512..=65536).contains(&page) {
        return Err(damaged(
            path,
            format!("its header gives an impossible page size ({page})"),
        ));
    }
    if len % page != 0 {
        return Err(damaged(
            path,
            format!(
                "the file is {len} bytes long, not a whole number of {page}-byte pages: \
                 it was truncated"
            ),
        ));
    }
    let be32 = |at: usize| u32::from_be_bytes([head[at], head[at + 1], head[at + 2], head[at + 3]]);
    // SQLite trusts the header's page count only when the change counter
    // and the version-valid-for number agree.
    let counted = u64::from(be32(28));
    let valid = counted > 0 && be32(24) == be32(92);
    if valid && wal_len == 0 && counted > len / page {
        return Err(damaged(
            path,
            format!(
                "the file holds {} pages but its header counts {counted}: it was truncated",
                len / page
            ),
        ));
    }
    Ok(true)
}

/// Reads as much of the file's start as fits in `buf`; returns how much.
fn read_up_to(path: &Path, buf: &mut [u8]) -> Result<usize, StoreError> {
    let mut f = File::open(path)?;
    let mut got = 0;
    while got < buf.len() {
        match f.read(&mut buf[got..])? {
            0 => break,
            n => got += n,
        }
    }
    Ok(got)
}

/// Runs `PRAGMA quick_check` on an open database.
pub(crate) fn quick_check(conn: &Connection, path: &Path) -> Result<(), StoreError> {
    let started = std::time::Instant::now();
    let mut problems: Vec<String> = Vec::new();
    let result = conn.prepare("PRAGMA quick_check(5)").and_then(|mut s| {
        s.query_map([], |r| r.get::<_, String>(0))?
            .collect::<Result<Vec<_>, _>>()
    });
    match result {
        Ok(rows) => problems.extend(rows.into_iter().filter(|r| r != "ok")),
        // SQLite may give up on a badly damaged file with an error instead
        // of a list.
        Err(e) => problems.push(e.to_string()),
    }
    if !problems.is_empty() {
        return Err(damaged(
            path,
            format!("SQLite's quick_check found: {}", problems.join("; ")),
        ));
    }
    // Said at start only when it took long enough to notice.
    let ms = started.elapsed().as_millis() as u64;
    if ms >= 1000 {
        tracing::info!(ms, "database passed its quick check");
    } else {
        tracing::debug!(ms, "database passed its quick check");
    }
    Ok(())
}

/// Creates a new database at `path`, complete with its schema: built
/// under a temporary name, flushed, then linked into place, so that
/// `path` exists only once it is whole. `init` sets the new database up.
pub(crate) fn create(
    path: &Path,
    init: impl FnOnce(&Path) -> Result<(), StoreError>,
) -> Result<(), StoreError> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(format!(".new-{}", std::process::id()));
    let tmp = PathBuf::from(tmp);
    remove_with_journals(&tmp);
    init(&tmp)?;
    File::open(&tmp)?.sync_all()?;
    // A hard link never replaces a database another process created
    // meanwhile; a file system without hard links gets a rename.
    match std::fs::hard_link(&tmp, path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(_) => std::fs::rename(&tmp, path)?,
    }
    remove_with_journals(&tmp);
    if let Some(dir) = path.parent() {
        // The new name must be durable before anything is stored under it.
        File::open(dir)?.sync_all()?;
    }
    Ok(())
}

/// Removes a database file and its journals, if present.
fn remove_with_journals(db: &Path) {
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let mut p = db.as_os_str().to_owned();
        p.push(suffix);
        let _ = std::fs::remove_file(PathBuf::from(p));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(bytes: &[u8]) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("chatus.db");
        std::fs::write(&p, bytes).unwrap();
        (dir, p)
    }

    fn problem(path: &Path) -> String {
        match check_file(path) {
            Err(StoreError::Damaged { problem, .. }) => problem,
            other => panic!("not refused: {other:?}"),
        }
    }

    #[test]
    fn a_missing_file_is_new_unless_its_log_is_left() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("chatus.db");
        assert!(!check_file(&p).unwrap());
        std::fs::write(wal_path(&p), b"frames").unwrap();
        assert!(problem(&p).contains("was lost"));
    }

    #[test]
    fn headers_that_cannot_be_are_refused() {
        let (_d, p) = file(b"");
        assert!(problem(&p).contains("empty"));
        let (_d, p) = file(b"SQLite format 3\0");
        assert!(problem(&p).contains("shorter"));
        let (_d, p) = file(&[b'x'; 4096]);
        assert!(problem(&p).contains("not a SQLite database"));
        let mut h = vec![0u8; 4096];
        h[..16].copy_from_slice(MAGIC);
        h[16..18].copy_from_slice(&1000u16.to_be_bytes());
        let (_d, p) = file(&h);
        assert!(problem(&p).contains("page size"));
        h[16..18].copy_from_slice(&4096u16.to_be_bytes());
        h.truncate(4000);
        let (_d, p) = file(&h);
        assert!(problem(&p).contains("whole number"));
    }

    #[test]
    fn a_page_count_beyond_the_file_is_refused_only_without_a_log() {
        let mut h = vec![0u8; 8192];
        h[..16].copy_from_slice(MAGIC);
        h[16..18].copy_from_slice(&4096u16.to_be_bytes());
        h[28..32].copy_from_slice(&3u32.to_be_bytes());
        let (_d, p) = file(&h);
        assert!(problem(&p).contains("header counts 3"));
        std::fs::write(wal_path(&p), b"frames").unwrap();
        assert!(check_file(&p).unwrap());
        // Two pages counted, two there: fine.
        h[28..32].copy_from_slice(&2u32.to_be_bytes());
        let (_d, p) = file(&h);
        assert!(check_file(&p).unwrap());
    }
}
