//! `chatus devices`: this account's end-to-end encryption devices (each
//! login of a CLI profile is one), with this one marked and the others'
//! trust; `--remove ID` removes a device on the server (a lost laptop, a
//! profile no longer used). `chatus verify USER`: SAS verification with
//! one of USER's devices.

use clap::Args;
use serde_json::json;

use chatus_client::{DeviceInfo, TrustState};

use crate::CliError;
use crate::args::ClientArgs;
use crate::commands::say;
use crate::connect::{Ctx, Mode, parse_user};

/// `devices` options.
#[derive(Debug, Args)]
pub struct DevicesArgs {
    /// Remove this device (one of yours, by id) instead of listing.
    #[arg(long, value_name = "ID")]
    pub remove: Option<String>,
    /// List another user's devices instead of yours.
    #[arg(long, value_name = "USER", conflicts_with = "remove")]
    pub of: Option<String>,
    #[command(flatten)]
    pub client: ClientArgs,
}

fn trust_word(t: TrustState) -> &'static str {
    match t {
        TrustState::Verified => "verified",
        TrustState::Unverified => "unverified",
        TrustState::Blocked => "blocked",
        TrustState::NewDeviceOfVerifiedUser => "new, unverified",
        TrustState::KeyChanged => "KEY CHANGED",
    }
}

/// The note naming a device a message's room key was withheld from.
pub fn withheld_note(d: &DeviceInfo) -> String {
    format!(
        "not shared with {}'s device {} ({}): your messages leave it out until you verify it (chatus verify {} --device {}).",
        d.user,
        d.device,
        trust_word(d.trust),
        d.user,
        d.device
    )
}

/// A device as one line: id, fingerprint, marks.
pub fn device_text(d: &DeviceInfo) -> String {
    let mut marks = Vec::new();
    if d.this_device {
        marks.push("this device");
    } else {
        marks.push(trust_word(d.trust));
    }
    if d.keys_withheld() {
        marks.push("messages withheld until verified");
    }
    format!("{}  {}  ({})", d.device, d.fingerprint(), marks.join(", "))
}

/// A device as JSON: `user`, `device`, `ed25519`, `curve25519`,
/// `fingerprint`, `this_device`, `keys_withheld`, `trust`.
pub fn device_json(d: &DeviceInfo) -> serde_json::Value {
    json!({
        "user": d.user.as_str(),
        "device": d.device,
        "ed25519": d.ed25519,
        "curve25519": d.curve25519,
        "fingerprint": d.fingerprint(),
        "this_device": d.this_device,
        "keys_withheld": d.keys_withheld(),
        "trust": match d.trust {
            TrustState::Verified => "verified",
            TrustState::Unverified => "unverified",
            TrustState::NewDeviceOfVerifiedUser => "new_device",
            TrustState::Blocked => "blocked",
            TrustState::KeyChanged => "key_changed",
        },
    })
}

/// `devices`.
pub async fn devices(ctx: &Ctx, args: &DevicesArgs) -> Result<(), CliError> {
    let of = args.of.as_deref().map(parse_user).transpose()?;
    let (client, _, me) = ctx.connect(Mode::OneShot).await?;
    let result = async {
        if let Some(id) = &args.remove {
            if client.device_id().as_deref() == Some(id.as_str()) {
                return Err(CliError::Usage(format!(
                    "{id} is this device; log out instead (chatus logout), or remove it from another one."
                )));
            }
            client.delete_device(id).await?;
            say(&format!("Removed device {id} of {}.", me.user));
            return Ok(());
        }
        let user = of.unwrap_or_else(|| me.user.clone());
        let list = client.devices(user.clone()).await?;
        if ctx.json {
            for d in &list {
                say(&device_json(d).to_string());
            }
        } else if list.is_empty() {
            say(&format!("{user} has no devices with keys."));
        } else {
            for d in &list {
                say(&device_text(d));
            }
        }
        Ok(())
    }
    .await;
    client.quit().await;
    result
}

