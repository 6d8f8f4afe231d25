//! The one-shot client commands and `tail`.
//!
//! Each connects with the saved login (see [`crate::connect`]), does its
//! one thing, closes the connection cleanly and exits; `send` returns only
//! once the server has stored the message. Text output of a command that
//! acts names who it acted as (`Sent to #lobby as bob (seq 18).`).

use std::collections::HashMap;
use std::io::{BufRead as _, IsTerminal as _, Read as _, Write as _};

use chatus_client::protocol::history::Page;
use chatus_client::protocol::presence::Member;
use chatus_client::protocol::profile::DisplayName;
use chatus_client::protocol::{
    Body, Conversation, ErrorCode, Password, RoomName, Seq, Username, Visibility,
};
use chatus_client::{Client, Config, Credentials, Error, Event, Opened, Reconnect, Resume, Status};
use serde_json::json;

use crate::CliError;
use crate::args::{
    CreateArgs, HistoryArgs, InviteArgs, PasswordArgs, RoomArg, SendArgs, TailArgs, WhoArgs,
};
use crate::connect::{Ctx, Mode, StatusLine, note, parse_user};
use crate::output;

/// A room name as typed (`#dev` or `dev`).
pub fn parse_room(s: &str) -> Result<RoomName, CliError> {
    RoomName::parse(s.trim().trim_start_matches('#')).map_err(|e| CliError::Usage(e.message))
}

/// Prints one line to stdout and flushes (output is often piped).
pub fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

fn print_json(v: &serde_json::Value) {
    say(&v.to_string());
}

pub(crate) fn read_line_stdin() -> Result<String, CliError> {
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| CliError::Local(format!("Cannot read standard input: {e}.")))?;
    Ok(line.trim_end_matches(['\n', '\r']).to_owned())
}

pub(crate) fn prompt_password(prompt: &str) -> Result<String, CliError> {
    rpassword::prompt_password(prompt).map_err(|e| {
        CliError::Local(format!(
            "Cannot ask for a password ({e}); use --password-stdin."
        ))
    })
}

/// The shortest password a server takes by default; asked for at the
/// prompt so nobody types a password twice only to have it refused. A
/// server set to want more still says so, and the prompt asks again.
const MIN_PASSWORD_CHARS: usize = 8;

fn read_password(args: &PasswordArgs, register: bool) -> Result<Password, CliError> {
    if args.password_stdin {
        return Password::parse(read_line_stdin()?).map_err(|e| CliError::Usage(e.message));
    }
    loop {
        let pw = prompt_password("Password: ")?;
        if register && pw.chars().count() < MIN_PASSWORD_CHARS {
            eprintln!("A password needs at least {MIN_PASSWORD_CHARS} characters; try again.");
            continue;
        }
        if register && prompt_password("Repeat the password: ")? != pw {
            eprintln!("The passwords differ; try again.");
            continue;
        }
        match Password::parse(pw) {
            Ok(p) => return Ok(p),
            Err(e) => eprintln!("{} Try again.", e.message),
        }
    }
}

fn username_for_login(ctx: &Ctx) -> Result<Username, CliError> {
    if let Some(u) = ctx.named_user()? {
        return Ok(u);
    }
    if !std::io::stdin().is_terminal() {
        return Err(CliError::Usage(
            "Say which account with --user NAME.".into(),
        ));
    }
    loop {
        eprint!("User name: ");
        let _ = std::io::stderr().flush();
        match parse_user(&read_line_stdin()?) {
            Ok(u) => return Ok(u),
            Err(e) => eprintln!("{e} Try again."),
        }
    }
}

