//! What every client command needs, and connecting with it: the server,
//! the account to act as (see [`chatus_client::sessions`] for the rule),
//! and a connection that says what it is doing.
//!
//! - One-shot commands (`send`, `history`, …) connect as scripts: their
//!   connection does not count for presence, a couple of quick retries,
//!   then exit 3 with the cause.
//! - `tail` and interactive `chat` say "connecting to …" once on stderr,
//!   then keep one status up to date ("retrying in 4s (connection
//!   refused)"): rewritten in place on a terminal, printed once per change
//!   of state otherwise. They retry for ever.
//! - Piped `chat` fails at start like `send` when the server is down, and
//!   rides out later drops.
//! - With no saved login, the server is asked whether it is there at all,
//!   so "unreachable" is not reported as "not logged in".

use std::io::{BufRead as _, IsTerminal as _, Write};
use std::time::Duration;

use chatus_client::protocol::{ErrorCode, Username};
use chatus_client::sessions::{Chosen, Saved};
use chatus_client::{
    Client, Config, Connected, Credentials, Error, Event, Events, Fingerprint, KeySource,
    KnownServers, Reconnect, Resume, ServerUrl, Sessions, SessionsError, Status, Trust,
};

use crate::CliError;
use crate::args::ClientOpts;

/// What every client command needs.
pub struct Ctx {
    server: String,
    user: Option<String>,
    /// Print JSON lines.
    pub json: bool,
    /// The saved logins.
    pub sessions: Sessions,
    /// A fingerprint to trust (`--accept-fingerprint`).
    accept: Option<Fingerprint>,
    /// Where the device store's key comes from.
    pub key_source: KeySource,
}

/// How a command connects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Do one thing and leave: no presence, quick retries, no status.
    OneShot,
    /// Follow live events (`tail`, interactive `chat`): presence, retry for
    /// ever, report the connection's status on stderr.
    Follow,
    /// Piped `chat`: presence, fail at start like a one-shot command, then
    /// retry for ever after drops.
    Script,
}

/// Reconnection for one-shot commands before their first login: a couple
/// of quick retries (a server that is down fails the command at once).
fn quick() -> Reconnect {
    Reconnect {
        attempts: Some(2),
        initial: Duration::from_millis(200),
        max: Duration::from_secs(1),
    }
}

/// Reconnection for one-shot commands once logged in (a long upload's
/// connection, a send in flight): about 13 s of retries, so a command
/// rides out a cluster node dying under it (a load balancer stops sending
/// to a dead node within 10 s with nginx's defaults) or a quick restart.
fn patient() -> Reconnect {
    Reconnect {
        attempts: Some(6),
        initial: Duration::from_millis(250),
        max: Duration::from_secs(5),
    }
}

/// A user name as typed (`@bob` or `bob`).
pub fn parse_user(s: &str) -> Result<Username, CliError> {
    Username::parse(s.trim().trim_start_matches('@')).map_err(|e| CliError::Usage(e.message))
}

impl Ctx {
    /// From the resolved client options.
    pub fn new(opts: &ClientOpts) -> Result<Self, CliError> {
        let sessions = Sessions::new(opts.config_dir.clone())?;
        let server = match &opts.server {
            Some(s) => s.clone(),
            None => sessions
                .last_server()?
                .unwrap_or_else(|| crate::args::DEFAULT_SERVER.to_owned()),
        };
        Ok(Self {
            server,
            user: opts.user.clone(),
            json: opts.json,
            sessions,
            accept: opts
                .accept_fingerprint
                .as_deref()
                .map(Fingerprint::parse)
                .transpose()
                .map_err(|e| CliError::Usage(e.to_string()))?,
            key_source: crate::passphrase::key_source(opts.insecure_key_file),
        })
    }

    /// The pinned certificates, beside the saved logins.
    pub fn known(&self) -> KnownServers {
        KnownServers::new(self.sessions.dir().to_owned())
    }

