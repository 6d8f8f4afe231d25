//! The authorization matrix: every request type × every state an actor
//! can be in towards its target, each cell run against a real server and
//! compared with [`TABLE`], the expected outcome written down as data.
//! A cell that disagrees is reported with the request sent, the outcome
//! expected and the outcome seen, all disagreements at once.
//!
//! Besides the outcome, nothing may be readable outside the table: every
//! frame an actor receives (setup included, errors excepted, since they
//! echo the name asked for) is searched for the secrets of conversations
//! the actor is not in, and for the name of the private room it may not
//! know of; a refused `send` is stored nowhere. [`nothing_leaks_to_those_outside`]
//! then checks live fan-out, room and conversation lists and direct
//! conversations as seen by each outsider, with a member as the control.

mod scene;

use std::fmt;

use chatus_client::protocol::Request;
use chatus_client::protocol::history::Page;
use serde_json::{Value, json};

use crate::util::*;
use scene::{Seen, World, merge};

/// Where the actor stands towards the request's target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Actor {
    /// A member of the private room `vault`.
    Member,
    /// Neither in nor invited to the private room `vault`.
    Outsider,
    /// Not in the public room `square`.
    PublicOutsider,
    /// Invited to `vault`, not joined.
    Invited,
    /// Joined `vault`, then left it.
    Former,
    /// Neither party of the direct conversation between alice and bob;
    /// addresses it by `peer` (its rooms are the lobby, where all three
    /// are).
    ThirdParty,
    /// A connection that said `hello` and has not logged in (the account
    /// exists).
    LoggedOut,
    /// A connection that has not said `hello` yet (the account exists).
    NoHello,
    /// A member of `vault` whose token was revoked by `logout` on another
    /// connection holding the same token.
    RevokedElsewhere,
    /// A member of `vault` whose sessions were all revoked by
    /// `logout` with `everywhere` from another session.
    RevokedEverywhere,
    /// Logged in on a server whose sessions expire at once
    /// (`session_ttl_days = 0`); its target is the lobby, which a live
    /// session could use.
    Expired,
}

/// The table's columns, in order.
const ACTORS: [Actor; 11] = [
    Actor::Member,
    Actor::Outsider,
    Actor::PublicOutsider,
    Actor::Invited,
    Actor::Former,
    Actor::ThirdParty,
    Actor::LoggedOut,
    Actor::NoHello,
    Actor::RevokedElsewhere,
    Actor::RevokedEverywhere,
    Actor::Expired,
];

impl fmt::Display for Actor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Actor::Member => "member",
            Actor::Outsider => "outsider (private room)",
            Actor::PublicOutsider => "outsider (public room)",
            Actor::Invited => "invited, not joined",
            Actor::Former => "former member",
            Actor::ThirdParty => "third party to a DM",
            Actor::LoggedOut => "logged out",
            Actor::NoHello => "before hello",
            Actor::RevokedElsewhere => "revoked (logout elsewhere)",
            Actor::RevokedEverywhere => "revoked (logout everywhere)",
            Actor::Expired => "expired session",
        })
    }
}

