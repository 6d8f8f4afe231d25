//! Device verification in the app: the one verification dialog at a time
//! (started here with *Verify…*, or offered by another device), its
//! phases from asking to the result, and the devices heard of with their
//! trust, which mark a direct conversation whose peer has devices we have
//! not verified.
//!
//! The steps are the client library's SAS (the same as `chatus verify`):
//! its `Event::Verification`s move the dialog on, and the person's answers
//! become [`VerifyAction`]s. A verification that does not move on for
//! [`VERIFY_TIMEOUT`] is cancelled as timed out, as Matrix clients do.

use std::time::{Duration, Instant};

use chatus_client::protocol::{Conversation, RoomName, Username};
use chatus_client::{DeviceInfo, TrustState, VerificationEvent};

use super::{Link, State};
use crate::net::{Action, VerifyAction, VerifyUpdate};

/// How long a verification may wait for the other device (or for the
/// person) before it is cancelled as timed out.
pub const VERIFY_TIMEOUT: Duration = Duration::from_secs(10 * 60);

/// One emoji of a short authentication string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SasEmoji {
    /// The emoji.
    pub symbol: String,
    /// Its English name (shown under it, so a missing glyph still
    /// compares).
    pub name: String,
}

/// Where the dialog's verification stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VerifyPhase {
    /// Asked the network to start.
    Starting,
    /// The user has several other devices: which one?
    Choose(Vec<DeviceInfo>),
    /// Another device offers to verify: accept or decline.
    Offered,
    /// Started; waiting for the other device to accept.
    Waiting,
    /// Compare these with the other device's.
    Sas {
        /// Seven emoji.
        emoji: Vec<SasEmoji>,
        /// Or three numbers.
        decimals: (u16, u16, u16),
    },
    /// We said they match; waiting for the other device to say so too.
    Confirmed,
    /// Done: the other device is verified.
    Verified,
    /// The person said the emoji differ: nothing was marked.
    Mismatch,
    /// Declined here, or cancelled by either side (why).
    Cancelled(String),
    /// Nothing happened for [`VERIFY_TIMEOUT`].
    TimedOut,
    /// A step failed (why).
    Failed(String),
}

impl VerifyPhase {
    /// True once the verification is over (only *Close* is left).
    pub fn finished(&self) -> bool {
        matches!(
            self,
            Self::Verified | Self::Mismatch | Self::Cancelled(_) | Self::TimedOut | Self::Failed(_)
        )
    }
}

/// The verification the dialog shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verification {
    /// Whose device.
    pub user: Username,
    /// Which device, once known.
    pub device: Option<String>,
    /// The client library's id for it, once started or offered.
    pub transaction: Option<String>,
    /// Where it stands.
    pub phase: VerifyPhase,
    /// When it last moved on (for [`VERIFY_TIMEOUT`]).
    pub since: Instant,
}

/// The largest encrypted room whose members' devices are loaded for its
/// mark (one request per member each time its member list loads).
pub const MAX_MARKED_MEMBERS: usize = 50;

/// What the marks say about a user's devices.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerTrust {
    /// Every device of theirs is verified.
    Verified,
    /// Some device of theirs is not (new, unverified, or changed).
    Unverified,
}

/// A trust state in words, as `chatus devices` says it.
pub fn trust_word(t: TrustState) -> &'static str {
    match t {
        TrustState::Verified => "verified",
        TrustState::Unverified => "unverified",
        TrustState::Blocked => "blocked",
        TrustState::NewDeviceOfVerifiedUser => "new, unverified",
        TrustState::KeyChanged => "KEY CHANGED",
    }
}

/// Splits the library's `symbol name` into its parts.
fn sas_emoji(text: &str) -> SasEmoji {
    let (symbol, name) = text.split_once(' ').unwrap_or((text, text));
    SasEmoji {
        symbol: symbol.to_owned(),
        name: name.to_owned(),
    }
}

