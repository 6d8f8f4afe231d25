//! Driving ChatUs: accounts and rooms for a run, connections that log in
//! with a token and join, and the two hot-path operations (send, and pick
//! deliveries out of the frames that arrive).

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use anyhow::{Context as _, anyhow, bail};
use serde_json::{Value, json};

use crate::ws;

/// One account usable by the benchmark.
#[derive(Debug, Clone)]
pub struct Account {
    /// The name.
    pub name: String,
    /// A session token.
    pub token: String,
}

/// Reads frames until one has `"id": id`; returns it as JSON.
async fn reply(r: &mut ws::Reader, id: u64) -> anyhow::Result<Value> {
    let mut found = None;
    while found.is_none() {
        let open = r
            .read_batch(|p| {
                if found.is_none()
                    && let Ok(v) = serde_json::from_slice::<Value>(p)
                    && v["id"] == json!(id)
                {
                    found = Some(v);
                }
            })
            .await?;
        if !open && found.is_none() {
            bail!("connection closed while waiting for reply {id}");
        }
    }
    found.ok_or_else(|| anyhow!("no reply"))
}

/// A logged-in connection.
pub struct Conn {
    /// Frames in.
    pub r: ws::Reader,
    /// Frames out.
    pub w: ws::Writer,
    /// Who.
    pub name: String,
}

async fn call(
    r: &mut ws::Reader,
    w: &mut ws::Writer,
    id: u64,
    mut req: Value,
) -> anyhow::Result<Value> {
    req["id"] = json!(id);
    w.text(req.to_string().as_bytes());
    w.flush().await?;
    let v = reply(r, id).await?;
    if v["type"] == "error" {
        bail!("server refused {}: {}", req["type"], v["message"]);
    }
    Ok(v)
}

/// Sends one request and returns its reply, an `error` included.
pub async fn ask(
    r: &mut ws::Reader,
    w: &mut ws::Writer,
    id: u64,
    mut req: Value,
) -> anyhow::Result<Value> {
    req["id"] = json!(id);
    w.text(req.to_string().as_bytes());
    w.flush().await?;
    reply(r, id).await
}

/// Connects (from `local`, when given) and says hello.
pub async fn hello(
    addr: SocketAddr,
    local: Option<IpAddr>,
) -> anyhow::Result<(ws::Reader, ws::Writer)> {
    let (mut r, mut w) = ws::connect(addr, local).await?;
    call(&mut r, &mut w, 1, json!({"type":"hello","version":1})).await?;
    Ok((r, w))
}

/// The password every benchmark account is registered with.
pub const PASSWORD: &str = "bench-password";

/// Connects, says hello and logs in with the token; joins `room` if given.
pub async fn login(
    addr: SocketAddr,
    local: Option<IpAddr>,
    account: &Account,
    room: Option<&str>,
) -> anyhow::Result<Conn> {
    let (mut r, mut w) = ws::connect(addr, local).await?;
    call(&mut r, &mut w, 1, json!({"type":"hello","version":1})).await?;
    call(
        &mut r,
        &mut w,
        2,
        json!({"type":"auth","token":account.token}),
    )
    .await?;
    if let Some(room) = room {
        call(&mut r, &mut w, 3, json!({"type":"join_room","room":room})).await?;
    }
    Ok(Conn {
        r,
        w,
        name: account.name.clone(),
    })
}

/// Registers accounts `{prefix}{first}` up to (not including) `{prefix}{end}`,
/// `parallel` at a time.
pub async fn register_accounts(
    addr: SocketAddr,
    prefix: &str,
    first: usize,
    end: usize,
    parallel: usize,
) -> anyhow::Result<Vec<Account>> {
    let count = end;
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(first));
    let mut tasks = Vec::new();
    for _ in 0..parallel.max(1) {
        let next = next.clone();
        let prefix = prefix.to_owned();
        tasks.push(tokio::spawn(async move {
            let mut out = Vec::new();
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= count {
                    return Ok::<_, anyhow::Error>(out);
                }
                let name = format!("{prefix}{i}");
                let (mut r, mut w) = ws::connect(addr, None).await?;
                call(&mut r, &mut w, 1, json!({"type":"hello","version":1})).await?;
                let v = call(
                    &mut r,
                    &mut w,
                    2,
                    json!({"type":"register","username":name,"password":PASSWORD}),
                )
                .await
                .with_context(|| format!("registering {name}"))?;
                let token = v["token"]
                    .as_str()
                    .ok_or_else(|| anyhow!("no token"))?
                    .to_owned();
                out.push((i, Account { name, token }));
            }
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await??);
    }
    all.sort_by_key(|(i, _)| *i);
    Ok(all.into_iter().map(|(_, a)| a).collect())
}

