//! Transport security: the server's certificate, its fingerprint, and the
//! rustls acceptor every connection's handshake goes through.
//!
//! With no certificate configured the server makes its own on first start
//! (rcgen, ECDSA P-256, self-signed) for its host names: `localhost`,
//! `127.0.0.1`, `::1`, the machine's host name, the bound address when it
//! is a specific one, and `tls.names`. It is kept in `DATA/tls/` (`cert.pem`,
//! and `key.pem` with mode 0600) so clients that pinned it on first use
//! (trust on first use, as SSH does) recognise it after a restart. With
//! `tls.cert` and `tls.key` the server uses those files (a chain in PEM
//! and its private key) instead.
//!
//! The certificate in use sits behind a lock in [`Resolver`], which rustls
//! asks once per handshake: [`Tls::reload`] (SIGHUP in `chatus serve`)
//! swaps it without touching open connections, and a reload that fails
//! keeps the old one.
//!
//! Fingerprints are written `SHA256:` and the unpadded base64 of the
//! SHA-256 of the end certificate's DER, as OpenSSH writes key
//! fingerprints; the client library writes the same text.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use base64::Engine as _;
use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use sha2::Digest as _;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

use crate::config::Config;

/// Where the self-made certificate lives in the data directory.
const DIR: &str = "tls";
const CERT_FILE: &str = "cert.pem";
const KEY_FILE: &str = "key.pem";

/// Why the server's certificate could not be made or used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A certificate or key file could not be read or written.
    #[error("Could not use {path}: {source}")]
    File {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A file held no usable certificate or key.
    #[error("{path} holds no usable {what}: {why}")]
    Pem {
        /// The file.
        path: PathBuf,
        /// A certificate or a private key.
        what: &'static str,
        /// Why.
        why: String,
    },
    /// The certificate could not be generated.
    #[error("Could not generate a certificate: {0}")]
    Generate(String),
    /// rustls refused the certificate and key (a key that does not match,
    /// an unsupported algorithm).
    #[error("The certificate and key cannot be used together: {0}")]
    Rustls(String),
}

/// The ring provider: the one crypto provider across server, client and
/// certificate generation.
pub(crate) fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The certificate's fingerprint: `SHA256:` and the unpadded base64 of
/// the SHA-256 of its DER.
pub fn fingerprint(der: &[u8]) -> String {
    let digest = sha2::Sha256::digest(der);
    format!(
        "SHA256:{}",
        base64::engine::general_purpose::STANDARD_NO_PAD.encode(digest)
    )
}

/// Hands rustls the certificate in force; swapped by [`Tls::reload`].
#[derive(Debug)]
pub(crate) struct Resolver {
    // A std lock: read once per handshake, written on a reload, never
    // held across an await.
    current: RwLock<Arc<CertifiedKey>>,
}

impl ResolvesServerCert for Resolver {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.current.read().ok().map(|k| k.clone())
    }
}

/// Where the certificate comes from.
#[derive(Debug, Clone)]
enum Source {
    /// Made by the server, kept in the data directory.
    SelfSigned { cert: PathBuf, key: PathBuf },
    /// Given by the operator.
    Files { cert: PathBuf, key: PathBuf },
}

/// The server's TLS: its acceptor and the certificate in force.
pub struct Tls {
    acceptor: tokio_rustls::TlsAcceptor,
    resolver: Arc<Resolver>,
    source: Source,
    fingerprint: RwLock<String>,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls")
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

impl Tls {
    /// The TLS set-up `config` asks for: `None` with `tls.plain`; else the
    /// configured certificate, or the self-signed one in the data
    /// directory (made now if absent).
    pub fn from_config(config: &Config) -> Result<Option<Tls>, TlsError> {
        if config.tls.plain {
            return Ok(None);
        }
        let source = match (&config.tls.cert, &config.tls.key) {
            (Some(cert), Some(key)) => Source::Files {
                cert: cert.clone(),
                key: key.clone(),
            },
            _ => {
                let dir = config.data.join(DIR);
                let (cert, key) = (dir.join(CERT_FILE), dir.join(KEY_FILE));
                if !cert.exists() || !key.exists() {
                    generate(&dir, &cert, &key, &host_names(config))?;
                }
                Source::SelfSigned { cert, key }
            }
        };
        let (key, fp) = load(&source)?;
        let resolver = Arc::new(Resolver {
            current: RwLock::new(key),
        });
        let mut server = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError::Rustls(e.to_string()))?
            .with_no_client_auth()
            .with_cert_resolver(resolver.clone());
        server.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Some(Tls {
            acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(server)),
            resolver,
            source,
            fingerprint: RwLock::new(fp),
        }))
    }

    /// The fingerprint of the certificate in force (`SHA256:…`).
    pub fn fingerprint(&self) -> String {
        self.fingerprint
            .read()
            .map(|f| f.clone())
            .unwrap_or_default()
    }

    /// Whether the certificate is the server's own, self-signed one (and
    /// where it is kept).
    pub fn self_signed_path(&self) -> Option<&Path> {
        match &self.source {
            Source::SelfSigned { cert, .. } => Some(cert),
            Source::Files { .. } => None,
        }
    }

    /// Reads the certificate and key again and puts them in force for new
    /// handshakes; open connections keep theirs. On failure the old
    /// certificate stays. Returns the new fingerprint.
    pub fn reload(&self) -> Result<String, TlsError> {
        let (key, fp) = load(&self.source)?;
        if let Ok(mut current) = self.resolver.current.write() {
            *current = key;
        }
        if let Ok(mut f) = self.fingerprint.write() {
            f.clone_from(&fp);
        }
        Ok(fp)
    }
}

