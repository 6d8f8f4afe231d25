//! Command-line arguments (clap derive). Every option that has an
//! environment variable names it in its help.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// The server client commands talk to when none is given.
pub const DEFAULT_SERVER: &str = "ws://127.0.0.1:7500";

/// ChatUs: a self-hosted chat server and its clients.
#[derive(Debug, Parser)]
#[command(name = "chatus", version, about, propagate_version = true)]
pub struct Cli {
    /// Server to talk to [default: ws://127.0.0.1:7500; the desktop app
    /// remembers the last one].
    // No clap default: the desktop app must tell "not given" (use the
    // remembered server) from "given" (use this one).
    #[arg(long, global = true, env = "CHATUS_SERVER")]
    pub server: Option<String>,

    /// Account to act as (default: the last one logged in on this server).
    #[arg(long, short = 'u', global = true, env = "CHATUS_USER")]
    pub user: Option<String>,

    /// Print one JSON object per line instead of text.
    #[arg(long, global = true)]
    pub json: bool,

    /// Where login tokens are kept (default: the user's config directory).
    #[arg(long, global = true, env = "CHATUS_CONFIG_DIR")]
    pub config_dir: Option<PathBuf>,

    /// Log level: error, warn, info, debug or trace (RUST_LOG overrides).
    #[arg(long, global = true, env = "CHATUS_LOG_LEVEL")]
    pub log_level: Option<String>,

    /// What to do (without one: the desktop app when a display is
    /// available).
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server.
    Serve(ServeArgs),
    /// Administer a server's data directory.
    #[command(subcommand)]
    Admin(AdminCommand),
    /// Create an account and log in.
    Register(PasswordArgs),
    /// Log in and remember the token.
    Login(PasswordArgs),
    /// Log out: revoke the token on the server and forget it here.
    Logout(crate::account::LogoutArgs),
    /// Change your password (asks the current one); other sessions are
    /// logged out.
    Passwd(crate::account::PasswdArgs),
    /// Send a message; exits 0 once the server has stored it.
    Send(SendArgs),
    /// Print stored messages of a room or direct conversation.
    History(HistoryArgs),
    /// Print live messages until interrupted (or until --count arrived).
    Tail(TailArgs),
    /// List the rooms you can see.
    Rooms,
    /// Who is online; with --room, a room's members and their presence.
    Who(WhoArgs),
    /// Create a room (and join it).
    Create(CreateArgs),
    /// Join a room.
    Join(RoomArg),
    /// Leave a room.
    Leave(RoomArg),
    /// Invite a user to a room.
    Invite(InviteArgs),
    /// Chat interactively: lines you type are sent; /help lists commands.
    Chat(ChatArgs),
    /// Open the desktop app.
    Gui,
}

/// `serve` options.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on [default: 127.0.0.1:7500].
    #[arg(long, env = "CHATUS_ADDR")]
    pub addr: Option<SocketAddr>,
    /// Data directory [default: ./chatus-data].
    #[arg(long, env = "CHATUS_DATA")]
    pub data: Option<PathBuf>,
    /// Configuration file (TOML; see chatus.example.toml).
    #[arg(long, env = "CHATUS_CONFIG")]
    pub config: Option<PathBuf>,
    /// Who may create accounts [default: open].
    #[arg(long, env = "CHATUS_REGISTRATION")]
    pub registration: Option<RegistrationArg>,
    /// Largest WebSocket message accepted, in bytes [default: 65536].
    #[arg(long, env = "CHATUS_MAX_FRAME_BYTES")]
    pub max_frame_bytes: Option<usize>,
    /// Largest message body accepted, in bytes [default: 16384].
    #[arg(long, env = "CHATUS_MAX_BODY_BYTES")]
    pub max_body_bytes: Option<usize>,
    /// Most simultaneous connections [default: 20000].
    #[arg(long, env = "CHATUS_MAX_CONNECTIONS")]
    pub max_connections: Option<usize>,
}

/// `--registration` values.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum RegistrationArg {
    /// Anyone may register.
    Open,
    /// Only an administrator adds users.
    Closed,
}

/// `admin` subcommands.
#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Manage users.
    #[command(subcommand)]
    User(AdminUserCommand),
}

