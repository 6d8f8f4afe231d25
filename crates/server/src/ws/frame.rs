//! WebSocket frames: [`FrameReader`] turns bytes from a client into whole
//! messages, enforcing the protocol's rules and the size limit; the
//! `*_frame` functions encode server frames.
//!
//! Rules enforced on client frames: every frame is masked; RSV bits are 0
//! (no extension is negotiated); opcodes are known; control frames are
//! short and unfragmented; continuations continue something; a message
//! (all its fragments) is at most `max_message` bytes, checked from the
//! header before the payload is buffered; text is UTF-8.

use std::cell::RefCell;
use std::future::poll_fn;
use std::io;
use std::pin::Pin;
use std::task::Poll;

use bytes::Bytes;
use tokio::io::{AsyncRead, ReadBuf};

/// Continuation frame.
pub const OP_CONT: u8 = 0x0;
/// Text frame.
pub const OP_TEXT: u8 = 0x1;
/// Binary frame.
pub const OP_BINARY: u8 = 0x2;
/// Close frame.
pub const OP_CLOSE: u8 = 0x8;
/// Ping frame.
pub const OP_PING: u8 = 0x9;
/// Pong frame.
pub const OP_PONG: u8 = 0xA;

/// Size of the per-thread scratch buffer reads go through.
const SCRATCH: usize = 16 * 1024;

thread_local! {
    // Reads land here first and are copied into the connection's own buffer
    // only as far as needed, so an idle connection holds no buffer.
    static SCRATCH_BUF: RefCell<Vec<u8>> = RefCell::new(vec![0; SCRATCH]);
}

/// One whole message (or control frame) from the client.
#[derive(Debug, PartialEq, Eq)]
pub enum Incoming {
    /// A text message.
    Text(String),
    /// A binary message (its length); the protocol has no use for one.
    Binary(usize),
    /// A ping with its payload, to be answered with a pong.
    Ping(Vec<u8>),
    /// A pong.
    Pong,
    /// A close frame, with its code and reason when present.
    Close(Option<(u16, String)>),
}