impl Actor {
    /// The room named by room requests.
    fn room(self) -> &'static str {
        match self {
            Actor::PublicOutsider => "square",
            Actor::ThirdParty | Actor::Expired => "lobby",
            _ => "vault",
        }
    }

    /// The conversation named by `send`, `history` and `mark_read`.
    fn conv(self) -> Value {
        match self {
            Actor::ThirdParty => json!({"peer": "bob"}),
            _ => json!({"room": self.room()}),
        }
    }

    /// The user named by `invite`.
    fn invitee(self) -> &'static str {
        match self {
            Actor::ThirdParty => "bob",
            _ => "dave",
        }
    }

    /// Text that must appear in no frame this actor receives (errors
    /// aside): the secrets of conversations it is not in, and the private
    /// room's name where it may not know of the room.
    fn forbidden(self) -> &'static [&'static str] {
        const DM_AND_SQUARE: &[&str] = &[
            "DM-SECRET",
            "DM-ANSWER",
            "SQUARE-NOTE",
            scene::BACKUP_SECRET,
        ];
        const ALL_SECRETS: &[&str] = &[
            "DM-SECRET",
            "DM-ANSWER",
            "SQUARE-NOTE",
            "VAULT-SECRET",
            scene::BACKUP_SECRET,
        ];
        const UNKNOWN_VAULT: &[&str] = &[
            scene::BACKUP_SECRET,
            "DM-SECRET",
            "DM-ANSWER",
            "SQUARE-NOTE",
            "VAULT-SECRET",
            "vault",
        ];
        match self {
            Actor::Member | Actor::RevokedElsewhere | Actor::RevokedEverywhere => DM_AND_SQUARE,
            Actor::Invited | Actor::Former => ALL_SECRETS,
            Actor::Outsider
            | Actor::PublicOutsider
            | Actor::ThirdParty
            | Actor::LoggedOut
            | Actor::NoHello
            | Actor::Expired => UNKNOWN_VAULT,
        }
    }
}

/// An expected outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// Carried out: a reply of this `type`.
    Ok(&'static str),
    /// Refused with this error `code`; the connection stays.
    Err(&'static str),
    /// Not carried out because the session has ended: at most an
    /// `invalid_token` reply, then the connection closes with 4001.
    Ended,
    /// A request that needs no session, on a connection whose session has
    /// expired: answered like this, unless the session watcher (once a
    /// second) closed the connection first, as [`Expect::Ended`].
    UnlessEnded(&'static Expect),
}

impl fmt::Display for Expect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expect::Ok(t) => write!(f, "reply {t}"),
            Expect::Err(c) => write!(f, "error {c}"),
            Expect::Ended => f.write_str("session ended (4001)"),
            Expect::UnlessEnded(e) => write!(f, "{e}, or session ended (4001)"),
        }
    }
}

const fn ok(reply: &'static str) -> Expect {
    Expect::Ok(reply)
}

const fn err(code: &'static str) -> Expect {
    Expect::Err(code)
}

const END: Expect = Expect::Ended;
const W_OR_END: Expect = Expect::UnlessEnded(&Expect::Ok("welcome"));
const PONG_OR_END: Expect = Expect::UnlessEnded(&Expect::Ok("pong"));
const AUTHED_OR_END: Expect = Expect::UnlessEnded(&Expect::Err("already_authenticated"));
const AUTHED: Expect = Expect::Err("already_authenticated");
const UNAUTH: Expect = Expect::Err("unauthenticated");
const NO_HELLO: Expect = Expect::Err("hello_required");
/// A to-device request on a connection that has not said which device it
/// is (`upload_keys`): refused before anything is looked up.
const DEVICE: Expect = Expect::Err("device_required");
/// A key backup request of someone who has none (alice's is not theirs).
const NO_BACKUP: Expect = Expect::Err("no_backup");

