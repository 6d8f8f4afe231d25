//! The process's open-file limit, and the connection cap it allows.
//!
//! Every connection is a file descriptor, and so are the database files,
//! the listener, the logs and a refusal in progress. A server whose
//! `max_connections` is at (or past) the limit runs out of descriptors
//! before it reaches its own cap: `accept` fails (EMFILE), and worse, so
//! may the database opening a file. So `chatus serve` raises the soft limit
//! to the hard one at start ([`raise`]), and [`connection_cap`] keeps the
//! cap `fd_reserve` below whatever limit is in force.

/// The open-file limits of this process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FdLimit {
    /// The limit in force (soft); `None` when unlimited or unknown.
    pub soft: Option<u64>,
    /// The most the soft limit may be raised to (hard).
    pub hard: Option<u64>,
}

/// The limits in force now.
#[cfg(unix)]
pub fn current() -> FdLimit {
    let r = rustix::process::getrlimit(rustix::process::Resource::Nofile);
    FdLimit {
        soft: r.current,
        hard: r.maximum,
    }
}

/// The limits in force now (unknown off Unix).
#[cfg(not(unix))]
pub fn current() -> FdLimit {
    FdLimit {
        soft: None,
        hard: None,
    }
}

/// Raises the soft open-file limit to the hard limit; returns the limits in
/// force afterwards. Raising within the hard limit needs no privilege.
#[cfg(unix)]
pub fn raise() -> std::io::Result<FdLimit> {
    use rustix::process::{Resource, Rlimit, setrlimit};
    let now = current();
    if now.soft != now.hard {
        setrlimit(
            Resource::Nofile,
            Rlimit {
                current: now.hard,
                maximum: now.hard,
            },
        )?;
    }
    Ok(current())
}

/// Raises the soft open-file limit (nothing to do off Unix).
#[cfg(not(unix))]
pub fn raise() -> std::io::Result<FdLimit> {
    Ok(current())
}

/// The connection cap to use: `asked`, but at most `reserve` below the
/// soft limit (at most half of it when the limit is smaller than twice the
/// reserve), and at least 1.
pub fn connection_cap(asked: usize, soft: Option<u64>, reserve: usize) -> usize {
    let Some(soft) = soft.and_then(|s| usize::try_from(s).ok()) else {
        return asked;
    };
    let room = soft.saturating_sub(reserve).max(soft / 2).max(1);
    asked.min(room)
}

/// Whether an `accept` error means the process (or system) is out of file
/// descriptors.
pub fn is_out_of_descriptors(e: &std::io::Error) -> bool {
    // EMFILE and ENFILE.
    matches!(e.raw_os_error(), Some(23 | 24))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_stays_below_the_limit() {
        // These machines: a hard limit of 20,000, the default cap too.
        assert_eq!(connection_cap(20_000, Some(20_000), 256), 19_744);
        assert_eq!(connection_cap(1_000, Some(20_000), 256), 1_000);
        assert_eq!(connection_cap(20_000, Some(256), 256), 128);
        assert_eq!(connection_cap(20_000, Some(1), 256), 1);
        assert_eq!(connection_cap(20_000, None, 256), 20_000);
        assert_eq!(connection_cap(20_000, Some(300), 0), 300);
    }

    #[cfg(unix)]
    #[test]
    fn raising_reaches_the_hard_limit() {
        let after = raise().unwrap();
        assert_eq!(after.soft, after.hard);
    }
}