    /// What connections to `server` trust, after checking its certificate
    /// once: an unknown one is shown and asked about on a terminal (and
    /// pinned when trusted), refused otherwise with the flag that trusts
    /// it; a changed one is refused with how to trust it anew. An
    /// unreachable server is left to the connection to report.
    pub async fn trust(&self, server: &ServerUrl) -> Result<Trust, CliError> {
        let mut trust = Trust {
            known: Some(self.known()),
            accept: self.accept.clone(),
        };
        match chatus_client::tls::check(server, &trust, CHECK_TIMEOUT).await {
            Ok(()) | Err(Error::Unreachable { .. }) => Ok(trust),
            Err(Error::UnknownCertificate { fingerprint, .. }) => {
                let interactive =
                    !self.json && std::io::stdin().is_terminal() && std::io::stderr().is_terminal();
                if !interactive {
                    return Err(CliError::Untrusted(format!(
                        "{server} presents a certificate no known authority signed, with \
                         fingerprint {fingerprint}. If that is the fingerprint its operator sees \
                         (`chatus serve` prints it), trust it with \
                         --accept-fingerprint {fingerprint} (or CHATUS_ACCEPT_FINGERPRINT)."
                    )));
                }
                if !ask_trust(server, &fingerprint)? {
                    return Err(CliError::Untrusted(format!(
                        "Not trusted; nothing was sent to {server}."
                    )));
                }
                trust.accept = Some(
                    Fingerprint::parse(&fingerprint).map_err(|e| CliError::Local(e.to_string()))?,
                );
                chatus_client::tls::check(server, &trust, CHECK_TIMEOUT).await?;
                note(&format!(
                    "Trusted {} ({fingerprint}); saved in {}.",
                    server.key(),
                    self.sessions.dir().join("known_servers.json").display()
                ));
                Ok(trust)
            }
            Err(e @ Error::CertificateChanged { .. }) => {
                let Error::CertificateChanged { seen, .. } = &e else {
                    return Err(e.into());
                };
                Err(CliError::Untrusted(format!(
                    "{e} To trust it, run `chatus trust --forget {}` and connect again (you \
                     will be asked), or pass --accept-fingerprint {seen}.",
                    server.key()
                )))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// The server address.
    pub fn server(&self) -> Result<ServerUrl, CliError> {
        ServerUrl::parse(&self.server).map_err(|e| CliError::Usage(e.to_string()))
    }

    /// The account named with `--user`, if any.
    pub fn named_user(&self) -> Result<Option<Username>, CliError> {
        self.user.as_deref().map(parse_user).transpose()
    }

    /// The saved login to act with on `server`; says so when it is not
    /// the default, asks (at a terminal) or refuses when several are
    /// saved and none is the default.
    pub async fn account(&self, server: &ServerUrl) -> Result<Saved, CliError> {
        let named = self.named_user()?;
        match self.sessions.choose(server, named.as_ref()) {
            Ok(saved) => {
                if saved.chosen == Chosen::OnlyOne {
                    note(&format!(
                        "No default account is set for {server}; acting as {}, the only one saved.",
                        saved.user
                    ));
                }
                Ok(saved)
            }
            Err(SessionsError::Ambiguous { server: s, users }) => {
                let interactive =
                    !self.json && std::io::stdin().is_terminal() && std::io::stderr().is_terminal();
                if !interactive {
                    return Err(CliError::Usage(
                        SessionsError::Ambiguous { server: s, users }.to_string(),
                    ));
                }
                let user = ask_account(&s, &users)?;
                self.sessions.set_default(server, &user)?;
                note(&format!("{user} is now the default account for {server}."));
                Ok(self.sessions.choose(server, Some(&user))?)
            }
            Err(SessionsError::NotLoggedIn { .. }) => {
                // Is anyone there? "Not logged in" would hide that.
                let trust = self.trust(server).await?;
                Client::probe(server, &trust).await?;
                Err(CliError::NotLoggedIn(
                    self.not_logged_in(server, named.as_ref()),
                ))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// "Not logged in" with a hint that names the account when it is known.
    fn not_logged_in(&self, server: &ServerUrl, named: Option<&Username>) -> String {
        let file = self.sessions.load().unwrap_or_default();
        let elsewhere: Vec<(String, String)> = file
            .servers
            .iter()
            .flat_map(|(s, e)| {
                e.accounts
                    .values()
                    .map(move |a| (s.clone(), a.user.clone()))
            })
            .collect();
        let who = match named {
            Some(u) => u.to_string(),
            None => match elsewhere.as_slice() {
                [(_, only)] => only.clone(),
                _ => "NAME".into(),
            },
        };
        let mut text = match named {
            Some(u) => format!("{u} is not logged in on {server}"),
            None => format!("Nobody is logged in on {server}"),
        };
        // No flag where a command given none goes anyway.
        let implied = file
            .last_server
            .as_deref()
            .unwrap_or(crate::args::DEFAULT_SERVER);
        let flag = if server.to_string() == implied {
            String::new()
        } else {
            format!(" --server {server}")
        };
        text.push_str(&format!("; log in with `chatus login --user {who}{flag}`"));
        let others: Vec<String> = elsewhere
            .iter()
            .filter(|(s, u)| {
                named.is_none_or(|n| n.key() == u.to_ascii_lowercase()) && s != &server.to_string()
            })
            .map(|(s, u)| format!("{u} on {s}"))
            .collect();
        if !others.is_empty() {
            text.push_str(&format!(" (saved logins: {})", others.join(", ")));
        }
        text.push('.');
        text
    }

    /// Connects with the saved login.
    pub async fn connect(&self, mode: Mode) -> Result<(Client, Events, Connected), CliError> {
        let server = self.server()?;
        let saved = self.account(&server).await?;
        self.connect_as(mode, server, saved).await
    }

    /// Connects with a saved login already chosen (file transfers need
    /// its token as well).
    pub async fn connect_as(
        &self,
        mode: Mode,
        server: ServerUrl,
        saved: Saved,
    ) -> Result<(Client, Events, Connected), CliError> {
        let user = saved.user.clone();
        let trust = self.trust(&server).await?;
        let mut config = Config::new(server.clone(), Credentials::Token(saved.token));
        config.trust = trust;
        // This login's end-to-end encryption device, beside the tokens.
        config.e2ee_dir = Some(self.sessions.dir().to_owned());
        config.key_source = self.key_source.clone();
        config.client_label = format!("chatus-cli/{}", env!("CARGO_PKG_VERSION"));
        match mode {
            Mode::OneShot => {
                config.presence = false;
                config.resume = Resume::Off;
                config.reconnect = patient();
                config.first_connect = Some(quick());
            }
            Mode::Follow => {
                config.resume = Resume::FromNow;
                config.reconnect = Reconnect::forever();
            }
            Mode::Script => {
                config.resume = Resume::FromNow;
                config.reconnect = Reconnect::forever();
                config.first_connect = Some(quick());
            }
        }
        let (client, mut events) = Client::start(config);
        let mut status = client.status();
        let mut line = (mode == Mode::Follow).then(|| {
            let mut l = StatusLine::stderr();
            l.show(&format!("connecting to {server} as {user}…"));
            l
        });
        let result = loop {
            tokio::select! {
                e = events.recv() => match e {
                    Some(Event::Connected { user, token, limits, display_name }) => {
                        break Ok(Connected { user, token, limits, display_name });
                    }
                    Some(Event::Stopped { error }) => break Err(error.unwrap_or(Error::Stopped)),
                    None => break Err(Error::Stopped),
                    Some(_) => {}
                },
                changed = status.changed() => {
                    if changed.is_err() {
                        continue;
                    }
                    let now = status.borrow_and_update().clone();
                    if let (Some(line), Status::Waiting { error, retry_in }) = (&mut line, now) {
                        line.waiting(&error, retry_in);
                    }
                }
            }
        };
        if let Some(line) = &mut line {
            line.clear();
        }
        match result {
            Ok(connected) => Ok((client, events, connected)),
            Err(e) if e.code() == Some(ErrorCode::InvalidToken) => {
                Err(CliError::NotLoggedIn(format!(
                    "The login of {user} on {server} has expired or was revoked; log in again with `chatus login --user {user}`."
                )))
            }
            Err(e) => Err(e.into()),
        }
    }
}

/// How long the certificate check may take.
const CHECK_TIMEOUT: Duration = Duration::from_secs(10);

/// Shows an unknown certificate's fingerprint and asks whether to trust
/// it (as SSH does on first contact).
fn ask_trust(server: &ServerUrl, fingerprint: &str) -> Result<bool, CliError> {
    eprintln!(
        "The server {} presents a certificate no known authority signed (a server's own \
         self-signed certificate does).\nIts fingerprint is {fingerprint}\nCompare it with the \
         one `chatus serve` printed on the server.",
        server.key()
    );
    eprint!("Trust this server? [y/N] ");
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| CliError::Local(format!("Cannot read standard input: {e}.")))?;
    Ok(matches!(
        line.trim().to_ascii_lowercase().as_str(),
        "y" | "yes"
    ))
}

/// `trust`: checks the server's certificate (asking about an unknown one,
/// as every command does; the desktop app relies on this) and lists the
/// pinned certificates, or forgets one.
pub async fn trust_command(ctx: &Ctx, args: &crate::args::TrustArgs) -> Result<(), CliError> {
    let known = ctx.known();
    let fail = |e: chatus_client::known::KnownError| CliError::Local(e.to_string());
    if let Some(target) = &args.forget {
        let server = ServerUrl::parse(target).map_err(|e| CliError::Usage(e.to_string()))?;
        if known.forget(&server).map_err(fail)? {
            note(&format!(
                "Forgot the certificate of {}; the next connection asks about it.",
                server.key()
            ));
        } else {
            note(&format!("No certificate was pinned for {}.", server.key()));
        }
        return Ok(());
    }
    ctx.trust(&ctx.server()?).await?;
    let file = known.load().map_err(fail)?;
    let mut out = std::io::stdout().lock();
    for (server, pin) in &file.servers {
        if ctx.json {
            let line = serde_json::json!({"server": server, "fingerprint": pin.fingerprint});
            let _ = writeln!(out, "{line}");
        } else {
            let _ = writeln!(out, "{server}  {}", pin.fingerprint);
        }
    }
    Ok(())
}

/// Asks which saved account to act as.
fn ask_account(server: &str, users: &[String]) -> Result<Username, CliError> {
    eprintln!(
        "Several accounts are saved for {server}: {}.",
        users.join(", ")
    );
    loop {
        eprint!("Act as which one (it becomes the default)? ");
        let _ = std::io::stderr().flush();
        let mut line = String::new();
        let n = std::io::stdin()
            .lock()
            .read_line(&mut line)
            .map_err(|e| CliError::Local(format!("Cannot read standard input: {e}.")))?;
        if n == 0 {
            return Err(CliError::Usage(
                "No account chosen; choose one with --user NAME.".into(),
            ));
        }
        let typed = line.trim().trim_start_matches('@');
        if let Some(u) = users.iter().find(|u| u.eq_ignore_ascii_case(typed)) {
            return parse_user(u);
        }
        eprintln!("{typed:?} is not one of them.");
    }
}

/// A line on stderr for the program's own news (`chatus: …`).
pub fn note(text: &str) {
    eprintln!("chatus: {text}");
}

/// One status kept up to date: on a terminal, one line rewritten in
/// place; otherwise a line per change of state, never the same one twice
/// in a row (a retry loop does not repeat itself).
pub struct StatusLine<W: Write = std::io::Stderr> {
    out: W,
    tty: bool,
    /// A line is on screen without its newline (terminal only).
    open: bool,
    /// The last state printed (not terminal).
    last: Option<String>,
}

impl StatusLine {
    /// On stderr, rewriting in place when it is a terminal.
    pub fn stderr() -> Self {
        StatusLine::new(std::io::stderr(), std::io::stderr().is_terminal())
    }
}

impl<W: Write> StatusLine<W> {
    /// On `out`, which is a terminal or not.
    pub fn new(out: W, tty: bool) -> Self {
        Self {
            out,
            tty,
            open: false,
            last: None,
        }
    }

    /// Shows `text` as the status (off a terminal: unless it was the last
    /// one shown).
    pub fn show(&mut self, text: &str) {
        if self.tty {
            let _ = write!(self.out, "\r\x1b[2Kchatus: {text}");
            self.open = true;
        } else if self.last.as_deref() != Some(text) {
            let _ = writeln!(self.out, "chatus: {text}");
            self.last = Some(text.to_owned());
        }
        let _ = self.out.flush();
    }

    /// The connection is down: when the next attempt comes, and why.
    pub fn waiting(&mut self, error: &Error, retry_in: Duration) {
        let cause = error.cause();
        if self.tty {
            self.show(&format!("retrying in {} ({cause})", seconds(retry_in)));
        } else {
            // The delay changes every time; the state only with the cause.
            self.show(&format!("no connection ({cause}); retrying"));
        }
    }

    /// Ends the status: clears the line on a terminal.
    pub fn clear(&mut self) {
        if self.tty && self.open {
            let _ = write!(self.out, "\r\x1b[2K");
            let _ = self.out.flush();
            self.open = false;
        }
        self.last = None;
    }
}

/// `4s`, `0.5s`.
pub fn seconds(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s >= 10.0 || (s - s.round()).abs() < 0.05 {
        format!("{}s", s.round())
    } else {
        format!("{s:.1}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused() -> Error {
        Error::Unreachable {
            url: "ws://127.0.0.1:1".into(),
            reason: "connection refused".into(),
        }
    }

    /// Regression (issue 10, bug 3): `tail` said nothing while the server
    /// was down, and a retry message was a 131-character line repeated on
    /// every attempt. Off a terminal each state is said once; on one, one
    /// line is rewritten in place.
    #[test]
    fn a_retry_loop_says_each_state_once() {
        let mut plain = StatusLine::new(Vec::new(), false);
        plain.show("connecting to ws://127.0.0.1:1 as alice…");
        for i in 1..5 {
            plain.waiting(&refused(), Duration::from_millis(500 * i));
        }
        plain.waiting(&Error::Disconnected, Duration::from_secs(1));
        let text = String::from_utf8(plain.out).unwrap();
        assert_eq!(
            text,
            "chatus: connecting to ws://127.0.0.1:1 as alice…\n\
             chatus: no connection (connection refused); retrying\n\
             chatus: no connection (connection lost); retrying\n"
        );

        let mut tty = StatusLine::new(Vec::new(), true);
        tty.waiting(&refused(), Duration::from_secs(4));
        tty.clear();
        let text = String::from_utf8(tty.out).unwrap();
        assert_eq!(
            text,
            "\r\x1b[2Kchatus: retrying in 4s (connection refused)\r\x1b[2K"
        );
    }
}
