//! The one-shot client commands and `tail`.
//!
//! Each connects with the stored token (see [`chatus_client::sessions`]), does its
//! one thing, closes the connection cleanly and exits; `send` returns only
//! once the server has stored the message.

use std::io::{BufRead as _, IsTerminal as _, Read as _, Write as _};
use std::time::Duration;

use chatus_client::protocol::history::Page;
use chatus_client::protocol::{
    Body, Conversation, ErrorCode, Password, RoomName, Seq, Username, Visibility,
};
use chatus_client::{
    Client, Config, Connected, Credentials, Error, Event, Events, Reconnect, Resume, ServerUrl,
    Sessions, SessionsError,
};
use serde_json::json;

use crate::CliError;
use crate::args::{
    CreateArgs, HistoryArgs, InviteArgs, PasswordArgs, RoomArg, SendArgs, TailArgs, WhoArgs,
};
use crate::output;

/// What every client command needs.
pub struct Ctx {
    server: String,
    user: Option<String>,
    /// Print JSON lines.
    pub json: bool,
    pub(crate) sessions: Sessions,
}

/// Reconnection for one-shot commands: a couple of quick retries.
pub(crate) fn one_shot() -> Reconnect {
    Reconnect {
        attempts: Some(2),
        initial: Duration::from_millis(200),
        max: Duration::from_secs(1),
    }
}

/// A room name as typed (`#dev` or `dev`).
pub fn parse_room(s: &str) -> Result<RoomName, CliError> {
    RoomName::parse(s.trim().trim_start_matches('#')).map_err(|e| CliError::Usage(e.message))
}

/// A user name as typed (`@bob` or `bob`).
pub fn parse_user(s: &str) -> Result<Username, CliError> {
    Username::parse(s.trim().trim_start_matches('@')).map_err(|e| CliError::Usage(e.message))
}

/// Prints one line to stdout and flushes (output is often piped).
pub fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

impl Ctx {
    /// From the global options.
    pub fn new(cli: &crate::args::Cli) -> Result<Self, CliError> {
        Ok(Self {
            server: cli
                .server
                .clone()
                .unwrap_or_else(|| crate::args::DEFAULT_SERVER.to_owned()),
            user: cli.user.clone(),
            json: cli.json,
            sessions: Sessions::new(cli.config_dir.clone())?,
        })
    }

    /// The server address.
    pub fn server(&self) -> Result<ServerUrl, CliError> {
        ServerUrl::parse(&self.server).map_err(|e| CliError::Usage(e.to_string()))
    }

    pub(crate) fn user(&self) -> Result<Option<Username>, CliError> {
        self.user.as_deref().map(parse_user).transpose()
    }

    /// The stored token for the chosen account.
    pub(crate) fn token(
        &self,
        server: &ServerUrl,
    ) -> Result<(Username, chatus_client::protocol::Token), CliError> {
        self.sessions
            .token(server, self.user()?.as_ref())
            .map_err(|e| match e {
                SessionsError::NotLoggedIn { who, server } => CliError::NotLoggedIn(format!(
                    "not logged in{who} on {server}; run `chatus login --user NAME` first"
                )),
                other => other.into(),
            })
    }

    /// Connects with the stored token.
    pub async fn connect(
        &self,
        resume: Resume,
        reconnect: Reconnect,
    ) -> Result<(Client, Events, Connected), CliError> {
        let server = self.server()?;
        let (user, token) = self.token(&server)?;
        let mut config = Config::new(server.clone(), Credentials::Token(token));
        config.resume = resume;
        config.reconnect = reconnect;
        config.client_label = format!("chatus-cli/{}", env!("CARGO_PKG_VERSION"));
        Client::connect(config).await.map_err(|e| match e.code() {
            Some(ErrorCode::InvalidToken) => CliError::NotLoggedIn(format!(
                "the login of {user} on {server} has expired or was revoked; run `chatus login --user {user}`"
            )),
            _ => e.into(),
        })
    }

    pub(crate) fn print_json(&self, v: &serde_json::Value) {
        say(&v.to_string());
    }
}

pub(crate) fn read_line_stdin() -> Result<String, CliError> {
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| CliError::Local(format!("cannot read standard input: {e}")))?;
    Ok(line.trim_end_matches(['\n', '\r']).to_owned())
}

pub(crate) fn prompt_password(prompt: &str) -> Result<String, CliError> {
    rpassword::prompt_password(prompt).map_err(|e| {
        CliError::Local(format!(
            "cannot ask for a password ({e}); use --password-stdin"
        ))
    })
}

