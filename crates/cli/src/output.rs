//! Output: messages, rooms and people as human text or as JSON lines.
//!
//! Text that came from other people is cleaned before it reaches a
//! terminal: control characters (which could move the cursor, recolour or
//! retitle the terminal) are shown as `�`; newlines continue on an indented
//! line.

use std::borrow::Cow;

use chatus_client::protocol::event::Change;
use chatus_client::protocol::message::Message;
use chatus_client::protocol::presence::Member;
use chatus_client::protocol::profile::DisplayName;
use chatus_client::protocol::room::RoomInfo;
use chatus_client::protocol::{Conversation, FileInfo, Timestamp, Username};
use serde_json::{Value, json};

/// Replaces control characters other than newline and tab.
pub fn clean(s: &str) -> Cow<'_, str> {
    if s.chars().all(|c| !c.is_control() || c == '\n' || c == '\t') {
        return Cow::Borrowed(s);
    }
    Cow::Owned(
        s.chars()
            .map(|c| {
                if c.is_control() && c != '\n' && c != '\t' {
                    '\u{FFFD}'
                } else {
                    c
                }
            })
            .collect(),
    )
}

fn zoned(t: Timestamp) -> Option<jiff::ZonedDateTime> {
    let ts = jiff::Timestamp::from_millisecond(i64::try_from(t.0).ok()?).ok()?;
    Some(ts.to_zoned_datetime(jiff::tz::TimeZone::system()))
}

/// `HH:MM` in local time.
pub fn clock(t: Timestamp) -> String {
    zoned(t).map_or_else(|| "??:??".into(), |z| z.strftime("%H:%M").to_string())
}

/// `YYYY-MM-DD HH:MM` in local time.
pub fn date_time(t: Timestamp) -> String {
    zoned(t).map_or_else(
        || "????-??-?? ??:??".into(),
        |z| z.strftime("%Y-%m-%d %H:%M").to_string(),
    )
}

/// RFC 3339 in UTC with milliseconds.
pub fn rfc3339(t: Timestamp) -> String {
    i64::try_from(t.0)
        .ok()
        .and_then(|ms| jiff::Timestamp::from_millisecond(ms).ok())
        .map_or_else(String::new, |ts| format!("{ts:.3}"))
}

/// The JSON object for a message: `type` (`"message"`), `seq`, `room` or
/// `peer`, `sender`, `body` (absent once deleted), `time` (RFC 3339, UTC)
/// and `time_ms`; with `file`, `reply_to` (`seq`, `sender`, `excerpt`),
/// `edited` (the edit's seq), `deleted` (the deletion's seq),
/// `reactions` (`emoji`, `count`, `users`, `mine`) and `mentions` (the
/// names `@`-mentioned in the body, as written) when they apply.
pub fn message_json(m: &Message) -> Value {
    message_json_as(m, None)
}

/// [`message_json`] with the sender's display name, when they have one,
/// as `display_name`.
pub fn message_json_as(m: &Message, display_name: Option<&DisplayName>) -> Value {
    let mut v = json!({
        "type": "message",
        "seq": m.seq.0,
        "sender": m.sender.as_str(),
        "time": rfc3339(m.time),
        "time_ms": m.time.0,
    });
    if let Some(d) = display_name {
        v["display_name"] = json!(d.as_str());
    }
    if let Some(b) = &m.body {
        v["body"] = json!(b.as_str());
        let mentions: Vec<&str> = chatus_client::protocol::mention::mentioned(b.as_str()).collect();
        if !mentions.is_empty() {
            v["mentions"] = json!(mentions);
        }
    }
    place_json(&mut v, &m.conv);
    if let Some(f) = &m.file {
        v["file"] = file_json(f);
    }
    if let Some(q) = &m.reply_to {
        v["reply_to"] = json!({"seq": q.seq.0, "sender": q.sender.as_str(), "excerpt": q.excerpt});
    }
    if let Some(e) = m.edited {
        v["edited"] = json!(e.0);
    }
    if let Some(d) = m.deleted {
        v["deleted"] = json!(d.0);
    }
    if !m.reactions.is_empty() {
        v["reactions"] = m
            .reactions
            .iter()
            .map(|r| {
                json!({
                    "emoji": r.emoji.as_str(),
                    "count": r.count,
                    "users": r.users.iter().map(|u| u.as_str()).collect::<Vec<_>>(),
                    "mine": r.mine,
                })
            })
            .collect();
    }
    v
}