/// The matrix: one row per request type, one column per [`ACTORS`] entry:
/// member, outsider (private), outsider (public), invited, former member,
/// third party, logged out, before hello, revoked elsewhere, revoked
/// everywhere, expired.
#[rustfmt::skip]
const TABLE: &[(&str, [Expect; 11])] = &[
//                      member               outsider             public               invited              former               3rd party                  logged out     no hello       revoked  revoked all  expired
    ("hello",           [ok("welcome"),       ok("welcome"),       ok("welcome"),       ok("welcome"),       ok("welcome"),       ok("welcome"),             ok("welcome"), ok("welcome"), END,     END,         W_OR_END]),
    ("register",        [AUTHED,              AUTHED,              AUTHED,              AUTHED,              AUTHED,              AUTHED,                    ok("authed"),  NO_HELLO,      END,     END,         AUTHED_OR_END]),
    ("login",           [AUTHED,              AUTHED,              AUTHED,              AUTHED,              AUTHED,              AUTHED,                    ok("authed"),  NO_HELLO,      END,     END,         AUTHED_OR_END]),
    ("auth",            [AUTHED,              AUTHED,              AUTHED,              AUTHED,              AUTHED,              AUTHED,                    ok("authed"),  NO_HELLO,      END,     END,         AUTHED_OR_END]),
    ("logout",          [ok("ok"),            ok("ok"),            ok("ok"),            ok("ok"),            ok("ok"),            ok("ok"),                  UNAUTH,        NO_HELLO,      END,     END,         END]),
    ("change_password", [ok("ok"),            ok("ok"),            ok("ok"),            ok("ok"),            ok("ok"),            ok("ok"),                  UNAUTH,        NO_HELLO,      END,     END,         END]),
    ("create_room",     [err("room_exists"),  err("room_exists"),  err("room_exists"),  err("room_exists"),  err("room_exists"),  err("room_exists"),        UNAUTH,        NO_HELLO,      END,     END,         END]),
    ("join_room",       [ok("joined"),        err("not_invited"),  ok("joined"),        ok("joined"),        err("not_invited"),  ok("joined"),              UNAUTH,        NO_HELLO,      END,     END,         END]),
    ("leave_room",      [ok("ok"),            err("unknown_room"), err("not_member"),   err("not_member"),   err("unknown_room"), err("cannot_leave_lobby"), UNAUTH,        NO_HELLO,      END,     END,         END]),
    ("invite",          [ok("ok"),            err("unknown_room"), err("not_member"),   err("not_member"),   err("unknown_room"), err("already_member"),     UNAUTH,        NO_HELLO,      END,     END,         END]),
    ("decline_invite",  [err("not_invited"),  err("unknown_room"), err("not_invited"),  ok("ok"),            err("unknown_room"), err("not_invited"),        UNAUTH,        NO_HELLO,      END,     END,         END]),
    ("list_rooms",      [ok("rooms"),         ok("rooms"),         ok("rooms"),         ok("rooms"),         ok("rooms"),         ok("rooms"),               UNAUTH,        NO_HELLO,      END,     END,         END]),
    ("list_members",    [ok("members"),       err("unknown_room"), ok("members"),       err("not_member"),   err("unknown_room"), ok("members"),             UNAUTH,        NO_HELLO,      END,     END,         END]),
    ("who",             [ok("users"),         ok("users"),         ok("users"),         ok("users"),         ok("users"),         ok("users"),               UNAUTH,        NO_HELLO,      END,     END,         END]),
    ("send",            [ok("sent"),          err("unknown_room"), err("not_member"),   err("not_member"),   err("unknown_room"), ok("sent"),                UNAUTH,        NO_HELLO,      END,     END,         END]),
    ("edit",            [err("not_author"),   err("unknown_room"), err("not_member"),   err("not_member"),   err("unknown_room"), err("unknown_message"),    UNAUTH,        NO_HELLO,      END,     END,         END]),
    ("delete",          [err("not_author"),   err("unknown_room"), err("not_member"),   err("not_member"),   err("unknown_room"), err("unknown_message"),    UNAUTH,        NO_HELLO,      END,     END,         END]),
    ("react",           [ok("sent"),          err("unknown_room"), err("not_member"),   err("not_member"),   err("unknown_room"), err("unknown_message"),    UNAUTH,        NO_HELLO,      END,     END,         END]),
    ("versions",        [ok("versions"),      err("unknown_room"), err("not_member"),   err("not_member"),   err("unknown_room"), err("unknown_message"),    UNAUTH,        NO_HELLO,      END,     END,         END]),
    ("history",         [ok("history"),       err("unknown_room"), err("not_member"),   err("not_member"),   err("unknown_room"), ok("history"),             UNAUTH,        NO_HELLO,      END,     END,         END]),
    ("conversations",   [ok("conversations"), ok("conversations"), ok("conversations"), ok("conversations"), ok("conversations"), ok("conversations"),       UNAUTH,        NO_HELLO,      END,     END,         END]),
    ("mark_read",       [ok("ok"),            err("unknown_room"), err("not_member"),   err("not_member"),   err("unknown_room"), ok("ok"),                  UNAUTH,        NO_HELLO,      END,     END,         END]),
    ("list_files",      [ok("files"),         err("unknown_room"), err("not_member"),   err("not_member"),   err("unknown_room"), ok("files"),               UNAUTH,        NO_HELLO,      END,     END,         END]),
    ("ping",            [ok("pong"),          ok("pong"),          ok("pong"),          ok("pong"),          ok("pong"),          ok("pong"),                ok("pong"),    NO_HELLO,      END,     END,         PONG_OR_END]),
    ("upload_keys",     [ok("keys_uploaded"), ok("keys_uploaded"), ok("keys_uploaded"), ok("keys_uploaded"), ok("keys_uploaded"), ok("keys_uploaded"),      UNAUTH,        NO_HELLO,      END,     END,         END]),
    ("devices",         [ok("device_list"),   ok("device_list"),   ok("device_list"),   ok("device_list"),   ok("device_list"),   ok("device_list"),        UNAUTH,        NO_HELLO,      END,     END,         END]),
    ("claim_keys",      [ok("claimed_keys"),  ok("claimed_keys"),  ok("claimed_keys"),  ok("claimed_keys"),  ok("claimed_keys"),  ok("claimed_keys"),       UNAUTH,        NO_HELLO,      END,     END,         END]),
    ("send_to_device",  [DEVICE,              DEVICE,              DEVICE,              DEVICE,              DEVICE,              DEVICE,                    UNAUTH,        NO_HELLO,      END,     END,         END]),
    ("to_device",       [DEVICE,              DEVICE,              DEVICE,              DEVICE,              DEVICE,              DEVICE,                    UNAUTH,        NO_HELLO,      END,     END,         END]),
    ("delete_device",   [err("unknown_device"), err("unknown_device"), err("unknown_device"), err("unknown_device"), err("unknown_device"), err("unknown_device"), UNAUTH, NO_HELLO,  END,     END,         END]),
    ("typing",          [ok("ok"),            err("unknown_room"), err("not_member"),   err("not_member"),   err("unknown_room"), ok("ok"),                  UNAUTH,        NO_HELLO,      END,     END,         END]),
    ("search",          [ok("search_results"), ok("search_results"), ok("search_results"), ok("search_results"), ok("search_results"), ok("search_results"), UNAUTH,    NO_HELLO,      END,     END,         END]),
    ("receipts",        [ok("receipt_list"),  err("unknown_room"), err("not_member"),   err("not_member"),   err("unknown_room"), ok("receipt_list"),        UNAUTH,        NO_HELLO,      END,     END,         END]),
    ("set_topic",        [err("insufficient_rank"), err("unknown_room"), err("not_member"), err("not_member"), err("unknown_room"), err("insufficient_rank"), UNAUTH, NO_HELLO, END, END, END]),
    ("set_role",         [err("insufficient_rank"), err("unknown_room"), err("not_member"), err("not_member"), err("unknown_room"), err("insufficient_rank"), UNAUTH, NO_HELLO, END, END, END]),
    ("kick",             [err("insufficient_rank"), err("unknown_room"), err("not_member"), err("not_member"), err("unknown_room"), err("insufficient_rank"), UNAUTH, NO_HELLO, END, END, END]),
    ("ban",              [err("insufficient_rank"), err("unknown_room"), err("not_member"), err("not_member"), err("unknown_room"), err("insufficient_rank"), UNAUTH, NO_HELLO, END, END, END]),
    ("unban",            [err("insufficient_rank"), err("unknown_room"), err("not_member"), err("not_member"), err("unknown_room"), err("insufficient_rank"), UNAUTH, NO_HELLO, END, END, END]),
    ("mute",             [err("insufficient_rank"), err("unknown_room"), err("not_member"), err("not_member"), err("unknown_room"), err("insufficient_rank"), UNAUTH, NO_HELLO, END, END, END]),
    ("unmute",           [err("insufficient_rank"), err("unknown_room"), err("not_member"), err("not_member"), err("unknown_room"), err("insufficient_rank"), UNAUTH, NO_HELLO, END, END, END]),
    ("set_invite_only",  [err("insufficient_rank"), err("unknown_room"), err("not_member"), err("not_member"), err("unknown_room"), err("insufficient_rank"), UNAUTH, NO_HELLO, END, END, END]),
    ("audit_log",        [err("insufficient_rank"), err("unknown_room"), err("not_member"), err("not_member"), err("unknown_room"), err("insufficient_rank"), UNAUTH, NO_HELLO, END, END, END]),
    ("set_display_name", [ok("ok"), ok("ok"), ok("ok"), ok("ok"), ok("ok"), ok("ok"), UNAUTH, NO_HELLO, END, END, END]),    // The key backup: every request acts on the caller's own backup. A
    // fresh actor has none, so alice's (version 1) is neither read nor
    // written nor deleted by anyone else.
    ("create_backup",    [ok("backup"), ok("backup"), ok("backup"), ok("backup"), ok("backup"), ok("backup"), UNAUTH, NO_HELLO, END, END, END]),
    ("get_backup",       [ok("backup"), ok("backup"), ok("backup"), ok("backup"), ok("backup"), ok("backup"), UNAUTH, NO_HELLO, END, END, END]),
    ("put_backup_keys",  [NO_BACKUP, NO_BACKUP, NO_BACKUP, NO_BACKUP, NO_BACKUP, NO_BACKUP, UNAUTH, NO_HELLO, END, END, END]),
    ("get_backup_keys",  [NO_BACKUP, NO_BACKUP, NO_BACKUP, NO_BACKUP, NO_BACKUP, NO_BACKUP, UNAUTH, NO_HELLO, END, END, END]),
    ("delete_backup",    [NO_BACKUP, NO_BACKUP, NO_BACKUP, NO_BACKUP, NO_BACKUP, NO_BACKUP, UNAUTH, NO_HELLO, END, END, END]),
];

