//! The crash run's clients: each sender is one user with one connection
//! ([`Link`]) that keeps a window of sends in flight, records every
//! acknowledgement, and keeps its own view of each conversation the way a
//! correct client would (live events in `seq` order; after a reconnect,
//! unacknowledged sends again with the same `client_id`, then `history`
//! after its cursor).
//!
//! What a sender sees that breaks a promise is a violation, written down
//! with the conversation and `seq`; what merely stops it (the server was
//! killed) is not.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fmt;
use std::net::SocketAddr;

use anyhow::{Context as _, anyhow, bail};
use serde_json::{Value, json};

use super::rng::Rng;
use crate::ws;

/// Most messages asked for per `history` page.
const PAGE: u64 = 200;
/// Request ids of calls other than sends start here; a send's id is its
/// message number, far below.
const CALL_IDS: u64 = 1 << 40;

/// A conversation, named the same way from either side.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Conv {
    /// A room.
    Room(String),
    /// The direct conversation of two users (names in order).
    Dm(String, String),
}

impl Conv {
    /// The direct conversation of `a` and `b`.
    pub fn dm(a: &str, b: &str) -> Self {
        let (a, b) = (a.to_ascii_lowercase(), b.to_ascii_lowercase());
        if a <= b {
            Conv::Dm(a, b)
        } else {
            Conv::Dm(b, a)
        }
    }

    /// The request field naming this conversation for user `me`.
    fn field(&self, me: &str) -> (&'static str, String) {
        match self {
            Conv::Room(r) => ("room", r.clone()),
            Conv::Dm(a, b) => ("peer", if a == me { b.clone() } else { a.clone() }),
        }
    }

    /// The conversation a server object (event or reply) names, as seen
    /// by user `me`.
    fn of(v: &Value, me: &str) -> Option<Self> {
        if let Some(r) = v["room"].as_str() {
            return Some(Conv::Room(r.to_owned()));
        }
        v["peer"].as_str().map(|p| Conv::dm(me, p))
    }

    /// Whether `user` takes part (every sender is in every room).
    pub fn has(&self, user: &str) -> bool {
        match self {
            Conv::Room(_) => true,
            Conv::Dm(a, b) => a == user || b == user,
        }
    }
}

impl fmt::Display for Conv {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Conv::Room(r) => write!(f, "room {r}"),
            Conv::Dm(a, b) => write!(f, "dm {a}/{b}"),
        }
    }
}

/// Which message: sender index and the sender's message number. Every body
/// starts with it, so a history page says which send each message is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Tag {
    /// The sender's index.
    pub sender: usize,
    /// The sender's message number (from 1).
    pub n: u64,
}

impl Tag {
    /// The `client_id` of this message (and the start of its body).
    pub fn client_id(self) -> String {
        format!("s{}-{}", self.sender, self.n)
    }

    /// Reads the tag at the start of a body.
    pub fn parse(body: &str) -> Option<Self> {
        let id = body.split(' ').next()?.strip_prefix('s')?;
        let (s, n) = id.split_once('-')?;
        Some(Tag {
            sender: s.parse().ok()?,
            n: n.parse().ok()?,
        })
    }
}

impl fmt::Display for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.client_id())
    }
}

/// The user name of sender `i`.
pub fn user_name(i: usize) -> String {
    format!("crash{i}")
}

/// One logged-in connection, keeping every frame it has not yet handed out.
pub struct Link {
    r: ws::Reader,
    w: ws::Writer,
    inbox: VecDeque<Value>,
    next_call: u64,
}

impl Link {
    /// Connects, says hello, and logs in with `token`.
    pub async fn connect(addr: SocketAddr, token: &str) -> anyhow::Result<Self> {
        let (r, w) = ws::connect(addr, None).await?;
        let mut link = Link {
            r,
            w,
            inbox: VecDeque::new(),
            next_call: CALL_IDS,
        };
        link.call(json!({"type":"hello","version":1})).await?;
        link.call(json!({"type":"auth","token":token})).await?;
        Ok(link)
    }

    /// Reads what has arrived into the inbox; false once the connection
    /// is gone (closed, reset, or the server killed).
    async fn fill(&mut self) -> bool {
        let mut got = Vec::new();
        let open = self
            .r
            .read_batch(|p| {
                if let Ok(v) = serde_json::from_slice::<Value>(p) {
                    got.push(v);
                }
            })
            .await
            .unwrap_or(false);
        self.inbox.extend(got);
        open
    }

