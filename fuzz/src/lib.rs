//! What the fuzz targets share: a byte slice served as a socket that
//! delivers it in chunks of a chosen size (so every split of a frame or a
//! request head across reads is tried), and a way to run a future that
//! such a socket never makes wait.

use std::future::Future;
use std::io;
use std::pin::{Pin, pin};
use std::task::{Context, Poll, Waker};

use tokio::io::{AsyncRead, ReadBuf};

/// A finite socket: `data` in reads of at most `step` bytes, then end of
/// stream. It is always ready.
pub struct Chunked<'a> {
    data: &'a [u8],
    step: usize,
}

impl<'a> Chunked<'a> {
    /// Serves `data` in reads of at most `step` bytes (at least 1).
    pub fn new(data: &'a [u8], step: usize) -> Self {
        Self {
            data,
            step: step.max(1),
        }
    }
}

impl AsyncRead for Chunked<'_> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let n = self.step.min(self.data.len()).min(buf.remaining());
        let (now, rest) = self.data.split_at(n);
        buf.put_slice(now);
        self.data = rest;
        Poll::Ready(Ok(()))
    }
}

/// Runs `fut` to completion by polling it once: everything it awaits is a
/// [`Chunked`] socket, which is always ready, so one poll finishes it.
///
/// # Panics
/// If the future waits, which would be a mistake in the target, not a
/// finding in the code under test.
pub fn run_ready<T>(fut: impl Future<Output = T>) -> T {
    let mut fut = pin!(fut);
    match fut.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(v) => v,
        Poll::Pending => panic!("a future over an always-ready socket waited"),
    }
}
