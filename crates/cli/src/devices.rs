//! `chatus devices`: this account's end-to-end encryption devices (each
//! login of a CLI profile or desktop app is one), with this one marked
//! and the others' trust; `--remove ID` removes a device on the server
//! (a lost laptop, a profile no longer used).

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

/// A device as one line: id, fingerprint, marks.
pub fn device_text(d: &DeviceInfo) -> String {
    let mut marks = Vec::new();
    if d.this_device {
        marks.push("this device");
    } else {
        marks.push(trust_word(d.trust));
    }
    format!("{}  {}  ({})", d.device, d.fingerprint(), marks.join(", "))
}

/// A device as JSON: `user`, `device`, `ed25519`, `curve25519`,
/// `fingerprint`, `this_device`, `trust`.
pub fn device_json(d: &DeviceInfo) -> serde_json::Value {
    json!({
        "user": d.user.as_str(),
        "device": d.device,
        "ed25519": d.ed25519,
        "curve25519": d.curve25519,
        "fingerprint": d.fingerprint(),
        "this_device": d.this_device,
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