/// `verify` options.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Whose device to verify (you, for another device of yours).
    #[arg(value_name = "USER")]
    pub whose: String,
    /// Which of their devices (needed when they have several).
    #[arg(long, value_name = "ID")]
    pub device: Option<String>,
    #[command(flatten)]
    pub client: ClientArgs,
}

/// Reads one answer line from standard input off the runtime's threads.
async fn answer() -> Result<String, CliError> {
    tokio::task::spawn_blocking(crate::commands::read_line_stdin)
        .await
        .map_err(|e| CliError::Local(format!("Cannot read standard input: {e}.")))?
}

/// `verify`: SAS with one device of USER, who runs `chatus verify` too
/// (either may start first). Shows the emoji and numbers, asks whether the
/// other device shows the same, and marks it verified when both say yes.
pub async fn verify(ctx: &Ctx, args: &VerifyArgs) -> Result<(), CliError> {
    use chatus_client::{Event, VerificationEvent};

    let user = parse_user(&args.whose)?;
    let (client, mut events, _) = ctx.connect(Mode::Follow).await?;
    let result = async {
        let devices: Vec<DeviceInfo> = client
            .devices(user.clone())
            .await?
            .into_iter()
            .filter(|d| !d.this_device)
            .filter(|d| args.device.as_deref().is_none_or(|id| d.device == id))
            .collect();
        let target = match devices.as_slice() {
            [one] => one.clone(),
            [] => {
                return Err(CliError::Usage(format!(
                    "{user} has no other device{} to verify.",
                    args.device
                        .as_deref()
                        .map_or(String::new(), |id| format!(" called {id}"))
                )));
            }
            many => {
                let ids: Vec<&str> = many.iter().map(|d| d.device.as_str()).collect();
                return Err(CliError::Usage(format!(
                    "{user} has several devices ({}); choose one with --device ID.",
                    ids.join(", ")
                )));
            }
        };
        crate::connect::note(&format!(
            "verifying {user}'s device {} ({}); they run `chatus verify` too.",
            target.device,
            target.fingerprint()
        ));
        let mut active = client
            .start_verification(user.clone(), &target.device)
            .await?;
        loop {
            let Some(event) = events.recv().await else {
                return Err(CliError::Local("The client stopped.".into()));
            };
            let Event::Verification(v) = event else {
                // A refused key request, say, met while connecting.
                if let Event::E2eeWarning(text) = &event {
                    crate::connect::note(text);
                }
                if let Event::Stopped { error } = event {
                    return Err(error.map_or_else(
                        || CliError::Local("The client stopped.".into()),
                        CliError::from,
                    ));
                }
                continue;
            };
            match v {
                // Their start crossed ours and theirs goes on (unless it
                // came while we were away: then `start_verification`
                // accepted it already).
                VerificationEvent::Requested {
                    transaction,
                    user: u,
                    device,
                } if transaction != active
                    && device == target.device
                    && u.eq_ignore_ascii_case(user.as_str())
                    && !client.keeps_own_start(&user, &device) =>
                {
                    client.accept_verification(&transaction).await?;
                    active = transaction;
                }
                VerificationEvent::Sas {
                    transaction,
                    emoji,
                    decimals: (a, b, c),
                    ..
                } if transaction == active => {
                    say(&format!("Emoji:   {}", emoji.join("  ")));
                    say(&format!("Numbers: {a} {b} {c}"));
                    say("Does the other device show the same? [y/N]");
                    if answer().await?.trim().eq_ignore_ascii_case("y") {
                        if client.confirm_verification(&active).await? {
                            break;
                        }
                    } else {
                        client.cancel_verification(&active).await?;
                        return Err(CliError::Local(
                            "Not verified: the emoji were not confirmed.".into(),
                        ));
                    }
                }
                VerificationEvent::Verified { transaction, .. } if transaction == active => break,
                VerificationEvent::Cancelled {
                    transaction,
                    reason,
                } if transaction == active => {
                    return Err(CliError::Local(format!("Not verified: {reason}")));
                }
                _ => {}
            }
        }
        say(&format!("Verified {user}'s device {}.", target.device));
        Ok(())
    }
    .await;
    client.quit().await;
    result
}
