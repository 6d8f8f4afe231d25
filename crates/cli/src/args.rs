//! Command-line arguments (clap derive). Every option that has an
//! environment variable names it in its help.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// The server client commands talk to when none is given.
pub const DEFAULT_SERVER: &str = "wss://127.0.0.1:7500";

/// ChatUs: a self-hosted chat server and its clients.
///
/// Without a command: the desktop app when a display is available.
#[derive(Debug, Parser)]
#[command(name = "chatus", version, about, propagate_version = true)]
pub struct Cli {
    /// For the desktop app, or before a client command (`chatus --user bob
    /// send …`); a client command's own options win.
    #[command(flatten)]
    pub client: TopClientArgs,

    /// Log level: error, warn, info, debug or trace [env:
    /// CHATUS_LOG_LEVEL; RUST_LOG overrides].
    #[arg(long, global = true, env = "CHATUS_LOG_LEVEL")]
    pub log_level: Option<String>,

    /// What to do.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// The client options accepted before a command (and by `chatus` alone).
// No clap `env` here or in `ClientArgs`: a flag must beat the variable
// wherever it is given, so `ClientArgs::resolve` reads the environment
// last.
#[derive(Debug, Args, Clone, Default)]
pub struct TopClientArgs {
    /// Server to talk to [env: CHATUS_SERVER; default: the server of the
    /// latest login, else wss://127.0.0.1:7500; for the desktop app the
    /// last one used].
    #[arg(long)]
    pub server: Option<String>,
    /// Account to act as [env: CHATUS_USER; default: the server's default
    /// account].
    #[arg(long, short = 'u')]
    pub user: Option<String>,
    /// Where logins and input history are kept [env: CHATUS_CONFIG_DIR;
    /// default: the user's config directory].
    #[arg(long)]
    pub config_dir: Option<PathBuf>,
    /// Print one JSON object per line (client commands).
    #[arg(long, hide = true)]
    pub json: bool,
    /// Trust the server if its certificate has this fingerprint, as
    /// `chatus serve` prints it (SHA256:…), and pin it: for scripts, or to
    /// trust a server's new certificate [env: CHATUS_ACCEPT_FINGERPRINT].
    #[arg(long, global = true, value_name = "SHA256:...")]
    pub accept_fingerprint: Option<String>,
    /// With no OS keyring and no passphrase, seal this device's store with
    /// a random key in a file beside it (weaker: anyone who can read your
    /// files can open it) [env: CHATUS_INSECURE_KEY_FILE=1].
    #[arg(long, global = true)]
    pub insecure_key_file: bool,
}

impl TopClientArgs {
    /// True when any option was given (they mean nothing to `serve` and
    /// `admin`).
    pub fn any(&self) -> bool {
        self.server.is_some() || self.user.is_some() || self.config_dir.is_some() || self.json
    }
}

/// The options every client command takes.
#[derive(Debug, Args, Clone, Default)]
#[command(next_help_heading = "Client options")]
pub struct ClientArgs {
    /// Server to talk to [env: CHATUS_SERVER; default: the server of the
    /// latest login, else wss://127.0.0.1:7500]. `host:port` and `host`
    /// work too.
    #[arg(long)]
    pub server: Option<String>,
    /// Account to act as [env: CHATUS_USER; default: the server's default
    /// account, see `chatus login`].
    #[arg(long, short = 'u')]
    pub user: Option<String>,
    /// Print one JSON object per line instead of text.
    #[arg(long)]
    pub json: bool,
    /// Where logins and input history are kept [env: CHATUS_CONFIG_DIR;
    /// default: the user's config directory].
    #[arg(long)]
    pub config_dir: Option<PathBuf>,
}

/// Client options after merging the command's, those before it, and the
/// environment (in that order of precedence).
#[derive(Debug, Clone)]
pub struct ClientOpts {
    /// The server as typed, if it was (else [`crate::connect::Ctx::new`]
    /// takes the latest login's, or [`DEFAULT_SERVER`]).
    pub server: Option<String>,
    /// The account as typed, if any.
    pub user: Option<String>,
    /// JSON output.
    pub json: bool,
    /// The config directory, if chosen.
    pub config_dir: Option<PathBuf>,
    /// A certificate fingerprint to trust (`--accept-fingerprint`).
    pub accept_fingerprint: Option<String>,
    /// A key file may seal the device store (`--insecure-key-file`).
    pub insecure_key_file: bool,
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

impl ClientArgs {
    /// Merges with the options given before the command and the
    /// environment.
    pub fn resolve(&self, top: &TopClientArgs) -> ClientOpts {
        ClientOpts {
            server: self
                .server
                .clone()
                .or_else(|| top.server.clone())
                .or_else(|| env("CHATUS_SERVER")),
            user: self
                .user
                .clone()
                .or_else(|| top.user.clone())
                .or_else(|| env("CHATUS_USER")),
            json: self.json || top.json,
            config_dir: self
                .config_dir
                .clone()
                .or_else(|| top.config_dir.clone())
                .or_else(|| env("CHATUS_CONFIG_DIR").map(PathBuf::from)),
            accept_fingerprint: top
                .accept_fingerprint
                .clone()
                .or_else(|| env("CHATUS_ACCEPT_FINGERPRINT")),
            insecure_key_file: top.insecure_key_file
                || env("CHATUS_INSECURE_KEY_FILE").is_some_and(|v| v != "0"),
        }
    }
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server.
    Serve(ServeArgs),
    /// Administer a server's data directory.
    #[command(subcommand)]
    Admin(AdminCommand),
    /// Move a data directory (SQLite) into PostgreSQL, verified; safe to
    /// run again (it finishes an interrupted run, or changes nothing).
    Migrate(MigrateArgs),
    /// Create an account and log in (it becomes the server's default).
    Register(PasswordArgs),
    /// Log in and remember the token (the account becomes the server's
    /// default).
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
    /// Search the messages of your rooms and direct conversations.
    ///
    /// End-to-end encrypted conversations are searched on this device: the
    /// newest 5000 messages of each are fetched, decrypted and matched
    /// (whole words ignoring case, "phrases", prefix*, -excluded, OR; no
    /// stemming); such hits are marked "found on this device".
    Search(crate::search::SearchArgs),
    /// List the rooms you can see.
    Rooms(ClientArgs),
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
    /// Decline an invitation to a room.
    Decline(RoomArg),
    /// A room's moderation events, newest first (the owner's audit log).
    Audit(crate::audit::AuditArgs),
    /// Show your display name, set it (--display-name NAME) or remove it
    /// (--clear); it is always shown beside your user name.
    Profile(crate::profile::ProfileArgs),
    /// Upload files to a room or a person (resumable: run it again after
    /// an interruption); exits 0 once each file is stored and its message
    /// acknowledged.
    Upload(UploadArgs),
    /// Download a shared file by its id (resumable; checked by SHA-256).
    Download(DownloadArgs),
    /// List the files shared in a room or with a person.
    Files(FilesArgs),
    /// Chat interactively: lines you type are sent; /help lists commands.
    Chat(ChatArgs),
    /// Trust the server (asks about an unknown certificate, or takes
    /// --accept-fingerprint) and list the pinned certificates; or forget
    /// one (`--forget HOST:PORT`) so that its new certificate is asked
    /// about.
    Trust(TrustArgs),
    /// List your end-to-end encryption devices (this one marked, the
    /// others' trust), or remove one with --remove ID.
    Devices(crate::devices::DevicesArgs),
    /// Verify another device (someone else's, or another of yours) by
    /// comparing emoji: both sides run `chatus verify` and confirm.
    Verify(crate::devices::VerifyArgs),
    /// Back up this account's encryption keys on the server under a
    /// recovery key shown once, and restore them on a new device:
    /// `backup enable`, `backup restore`, `backup status`, `backup disable`.
    Backup(crate::backup::BackupArgs),
    /// Seal this device's encryption keys with a new passphrase (`passphrase
    /// change`; asks the current one, then the new one twice); only for
    /// keys sealed with a passphrase, not with the OS keyring.
    Passphrase(crate::passphrase::PassphraseArgs),
    /// Open the desktop app.
    Gui(GuiArgs),
}

impl Command {
    /// The client options of a client command.
    pub fn client_args(&self) -> Option<&ClientArgs> {
        Some(match self {
            Command::Serve(_) | Command::Admin(_) | Command::Migrate(_) | Command::Gui(_) => {
                return None;
            }
            Command::Register(a) | Command::Login(a) => &a.client,
            Command::Rooms(c) => c,
            Command::Logout(a) => &a.client,
            Command::Passwd(a) => &a.client,
            Command::Send(a) => &a.client,
            Command::History(a) => &a.client,
            Command::Tail(a) => &a.client,
            Command::Search(a) => &a.client,
            Command::Who(a) => &a.client,
            Command::Create(a) => &a.client,
            Command::Join(a) | Command::Leave(a) | Command::Decline(a) => &a.client,
            Command::Invite(a) => &a.client,
            Command::Profile(a) => &a.client,
            Command::Audit(a) => &a.client,
            Command::Upload(a) => &a.client,
            Command::Download(a) => &a.client,
            Command::Files(a) => &a.client,
            Command::Chat(a) => &a.client,
            Command::Trust(a) => &a.client,
            Command::Devices(a) => &a.client,
            Command::Verify(a) => &a.client,
            Command::Backup(a) => &a.client,
            Command::Passphrase(a) => &a.client,
        })
    }
}

/// `gui` options.
#[derive(Debug, Args, Clone, Default)]
pub struct GuiArgs {
    /// Server to offer [env: CHATUS_SERVER; default: the last one used].
    #[arg(long)]
    pub server: Option<String>,
    /// Account to offer [env: CHATUS_USER].
    #[arg(long, short = 'u')]
    pub user: Option<String>,
    /// Where logins are kept [env: CHATUS_CONFIG_DIR; default: the user's
    /// config directory].
    #[arg(long)]
    pub config_dir: Option<PathBuf>,
}

impl GuiArgs {
    /// Merges with the options given before `gui` and the environment.
    pub fn resolve(&self, top: &TopClientArgs) -> GuiArgs {
        GuiArgs {
            server: self
                .server
                .clone()
                .or_else(|| top.server.clone())
                .or_else(|| env("CHATUS_SERVER")),
            user: self
                .user
                .clone()
                .or_else(|| top.user.clone())
                .or_else(|| env("CHATUS_USER")),
            config_dir: self
                .config_dir
                .clone()
                .or_else(|| top.config_dir.clone())
                .or_else(|| env("CHATUS_CONFIG_DIR").map(PathBuf::from)),
        }
    }
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
    /// Keep state in PostgreSQL at this URL (postgres://user@host/db)
    /// instead of SQLite in the data directory; nodes sharing one database
    /// form a cluster [env: CHATUS_STORE].
    #[arg(long, env = "CHATUS_STORE", value_name = "URL")]
    pub store: Option<String>,
    /// Link this node with the others on the same PostgreSQL store through
    /// the NATS server at this URL (nats://HOST:PORT), so they deliver each
    /// other's messages live; needs --store [env: CHATUS_BUS].
    #[arg(long, env = "CHATUS_BUS", value_name = "URL")]
    pub bus: Option<String>,
    /// The first token of every subject on the bus [default: chatus]
    /// [env: CHATUS_BUS_PREFIX].
    #[arg(long, env = "CHATUS_BUS_PREFIX", value_name = "PREFIX")]
    pub bus_prefix: Option<String>,
    /// Keep files in this S3 bucket (s3://BUCKET or s3://BUCKET/PREFIX)
    /// instead of the data directory, so every node of a cluster serves
    /// them; credentials and region from AWS_ACCESS_KEY_ID,
    /// AWS_SECRET_ACCESS_KEY and AWS_DEFAULT_REGION [env: CHATUS_FILES].
    #[arg(long, env = "CHATUS_FILES", value_name = "URL")]
    pub files: Option<String>,
    /// The S3-compatible server of --files (http:// or https://); unset
    /// means AWS [env: CHATUS_S3_ENDPOINT].
    #[arg(long, env = "CHATUS_S3_ENDPOINT", value_name = "URL")]
    pub s3_endpoint: Option<String>,
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
    /// Serve without TLS (ws://, http://), for a TLS-terminating proxy in
    /// front [env: CHATUS_PLAIN; config: tls.plain].
    #[arg(long, env = "CHATUS_PLAIN", conflicts_with_all = ["tls_cert", "tls_key"])]
    pub plain: bool,
    /// Certificate chain (PEM) to serve instead of the self-signed one;
    /// re-read on SIGHUP [env: CHATUS_TLS_CERT; config: tls.cert].
    #[arg(
        long,
        env = "CHATUS_TLS_CERT",
        value_name = "PATH",
        requires = "tls_key"
    )]
    pub tls_cert: Option<PathBuf>,
    /// Private key (PEM) of --tls-cert [env: CHATUS_TLS_KEY; config:
    /// tls.key].
    #[arg(
        long,
        env = "CHATUS_TLS_KEY",
        value_name = "PATH",
        requires = "tls_cert"
    )]
    pub tls_key: Option<PathBuf>,
}

