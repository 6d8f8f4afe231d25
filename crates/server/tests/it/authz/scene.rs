//! The scene the authorization matrix plays in: [`Conn`], a WebSocket
//! that keeps every frame it receives (for the leak search) and tells what
//! became of a request ([`Seen`]), and [`World`], the shared rooms, direct
//! conversation and secrets, and the setting up of a fresh user in each
//! actor state.

use std::fmt;
use std::net::SocketAddr;

use serde_json::{Value, json};

use super::Actor;
use crate::util::*;

/// What a cell did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Seen {
    Reply(String),
    Error(String),
    /// The connection closed (`code`, or `None` without a close frame),
    /// after an `invalid_token` reply if `said` is set.
    Ended {
        code: Option<u16>,
        said: bool,
    },
}

impl fmt::Display for Seen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Seen::Reply(t) => write!(f, "reply {t}"),
            Seen::Error(c) => write!(f, "error {c}"),
            Seen::Ended { code, said } => {
                if *said {
                    f.write_str("error invalid_token, then ")?;
                }
                match code {
                    Some(c) => write!(f, "closed ({c})"),
                    None => f.write_str("closed without a close frame"),
                }
            }
        }
    }
}

/// A WebSocket that keeps every frame it receives, for the leak search.
pub(super) struct Conn {
    raw: Raw,
    next_id: u64,
    /// Every frame received, in order.
    pub(super) frames: Vec<Value>,
}

impl Conn {
    /// A new WebSocket that has said nothing yet.
    pub(super) async fn connect(addr: SocketAddr) -> Self {
        Self {
            raw: Raw::connect(addr).await,
            next_id: 0,
            frames: Vec::new(),
        }
    }

    /// A new WebSocket that has said `hello`.
    pub(super) async fn open(addr: SocketAddr) -> Self {
        let mut c = Self::connect(addr).await;
        let r = c.call(json!({"type": "hello", "version": 1})).await;
        assert_eq!(r, Seen::Reply("welcome".into()));
        c
    }

    /// Registers `name` on a new connection; returns it and the token.
    pub(super) async fn registered(addr: SocketAddr, name: &str) -> (Self, String) {
        let mut c = Self::open(addr).await;
        let reply = c
            .request(
                json!({"type": "register", "username": name, "password": password(name).expose()}),
            )
            .await;
        assert_eq!(reply["type"], "authed", "registering {name}: {reply}");
        let token = reply["token"].as_str().unwrap().to_owned();
        (c, token)
    }

    /// Registers `name` on a server whose sessions expire at once; returns
    /// the connection and the token. Its expiry watcher may close the
    /// connection before the `authed` reply is read (the session is expired
    /// from the start), or drop the new session before the login is
    /// finished, which the login answers `invalid_token` (in cluster mode
    /// the login reads the store first, a wider window: the matrix failed
    /// on the bus when this took only `authed`). Either is followed by a
    /// login on a new connection, until an `authed` gets through; so is a
    /// `server_busy` (a hash that waited past its deadline on a loaded
    /// machine).
    pub(super) async fn registered_expiring(addr: SocketAddr, name: &str) -> (Self, String) {
        let password = password(name);
        let mut req = json!({"type": "register", "username": name, "password": password.expose()});
        for _ in 0..20 {
            let mut c = Self::open(addr).await;
            match c.try_request(req.clone()).await {
                Some(reply)
                    if reply["code"] == "invalid_token" || reply["code"] == "server_busy" =>
                {
                    req = json!({"type": "login", "username": name, "password": password.expose()});
                }
                Some(reply) => {
                    assert_eq!(reply["type"], "authed", "registering {name}: {reply}");
                    let token = reply["token"].as_str().unwrap().to_owned();
                    return (c, token);
                }
                None => {
                    req = json!({"type": "login", "username": name, "password": password.expose()});
                }
            }
        }
        panic!("{name}: no login reply got through before the expiry watcher closed it");
    }

    /// Sends `v` and returns its reply (which must come).
    pub(super) async fn request(&mut self, v: Value) -> Value {
        self.try_request(v)
            .await
            .unwrap_or_else(|| panic!("the connection ended before the reply"))
    }

