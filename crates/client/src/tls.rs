//! Opening a connection to a server: TCP, then TLS for `wss://` (rustls
//! with ring, the roots of webpki-roots, then the pins of [`Trust`]), and
//! the typed errors a person can act on: an unknown certificate (with its
//! fingerprint, so a front end can ask), a changed one, a server that
//! requires TLS, a server that does not speak it.
//!
//! Why webpki-roots rather than the platform's verifier: the roots are
//! compiled in, so verification is the same on every machine and needs no
//! system library; a certificate from a private authority that only the
//! system trusts is handled as a self-signed one is, by its pin.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::{DigitallySignedStruct, SignatureScheme};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use crate::error::Error;
use crate::known::{Fingerprint, Trust};
use crate::url::ServerUrl;

/// A connection to a server, with or without TLS.
#[derive(Debug)]
pub enum Stream {
    /// `ws://`, `http://`.
    Plain(TcpStream),
    /// `wss://`, `https://` (boxed: the TLS state is large).
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s).poll_shutdown(cx),
        }
    }
}

/// What the verifier saw of a certificate it could not check against
/// the roots.
#[derive(Debug, Clone)]
enum Seen {
    /// Not pinned, not accepted.
    Unknown(Fingerprint),
    /// Pinned with another fingerprint.
    Changed {
        pinned: Fingerprint,
        seen: Fingerprint,
    },
    /// The fingerprint the caller said to accept, to be pinned.
    Accepted(Fingerprint),
}

/// Roots first, then the pin, then the fingerprint the caller accepted.
#[derive(Debug)]
struct Verifier {
    roots: Arc<WebPkiServerVerifier>,
    provider: Arc<CryptoProvider>,
    pinned: Option<Fingerprint>,
    accept: Option<Fingerprint>,
    seen: Mutex<Option<Seen>>,
}

impl Verifier {
    fn record(&self, seen: Seen) {
        if let Ok(mut s) = self.seen.lock() {
            *s = Some(seen);
        }
    }
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let by_roots = self.roots.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        );
        if by_roots.is_ok() {
            return by_roots;
        }
        let fp = Fingerprint::of(end_entity);
        if self.accept.as_ref() == Some(&fp) {
            if self.pinned.as_ref() != Some(&fp) {
                self.record(Seen::Accepted(fp));
            }
            return Ok(ServerCertVerified::assertion());
        }
        match &self.pinned {
            Some(pinned) if *pinned == fp => Ok(ServerCertVerified::assertion()),
            Some(pinned) => {
                self.record(Seen::Changed {
                    pinned: pinned.clone(),
                    seen: fp,
                });
                Err(rustls::Error::General("certificate changed".into()))
            }
            None => {
                self.record(Seen::Unknown(fp));
                Err(rustls::Error::General("unknown certificate".into()))
            }
        }
    }

    // The signatures are checked in every case: a pinned certificate must
    // still prove its key.
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// The host as a socket address wants it (no IPv6 brackets).
fn bare_host(server: &ServerUrl) -> &str {
    server.host().trim_start_matches('[').trim_end_matches(']')
}

/// Connects to `server` within `timeout`: TCP, then TLS for `wss://`.
/// An accepted fingerprint is pinned once the handshake succeeds.
pub(crate) async fn connect(
    server: &ServerUrl,
    trust: &Trust,
    timeout: Duration,
) -> Result<Stream, Error> {
    let unreachable = |reason: String| Error::Unreachable {
        url: server.to_string(),
        reason,
    };
    let tcp = tokio::time::timeout(
        timeout,
        TcpStream::connect((bare_host(server), server.port())),
    )
    .await
    .map_err(|_| unreachable("timed out".into()))?
    .map_err(|e| unreachable(io_cause(&e, server.host())))?;
    let _ = tcp.set_nodelay(true);
    if !server.is_tls() {
        return Ok(Stream::Plain(tcp));
    }
    let pinned = match &trust.known {
        Some(known) => known
            .pinned(server)
            .map_err(|e| Error::Local(e.to_string()))?,
        None => None,
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    let roots = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .map_err(|e| Error::Local(format!("cannot set up TLS: {e}")))?;
    let verifier = Arc::new(Verifier {
        roots,
        provider: provider.clone(),
        pinned,
        accept: trust.accept.clone(),
        seen: Mutex::new(None),
    });
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Local(format!("cannot set up TLS: {e}")))?
        .dangerous()
        .with_custom_certificate_verifier(verifier.clone())
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let name = ServerName::try_from(bare_host(server).to_owned())
        .map_err(|_| unreachable(format!("{} is not a valid host name", server.host())))?;
    let handshake = tokio_rustls::TlsConnector::from(Arc::new(config)).connect(name, tcp);
    let result = tokio::time::timeout(timeout, handshake)
        .await
        .map_err(|_| unreachable("the TLS handshake timed out".into()))?;
    let seen = verifier.seen.lock().ok().and_then(|mut s| s.take());
    match (result, seen) {
        (Ok(stream), seen) => {
            if let (Some(Seen::Accepted(fp)), Some(known)) = (seen, &trust.known) {
                known
                    .pin(server, &fp)
                    .map_err(|e| Error::Local(e.to_string()))?;
            }
            Ok(Stream::Tls(Box::new(stream)))
        }
        (Err(_), Some(Seen::Unknown(fingerprint))) => Err(Error::UnknownCertificate {
            server: server.key(),
            fingerprint: fingerprint.to_string(),
        }),
        (Err(_), Some(Seen::Changed { pinned, seen })) => Err(Error::CertificateChanged {
            server: server.key(),
            pinned: pinned.to_string(),
            seen: seen.to_string(),
        }),
        (Err(e), _) => Err(unreachable(tls_cause(&e, server))),
    }
}

