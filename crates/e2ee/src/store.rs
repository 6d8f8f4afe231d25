//! At rest: the whole state of a `Device` as one blob encrypted with a
//! 32-byte `StoreKey` (from a passphrase with Argon2id, or raw bytes from an
//! OS keyring).
//!
//! # Format
//!
//! `CHATUS-E2EE` ‖ version byte `1` ‖ 24-byte random nonce ‖
//! XChaCha20-Poly1305 ciphertext (the 12-byte header is the associated
//! data). The plaintext is JSON with `#[serde(default)]` on everything
//! added after the first version, so older blobs keep loading. Inside it,
//! each vodozemac object (account, Olm sessions, Megolm sessions) is
//! vodozemac's own encrypted pickle under the same key: vodozemac derives
//! its AES and HMAC keys from it with HKDF, so the two layers never use the
//! key for the same cipher. The outer layer covers what is ours: the trust
//! store, the replay records, the senders of room keys.

use serde::{Deserialize, Serialize};
use vodozemac::megolm::{
    GroupSession, GroupSessionPickle, InboundGroupSession, InboundGroupSessionPickle,
};
use vodozemac::olm::{Account, AccountPickle, Session, SessionPickle};
use zeroize::Zeroizing;

use chacha20poly1305::aead::{Aead as _, KeyInit as _, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};

use crate::device::Device;
use crate::error::{RandomError, StoreError};
use crate::group::{GroupState, Inbound, Outbound, RotationPolicy, SenderKeys, Timestamp};
use crate::ids::{ConversationId, DeviceId, UserId};
use crate::olm::OlmSessions;
use crate::trust::{TrustRecord, TrustStore};

const MAGIC: &[u8; 11] = b"CHATUS-E2EE";
const VERSION: u8 = 1;
const HEADER_LEN: usize = MAGIC.len() + 1;
const NONCE_LEN: usize = 24;

/// The key that encrypts the store: 32 bytes, wiped from memory on drop.
#[derive(Clone)]
pub struct StoreKey(Zeroizing<[u8; 32]>);

/// Argon2id's cost parameters, kept beside a store sealed with a
/// passphrase so that a later change of the defaults still opens it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KdfParams {
    /// Memory in KiB.
    pub m_cost: u32,
    /// Passes over the memory.
    pub t_cost: u32,
    /// Lanes.
    pub p_cost: u32,
}

impl Default for KdfParams {
    /// The argon2 crate's defaults (OWASP's first choice): 19 MiB, 2
    /// passes, 1 lane.
    fn default() -> Self {
        Self {
            m_cost: argon2::Params::DEFAULT_M_COST,
            t_cost: argon2::Params::DEFAULT_T_COST,
            p_cost: argon2::Params::DEFAULT_P_COST,
        }
    }
}

impl std::fmt::Debug for StoreKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StoreKey(..)")
    }
}

impl StoreKey {
    /// A key kept elsewhere (an OS keyring).
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(Zeroizing::new(bytes))
    }

    /// A key from a passphrase with Argon2id (the argon2 crate's default
    /// parameters: 19 MiB, 2 passes, 1 lane). `salt` is at least 8 random
    /// bytes kept beside the store.
    pub fn from_passphrase(passphrase: &str, salt: &[u8]) -> Result<Self, StoreError> {
        Self::from_passphrase_with(passphrase, salt, KdfParams::default())
    }

    /// A key from a passphrase with Argon2id and the given costs (those
    /// recorded beside the store). Costs out of Argon2's range are an
    /// error, never a weaker key.
    pub fn from_passphrase_with(
        passphrase: &str,
        salt: &[u8],
        params: KdfParams,
    ) -> Result<Self, StoreError> {
        let mut key = Zeroizing::new([0u8; 32]);
        let params = argon2::Params::new(params.m_cost, params.t_cost, params.p_cost, Some(32))
            .map_err(|e| StoreError::KeyDerivation(e.to_string()))?;
        argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params)
            .hash_password_into(passphrase.as_bytes(), salt, key.as_mut_slice())
            .map_err(|e| StoreError::KeyDerivation(e.to_string()))?;
        Ok(Self(key))
    }

    fn bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

