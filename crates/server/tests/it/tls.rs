//! The TLS handshake inside the connection limits: a connection counts
//! against its address's caps from the moment it is accepted, through its
//! handshake, and one that stalls mid-handshake is closed at the opening's
//! limit, giving its place back. (Trust on first use, reloads and plain
//! clients on the TLS port are tested in the client library's suite and
//! the CLI's.)

use std::time::Duration;

use chatus_client::protocol::{Password, Username};
use chatus_client::{Client, Credentials, Fingerprint, ServerUrl, Trust};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

use crate::util::TestServer;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_handshake_holds_its_place_only_until_the_opening_limit() {
    // One node where the suite spreads tests over several: the per-address places are each node's.
    let server = TestServer::start_one_node(|c| {
        c.tls.plain = false;
        c.max_pre_login_per_addr = 2;
    })
    .await;
    // Two clients begin a TLS handshake (a record header and the first
    // bytes of a ClientHello) and stall.
    let mut stalled = Vec::new();
    for _ in 0..2 {
        let mut s = TcpStream::connect(server.addr).await.unwrap();
        s.write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01])
            .await
            .unwrap();
        stalled.push(s);
    }
    // They hold the address's places for connections not logged in: a
    // third is refused at once.
    let mut third = TcpStream::connect(server.addr).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), third.read_to_end(&mut answer))
        .await
        .unwrap()
        .unwrap();
    assert!(
        answer.starts_with(b"HTTP/1.1 429"),
        "{}",
        String::from_utf8_lossy(&answer)
    );
    // The handshake's time is bounded (10 s): both are closed, not held.
    for s in &mut stalled {
        let mut buf = [0u8; 64];
        let closed = tokio::time::timeout(Duration::from_secs(20), s.read(&mut buf))
            .await
            .expect("a stalled handshake was held past the opening's limit");
        assert!(matches!(closed, Ok(0) | Err(_)), "{closed:?}");
    }
    // Their places are free again: a real client gets in.
    let fp = Fingerprint::parse(&server.state.tls().unwrap().fingerprint()).unwrap();
    let url = ServerUrl::parse(&format!("wss://{}", server.addr)).unwrap();
    let mut config = chatus_client::Config::new(
        url,
        Credentials::Register {
            username: Username::parse("after").unwrap(),
            password: Password::parse("a long password".to_owned()).unwrap(),
        },
    );
    config.reconnect = chatus_client::Reconnect::attempts(20);
    config.trust = Trust {
        known: None,
        accept: Some(fp),
    };
    let (client, _, connected) = Client::connect(config).await.unwrap();
    assert_eq!(connected.user.as_str(), "after");
    client.quit().await;
}