    /// Sends `v` and returns its reply, or `None` when the connection ends
    /// first.
    async fn try_request(&mut self, v: Value) -> Option<Value> {
        let id = self.send(v).await;
        loop {
            match tokio::time::timeout(WAIT, self.raw.next_raw()).await {
                Ok(Frame::Json(f)) => {
                    self.frames.push(f.clone());
                    if f["id"] == json!(id) {
                        return Some(f);
                    }
                }
                Ok(_) => return None,
                Err(_) => panic!("no reply in time"),
            }
        }
    }

    /// Sends `v` (a failed write is the server's close, read next).
    async fn send(&mut self, mut v: Value) -> u64 {
        self.next_id += 1;
        v["id"] = json!(self.next_id);
        let _ = self.raw.try_send_text(&v.to_string()).await;
        self.next_id
    }

    /// Sends `v` and reads until its reply or the connection's end.
    pub(super) async fn call(&mut self, v: Value) -> Seen {
        let id = self.send(v).await;
        let mut said = false;
        loop {
            let Ok(frame) = tokio::time::timeout(WAIT, self.raw.next_raw()).await else {
                return if said {
                    Seen::Error("invalid_token".into())
                } else {
                    panic!("neither a reply nor a close in time")
                };
            };
            match frame {
                Frame::Json(f) => {
                    self.frames.push(f.clone());
                    if f["id"] != json!(id) {
                        continue;
                    }
                    if f["type"] != "error" {
                        return Seen::Reply(f["type"].as_str().unwrap_or("?").into());
                    }
                    if f["code"] == "invalid_token" {
                        // The close that ends the session follows.
                        said = true;
                        continue;
                    }
                    return Seen::Error(f["code"].as_str().unwrap_or("?").into());
                }
                Frame::Close(code) => {
                    return Seen::Ended {
                        code: Some(code),
                        said,
                    };
                }
                Frame::End => return Seen::Ended { code: None, said },
            }
        }
    }

    /// Reads everything queued before now: `ping` goes out after any
    /// frame already in this connection's queue.
    pub(super) async fn drain(&mut self) {
        let r = self.call(json!({"type": "ping"})).await;
        assert_eq!(r, Seen::Reply("pong".into()));
    }

    /// Frames (errors aside) that carry any of `words`.
    pub(super) fn carrying(&self, words: &[&str]) -> Vec<String> {
        self.frames
            .iter()
            .filter(|f| f["type"] != "error")
            .map(Value::to_string)
            .filter(|s| words.iter().any(|w| s.contains(w)))
            .collect()
    }
}

/// The shared scene on the main server: alice owns the private room
/// `vault` and the public room `square`, and has a direct conversation
/// with bob; each holds a secret. `dave` is someone to invite.
pub(super) struct World {
    addr: SocketAddr,
    /// alice, logged in.
    pub(super) alice: Conn,
    /// bob, logged in.
    pub(super) bob: Conn,
}

impl World {
    /// Only `dave`, someone to invite, on a server where the scene cannot
    /// be built: its sessions expire at once. alice and bob are
    /// connections that said `hello`, never used.
    pub(super) async fn bare(addr: SocketAddr) -> Self {
        Conn::registered(addr, "dave").await;
        Self {
            addr,
            alice: Conn::open(addr).await,
            bob: Conn::open(addr).await,
        }
    }

    pub(super) async fn build(addr: SocketAddr) -> Self {
        let (mut alice, _) = Conn::registered(addr, "alice").await;
        let (bob, _) = Conn::registered(addr, "bob").await;
        Conn::registered(addr, "dave").await;
        for (room, visibility) in [("vault", "private"), ("square", "public")] {
            let r = alice
                .call(json!({"type": "create_room", "room": room, "visibility": visibility}))
                .await;
            assert_eq!(r, Seen::Reply("joined".into()));
        }
        // alice's key backup, version 1 (the server's first), with one
        // sealed key that no one else may read.
        let r = alice
            .call(
                json!({"type": "create_backup", "algorithm": "chatus.backup.v1",
                         "key_check": BACKUP_KEY}),
            )
            .await;
        assert_eq!(r, Seen::Reply("backup".into()));
        let r = alice
            .call(json!({"type": "put_backup_keys", "version": 1,
                         "keys": [backup_entry(BACKUP_SECRET)]}))
            .await;
        assert_eq!(r, Seen::Reply("backup_stored".into()));
        let mut w = Self { addr, alice, bob };
        w.post("VAULT-SECRET", "SQUARE-NOTE", "DM-SECRET", "DM-ANSWER")
            .await;
        w
    }