    /// Sends `req` and returns its reply (an `error` reply is an error);
    /// frames that arrive meanwhile stay in the inbox.
    pub async fn call(&mut self, mut req: Value) -> anyhow::Result<Value> {
        self.next_call += 1;
        let id = self.next_call;
        req["id"] = json!(id);
        self.w.text(req.to_string().as_bytes());
        self.w.flush().await?;
        loop {
            if let Some(i) = self.inbox.iter().position(|v| v["id"] == json!(id)) {
                let v = self.inbox.remove(i).ok_or_else(|| anyhow!("inbox"))?;
                if v["type"] == "error" {
                    bail!("the server refused {}: {v}", req["type"]);
                }
                return Ok(v);
            }
            if !self.fill().await {
                bail!("the connection closed while waiting for {}", req["type"]);
            }
        }
    }
}

/// Counts kept by a sender.
#[derive(Debug, Clone, Default)]
pub struct Counts {
    /// Sends acknowledged while under load.
    pub acked: u64,
    /// Sends answered with an error while under load.
    pub errors: u64,
    /// Unacknowledged sends sent again after a restart.
    pub resent: u64,
    /// Of those, the ones the server had stored before it was killed
    /// (answered `duplicate: true` with their original `seq`).
    pub resent_stored: u64,
}

/// One sending user and everything it knows.
pub struct Sender {
    /// Its index (its name is [`user_name`]).
    pub index: usize,
    /// Its name.
    pub name: String,
    /// Its session token.
    pub token: String,
    /// The conversations it writes to and reads.
    pub convs: Vec<Conv>,
    rng: Rng,
    next_n: u64,
    /// Sent and not acknowledged: message number → conversation.
    pub pending: BTreeMap<u64, Conv>,
    /// Acknowledged: message number → (conversation, seq).
    pub acked: HashMap<u64, (Conv, u64)>,
    /// What this client has accepted in each conversation, in `seq`
    /// order: `view[c][i]` is the message with `seq` i + 1.
    pub views: HashMap<Conv, Vec<Tag>>,
    /// Sends answered with an error: they may be stored out of order after
    /// their resend, so the order check leaves them out.
    pub refused: Vec<u64>,
    /// Counts for the summary.
    pub counts: Counts,
    /// Broken promises seen by this client.
    pub violations: Vec<String>,
}

impl Sender {
    /// A sender with nothing sent yet.
    pub fn new(index: usize, token: String, convs: Vec<Conv>, rng: Rng) -> Self {
        let views = convs.iter().map(|c| (c.clone(), Vec::new())).collect();
        Self {
            index,
            name: user_name(index),
            token,
            convs,
            rng,
            next_n: 1,
            pending: BTreeMap::new(),
            acked: HashMap::new(),
            views,
            refused: Vec::new(),
            counts: Counts::default(),
            violations: Vec::new(),
        }
    }

    fn violation(&mut self, what: impl fmt::Display) {
        // Enough to diagnose; a broken server could otherwise fill memory.
        if self.violations.len() < 100 {
            self.violations.push(format!("{}: {what}", self.name));
        }
    }

    /// Queues a send of message `n` to `conv` (its id is `n`).
    fn queue_send(&mut self, w: &mut ws::Writer, n: u64, conv: &Conv) {
        let tag = Tag {
            sender: self.index,
            n,
        };
        let filler = "x".repeat(self.rng.below(48));
        let (field, name) = conv.field(&self.name);
        let mut req = json!({
            "type": "send",
            "body": format!("{tag} {filler}"),
            "client_id": tag.client_id(),
            "id": n,
        });
        req[field] = json!(name);
        w.text(req.to_string().as_bytes());
    }