async fn log_in(ctx: &Ctx, args: &PasswordArgs, register: bool) -> Result<(), CliError> {
    let server = ctx.server()?;
    // The certificate first: a person asked to trust a server should be
    // asked before typing a password for it.
    let trust = ctx.trust(&server).await?;
    let username = username_for_login(ctx)?;
    let interactive = !args.password_stdin;
    let (client, connected) = loop {
        let password = read_password(args, register)?;
        let credentials = if register {
            Credentials::Register {
                username: username.clone(),
                password,
            }
        } else {
            Credentials::Login {
                username: username.clone(),
                password,
            }
        };
        let mut config = Config::new(server.clone(), credentials);
        config.trust = trust.clone();
        // The login makes (or finds) this device and publishes its keys.
        config.e2ee_dir = Some(ctx.sessions.dir().to_owned());
        config.key_source = ctx.key_source.clone();
        config.resume = Resume::Off;
        config.reconnect = Reconnect::never();
        config.presence = false;
        match Client::connect(config).await {
            Ok((client, _events, connected)) => break (client, connected),
            Err(e)
                if interactive
                    && matches!(
                        e.code(),
                        Some(ErrorCode::WeakPassword | ErrorCode::BadCredentials)
                    ) =>
            {
                eprintln!("{e} Try again.");
            }
            Err(e) => return Err(e.into()),
        }
    };
    let token = connected
        .token
        .ok_or_else(|| CliError::Client(Error::Protocol("the server sent no token".into())))?;
    let before = ctx.sessions.default_user(&server)?;
    ctx.sessions.remember(&server, &connected.user, &token)?;
    client.quit().await;
    let user = connected.user;
    if ctx.json {
        print_json(&json!({"user": user.as_str(), "server": server.to_string()}));
        return Ok(());
    }
    let done = if register {
        "Registered and logged in"
    } else {
        "Logged in"
    };
    let mut text = format!("{done} as {user} on {server}.");
    if let Some(other) = before.filter(|b| !b.eq_ignore_ascii_case(user.as_str())) {
        text.push_str(&format!(
            " {user} is now the default account here, instead of {other} (pick one with --user)."
        ));
    }
    say(&text);
    Ok(())
}

/// `register`.
pub async fn register(ctx: &Ctx, args: &PasswordArgs) -> Result<(), CliError> {
    log_in(ctx, args, true).await
}

/// `login`.
pub async fn login(ctx: &Ctx, args: &PasswordArgs) -> Result<(), CliError> {
    log_in(ctx, args, false).await
}

/// `logout`.
pub async fn logout(ctx: &Ctx) -> Result<(), CliError> {
    let server = ctx.server()?;
    let user = ctx.account(&server).await?.user;
    let result = match ctx.connect(Mode::OneShot).await {
        Ok((client, _, _)) => {
            let r = client.logout().await;
            client.quit().await;
            r.map_err(CliError::from)
        }
        // Already invalid on the server: forgetting it is all there is to do.
        Err(CliError::NotLoggedIn(_)) => Ok(()),
        Err(e) => Err(e),
    };
    ctx.sessions.forget(&server, &user)?;
    result?;
    let left = ctx.sessions.accounts(&server)?;
    if ctx.json {
        print_json(&json!({
            "user": user.as_str(),
            "server": server.to_string(),
            "logged_out": true,
            "still_saved": left,
        }));
        return Ok(());
    }
    let mut text = format!("Logged out {user} from {server}.");
    match left.as_slice() {
        [] => {}
        [only] => text.push_str(&format!(
            " {only} is still logged in here; commands will act as {only} and say so."
        )),
        several => text.push_str(&format!(
            " Still logged in here: {}; commands now need --user NAME.",
            several.join(", ")
        )),
    }
    say(&text);
    Ok(())
}

fn target(room: Option<&str>, user: Option<&str>) -> Result<Conversation, CliError> {
    match (room, user) {
        (Some(r), None) => Ok(Conversation::Room(parse_room(r)?)),
        (None, Some(u)) => Ok(Conversation::Peer(parse_user(u)?)),
        _ => Err(CliError::Usage(
            "Give exactly one of --room and a user.".into(),
        )),
    }
}

/// `send`.
pub async fn send(ctx: &Ctx, args: SendArgs) -> Result<(), CliError> {
    let to = target(args.target.room.as_deref(), args.target.to.as_deref())?;
    let text = if args.text.is_empty() {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .map_err(|e| CliError::Local(format!("Cannot read standard input: {e}.")))?;
        s.trim_end_matches(['\n', '\r']).to_owned()
    } else {
        args.text.join(" ")
    };
    let body = Body::parse(text).map_err(|e| CliError::Usage(e.message))?;
    let (client, _, me) = ctx.connect(Mode::OneShot).await?;
    let result = client.send(to.clone(), body).await;
    let withheld = client.withheld_devices(&to);
    client.quit().await;
    let sent = result?;
    for d in &withheld {
        note(&crate::devices::withheld_note(d));
    }
    if ctx.json {
        let mut v = json!({
            "seq": sent.seq.0,
            "time": output::rfc3339(sent.time),
            "time_ms": sent.time.0,
            "client_id": sent.client_id.as_str(),
            "duplicate": sent.duplicate,
            "sender": me.user.as_str(),
        });
        match &sent.conv {
            Conversation::Room(r) => v["room"] = json!(r.as_str()),
            Conversation::Peer(p) => v["peer"] = json!(p.as_str()),
        }
        print_json(&v);
    } else {
        say(&format!(
            "Sent to {} as {} (seq {}).",
            output::place(&sent.conv),
            me.user,
            sent.seq
        ));
    }
    Ok(())
}