/// `migrate` options.
#[derive(Debug, Args)]
pub struct MigrateArgs {
    /// The data directory to copy (its server must be stopped).
    #[arg(long, value_name = "DATA_DIR")]
    pub from: PathBuf,
    /// The PostgreSQL database to copy into: postgres://user@host/db
    /// (empty, or filled by an earlier run of the same migration; no node
    /// may be running on it).
    #[arg(long, value_name = "URL")]
    pub to: String,
    /// Print one JSON object per line instead of text.
    #[arg(long)]
    pub json: bool,
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
    /// Files: usage per user; with --user, that user's files; `rm` removes
    /// files (works while the server runs).
    Files(AdminFilesArgs),
    /// Manage rooms.
    #[command(subcommand)]
    Room(AdminRoomCommand),
}

/// `admin room` subcommands.
#[derive(Debug, Subcommand)]
pub enum AdminRoomCommand {
    /// Remove a room for good: its messages and everything stored about it
    /// are erased, and files shared only there are deleted; members online
    /// are told (works while the server runs). The lobby cannot be removed.
    Rm(AdminRoomRmArgs),
}

/// `admin room rm` options.
#[derive(Debug, Args)]
pub struct AdminRoomRmArgs {
    /// The room.
    pub room: String,
    /// Why, shown to the room's members (at most 300 characters).
    #[arg(long, value_name = "TEXT")]
    pub reason: Option<String>,
    #[command(flatten)]
    pub data: DataArg,
}

