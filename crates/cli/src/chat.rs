//! `chatus chat`: chat in a terminal, or from a script.
//!
//! On a terminal, lines are typed in a line editor ([`editor`]: editing,
//! history per server and account, Tab completion of commands, rooms and
//! people from [`complete`]) and everything that arrives is printed above
//! the prompt, so it never mixes with what is being typed. Lines typed are
//! sent to the current room; incoming messages are printed with time and
//! sender as they arrive. Commands: `/join ROOM`, `/create ROOM`,
//! `/leave`, `/msg USER TEXT`, `/who`, `/rooms`, `/nick NAME`, `/help`,
//! and `quit` or `/quit` (or Ctrl-D). A sender with a display name is
//! shown as `<Alice Smith (@alice)>`, never by the display name alone; the
//! display names come from member lists and `profile` events. Messages show their `seq` (`[SEQ HH:MM]`), which
//! `/edit N TEXT`, `/delete N`, `/reply N TEXT` and `/react N EMOJI` (a
//! toggle) and `/versions N` take to name one in the current room; edits, deletions and
//! reactions are printed as lines of their own, and the messages seen
//! are kept to know which way a reaction toggles and its counts.
//! Moderation commands ([`command`]: `/topic`, `/kick`, `/ban`, `/unban`,
//! `/mute`, `/unmute`, `/op`, `/deop`, `/invite-only`) act on the current
//! room; what they did is printed as a line like an edit.
//!
//! Standard input need not be a terminal: piped lines are sent one after
//! the other (each acknowledged before the next is read), and the end of
//! input leaves like `quit`. A script fails at once (exit 3) when the
//! server cannot be reached at start.

pub mod complete;
pub mod editor;
mod search;

use std::collections::{BTreeMap, HashMap};
use std::io::IsTerminal as _;
use std::sync::{Arc, Mutex};

use chatus_client::moderation::command;
use chatus_client::protocol::event::Change;
use chatus_client::protocol::history::Page;
use chatus_client::protocol::message::Message;
use chatus_client::protocol::presence::Member;
use chatus_client::protocol::profile::{DisplayName, Profile};
use chatus_client::protocol::{
    Body, Conversation, Emoji, ErrorCode, RoomName, Seq, Username, Visibility,
};
use chatus_client::{Client, Event, Events, Opened, Status};
use tokio::io::AsyncBufReadExt as _;
use tokio::sync::oneshot;

use crate::CliError;
use crate::args::ChatArgs;
use crate::commands::{parse_room, say};
use crate::connect::{Ctx, Mode, note as note_stderr, parse_user, seconds};
use crate::output;
use complete::{Names, SharedNames, learn};
use editor::{Editor, Printer, Typed};

