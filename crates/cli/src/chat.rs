//! `chatus chat`: the interactive line mode, heir of the original window.
//!
//! Lines typed are sent to the current room; incoming messages are printed
//! with time and sender as they arrive. Commands: `/join ROOM`, `/leave`,
//! `/msg USER TEXT`, `/who`, `/rooms`, `/help`, and `quit` or `/quit`.
//! Standard input need not be a terminal: piped lines are sent one after
//! the other (each acknowledged before the next is read), and the end of
//! input leaves like `quit`.

use std::io::IsTerminal as _;
use std::sync::{Arc, Mutex};

use chatus_client::protocol::history::Page;
use chatus_client::protocol::{Body, Conversation, ErrorCode, RoomName, Seq, Username, Visibility};
use chatus_client::{Client, Event, Events, Reconnect, Resume};
use tokio::io::AsyncBufReadExt as _;
use tokio::sync::oneshot;

use crate::CliError;
use crate::args::ChatArgs;
use crate::commands::{Ctx, parse_room, parse_user, say};
use crate::output;

const HELP: &str = "\
Type a line to send it to the current room. Commands:
  /join ROOM        join (or create) a room and talk there
  /leave            leave the current room, back to the lobby
  /msg USER TEXT    send a direct message
  /who              who is in the current room
  /rooms            list rooms
  /help             this help
  quit, /quit       leave";

/// One line typed, understood.
#[derive(Debug, PartialEq, Eq)]
pub enum Line {
    /// Text for the current room.
    Say(String),
    /// `/join ROOM`.
    Join(String),
    /// `/leave`.
    Leave,
    /// `/msg USER TEXT`.
    Msg(String, String),
    /// `/who`.
    Who,
    /// `/rooms`.
    Rooms,
    /// `/help`.
    Help,
    /// `quit` or `/quit`.
    Quit,
    /// Nothing to do.
    Empty,
    /// A command used wrongly, with what to say.
    Bad(String),
}

/// Parses one typed line.
pub fn parse_line(line: &str) -> Line {
    let trimmed = line.trim();
    if trimmed.is_empty() {
        return Line::Empty;
    }
    if trimmed == "quit" {
        return Line::Quit;
    }
    if let Some(rest) = trimmed.strip_prefix("//") {
        return Line::Say(format!("/{rest}"));
    }
    let Some(cmd) = trimmed.strip_prefix('/') else {
        return Line::Say(line.trim_end().to_owned());
    };
    let (name, rest) = cmd.split_once(char::is_whitespace).unwrap_or((cmd, ""));
    let rest = rest.trim();
    match name {
        "quit" | "exit" => Line::Quit,
        "join" | "j" if !rest.is_empty() => Line::Join(rest.to_owned()),
        "join" | "j" => Line::Bad("usage: /join ROOM".into()),
        "leave" | "part" => Line::Leave,
        "msg" | "m" => match rest.split_once(char::is_whitespace) {
            Some((user, text)) if !text.trim().is_empty() => {
                Line::Msg(user.to_owned(), text.trim().to_owned())
            }
            _ => Line::Bad("usage: /msg USER TEXT".into()),
        },
        "who" | "names" => Line::Who,
        "rooms" | "list" => Line::Rooms,
        "help" | "?" => Line::Help,
        other => Line::Bad(format!("unknown command /{other}; /help lists them")),
    }
}

fn note(json: bool, text: &str) {
    if !json {
        say(&format!("* {text}"));
    }
}

/// Joins `room`, creating it (public) when it does not exist, as IRC does.
async fn enter(client: &Client, room: &RoomName) -> Result<String, chatus_client::Error> {
    match client.join(room.clone()).await {
        Ok(_) => Ok(format!("now talking in #{room}")),
        Err(e) if e.code() == Some(ErrorCode::UnknownRoom) => {
            client.create_room(room.clone(), Visibility::Public).await?;
            Ok(format!("created #{room}; now talking in it"))
        }
        Err(e) => Err(e),
    }
}