/// `admin files` options.
///
/// Its `--data` and `--store` go before or after `rm` alike (`admin files
/// --data D rm ID` and `admin files rm --data D ID`).
#[derive(Debug, Args)]
pub struct AdminFilesArgs {
    #[command(subcommand)]
    pub command: Option<AdminFilesCommand>,
    /// List this user's files (id, name, size, type, created, where shared).
    #[arg(long, short = 'u', value_name = "NAME")]
    pub user: Option<String>,
    #[command(flatten)]
    pub data: GlobalDataArg,
}

/// [`DataArg`] for a command whose subcommands share it.
#[derive(Debug, Args)]
pub struct GlobalDataArg {
    /// Data directory of the server [default: ./chatus-data].
    #[arg(
        long,
        env = "CHATUS_DATA",
        default_value = "chatus-data",
        global = true
    )]
    pub data: PathBuf,
    /// The server's PostgreSQL database, when it keeps state there
    /// (`serve --store`) [env: CHATUS_STORE].
    #[arg(long, env = "CHATUS_STORE", value_name = "URL", global = true)]
    pub store: Option<String>,
    /// Print one JSON object per line instead of text.
    #[arg(long)]
    pub json: bool,
}

impl From<GlobalDataArg> for DataArg {
    fn from(a: GlobalDataArg) -> Self {
        Self {
            data: a.data,
            store: a.store,
            json: a.json,
        }
    }
}