const HELP: &str = "\
Type a line to send it to the current room. Commands (Tab completes them, and rooms and names):
  /join ROOM        talk in a room (its recent messages first)
  /create ROOM      create a public room and talk there
  /leave            leave the current room, back to the lobby
  /msg USER TEXT    send a direct message
  /reply N TEXT     answer message N (the number in [N HH:MM])
  /edit N TEXT      replace the text of your message N
  /delete N         delete your message N
  /react N EMOJI    add your reaction to message N, or take it back
  /versions N       every text message N had, oldest first
  /search QUERY     find messages in every conversation you are in (words, \"phrases\", prefix*)
  /topic TEXT       set the current room's topic (owner, moderators)
  /kick USER [WHY]  take someone out of the room (they may come back)
  /ban USER [WHY]   ban someone from the room; /unban USER lifts it
  /mute USER TIME [WHY]  make someone read-only for TIME (90s, 10m, 2h, 1d); /unmute USER
  /op USER          make a member a moderator (owner); /deop USER undoes it
  /invite-only on|off  joining needs an invitation, or not
  /who              who is in the current room
  /nick NAME        set your display name, shown beside your user name; /nick --clear removes it
  /rooms            the rooms you can see (> marks the current one)
  /help             this help
  //text            send a line that starts with /
  quit, /quit       leave (Ctrl-D too)";

/// Most messages kept to apply changes to (a long session in a busy room
/// must not grow without bound).
const SEEN_MAX: usize = 10_000;

/// How many recent messages are shown on entering a room.
const RECENT: u32 = 10;

/// One line typed, understood.
#[derive(Debug, PartialEq, Eq)]
pub enum Line {
    /// Text for the current room.
    Say(String),
    /// `/join ROOM`.
    Join(String),
    /// `/create ROOM`.
    Create(String),
    /// `/leave`.
    Leave,
    /// `/msg USER TEXT`.
    Msg(String, String),
    /// `/reply N TEXT`.
    Reply(Seq, String),
    /// `/edit N TEXT`.
    Edit(Seq, String),
    /// `/delete N`.
    Delete(Seq),
    /// `/react N EMOJI`.
    React(Seq, String),
    /// `/versions N`.
    Versions(Seq),
    /// `/search QUERY`.
    Search(String),
    /// A moderation command (see [`command`]).
    Moderate(command::Command),
    /// `/who`.
    Who,
    /// `/nick NAME` (a display name), or `/nick --clear` (`None`).
    Nick(Option<String>),
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
        "join" | "j" => Line::Bad("Usage: /join ROOM".into()),
        "create" if !rest.is_empty() => Line::Create(rest.to_owned()),
        "create" => Line::Bad("Usage: /create ROOM".into()),
        "leave" | "part" => Line::Leave,
        "msg" | "m" => match rest.split_once(char::is_whitespace) {
            Some((user, text)) if !text.trim().is_empty() => {
                Line::Msg(user.to_owned(), text.trim().to_owned())
            }
            _ => Line::Bad("Usage: /msg USER TEXT".into()),
        },
        "reply" | "edit" | "react" => {
            let usage = match name {
                "reply" => "Usage: /reply N TEXT",
                "edit" => "Usage: /edit N TEXT",
                _ => "Usage: /react N EMOJI",
            };
            match rest.split_once(char::is_whitespace) {
                Some((n, text)) if !text.trim().is_empty() => match n.parse::<u64>() {
                    Ok(n) => {
                        let (seq, text) = (Seq(n), text.trim().to_owned());
                        match name {
                            "reply" => Line::Reply(seq, text),
                            "edit" => Line::Edit(seq, text),
                            _ => Line::React(seq, text),
                        }
                    }
                    Err(_) => Line::Bad(usage.into()),
                },
                _ => Line::Bad(usage.into()),
            }
        }
        "delete" => match rest.parse::<u64>() {
            Ok(n) => Line::Delete(Seq(n)),
            Err(_) => Line::Bad("Usage: /delete N".into()),
        },
        "versions" => match rest.parse::<u64>() {
            Ok(n) => Line::Versions(Seq(n)),
            Err(_) => Line::Bad("Usage: /versions N".into()),
        },
        "search" | "s" if !rest.is_empty() => Line::Search(rest.to_owned()),
        "search" | "s" => Line::Bad("Usage: /search QUERY".into()),
        "who" | "names" => Line::Who,
        "nick" if rest == "--clear" => Line::Nick(None),
        "nick" if !rest.is_empty() => Line::Nick(Some(rest.to_owned())),
        "nick" => Line::Bad("Usage: /nick NAME (or /nick --clear)".into()),
        "rooms" | "list" => Line::Rooms,
        "help" | "?" => Line::Help,
        other => match command::parse(other, rest) {
            Some(Ok(cmd)) => Line::Moderate(cmd),
            Some(Err(usage)) => Line::Bad(usage),
            None => Line::Bad(format!("There is no command /{other}; /help lists them.")),
        },
    }
}

/// Where chat output goes: plain stdout (lines or JSON), or above the line
/// editor's prompt.
#[derive(Clone, Debug)]
enum Screen {
    Plain { json: bool },
    Editor(Printer),
}

impl Screen {
    fn line(&self, text: &str) {
        match self {
            Screen::Plain { .. } => say(text),
            Screen::Editor(p) => p.print(text.to_owned()),
        }
    }

