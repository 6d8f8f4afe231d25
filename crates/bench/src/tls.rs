//! TLS for the load generator: rustls with ring, trusting exactly the
//! certificate a server under test wrote into its data directory (its DER
//! bytes compared; the handshake signatures still checked with ring).
//! A server started with TLS registers its address here with [`trust`];
//! [`crate::ws::connect`] then speaks TLS to that address and plain TCP to
//! every other.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, OnceLock, RwLock};

use anyhow::{Context as _, anyhow};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::{DigitallySignedStruct, SignatureScheme};
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use tokio_rustls::TlsConnector;

/// Accepts one certificate, by its bytes.
#[derive(Debug)]
struct Exactly {
    cert: CertificateDer<'static>,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for Exactly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if end_entity.as_ref() == self.cert.as_ref() {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::General(
                "not the certificate of the server under test".into(),
            ))
        }
    }

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

/// Servers that speak TLS, by address.
fn servers() -> &'static RwLock<HashMap<SocketAddr, TlsConnector>> {
    static SERVERS: OnceLock<RwLock<HashMap<SocketAddr, TlsConnector>>> = OnceLock::new();
    SERVERS.get_or_init(|| RwLock::new(HashMap::new()))
}

/// From now on, connections to `addr` use TLS and accept exactly the
/// first certificate of the PEM file `cert` (a server's `DATA/tls/cert.pem`).
pub fn trust(addr: SocketAddr, cert: &Path) -> anyhow::Result<()> {
    let cert = CertificateDer::from_pem_file(cert)
        .with_context(|| format!("reading the certificate {}", cert.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = Arc::new(Exactly {
        cert,
        provider: provider.clone(),
    });
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    servers()
        .write()
        .map_err(|_| anyhow!("TLS registry poisoned"))?
        .insert(addr, TlsConnector::from(Arc::new(config)));
    Ok(())
}

/// The connector for `addr`, if it speaks TLS.
pub(crate) fn connector(addr: SocketAddr) -> Option<TlsConnector> {
    servers().read().ok()?.get(&addr).cloned()
}