/// A `read` event as JSON lines, one per reader: `type` (`"read"`),
/// `room` or `peer`, `user`, `seq` (the last message they read); and
/// when the event counts readers it does not name, one more line:
/// `type` `"read_others"`, `count`, `up_to` (none of them read further).
pub fn read_json(r: &chatus_client::protocol::receipt::Read) -> Vec<Value> {
    let mut lines: Vec<Value> = r
        .users
        .iter()
        .map(|u| {
            let mut v = json!({"type": "read", "user": u.user.as_str(), "seq": u.seq.0});
            place_json(&mut v, &r.conv);
            v
        })
        .collect();
    if r.others > 0 {
        let mut v = json!({"type": "read_others", "count": r.others});
        if let Some(last) = r.users.last() {
            v["up_to"] = json!(last.seq.0);
        }
        place_json(&mut v, &r.conv);
        lines.push(v);
    }
    lines
}

/// A `typing` event as a JSON line: `type` (`"typing"`), `room` or
/// `peer`, `user`, `typing` (false when they stopped).
pub fn typing_json(t: &chatus_client::protocol::presence::Typing) -> Value {
    let mut v = json!({"type": "typing", "user": t.user.as_str(), "typing": t.typing});
    place_json(&mut v, &t.conv);
    v
}

/// A `profile` event as a JSON line: `type` (`"profile"`), `user`,
/// `display_name` (null when cleared).
pub fn profile_json(p: &chatus_client::protocol::profile::Profile) -> Value {
    json!({
        "type": "profile",
        "user": p.user.as_str(),
        "display_name": p.display_name.as_ref().map(DisplayName::as_str),
    })
}

/// Shown in place of the text of a message that could not be decrypted.
pub const UNDECRYPTABLE: &str = "\u{1f512} could not be decrypted";

/// `m` as shown when it could not be decrypted: the marker and the reason
/// in place of its ciphertext.
pub fn undecryptable(m: &Message, reason: &str) -> Message {
    let mut shown = m.clone();
    let reason = reason.trim_end_matches('.');
    shown.body = chatus_client::protocol::Body::parse(format!("{UNDECRYPTABLE} ({reason})")).ok();
    shown
}

/// The JSON object for a message that could not be decrypted:
/// [`message_json`] without `body`, with `undecryptable` (why).
pub fn undecryptable_json(m: &Message, reason: &str) -> Value {
    let mut shown = m.clone();
    shown.body = None;
    let mut v = message_json(&shown);
    v["undecryptable"] = json!(reason);
    v
}

fn place_json(v: &mut Value, conv: &Conversation) {
    match conv {
        Conversation::Room(r) => v["room"] = json!(r.as_str()),
        Conversation::Peer(p) => v["peer"] = json!(p.as_str()),
    }
}