    /// A line from chat itself (`* …`); not in JSON output.
    fn note(&self, text: &str) {
        if !matches!(self, Screen::Plain { json: true }) {
            self.line(&format!("* {text}"));
        }
    }

    fn json(&self) -> bool {
        matches!(self, Screen::Plain { json: true })
    }

    /// A message; on a terminal, one from someone else that mentions us
    /// is bold and rings the bell, as IRC clients highlight.
    fn message(
        &self,
        m: &Message,
        current: &RoomName,
        me: &Username,
        display_name: Option<&DisplayName>,
    ) {
        if self.json() {
            self.line(&output::message_json_as(m, display_name).to_string());
            return;
        }
        let elsewhere = m.conv != Conversation::Room(current.clone());
        let text = output::message_text_as(m, elsewhere, false, display_name);
        let mentioned = m.sender != *me
            && m.body
                .as_ref()
                .is_some_and(|b| chatus_client::protocol::mention::mentions(b.as_str(), me));
        if mentioned && matches!(self, Screen::Editor(_)) {
            self.line(&format!("\x07\x1b[1m{text}\x1b[0m"));
        } else {
            self.line(&text);
        }
    }

    /// A change, and (for a reaction) the message's counts after it.
    fn change(
        &self,
        c: &Change,
        target: Option<&Message>,
        current: &RoomName,
        display_name: Option<&DisplayName>,
    ) {
        if self.json() {
            self.line(&output::change_json(c).to_string());
            return;
        }
        let elsewhere = *c.conv() != Conversation::Room(current.clone());
        let mut text = output::change_text_as(c, elsewhere, display_name);
        if let (Change::Reacted(_), Some(m)) = (c, target) {
            let counts = output::reactions_text(m);
            text.push_str(&format!(
                " ({})",
                if counts.is_empty() {
                    "none left".into()
                } else {
                    counts
                }
            ));
        }
        self.line(&text);
    }
}

/// What the chat loop and the event printer share.
#[derive(Clone)]
struct Shared {
    screen: Screen,
    /// The room lines go to.
    room: Arc<Mutex<RoomName>>,
    /// The prompt's text (`#room`).
    prompt: Arc<Mutex<String>>,
    /// The last `seq` printed per conversation: history shown on entering
    /// a room and live messages never print one message twice.
    printed: Arc<Mutex<HashMap<Conversation, Seq>>>,
    /// The messages printed, as they stand now (changes applied): which way
    /// `/react` toggles, and the counts a reaction line shows. At most
    /// [`SEEN_MAX`], the lowest numbers going first.
    seen: Arc<Mutex<BTreeMap<(Conversation, Seq), Message>>>,
    /// Who we are (for reactions of ours).
    me: Username,
    names: SharedNames,
    /// Display names heard of (member lists, `profile` events), by user.
    display_names: Arc<Mutex<HashMap<Username, DisplayName>>>,
    /// Devices already named as left out of a message's room key (see
    /// `devices::withheld_note`): each is named once per session.
    withheld: Arc<Mutex<std::collections::HashSet<String>>>,
}

impl Shared {
    /// Names, once each, the devices the last message to `to` left out.
    fn note_withheld(&self, client: &Client, to: &Conversation) {
        for d in client.withheld_devices(to) {
            let first = self
                .withheld
                .lock()
                .is_ok_and(|mut w| w.insert(format!("{}/{}", d.user.key(), d.device)));
            if first {
                self.screen.note(&crate::devices::withheld_note(&d));
            }
        }
    }

    fn room(&self) -> RoomName {
        self.room
            .lock()
            .map(|r| r.clone())
            .unwrap_or_else(|_| RoomName::lobby())
    }

    fn set_room(&self, room: &RoomName) {
        if let Ok(mut r) = self.room.lock() {
            r.clone_from(room);
        }
        if let Ok(mut p) = self.prompt.lock() {
            *p = format!("#{room}");
        }
        learn(&self.names, |n| n.room(room.as_str()));
    }

    /// `user`'s display name, if heard of.
    fn display_name(&self, user: &Username) -> Option<DisplayName> {
        self.display_names.lock().ok()?.get(user).cloned()
    }

