//! TLS and trust on first use against a real server serving TLS with the
//! certificate it made for itself: an unknown certificate is a typed error
//! with its fingerprint, an accepted one is pinned and later connections
//! need nothing more, a changed one is refused (and open connections
//! survive the server's reload), a `ws://` client is told to use `wss://`,
//! and files travel over `https://` with the same checks.

use chatus_client::protocol::{Body, Conversation, RoomName};
use chatus_client::transfer::{self, Endpoint};
use chatus_client::{Client, Credentials, Error, Fingerprint, KnownServers, ServerUrl, Trust};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::util::{TestServer, WAIT, client_config, password, user};

async fn tls_server() -> (TestServer, ServerUrl) {
    let server = TestServer::start_with(|c| c.tls.plain = false).await;
    // No scheme: wss://, as a person would type it.
    let url = ServerUrl::parse(&server.addr.to_string()).unwrap();
    assert!(url.is_tls());
    (server, url)
}

fn fingerprint(server: &TestServer) -> Fingerprint {
    Fingerprint::parse(&server.state.tls().unwrap().fingerprint()).unwrap()
}

async fn connect(
    url: &ServerUrl,
    trust: &Trust,
    credentials: Credentials,
) -> Result<(Client, chatus_client::Events), Error> {
    let mut config = client_config(url.clone(), credentials);
    config.trust = trust.clone();
    tokio::time::timeout(WAIT, Client::connect(config))
        .await
        .unwrap()
        .map(|(c, e, _)| (c, e))
}

fn register(name: &str) -> Credentials {
    Credentials::Register {
        username: user(name),
        password: password(name),
    }
}

fn login(name: &str) -> Credentials {
    Credentials::Login {
        username: user(name),
        password: password(name),
    }
}

#[tokio::test]
async fn first_use_pins_then_a_changed_certificate_is_refused() {
    let (server, url) = tls_server().await;
    let cfg = tempfile::tempdir().unwrap();
    let mut trust = Trust::in_dir(cfg.path().to_owned());
    let fp = fingerprint(&server);

    // First contact: refused with the fingerprint a front end shows.
    match connect(&url, &trust, register("alice")).await {
        Err(Error::UnknownCertificate {
            server: s,
            fingerprint,
        }) => {
            assert_eq!(s, url.key());
            assert_eq!(fingerprint, fp.as_str());
        }
        other => panic!("{:?}", other.map(|_| ())),
    }
    // Accepted: connects, and the pin is saved by host and port.
    trust.accept = Some(fp.clone());
    let (alice, _) = connect(&url, &trust, register("alice")).await.unwrap();
    let known = KnownServers::new(cfg.path().to_owned());
    assert_eq!(known.pinned(&url).unwrap(), Some(fp.clone()));
    // Later connections need only the pin.
    let pinned_only = Trust::in_dir(cfg.path().to_owned());
    let (again, _) = connect(&url, &pinned_only, login("alice")).await.unwrap();
    again.quit().await;

    // The server makes a new certificate and reloads (as on SIGHUP).
    let made =
        rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    let tls_dir = server.dir.path().join("tls");
    std::fs::write(tls_dir.join("cert.pem"), made.cert.pem()).unwrap();
    std::fs::write(tls_dir.join("key.pem"), made.signing_key.serialize_pem()).unwrap();
    let new_fp = server.state.tls().unwrap().reload().unwrap();
    assert_ne!(new_fp, fp.as_str());
    assert_eq!(Fingerprint::of(made.cert.der()).as_str(), new_fp);

    // The open connection goes on over the old session.
    let lobby = Conversation::Room(RoomName::parse("lobby").unwrap());
    alice
        .send(lobby, Body::parse("still here").unwrap())
        .await
        .unwrap();
    // A new one is refused, with both fingerprints.
    match connect(&url, &pinned_only, login("alice")).await {
        Err(Error::CertificateChanged {
            server: s,
            pinned,
            seen,
        }) => {
            assert_eq!(s, url.key());
            assert_eq!(pinned, fp.as_str());
            assert_eq!(seen, new_fp);
            let e = Error::CertificateChanged {
                server: s,
                pinned,
                seen,
            };
            let text = e.to_string();
            assert!(text.contains("intercepting"), "{text}");
        }
        other => panic!("{:?}", other.map(|_| ())),
    }
    // Accepting the new fingerprint re-pins it.
    let repin = Trust {
        accept: Some(Fingerprint::parse(&new_fp).unwrap()),
        ..pinned_only.clone()
    };
    let (bob, _) = connect(&url, &repin, register("bob")).await.unwrap();
    assert_eq!(known.pinned(&url).unwrap().unwrap().as_str(), new_fp);
    bob.quit().await;
    alice.quit().await;
}

