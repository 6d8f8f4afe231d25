//! A connection's outbound queue and the writer that drains it.
//!
//! Fan-out pushes shared, pre-encoded frames here and never waits: a push
//! is a short lock and a pointer copy. The connection's writer task takes
//! everything queued at once and hands it to one vectored write. The queue
//! is capped in bytes (queued plus being written): a push past the cap
//! drops the queue and closes the connection with code 4000 (lagging), so a
//! reader that cannot keep up never slows anyone else, and it learns why and
//! resumes from history when it reconnects.

use std::borrow::Cow;
use std::collections::VecDeque;
use std::io::{self, IoSlice};
use std::sync::Mutex;
use std::time::Duration;

use bytes::{Buf as _, Bytes};
use chatus_protocol::error::close;
use tokio::io::{AsyncWrite, AsyncWriteExt as _};
use tokio::sync::Notify;

use crate::ws::frame::close_frame;

/// How long a closing connection may take to flush its last frames.
const CLOSE_GRACE: Duration = Duration::from_secs(5);
/// Most frames handed to one vectored write.
const MAX_IOV: usize = 1024;

/// Why and how a connection is being closed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Close {
    /// The WebSocket close code.
    pub(crate) code: u16,
    /// The reason sent with it.
    pub(crate) reason: Cow<'static, str>,
}

/// The result of a push.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pushed {
    /// The frame is queued.
    Queued,
    /// The queue overflowed: it was dropped and the connection is closing.
    Overflow,
    /// The connection is already closing; the frame was dropped.
    Closing,
}

#[derive(Debug, Default)]
struct Queue {
    frames: VecDeque<Bytes>,
    /// Bytes in `frames`.
    queued: usize,
    /// Bytes taken by the writer and not yet written.
    in_flight: usize,
    /// A close requested and not yet taken by the writer.
    close: Option<Close>,
    /// A close was requested (taken or not).
    closing: bool,
    /// The code of the close that counted (the first asked for).
    code: Option<u16>,
    /// Queued frames are to be dropped rather than sent (lagging).
    discard: bool,
}

/// The outbound queue of one connection.
#[derive(Debug)]
pub struct Outbox {
    // A std Mutex: every critical section is a few pointer moves and none
    // spans an await, so an async mutex would only add cost.
    queue: Mutex<Queue>,
    /// Wakes the writer when the queue goes from empty to non-empty.
    wake: Notify,
    /// Wakes whoever waits for the connection to start closing.
    closing: Notify,
    /// Most bytes queued plus in flight.
    cap: usize,
}

/// What the writer takes from the queue in one go.
struct Taken {
    frames: VecDeque<Bytes>,
    close: Option<Close>,
}

impl Outbox {
    /// An empty queue holding at most `cap` bytes.
    pub(crate) fn new(cap: usize) -> Self {
        Self {
            queue: Mutex::default(),
            wake: Notify::new(),
            closing: Notify::new(),
            cap,
        }
    }

    /// Queues a frame; never waits.
    pub(crate) fn push(&self, frame: Bytes) -> Pushed {
        let Ok(mut q) = self.queue.lock() else {
            return Pushed::Closing;
        };
        if q.closing {
            return Pushed::Closing;
        }
        if q.queued + q.in_flight + frame.len() > self.cap {
            q.frames = VecDeque::new();
            q.queued = 0;
            q.discard = true;
            q.closing = true;
            q.code = Some(close::LAGGING);
            q.close = Some(Close {
                code: close::LAGGING,
                reason: Cow::Borrowed("too slow to keep up; reconnect and resume from history"),
            });
            drop(q);
            self.wake.notify_one();
            self.closing.notify_waiters();
            return Pushed::Overflow;
        }
        q.queued += frame.len();
        q.frames.push_back(frame);
        let first = q.frames.len() == 1;
        drop(q);
        // The writer sleeps only on an empty queue, so only the first push
        // after it emptied needs to wake it.
        if first {
            self.wake.notify_one();
        }
        Pushed::Queued
    }

    /// Queues several frames at once: one lock, one wake-up. Fan-out uses
    /// this for a whole committed batch, so the writer sends it in one go.
    pub(crate) fn push_all(&self, frames: &[Bytes]) -> Pushed {
        let len: usize = frames.iter().map(Bytes::len).sum();
        let Ok(mut q) = self.queue.lock() else {
            return Pushed::Closing;
        };
        if q.closing {
            return Pushed::Closing;
        }
        if q.queued + q.in_flight + len > self.cap {
            drop(q);
            // Same outcome as pushing one by one until the cap.
            self.close(
                close::LAGGING,
                "too slow to keep up; reconnect and resume from history",
                true,
            );
            return Pushed::Overflow;
        }
        let first = q.frames.is_empty();
        q.queued += len;
        q.frames.extend(frames.iter().cloned());
        drop(q);
        if first {
            self.wake.notify_one();
        }
        Pushed::Queued
    }