/// The JSON object for a change: `type` (`"edited"`, `"deleted"` or
/// `"reacted"`), `seq` (its own), `room` or `peer`, `sender`, `target`
/// (the message's seq), `time`, `time_ms`; an edit's `body` (absent once
/// the message is deleted), a reaction's `emoji` and `on`. A moderation
/// event is `"moderated"` with no `target` but `action`, and as the action
/// needs `user` (the user acted on), `reason`, `topic`, `description`,
/// `role`, `until_ms`, `invite_only`; `sender` is who acted.
pub fn change_json(c: &Change) -> Value {
    let (kind, sender, time) = match c {
        Change::Edited(e) => ("edited", &e.sender, e.time),
        Change::Deleted(d) => ("deleted", &d.sender, d.time),
        Change::Reacted(r) => ("reacted", &r.sender, r.time),
        Change::Moderated(m) => ("moderated", &m.actor, m.time),
    };
    let mut v = json!({
        "type": kind,
        "seq": c.seq().0,
        "sender": sender.as_str(),
        "target": c.target().0,
        "time": rfc3339(time),
        "time_ms": time.0,
    });
    place_json(&mut v, c.conv());
    match c {
        Change::Edited(e) => {
            if let Some(b) = &e.body {
                v["body"] = json!(b.as_str());
            }
        }
        Change::Deleted(_) => {}
        Change::Reacted(r) => {
            v["emoji"] = json!(r.emoji.as_str());
            v["on"] = json!(r.on);
        }
        Change::Moderated(m) => {
            if let Some(o) = v.as_object_mut() {
                o.remove("target");
            }
            let a = &m.action;
            v["action"] = json!(a.action);
            if let Some(u) = &a.target {
                v["user"] = json!(u.as_str());
            }
            if let Some(r) = &a.reason {
                v["reason"] = json!(r.as_str());
            }
            if let Some(t) = &a.topic {
                v["topic"] = json!(t.as_str());
            }
            if let Some(d) = &a.description {
                v["description"] = json!(d.as_str());
            }
            if let Some(r) = a.role {
                v["role"] = json!(r.as_str());
            }
            if let Some(u) = a.until {
                v["until_ms"] = json!(u.0);
            }
            if let Some(on) = a.invite_only {
                v["invite_only"] = json!(on);
            }
        }
    }
    v
}

/// Reaction counts as text: `👍 2  🎉 1`.
pub fn reactions_text(m: &Message) -> String {
    m.reactions
        .iter()
        .map(|r| format!("{} {}", clean(r.emoji.as_str()), r.count))
        .collect::<Vec<_>>()
        .join("  ")
}

/// A change as one line, like a message's: `[SEQ HH:MM] <who> edited 3:
/// new text`, `… deleted 3`, `… reacted 👍 to 3`, `… took back 👍 on 3`.
pub fn change_text(c: &Change, with_place: bool) -> String {
    change_text_as(c, with_place, None)
}

/// [`change_text`], who made it shown with `display_name` when they have
/// one (`<Alice Smith (@alice)> edited 3: …`).
pub fn change_text_as(c: &Change, with_place: bool, display_name: Option<&DisplayName>) -> String {
    let (sender, time) = match c {
        Change::Edited(e) => (&e.sender, e.time),
        Change::Deleted(d) => (&d.sender, d.time),
        Change::Reacted(r) => (&r.sender, r.time),
        Change::Moderated(m) => (&m.actor, m.time),
    };
    let mut head = format!("[{} {}] ", c.seq(), clock(time));
    if with_place {
        head.push_str(&place(c.conv()));
        head.push(' ');
    }
    head.push_str(&format!("<{}> ", person(sender, display_name)));
    let width = head.chars().count();
    let target = c.target();
    let what = match c {
        Change::Edited(e) => match &e.body {
            Some(b) => format!("edited {target}: {}", indent_body(b.as_str(), width)),
            None => format!("edited {target} (message deleted)"),
        },
        Change::Deleted(_) => format!("deleted {target} (message deleted)"),
        Change::Reacted(r) if r.on => format!("reacted {} to {target}", clean(r.emoji.as_str())),
        Change::Reacted(r) => format!("took back {} on {target}", clean(r.emoji.as_str())),
        Change::Moderated(m) => moderation_text(&m.action),
    };
    format!("{head}{what}")
}

