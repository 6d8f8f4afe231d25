//! The `chatus` command: server runner, administration, and the
//! command-line chat client, over the server and client libraries.
//!
//! # Layout
//! - [`args`]: the command line (clap).
//! - [`serve`] and [`admin`]: running and administering a server.
//! - [`commands`]: the one-shot client commands (`send`, `history`, …)
//!   and `tail`.
//! - [`account`]: `passwd`, `logout`, `admin user reset-password`.
//! - [`chat`]: the interactive line mode.
//! - [`output`]: human and JSON output.
//! - [`logging`]: tracing set-up.

pub mod account;
pub mod admin;
pub mod args;
pub mod chat;
pub mod commands;
pub mod logging;
pub mod output;
pub mod serve;

use args::{Cli, Command};
use chatus_client::protocol::ErrorCode;

/// Exit status for an error that refused a request or failed otherwise.
pub const EXIT_FAILURE: u8 = 1;
/// Exit status for a usage mistake.
pub const EXIT_USAGE: u8 = 2;
/// Exit status when the server cannot be reached.
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
    /// The stored logins could not be used.
    #[error(transparent)]
    Sessions(#[from] chatus_client::SessionsError),
    /// A local file or terminal operation failed.
    #[error("{0}")]
    Local(String),
}

/// The exit status for an error.
pub fn exit_code(e: &anyhow::Error) -> u8 {
    match e.downcast_ref::<CliError>() {
        Some(CliError::Usage(_)) => EXIT_USAGE,
        Some(CliError::NotLoggedIn(_)) => EXIT_AUTH,
        Some(CliError::Sessions(chatus_client::SessionsError::NotLoggedIn { .. })) => EXIT_AUTH,
        Some(CliError::Client(chatus_client::Error::Unreachable { .. })) => EXIT_UNREACHABLE,
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

/// Opens the desktop app (blocks until its window closes). Must run on the
/// main thread, outside any async runtime.
#[cfg(feature = "gui")]
pub fn gui(cli: &Cli) -> Result<(), CliError> {
    let options = chatus_gui::Options {
        server: cli.server.clone(),
        user: cli.user.clone(),
        config_dir: cli.config_dir.clone(),
    };
    chatus_gui::run(&options).map_err(|e| CliError::Local(e.to_string()))
}

/// Without the `gui` feature there is no desktop app.
#[cfg(not(feature = "gui"))]
pub fn gui(_cli: &Cli) -> Result<(), CliError> {
    Err(CliError::Usage(
        "this chatus was built without the desktop app (cargo feature `gui`)".into(),
    ))
}

/// Runs a parsed command line (everything but the desktop app).
pub async fn run(cli: Cli) -> Result<(), CliError> {
    let ctx = commands::Ctx::new(&cli)?;
    let Some(command) = cli.command else {
        return Err(CliError::Usage(
            "say what to do; `chatus --help` lists the commands".into(),
        ));
    };
    match command {
        Command::Serve(args) => serve::serve(args).await,
        Command::Admin(cmd) => admin::run(cmd, ctx.json).await,
        Command::Register(p) => commands::register(&ctx, &p).await,
        Command::Login(p) => commands::login(&ctx, &p).await,
        Command::Logout(a) => account::logout(&ctx, &a).await,
        Command::Passwd(a) => account::passwd(&ctx, &a).await,
        Command::Send(a) => commands::send(&ctx, a).await,
        Command::History(a) => commands::history(&ctx, &a).await,
        Command::Tail(a) => commands::tail(&ctx, &a).await,
        Command::Rooms => commands::rooms(&ctx).await,
        Command::Who(a) => commands::who(&ctx, &a).await,
        Command::Create(a) => commands::create(&ctx, &a).await,
        Command::Join(a) => commands::join(&ctx, &a).await,
        Command::Leave(a) => commands::leave(&ctx, &a).await,
        Command::Invite(a) => commands::invite(&ctx, &a).await,
        Command::Chat(a) => chat::chat(&ctx, &a).await,
        Command::Gui => Err(CliError::Usage(
            "the desktop app runs on the main thread; see main.rs".into(),
        )),
    }
}
