//! The moderation commands both clients understand (the CLI's `chat` and
//! the desktop app's composer), for the current room: `/topic TEXT`,
//! `/kick USER [REASON]`, `/ban USER [REASON]`, `/unban USER`,
//! `/mute USER DURATION [REASON]`, `/unmute USER`, `/op USER`,
//! `/deop USER`, `/invite-only on|off`. The server decides who may (owner
//! and moderators; `/op` the owner only) and says why not; what they did
//! comes back as a `moderated` event like any other.

use std::time::Duration;

use chatus_protocol::moderation::{Reason, Role, Topic};
use chatus_protocol::{RoomName, Username};

use crate::handle::Client;

/// A user name as typed: `bob` or `@bob`.
fn parse_user(s: &str) -> Result<Username, String> {
    Username::parse(s.trim().trim_start_matches('@')).map_err(|e| e.message)
}

/// A moderation command, as typed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `/topic TEXT` (empty clears it).
    Topic(String),
    /// `/kick USER [REASON]`.
    Kick(String, String),
    /// `/ban USER [REASON]`.
    Ban(String, String),
    /// `/unban USER`.
    Unban(String),
    /// `/mute USER DURATION [REASON]`.
    Mute(String, Duration, String),
    /// `/unmute USER`.
    Unmute(String),
    /// `/op USER` (true) or `/deop USER`.
    Op(String, bool),
    /// `/invite-only on|off`.
    InviteOnly(bool),
}

/// The command's usage line.
fn usage(name: &str) -> &'static str {
    match name {
        "kick" => "Usage: /kick USER [REASON]",
        "ban" => "Usage: /ban USER [REASON]",
        "unban" => "Usage: /unban USER",
        "mute" => "Usage: /mute USER DURATION [REASON] (DURATION like 90s, 10m, 2h, 1d)",
        "unmute" => "Usage: /unmute USER",
        "op" => "Usage: /op USER",
        "deop" => "Usage: /deop USER",
        _ => "Usage: /invite-only on|off",
    }
}

/// `90`, `90s`, `10m`, `2h`, `1d`.
pub fn parse_duration(s: &str) -> Option<Duration> {
    let (digits, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = digits.parse().ok()?;
    let factor = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return None,
    };
    let secs = n.checked_mul(factor)?;
    (secs > 0).then(|| Duration::from_secs(secs))
}

/// Parses `/NAME REST` when NAME is a moderation command: `Some(Ok)` for
/// a command, `Some(Err(usage))` for one used wrongly, `None` for another
/// command.
pub fn parse(name: &str, rest: &str) -> Option<Result<Command, String>> {
    let (first, tail) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
    let (first, tail) = (first.to_owned(), tail.trim().to_owned());
    let bad = || Some(Err(usage(name).to_owned()));
    Some(Ok(match name {
        "topic" => Command::Topic(rest.to_owned()),
        "kick" | "ban" | "unban" | "unmute" | "op" | "deop" | "mute" if first.is_empty() => {
            return bad();
        }
        "kick" => Command::Kick(first, tail),
        "ban" => Command::Ban(first, tail),
        "unban" if tail.is_empty() => Command::Unban(first),
        "unmute" if tail.is_empty() => Command::Unmute(first),
        "op" if tail.is_empty() => Command::Op(first, true),
        "deop" if tail.is_empty() => Command::Op(first, false),
        "unban" | "unmute" | "op" | "deop" => return bad(),
        "mute" => {
            let (d, reason) = tail.split_once(char::is_whitespace).unwrap_or((&tail, ""));
            match parse_duration(d) {
                Some(d) => Command::Mute(first, d, reason.trim().to_owned()),
                None => return bad(),
            }
        }
        "invite-only" => match rest {
            "on" => Command::InviteOnly(true),
            "off" => Command::InviteOnly(false),
            _ => return bad(),
        },
        _ => return None,
    }))
}