/// What a moderation event did, for a line: `banned bob (spam)`.
pub fn moderation_text(a: &chatus_client::protocol::moderation::Action) -> String {
    use chatus_client::protocol::moderation::ActionKind;
    let user = a.target.as_ref().map_or(String::new(), |u| u.to_string());
    let mut s = match a.action {
        ActionKind::Topic => format!(
            "set the topic: {}",
            clean(a.topic.as_ref().map_or("", |t| t.as_str()))
        ),
        ActionKind::Role => format!("made {user} {}", a.role.map_or("member", |r| r.as_str())),
        ActionKind::Kick => format!("kicked {user}"),
        ActionKind::Ban => format!("banned {user}"),
        ActionKind::Unban => format!("unbanned {user}"),
        ActionKind::Mute => format!(
            "muted {user} until {}",
            a.until.map_or(String::new(), date_time)
        ),
        ActionKind::Unmute => format!("unmuted {user}"),
        ActionKind::InviteOnly if a.invite_only == Some(true) => "made the room invite-only".into(),
        ActionKind::InviteOnly => "opened the room to all".into(),
    };
    if let Some(r) = &a.reason {
        s.push_str(&format!(" ({})", clean(r.as_str())));
    }
    s
}

/// The JSON object for a file: `id`, `name`, `size`, `media_type`,
/// `sha256`.
pub fn file_json(f: &FileInfo) -> Value {
    json!({
        "id": f.id.as_str(),
        "name": f.name.as_str(),
        "size": f.size,
        "media_type": f.media_type.as_str(),
        "sha256": f.sha256.as_str(),
    })
}

/// A byte count for people (the desktop app uses the same).
pub use chatus_client::transfer::human_size;

/// A file as one line: name, size, type, and the command that downloads
/// it. The name came from another person: it is cleaned.
pub fn file_text(f: &FileInfo) -> String {
    format!(
        "file: {} ({}, {}) · chatus download {}",
        clean(f.name.as_str()),
        human_size(f.size),
        f.media_type,
        f.id
    )
}

/// Where a message line says it belongs: `#room` or `@peer`.
pub fn place(conv: &Conversation) -> String {
    conv.to_string()
}

fn indent_body(body: &str, width: usize) -> String {
    let body = clean(body);
    let pad = " ".repeat(width);
    body.lines().collect::<Vec<_>>().join(&format!("\n{pad}"))
}

/// A message as one (or, for multi-line bodies, several) lines of text.
/// `with_place` prefixes the conversation; `long_time` shows the date.
pub fn message_text(m: &Message, with_place: bool, long_time: bool) -> String {
    message_text_as(m, with_place, long_time, None)
}

/// How a person is shown: `Alice Smith (@alice)` with a display name,
/// `alice` without (never the display name alone), cleaned for the
/// terminal.
pub fn person(user: &Username, display_name: Option<&DisplayName>) -> String {
    clean(&chatus_client::protocol::profile::shown(user, display_name)).into_owned()
}

/// [`message_text`], the sender shown with `display_name` when they have
/// one (`<Alice Smith (@alice)>`).
pub fn message_text_as(
    m: &Message,
    with_place: bool,
    long_time: bool,
    display_name: Option<&DisplayName>,
) -> String {
    let time = if long_time {
        date_time(m.time)
    } else {
        clock(m.time)
    };
    let mut head = format!("[{} {time}] ", m.seq);
    if with_place {
        head.push_str(&place(&m.conv));
        head.push(' ');
    }
    head.push_str(&format!("<{}> ", person(&m.sender, display_name)));
    let width = head.chars().count();
    let pad = " ".repeat(width);
    let mut text = head;
    if let Some(q) = &m.reply_to {
        let quoted = q.excerpt.as_deref().map_or_else(
            || "(message deleted)".to_owned(),
            |e| clean(e).replace('\n', " "),
        );
        text.push_str(&format!("↪ {} <{}> {quoted}\n{pad}", q.seq, q.sender));
    }
    match &m.body {
        Some(b) => text.push_str(&indent_body(b.as_str(), width)),
        None => text.push_str("(message deleted)"),
    }
    if m.edited.is_some() && m.deleted.is_none() {
        text.push_str(" (edited)");
    }
    if let Some(f) = &m.file
        && m.deleted.is_none()
    {
        text.push('\n');
        text.push_str(&pad);
        text.push_str(&file_text(f));
    }
    if !m.reactions.is_empty() {
        text.push('\n');
        text.push_str(&pad);
        text.push_str(&reactions_text(m));
    }
    text
}