/// The names a self-made certificate is valid for.
fn host_names(config: &Config) -> Vec<String> {
    let mut names: Vec<String> = vec!["localhost".into(), "127.0.0.1".into(), "::1".into()];
    if let Some(host) = hostname() {
        names.push(host);
    }
    let ip = config.addr.ip();
    if !ip.is_unspecified() {
        names.push(ip.to_string());
    }
    names.extend(config.tls.names.iter().cloned());
    let mut seen = std::collections::HashSet::new();
    names.retain(|n| seen.insert(n.to_ascii_lowercase()));
    names
}

/// The machine's host name, when it is one a certificate can carry.
fn hostname() -> Option<String> {
    let uname = rustix::system::uname();
    let name = uname.nodename().to_str().ok()?.trim().to_ascii_lowercase();
    let ok = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
    ok.then_some(name)
}

/// Makes a self-signed certificate for `names` and writes it and its key
/// (mode 0600) into `dir`.
fn generate(dir: &Path, cert: &Path, key: &Path, names: &[String]) -> Result<(), TlsError> {
    let file_err = |path: &Path| {
        let path = path.to_owned();
        move |source| TlsError::File { path, source }
    };
    let gen_err = |e: rcgen::Error| TlsError::Generate(e.to_string());
    let signing_key = rcgen::KeyPair::generate().map_err(gen_err)?;
    let mut params = rcgen::CertificateParams::new(names.to_vec()).map_err(gen_err)?;
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "ChatUs self-signed");
    let made = params.self_signed(&signing_key).map_err(gen_err)?;
    std::fs::create_dir_all(dir).map_err(file_err(dir))?;
    write_private(key, signing_key.serialize_pem().as_bytes()).map_err(file_err(key))?;
    std::fs::write(cert, made.pem()).map_err(file_err(cert))?;
    tracing::info!(path = %cert.display(), names = ?names, "made a self-signed certificate");
    Ok(())
}

/// Writes a file only its owner may read.
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

/// Reads the certificate chain and key and checks they belong together.
fn load(source: &Source) -> Result<(Arc<CertifiedKey>, String), TlsError> {
    let (cert_path, key_path) = match source {
        Source::SelfSigned { cert, key } | Source::Files { cert, key } => (cert, key),
    };
    let read = |path: &PathBuf| {
        std::fs::read(path).map_err(|source| TlsError::File {
            path: path.clone(),
            source,
        })
    };
    let pem_err = |path: &PathBuf, what, why: String| TlsError::Pem {
        path: path.clone(),
        what,
        why,
    };
    let cert_pem = read(cert_path)?;
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<_, _>>()
        .map_err(|e| pem_err(cert_path, "certificate", e.to_string()))?;
    let Some(first) = chain.first() else {
        return Err(pem_err(
            cert_path,
            "certificate",
            "no CERTIFICATE block".into(),
        ));
    };
    let fp = fingerprint(first);
    let key_pem = read(key_path)?;
    let key = PrivateKeyDer::from_pem_slice(&key_pem)
        .map_err(|e| pem_err(key_path, "private key", e.to_string()))?;
    let certified = CertifiedKey::from_der(chain, key, &provider())
        .map_err(|e| TlsError::Rustls(e.to_string()))?;
    Ok((Arc::new(certified), fp))
}

/// The first byte of a TLS record carrying a handshake (a ClientHello).
const TLS_HANDSHAKE: u8 = 0x16;
/// Time a plain-text client gets to read why it is refused.
const REFUSAL_TIME: Duration = Duration::from_secs(2);