/// `chat`.
pub async fn chat(ctx: &Ctx, args: &ChatArgs) -> Result<(), CliError> {
    let (client, events, connected) = ctx.connect(Resume::FromNow, Reconnect::forever()).await?;
    let json = ctx.json;
    let mut room = match &args.room {
        Some(r) => parse_room(r)?,
        None => RoomName::lobby(),
    };
    if !room.is_lobby()
        && let Err(e) = enter(&client, &room).await
    {
        client.quit().await;
        return Err(e.into());
    }
    note(
        json,
        &format!(
            "connected to {} as {}; talking in #{room}; /help for commands",
            ctx.server()?,
            connected.user
        ),
    );
    // Recent history first; live messages already in it are skipped below.
    let mut shown = Seq(0);
    if let Ok(h) = client
        .history(Conversation::Room(room.clone()), Page::Latest, Some(10))
        .await
    {
        for m in &h.messages {
            print_message(json, m, &room);
            shown = m.seq;
        }
    }
    let current = Arc::new(Mutex::new(room.clone()));
    let (stopped_tx, mut stopped) = oneshot::channel();
    let printer = tokio::spawn(print_events(
        events,
        current.clone(),
        connected.user.clone(),
        json,
        shown,
        stopped_tx,
    ));

    // At a terminal, the line typed is wiped once read: the message comes
    // back from the server, formatted with its time, like everyone else's.
    let wipe_echo = !json && std::io::stdin().is_terminal() && std::io::stdout().is_terminal();
    let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    let outcome: Result<(), CliError> = loop {
        let line = tokio::select! {
            l = lines.next_line() => l,
            e = &mut stopped => break e.unwrap_or(None).map_or(Ok(()), |e| Err(e.into())),
        };
        let line = match line {
            Ok(Some(l)) => {
                if wipe_echo {
                    print!("\x1b[1A\x1b[2K");
                }
                l
            }
            Ok(None) => break Ok(()),
            Err(e) => break Err(CliError::Local(format!("cannot read standard input: {e}"))),
        };
        let result = match parse_line(&line) {
            Line::Empty => Ok(()),
            Line::Quit => break Ok(()),
            Line::Help => {
                if !json {
                    say(HELP);
                }
                Ok(())
            }
            Line::Bad(why) => {
                note(json, &why);
                Ok(())
            }
            Line::Say(text) => match Body::parse(text) {
                Ok(body) => client
                    .send(Conversation::Room(room.clone()), body)
                    .await
                    .map(drop),
                Err(_) => Ok(()),
            },
            Line::Msg(user, text) => match (parse_user(&user), Body::parse(text)) {
                (Ok(user), Ok(body)) => client.send(Conversation::Peer(user), body).await.map(drop),
                (Err(e), _) => {
                    note(json, &e.to_string());
                    Ok(())
                }
                (_, Err(_)) => Ok(()),
            },
            Line::Join(name) => match parse_room(&name) {
                Ok(new) => match enter(&client, &new).await {
                    Ok(what) => {
                        room = new;
                        set(&current, &room);
                        note(json, &what);
                        Ok(())
                    }
                    Err(e) => Err(e),
                },
                Err(e) => {
                    note(json, &e.to_string());
                    Ok(())
                }
            },
            Line::Leave => {
                if room.is_lobby() {
                    note(json, "everyone stays in the lobby");
                    Ok(())
                } else {
                    match client.leave(room.clone()).await {
                        Ok(()) => {
                            note(json, &format!("left #{room}; back in #lobby"));
                            room = RoomName::lobby();
                            set(&current, &room);
                            Ok(())
                        }
                        Err(e) => Err(e),
                    }
                }
            }
            Line::Who => client.members(room.clone()).await.map(|members| {
                for m in members {
                    if json {
                        say(&output::member_json(&m).to_string());
                    } else {
                        say(&format!("  {}", output::member_text(&m)));
                    }
                }
            }),
            Line::Rooms => client.rooms().await.map(|rooms| {
                for r in rooms {
                    if json {
                        say(&output::room_json(&r).to_string());
                    } else {
                        say(&format!("  {}", output::room_text(&r)));
                    }
                }
            }),
        };
        if let Err(e) = result {
            match e {
                chatus_client::Error::Stopped => break Ok(()),
                e => note(json, &format!("error: {e}")),
            }
        }
    };
    client.quit().await;
    let _ = printer.await;
    outcome
}