/// `admin files` subcommands.
#[derive(Debug, Subcommand)]
pub enum AdminFilesCommand {
    /// Remove files: their messages stay, downloads answer 404; the bytes
    /// go unless another upload has the same content.
    Rm(AdminRmArgs),
}

/// `admin files rm` options.
#[derive(Debug, Args)]
pub struct AdminRmArgs {
    /// The files' ids.
    #[arg(required = true, value_name = "ID")]
    pub ids: Vec<String>,
    /// Print one JSON object per line instead of text.
    #[arg(long)]
    pub json: bool,
}

/// `admin user` subcommands.
#[derive(Debug, Subcommand)]
pub enum AdminUserCommand {
    /// Add a user (works while the server runs).
    Add(AdminAddArgs),
    /// List users.
    List(DataArg),
    /// Set a user's password and log out all their sessions (works while
    /// the server runs; it also lifts a ban).
    ResetPassword(crate::account::ResetPasswordArgs),
    /// Ban a user from the server: every session logged out, logins
    /// refused (works while the server runs).
    Ban(AdminNameArgs),
    /// Lift a user's server-wide ban (their password works again).
    Unban(AdminNameArgs),
    /// List a user's sessions (logins not expired): id, created, expires.
    Sessions(AdminNameArgs),
}

/// `admin user ban|unban|sessions` options.
#[derive(Debug, Args)]
pub struct AdminNameArgs {
    /// The user.
    pub name: String,
    #[command(flatten)]
    pub data: DataArg,
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
    /// The server's PostgreSQL database, when it keeps state there
    /// (`serve --store`) [env: CHATUS_STORE].
    #[arg(long, env = "CHATUS_STORE", value_name = "URL")]
    pub store: Option<String>,
    /// Print one JSON object per line instead of text.
    #[arg(long)]
    pub json: bool,
}

