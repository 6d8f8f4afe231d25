//! `chatus backup`: the account's server-side key backup, so that a new
//! device (a new profile, a reinstalled machine) reads the encrypted
//! history its other devices could.
//!
//! - `enable` makes a recovery key, starts a backup with it and uploads
//!   this device's room keys; it prints the key once (it is stored
//!   nowhere). An account that has a backup needs `--replace` (the old
//!   backup and its keys are discarded).
//! - `restore` reads the recovery key (hidden, from the terminal; from
//!   standard input with `--recovery-key-stdin` or when it is not a
//!   terminal), installs the backup's keys on this device, which then
//!   backs up to it too. A wrong key installs nothing and exits 1.
//! - `status` says whether the account has a backup, how many keys it
//!   holds and whether this device backs up to it.
//! - `disable` deletes the backup from the server.
//!
//! `--json` prints one object: `enable` `{"recovery_key", "version",
//! "keys"}`, `restore` `{"version", "keys", "installed", "decrypted",
//! "damaged"}`, `status` `{"version", "keys", "this_device"}` (`version`
//! `null` when there is none), `disable` `{"deleted": true}`.

use std::io::IsTerminal as _;

use clap::{Args, ValueEnum};
use serde_json::json;

use crate::CliError;
use crate::args::ClientArgs;
use crate::commands::{prompt_password, read_line_stdin, say};
use crate::connect::{Ctx, Mode, note};

/// What `chatus backup` does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BackupAction {
    /// Make a recovery key and back this device's keys up with it.
    Enable,
    /// Install the backup's keys on this device with the recovery key.
    Restore,
    /// Show the backup and this device's part in it.
    Status,
    /// Delete the backup from the server.
    Disable,
}

/// `backup` options.
#[derive(Debug, Args)]
pub struct BackupArgs {
    /// enable, restore, status or disable.
    #[arg(value_enum)]
    pub action: BackupAction,
    /// With `enable`: replace the account's backup (its keys are lost).
    #[arg(long)]
    pub replace: bool,
    /// With `restore`: read the recovery key from standard input.
    #[arg(long)]
    pub recovery_key_stdin: bool,
    #[command(flatten)]
    pub client: ClientArgs,
}

/// What to tell the person with their recovery key.
const KEEP_IT: &str = "This is your recovery key. It is shown this once and stored nowhere: \
write it down or keep it in a password manager. With it, a new device of yours reads your \
encrypted history; without it, that history cannot be restored. Anyone who has it and can log \
in as you can read that history too.";

fn read_recovery_key(args: &BackupArgs) -> Result<String, CliError> {
    let key = if args.recovery_key_stdin || !std::io::stdin().is_terminal() {
        read_line_stdin()?
    } else {
        prompt_password("Recovery key: ")?
    };
    if key.trim().is_empty() {
        return Err(CliError::Usage("No recovery key was given.".into()));
    }
    Ok(key)
}

/// `backup`.
pub async fn backup(ctx: &Ctx, args: &BackupArgs) -> Result<(), CliError> {
    // The key is read before connecting, so a prompt never holds a
    // connection open.
    let recovery = match args.action {
        BackupAction::Restore => Some(read_recovery_key(args)?),
        _ => None,
    };
    let (client, _, me) = ctx.connect(Mode::OneShot).await?;
    let result = async {
        match args.action {
            BackupAction::Enable => {
                if let Some(old) = client.backup_status().await?.server
                    && !args.replace
                {
                    return Err(CliError::Usage(format!(
                        "{} already has a key backup (version {}, {} keys). Restore it on this device with `chatus backup restore`, or make a new one with `chatus backup enable --replace` (the old one and its keys are discarded).",
                        me.user, old.version, old.keys
                    )));
                }
                let key = client.enable_backup().await?;
                let status = client.backup_status().await?;
                let (version, keys) = status.server.map_or((0, 0), |s| (s.version, s.keys));
                if ctx.json {
                    say(&json!({"recovery_key": key, "version": version, "keys": keys})
                        .to_string());
                } else {
                    note(KEEP_IT);
                    say(&key);
                    note(&format!(
                        "key backup version {version} is on, with {keys} keys; this device adds new ones as they come."
                    ));
                }
            }
            BackupAction::Restore => {
                let key = recovery.unwrap_or_default();
                let r = client.restore_backup(&key).await?;
                if ctx.json {
                    say(&json!({
                        "version": r.version,
                        "keys": r.keys,
                        "installed": r.installed,
                        "decrypted": r.decrypted,
                        "damaged": r.damaged,
                    })
                    .to_string());
                } else {
                    say(&format!(
                        "Restored key backup version {}: {} keys, {} new to this device. Older encrypted messages now open (chatus history).",
                        r.version, r.keys, r.installed
                    ));
                    if r.damaged > 0 {
                        note(&format!(
                            "{} keys in the backup did not open and were skipped.",
                            r.damaged
                        ));
                    }
                }
            }
            BackupAction::Status => {
                let s = client.backup_status().await?;
                let this = s.this_device_backs_up();
                if ctx.json {
                    say(&json!({
                        "version": s.server.as_ref().map(|b| b.version),
                        "keys": s.server.as_ref().map_or(0, |b| b.keys),
                        "this_device": this,
                    })
                    .to_string());
                } else {
                    say(&match &s.server {
                        None => format!(
                            "{} has no key backup; `chatus backup enable` makes one.",
                            me.user
                        ),
                        Some(b) if this => format!(
                            "Key backup version {} holds {} keys; this device backs up to it.",
                            b.version, b.keys
                        ),
                        Some(b) => format!(
                            "Key backup version {} holds {} keys; this device does not back up to it (`chatus backup restore` with the recovery key).",
                            b.version, b.keys
                        ),
                    });
                }
            }
            BackupAction::Disable => {
                client.disable_backup().await?;
                if ctx.json {
                    say(&json!({"deleted": true}).to_string());
                } else {
                    say(&format!("{}'s key backup is deleted.", me.user));
                }
            }
        }
        Ok(())
    }
    .await;
    client.quit().await;
    result
}