impl State {
    /// Whether `user`'s devices are all verified; `None` while their list
    /// is not loaded, or they have no device (but this one).
    pub fn peer_trust(&self, user: &Username) -> Option<PeerTrust> {
        let devices: Vec<&DeviceInfo> = self
            .devices
            .get(&user.key())?
            .iter()
            .filter(|d| !d.this_device)
            .collect();
        if devices.is_empty() {
            return None;
        }
        Some(if devices.iter().all(|d| d.trust == TrustState::Verified) {
            PeerTrust::Verified
        } else {
            PeerTrust::Unverified
        })
    }

    /// The mark of an encrypted room whose member list is loaded: the
    /// members with a device this one has not verified (`Unverified` with
    /// their names), else `Verified`; `None` for a room that is not
    /// encrypted, a member list not loaded, a room of more than
    /// [`MAX_MARKED_MEMBERS`], or while any member's devices are unknown.
    pub fn room_trust(&self, room: &RoomName) -> Option<(PeerTrust, Vec<Username>)> {
        let conv = Conversation::Room(room.clone());
        if !self.convs.get(&conv).is_some_and(|c| c.encrypted) {
            return None;
        }
        let (r, members) = self.members.as_ref()?;
        if r != room || members.len() > MAX_MARKED_MEMBERS {
            return None;
        }
        let mut unverified = Vec::new();
        for m in members {
            if !self.devices.contains_key(&m.user.key()) {
                return None;
            }
            if self.peer_trust(&m.user) == Some(PeerTrust::Unverified) {
                unverified.push(m.user.clone());
            }
        }
        Some(if unverified.is_empty() {
            (PeerTrust::Verified, unverified)
        } else {
            (PeerTrust::Unverified, unverified)
        })
    }

    /// Loads the devices of an encrypted room's members (at most
    /// [`MAX_MARKED_MEMBERS`]), for its mark.
    pub(super) fn want_room_devices(&self, room: &RoomName) -> Vec<Action> {
        let encrypted = self
            .convs
            .get(&Conversation::Room(room.clone()))
            .is_some_and(|c| c.encrypted);
        match &self.members {
            Some((r, members))
                if r == room
                    && encrypted
                    && self.link == Link::Online
                    && members.len() <= MAX_MARKED_MEMBERS =>
            {
                members
                    .iter()
                    .map(|m| Action::Verify(VerifyAction::Devices(m.user.clone())))
                    .collect()
            }
            _ => Vec::new(),
        }
    }

    /// A message was not shared with these devices (new devices of users
    /// we verified): says so once per device and conversation, with how
    /// to let them read.
    pub(super) fn on_withheld(&mut self, conv: &Conversation, devices: Vec<(Username, String)>) {
        let fresh: Vec<(Username, String)> = devices
            .into_iter()
            .filter(|(u, d)| {
                self.withheld_told
                    .insert((conv.to_string(), u.key(), d.clone()))
            })
            .collect();
        let new: Vec<String> = fresh
            .iter()
            .map(|(u, d)| format!("{}'s device {d}", self.shown(u)))
            .collect();
        if !new.is_empty() {
            self.notice(
                format!(
                    "Not shared with {} (new, unverified): verify it (Verify… in the member's \
                     menu) to let it read what is sent here.",
                    new.join(", ")
                ),
                true,
            );
        }
    }

    /// `user`'s devices as last loaded.
    pub fn devices_of(&self, user: &Username) -> Option<&[DeviceInfo]> {
        self.devices.get(&user.key()).map(Vec::as_slice)
    }

    /// Loads the devices of a direct conversation's peer (their marker).
    pub(super) fn want_devices(&self, conv: &Conversation) -> Vec<Action> {
        match conv {
            Conversation::Peer(peer) if self.link == Link::Online => {
                vec![Action::Verify(VerifyAction::Devices(peer.clone()))]
            }
            _ => Vec::new(),
        }
    }