/// What the blob's plaintext holds.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Persisted {
    user: UserId,
    device_id: DeviceId,
    account: String,
    #[serde(default)]
    olm_sessions: Vec<OlmRecord>,
    #[serde(default)]
    outbound: Vec<OutboundRecord>,
    #[serde(default)]
    inbound: Vec<InboundRecord>,
    #[serde(default)]
    seen: Vec<SeenRecord>,
    #[serde(default)]
    trust: Vec<TrustRecord>,
    #[serde(default)]
    policy: RotationPolicy,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    backup: Option<crate::backup::BackupRecord>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct OlmRecord {
    peer_curve25519: String,
    pickle: String,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct OutboundRecord {
    conversation: ConversationId,
    created_at: Timestamp,
    members_changed: bool,
    pickle: String,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct InboundRecord {
    conversation: ConversationId,
    session_id: String,
    sender: SenderKeys,
    forwarded: bool,
    pickle: String,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SeenRecord {
    conversation: ConversationId,
    sender_curve25519: String,
    session_id: String,
    index: u32,
    event_ref: String,
}

fn damaged(what: &str) -> impl Fn(vodozemac::PickleError) -> StoreError + '_ {
    move |e| StoreError::Damaged(format!("{what}: {e}"))
}

impl Device {
    /// The whole state, encrypted with `key`. Save it after every call that
    /// changed the state (encrypting or decrypting anything, new keys, a
    /// trust decision).
    pub fn save(&self, key: &StoreKey) -> Result<Vec<u8>, StoreError> {
        let k = key.bytes();
        let persisted = Persisted {
            user: self.user.clone(),
            device_id: self.device_id.clone(),
            account: self.account.pickle().encrypt(k),
            olm_sessions: self
                .olm
                .by_peer
                .iter()
                .flat_map(|(peer, sessions)| {
                    sessions.iter().map(|s| OlmRecord {
                        peer_curve25519: peer.clone(),
                        pickle: s.pickle().encrypt(k),
                    })
                })
                .collect(),
            outbound: self
                .groups
                .outbound
                .iter()
                .map(|(conversation, out)| OutboundRecord {
                    conversation: conversation.clone(),
                    created_at: out.created_at,
                    members_changed: out.members_changed,
                    pickle: out.session.pickle().encrypt(k),
                })
                .collect(),
            inbound: self
                .groups
                .inbound
                .iter()
                .map(|((conversation, _, session_id), inbound)| InboundRecord {
                    conversation: conversation.clone(),
                    session_id: session_id.clone(),
                    sender: inbound.sender.clone(),
                    forwarded: inbound.forwarded,
                    pickle: inbound.session.pickle().encrypt(k),
                })
                .collect(),
            seen: self
                .groups
                .seen
                .iter()
                .map(
                    |((conversation, curve, session_id, index), event_ref)| SeenRecord {
                        conversation: conversation.clone(),
                        sender_curve25519: curve.clone(),
                        session_id: session_id.clone(),
                        index: *index,
                        event_ref: event_ref.clone(),
                    },
                )
                .collect(),
            trust: self.trust.records(),
            policy: self.groups.policy,
            backup: self.backup.as_ref().map(crate::backup::BackupState::record),
        };
        let plaintext = Zeroizing::new(crate::keys::to_json(&persisted).into_bytes());
        let mut nonce = [0u8; NONCE_LEN];
        getrandom::fill(&mut nonce).map_err(|_| RandomError)?;
        let mut header = MAGIC.to_vec();
        header.push(VERSION);
        let cipher = XChaCha20Poly1305::new(k.into());
        let sealed = cipher
            .encrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: &plaintext,
                    aad: &header,
                },
            )
            .map_err(|_| StoreError::Damaged("the state could not be sealed".into()))?;
        let mut blob = header;
        blob.extend_from_slice(&nonce);
        blob.extend_from_slice(&sealed);
        Ok(blob)
    }

    /// Opens a blob made by [`Device::save`].
    pub fn load(blob: &[u8], key: &StoreKey) -> Result<Self, StoreError> {
        let k = key.bytes();
        if blob.len() < HEADER_LEN + NONCE_LEN
            || &blob[..MAGIC.len()] != MAGIC
            || blob[MAGIC.len()] != VERSION
        {
            return Err(StoreError::NotAStore);
        }
        let (header, rest) = blob.split_at(HEADER_LEN);
        let (nonce, sealed) = rest.split_at(NONCE_LEN);
        let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| StoreError::NotAStore)?;
        let cipher = XChaCha20Poly1305::new(k.into());
        let plaintext = Zeroizing::new(
            cipher
                .decrypt(
                    &XNonce::from(nonce),
                    Payload {
                        msg: sealed,
                        aad: header,
                    },
                )
                .map_err(|_| StoreError::WrongKeyOrDamaged)?,
        );
        let p: Persisted =
            serde_json::from_slice(&plaintext).map_err(|e| StoreError::Damaged(e.to_string()))?;

        let account = Account::from_pickle(
            AccountPickle::from_encrypted(&p.account, k).map_err(damaged("account"))?,
        );
        let mut olm = OlmSessions::default();
        for r in p.olm_sessions {
            let session = Session::from_pickle(
                SessionPickle::from_encrypted(&r.pickle, k).map_err(damaged("Olm session"))?,
            );
            olm.by_peer
                .entry(r.peer_curve25519)
                .or_default()
                .push(session);
        }
        let mut groups = GroupState {
            policy: p.policy,
            ..GroupState::default()
        };
        for r in p.outbound {
            let session = GroupSession::from_pickle(
                GroupSessionPickle::from_encrypted(&r.pickle, k)
                    .map_err(damaged("outbound group session"))?,
            );
            groups.outbound.insert(
                r.conversation,
                Outbound {
                    session,
                    created_at: r.created_at,
                    members_changed: r.members_changed,
                },
            );
        }
        for r in p.inbound {
            let session = InboundGroupSession::from_pickle(
                InboundGroupSessionPickle::from_encrypted(&r.pickle, k)
                    .map_err(damaged("inbound group session"))?,
            );
            groups.inbound.insert(
                (r.conversation, r.sender.curve25519.clone(), r.session_id),
                Inbound {
                    session,
                    sender: r.sender,
                    forwarded: r.forwarded,
                },
            );
        }
        for r in p.seen {
            groups.seen.insert(
                (r.conversation, r.sender_curve25519, r.session_id, r.index),
                r.event_ref,
            );
        }
        Ok(Self {
            user: p.user,
            device_id: p.device_id,
            account,
            olm,
            groups,
            trust: TrustStore::from_records(p.trust),
            backup: p
                .backup
                .map(crate::backup::BackupState::from_record)
                .transpose()?,
        })
    }
}