impl DataArg {
    /// The store these options name.
    pub fn location(&self) -> chatus_server::store::Location {
        chatus_server::store::Location::new(&self.data, self.store.as_deref())
    }
}

/// Password source for register and login.
#[derive(Debug, Args)]
pub struct PasswordArgs {
    /// The account's name (the same as `--user NAME`).
    #[arg(value_name = "NAME")]
    pub name: Option<String>,
    /// Read the password from the first line of standard input instead of
    /// prompting.
    #[arg(long)]
    pub password_stdin: bool,
    #[command(flatten)]
    pub client: ClientArgs,
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

/// `upload` options (`--room` or `--to` is checked by the command: not
/// needed with `--cancel`).
#[derive(Debug, Args)]
#[command(mut_group("Target", |g| g.required(false)))]
pub struct UploadArgs {
    #[command(flatten)]
    pub target: Target,
    /// The files to send, each as its own message.
    #[arg(value_name = "FILE", required = true)]
    pub files: Vec<PathBuf>,
    /// Abandon the files' interrupted uploads instead: remove them on the
    /// server and forget their resume state (no --room or --to needed).
    #[arg(long)]
    pub cancel: bool,
    #[command(flatten)]
    pub client: ClientArgs,
}

/// `download` options.
#[derive(Debug, Args)]
pub struct DownloadArgs {
    /// The file's id (shown with the message, and by `chatus files`).
    #[arg(value_name = "ID")]
    pub id: String,
    /// Where to save it: a file, or a directory to save it in under its
    /// own name [default: its own name in the current directory].
    #[arg(long, short = 'o', value_name = "PATH")]
    pub output: Option<PathBuf>,
    /// Replace an existing file.
    #[arg(long)]
    pub force: bool,
    #[command(flatten)]
    pub client: ClientArgs,
}

/// `trust` options.
#[derive(Debug, Args)]
pub struct TrustArgs {
    /// Forget the certificate pinned for this server (HOST:PORT, or an
    /// address as --server takes it); the next connection asks again.
    #[arg(long, value_name = "HOST:PORT")]
    pub forget: Option<String>,
    #[command(flatten)]
    pub client: ClientArgs,
}

/// `files` options.
#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("conv").required(true).args(["room", "room_arg", "with"]))]
pub struct FilesArgs {
    /// A room.
    #[arg(long, short = 'r')]
    pub room: Option<String>,
    /// The same as --room (`chatus files dev`).
    #[arg(value_name = "ROOM", conflicts_with_all = ["room", "with"])]
    pub room_arg: Option<String>,
    /// The direct conversation with this user.
    #[arg(long, short = 'w')]
    pub with: Option<String>,
    /// Most files to list (newest first).
    #[arg(long, short = 'n', default_value_t = 50)]
    pub limit: u32,
    #[command(flatten)]
    pub client: ClientArgs,
}

impl FilesArgs {
    /// The room, given with --room or as the argument.
    pub fn room(&self) -> Option<&str> {
        self.room.as_deref().or(self.room_arg.as_deref())
    }
}

/// `send` options.
#[derive(Debug, Args)]
pub struct SendArgs {
    #[command(flatten)]
    pub target: Target,
    /// The text (words are joined with spaces); without it, standard input
    /// is read.
    #[arg(value_name = "TEXT", required = false)]
    pub text: Vec<String>,
    #[command(flatten)]
    pub client: ClientArgs,
}

/// `history` options.
#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("conv").required(true).args(["room", "room_arg", "with"]))]
pub struct HistoryArgs {
    /// A room.
    #[arg(long, short = 'r')]
    pub room: Option<String>,
    /// The same as --room (`chatus history dev`).
    #[arg(value_name = "ROOM", conflicts_with_all = ["room", "with"])]
    pub room_arg: Option<String>,
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
    #[command(flatten)]
    pub client: ClientArgs,
}

impl HistoryArgs {
    /// The room, given with --room or as the argument.
    pub fn room(&self) -> Option<&str> {
        self.room.as_deref().or(self.room_arg.as_deref())
    }
}

/// `tail` options.
#[derive(Debug, Args)]
pub struct TailArgs {
    /// Only this room (default: every room and direct message).
    #[arg(long, short = 'r')]
    pub room: Option<String>,
    /// The same as --room (`chatus tail dev`).
    #[arg(value_name = "ROOM", conflicts_with = "room")]
    pub room_arg: Option<String>,
    /// Stop after this many messages.
    #[arg(long, short = 'n')]
    pub count: Option<u64>,
    #[command(flatten)]
    pub client: ClientArgs,
}

impl TailArgs {
    /// The room, given with --room or as the argument.
    pub fn room(&self) -> Option<&str> {
        self.room.as_deref().or(self.room_arg.as_deref())
    }
}

/// `who` options.
#[derive(Debug, Args)]
pub struct WhoArgs {
    /// List this room's members with their presence.
    #[arg(long, short = 'r')]
    pub room: Option<String>,
    /// The same as --room (`chatus who dev`).
    #[arg(value_name = "ROOM", conflicts_with = "room")]
    pub room_arg: Option<String>,
    #[command(flatten)]
    pub client: ClientArgs,
}

impl WhoArgs {
    /// The room, given with --room or as the argument.
    pub fn room(&self) -> Option<&str> {
        self.room.as_deref().or(self.room_arg.as_deref())
    }
}

/// `create` options.
#[derive(Debug, Args)]
pub struct CreateArgs {
    /// The room's name.
    pub room: String,
    /// Invitation only.
    #[arg(long)]
    pub private: bool,
    /// End-to-end encrypted, for good (implies --private): only members'
    /// devices can read it, not the server.
    #[arg(long)]
    pub encrypted: bool,
    #[command(flatten)]
    pub client: ClientArgs,
}

/// A room argument.
#[derive(Debug, Args)]
pub struct RoomArg {
    /// The room's name.
    pub room: String,
    #[command(flatten)]
    pub client: ClientArgs,
}

/// `invite` arguments.
#[derive(Debug, Args)]
pub struct InviteArgs {
    /// The room.
    pub room: String,
    /// The user to invite.
    #[arg(value_name = "USER")]
    pub invitee: String,
    #[command(flatten)]
    pub client: ClientArgs,
}

/// `chat` options.
#[derive(Debug, Args)]
pub struct ChatArgs {
    /// Room to talk in [default: lobby].
    #[arg(long, short = 'r')]
    pub room: Option<String>,
    /// The same as --room (`chatus chat dev`).
    #[arg(value_name = "ROOM", conflicts_with = "room")]
    pub room_arg: Option<String>,
    #[command(flatten)]
    pub client: ClientArgs,
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory as _, Parser as _};