/// Creates a room as `owner` (public; joining adds members).
pub async fn create_room(
    addr: SocketAddr,
    owner: &Account,
    room: &str,
    private: bool,
) -> anyhow::Result<()> {
    let mut c = login(addr, None, owner, None).await?;
    let vis = if private { "private" } else { "public" };
    call(
        &mut c.r,
        &mut c.w,
        10,
        json!({"type":"create_room","room":room,"visibility":vis}),
    )
    .await?;
    Ok(())
}

/// Where a benchmark message goes.
#[derive(Debug, Clone)]
pub enum To {
    /// A room.
    Room(String),
    /// A user.
    Peer(String),
}

/// Client ids are unique per process: a sender that reused one would be
/// answered `duplicate` and its message not delivered again.
static NEXT_CLIENT_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

/// Queues a `send` whose body starts with the timestamp.
pub fn queue_send(w: &mut ws::Writer, to: &To, body: &[u8]) {
    queue_send_id(w, to, body);
}

/// [`queue_send`], returning the number in the `client_id` (`b<number>`)
/// that the `sent` acknowledgement echoes ([`ack_client_id`]).
pub fn queue_send_id(w: &mut ws::Writer, to: &To, body: &[u8]) -> u64 {
    let client_id = NEXT_CLIENT_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let (field, name) = match to {
        To::Room(r) => ("room", r.as_str()),
        To::Peer(p) => ("peer", p.as_str()),
    };
    let mut frame = Vec::with_capacity(body.len() + 96);
    frame.extend_from_slice(br#"{"type":"send",""#);
    frame.extend_from_slice(field.as_bytes());
    frame.extend_from_slice(br#"":""#);
    frame.extend_from_slice(name.as_bytes());
    frame.extend_from_slice(br#"","body":""#);
    frame.extend_from_slice(body);
    frame.extend_from_slice(br#"","client_id":"b"#);
    frame.extend_from_slice(client_id.to_string().as_bytes());
    frame.extend_from_slice(br#""}"#);
    w.text(&frame);
    client_id
}

/// If the frame is a `sent` acknowledgement of a send queued here, the
/// number in its `client_id`.
pub fn ack_client_id(payload: &[u8]) -> Option<u64> {
    if !is_ack(payload) {
        return None;
    }
    const KEY: &[u8] = br#""client_id":"b"#;
    let at = payload.windows(KEY.len()).position(|w| w == KEY)? + KEY.len();
    let digits = payload.get(at..)?;
    let end = digits.iter().position(|d| !d.is_ascii_digit())?;
    if end == 0 {
        return None;
    }
    parse_stamp(&digits[..end])
}

/// If the frame is a `message` event, its body's leading timestamp.
pub fn delivery(payload: &[u8]) -> Option<u64> {
    if !payload.starts_with(br#"{"type":"message""#) {
        return None;
    }
    let at = payload.windows(8).position(|w| w == br#""body":""#)? + 8;
    parse_stamp(payload.get(at..at + 20)?)
}

/// True for a `sent` acknowledgement.
pub fn is_ack(payload: &[u8]) -> bool {
    payload.starts_with(br#"{"type":"sent""#)
}

/// Parses the 20-digit timestamp that starts every benchmark body.
pub fn parse_stamp(digits: &[u8]) -> Option<u64> {
    let mut v: u64 = 0;
    for d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
    }
    Some(v)
}

/// A body of `size` bytes (at least 20) starting with the timestamp.
pub fn body(stamp: u64, size: usize) -> Vec<u8> {
    let mut b = format!("{stamp:020}").into_bytes();
    b.resize(size.max(20), b'x');
    b
}

/// Drains and counts acknowledgements (for senders).
pub async fn count_acks(r: &mut ws::Reader) -> io::Result<(bool, u64)> {
    let mut n = 0;
    let open = r
        .read_batch(|p| {
            if is_ack(p) {
                n += 1;
            }
        })
        .await?;
    Ok((open, n))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_stamp_in_a_message_frame() {
        let b = body(123_456_789, 100);
        assert_eq!(b.len(), 100);
        let frame = format!(
            r#"{{"type":"message","room":"r","seq":1,"sender":"u","body":"{}","time":5}}"#,
            String::from_utf8(b).unwrap()
        );
        assert_eq!(delivery(frame.as_bytes()), Some(123_456_789));
        assert_eq!(
            delivery(br#"{"type":"presence","user":"u","online":true}"#),
            None
        );
        assert!(is_ack(br#"{"type":"sent","id":1}"#));
        assert_eq!(
            ack_client_id(br#"{"type":"sent","room":"r","client_id":"b42","seq":7,"time":5}"#),
            Some(42)
        );
        assert_eq!(ack_client_id(br#"{"type":"sent","client_id":"b"}"#), None);
        assert_eq!(
            ack_client_id(br#"{"type":"message","client_id":"b4"}"#),
            None
        );
    }
}