    /// Records `user`'s display name (`None`: they have none).
    fn set_display_name(&self, user: &Username, name: Option<DisplayName>) {
        if let Ok(mut d) = self.display_names.lock() {
            match name {
                Some(n) => d.insert(user.clone(), n),
                None => d.remove(user),
            };
        }
    }

    /// Learns the names and display names of a member list.
    fn learn_members(&self, members: &[Member]) {
        learn(&self.names, |n| {
            for m in members {
                n.user(m.user.as_str());
            }
        });
        for m in members {
            self.set_display_name(&m.user, m.display_name.clone());
        }
    }

    /// A `profile` event: remembered, and said.
    fn profile(&self, p: Profile) {
        let who = if p.user == self.me {
            "You are".to_owned()
        } else {
            format!("{} is", p.user)
        };
        self.screen.note(&match &p.display_name {
            Some(d) => format!("{who} now shown as {}.", output::person(&p.user, Some(d))),
            None => format!("{who} shown without a display name now."),
        });
        self.set_display_name(&p.user, p.display_name);
    }

    /// Whether `seq` of `conv` is past what was printed; moves the mark.
    fn fresh(&self, conv: &Conversation, seq: Seq) -> bool {
        self.printed.lock().map_or(true, |mut p| {
            let last = p.entry(conv.clone()).or_insert(Seq(0));
            let fresh = seq > *last;
            if fresh {
                *last = seq;
            }
            fresh
        })
    }

    /// Prints a change once, after applying it to the message it changes.
    fn print_change(&self, c: &Change) {
        if !self.fresh(c.conv(), c.seq()) {
            return;
        }
        let target = self.seen.lock().ok().and_then(|mut seen| {
            let m = seen.get_mut(&(c.conv().clone(), c.target()))?;
            chatus_client::changes::apply(m, c, Some(&self.me));
            Some(m.clone())
        });
        let who = match c {
            Change::Edited(e) => &e.sender,
            Change::Deleted(d) => &d.sender,
            Change::Reacted(r) => &r.sender,
            Change::Moderated(m) => &m.actor,
        };
        let shown = self.display_name(who);
        self.screen
            .change(c, target.as_ref(), &self.room(), shown.as_ref());
    }

    /// Our reaction `emoji` on message `seq` of `conv`, as last seen.
    fn reacted(&self, conv: &Conversation, seq: Seq, emoji: &Emoji) -> bool {
        self.seen.lock().is_ok_and(|seen| {
            seen.get(&(conv.clone(), seq))
                .is_some_and(|m| m.reactions.iter().any(|r| r.emoji == *emoji && r.mine))
        })
    }

    /// Prints `m` unless it (or a later one of its conversation) was
    /// printed already.
    fn print_once(&self, m: &Message) {
        if let Ok(mut seen) = self.seen.lock() {
            seen.insert((m.conv.clone(), m.seq), m.clone());
            if seen.len() > SEEN_MAX {
                seen.pop_first();
            }
        }
        if self.fresh(&m.conv, m.seq) {
            learn(&self.names, |n| n.user(m.sender.as_str()));
            let shown = self.display_name(&m.sender);
            self.screen
                .message(m, &self.room(), &self.me, shown.as_ref());
        }
    }

    /// Shows a room's recent messages.
    async fn recent(&self, client: &Client, room: &RoomName) {
        if let Ok(h) = client
            .history(Conversation::Room(room.clone()), Page::Latest, Some(RECENT))
            .await
        {
            for mut m in h.messages {
                match client.open(&mut m) {
                    Opened::Undecryptable { reason } => {
                        self.print_once(&output::undecryptable(&m, &reason));
                    }
                    _ => self.print_once(&m),
                }
            }
        }
    }
}

/// Lines typed: from the line editor, or plainly from standard input.
enum Input {
    Plain(tokio::io::Lines<tokio::io::BufReader<tokio::io::Stdin>>),
    Editor(Editor),
}

