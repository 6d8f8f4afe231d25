//! Where the key sealing a device's store comes from, for the CLI: the
//! passphrase in `CHATUS_PASSPHRASE` if set, else the OS keyring if one
//! answers, else the passphrase asked for on the terminal (twice when the
//! store is being sealed), else, with `--insecure-key-file`, a key file.
//! With none of them a command that needs the device says which to use.
//!
//! `chatus passphrase change` seals the device's store again with a new
//! passphrase: the current one from `CHATUS_PASSPHRASE` or asked for, the
//! new one asked for twice, or read from standard input (one line) with
//! `--new-passphrase-stdin` or when it is not a terminal. A wrong current
//! passphrase changes nothing; a store in the OS keyring (or sealed by a
//! key file) has no passphrase to change, and the command says so. It
//! does not connect: the store is on this machine.

use std::io::IsTerminal as _;
use std::sync::Arc;

use chatus_client::{
    Ask, AskFor, KeySource, Keyring, PASSPHRASE_ENV, Passphrase, StoreSeal, change_passphrase,
    store_seal,
};
use clap::{Args, ValueEnum};
use serde_json::json;

use crate::CliError;
use crate::args::ClientArgs;
use crate::commands::{read_line_stdin, say};
use crate::connect::Ctx;

/// How often a new passphrase is asked for before giving up (typed twice
/// each time).
const TRIES: usize = 3;

/// The CLI's key source (see the module doc). The terminal is asked only
/// when standard error is one: a script or a test never waits on a
/// prompt.
pub fn key_source(insecure_key_file: bool) -> KeySource {
    let ask: Option<Ask> = std::io::stderr()
        .is_terminal()
        .then(|| Arc::new(ask) as Ask);
    KeySource {
        passphrase: Passphrase::from_env(),
        keyring: Some(Keyring::os()),
        ask,
        key_file: insecure_key_file,
    }
}

fn prompt(text: &str) -> Option<Passphrase> {
    // The prompt starts by clearing the line: `chat` and `tail` may have
    // left "connecting to …" there without its newline (a status line that
    // is rewritten in place), and the prompt ran on after it.
    match rpassword::prompt_password(format!("\r\x1b[2K{text}")) {
        Ok(p) => Some(Passphrase::new(p)),
        Err(e) => {
            eprintln!("Cannot ask for the passphrase ({e}); set CHATUS_PASSPHRASE.");
            None
        }
    }
}

/// Asks on the terminal; `None` when nothing usable was typed.
fn ask(why: AskFor, owner: &str) -> Option<Passphrase> {
    match why {
        AskFor::Open => prompt(&format!("Passphrase of the encryption keys of {owner}: ")),
        AskFor::Wrong => {
            eprintln!("That passphrase does not open them.");
            prompt(&format!("Passphrase of the encryption keys of {owner}: "))
        }
        AskFor::New => {
            eprintln!(
                "No OS keyring is available to keep the encryption keys of {owner}, so they \
                 are sealed with a passphrase. You will be asked for it when ChatUs opens \
                 them (scripts can set CHATUS_PASSPHRASE)."
            );
            new_passphrase()
        }
    }
}

/// Asks for a new passphrase, typed twice, until the two agree (at most
/// [`TRIES`] times); `None` when nothing usable was typed.
fn new_passphrase() -> Option<Passphrase> {
    for _ in 0..TRIES {
        let first = prompt("New passphrase: ")?;
        if first.is_empty() {
            eprintln!("An empty passphrase protects nothing; type one.");
            continue;
        }
        let again = prompt("Repeat it: ")?;
        if first.same(&again) {
            return Some(first);
        }
        eprintln!("The two differ; again.");
    }
    None
}

/// What `chatus passphrase` does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PassphraseAction {
    /// Seal this device's encryption keys with a new passphrase.
    Change,
}

/// `passphrase` options.
#[derive(Debug, Args)]
pub struct PassphraseArgs {
    /// change.
    #[arg(value_enum)]
    pub action: PassphraseAction,
    /// Read the new passphrase from standard input (one line) instead of
    /// asking for it twice; the current one comes from CHATUS_PASSPHRASE.
    #[arg(long)]
    pub new_passphrase_stdin: bool,
    #[command(flatten)]
    pub client: ClientArgs,
}

/// `passphrase change`.
pub async fn passphrase(ctx: &Ctx, args: &PassphraseArgs) -> Result<(), CliError> {
    let PassphraseAction::Change = args.action;
    let server = ctx.server()?;
    let user = ctx.account(&server).await?.user;
    let dir = ctx.sessions.dir().to_owned();
    let owner = format!("{user} on {}", server.key());
    let none = |why: String| {
        Err(CliError::Local(format!(
            "{why}: there is no passphrase to change."
        )))
    };
    match store_seal(&dir, &server, &user)? {
        StoreSeal::Passphrase => {}
        StoreSeal::Keyring => {
            return none(format!(
                "The encryption keys of {owner} are sealed with a key in the OS keyring"
            ));
        }
        StoreSeal::KeyFile => {
            return none(format!(
                "The encryption keys of {owner} are sealed with a key file beside them (any \
                 command run with {PASSPHRASE_ENV} set seals them with that passphrase)"
            ));
        }
        StoreSeal::Missing => {
            return none(format!(
                "{owner} has no encryption keys on this machine yet (a command that connects \
                 makes them)"
            ));
        }
    }
    let terminal = std::io::stdin().is_terminal() && std::io::stderr().is_terminal();
    let old = match Passphrase::from_env() {
        Some(p) => p,
        None if terminal => prompt(&format!(
            "Current passphrase of the encryption keys of {owner}: "
        ))
        .ok_or_else(|| CliError::Usage("No passphrase was given; nothing was changed.".into()))?,
        None => {
            return Err(CliError::Usage(format!(
                "Give the current passphrase in {PASSPHRASE_ENV} (there is no terminal to ask \
                 on); nothing was changed."
            )));
        }
    };
    let new = if args.new_passphrase_stdin || !terminal {
        Passphrase::new(read_line_stdin()?)
    } else {
        new_passphrase().ok_or_else(|| {
            CliError::Usage("No new passphrase was given; nothing was changed.".into())
        })?
    };
    if new.is_empty() {
        return Err(CliError::Usage(
            "An empty passphrase protects nothing; nothing was changed.".into(),
        ));
    }
    // Argon2id twice (the old key, the new one): off the runtime's threads.
    tokio::task::spawn_blocking(move || change_passphrase(&dir, &server, &user, &old, &new))
        .await
        .map_err(|e| CliError::Local(format!("Changing the passphrase failed: {e}.")))??;
    if ctx.json {
        say(&json!({"changed": true}).to_string());
    } else {
        say(&format!(
            "The encryption keys of {owner} are sealed with the new passphrase. Scripts \
             that set {PASSPHRASE_ENV} need the new one; restart a `chatus chat` or desktop \
             app that is running."
        ));
    }
    Ok(())
}
