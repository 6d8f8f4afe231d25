//! The client's error type.

use std::time::Duration;

use chatus_protocol::ErrorCode;

/// What a client call can fail with.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    /// The server could not be reached.
    #[error("Could not reach the server at {url}: {reason}.")]
    Unreachable {
        /// The address tried.
        url: String,
        /// Why.
        reason: String,
    },
    /// The server refused the request.
    #[error("{message}")]
    Server {
        /// The stable code.
        code: ErrorCode,
        /// The server's sentence.
        message: String,
        /// With `rate_limited`: when to retry.
        retry_after: Option<Duration>,
    },
    /// The connection dropped before the reply came; the request may or may
    /// not have been carried out.
    #[error("The connection to the server was lost.")]
    Disconnected,
    /// The server closed the connection for good (for example after a
    /// logout elsewhere).
    #[error("The server ended the session: {reason} (code {code}).")]
    Closed {
        /// The WebSocket close code.
        code: u16,
        /// The reason given.
        reason: String,
    },
    /// The client was stopped (quit, or every handle dropped).
    #[error("The client has stopped.")]
    Stopped,
    /// The server sent something this client does not understand.
    #[error("The server sent an unexpected reply: {0}.")]
    Protocol(String),
    /// The server's certificate is not signed by a known authority and no
    /// fingerprint is pinned for it: a server's own self-signed
    /// certificate on first contact. A front end shows the fingerprint,
    /// asks whether to trust it, and connects again with
    /// [`crate::known::Trust::accept`] set to it.
    #[error(
        "The server {server} presents a certificate no known authority signed, with fingerprint \
         {fingerprint}. Trust it only if it is the one its operator sees (chatus serve prints it)."
    )]
    UnknownCertificate {
        /// `host:port`.
        server: String,
        /// The certificate's fingerprint, `SHA256:…`.
        fingerprint: String,
    },
    /// The server's certificate is not the one pinned when it was first
    /// trusted. Refused: someone may be intercepting the connection, or
    /// the server's certificate was made anew.
    #[error(
        "The certificate of {server} has changed since it was first trusted (pinned {pinned}, now \
         {seen}). Someone may be intercepting the connection, or the server made a new certificate. \
         Ask its operator which fingerprint it prints; only if it is {seen}, trust it anew."
    )]
    CertificateChanged {
        /// `host:port`.
        server: String,
        /// The pinned fingerprint.
        pinned: String,
        /// The fingerprint presented now.
        seen: String,
    },
    /// A `ws://` (plain) connection reached a server that requires TLS.
    #[error("The server at {server} requires TLS: connect to {tls_url} instead.")]
    TlsRequired {
        /// The address tried.
        server: String,
        /// The same server over TLS, `wss://host:port`.
        tls_url: String,
    },
    /// A local file (the pinned certificates) could not be used.
    #[error("{0}")]
    Local(String),
    /// End-to-end encryption could not do what was asked: this client has
    /// no device (none configured, or its store could not be opened), or a
    /// conversation's keys could not be shared. Nothing was sent.
    #[error("End-to-end encryption failed: {0}")]
    E2ee(String),
    /// The recovery key given is not the one the account's key backup was
    /// made with. Nothing was installed.
    #[error("That recovery key does not open this account's key backup; nothing was restored.")]
    WrongRecoveryKey,
    /// The text given is not a recovery key at all (a typing mistake,
    /// most likely). Nothing was done.
    #[error("That is not a recovery key: {0}.")]
    MalformedRecoveryKey(String),
    /// The passphrase given does not open the device store of the login
    /// named (`user@host:port`), or the store is damaged. Nothing was
    /// changed.
    #[error(
        "That passphrase does not open the encryption keys of {0} (or their file is damaged); nothing was changed."
    )]
    WrongPassphrase(String),
    /// The device store of the login named is not sealed with a
    /// passphrase, so there is none to change.
    #[error(
        "The encryption keys of {owner} on this machine are sealed with {sealed_by}, not a passphrase: there is no passphrase to change."
    )]
    NoPassphrase {
        /// The login, `user@host:port`.
        owner: String,
        /// What seals them instead.
        sealed_by: String,
    },
}

impl Error {
    /// A short cause for a status line, without the server's address:
    /// `connection refused`, `connection lost`, ….
    pub fn cause(&self) -> String {
        match self {
            Error::Unreachable { reason, .. } => reason.clone(),
            Error::Server { message, .. } => message.trim_end_matches('.').to_owned(),
            Error::Disconnected => "connection lost".into(),
            Error::Closed { reason, code } if reason.is_empty() => format!("closed ({code})"),
            Error::Closed { reason, .. } => reason.clone(),
            Error::Stopped => "stopped".into(),
            Error::Protocol(_) => "unexpected reply".into(),
            Error::UnknownCertificate { .. } => "unknown certificate".into(),
            Error::CertificateChanged { .. } => "the certificate changed".into(),
            Error::TlsRequired { .. } => "the server requires TLS (wss://)".into(),
            Error::Local(why) => why.clone(),
            Error::E2ee(why) => why.trim_end_matches('.').to_owned(),
            Error::WrongRecoveryKey => "wrong recovery key".into(),
            Error::MalformedRecoveryKey(_) => "not a recovery key".into(),
            Error::WrongPassphrase(_) => "wrong passphrase".into(),
            Error::NoPassphrase { .. } => "no passphrase to change".into(),
        }
    }

    /// The server's error code, when the server refused the request.
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            Error::Server { code, .. } => Some(*code),
            _ => None,
        }
    }

    /// True when retrying the same login later cannot help.
    pub(crate) fn is_fatal_for_login(&self) -> bool {
        match self {
            Error::Server { code, .. } => !matches!(
                code,
                ErrorCode::RateLimited
                    | ErrorCode::ServerBusy
                    | ErrorCode::TooManyConnections
                    | ErrorCode::ShuttingDown
                    | ErrorCode::Unavailable
                    | ErrorCode::Internal
            ),
            Error::Closed { code, .. } => {
                *code == chatus_protocol::error::close::UNSUPPORTED_VERSION
            }
            Error::UnknownCertificate { .. }
            | Error::CertificateChanged { .. }
            | Error::TlsRequired { .. }
            | Error::Local(_) => true,
            _ => false,
        }
    }
}

impl From<chatus_protocol::ErrorReply> for Error {
    fn from(e: chatus_protocol::ErrorReply) -> Self {
        Error::Server {
            code: e.code,
            message: e.message,
            retry_after: e.retry_after_ms.map(Duration::from_millis),
        }
    }
}