impl Input {
    async fn next(&mut self) -> Result<Option<String>, CliError> {
        match self {
            Input::Plain(lines) => lines
                .next_line()
                .await
                .map_err(|e| CliError::Local(format!("Cannot read standard input: {e}."))),
            Input::Editor(editor) => match editor.next().await {
                Some(Typed::Line(l)) => Ok(Some(l)),
                Some(Typed::End) | None => Ok(None),
                Some(Typed::Failed(e)) => {
                    Err(CliError::Local(format!("The terminal failed: {e}.")))
                }
            },
        }
    }
}

/// `chat`.
pub async fn chat(ctx: &Ctx, args: &ChatArgs) -> Result<(), CliError> {
    let interactive =
        !ctx.json && std::io::stdin().is_terminal() && std::io::stdout().is_terminal();
    let start = match args.room.as_ref().or(args.room_arg.as_ref()) {
        Some(r) => parse_room(r)?,
        None => RoomName::lobby(),
    };
    let mode = if interactive {
        Mode::Follow
    } else {
        Mode::Script
    };
    let (client, events, connected) = ctx.connect(mode).await?;
    let server = ctx.server()?;
    if !start.is_lobby()
        && let Err(e) = client.join(start.clone()).await
    {
        client.quit().await;
        return Err(match e.code() {
            Some(ErrorCode::UnknownRoom) => CliError::Usage(format!(
                "There is no room named {start}; create it with `chatus create {start}`."
            )),
            _ => e.into(),
        });
    }
    let names: SharedNames = Arc::new(Mutex::new(Names::default()));
    let prompt = Arc::new(Mutex::new(format!("#{start}")));
    let (mut input, screen) = if interactive {
        let history = editor::history_path(
            ctx.sessions.dir(),
            server.host(),
            server.port(),
            connected.user.as_str(),
        );
        match Editor::start(&history, names.clone(), prompt.clone()) {
            Ok((editor, printer)) => (Input::Editor(editor), Screen::Editor(printer)),
            Err(e) => {
                note_stderr(&format!(
                    "The line editor could not start ({e}); reading plain lines."
                ));
                (plain_input(), Screen::Plain { json: false })
            }
        }
    } else {
        (plain_input(), Screen::Plain { json: ctx.json })
    };
    let shared = Shared {
        screen,
        room: Arc::new(Mutex::new(start.clone())),
        prompt,
        printed: Arc::default(),
        seen: Arc::default(),
        me: connected.user.clone(),
        names,
        display_names: Arc::default(),
        withheld: Arc::default(),
    };
    shared.set_room(&start);
    learn(&shared.names, |n| n.user(connected.user.as_str()));
    shared.set_display_name(&connected.user, connected.display_name.clone());
    // The first room's people first, so its recent messages show their
    // display names.
    if let Ok(members) = client.members(start.clone()).await {
        shared.learn_members(&members);
    }
    shared.screen.note(&format!(
        "Connected to {server} as {}; talking in #{start}. /help lists the commands.",
        connected.user
    ));
    shared.recent(&client, &start).await;
    // Names for Tab: rooms (the people of the first room are known).
    if let Ok(rooms) = client.rooms().await {
        learn(&shared.names, |n| {
            for r in &rooms {
                n.room(r.name.as_str());
            }
        });
    }

    let (stopped_tx, mut stopped) = oneshot::channel();
    let printer = tokio::spawn(print_events(
        events,
        client.clone(),
        shared.clone(),
        connected.user.clone(),
        stopped_tx,
    ));
    let outcome: Result<(), CliError> = loop {
        let line = tokio::select! {
            l = input.next() => l,
            e = &mut stopped => break e.unwrap_or(None).map_or(Ok(()), |e| Err(e.into())),
        };
        let line = match line {
            Ok(Some(l)) => l,
            Ok(None) => break Ok(()),
            Err(e) => break Err(e),
        };
        match run_line(&client, &shared, parse_line(&line)).await {
            Ok(true) => {}
            Ok(false) => break Ok(()),
            Err(chatus_client::Error::Stopped) => break Ok(()),
            Err(e) => shared.screen.note(&e.to_string()),
        }
    };
    client.quit().await;
    let _ = printer.await;
    drop(shared);
    if let Input::Editor(editor) = input {
        let _ = tokio::task::spawn_blocking(move || editor.stop()).await;
    }
    outcome
}