/// `history`.
pub async fn history(ctx: &Ctx, args: &HistoryArgs) -> Result<(), CliError> {
    let conv = target(args.room(), args.with.as_deref())?;
    let page = match (args.before, args.after) {
        (Some(b), _) => Page::Before(Seq(b)),
        (None, Some(a)) => Page::After(Seq(a)),
        (None, None) => Page::Latest,
    };
    if args.limit == 0 {
        return Err(CliError::Usage("--limit must be at least 1.".into()));
    }
    let (client, _, _) = ctx.connect(Mode::OneShot).await?;
    let result = client.history(conv.clone(), page, Some(args.limit)).await;
    // Ciphertexts of an encrypted conversation (messages and edits),
    // opened with this device.
    let result = result.map(|mut h| {
        let opened: Vec<Opened> = client.open_all(&mut h.messages);
        for c in &mut h.changes {
            client.open_change(c);
        }
        (h, opened)
    });
    // Keys this device lacks (messages from before it existed) are asked
    // of this account's other devices; a verified one answers when it
    // next runs, and a later `history` reads them.
    if result.is_ok() {
        match client.request_missing_keys().await {
            Ok(0) => {}
            Ok(n) => note(&format!(
                "asked your other devices for {n} missing key{}; one you have verified answers when it next runs, then history reads them.",
                if n == 1 { "" } else { "s" }
            )),
            Err(e) => note(&format!(
                "could not ask your other devices for the missing keys: {e}"
            )),
        }
    }
    client.quit().await;
    let (h, opened) = result?;
    if ctx.json {
        // Messages and changes, in seq order: every seq of the page once.
        let mut changes = h.changes.iter().peekable();
        for (m, o) in h.messages.iter().zip(&opened) {
            while let Some(c) = changes.next_if(|c| c.seq() < m.seq) {
                print_json(&output::change_json(c));
            }
            let name = h.display_names.get(&m.sender);
            match o {
                Opened::Undecryptable { reason } => {
                    let mut v = output::undecryptable_json(m, reason);
                    if let Some(d) = name {
                        v["display_name"] = d.as_str().into();
                    }
                    print_json(&v);
                }
                _ => print_json(&output::message_json_as(m, name)),
            }
        }
        for c in changes {
            print_json(&output::change_json(c));
        }
    } else {
        // Each message as it stands now: its changes are shown on it.
        // Moderation events change no message: each is a line of its own,
        // in seq order among the messages.
        let mut moderation = h
            .changes
            .iter()
            .filter(|c| matches!(c, chatus_client::protocol::Change::Moderated(_)))
            .peekable();
        for (m, o) in h.messages.iter().zip(&opened) {
            while let Some(c) = moderation.next_if(|c| c.seq() < m.seq) {
                say(&output::change_text(c, false));
            }
            let name = h.display_names.get(&m.sender);
            match o {
                Opened::Undecryptable { reason } => {
                    say(&output::message_text_as(
                        &output::undecryptable(m, reason),
                        false,
                        true,
                        name,
                    ));
                }
                _ => say(&output::message_text_as(m, false, true, name)),
            }
        }
        for c in moderation {
            say(&output::change_text(c, false));
        }
    }
    if !ctx.json && h.more {
        let flag = match &conv {
            Conversation::Room(r) => format!("--room {r}"),
            Conversation::Peer(p) => format!("--with {p}"),
        };
        match (page, h.messages.first(), h.messages.last()) {
            (Page::After(_), _, Some(last)) => {
                eprintln!("(more: chatus history {flag} --after {})", last.seq);
            }
            (_, Some(first), _) => {
                eprintln!("(older: chatus history {flag} --before {})", first.seq);
            }
            _ => {}
        }
    }
    Ok(())
}