    /// alice posts in `vault`, in `square` and to bob, and bob answers her.
    pub(super) async fn post(&mut self, vault: &str, square: &str, dm: &str, answer: &str) {
        for (from_alice, to, body) in [
            (true, json!({"room": "vault"}), vault),
            (true, json!({"room": "square"}), square),
            (true, json!({"peer": "bob"}), dm),
            (false, json!({"peer": "alice"}), answer),
        ] {
            let who = if from_alice {
                &mut self.alice
            } else {
                &mut self.bob
            };
            let mut req = json!({"type": "send", "body": body, "client_id": body});
            merge(&mut req, &to);
            assert_eq!(who.call(req).await, Seen::Reply("sent".into()));
        }
    }

    /// Puts a fresh user `name` in `actor`'s place; returns the actor's
    /// connection and its token.
    pub(super) async fn actor(&mut self, actor: Actor, name: &str) -> (Conn, String) {
        let addr = self.addr;
        match actor {
            Actor::Outsider | Actor::PublicOutsider | Actor::ThirdParty => {
                Conn::registered(addr, name).await
            }
            Actor::Expired => Conn::registered_expiring(addr, name).await,
            Actor::Invited => {
                let c = Conn::registered(addr, name).await;
                self.invite(name).await;
                c
            }
            Actor::Member | Actor::Former | Actor::RevokedElsewhere | Actor::RevokedEverywhere => {
                let (mut c, token) = Conn::registered(addr, name).await;
                self.invite(name).await;
                let r = c.call(json!({"type": "join_room", "room": "vault"})).await;
                assert_eq!(r, Seen::Reply("joined".into()));
                if actor == Actor::Member {
                    return (c, token);
                }
                if actor == Actor::Former {
                    let r = c.call(json!({"type": "leave_room", "room": "vault"})).await;
                    assert_eq!(r, Seen::Reply("ok".into()));
                    return (c, token);
                }
                let mut other = Conn::open(addr).await;
                let login = if actor == Actor::RevokedElsewhere {
                    json!({"type": "auth", "token": token})
                } else {
                    json!({"type": "login", "username": name, "password": password(name).expose()})
                };
                assert_eq!(other.call(login).await, Seen::Reply("authed".into()));
                let everywhere = actor == Actor::RevokedEverywhere;
                let r = other
                    .call(json!({"type": "logout", "everywhere": everywhere}))
                    .await;
                assert_eq!(r, Seen::Reply("ok".into()));
                (c, token)
            }
            Actor::LoggedOut => {
                let (_, token) = Conn::registered(addr, name).await;
                (Conn::open(addr).await, token)
            }
            Actor::NoHello => {
                let (_, token) = Conn::registered(addr, name).await;
                (Conn::connect(addr).await, token)
            }
        }
    }

    async fn invite(&mut self, name: &str) {
        let r = self
            .alice
            .call(json!({"type": "invite", "room": "vault", "user": name}))
            .await;
        assert_eq!(r, Seen::Reply("ok".into()), "inviting {name}");
    }
}

pub(super) fn merge(into: &mut Value, from: &Value) {
    into.as_object_mut()
        .unwrap()
        .extend(from.as_object().unwrap().clone());
}

/// A well-formed key (32 bytes of unpadded base64), for the backup's slots.
const BACKUP_KEY: &str = "3p7bfXt9wbTTW2HC7OQ1Nz+DQ8hbeGdNrfx+FG+IK08";

/// The sealed key in alice's backup: no frame another actor receives may
/// carry it.
pub(super) const BACKUP_SECRET: &str = "ALICEBACKUPSECRET";

/// A backup entry sealing `sealed` (base64 text), in `room:vault`.
pub(super) fn backup_entry(sealed: &str) -> Value {
    json!({"conversation": "room:vault", "sender_key": BACKUP_KEY, "session_id": BACKUP_KEY,
           "first_known_index": 0, "sealed": sealed})
}