/// What can go wrong reading frames.
#[derive(Debug, thiserror::Error)]
pub enum WsError {
    /// The client broke the WebSocket protocol.
    #[error("The client broke the WebSocket protocol: {0}.")]
    Protocol(&'static str),
    /// A message exceeded the size limit.
    #[error("A message exceeded the limit of {limit} bytes.")]
    TooBig {
        /// The limit.
        limit: usize,
    },
    /// A text message or close reason was not UTF-8.
    #[error("A text message was not valid UTF-8.")]
    InvalidUtf8,
    /// The socket failed.
    #[error("Reading from the socket failed: {0}")]
    Io(#[from] io::Error),
}

impl WsError {
    /// The close code to send for this error.
    pub fn close_code(&self) -> u16 {
        use chatus_protocol::error::close;
        match self {
            WsError::Protocol(_) => close::PROTOCOL_ERROR,
            WsError::TooBig { .. } => close::TOO_BIG,
            WsError::InvalidUtf8 => close::INVALID_DATA,
            WsError::Io(_) => close::PROTOCOL_ERROR,
        }
    }
}

struct Header {
    fin: bool,
    opcode: u8,
    mask: [u8; 4],
    len: usize,
    header_len: usize,
}

/// Parses a frame header from `buf`; `None` until enough bytes are there.
fn parse_header(buf: &[u8]) -> Result<Option<Header>, WsError> {
    if buf.len() < 2 {
        return Ok(None);
    }
    let (b0, b1) = (buf[0], buf[1]);
    if b0 & 0x70 != 0 {
        return Err(WsError::Protocol("reserved bits set without an extension"));
    }
    if b1 & 0x80 == 0 {
        return Err(WsError::Protocol("client frames must be masked"));
    }
    let (len, mut at) = match b1 & 0x7F {
        126 => {
            if buf.len() < 4 {
                return Ok(None);
            }
            (usize::from(u16::from_be_bytes([buf[2], buf[3]])), 4)
        }
        127 => {
            if buf.len() < 10 {
                return Ok(None);
            }
            let mut b = [0u8; 8];
            b.copy_from_slice(&buf[2..10]);
            let n = u64::from_be_bytes(b);
            if n >> 63 != 0 {
                return Err(WsError::Protocol("frame length has its top bit set"));
            }
            (usize::try_from(n).unwrap_or(usize::MAX), 10)
        }
        n => (usize::from(n), 2),
    };
    if buf.len() < at + 4 {
        return Ok(None);
    }
    let mut mask = [0u8; 4];
    mask.copy_from_slice(&buf[at..at + 4]);
    at += 4;
    Ok(Some(Header {
        fin: b0 & 0x80 != 0,
        opcode: b0 & 0x0F,
        mask,
        len,
        header_len: at,
    }))
}

fn unmask(data: &mut [u8], mask: [u8; 4]) {
    for (i, b) in data.iter_mut().enumerate() {
        *b ^= mask[i & 3];
    }
}

/// Reads whole client messages from a stream.
#[derive(Debug)]
pub struct FrameReader {
    /// Received bytes not yet parsed; empty (and unallocated) when idle.
    buf: Vec<u8>,
    /// Where parsing resumes in `buf`.
    start: usize,
    /// A fragmented message being assembled: its opcode and payload so far.
    partial: Option<(u8, Vec<u8>)>,
    /// Largest message accepted.
    max_message: usize,
}

impl FrameReader {
    /// A reader for messages up to `max_message` bytes, starting with bytes
    /// that arrived together with the HTTP upgrade request.
    pub fn new(max_message: usize, leftover: Vec<u8>) -> Self {
        Self {
            buf: leftover,
            start: 0,
            partial: None,
            max_message,
        }
    }

    /// The next message; `None` when the stream ended cleanly between
    /// messages.
    pub async fn next<R: AsyncRead + Unpin>(
        &mut self,
        r: &mut R,
    ) -> Result<Option<Incoming>, WsError> {
        loop {
            if let Some(msg) = self.try_parse()? {
                return Ok(Some(msg));
            }
            if self.start > 0 {
                self.buf.drain(..self.start);
                self.start = 0;
            }
            let n = read_some(r, &mut self.buf).await?;
            if n == 0 {
                if self.buf.is_empty() && self.partial.is_none() {
                    return Ok(None);
                }
                return Err(WsError::Protocol("the connection ended inside a frame"));
            }
        }
    }

    /// Parses one message from the buffered bytes, if a whole one is there.
    fn try_parse(&mut self) -> Result<Option<Incoming>, WsError> {
        loop {
            let Some(h) = parse_header(&self.buf[self.start..])? else {
                return Ok(None);
            };
            let is_control = h.opcode & 0x8 != 0;
            if is_control {
                if h.len > 125 {
                    return Err(WsError::Protocol("control frame longer than 125 bytes"));
                }
                if !h.fin {
                    return Err(WsError::Protocol("fragmented control frame"));
                }
            } else {
                let so_far = self.partial.as_ref().map_or(0, |(_, p)| p.len());
                if h.len > self.max_message || so_far + h.len > self.max_message {
                    return Err(WsError::TooBig {
                        limit: self.max_message,
                    });
                }
            }
            let begin = self.start + h.header_len;
            let end = begin + h.len;
            if self.buf.len() < end {
                return Ok(None);
            }
            let mut payload = self.buf[begin..end].to_vec();
            unmask(&mut payload, h.mask);
            self.start = end;
            if self.start == self.buf.len() {
                // Free the buffer: an idle connection keeps none.
                self.buf = Vec::new();
                self.start = 0;
            }
            match h.opcode {
                OP_TEXT | OP_BINARY => {
                    if self.partial.is_some() {
                        return Err(WsError::Protocol("new message inside a fragmented one"));
                    }
                    if h.fin {
                        return finish(h.opcode, payload).map(Some);
                    }
                    self.partial = Some((h.opcode, payload));
                }
                OP_CONT => {
                    let Some((op, mut so_far)) = self.partial.take() else {
                        return Err(WsError::Protocol("continuation without a message"));
                    };
                    so_far.extend_from_slice(&payload);
                    if h.fin {
                        return finish(op, so_far).map(Some);
                    }
                    self.partial = Some((op, so_far));
                }
                OP_CLOSE => {
                    return match payload.len() {
                        0 => Ok(Some(Incoming::Close(None))),
                        1 => Err(WsError::Protocol("close frame with a one-byte payload")),
                        _ => {
                            let code = u16::from_be_bytes([payload[0], payload[1]]);
                            let reason = String::from_utf8(payload[2..].to_vec())
                                .map_err(|_| WsError::InvalidUtf8)?;
                            Ok(Some(Incoming::Close(Some((code, reason)))))
                        }
                    };
                }
                OP_PING => return Ok(Some(Incoming::Ping(payload))),
                OP_PONG => return Ok(Some(Incoming::Pong)),
                _ => return Err(WsError::Protocol("reserved opcode")),
            }
        }
    }
}

fn finish(opcode: u8, payload: Vec<u8>) -> Result<Incoming, WsError> {
    if opcode == OP_TEXT {
        String::from_utf8(payload)
            .map(Incoming::Text)
            .map_err(|_| WsError::InvalidUtf8)
    } else {
        Ok(Incoming::Binary(payload.len()))
    }
}

/// Reads what is available into `buf` through the thread's scratch buffer.
async fn read_some<R: AsyncRead + Unpin>(r: &mut R, buf: &mut Vec<u8>) -> io::Result<usize> {
    poll_fn(|cx| {
        SCRATCH_BUF.with_borrow_mut(|scratch| {
            let mut rb = ReadBuf::new(scratch);
            match Pin::new(&mut *r).poll_read(cx, &mut rb) {
                Poll::Ready(Ok(())) => {
                    let got = rb.filled();
                    buf.extend_from_slice(got);
                    Poll::Ready(Ok(got.len()))
                }
                Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
                Poll::Pending => Poll::Pending,
            }
        })
    })
    .await
}

/// Room kept in front of a payload for the largest header (10 bytes).
const HEADER_ROOM: usize = 10;

fn write_header(opcode: u8, len: usize, out: &mut [u8; HEADER_ROOM]) -> usize {
    out[0] = 0x80 | opcode;
    if len < 126 {
        out[1] = len as u8;
        2
    } else if let Ok(len16) = u16::try_from(len) {
        out[1] = 126;
        out[2..4].copy_from_slice(&len16.to_be_bytes());
        4
    } else {
        out[1] = 127;
        out[2..10].copy_from_slice(&(len as u64).to_be_bytes());
        10
    }
}

/// Builds a text frame whose payload `fill` writes, without copying the
/// payload: the header goes into room reserved in front of it.
pub fn text_frame_with(fill: impl FnOnce(&mut Vec<u8>)) -> Bytes {
    let mut v = Vec::with_capacity(256);
    v.extend_from_slice(&[0u8; HEADER_ROOM]);
    fill(&mut v);
    let len = v.len() - HEADER_ROOM;
    let mut hdr = [0u8; HEADER_ROOM];
    let n = write_header(OP_TEXT, len, &mut hdr);
    let start = HEADER_ROOM - n;
    v[start..HEADER_ROOM].copy_from_slice(&hdr[..n]);
    Bytes::from(v).slice(start..)
}

/// A server frame with the given opcode and payload.
pub fn frame(opcode: u8, payload: &[u8]) -> Bytes {
    let mut hdr = [0u8; HEADER_ROOM];
    let n = write_header(opcode, payload.len(), &mut hdr);
    let mut v = Vec::with_capacity(n + payload.len());
    v.extend_from_slice(&hdr[..n]);
    v.extend_from_slice(payload);
    Bytes::from(v)
}

/// A close frame with a code and a reason (cut to fit 123 bytes).
pub fn close_frame(code: u16, reason: &str) -> Bytes {
    let mut end = reason.len().min(123);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    let mut payload = Vec::with_capacity(2 + end);
    payload.extend_from_slice(&code.to_be_bytes());
    payload.extend_from_slice(&reason.as_bytes()[..end]);
    frame(OP_CLOSE, &payload)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Encodes a masked client frame.
    fn client_frame(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
        let mask = [0x12, 0x34, 0x56, 0x78];
        let mut v = vec![(if fin { 0x80 } else { 0 }) | opcode];
        match payload.len() {
            n if n < 126 => v.push(0x80 | n as u8),
            n if n <= 0xFFFF => {
                v.push(0x80 | 126);
                v.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                v.push(0x80 | 127);
                v.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        v.extend_from_slice(&mask);
        let mut p = payload.to_vec();
        unmask(&mut p, mask);
        v.extend_from_slice(&p);
        v
    }

    async fn read_all(bytes: Vec<u8>, max: usize) -> Vec<Result<Incoming, String>> {
        let mut reader = FrameReader::new(max, Vec::new());
        let mut src: &[u8] = &bytes;
        let mut out = Vec::new();
        loop {
            match reader.next(&mut src).await {
                Ok(Some(m)) => out.push(Ok(m)),
                Ok(None) => break,
                Err(e) => {
                    out.push(Err(format!("{}:{e}", e.close_code())));
                    break;
                }
            }
        }
        out
    }

    #[tokio::test]
    async fn reads_messages_of_every_size() {
        let big = "x".repeat(70_000);
        let mut bytes = client_frame(true, OP_TEXT, b"hello");
        bytes.extend(client_frame(true, OP_TEXT, "é".repeat(100).as_bytes()));
        bytes.extend(client_frame(true, OP_TEXT, big.as_bytes()));
        bytes.extend(client_frame(true, OP_PING, b"p"));
        bytes.extend(client_frame(false, OP_TEXT, b"frag"));
        bytes.extend(client_frame(true, OP_PONG, b""));
        bytes.extend(client_frame(true, OP_CONT, b"mented"));
        bytes.extend(client_frame(
            true,
            OP_CLOSE,
            &[0x03, 0xE8, b'b', b'y', b'e'],
        ));
        let got = read_all(bytes, 100_000).await;
        assert_eq!(
            got,
            vec![
                Ok(Incoming::Text("hello".into())),
                Ok(Incoming::Text("é".repeat(100))),
                Ok(Incoming::Text(big)),
                Ok(Incoming::Ping(b"p".to_vec())),
                Ok(Incoming::Pong),
                Ok(Incoming::Text("fragmented".into())),
                Ok(Incoming::Close(Some((1000, "bye".into())))),
            ]
        );
    }

    #[tokio::test]
    async fn rejects_protocol_violations() {
        let unmasked = vec![0x81, 0x02, b'h', b'i'];
        let mut rsv = client_frame(true, OP_TEXT, b"x");
        rsv[0] |= 0x40;
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (unmasked, "1002"),
            (rsv, "1002"),
            (client_frame(true, 0x3, b""), "1002"),
            (client_frame(true, OP_CONT, b"x"), "1002"),
            (client_frame(false, OP_PING, b""), "1002"),
            (client_frame(true, OP_PING, &[0; 126]), "1002"),
            (client_frame(true, OP_TEXT, &[0xff, 0xfe]), "1007"),
            (client_frame(true, OP_TEXT, &[b'a'; 101]), "1009"),
            (client_frame(true, OP_CLOSE, &[3]), "1002"),
            (
                [
                    client_frame(false, OP_TEXT, b"a"),
                    client_frame(true, OP_TEXT, b"b"),
                ]
                .concat(),
                "1002",
            ),
            (
                [
                    client_frame(false, OP_TEXT, &[b'a'; 60]),
                    client_frame(true, OP_CONT, &[b'a'; 60]),
                ]
                .concat(),
                "1009",
            ),
            (client_frame(true, OP_TEXT, b"abc")[..5].to_vec(), "1002"),
        ];
        for (bytes, code) in cases {
            let got = read_all(bytes.clone(), 100).await;
            let last = got.last().unwrap();
            assert!(
                matches!(last, Err(e) if e.starts_with(code)),
                "{bytes:?}: {got:?}"
            );
        }
    }

    #[tokio::test]
    async fn rejects_a_huge_length_before_reading_the_payload() {
        // Only the header of a frame claiming 2^40 bytes ever arrives.
        let mut bytes = vec![0x81, 0x80 | 127];
        bytes.extend_from_slice(&(1u64 << 40).to_be_bytes());
        bytes.extend_from_slice(&[1, 2, 3, 4]);
        let got = read_all(bytes, 65536).await;
        assert!(
            matches!(&got[0], Err(e) if e.starts_with("1009")),
            "{got:?}"
        );
    }

    #[tokio::test]
    async fn random_bytes_never_panic() {
        let mut x: u64 = 0x2545_F491_4F6C_DD1D;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let valid = client_frame(true, OP_TEXT, b"{\"type\":\"ping\"}");
        for round in 0..5_000 {
            let mut bytes = if round % 2 == 0 {
                valid.repeat(3)
            } else {
                Vec::new()
            };
            let n = (next() % 64) as usize;
            for _ in 0..n {
                let b = next() as u8;
                let at = (next() as usize) % (bytes.len() + 1);
                bytes.insert(at, b);
            }
            // Whatever comes back, it comes back without panicking, and
            // never buffers more than the limit plus a header.
            let mut reader = FrameReader::new(1024, Vec::new());
            let mut src: &[u8] = &bytes;
            while let Ok(Some(_)) = reader.next(&mut src).await {}
            assert!(
                reader.buf.capacity() <= 64 * 1024,
                "{}",
                reader.buf.capacity()
            );
        }
    }

    #[test]
    fn encodes_headers_of_every_length() {
        for len in [0usize, 125, 126, 65535, 65536, 100_000] {
            let payload = vec![b'a'; len];
            let f = text_frame_with(|v| v.extend_from_slice(&payload));
            let g = frame(OP_TEXT, &payload);
            assert_eq!(f, g, "len {len}");
            assert_eq!(f[0], 0x81);
            let hdr = f.len() - len;
            assert_eq!(
                hdr,
                if len < 126 {
                    2
                } else if len < 65536 {
                    4
                } else {
                    10
                }
            );
        }
        let c = close_frame(1000, &"é".repeat(100));
        assert!(c.len() <= 2 + 125);
        assert!(std::str::from_utf8(&c[4..]).is_ok());
    }
}