/// `tail`.
pub async fn tail(ctx: &Ctx, args: &TailArgs) -> Result<(), CliError> {
    let room = args.room().map(parse_room).transpose()?;
    if args.count == Some(0) {
        return Ok(());
    }
    let (client, mut events, me) = ctx.connect(Mode::Follow).await?;
    if let Some(room) = &room {
        // Fail now, clearly, if the room cannot be followed.
        if let Err(e) = client
            .history(Conversation::Room(room.clone()), Page::Latest, Some(1))
            .await
        {
            client.quit().await;
            return Err(e.into());
        }
    }
    let place = room
        .as_ref()
        .map_or_else(|| "everything".to_owned(), |r| format!("#{r}"));
    note(&format!(
        "following {place} as {} on {}; Ctrl-C stops.",
        me.user,
        ctx.server()?
    ));
    let mut status = StatusLine::stderr();
    let mut seen: u64 = 0;
    // Senders' display names: of those online now and the members of the
    // rooms followed (at most 50 rooms asked), then as presence and
    // `profile` events tell.
    let mut names: HashMap<Username, DisplayName> = HashMap::new();
    let learn = |names: &mut HashMap<Username, DisplayName>, members: &[Member]| {
        for m in members {
            match &m.display_name {
                Some(d) => names.insert(m.user.clone(), d.clone()),
                None => names.remove(&m.user),
            };
        }
    };
    if let Ok(online) = client.who().await {
        learn(&mut names, &online);
    }
    let followed = match &room {
        Some(r) => vec![r.clone()],
        None => client
            .rooms()
            .await
            .unwrap_or_default()
            .into_iter()
            .filter(|r| r.joined)
            .map(|r| r.name)
            .take(50)
            .collect(),
    };
    for r in followed {
        if let Ok(members) = client.members(r).await {
            learn(&mut names, &members);
        }
    }
    let result = loop {
        let event = tokio::select! {
            e = events.recv() => e,
            _ = tokio::signal::ctrl_c() => break Ok(()),
        };
        match event {
            Some(Event::Message { message, .. }) => {
                if room
                    .as_ref()
                    .is_some_and(|r| message.conv != Conversation::Room(r.clone()))
                {
                    continue;
                }
                let name = names.get(&message.sender);
                if ctx.json {
                    print_json(&output::message_json_as(&message, name));
                } else {
                    say(&output::message_text_as(
                        &message,
                        room.is_none(),
                        false,
                        name,
                    ));
                }
                seen += 1;
                if args.count.is_some_and(|n| seen >= n) {
                    break Ok(());
                }
            }
            Some(Event::Undecryptable {
                message, reason, ..
            }) => {
                if room
                    .as_ref()
                    .is_some_and(|r| message.conv != Conversation::Room(r.clone()))
                {
                    continue;
                }
                if ctx.json {
                    print_json(&output::undecryptable_json(&message, &reason));
                } else {
                    let shown = output::undecryptable(&message, &reason);
                    say(&output::message_text(&shown, room.is_none(), false));
                }
                seen += 1;
                if args.count.is_some_and(|n| seen >= n) {
                    break Ok(());
                }
            }
            Some(Event::Decrypted { message }) => {
                if room
                    .as_ref()
                    .is_none_or(|r| message.conv == Conversation::Room(r.clone()))
                {
                    if ctx.json {
                        let mut v = output::message_json(&message);
                        v["decrypted_late"] = true.into();
                        print_json(&v);
                    } else {
                        note(&format!("message {} can be read now:", message.seq));
                        say(&output::message_text(&message, room.is_none(), false));
                    }
                }
            }
            Some(Event::E2eeWarning(text)) => note(&text),
            Some(Event::Presence(p)) => learn(&mut names, &p.users),
            Some(Event::Profile(p)) => {
                if ctx.json {
                    print_json(&output::profile_json(&p));
                }
                match p.display_name {
                    Some(d) => names.insert(p.user, d),
                    None => names.remove(&p.user),
                };
            }
            // Typing, for scripts only (`--count` leaves it out).
            Some(Event::Typing(t)) if ctx.json => {
                if room
                    .as_ref()
                    .is_none_or(|r| t.conv == Conversation::Room(r.clone()))
                {
                    print_json(&output::typing_json(&t));
                }
            }
            Some(Event::Change { change, .. }) => {
                if room
                    .as_ref()
                    .is_some_and(|r| *change.conv() != Conversation::Room(r.clone()))
                {
                    continue;
                }
                if ctx.json {
                    print_json(&output::change_json(&change));
                } else {
                    say(&output::change_text(&change, room.is_none()));
                }
                seen += 1;
                if args.count.is_some_and(|n| seen >= n) {
                    break Ok(());
                }
            }
            // Read receipts, for scripts only (`--count` leaves them out).
            Some(Event::Read(r)) if ctx.json => {
                if room
                    .as_ref()
                    .is_some_and(|x| r.conv != Conversation::Room(x.clone()))
                {
                    continue;
                }
                for line in output::read_json(&r) {
                    print_json(&line);
                }
            }
            Some(Event::Disconnected { .. }) => {
                if let Status::Waiting { error, retry_in } = &*client.status().borrow() {
                    status.waiting(error, *retry_in);
                }
            }
            Some(Event::Connected { .. }) => {
                status.clear();
                note("reconnected.");
            }
            Some(Event::Stopped { error }) => break error.map_or(Ok(()), |e| Err(e.into())),
            Some(_) => {}
            None => break Ok(()),
        }
    };
    status.clear();
    client.quit().await;
    result
}