fn plain_input() -> Input {
    Input::Plain(tokio::io::BufReader::new(tokio::io::stdin()).lines())
}

/// Carries out one typed line; false when it was `quit`.
async fn run_line(
    client: &Client,
    shared: &Shared,
    line: Line,
) -> Result<bool, chatus_client::Error> {
    let screen = &shared.screen;
    let room = shared.room();
    match line {
        Line::Empty => {}
        Line::Quit => return Ok(false),
        Line::Help => {
            if !screen.json() {
                screen.line(HELP);
            }
        }
        Line::Bad(why) => screen.note(&why),
        Line::Say(text) => {
            if let Ok(body) = Body::parse(text) {
                let to = Conversation::Room(room);
                client.send(to.clone(), body).await?;
                shared.note_withheld(client, &to);
            }
        }
        Line::Msg(user, text) => match (parse_user(&user), Body::parse(text)) {
            (Ok(user), Ok(body)) => {
                let to = Conversation::Peer(user);
                client.send(to.clone(), body).await?;
                shared.note_withheld(client, &to);
            }
            (Err(e), _) => screen.note(&e.to_string()),
            (_, Err(_)) => {}
        },
        Line::Reply(seq, text) => {
            if let Ok(body) = Body::parse(text) {
                client.reply(Conversation::Room(room), seq, body).await?;
            }
        }
        Line::Edit(seq, text) => {
            if let Ok(body) = Body::parse(text) {
                client.edit(Conversation::Room(room), seq, body).await?;
            }
        }
        Line::Delete(seq) => {
            client.delete(Conversation::Room(room), seq).await?;
        }
        Line::React(seq, emoji) => match Emoji::parse(emoji) {
            Ok(emoji) => {
                let conv = Conversation::Room(room);
                let on = !shared.reacted(&conv, seq, &emoji);
                client.react(conv, seq, emoji, on).await?;
            }
            Err(e) => screen.note(&e.message),
        },
        Line::Versions(seq) => {
            let versions = client.versions(Conversation::Room(room), seq).await?;
            if screen.json() {
                for v in &versions {
                    let line = serde_json::json!({
                        "seq": v.seq.0,
                        "body": v.body.as_str(),
                        "time": output::rfc3339(v.time),
                        "time_ms": v.time.0,
                    });
                    screen.line(&line.to_string());
                }
            } else if versions.is_empty() {
                screen.note(&format!("Message {seq} was deleted; no text is left."));
            } else {
                let lines: Vec<String> = versions
                    .iter()
                    .map(|v| {
                        let text = output::clean(v.body.as_str()).replace('\n', " ");
                        format!("  [{} {}] {text}", v.seq, output::date_time(v.time))
                    })
                    .collect();
                screen.line(&format!(
                    "Versions of {seq}, oldest first:\n{}",
                    lines.join("\n")
                ));
            }
        }
        Line::Search(query) => search::search(client, screen, &query).await?,
        Line::Join(name) => match parse_room(&name) {
            Err(e) => screen.note(&e.to_string()),
            Ok(new) => match client.join(new.clone()).await {
                Ok(info) => {
                    shared.set_room(&new);
                    if let Ok(people) = client.members(new.clone()).await {
                        shared.learn_members(&people);
                    }
                    shared.recent(client, &new).await;
                    screen.note(&format!(
                        "Now talking in #{new} ({}).",
                        members(info.members)
                    ));
                }
                Err(e) if e.code() == Some(ErrorCode::UnknownRoom) => screen.note(&format!(
                    "There is no room named #{new}; /create {new} makes it."
                )),
                Err(e) => return Err(e),
            },
        },
        Line::Create(name) => match parse_room(&name) {
            Err(e) => screen.note(&e.to_string()),
            Ok(new) => match client.create_room(new.clone(), Visibility::Public).await {
                Ok(_) => {
                    shared.set_room(&new);
                    screen.note(&format!("Created #{new}; now talking in it."));
                }
                Err(e) if e.code() == Some(ErrorCode::RoomExists) => screen.note(&format!(
                    "#{new} exists already; /join {new} to talk there."
                )),
                Err(e) => return Err(e),
            },
        },
        Line::Leave => {
            if room.is_lobby() {
                screen.note("Everyone stays in the lobby.");
            } else {
                client.leave(room.clone()).await?;
                shared.set_room(&RoomName::lobby());
                screen.note(&format!("Left #{room}; back in #lobby."));
            }
        }
        Line::Moderate(cmd) => {
            if let Err(note) = command::run(client, room, cmd).await? {
                screen.note(&note);
            }
        }
        Line::Nick(name) => match name.map(DisplayName::parse).transpose() {
            // The `profile` event that follows says what changed.
            Ok(name) => client.set_display_name(name).await?,
            Err(e) => screen.note(&e.message),
        },
        Line::Who => {
            let people = client.members(room.clone()).await?;
            shared.learn_members(&people);
            if screen.json() {
                for m in &people {
                    screen.line(&output::member_json(m).to_string());
                }
            } else {
                let mut lines = output::members_text(&people);
                if let Some(head) = lines.first_mut() {
                    *head = format!("#{room}: {head}");
                }
                screen.line(&lines.join("\n"));
            }
        }
        Line::Rooms => {
            let rooms = client.rooms().await?;
            learn(&shared.names, |n| {
                for r in &rooms {
                    n.room(r.name.as_str());
                }
            });
            if screen.json() {
                for r in &rooms {
                    screen.line(&output::room_json(r).to_string());
                }
            } else {
                let mut lines = vec!["Rooms you can see (> where you are talking):".to_owned()];
                lines.extend(rooms.iter().map(|r| {
                    let mark = if r.name == room { ">" } else { " " };
                    format!("{mark} {}", output::room_text(r))
                }));
                screen.line(&lines.join("\n"));
            }
        }
    }
    Ok(true)
}

