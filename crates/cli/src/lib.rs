//! The `chatus` command: server runner, administration, and the
//! command-line chat client, over the server and client libraries.
//!
//! # Layout
//! - [`args`]: the command line (clap).
//! - [`serve`] and [`admin`]: running and administering a server;
//!   [`migrate`]: moving a data directory into PostgreSQL.
//! - [`connect`]: what client commands share: the account to act as, and
//!   connecting while saying what is going on.
//! - [`commands`]: the one-shot client commands (`send`, `history`, …)
//!   and `tail`.
//! - [`account`]: `passwd`, `logout`, `admin user reset-password`.
//! - [`devices`]: `chatus devices` and `chatus verify`, end-to-end
//!   encryption devices; [`passphrase`]: where the key sealing a device's
//!   store comes from (keyring, `CHATUS_PASSPHRASE`, the terminal).
//! - [`chat`]: `chatus chat`, a line editor on a terminal, plain lines
//!   from a pipe.
//! - [`profile`]: `chatus profile`, the account's display name.
//! - [`backup`]: `chatus backup`, the server-side key backup (recovery
//!   key shown once, restore on a new device).
//! - [`output`]: human and JSON output.
//! - [`logging`]: tracing set-up.

pub mod account;
pub mod admin;
pub mod args;
pub mod audit;
pub mod backup;
pub mod chat;
pub mod commands;
pub mod connect;
pub mod devices;
pub mod files;
pub mod logging;
pub mod migrate;
pub mod output;
pub mod passphrase;
pub mod profile;
pub mod search;
pub mod serve;

use args::{Cli, Command};
use chatus_client::protocol::ErrorCode;

/// Exit status for an error that refused a request or failed otherwise.
pub const EXIT_FAILURE: u8 = 1;
/// Exit status for a usage mistake.
pub const EXIT_USAGE: u8 = 2;
/// Exit status when the server cannot be reached, or its certificate is
/// not trusted.
pub const EXIT_UNREACHABLE: u8 = 3;
/// Exit status when not logged in or the credentials are wrong.
pub const EXIT_AUTH: u8 = 4;