fn agrees(expect: Expect, seen: &Seen) -> bool {
    match expect {
        Expect::Ok(t) => *seen == Seen::Reply(t.into()),
        Expect::Err(c) => *seen == Seen::Error(c.into()),
        Expect::Ended => matches!(
            seen,
            Seen::Ended {
                code: Some(4001),
                ..
            }
        ),
        Expect::UnlessEnded(e) => agrees(*e, seen) || agrees(Expect::Ended, seen),
    }
}

/// The request of `kind` as `actor` (called `name`) sends it.
fn request(kind: &str, actor: Actor, name: &str, token: &str) -> Value {
    let pw = password(name);
    let room = actor.room();
    let mut v = match kind {
        "hello" => json!({"version": 1}),
        "register" => {
            let fresh = format!("{name}x");
            json!({"username": fresh, "password": password(&fresh).expose()})
        }
        "login" => json!({"username": name, "password": pw.expose()}),
        "auth" => json!({"token": token}),
        "change_password" => json!({"current": pw.expose(), "new": "a brand new secret"}),
        "create_room" | "join_room" | "leave_room" | "decline_invite" | "list_members" => {
            json!({"room": room})
        }
        "invite" => json!({"room": room, "user": actor.invitee()}),
        "send" => {
            let mut v = json!({"body": sent_body(actor), "client_id": "c1"});
            merge(&mut v, &actor.conv());
            v
        }
        "history" | "list_files" | "receipts" => actor.conv(),
        // Everywhere the actor may search, for every secret: a hit from a
        // conversation it is not in would carry the secret's text.
        "search" => json!({"query": "secret OR note OR answer OR sent"}),
        // Message 1 of `vault` is alice's: the member may react to it and
        // read its versions, not edit or delete it.
        "edit" | "delete" | "react" | "versions" => {
            let mut v = match kind {
                "edit" => json!({"body": "EDITED", "client_id": "c-edit"}),
                "delete" => json!({"client_id": "c-delete"}),
                "react" => json!({"emoji": "👍", "on": true, "client_id": "c-react"}),
                _ => json!({}),
            };
            v["seq"] = json!(1);
            merge(&mut v, &actor.conv());
            v
        }
        "mark_read" => {
            let mut v = json!({"seq": 1, "receipt": "public"});
            merge(&mut v, &actor.conv());
            v
        }
        // Well-formed key material (the server checks shape, not
        // signatures), in the actor's own name.
        "upload_keys" => json!({"device_keys": {
            "user": name, "device": "AUTHZDEVICE",
            "curve25519": KEY, "ed25519": KEY, "signature": SIGNATURE,
        }}),
        "devices" => json!({"users": ["bob", name]}),
        "claim_keys" => json!({"devices": [{"user": "bob", "device": "AUTHZDEVICE"}]}),
        "send_to_device" => json!({"messages": [
            {"user": "bob", "device": "AUTHZDEVICE", "ciphertext": "opaque"},
        ]}),
        "to_device" => json!({"after": 0}),
        // Moderation: the actor is never the room's owner or a moderator
        // (alice made `vault` and `square`; the lobby has no owner).
        "set_topic" => json!({"room": room, "topic": "new topic"}),
        "set_role" => json!({"room": room, "user": "dave", "role": "moderator"}),
        "kick" | "ban" | "unban" => json!({"room": room, "user": "alice", "reason": "authz"}),
        "mute" => json!({"room": room, "user": "alice", "seconds": 60}),
        "unmute" => json!({"room": room, "user": "alice"}),
        "set_invite_only" => json!({"room": room, "on": true}),
        "audit_log" => json!({"room": room}),
        // One's own display name: anyone logged in may set it.
        "set_display_name" => json!({"display_name": format!("{name} (display)")}),
        // Nobody has this device: only one's own can be deleted, and a
        // deletion that succeeded would change the next cells.
        "delete_device" => json!({"device": "NOSUCHDEVICE"}),
        "create_backup" => json!({"algorithm": "chatus.backup.v1", "key_check": KEY}),
        // Version 1 is alice's backup (`scene::World::build`).
        "put_backup_keys" => json!({"version": 1, "keys": [scene::backup_entry("AAAA")]}),
        "get_backup_keys" => json!({"version": 1}),
        "typing" => {
            let mut v = json!({"typing": true});
            merge(&mut v, &actor.conv());
            v
        }
        _ => json!({}),
    };
    v["type"] = json!(kind);
    v
}