fn read_password(args: &PasswordArgs, confirm: bool) -> Result<Password, CliError> {
    let pw = if args.password_stdin {
        read_line_stdin()?
    } else {
        let pw = prompt_password("Password: ")?;
        if confirm && prompt_password("Repeat the password: ")? != pw {
            return Err(CliError::Usage("the passwords differ".into()));
        }
        pw
    };
    Password::parse(pw).map_err(|e| CliError::Usage(e.message))
}

fn username_for_login(ctx: &Ctx) -> Result<Username, CliError> {
    if let Some(u) = ctx.user()? {
        return Ok(u);
    }
    if !std::io::stdin().is_terminal() {
        return Err(CliError::Usage("say which account with --user NAME".into()));
    }
    eprint!("User name: ");
    let _ = std::io::stderr().flush();
    parse_user(&read_line_stdin()?)
}

async fn log_in(ctx: &Ctx, args: &PasswordArgs, register: bool) -> Result<(), CliError> {
    let server = ctx.server()?;
    let username = username_for_login(ctx)?;
    let password = read_password(args, register)?;
    let credentials = if register {
        Credentials::Register { username, password }
    } else {
        Credentials::Login { username, password }
    };
    let mut config = Config::new(server.clone(), credentials);
    config.resume = Resume::Off;
    config.reconnect = Reconnect::never();
    let (client, _events, connected) = Client::connect(config).await?;
    let token = connected
        .token
        .ok_or_else(|| CliError::Client(Error::Protocol("the server sent no token".into())))?;
    ctx.sessions.remember(&server, &connected.user, &token)?;
    client.quit().await;
    if ctx.json {
        ctx.print_json(&json!({"user": connected.user.as_str(), "server": server.to_string()}));
    } else if register {
        say(&format!(
            "Registered and logged in as {} on {server}.",
            connected.user
        ));
    } else {
        say(&format!("Logged in as {} on {server}.", connected.user));
    }
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
    let (user, _) = ctx.token(&server)?;
    let result = match ctx.connect(Resume::Off, one_shot()).await {
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
    if ctx.json {
        ctx.print_json(
            &json!({"user": user.as_str(), "server": server.to_string(), "logged_out": true}),
        );
    } else {
        say(&format!("Logged out {user} from {server}."));
    }
    Ok(())
}

fn target(room: Option<&str>, user: Option<&str>) -> Result<Conversation, CliError> {
    match (room, user) {
        (Some(r), None) => Ok(Conversation::Room(parse_room(r)?)),
        (None, Some(u)) => Ok(Conversation::Peer(parse_user(u)?)),
        _ => Err(CliError::Usage(
            "give exactly one of --room and a user".into(),
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
            .map_err(|e| CliError::Local(format!("cannot read standard input: {e}")))?;
        s.trim_end_matches(['\n', '\r']).to_owned()
    } else {
        args.text.join(" ")
    };
    let body = Body::parse(text).map_err(|e| CliError::Usage(e.message))?;
    let (client, _, _) = ctx.connect(Resume::Off, one_shot()).await?;
    let result = client.send(to, body).await;
    client.quit().await;
    let sent = result?;
    if ctx.json {
        let mut v = json!({
            "seq": sent.seq.0,
            "time": output::rfc3339(sent.time),
            "time_ms": sent.time.0,
            "client_id": sent.client_id.as_str(),
            "duplicate": sent.duplicate,
        });
        match &sent.conv {
            Conversation::Room(r) => v["room"] = json!(r.as_str()),
            Conversation::Peer(p) => v["peer"] = json!(p.as_str()),
        }
        ctx.print_json(&v);
    } else {
        say(&format!(
            "Sent to {} (seq {}).",
            output::place(&sent.conv),
            sent.seq
        ));
    }
    Ok(())
}

/// `history`.
pub async fn history(ctx: &Ctx, args: &HistoryArgs) -> Result<(), CliError> {
    let conv = target(args.room.as_deref(), args.with.as_deref())?;
    let page = match (args.before, args.after) {
        (Some(b), _) => Page::Before(Seq(b)),
        (None, Some(a)) => Page::After(Seq(a)),
        (None, None) => Page::Latest,
    };
    if args.limit == 0 {
        return Err(CliError::Usage("--limit must be at least 1".into()));
    }
    let (client, _, _) = ctx.connect(Resume::Off, one_shot()).await?;
    let result = client.history(conv.clone(), page, Some(args.limit)).await;
    client.quit().await;
    let h = result?;
    for m in &h.messages {
        if ctx.json {
            ctx.print_json(&output::message_json(m));
        } else {
            say(&output::message_text(m, false, true));
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
    let room = args.room.as_deref().map(parse_room).transpose()?;
    if args.count == Some(0) {
        return Ok(());
    }
    let (client, mut events, _) = ctx.connect(Resume::FromNow, Reconnect::forever()).await?;
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
    let mut seen: u64 = 0;
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
                if ctx.json {
                    ctx.print_json(&output::message_json(&message));
                } else {
                    say(&output::message_text(&message, room.is_none(), false));
                }
                seen += 1;
                if args.count.is_some_and(|n| seen >= n) {
                    break Ok(());
                }
            }
            Some(Event::Disconnected { reason, retry_in }) => {
                let wait =
                    retry_in.map_or(String::new(), |d| format!(" in {:.1}s", d.as_secs_f64()));
                eprintln!("chatus: connection lost ({reason}); reconnecting{wait}");
            }
            Some(Event::Connected { user, .. }) => eprintln!("chatus: reconnected as {user}"),
            Some(Event::Stopped { error }) => break error.map_or(Ok(()), |e| Err(e.into())),
            Some(_) => {}
            None => break Ok(()),
        }
    };
    client.quit().await;
    result
}

/// `rooms`.
pub async fn rooms(ctx: &Ctx) -> Result<(), CliError> {
    let (client, _, _) = ctx.connect(Resume::Off, one_shot()).await?;
    let result = client.rooms().await;
    client.quit().await;
    for r in result? {
        if ctx.json {
            ctx.print_json(&output::room_json(&r));
        } else {
            say(&output::room_text(&r));
        }
    }
    Ok(())
}

/// `who`.
pub async fn who(ctx: &Ctx, args: &WhoArgs) -> Result<(), CliError> {
    let room = args.room.as_deref().map(parse_room).transpose()?;
    let (client, _, _) = ctx.connect(Resume::Off, one_shot()).await?;
    let result = match room {
        Some(r) => client.members(r).await,
        None => client.who().await,
    };
    client.quit().await;
    for m in result? {
        if ctx.json {
            ctx.print_json(&output::member_json(&m));
        } else {
            say(&output::member_text(&m));
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
    let (client, _, _) = ctx.connect(Resume::Off, one_shot()).await?;
    let result = client.create_room(room, vis).await;
    client.quit().await;
    let info = result?;
    if ctx.json {
        ctx.print_json(&output::room_json(&info));
    } else {
        say(&format!(
            "Created #{} ({}).",
            info.name,
            info.visibility.as_str()
        ));
    }
    Ok(())
}

/// `join`.
pub async fn join(ctx: &Ctx, args: &RoomArg) -> Result<(), CliError> {
    let room = parse_room(&args.room)?;
    let (client, _, _) = ctx.connect(Resume::Off, one_shot()).await?;
    let result = client.join(room).await;
    client.quit().await;
    let info = result?;
    if ctx.json {
        ctx.print_json(&output::room_json(&info));
    } else {
        say(&format!("Joined #{}.", info.name));
    }
    Ok(())
}

/// `leave`.
pub async fn leave(ctx: &Ctx, args: &RoomArg) -> Result<(), CliError> {
    let room = parse_room(&args.room)?;
    let (client, _, _) = ctx.connect(Resume::Off, one_shot()).await?;
    let result = client.leave(room.clone()).await;
    client.quit().await;
    result?;
    if ctx.json {
        ctx.print_json(&json!({"room": room.as_str(), "left": true}));
    } else {
        say(&format!("Left #{room}."));
    }
    Ok(())
}

/// `invite`.
pub async fn invite(ctx: &Ctx, args: &InviteArgs) -> Result<(), CliError> {
    let room = parse_room(&args.room)?;
    let user = parse_user(&args.invitee)?;
    let (client, _, _) = ctx.connect(Resume::Off, one_shot()).await?;
    let result = client.invite(room.clone(), user.clone()).await;
    client.quit().await;
    result?;
    if ctx.json {
        ctx.print_json(&json!({"room": room.as_str(), "invited": user.as_str()}));
    } else {
        say(&format!("Invited {user} to #{room}."));
    }
    Ok(())
}