    /// *Verify…*: start verifying `user`'s device (`None`: their only
    /// one, or the person chooses).
    pub(super) fn start_verify(&mut self, user: Username, device: Option<String>) -> Vec<Action> {
        if self.link != Link::Online {
            self.notice(
                "Not connected: verifying needs the other device through the server.",
                true,
            );
            return Vec::new();
        }
        if self
            .verification
            .as_ref()
            .is_some_and(|v| !v.phase.finished() && v.transaction.is_some())
        {
            self.notice(
                "A verification is under way: finish or cancel it first.",
                true,
            );
            return Vec::new();
        }
        self.verification = Some(Verification {
            user: user.clone(),
            device: device.clone(),
            transaction: None,
            phase: VerifyPhase::Starting,
            since: Instant::now(),
        });
        vec![Action::Verify(VerifyAction::Start { user, device })]
    }

    /// Moves the dialog to `phase`.
    fn verify_phase(&mut self, phase: VerifyPhase) {
        if let Some(v) = &mut self.verification {
            v.phase = phase;
            v.since = Instant::now();
        }
    }

    /// The transaction the dialog shows, while it is not over.
    fn active_transaction(&self) -> Option<String> {
        self.verification
            .as_ref()
            .filter(|v| !v.phase.finished())
            .and_then(|v| v.transaction.clone())
    }

    /// The person answered the dialog: accept (`true`) or decline an
    /// offer.
    pub(super) fn answer_offer(&mut self, accept: bool) -> Vec<Action> {
        let Some(txn) = self.active_transaction() else {
            return Vec::new();
        };
        if accept {
            self.verify_phase(VerifyPhase::Waiting);
            vec![Action::Verify(VerifyAction::Accept(txn))]
        } else {
            self.verify_phase(VerifyPhase::Cancelled("You declined.".into()));
            vec![Action::Verify(VerifyAction::Cancel(txn))]
        }
    }

    /// The person compared the emoji: they match (`true`) or not.
    pub(super) fn answer_sas(&mut self, same: bool) -> Vec<Action> {
        let Some(txn) = self.active_transaction() else {
            return Vec::new();
        };
        if same {
            self.verify_phase(VerifyPhase::Confirmed);
            vec![Action::Verify(VerifyAction::Confirm(txn))]
        } else {
            self.verify_phase(VerifyPhase::Mismatch);
            vec![Action::Verify(VerifyAction::Cancel(txn))]
        }
    }

    /// The dialog was closed: a verification under way is cancelled.
    pub(super) fn close_verify(&mut self) -> Vec<Action> {
        let txn = self.active_transaction();
        self.verification = None;
        txn.map(|t| Action::Verify(VerifyAction::Cancel(t)))
            .into_iter()
            .collect()
    }

    /// Cancels a verification that waited too long (called every frame).
    pub fn verify_tick(&mut self, now: Instant) -> Vec<Action> {
        let Some(v) = &self.verification else {
            return Vec::new();
        };
        if v.phase.finished() || now.saturating_duration_since(v.since) < VERIFY_TIMEOUT {
            return Vec::new();
        }
        let txn = v.transaction.clone();
        self.verify_phase(VerifyPhase::TimedOut);
        txn.map(|t| Action::Verify(VerifyAction::Cancel(t)))
            .into_iter()
            .collect()
    }

    /// A verification step from the client library.
    pub(super) fn on_verification(&mut self, event: VerificationEvent) -> Vec<Action> {
        match event {
            VerificationEvent::Requested {
                transaction,
                user,
                device,
            } => self.on_offer(transaction, &user, device),
            VerificationEvent::Sas {
                transaction,
                emoji,
                decimals,
                ..
            } => {
                if self.is_shown(&transaction) {
                    self.verify_phase(VerifyPhase::Sas {
                        emoji: emoji.iter().map(|e| sas_emoji(e)).collect(),
                        decimals,
                    });
                }
                Vec::new()
            }
            VerificationEvent::Verified {
                transaction, user, ..
            } => self.verified(&transaction, &user),
            VerificationEvent::Cancelled {
                transaction,
                reason,
            } => {
                if self.is_shown(&transaction)
                    && self
                        .verification
                        .as_ref()
                        .is_some_and(|v| !v.phase.finished())
                {
                    self.verify_phase(VerifyPhase::Cancelled(reason));
                }
                Vec::new()
            }
        }
    }

