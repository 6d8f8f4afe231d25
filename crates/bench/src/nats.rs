//! The reference: core NATS publish/subscribe over its text protocol
//! (`CONNECT`, `SUB`, `PUB`, `MSG`), with no acknowledgements and no
//! persistence.

use std::io;
use std::net::SocketAddr;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

/// Connects, says `CONNECT`, subscribes to `subject` if given, and waits
/// for the server's `PONG` so the subscription is in place.
pub async fn connect(addr: SocketAddr, subject: Option<&str>) -> io::Result<(Reader, Writer)> {
    let stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let (r, mut w) = stream.into_split();
    let mut hello =
        String::from("CONNECT {\"verbose\":false,\"pedantic\":false,\"echo\":false}\r\n");
    if let Some(s) = subject {
        hello.push_str(&format!("SUB {s} 1\r\n"));
    }
    hello.push_str("PING\r\n");
    w.write_all(hello.as_bytes()).await?;
    let mut reader = Reader {
        r,
        buf: Vec::new(),
        start: 0,
    };
    // Skip INFO; wait for PONG.
    loop {
        reader.buf.reserve(4096);
        if reader.r.read_buf(&mut reader.buf).await? == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "nats closed"));
        }
        if let Some(i) = find(&reader.buf, b"PONG\r\n") {
            reader.start = i + 6;
            break;
        }
    }
    Ok((reader, Writer { w, buf: Vec::new() }))
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Publishes.
pub struct Writer {
    w: OwnedWriteHalf,
    buf: Vec<u8>,
}

impl Writer {
    /// Queues `PUB subject payload`.
    pub fn publish(&mut self, subject: &str, payload: &[u8]) {
        self.buf.extend_from_slice(b"PUB ");
        self.buf.extend_from_slice(subject.as_bytes());
        self.buf
            .extend_from_slice(format!(" {}\r\n", payload.len()).as_bytes());
        self.buf.extend_from_slice(payload);
        self.buf.extend_from_slice(b"\r\n");
    }

    /// Sends what is queued.
    pub async fn flush(&mut self) -> io::Result<()> {
        if !self.buf.is_empty() {
            self.w.write_all(&self.buf).await?;
            self.buf.clear();
        }
        Ok(())
    }
}

/// Reads `MSG` deliveries.
pub struct Reader {
    r: OwnedReadHalf,
    buf: Vec<u8>,
    start: usize,
}

impl Reader {
    /// Reads what is available and calls `f` with each message payload.
    /// Returns false when the connection closed.
    pub async fn read_batch(&mut self, mut f: impl FnMut(&[u8])) -> io::Result<bool> {
        if self.start > 0 && self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
        } else if self.start > 1 << 16 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        self.buf.reserve(64 * 1024);
        if self.r.read_buf(&mut self.buf).await? == 0 {
            return Ok(false);
        }
        loop {
            let b = &self.buf[self.start..];
            let Some(eol) = b.windows(2).position(|w| w == b"\r\n") else {
                return Ok(true);
            };
            let line = &b[..eol];
            if line.starts_with(b"MSG ") {
                let len: usize = line
                    .rsplit(|c| *c == b' ')
                    .next()
                    .and_then(|n| std::str::from_utf8(n).ok())
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(0);
                if b.len() < eol + 2 + len + 2 {
                    return Ok(true);
                }
                f(&b[eol + 2..eol + 2 + len]);
                self.start += eol + 2 + len + 2;
            } else {
                self.start += eol + 2;
            }
        }
    }
}