/// `admin user` subcommands.
#[derive(Debug, Subcommand)]
pub enum AdminUserCommand {
    /// Add a user (works while the server runs).
    Add(AdminAddArgs),
    /// List users.
    List(DataArg),
    /// Set a user's password and log out all their sessions (works while
    /// the server runs).
    ResetPassword(crate::account::ResetPasswordArgs),
}

/// `admin user add` options.
#[derive(Debug, Args)]
pub struct AdminAddArgs {
    /// The new user's name.
    pub name: String,
    /// Make the user an administrator.
    #[arg(long)]
    pub admin: bool,
    /// Read the password from the first line of standard input.
    #[arg(long)]
    pub password_stdin: bool,
    #[command(flatten)]
    pub data: DataArg,
}

/// The data directory option of admin commands.
#[derive(Debug, Args)]
pub struct DataArg {
    /// Data directory of the server [default: ./chatus-data].
    #[arg(long, env = "CHATUS_DATA", default_value = "chatus-data")]
    pub data: PathBuf,
}

/// Password source for register and login.
#[derive(Debug, Args)]
pub struct PasswordArgs {
    /// Read the password from the first line of standard input instead of
    /// prompting.
    #[arg(long)]
    pub password_stdin: bool,
}

/// Where a message goes or comes from.
#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
pub struct Target {
    /// A room.
    #[arg(long, short = 'r')]
    pub room: Option<String>,
    /// A user (a direct message).
    #[arg(long, short = 't')]
    pub to: Option<String>,
}

/// `send` options.
#[derive(Debug, Args)]
pub struct SendArgs {
    #[command(flatten)]
    pub target: Target,
    /// The text (words are joined with spaces); without it, standard input
    /// is read.
    pub text: Vec<String>,
}

/// `history` options.
#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("conv").required(true).args(["room", "with"]))]
pub struct HistoryArgs {
    /// A room.
    #[arg(long, short = 'r')]
    pub room: Option<String>,
    /// The direct conversation with this user.
    #[arg(long, short = 'w')]
    pub with: Option<String>,
    /// Most messages to print.
    #[arg(long, short = 'n', default_value_t = 50)]
    pub limit: u32,
    /// Only messages before this sequence number (page backwards).
    #[arg(long, conflicts_with = "after")]
    pub before: Option<u64>,
    /// Only messages after this sequence number.
    #[arg(long)]
    pub after: Option<u64>,
}

/// `tail` options.
#[derive(Debug, Args)]
pub struct TailArgs {
    /// Only this room (default: every room and direct message).
    #[arg(long, short = 'r')]
    pub room: Option<String>,
    /// Stop after this many messages.
    #[arg(long, short = 'n')]
    pub count: Option<u64>,
}

/// `who` options.
#[derive(Debug, Args)]
pub struct WhoArgs {
    /// List this room's members with their presence.
    #[arg(long, short = 'r')]
    pub room: Option<String>,
}

/// `create` options.
#[derive(Debug, Args)]
pub struct CreateArgs {
    /// The room's name.
    pub room: String,
    /// Invitation only.
    #[arg(long)]
    pub private: bool,
}

/// A room argument.
#[derive(Debug, Args)]
pub struct RoomArg {
    /// The room's name.
    pub room: String,
}

/// `invite` arguments.
#[derive(Debug, Args)]
pub struct InviteArgs {
    /// The room.
    pub room: String,
    /// The user to invite.
    #[arg(value_name = "USER")]
    pub invitee: String,
}

/// `chat` options.
#[derive(Debug, Args)]
pub struct ChatArgs {
    /// Room to talk in [default: lobby].
    #[arg(long, short = 'r')]
    pub room: Option<String>,
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    use super::Cli;

    /// `chatus gui --server …` must reach the desktop app, and a plain
    /// `chatus gui` must leave it the server it remembers.
    #[test]
    fn server_is_none_unless_given() {
        let given = Cli::try_parse_from(["chatus", "gui", "--server", "host:7600"]).unwrap();
        assert_eq!(given.server.as_deref(), Some("host:7600"));
        if std::env::var_os("CHATUS_SERVER").is_none() {
            let plain = Cli::try_parse_from(["chatus", "gui"]).unwrap();
            assert_eq!(plain.server, None);
        }
    }
}