    fn is_shown(&self, transaction: &str) -> bool {
        self.verification
            .as_ref()
            .is_some_and(|v| v.transaction.as_deref() == Some(transaction))
    }

    /// Another device offers to verify. Our own start to that very device
    /// lost to theirs when this arrives (the library keeps the start of
    /// the device that sorts first and drops the other), so it is
    /// accepted at once; any other offer opens the dialog, unless one is
    /// under way.
    fn on_offer(&mut self, transaction: String, user: &str, device: String) -> Vec<Action> {
        let Ok(user) = Username::parse(user) else {
            return Vec::new();
        };
        if let Some(v) = &mut self.verification
            && !v.phase.finished()
        {
            let crossing = v.user.same_account(&user)
                && v.device.as_deref().is_none_or(|d| d == device)
                && matches!(v.phase, VerifyPhase::Starting | VerifyPhase::Waiting);
            if !crossing {
                self.notice(
                    format!(
                        "{user}'s device {device} asks to verify; finish the verification \
                         under way first."
                    ),
                    false,
                );
                return Vec::new();
            }
            v.device = Some(device);
            v.transaction = Some(transaction.clone());
            v.phase = VerifyPhase::Waiting;
            v.since = Instant::now();
            return vec![Action::Verify(VerifyAction::Accept(transaction))];
        }
        self.verification = Some(Verification {
            user,
            device: Some(device),
            transaction: Some(transaction),
            phase: VerifyPhase::Offered,
            since: Instant::now(),
        });
        Vec::new()
    }

    /// The other device is verified: the dialog says so and their device
    /// list (the marks) is loaded again.
    fn verified(&mut self, transaction: &str, user: &str) -> Vec<Action> {
        if self.is_shown(transaction) {
            self.verify_phase(VerifyPhase::Verified);
        }
        Username::parse(user)
            .ok()
            .map(|u| Action::Verify(VerifyAction::Devices(u)))
            .into_iter()
            .collect()
    }

    /// The answer to a verification request.
    pub(super) fn on_verify_update(&mut self, update: VerifyUpdate) -> Vec<Action> {
        match update {
            VerifyUpdate::Devices { user, devices } => {
                self.devices.insert(user.key(), devices);
                Vec::new()
            }
            VerifyUpdate::Started {
                user,
                device,
                transaction,
            } => {
                if let Some(v) = &mut self.verification
                    && v.user.same_account(&user)
                    && v.phase == VerifyPhase::Starting
                {
                    v.device = Some(device);
                    v.transaction = Some(transaction);
                    v.phase = VerifyPhase::Waiting;
                    v.since = Instant::now();
                    Vec::new()
                } else {
                    // The dialog was closed meanwhile.
                    vec![Action::Verify(VerifyAction::Cancel(transaction))]
                }
            }
            VerifyUpdate::Choose { user, devices } => {
                if self
                    .verification
                    .as_ref()
                    .is_some_and(|v| v.user.same_account(&user))
                {
                    self.verify_phase(VerifyPhase::Choose(devices.clone()));
                }
                self.devices.insert(user.key(), devices);
                Vec::new()
            }
            VerifyUpdate::Confirmed { transaction, done } => {
                let user = self.verification.as_ref().map(|v| v.user.to_string());
                match (done, user) {
                    (true, Some(user)) => self.verified(&transaction, &user),
                    _ => Vec::new(),
                }
            }
            VerifyUpdate::Failed { transaction, error } => {
                let ours = match &transaction {
                    Some(t) => self.is_shown(t),
                    None => self
                        .verification
                        .as_ref()
                        .is_some_and(|v| v.phase == VerifyPhase::Starting),
                };
                if ours {
                    self.verify_phase(VerifyPhase::Failed(error));
                }
                Vec::new()
            }
        }
    }
}