/// An optional reason: empty is none.
fn reason(s: String) -> Result<Option<Reason>, String> {
    if s.is_empty() {
        return Ok(None);
    }
    Reason::parse(s).map(Some).map_err(|e| e.message)
}

/// Carries out `cmd` in `room`. `Ok(Err(note))` is a mistake to show (a
/// bad name, a reason too long) that never reached the server.
pub async fn run(
    client: &Client,
    room: RoomName,
    cmd: Command,
) -> Result<Result<(), String>, crate::Error> {
    let user = parse_user;
    let ready = (|| -> Result<_, String> {
        Ok(match cmd {
            Command::Topic(t) => Ready::Topic(Topic::parse(t).map_err(|e| e.message)?),
            Command::Kick(u, r) => Ready::Kick(user(&u)?, reason(r)?),
            Command::Ban(u, r) => Ready::Ban(user(&u)?, reason(r)?),
            Command::Unban(u) => Ready::Unban(user(&u)?),
            Command::Mute(u, d, r) => Ready::Mute(user(&u)?, d, reason(r)?),
            Command::Unmute(u) => Ready::Unmute(user(&u)?),
            Command::Op(u, on) => Ready::Op(user(&u)?, on),
            Command::InviteOnly(on) => Ready::InviteOnly(on),
        })
    })();
    let ready = match ready {
        Ok(r) => r,
        Err(note) => return Ok(Err(note)),
    };
    match ready {
        Ready::Topic(t) => client.set_topic(room, t, None).await?,
        Ready::Kick(u, r) => client.kick(room, u, r).await?,
        Ready::Ban(u, r) => client.ban(room, u, r).await?,
        Ready::Unban(u) => client.unban(room, u).await?,
        Ready::Mute(u, d, r) => client.mute(room, u, d, r).await?,
        Ready::Unmute(u) => client.unmute(room, u).await?,
        Ready::Op(u, on) => {
            let role = if on { Role::Moderator } else { Role::Member };
            client.set_role(room, u, role).await?
        }
        Ready::InviteOnly(on) => client.set_invite_only(room, on).await?,
    };
    Ok(Ok(()))
}

/// A command with its values checked.
enum Ready {
    Topic(Topic),
    Kick(Username, Option<Reason>),
    Ban(Username, Option<Reason>),
    Unban(Username),
    Mute(Username, Duration, Option<Reason>),
    Unmute(Username),
    Op(Username, bool),
    InviteOnly(bool),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_parse() {
        let ok = |name: &str, rest: &str| parse(name, rest).unwrap().unwrap();
        assert_eq!(ok("topic", "New plans"), Command::Topic("New plans".into()));
        assert_eq!(
            ok("kick", "bob too loud"),
            Command::Kick("bob".into(), "too loud".into())
        );
        assert_eq!(ok("ban", "bob"), Command::Ban("bob".into(), String::new()));
        assert_eq!(
            ok("mute", "bob 10m cool off"),
            Command::Mute("bob".into(), Duration::from_secs(600), "cool off".into())
        );
        assert_eq!(ok("op", "bob"), Command::Op("bob".into(), true));
        assert_eq!(ok("deop", "bob"), Command::Op("bob".into(), false));
        assert_eq!(ok("invite-only", "on"), Command::InviteOnly(true));
        for (name, rest) in [
            ("kick", ""),
            ("mute", "bob"),
            ("mute", "bob 0"),
            ("mute", "bob 5y"),
            ("unban", "bob now"),
            ("invite-only", "maybe"),
        ] {
            assert!(parse(name, rest).unwrap().is_err(), "/{name} {rest}");
        }
        assert!(parse("who", "").is_none());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90"), Some(Duration::from_secs(90)));
        assert_eq!(parse_duration("2h"), Some(Duration::from_secs(7200)));
        assert_eq!(parse_duration("1d"), Some(Duration::from_secs(86_400)));
        assert_eq!(parse_duration("0m"), None);
        assert_eq!(parse_duration("m"), None);
        assert_eq!(parse_duration("99999999999999999999d"), None);
    }
}