/// A kick or ban of ours: said plainly, and when it is the room we talk
/// in, we are back in the lobby (its messages would be refused).
fn removed_from(
    shared: &Shared,
    m: &chatus_client::protocol::moderation::Moderated,
    current: &RoomName,
    me: &Username,
) {
    use chatus_client::protocol::moderation::ActionKind;
    let Conversation::Room(room) = &m.conv else {
        return;
    };
    let what = match m.action.action {
        ActionKind::Kick => "removed from",
        ActionKind::Ban => "banned from",
        _ => return,
    };
    if m.action.target.as_ref() != Some(me) {
        return;
    }
    let why = m
        .action
        .reason
        .as_ref()
        .map_or_else(String::new, |r| format!(": {}", output::clean(r.as_str())));
    let mut text = format!("You were {what} #{room} by {}{why}", m.actor);
    if room == current {
        shared.set_room(&RoomName::lobby());
        text.push_str("; back in #lobby.");
    } else {
        text.push('.');
    }
    shared.screen.note(&text);
}

fn members(n: u32) -> String {
    if n == 1 {
        "1 member".into()
    } else {
        format!("{n} members")
    }
}

/// Prints events until the client stops; reports why it stopped.
async fn print_events(
    mut events: Events,
    client: Client,
    shared: Shared,
    me: Username,
    stopped: oneshot::Sender<Option<chatus_client::Error>>,
) {
    let screen = &shared.screen;
    let mut error = None;
    // The connection's state as last told, so a retry loop says it once.
    let mut told: Option<String> = None;
    while let Some(event) = events.recv().await {
        let room = shared.room();
        match event {
            Event::Message { message, .. } => shared.print_once(&message),
            Event::Undecryptable {
                message, reason, ..
            } => shared.print_once(&output::undecryptable(&message, &reason)),
            Event::Decrypted { message } => {
                screen.note(&format!("Message {} can be read now:", message.seq));
                let shown = shared.display_name(&message.sender);
                screen.message(&message, &room, &me, shown.as_ref());
            }
            Event::E2eeWarning(text) => screen.note(&text),
            Event::Change { change, .. } => {
                shared.print_change(&change);
                if let Change::Moderated(m) = &change {
                    removed_from(&shared, m, &room, &me);
                }
            }
            Event::Presence(p) => {
                for m in p.users.iter().filter(|m| m.user != me) {
                    learn(&shared.names, |n| n.user(m.user.as_str()));
                    let what = if m.online {
                        "is online"
                    } else {
                        "went offline"
                    };
                    screen.note(&format!("{} {what}.", m.user));
                }
            }
            Event::MemberJoined(j) if j.room == room => {
                for u in j.users.iter().filter(|u| **u != me) {
                    learn(&shared.names, |n| n.user(u.as_str()));
                    screen.note(&format!("{u} joined #{}.", j.room));
                }
            }
            Event::MemberLeft(l) if l.room == room => {
                for u in l.users.iter().filter(|u| **u != me) {
                    screen.note(&format!("{u} left #{}.", l.room));
                }
            }
            Event::Invited(i) => {
                learn(&shared.names, |n| n.room(i.room.as_str()));
                screen.note(&format!(
                    "{} invited you to #{} (/join {}).",
                    i.by, i.room, i.room
                ));
            }
            Event::RoomRemoved(r) => {
                let why = r
                    .reason
                    .as_ref()
                    .map_or(String::new(), |x| format!(": {}", x.as_str()));
                screen.note(&format!(
                    "Room {} was removed by the server administrator{why}.",
                    r.room
                ));
                if r.room == room {
                    shared.set_room(&RoomName::lobby());
                    screen.note("Back in #lobby.");
                }
            }
            Event::Disconnected { reason, retry_in } => {
                let cause = match &*client.status().borrow() {
                    Status::Waiting { error, .. } => error.cause(),
                    _ => reason,
                };
                let state = format!("Connection lost ({cause}); reconnecting");
                if told.as_deref() != Some(state.as_str()) {
                    let wait = retry_in.map_or(String::new(), |d| format!(" in {}", seconds(d)));
                    screen.note(&format!("{state}{wait}…"));
                    told = Some(state);
                }
            }
            Event::Profile(p) => shared.profile(p),
            Event::Connected {
                user, display_name, ..
            } => {
                shared.set_display_name(&user, display_name);
                told = None;
                screen.note(&format!("Reconnected as {user}."));
            }
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
            ("/create dev", Line::Create("dev".into())),
            ("/create", Line::Bad("Usage: /create ROOM".into())),
            ("/join", Line::Bad("Usage: /join ROOM".into())),
            ("/leave", Line::Leave),
            (
                "/msg bob see you",
                Line::Msg("bob".into(), "see you".into()),
            ),
            ("/msg bob", Line::Bad("Usage: /msg USER TEXT".into())),
            ("/who", Line::Who),
            ("/nick Alice Smith", Line::Nick(Some("Alice Smith".into()))),
            ("/nick --clear", Line::Nick(None)),
            (
                "/nick",
                Line::Bad("Usage: /nick NAME (or /nick --clear)".into()),
            ),
            ("/rooms", Line::Rooms),
            (
                "/edit 3 better text",
                Line::Edit(Seq(3), "better text".into()),
            ),
            ("/reply 12 me too", Line::Reply(Seq(12), "me too".into())),
            ("/react 4 👍", Line::React(Seq(4), "👍".into())),
            ("/delete 9", Line::Delete(Seq(9))),
            ("/versions 9", Line::Versions(Seq(9))),
            ("/search lunch *", Line::Search("lunch *".into())),
            ("/search", Line::Bad("Usage: /search QUERY".into())),
            ("/delete nine", Line::Bad("Usage: /delete N".into())),
            ("/edit 3", Line::Bad("Usage: /edit N TEXT".into())),
            ("/react x 👍", Line::Bad("Usage: /react N EMOJI".into())),
            ("//not a command", Line::Say("/not a command".into())),
            (
                "/dance",
                Line::Bad("There is no command /dance; /help lists them.".into()),
            ),
        ];
        for (input, want) in cases {
            assert_eq!(parse_line(input), want, "{input:?}");
        }
    }
}