    /// Asks the writer to send what is queued (or drop it, when `discard`),
    /// then a close frame, then close. Only the first request counts.
    pub(crate) fn close(&self, code: u16, reason: impl Into<Cow<'static, str>>, discard: bool) {
        let Ok(mut q) = self.queue.lock() else {
            return;
        };
        if q.closing {
            return;
        }
        q.closing = true;
        q.code = Some(code);
        q.close = Some(Close {
            code,
            reason: reason.into(),
        });
        if discard {
            q.discard = true;
            q.frames = VecDeque::new();
            q.queued = 0;
        }
        drop(q);
        self.wake.notify_one();
        self.closing.notify_waiters();
    }

    /// True once a close was requested.
    pub(crate) fn is_closing(&self) -> bool {
        self.queue.lock().map_or(true, |q| q.closing)
    }

    /// The code the connection is closing with, once a close was asked
    /// for (4000 when it was cut off as lagging).
    pub(crate) fn close_code(&self) -> Option<u16> {
        self.queue.lock().ok().and_then(|q| q.code)
    }

    fn is_discarding(&self) -> bool {
        self.queue.lock().map_or(true, |q| q.discard)
    }

    /// Resolves once a close has been requested.
    pub(crate) async fn closed(&self) {
        loop {
            let notified = self.closing.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.is_closing() {
                return;
            }
            notified.await;
        }
    }

    /// Bytes queued and in flight (for tests and metrics).
    pub fn pending_bytes(&self) -> usize {
        self.queue.lock().map_or(0, |q| q.queued + q.in_flight)
    }

    async fn take(&self) -> Taken {
        loop {
            if let Ok(mut q) = self.queue.lock() {
                if !q.frames.is_empty() || q.close.is_some() {
                    let frames = std::mem::take(&mut q.frames);
                    q.in_flight += q.queued;
                    q.queued = 0;
                    let close = q.close.take();
                    return Taken { frames, close };
                }
            } else {
                return Taken {
                    frames: VecDeque::new(),
                    close: Some(Close {
                        code: close::INTERNAL,
                        reason: Cow::Borrowed(""),
                    }),
                };
            }
            self.wake.notified().await;
        }
    }

    fn written(&self, n: usize) {
        if let Ok(mut q) = self.queue.lock() {
            q.in_flight = q.in_flight.saturating_sub(n);
        }
    }

    /// The writer task's body: drains the queue into `w` until a close has
    /// been sent or the socket fails.
    pub(crate) async fn write_to<W: AsyncWrite + Unpin>(&self, w: &mut W) -> io::Result<()> {
        // Frames taken but not yet written; kept across rounds because a
        // close request can interrupt a round half way.
        let mut frames = VecDeque::new();
        loop {
            let Taken {
                frames: more,
                close,
            } = self.take().await;
            frames.extend(more);
            if let Some(c) = close {
                // Finish what was queued before the close (only a frame
                // already half written, when discarding), then say goodbye,
                // all within the grace period.
                let goodbye = async {
                    self.write_frames(w, &mut frames, false).await?;
                    w.write_all(&close_frame(c.code, &c.reason)).await?;
                    w.flush().await?;
                    w.shutdown().await
                };
                // Boxed, like the writes below, so that an idle writer's future
                // stays small (see `connection::serve`).
                let result = match tokio::time::timeout(CLOSE_GRACE, Box::pin(goodbye)).await {
                    Ok(r) => r,
                    Err(_) => Err(io::Error::new(io::ErrorKind::TimedOut, "close timed out")),
                };
                self.written(frames.iter().map(Bytes::len).sum());
                return result;
            }
            Box::pin(self.write_frames(w, &mut frames, true)).await?;
        }
    }