/// Runs the TLS handshake on a new connection, all within `limit`.
/// A client that speaks plain text (its first byte does not open a TLS
/// handshake) is answered `400` with the `wss://` address to use instead,
/// and `None` is returned, as for a failed or stalled handshake.
pub(crate) async fn accept(
    tls: &Tls,
    socket: TcpStream,
    limit: Duration,
) -> Option<Box<tokio_rustls::server::TlsStream<TcpStream>>> {
    let deadline = tokio::time::Instant::now() + limit;
    let mut first = [0u8; 1];
    match tokio::time::timeout_at(deadline, socket.peek(&mut first)).await {
        Ok(Ok(1)) if first[0] == TLS_HANDSHAKE => {}
        Ok(Ok(1)) => {
            tracing::debug!("plain text on the TLS port");
            let _ = tokio::time::timeout(REFUSAL_TIME, refuse_plain(socket)).await;
            return None;
        }
        _ => return None,
    }
    match tokio::time::timeout_at(deadline, tls.acceptor.accept(socket)).await {
        Ok(Ok(stream)) => Some(Box::new(stream)),
        Ok(Err(e)) => {
            tracing::debug!(cause = %e, "TLS handshake failed");
            None
        }
        Err(_) => {
            tracing::debug!("TLS handshake timed out");
            None
        }
    }
}

/// Answers a plain-text request on the TLS port: `400`, saying to use
/// `wss://` (or `https://`) at the address the client asked for.
async fn refuse_plain(mut socket: TcpStream) -> std::io::Result<()> {
    let mut head = vec![0u8; 4096];
    let n = socket.read(&mut head).await?;
    head.truncate(n);
    let host = requested_host(&head).or_else(|| socket.local_addr().ok().map(|a| a.to_string()));
    let host = host.unwrap_or_else(|| "HOST:PORT".into());
    let body = format!(
        "{}: connect to wss://{host}{} (https://{host} for HTTP).\n",
        chatus_protocol::TLS_REQUIRED,
        chatus_protocol::WS_PATH,
    );
    let response = format!(
        "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    socket.write_all(response.as_bytes()).await?;
    socket.shutdown().await?;
    // Read what else the client sends until it closes, so that closing
    // does not reset the connection before it has read the answer.
    let mut sink = [0u8; 512];
    let mut drained = 0;
    while drained < 64 * 1024 {
        match socket.read(&mut sink).await? {
            0 => break,
            n => drained += n,
        }
    }
    Ok(())
}

/// The `Host` of a plain HTTP request head, when it is a plausible host
/// and port (it is echoed back to the client).
fn requested_host(head: &[u8]) -> Option<String> {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut req = httparse::Request::new(&mut headers);
    req.parse(head).ok()?;
    let value = req
        .headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("host"))?
        .value;
    let host = std::str::from_utf8(value).ok()?.trim();
    let plausible = !host.is_empty()
        && host.len() <= 255
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b));
    plausible.then(|| host.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(dir: &Path) -> Config {
        Config {
            data: dir.to_owned(),
            ..Config::default()
        }
    }

    #[test]
    fn a_self_signed_certificate_is_made_once_and_kept_private() {
        let dir = tempfile::tempdir().unwrap();
        let tls = Tls::from_config(&config(dir.path())).unwrap().unwrap();
        let fp = tls.fingerprint();
        assert!(fp.starts_with("SHA256:") && fp.len() == 7 + 43, "{fp}");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(dir.path().join("tls/key.pem"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        // A restart finds it: same fingerprint.
        let again = Tls::from_config(&config(dir.path())).unwrap().unwrap();
        assert_eq!(again.fingerprint(), fp);
        assert!(again.self_signed_path().is_some());
    }

    #[test]
    fn a_failed_reload_keeps_the_certificate_in_force() {
        let dir = tempfile::tempdir().unwrap();
        let tls = Tls::from_config(&config(dir.path())).unwrap().unwrap();
        let fp = tls.fingerprint();
        std::fs::write(dir.path().join("tls/cert.pem"), "not a certificate").unwrap();
        let err = tls.reload().unwrap_err();
        assert!(matches!(err, TlsError::Pem { .. }), "{err}");
        assert_eq!(tls.fingerprint(), fp);
        // A certificate that does not match the key is refused too.
        let other = rcgen::generate_simple_self_signed(vec!["x".into()]).unwrap();
        std::fs::write(dir.path().join("tls/cert.pem"), other.cert.pem()).unwrap();
        assert!(matches!(tls.reload(), Err(TlsError::Rustls(_))));
        assert_eq!(tls.fingerprint(), fp);
    }

    #[test]
    fn names_cover_loopback_the_bound_address_and_configured_names() {
        let mut c = Config {
            addr: "10.1.2.3:7500".parse().unwrap(),
            ..Config::default()
        };
        c.tls.names = vec!["chat.example.org".into(), "LOCALHOST".into()];
        let names = host_names(&c);
        for want in [
            "localhost",
            "127.0.0.1",
            "::1",
            "10.1.2.3",
            "chat.example.org",
        ] {
            assert!(names.iter().any(|n| n == want), "{want} in {names:?}");
        }
        assert_eq!(
            names
                .iter()
                .filter(|n| n.eq_ignore_ascii_case("localhost"))
                .count(),
            1
        );
    }
}