fn set(current: &Mutex<RoomName>, room: &RoomName) {
    if let Ok(mut c) = current.lock() {
        c.clone_from(room);
    }
}

fn print_message(json: bool, m: &chatus_client::protocol::message::Message, current: &RoomName) {
    if json {
        say(&output::message_json(m).to_string());
    } else {
        let elsewhere = m.conv != Conversation::Room(current.clone());
        say(&output::message_text(m, elsewhere, false));
    }
}

/// Prints events until the client stops; reports why it stopped.
async fn print_events(
    mut events: Events,
    current: Arc<Mutex<RoomName>>,
    me: Username,
    json: bool,
    shown: Seq,
    stopped: oneshot::Sender<Option<chatus_client::Error>>,
) {
    let first_room = current
        .lock()
        .map(|r| r.clone())
        .unwrap_or_else(|_| RoomName::lobby());
    let mut error = None;
    while let Some(event) = events.recv().await {
        let room = current
            .lock()
            .map(|r| r.clone())
            .unwrap_or_else(|_| RoomName::lobby());
        match event {
            Event::Message { message, .. } => {
                if message.conv == Conversation::Room(first_room.clone()) && message.seq <= shown {
                    continue;
                }
                print_message(json, &message, &room);
            }
            Event::Presence(p) => {
                for m in p.users.iter().filter(|m| m.user != me) {
                    let what = if m.online {
                        "is online"
                    } else {
                        "went offline"
                    };
                    note(json, &format!("{} {what}", m.user));
                }
            }
            Event::MemberJoined(j) if j.room == room => {
                for u in j.users.iter().filter(|u| **u != me) {
                    note(json, &format!("{u} joined #{}", j.room));
                }
            }
            Event::MemberLeft(l) if l.room == room => {
                for u in l.users.iter().filter(|u| **u != me) {
                    note(json, &format!("{u} left #{}", l.room));
                }
            }
            Event::Invited(i) => {
                note(
                    json,
                    &format!("{} invited you to #{} (/join {})", i.by, i.room, i.room),
                );
            }
            Event::Disconnected { reason, retry_in } => {
                let wait =
                    retry_in.map_or(String::new(), |d| format!(" in {:.1}s", d.as_secs_f64()));
                note(
                    json,
                    &format!("connection lost ({reason}); reconnecting{wait}"),
                );
            }
            Event::Connected { user, .. } => note(json, &format!("reconnected as {user}")),
            Event::Stopped { error: e } => {
                error = e;
                break;
            }
            _ => {}
        }
    }
    let _ = stopped.send(error);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines() {
        let cases = [
            ("hello there", Line::Say("hello there".into())),
            ("  ", Line::Empty),
            ("quit", Line::Quit),
            ("/quit", Line::Quit),
            ("/join dev", Line::Join("dev".into())),
            ("/join", Line::Bad("usage: /join ROOM".into())),
            ("/leave", Line::Leave),
            (
                "/msg bob see you",
                Line::Msg("bob".into(), "see you".into()),
            ),
            ("/msg bob", Line::Bad("usage: /msg USER TEXT".into())),
            ("/who", Line::Who),
            ("/rooms", Line::Rooms),
            ("//not a command", Line::Say("/not a command".into())),
            (
                "/dance",
                Line::Bad("unknown command /dance; /help lists them".into()),
            ),
        ];
        for (input, want) in cases {
            assert_eq!(parse_line(input), want, "{input:?}");
        }
    }
}