/// A room as text.
pub fn room_text(r: &RoomInfo) -> String {
    let mut flags = Vec::new();
    if r.joined {
        flags.push("joined");
    }
    if r.invited {
        flags.push("invited");
    }
    let members = if r.members == 1 {
        "1 member".to_owned()
    } else {
        format!("{} members", r.members)
    };
    let flags = if flags.is_empty() {
        String::new()
    } else {
        format!(", {}", flags.join(", "))
    };
    format!(
        "#{:<20} {:<8} {members}{flags}",
        r.name.as_str(),
        r.visibility.as_str()
    )
}

/// A room as JSON.
pub fn room_json(r: &RoomInfo) -> Value {
    json!({
        "room": r.name.as_str(),
        "visibility": r.visibility.as_str(),
        "members": r.members,
        "joined": r.joined,
        "invited": r.invited,
        "last_seq": r.last_seq.0,
    })
}

/// A room's members as text: a header, then one line per person, the
/// names padded only as wide as the longest.
pub fn members_text(members: &[Member]) -> Vec<String> {
    let online = members.iter().filter(|m| m.online).count();
    let shown: Vec<String> = members
        .iter()
        .map(|m| person(&m.user, m.display_name.as_ref()))
        .collect();
    let width = shown.iter().map(|s| s.chars().count()).max().unwrap_or(0);
    let mut lines = vec![format!(
        "{} {}, {online} online:",
        members.len(),
        if members.len() == 1 {
            "member"
        } else {
            "members"
        }
    )];
    lines.extend(members.iter().zip(&shown).map(|(m, name)| {
        format!(
            "  {name:<width$}  {}",
            if m.online { "online" } else { "offline" }
        )
    }));
    lines
}