/// `rooms`.
pub async fn rooms(ctx: &Ctx) -> Result<(), CliError> {
    let (client, _, _) = ctx.connect(Mode::OneShot).await?;
    let result = client.rooms().await;
    client.quit().await;
    for r in result? {
        if ctx.json {
            print_json(&output::room_json(&r));
        } else {
            say(&output::room_text(&r));
        }
    }
    Ok(())
}

/// `who`.
pub async fn who(ctx: &Ctx, args: &WhoArgs) -> Result<(), CliError> {
    let room = args.room().map(parse_room).transpose()?;
    let (client, _, _) = ctx.connect(Mode::OneShot).await?;
    let result = match &room {
        Some(r) => client.members(r.clone()).await,
        None => client.who().await,
    };
    client.quit().await;
    let people = result?;
    if ctx.json {
        for m in &people {
            print_json(&output::member_json(m));
        }
    } else if room.is_some() {
        for line in output::members_text(&people) {
            say(&line);
        }
    } else if people.is_empty() {
        say("Nobody is online.");
    } else {
        for m in &people {
            say(m.user.as_str());
        }
    }
    Ok(())
}

/// `create`.
pub async fn create(ctx: &Ctx, args: &CreateArgs) -> Result<(), CliError> {
    let room = parse_room(&args.room)?;
    let vis = if args.private {
        Visibility::Private
    } else {
        Visibility::Public
    };
    let (client, _, me) = ctx.connect(Mode::OneShot).await?;
    let result = if args.encrypted {
        client.create_encrypted_room(room).await
    } else {
        client.create_room(room, vis).await
    };
    client.quit().await;
    let info = result?;
    if ctx.json {
        print_json(&output::room_json(&info));
    } else {
        let encrypted = if info.encrypted {
            ", end-to-end encrypted"
        } else {
            ""
        };
        say(&format!(
            "Created #{} ({}{encrypted}) as {}.",
            info.name,
            info.visibility.as_str(),
            me.user
        ));
    }
    Ok(())
}

/// `join`.
pub async fn join(ctx: &Ctx, args: &RoomArg) -> Result<(), CliError> {
    let room = parse_room(&args.room)?;
    let (client, _, me) = ctx.connect(Mode::OneShot).await?;
    let result = client.join(room).await;
    client.quit().await;
    let info = result?;
    if ctx.json {
        print_json(&output::room_json(&info));
    } else {
        say(&format!("Joined #{} as {}.", info.name, me.user));
    }
    Ok(())
}

/// `leave`.
pub async fn leave(ctx: &Ctx, args: &RoomArg) -> Result<(), CliError> {
    let room = parse_room(&args.room)?;
    let (client, _, me) = ctx.connect(Mode::OneShot).await?;
    let result = client.leave(room.clone()).await;
    client.quit().await;
    result?;
    if ctx.json {
        print_json(&json!({"room": room.as_str(), "left": true}));
    } else {
        say(&format!("{} left #{room}.", me.user));
    }
    Ok(())
}

/// `decline`: drops our invitation to a room.
pub async fn decline(ctx: &Ctx, args: &RoomArg) -> Result<(), CliError> {
    let room = parse_room(&args.room)?;
    let (client, _, _) = ctx.connect(Mode::OneShot).await?;
    let result = client.decline_invite(room.clone()).await;
    client.quit().await;
    result?;
    if ctx.json {
        print_json(&json!({"room": room.as_str(), "declined": true}));
    } else {
        say(&format!("Declined the invitation to #{room}."));
    }
    Ok(())
}

/// `invite`.
pub async fn invite(ctx: &Ctx, args: &InviteArgs) -> Result<(), CliError> {
    let room = parse_room(&args.room)?;
    let user = parse_user(&args.invitee)?;
    let (client, _, me) = ctx.connect(Mode::OneShot).await?;
    let result = client.invite(room.clone(), user.clone()).await;
    client.quit().await;
    result?;
    if ctx.json {
        print_json(&json!({"room": room.as_str(), "invited": user.as_str()}));
    } else {
        say(&format!("{} invited {user} to #{room}.", me.user));
    }
    Ok(())
}