    /// Handles a `sent` or `error` reply to send `n`; returns whether it
    /// was one. `resend` marks the replies to sends made again after a
    /// restart, which may rightly be duplicates.
    fn on_reply(&mut self, v: &Value, resend: bool) -> bool {
        let Some(n) = v["id"].as_u64().filter(|&n| n < CALL_IDS) else {
            return false;
        };
        let Some(conv) = self.pending.get(&n).cloned() else {
            self.violation(format!("a reply to send {n}, which is not pending: {v}"));
            return true;
        };
        let tag = Tag {
            sender: self.index,
            n,
        };
        match v["type"].as_str() {
            Some("sent") => {
                let (Some(seq), Some(duplicate)) = (v["seq"].as_u64(), v["duplicate"].as_bool())
                else {
                    self.violation(format!("a malformed sent reply: {v}"));
                    return true;
                };
                if Conv::of(v, &self.name).as_ref() != Some(&conv)
                    || v["client_id"].as_str() != Some(tag.client_id().as_str())
                {
                    self.violation(format!("{tag} to {conv} was acknowledged as {v}"));
                }
                if duplicate && !resend {
                    self.violation(format!(
                        "{tag}, sent once, was acknowledged as a duplicate (seq {seq})"
                    ));
                }
                self.pending.remove(&n);
                self.acked.insert(n, (conv, seq));
                if resend {
                    self.counts.resent_stored += u64::from(duplicate);
                } else {
                    self.counts.acked += 1;
                }
            }
            _ => {
                if resend {
                    self.violation(format!("{tag} to {conv}, sent again, was refused: {v}"));
                } else {
                    self.counts.errors += 1;
                }
                self.refused.push(n);
            }
        }
        true
    }

    /// Accepts a live `message` event. After catching up, a client must
    /// get each conversation's messages once each, in `seq` order: the
    /// next one is always its cursor plus one.
    fn on_live(&mut self, v: &Value, catching_up: bool) {
        let Some(conv) = Conv::of(v, &self.name) else {
            return;
        };
        let (Some(seq), Some(body)) = (v["seq"].as_u64(), v["body"].as_str()) else {
            self.violation(format!("a malformed message event: {v}"));
            return;
        };
        let Some(tag) = Tag::parse(body) else {
            if self.views.contains_key(&conv) {
                self.violation(format!("a message in {conv} not sent by this run: {v}"));
            }
            return;
        };
        let Some(view) = self.views.get_mut(&conv) else {
            // A conversation this sender does not follow (the lobby).
            return;
        };
        let cursor = view.len() as u64;
        if seq == cursor + 1 {
            view.push(tag);
        } else if seq <= cursor && catching_up {
            // Delivered live while history was being paged: a client drops
            // what its cursor has passed.
        } else {
            self.violation(format!(
                "in {conv}, live delivery of seq {seq} ({tag}) came after seq {cursor}"
            ));
        }
    }

    /// Sends under load until the connection is gone (the server killed),
    /// keeping `window` sends in flight.
    pub async fn load(&mut self, link: &mut Link, window: usize) {
        let mut in_flight = 0usize;
        loop {
            while in_flight < window {
                let n = self.next_n;
                self.next_n += 1;
                let conv = self.convs[self.rng.below(self.convs.len())].clone();
                self.queue_send(&mut link.w, n, &conv);
                self.pending.insert(n, conv);
                in_flight += 1;
            }
            if link.w.flush().await.is_err() || !link.fill().await {
                return;
            }
            while let Some(v) = link.inbox.pop_front() {
                if self.on_reply(&v, false) {
                    in_flight = in_flight.saturating_sub(1);
                } else if v["type"] == "message" {
                    self.on_live(&v, false);
                }
            }
        }
    }

    /// After a restart: logs in again and sends every unacknowledged
    /// message again with the same `client_id`, waiting for each reply.
    /// Events that arrive meanwhile stay in the inbox for [`Self::catch_up`].
    pub async fn resend(&mut self, addr: SocketAddr) -> anyhow::Result<Link> {
        let mut link = Link::connect(addr, &self.token)
            .await
            .with_context(|| format!("{} could not log in again", self.name))?;
        let again: Vec<(u64, Conv)> = self.pending.iter().map(|(n, c)| (*n, c.clone())).collect();
        for (n, conv) in &again {
            self.queue_send(&mut link.w, *n, conv);
        }
        link.w.flush().await?;
        self.counts.resent += again.len() as u64;
        let mut waiting = again.len();
        let mut kept = VecDeque::new();
        while waiting > 0 {
            if !link.fill().await {
                bail!("{}: the connection closed while sending again", self.name);
            }
            while let Some(v) = link.inbox.pop_front() {
                if self.on_reply(&v, true) {
                    waiting -= 1;
                } else {
                    kept.push_back(v);
                }
            }
        }
        link.inbox = kept;
        Ok(link)
    }