/// A person as JSON.
pub fn member_json(m: &Member) -> Value {
    let mut v = json!({"user": m.user.as_str(), "online": m.online});
    if let Some(d) = &m.display_name {
        v["display_name"] = json!(d.as_str());
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use chatus_client::protocol::{Body, RoomName, Seq, Username};

    #[test]
    fn control_characters_never_reach_the_terminal() {
        assert_eq!(clean("plain\ttext\n"), "plain\ttext\n");
        assert_eq!(clean("\u{1b}]0;pwned\u{7}x"), "\u{FFFD}]0;pwned\u{FFFD}x");
    }

    #[test]
    fn member_lists_have_a_header_and_no_wide_gap() {
        let m = |name: &str, online| Member {
            user: Username::parse(name).unwrap(),
            online,
            role: Default::default(),
            display_name: None,
        };
        let lines = members_text(&[m("al", true), m("bobby", false)]);
        assert_eq!(
            lines,
            [
                "2 members, 1 online:",
                "  al     online",
                "  bobby  offline"
            ]
        );
        // A display name is shown with the user name, even one that reads
        // like someone else's.
        let mut bob = m("bob", true);
        bob.display_name = Some(DisplayName::parse("al").unwrap());
        let lines = members_text(&[m("al", true), bob.clone()]);
        assert_eq!(&lines[1..], ["  al         online", "  al (@bob)  online"]);
        assert_eq!(member_json(&bob)["display_name"], "al");
    }

    #[test]
    fn message_forms() {
        let m = Message {
            conv: Conversation::Room(RoomName::lobby()),
            seq: Seq(4),
            sender: Username::parse("alice").unwrap(),
            body: Some(Body::parse("one\ntwo").unwrap()),
            time: Timestamp(1_764_000_000_000),
            file: None,
            reply_to: None,
            edited: None,
            deleted: None,
            reactions: Vec::new(),
        };
        let named = message_text_as(
            &m,
            false,
            false,
            Some(&DisplayName::parse("Alice Smith").unwrap()),
        );
        assert!(named.contains("<Alice Smith (@alice)> one"), "{named}");
        let text = message_text(&m, true, false);
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].ends_with("#lobby <alice> one"), "{text}");
        assert_eq!(lines[1].trim_start(), "two");
        assert_eq!(
            lines[0].find("one"),
            lines[1].find("two"),
            "continuation lines align"
        );
        let v = message_json(&m);
        assert_eq!(v["room"], "lobby");
        assert_eq!(v["seq"], 4);
        assert_eq!(v["time"], "2025-11-24T16:00:00.000Z");
        assert_eq!(v["type"], "message");
        assert!(
            lines[0].starts_with("[4 "),
            "the seq to address it by: {text}"
        );
        assert!(v.get("mentions").is_none());
        let m = Message {
            body: Some(Body::parse("@bob and @Carol. see me@x").unwrap()),
            ..m
        };
        assert_eq!(message_json(&m)["mentions"], json!(["bob", "Carol"]));
    }

    #[test]
    fn read_receipts_are_a_line_per_reader() {
        use chatus_client::protocol::receipt::{Read, ReadUpTo};
        let r = Read {
            conv: Conversation::Peer(Username::parse("bob").unwrap()),
            users: vec![ReadUpTo {
                user: Username::parse("bob").unwrap(),
                seq: Seq(7),
            }],
            others: 0,
        };
        assert_eq!(
            read_json(&r),
            [json!({"type": "read", "peer": "bob", "user": "bob", "seq": 7})]
        );
        // A large room's round: the readers not named are one line.
        let r = Read {
            conv: Conversation::Room(RoomName::lobby()),
            others: 980,
            ..r
        };
        assert_eq!(
            read_json(&r)[1],
            json!({"type": "read_others", "room": "lobby", "count": 980, "up_to": 7})
        );
    }

    #[test]
    fn typing_and_profile_lines() {
        use chatus_client::protocol::presence::Typing;
        use chatus_client::protocol::profile::Profile;
        let bob = Username::parse("bob").unwrap();
        let t = Typing {
            conv: Conversation::Room(RoomName::parse("dev").unwrap()),
            user: bob.clone(),
            typing: false,
        };
        assert_eq!(
            typing_json(&t),
            json!({"type": "typing", "room": "dev", "user": "bob", "typing": false})
        );
        let p = Profile {
            user: bob,
            display_name: None,
        };
        assert_eq!(
            profile_json(&p),
            json!({"type": "profile", "user": "bob", "display_name": null})
        );
    }

    #[test]
    fn changed_messages() {
        use chatus_client::protocol::Emoji;
        use chatus_client::protocol::event::{Quote, ReactionCount};
        let alice = Username::parse("alice").unwrap();
        let mut m = Message {
            conv: Conversation::Room(RoomName::lobby()),
            seq: Seq(5),
            sender: alice.clone(),
            body: Some(Body::parse("sure").unwrap()),
            time: Timestamp(1_764_000_000_000),
            file: None,
            reply_to: Some(Quote {
                seq: Seq(2),
                sender: alice.clone(),
                excerpt: Some("lunch?".into()),
            }),
            edited: Some(Seq(6)),
            deleted: None,
            reactions: vec![ReactionCount {
                emoji: Emoji::parse("👍").unwrap(),
                count: 2,
                users: vec![alice.clone()],
                mine: false,
            }],
        };
        let text = message_text(&m, false, false);
        assert!(text.contains("↪ 2 <alice> lunch?"), "{text}");
        assert!(text.contains("sure (edited)"), "{text}");
        assert!(text.ends_with("👍 2"), "{text}");
        let v = message_json(&m);
        assert_eq!(
            (v["edited"].as_u64(), v["reply_to"]["seq"].as_u64()),
            (Some(6), Some(2))
        );
        assert_eq!(v["reactions"][0]["count"], 2);
        m.body = None;
        m.deleted = Some(Seq(7));
        m.reactions.clear();
        let text = message_text(&m, false, false);
        assert!(
            text.ends_with("<alice> ↪ 2 <alice> lunch?\n                (message deleted)")
                || text.ends_with("(message deleted)"),
            "{text}"
        );
        assert!(!text.contains("sure"));
        assert!(message_json(&m).get("body").is_none());
    }
}
