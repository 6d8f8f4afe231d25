//! Device verification on the network thread: listing a user's devices
//! with their trust, and the steps of a SAS verification
//! ([`VerifyAction`] in, one [`VerifyUpdate`] out per action).
//!
//! The verification itself is the client library's (the same code as
//! `chatus verify`, so the app and the CLI verify each other); its
//! progress arrives as `Event::Verification` through the ordinary event
//! stream, and only the answers to the app's own requests come back here.

use chatus_client::protocol::Username;
use chatus_client::{Client, DeviceInfo};

/// A verification request from the UI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VerifyAction {
    /// List a user's devices with their trust ([`VerifyUpdate::Devices`]).
    Devices(Username),
    /// Start verifying one of `user`'s devices (this device left out):
    /// `device`, or their only one; with several and none named, the
    /// answer is [`VerifyUpdate::Choose`].
    Start {
        /// Whose.
        user: Username,
        /// Which device, when chosen.
        device: Option<String>,
    },
    /// Accept a verification another device offered.
    Accept(String),
    /// The user saw the same emoji on both devices.
    Confirm(String),
    /// Stop a verification (the emoji differ, the user declined or gave
    /// up); nothing is marked.
    Cancel(String),
}

/// The answer to a [`VerifyAction`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VerifyUpdate {
    /// A user's devices with their trust, by id.
    Devices {
        /// Whose.
        user: Username,
        /// Their devices (ours with this one marked).
        devices: Vec<DeviceInfo>,
    },
    /// The verification started (or an offer from that device was
    /// accepted instead): its id.
    Started {
        /// Whose device.
        user: Username,
        /// Which.
        device: String,
        /// The verification's id.
        transaction: String,
    },
    /// The user has several other devices: the person chooses one.
    Choose {
        /// Whose.
        user: Username,
        /// The candidates (this device left out).
        devices: Vec<DeviceInfo>,
    },
    /// Our confirmation went out; `done` when the other device had
    /// confirmed already (then it is verified now, and no
    /// `Event::Verification` follows).
    Confirmed {
        /// The verification.
        transaction: String,
        /// Verified now.
        done: bool,
    },
    /// A step failed (the verification is over), with a sentence.
    Failed {
        /// The verification, when it had started.
        transaction: Option<String>,
        /// Why.
        error: String,
    },
}

/// Runs one verification request.
pub(super) async fn run(client: &Client, action: VerifyAction) -> Option<VerifyUpdate> {
    let failed = |transaction: Option<String>, e: chatus_client::Error| VerifyUpdate::Failed {
        transaction,
        error: e.to_string(),
    };
    Some(match action {
        VerifyAction::Devices(user) => match client.devices(user.clone()).await {
            Ok(devices) => VerifyUpdate::Devices { user, devices },
            Err(e) => {
                // Only a marker depends on it: not worth an error line.
                tracing::debug!(cause = %e, %user, "no device list");
                return None;
            }
        },
        VerifyAction::Start { user, device } => {
            let devices: Vec<DeviceInfo> = match client.devices(user.clone()).await {
                Ok(d) => d.into_iter().filter(|d| !d.this_device).collect(),
                Err(e) => return Some(failed(None, e)),
            };
            let chosen: Vec<&DeviceInfo> = devices
                .iter()
                .filter(|d| device.as_deref().is_none_or(|id| d.device == id))
                .collect();
            let target = match chosen.as_slice() {
                [one] => one.device.clone(),
                [] => {
                    let which = device.map_or(String::new(), |id| format!(" called {id}"));
                    return Some(VerifyUpdate::Failed {
                        transaction: None,
                        error: format!(
                            "{user} has no other device{which} with encryption keys to verify."
                        ),
                    });
                }
                _ => return Some(VerifyUpdate::Choose { user, devices }),
            };
            match client.start_verification(user.clone(), &target).await {
                Ok(transaction) => VerifyUpdate::Started {
                    user,
                    device: target,
                    transaction,
                },
                Err(e) => failed(None, e),
            }
        }
        VerifyAction::Accept(txn) => match client.accept_verification(&txn).await {
            Ok(()) => return None,
            Err(e) => failed(Some(txn), e),
        },
        VerifyAction::Confirm(txn) => match client.confirm_verification(&txn).await {
            Ok(done) => VerifyUpdate::Confirmed {
                transaction: txn,
                done,
            },
            Err(e) => failed(Some(txn), e),
        },
        VerifyAction::Cancel(txn) => {
            if let Err(e) = client.cancel_verification(&txn).await {
                // The other device may be gone; nothing was marked anyway.
                tracing::debug!(cause = %e, "could not send the cancellation");
            }
            return None;
        }
    })
}