    use super::{Cli, Command};

    /// `chatus gui --server …` must reach the desktop app, and a plain
    /// `chatus gui` must leave it the server it remembers.
    #[test]
    fn server_is_none_unless_given() {
        let given = Cli::try_parse_from(["chatus", "gui", "--server", "host:7600"]).unwrap();
        let Some(Command::Gui(g)) = &given.command else {
            panic!("{given:?}")
        };
        assert_eq!(g.server.as_deref(), Some("host:7600"));
        let plain = Cli::try_parse_from(["chatus", "gui"]).unwrap();
        assert!(!plain.client.any());
    }

    /// Regression (issue 10): `serve --help` listed `--server` and `--user`,
    /// which mean nothing to a server; client commands now carry their own.
    #[test]
    fn each_command_shows_only_its_own_options() {
        let mut cli = Cli::command();
        let serve = cli
            .find_subcommand_mut("serve")
            .unwrap()
            .render_long_help()
            .to_string();
        assert!(serve.contains("--addr"), "{serve}");
        for client_only in ["--server", "--user", "--json", "--config-dir"] {
            assert!(
                !serve.contains(client_only),
                "{client_only} in serve --help: {serve}"
            );
        }
        let send = cli
            .find_subcommand_mut("send")
            .unwrap()
            .render_long_help()
            .to_string();
        assert!(
            send.contains("--server") && send.contains("--user"),
            "{send}"
        );
        assert!(!send.contains("--addr"), "{send}");
        // Text is optional: standard input is read without it.
        let usage = cli
            .find_subcommand_mut("send")
            .unwrap()
            .render_usage()
            .to_string();
        assert!(usage.contains("[TEXT]..."), "{usage}");
    }

    /// The options before a command apply to it; its own win.
    #[test]
    fn options_before_a_command_apply_and_its_own_win() {
        let cli = Cli::try_parse_from([
            "chatus", "--user", "bob", "--server", "h:1", "rooms", "--server", "h:2",
        ])
        .unwrap();
        let opts = cli
            .command
            .as_ref()
            .unwrap()
            .client_args()
            .unwrap()
            .resolve(&cli.client);
        assert_eq!(
            (opts.user.as_deref(), opts.server.as_deref()),
            (Some("bob"), Some("h:2"))
        );
    }
}