/// A well-formed key (32 bytes of unpadded base64).
const KEY: &str = "3p7bfXt9wbTTW2HC7OQ1Nz+DQ8hbeGdNrfx+FG+IK08";
/// A well-formed signature (64 bytes of unpadded base64).
const SIGNATURE: &str =
    "cV9ihb3lZ3GlU9CnxZkj/rBUc3fSFUK2X+BjcdkEubuGYSbWCSH6h5N2OWlrdiyjEiE1G3QDBzbYRUqRINGbBw";

/// The body of the `send` cell of `actor`.
fn sent_body(actor: Actor) -> String {
    format!("sent as {actor}")
}

/// Cheap password hashes (the matrix registers a user per cell) and no
/// limit a cell could meet.
fn matrix_config(c: &mut chatus_server::Config) {
    c.login.argon2_memory_kib = 64;
    c.login.argon2_iterations = 1;
    c.rate.invites_per_min = 100_000.0;
    c.rate.invite_burst = 100_000;
    c.rate.request_burst = 100_000;
    c.rate.requests_per_sec = 100_000.0;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_request_in_every_state_does_what_the_table_says() {
    let rows: Vec<&str> = TABLE.iter().map(|(kind, _)| *kind).collect();
    assert_eq!(
        rows,
        Request::TYPES,
        "the table has one row per request type, in order"
    );

    let server = TestServer::start_with(matrix_config).await;
    let expired = TestServer::start_with(|c| {
        matrix_config(c);
        c.session_ttl_days = 0;
    })
    .await;
    let mut world = World::build(server.addr).await;
    let mut expired_world = World::bare(expired.addr).await;
    let mut disagreements = Vec::new();
    let mut cells = 0;
    for (row, (kind, expected)) in TABLE.iter().enumerate() {
        for (col, (&actor, &expect)) in ACTORS.iter().zip(expected).enumerate() {
            cells += 1;
            let name = format!("u{row}x{col}");
            let w = if actor == Actor::Expired {
                &mut expired_world
            } else {
                &mut world
            };
            let (mut conn, token) = w.actor(actor, &name).await;
            let req = request(kind, actor, &name, &token);
            let seen = conn.call(req.clone()).await;
            if !agrees(expect, &seen) {
                disagreements.push(format!(
                    "{kind} × {actor}: expected {expect}, got {seen}\n    sent {req}"
                ));
            }
            for frame in conn.carrying(actor.forbidden()) {
                disagreements.push(format!(
                    "{kind} × {actor}: received what it may not read\n    {frame}"
                ));
            }
        }
    }

    // alice's key backup is as she left it: no one else wrote to it or
    // deleted it.
    let page = world
        .alice
        .request(json!({"type": "get_backup_keys", "version": 1}))
        .await;
    assert_eq!(page["keys"].as_array().map(Vec::len), Some(1), "{page}");
    assert_eq!(page["keys"][0]["sealed"], scene::BACKUP_SECRET, "{page}");

    // A send is stored where the table allows it and nowhere else.
    let mut stored = Vec::new();
    for conv in [
        json!({"room": "vault"}),
        json!({"room": "square"}),
        json!({"room": "lobby"}),
        json!({"peer": "bob"}),
    ] {
        let mut req = json!({"type": "history", "limit": 200});
        merge(&mut req, &conv);
        let page = world.alice.request(req).await;
        stored.extend(
            page["messages"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| m["body"].to_string()),
        );
    }
    let (lobby, state) = (expired.state.hub().lobby(), &expired.state);
    let (rows, _) = state
        .store()
        .history(lobby, Page::Latest, 200)
        .await
        .unwrap();
    stored.extend(
        rows.iter()
            .map(|r| json!(r.body.as_ref().unwrap().as_str()).to_string()),
    );
    let send_row = Request::TYPES.iter().position(|t| *t == "send").unwrap();
    for (&actor, expect) in ACTORS.iter().zip(TABLE[send_row].1) {
        let body = json!(sent_body(actor)).to_string();
        let found = stored.contains(&body);
        let allowed = matches!(expect, Expect::Ok(_));
        // The third party's message went to its own conversation with bob,
        // which alice cannot read.
        let visible_to_alice = allowed && actor != Actor::ThirdParty;
        if found != visible_to_alice {
            disagreements.push(format!(
                "send × {actor}: {body} is {} alice's conversations",
                if found { "in" } else { "missing from" }
            ));
        }
    }
    let third = format!(
        "u{send_row}x{}",
        ACTORS.iter().position(|a| *a == Actor::ThirdParty).unwrap()
    );
    let page = world
        .bob
        .request(json!({"type": "history", "peer": third}))
        .await;
    let bodies: Vec<&str> = page["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["body"].as_str())
        .collect();
    if bodies != [sent_body(Actor::ThirdParty)] {
        disagreements.push(format!(
            "send × {}: bob's conversation with {third} holds {bodies:?}",
            Actor::ThirdParty
        ));
    }

    assert!(
        disagreements.is_empty(),
        "{} of {cells} cells disagree with the authorization table:\n  {}",
        disagreements.len(),
        disagreements.join("\n  ")
    );
}

/// Outside the table's replies: live messages reach members only, the
/// private room stays out of outsiders' room and conversation lists, and a
/// direct conversation between two users is invisible to a third, whose
/// `peer` requests reach only their own conversations. A member is the
/// control that shows each check can see what it looks for.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_leaks_to_those_outside() {
    let server = TestServer::start_with(matrix_config).await;
    let mut w = World::build(server.addr).await;
    let cast = [
        Actor::Member,
        Actor::Outsider,
        Actor::PublicOutsider,
        Actor::Invited,
        Actor::Former,
        Actor::ThirdParty,
    ];
    let mut actors = Vec::new();
    for (i, actor) in cast.into_iter().enumerate() {
        let (conn, _) = w.actor(actor, &format!("n{i}")).await;
        actors.push((actor, conn));
    }
    // Live traffic in every conversation, after everyone is in place.
    w.post("VAULT-LIVE", "SQUARE-LIVE", "DM-LIVE", "DM-LIVE-ANSWER")
        .await;
    let third = "n5";
    let (_, t) = actors
        .iter_mut()
        .find(|(a, _)| *a == Actor::ThirdParty)
        .unwrap();
    let r = t
        .call(json!({"type": "send", "peer": "bob", "body": "THIRD-TO-BOB", "client_id": "t1"}))
        .await;
    assert_eq!(r, Seen::Reply("sent".into()));
    w.alice.drain().await;
    assert_eq!(
        w.alice.carrying(&["THIRD-TO-BOB"]),
        Vec::<String>::new(),
        "alice saw the third party's DM to bob"
    );

    let live = ["VAULT-LIVE", "SQUARE-LIVE", "DM-LIVE", "DM-LIVE-ANSWER"];
    for (actor, conn) in &mut actors {
        let actor = *actor;
        conn.drain().await;
        for what in ["list_rooms", "conversations", "who"] {
            conn.request(json!({"type": what})).await;
        }
        for peer in ["alice", "bob"] {
            conn.request(json!({"type": "history", "peer": peer})).await;
        }
        let mut forbidden: Vec<&str> = actor.forbidden().to_vec();
        forbidden.extend(
            live.iter()
                .filter(|l| actor != Actor::Member || **l != "VAULT-LIVE"),
        );
        assert_eq!(
            conn.carrying(&forbidden),
            Vec::<String>::new(),
            "{actor} read what it may not"
        );
        let rooms = conn
            .frames
            .iter()
            .rev()
            .find(|f| f["type"] == "rooms")
            .unwrap();
        let vault = rooms["rooms"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == "vault");
        let convs = conn
            .frames
            .iter()
            .rev()
            .find(|f| f["type"] == "conversations")
            .unwrap();
        let convs: Vec<String> = convs["conversations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c.get("room").unwrap_or(&c["peer"]).to_string())
            .collect();
        match actor {
            Actor::Member => {
                // The control: the member saw the room's live message.
                assert_eq!(
                    conn.carrying(&["VAULT-LIVE"]).len(),
                    1,
                    "the member missed the live message"
                );
                assert_eq!(vault.unwrap()["joined"], true);
                assert_eq!(convs, ["\"lobby\"", "\"vault\""]);
            }
            Actor::Invited => {
                // Invited is not in: no news of who comes and goes.
                let news: Vec<&Value> = conn
                    .frames
                    .iter()
                    .filter(|f| f["room"] == "vault" && f["type"] != "invited")
                    .collect();
                assert_eq!(news, Vec::<&Value>::new(), "the invitee heard from inside");
                let vault = vault.unwrap();
                assert_eq!(
                    (&vault["joined"], &vault["invited"]),
                    (&json!(false), &json!(true))
                );
                assert_eq!(convs, ["\"lobby\""]);
            }
            Actor::ThirdParty => {
                assert!(vault.is_none());
                assert_eq!(
                    convs,
                    ["\"lobby\"", "\"bob\""],
                    "only its own direct conversation"
                );
                let pages: Vec<&Value> = conn
                    .frames
                    .iter()
                    .filter(|f| f["type"] == "history")
                    .collect();
                let bodies = |p: &Value| {
                    p["messages"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|m| m["body"].clone())
                        .collect::<Vec<_>>()
                };
                assert_eq!(pages[0]["peer"], "alice");
                assert_eq!(
                    bodies(pages[0]),
                    Vec::<Value>::new(),
                    "{third} read alice's DMs"
                );
                assert_eq!(
                    bodies(pages[1]),
                    [json!("THIRD-TO-BOB")],
                    "{third}'s own DM with bob"
                );
            }
            Actor::Outsider | Actor::PublicOutsider | Actor::Former => {
                assert!(vault.is_none());
                assert_eq!(convs, ["\"lobby\""]);
            }
            other => panic!("{other} is not in the cast"),
        }
    }
}