    /// Pages `history` after its cursor in every conversation until
    /// nothing more is there, then applies the live events that arrived
    /// meanwhile (dropping what the cursor passed).
    pub async fn catch_up(&mut self, link: &mut Link) -> anyhow::Result<()> {
        for conv in self.convs.clone() {
            let (field, name) = conv.field(&self.name);
            loop {
                let cursor = self.views.get(&conv).map_or(0, Vec::len) as u64;
                let mut req = json!({"type":"history","after":cursor,"limit":PAGE});
                req[field] = json!(name);
                let page = link.call(req).await?;
                let more = page["more"].as_bool() == Some(true);
                let msgs = page["messages"].as_array().cloned().unwrap_or_default();
                let mut next = cursor + 1;
                for m in &msgs {
                    let seq = m["seq"].as_u64().unwrap_or(0);
                    let tag = m["body"].as_str().and_then(Tag::parse);
                    match tag {
                        Some(tag) if seq == next => {
                            if let Some(v) = self.views.get_mut(&conv) {
                                v.push(tag);
                            }
                            next += 1;
                        }
                        _ => {
                            self.violation(format!(
                                "in {conv}, history after {cursor} gave {m} where seq {next} was due"
                            ));
                            return Ok(());
                        }
                    }
                }
                if !more {
                    break;
                }
                if msgs.is_empty() {
                    bail!("{}: an empty history page said more: {page}", self.name);
                }
            }
        }
        let waiting: Vec<Value> = link.inbox.drain(..).collect();
        for v in waiting {
            if v["type"] == "message" {
                self.on_live(&v, true);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_and_conversations_read_back() {
        let t = Tag { sender: 3, n: 41 };
        assert_eq!(Tag::parse(&format!("{t} xxxx")), Some(t));
        assert_eq!(Tag::parse(&t.client_id()), Some(t));
        assert_eq!(Tag::parse("hello"), None);
        assert_eq!(Conv::dm("crash2", "Crash1"), Conv::dm("crash1", "crash2"));
        let dm = Conv::dm("crash1", "crash2");
        assert_eq!(dm.field("crash1"), ("peer", "crash2".to_owned()));
        assert_eq!(
            Conv::of(&json!({"peer":"Crash1"}), "crash2"),
            Some(dm.clone())
        );
        assert!(dm.has("crash2") && !dm.has("crash3"));
    }

    fn sender() -> Sender {
        let convs = vec![Conv::Room("r".into())];
        Sender::new(0, "t".into(), convs, Rng::new(1))
    }

    #[test]
    fn a_skipped_or_repeated_live_message_is_a_violation() {
        let mut s = sender();
        let ev = |seq: u64, n: u64| json!({"type":"message","room":"r","seq":seq,"sender":"crash0","body":format!("s0-{n} x")});
        s.on_live(&ev(1, 1), false);
        s.on_live(&ev(2, 2), false);
        assert!(s.violations.is_empty());
        s.on_live(&ev(2, 2), false);
        s.on_live(&ev(4, 4), false);
        assert_eq!(s.violations.len(), 2, "{:?}", s.violations);
        // While catching up, what the cursor passed is dropped quietly.
        let mut s = sender();
        s.on_live(&ev(1, 1), false);
        s.on_live(&ev(1, 1), true);
        assert!(s.violations.is_empty());
    }

    #[test]
    fn a_fresh_send_acknowledged_as_a_duplicate_is_a_violation() {
        let mut s = sender();
        s.pending.insert(1, Conv::Room("r".into()));
        s.pending.insert(2, Conv::Room("r".into()));
        let sent = |n: u64, dup: bool| json!({"type":"sent","id":n,"room":"r","client_id":format!("s0-{n}"),"seq":n,"duplicate":dup});
        assert!(s.on_reply(&sent(1, false), false));
        assert!(s.violations.is_empty());
        assert!(s.on_reply(&sent(2, true), false));
        assert_eq!(s.violations.len(), 1);
        assert_eq!(s.acked.len(), 2);
        assert!(s.pending.is_empty());
    }
}