#[tokio::test]
async fn a_plain_client_on_the_tls_port_is_told_to_use_wss() {
    let (server, _) = tls_server().await;
    let plain = ServerUrl::parse(&format!("ws://{}", server.addr)).unwrap();
    match connect(&plain, &Trust::default(), register("carol")).await {
        Err(e @ Error::TlsRequired { .. }) => {
            assert!(
                e.to_string().contains(&format!("wss://{}", server.addr)),
                "{e}"
            );
        }
        other => panic!("{:?}", other.map(|_| ())),
    }
    // Raw HTTP gets a 400 naming the address it asked for.
    let mut s = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    s.write_all(b"GET /health HTTP/1.1\r\nHost: chat.example.org:7500\r\n\r\n")
        .await
        .unwrap();
    let mut answer = String::new();
    tokio::time::timeout(WAIT, s.read_to_string(&mut answer))
        .await
        .unwrap()
        .unwrap();
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(
        answer.contains("requires TLS: connect to wss://chat.example.org:7500/ws"),
        "{answer}"
    );
}

#[tokio::test]
async fn a_tls_client_on_a_plain_server_is_told_to_use_ws() {
    let server = TestServer::start().await;
    let url = ServerUrl::parse(&server.addr.to_string()).unwrap();
    let mut config = client_config(url, register("dave"));
    config.reconnect = chatus_client::Reconnect::never();
    match Client::connect(config).await.map(|_| ()) {
        Err(Error::Unreachable { reason, .. }) => {
            assert!(
                reason.contains(&format!("ws://{}", server.addr)),
                "{reason}"
            );
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn files_travel_over_https_with_the_same_checks() {
    let (server, url) = tls_server().await;
    let cfg = tempfile::tempdir().unwrap();
    let trust = Trust {
        accept: Some(fingerprint(&server)),
        ..Trust::in_dir(cfg.path().to_owned())
    };
    let mut config = client_config(url.clone(), register("erin"));
    config.trust = trust.clone();
    let (client, _, connected) = Client::connect(config).await.unwrap();
    let token = connected.token.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let data: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    let src = dir.path().join("notes.bin");
    std::fs::write(&src, &data).unwrap();
    let to = Endpoint {
        server: url.clone(),
        token: token.clone(),
        trust: Trust::in_dir(cfg.path().to_owned()),
    };
    let up = transfer::upload(&to, &src, &mut |_| {}).await.unwrap();
    let out = tempfile::tempdir().unwrap();
    let got = transfer::download(&to, &up.id, Some(out.path()), false, &mut |_| {})
        .await
        .unwrap();
    assert_eq!(std::fs::read(&got.path).unwrap(), data);
    // Without the pin, the same download is refused.
    let stranger = Endpoint {
        trust: Trust::default(),
        ..to
    };
    let refused = transfer::download(&stranger, &up.id, Some(out.path()), true, &mut |_| {})
        .await
        .unwrap_err();
    assert!(refused.to_string().contains("fingerprint"), "{refused}");
    client.quit().await;
}