/// Everything a command can fail with.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The command line was wrong in a way clap cannot see.
    #[error("{0}")]
    Usage(String),
    /// No token is stored for the server (and user).
    #[error("{0}")]
    NotLoggedIn(String),
    /// The client library failed (unreachable, refused, …).
    #[error(transparent)]
    Client(#[from] chatus_client::Error),
    /// The server failed to start or run.
    #[error(transparent)]
    Server(#[from] chatus_server::ServerError),
    /// An administrative action failed.
    #[error(transparent)]
    Admin(#[from] chatus_server::admin::AdminError),
    /// `chatus migrate` failed or found the copy different.
    #[error(transparent)]
    Migrate(#[from] chatus_server::migrate::MigrateError),
    /// A file upload or download failed.
    #[error(transparent)]
    Transfer(#[from] chatus_client::transfer::TransferError),
    /// The stored logins could not be used.
    #[error(transparent)]
    Sessions(#[from] chatus_client::SessionsError),
    /// A local file or terminal operation failed.
    #[error("{0}")]
    Local(String),
    /// The server's certificate was not trusted (unknown and not accepted,
    /// or changed).
    #[error("{0}")]
    Untrusted(String),
}

/// The exit status for an error.
pub fn exit_code(e: &anyhow::Error) -> u8 {
    match e.downcast_ref::<CliError>() {
        Some(CliError::Usage(_)) => EXIT_USAGE,
        Some(CliError::NotLoggedIn(_)) => EXIT_AUTH,
        Some(CliError::Sessions(chatus_client::SessionsError::NotLoggedIn { .. })) => EXIT_AUTH,
        Some(CliError::Sessions(chatus_client::SessionsError::Ambiguous { .. })) => EXIT_USAGE,
        Some(CliError::Client(chatus_client::Error::Unreachable { .. })) => EXIT_UNREACHABLE,
        Some(CliError::Untrusted(_)) => EXIT_UNREACHABLE,
        Some(CliError::Client(c)) => match c.code() {
            Some(
                ErrorCode::BadCredentials | ErrorCode::InvalidToken | ErrorCode::Unauthenticated,
            ) => EXIT_AUTH,
            _ => EXIT_FAILURE,
        },
        _ => EXIT_FAILURE,
    }
}

/// True when a window can be opened (an X11 or Wayland display is set).
pub fn has_display() -> bool {
    ["DISPLAY", "WAYLAND_DISPLAY"]
        .iter()
        .any(|v| std::env::var_os(v).is_some_and(|d| !d.is_empty()))
}

/// What to say when the desktop app was wanted but there is no display.
pub const NO_DISPLAY: &str = "No display was found (neither DISPLAY nor WAYLAND_DISPLAY is set), \
so the desktop app cannot open. Run `chatus chat` to chat in this terminal, \
or `chatus --help` for every command.";

/// Opens the desktop app (blocks until its window closes). Must run on the
/// main thread, outside any async runtime.
#[cfg(feature = "gui")]
pub fn gui(cli: &Cli) -> Result<(), CliError> {
    if !has_display() {
        return Err(CliError::Usage(NO_DISPLAY.into()));
    }
    let args = match &cli.command {
        Some(Command::Gui(g)) => g.resolve(&cli.client),
        _ => args::GuiArgs::default().resolve(&cli.client),
    };
    let options = chatus_gui::Options {
        server: args.server,
        user: args.user,
        config_dir: args.config_dir,
        key_source: None,
    };
    chatus_gui::run(&options).map_err(|e| match e {
        // The windowing library's errors name source files; one sentence
        // says what matters, the log (RUST_LOG=debug) keeps the detail.
        chatus_gui::GuiError::Window(detail) => {
            tracing::debug!(%detail, "the window did not open");
            CliError::Local(format!(
                "The desktop app could not open a window on this display ({}). \
                 Run `chatus chat` to chat in the terminal; RUST_LOG=debug shows why.",
                display_name()
            ))
        }
        other => CliError::Local(other.to_string()),
    })
}

#[cfg(feature = "gui")]
fn display_name() -> String {
    std::env::var("WAYLAND_DISPLAY")
        .ok()
        .filter(|d| !d.is_empty())
        .map(|d| format!("Wayland {d}"))
        .or_else(|| std::env::var("DISPLAY").ok().map(|d| format!("X11 {d}")))
        .unwrap_or_default()
}

/// Without the `gui` feature there is no desktop app.
#[cfg(not(feature = "gui"))]
pub fn gui(_cli: &Cli) -> Result<(), CliError> {
    if !has_display() {
        return Err(CliError::Usage(NO_DISPLAY.into()));
    }
    Err(CliError::Usage(
        "This chatus was built without the desktop app (cargo feature `gui`); \
         run `chatus chat` to chat in the terminal."
            .into(),
    ))
}

/// `chatus register alice` means `chatus register --user alice`; naming
/// two different accounts is a usage error, not a guess.
fn name_as_user(
    args: &mut args::PasswordArgs,
    global: &args::TopClientArgs,
) -> Result<(), CliError> {
    let Some(name) = args.name.take() else {
        return Ok(());
    };
    let other = args.client.user.as_ref().or(global.user.as_ref());
    if let Some(other) = other.filter(|u| **u != name) {
        return Err(CliError::Usage(format!(
            "Two accounts named: {name} and --user {other}; give one."
        )));
    }
    args.client.user = Some(name);
    Ok(())
}

/// Runs a parsed command line (everything but the desktop app).
pub async fn run(cli: Cli) -> Result<(), CliError> {
    let Some(mut command) = cli.command else {
        return Err(CliError::Usage(NO_DISPLAY.into()));
    };
    if let Command::Register(a) | Command::Login(a) = &mut command {
        name_as_user(a, &cli.client)?;
    }
    let ctx = match command.client_args() {
        Some(a) => Some(connect::Ctx::new(&a.resolve(&cli.client))?),
        None if cli.client.any() => {
            return Err(CliError::Usage(
                "--server, --user, --config-dir and --json are for client commands \
                 (`chatus send`, `chatus chat`, …), not for this one."
                    .into(),
            ));
        }
        None => None,
    };
    let ctx = ctx.as_ref();
    let need =
        || ctx.ok_or_else(|| CliError::Local("A client command ran without its options.".into()));
    match command {
        Command::Serve(args) => serve::serve(args).await,
        Command::Admin(cmd) => admin::run(cmd).await,
        Command::Migrate(args) => migrate::migrate(&args).await,
        Command::Register(p) => commands::register(need()?, &p).await,
        Command::Login(p) => commands::login(need()?, &p).await,
        Command::Logout(a) => account::logout(need()?, &a).await,
        Command::Passwd(a) => account::passwd(need()?, &a).await,
        Command::Send(a) => commands::send(need()?, a).await,
        Command::History(a) => commands::history(need()?, &a).await,
        Command::Tail(a) => commands::tail(need()?, &a).await,
        Command::Search(a) => search::search(need()?, &a).await,
        Command::Rooms(_) => commands::rooms(need()?).await,
        Command::Who(a) => commands::who(need()?, &a).await,
        Command::Create(a) => commands::create(need()?, &a).await,
        Command::Join(a) => commands::join(need()?, &a).await,
        Command::Leave(a) => commands::leave(need()?, &a).await,
        Command::Decline(a) => commands::decline(need()?, &a).await,
        Command::Invite(a) => commands::invite(need()?, &a).await,
        Command::Profile(a) => profile::profile(need()?, &a).await,
        Command::Audit(a) => audit::audit(need()?, &a).await,
        Command::Upload(a) => files::upload(need()?, &a).await,
        Command::Download(a) => files::download(need()?, &a).await,
        Command::Files(a) => files::list(need()?, &a).await,
        Command::Chat(a) => chat::chat(need()?, &a).await,
        Command::Trust(a) => connect::trust_command(need()?, &a).await,
        Command::Devices(a) => devices::devices(need()?, &a).await,
        Command::Verify(a) => devices::verify(need()?, &a).await,
        Command::Backup(a) => backup::backup(need()?, &a).await,
        Command::Passphrase(a) => passphrase::passphrase(need()?, &a).await,
        Command::Gui(_) => Err(CliError::Local(
            "The desktop app runs on the main thread; see main.rs.".into(),
        )),
    }
}