    /// Writes `frames`, many per system call. While `watch` is set, a close
    /// request ends the round early; when the close discards, only a frame
    /// already half written is kept (the stream must stay well-formed for
    /// the close frame) and the rest dropped.
    async fn write_frames<W: AsyncWrite + Unpin>(
        &self,
        w: &mut W,
        frames: &mut VecDeque<Bytes>,
        watch: bool,
    ) -> io::Result<()> {
        enum Step {
            Wrote(usize),
            Closing,
        }
        let mut partial = false;
        while !frames.is_empty() {
            if !watch && !partial && self.is_discarding() {
                self.written(frames.iter().map(Bytes::len).sum());
                frames.clear();
                break;
            }
            let step = {
                // On the heap: a stack array would live across the await and
                // grow every idle writer's future by the whole array.
                let slices: Vec<IoSlice<'_>> = frames
                    .iter()
                    .take(MAX_IOV)
                    .map(|f| IoSlice::new(f))
                    .collect();
                if watch {
                    tokio::select! {
                        r = w.write_vectored(&slices) => Step::Wrote(r?),
                        () = self.closed() => Step::Closing,
                    }
                } else {
                    Step::Wrote(w.write_vectored(&slices).await?)
                }
            };
            match step {
                Step::Closing => {
                    if self.is_discarding() {
                        let keep = usize::from(partial);
                        self.written(frames.iter().skip(keep).map(Bytes::len).sum());
                        frames.truncate(keep);
                    }
                    return Ok(());
                }
                Step::Wrote(0) => return Err(io::ErrorKind::WriteZero.into()),
                Step::Wrote(mut n) => {
                    let total = n;
                    partial = false;
                    while n > 0 {
                        let Some(front) = frames.front_mut() else {
                            break;
                        };
                        if front.len() <= n {
                            n -= front.len();
                            frames.pop_front();
                        } else {
                            front.advance(n);
                            n = 0;
                            partial = true;
                        }
                    }
                    self.written(total);
                }
            }
        }
        // A TLS stream may keep encrypted bytes it could not write yet
        // after taking a frame; push them out before waiting for more
        // frames (a no-op on TCP).
        if watch {
            tokio::select! {
                r = w.flush() => r?,
                () = self.closed() => {}
            }
        } else {
            w.flush().await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt as _;

    fn f(s: &str) -> Bytes {
        crate::ws::frame::frame(crate::ws::frame::OP_TEXT, s.as_bytes())
    }

    #[tokio::test]
    async fn writes_in_order_then_closes() {
        let out = Outbox::new(1 << 20);
        let (mut a, mut b) = tokio::io::duplex(1 << 16);
        for i in 0..100 {
            assert_eq!(out.push(f(&format!("m{i}"))), Pushed::Queued);
        }
        out.close(1000, "bye", false);
        assert_eq!(out.push(f("late")), Pushed::Closing);
        out.write_to(&mut a).await.unwrap();
        let mut got = Vec::new();
        b.read_to_end(&mut got).await.unwrap();
        let mut want = Vec::new();
        for i in 0..100 {
            want.extend_from_slice(&f(&format!("m{i}")));
        }
        want.extend_from_slice(&close_frame(1000, "bye"));
        assert_eq!(got, want);
        assert_eq!(out.pending_bytes(), 0);
    }

    #[tokio::test]
    async fn overflow_drops_the_queue_and_closes_lagging() {
        let out = Outbox::new(100);
        assert_eq!(out.push(f(&"x".repeat(60))), Pushed::Queued);
        assert_eq!(out.push(f(&"y".repeat(60))), Pushed::Overflow);
        assert_eq!(out.pending_bytes(), 0);
        assert!(out.is_closing());
        assert_eq!(out.close_code(), Some(close::LAGGING));
        let (mut a, mut b) = tokio::io::duplex(1 << 16);
        out.write_to(&mut a).await.unwrap();
        let mut got = Vec::new();
        b.read_to_end(&mut got).await.unwrap();
        assert_eq!(got[0], 0x88, "only a close frame is sent");
        assert_eq!(u16::from_be_bytes([got[2], got[3]]), close::LAGGING);
    }

    #[tokio::test]
    async fn a_stalled_reader_is_cut_off_mid_write() {
        let out = std::sync::Arc::new(Outbox::new(1 << 20));
        // A pipe with room for 1 KiB that nobody reads.
        let (mut a, b) = tokio::io::duplex(1024);
        for _ in 0..20 {
            out.push(f(&"z".repeat(500)));
        }
        let writer = {
            let out = out.clone();
            tokio::spawn(async move { out.write_to(&mut a).await })
        };
        tokio::task::yield_now().await;
        out.close(close::LAGGING, "slow", true);
        // The writer gives up within the grace period even though the pipe
        // never drains, and releases what it held.
        tokio::time::pause();
        let r = writer.await.unwrap();
        assert!(r.is_err());
        assert_eq!(out.pending_bytes(), 0);
        drop(b);
    }
}
