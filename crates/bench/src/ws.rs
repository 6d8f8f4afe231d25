//! A lean WebSocket client for load generation: a raw HTTP upgrade, masked
//! text frames written into a buffer and flushed together, and a reader
//! that hands out frame payloads straight from its read buffer. It does far
//! less per message than a general library, so the load generator is not
//! what limits the measurement. Over TLS (to an address registered with
//! [`crate::tls::trust`]) the same frames go through rustls; the plain
//! path keeps tokio's own TCP halves.

use std::io;
use std::net::{IpAddr, SocketAddr};

use rustls_pki_types::ServerName;
use tokio::io::{
    AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _, ReadHalf, WriteHalf,
};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpSocket, TcpStream};
use tokio_rustls::client::TlsStream;

/// The receiving side of a connection.
enum In {
    Plain(OwnedReadHalf),
    Tls(ReadHalf<TlsStream<TcpStream>>),
}

/// The sending side of a connection.
enum Out {
    Plain(OwnedWriteHalf),
    Tls(WriteHalf<TlsStream<TcpStream>>),
}

/// Opens a TCP connection (from `local`, when given) and upgrades it.
pub async fn connect(addr: SocketAddr, local: Option<IpAddr>) -> io::Result<(Reader, Writer)> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    if let Some(ip) = local {
        socket.bind(SocketAddr::new(ip, 0))?;
    }
    let stream = socket.connect(addr).await?;
    stream.set_nodelay(true)?;
    let (r, w, leftover) = match crate::tls::connector(addr) {
        None => {
            let mut stream = stream;
            let leftover = upgrade(&mut stream).await?;
            let (r, w) = stream.into_split();
            (In::Plain(r), Out::Plain(w), leftover)
        }
        Some(tls) => {
            let mut stream = tls
                .connect(ServerName::IpAddress(addr.ip().into()), stream)
                .await?;
            let leftover = upgrade(&mut stream).await?;
            let (r, w) = tokio::io::split(stream);
            (In::Tls(r), Out::Tls(w), leftover)
        }
    };
    Ok((
        Reader {
            r,
            buf: leftover,
            start: 0,
        },
        Writer {
            w,
            buf: Vec::new(),
            mask: 0x9E37_79B9,
        },
    ))
}

/// Sends the HTTP upgrade and reads its answer; returns the bytes that
/// came after it (frames for the reader).
async fn upgrade<S: AsyncRead + AsyncWrite + Unpin>(stream: &mut S) -> io::Result<Vec<u8>> {
    stream
        .write_all(
            b"GET /ws HTTP/1.1\r\nHost: bench\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
              Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
        )
        .await?;
    stream.flush().await?;
    let mut head = Vec::with_capacity(512);
    let mut chunk = [0u8; 512];
    let end = loop {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "closed during upgrade",
            ));
        }
        head.extend_from_slice(&chunk[..n]);
        if let Some(i) = head.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        if head.len() > 4096 {
            return Err(io::Error::other("upgrade response too long"));
        }
    };
    if !head.starts_with(b"HTTP/1.1 101") {
        return Err(io::Error::other(format!(
            "upgrade refused: {}",
            String::from_utf8_lossy(&head)
        )));
    }
    Ok(head.split_off(end))
}

/// Writes masked text frames.
pub struct Writer {
    w: Out,
    buf: Vec<u8>,
    mask: u32,
}

impl Writer {
    /// Queues a text frame (sent at the next flush).
    pub fn text(&mut self, payload: &[u8]) {
        let len = payload.len();
        self.buf.push(0x81);
        if len < 126 {
            self.buf.push(0x80 | len as u8);
        } else if len <= 0xFFFF {
            self.buf.push(0x80 | 126);
            self.buf.extend_from_slice(&(len as u16).to_be_bytes());
        } else {
            self.buf.push(0x80 | 127);
            self.buf.extend_from_slice(&(len as u64).to_be_bytes());
        }
        // A cheap changing mask; the server requires masking, not secrecy.
        self.mask = self
            .mask
            .wrapping_mul(1_664_525)
            .wrapping_add(1_013_904_223);
        let key = self.mask.to_be_bytes();
        self.buf.extend_from_slice(&key);
        self.buf
            .extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i & 3]));
    }

    /// Sends the start of a text frame of `len` payload bytes: its header
    /// and `sent` of them (at most `len`), leaving it unfinished. For
    /// measuring what a peer that stalls mid-frame costs the server.
    pub async fn partial_text(&mut self, len: usize, sent: usize) -> io::Result<()> {
        let payload = vec![b' '; len];
        self.text(&payload);
        let unsent = len - sent.min(len);
        self.buf.truncate(self.buf.len() - unsent);
        self.flush().await
    }

    /// Sends everything queued.
    pub async fn flush(&mut self) -> io::Result<()> {
        if !self.buf.is_empty() {
            match &mut self.w {
                Out::Plain(w) => w.write_all(&self.buf).await?,
                Out::Tls(w) => {
                    w.write_all(&self.buf).await?;
                    w.flush().await?;
                }
            }
            self.buf.clear();
        }
        Ok(())
    }

    /// Bytes queued.
    pub fn queued(&self) -> usize {
        self.buf.len()
    }
}

/// Reads server frames.
pub struct Reader {
    r: In,
    buf: Vec<u8>,
    start: usize,
}

impl Reader {
    /// Frees the read buffer (for connections that will sit idle).
    pub fn shrink(&mut self) {
        self.buf.drain(..self.start);
        self.start = 0;
        self.buf.shrink_to_fit();
    }

    /// Reads what is available and calls `f` with the payload of every
    /// complete text frame. Returns false when the connection closed (a
    /// close frame or end of stream).
    pub async fn read_batch(&mut self, mut f: impl FnMut(&[u8])) -> io::Result<bool> {
        if self.start > 0 && self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
        } else if self.start > 1 << 16 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        self.buf.reserve(64 * 1024);
        let n = match &mut self.r {
            In::Plain(r) => r.read_buf(&mut self.buf).await?,
            In::Tls(r) => r.read_buf(&mut self.buf).await?,
        };
        if n == 0 {
            return Ok(false);
        }
        loop {
            let b = &self.buf[self.start..];
            if b.len() < 2 {
                return Ok(true);
            }
            let op = b[0] & 0x0F;
            let (len, hdr) = match b[1] & 0x7F {
                126 if b.len() >= 4 => (usize::from(u16::from_be_bytes([b[2], b[3]])), 4),
                127 if b.len() >= 10 => {
                    let mut l = [0u8; 8];
                    l.copy_from_slice(&b[2..10]);
                    (
                        usize::try_from(u64::from_be_bytes(l)).unwrap_or(usize::MAX),
                        10,
                    )
                }
                126 | 127 => return Ok(true),
                l => (usize::from(l), 2),
            };
            if b.len() < hdr + len {
                return Ok(true);
            }
            let payload = &b[hdr..hdr + len];
            match op {
                0x1 => f(payload),
                0x8 => return Ok(false),
                _ => {}
            }
            self.start += hdr + len;
        }
    }
}