/// A failed TLS handshake as a cause a person can act on.
fn tls_cause(e: &io::Error, server: &ServerUrl) -> String {
    let inner = e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>());
    match inner {
        Some(rustls::Error::InvalidMessage(_) | rustls::Error::InappropriateMessage { .. }) => {
            format!(
                "it did not answer in TLS; if it serves without TLS (--plain), use ws://{}",
                server.key()
            )
        }
        Some(other) => format!("the TLS handshake failed: {other}"),
        None if matches!(
            e.kind(),
            io::ErrorKind::UnexpectedEof | io::ErrorKind::ConnectionReset
        ) =>
        {
            format!(
                "it closed the connection during the TLS handshake; if it serves without TLS \
                 (--plain), use ws://{}",
                server.key()
            )
        }
        None => io_cause(e, server.host()),
    }
}

/// An I/O failure as a short cause.
pub(crate) fn io_cause(io: &io::Error, host: &str) -> String {
    use std::io::ErrorKind;
    match io.kind() {
        ErrorKind::ConnectionRefused => "connection refused".into(),
        ErrorKind::TimedOut => "timed out".into(),
        ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted | ErrorKind::UnexpectedEof => {
            "the connection was reset".into()
        }
        ErrorKind::HostUnreachable => "no route to the host".into(),
        ErrorKind::NetworkUnreachable => "the network is unreachable".into(),
        ErrorKind::AddrNotAvailable => "the address is not available".into(),
        // Name resolution failures carry no kind of their own.
        _ if io.to_string().contains("lookup address") => {
            format!("the name {host} could not be resolved")
        }
        _ => io.to_string(),
    }
}

/// Opens the WebSocket of `server` within `timeout` over [`connect`]'s
/// stream; a `400` saying the server requires TLS becomes
/// [`Error::TlsRequired`].
pub(crate) async fn websocket(
    server: &ServerUrl,
    trust: &Trust,
    timeout: Duration,
) -> Result<tokio_tungstenite::WebSocketStream<Stream>, Error> {
    use tokio_tungstenite::tungstenite::Error as WsError;
    let stream = connect(server, trust, timeout).await?;
    let url = server.endpoint();
    let opened = tokio::time::timeout(
        timeout,
        tokio_tungstenite::client_async_with_config(url.as_str(), stream, None),
    )
    .await
    .map_err(|_| Error::Unreachable {
        url: server.to_string(),
        reason: "timed out".into(),
    })?;
    match opened {
        Ok((ws, _)) => Ok(ws),
        Err(WsError::Http(response))
            if response.body().as_deref().is_some_and(|b| {
                String::from_utf8_lossy(b).starts_with(chatus_protocol::TLS_REQUIRED)
            }) =>
        {
            Err(Error::TlsRequired {
                server: server.to_string(),
                tls_url: format!("wss://{}", server.key()),
            })
        }
        Err(e) => Err(Error::Unreachable {
            url: server.to_string(),
            reason: crate::task::connect_failure(&e, server.host()),
        }),
    }
}

/// Checks `server`'s certificate as a connection would (a TLS handshake,
/// then closes), so that a front end can ask about an unknown certificate
/// before anything else happens; pins an accepted fingerprint. Nothing is
/// checked for `ws://`.
pub async fn check(server: &ServerUrl, trust: &Trust, timeout: Duration) -> Result<(), Error> {
    if !server.is_tls() {
        return Ok(());
    }
    connect(server, trust, timeout).await.map(drop)
}
