//! Files in S3: the file-transfer tests (`files`, `transfer`,
//! `thumbnails`) again with every server's files in a real S3-compatible
//! server (s3s-fs in this process: `util::S3Server`), what lands where in
//! the bucket, a start against a store that is not there, and a cluster
//! whose nodes share one bucket.
//!
//! To run the file tests on S3 directly:
//! `CHATUS_TEST_FILES=s3 cargo test -p chatus-server --test it files::`.

use std::net::SocketAddr;
use std::sync::Arc;

use chatus_client::Client;
use chatus_client::protocol::{Body, FileId, Token};

use crate::cluster::Cluster;
use crate::files::{
    TUS, account, auth, content, create, get, head_offset, http, lobby, patch, sha,
};
use crate::util::{S3_KEY, S3Server, TestServer, WAIT, in_replay, replay_suite, test_config};

/// The file-transfer tests with every server's files in S3.
#[tokio::test]
async fn the_file_tests_pass_on_s3() {
    if in_replay() {
        // This is that run itself (or another replay).
        return;
    }
    replay_suite(
        "on S3",
        &[("CHATUS_TEST_FILES", "s3".into())],
        &["files::", "transfer::", "thumbnails::"],
        // "files::" is also in "profiles::": not file tests.
        &["profiles::"],
    )
    .await;
}

/// A server whose files are in `s3`.
async fn server_on(s3: &Arc<S3Server>) -> TestServer {
    let s3 = s3.clone();
    TestServer::start_with(move |c| s3.configure(c)).await
}

/// An upload's objects (the names under `partial/ID/`).
fn parts(s3: &S3Server, id: &FileId) -> Vec<String> {
    let dir = format!("partial/{id}/");
    s3.objects("partial")
        .into_iter()
        .filter_map(|o| o.strip_prefix(&dir).map(str::to_owned))
        .collect()
}

async fn share(client: &Client, id: &FileId) {
    client
        .send_file_with_id(
            lobby(),
            Body::parse("a file").unwrap(),
            Some(id.clone()),
            Client::new_client_id(),
        )
        .await
        .unwrap();
}

/// An upload is a marker and one object per chunk until its last byte;
/// then one content-addressed blob, and the parts are gone; a second
/// upload of the same bytes adds no blob.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parts_are_objects_until_the_upload_becomes_one_blob() {
    let s3 = Arc::new(S3Server::start().await);
    let server = server_on(&s3).await;
    let (_alice, _events, token) = account(server.url(), "alice").await;
    let data = content(300_000, 7);
    let id = create(server.addr, &token, data.len() as u64, "a.bin").await;
    assert_eq!(parts(&s3, &id), ["created"]);
    assert_eq!(head_offset(server.addr, &token, &id).await, 0);
    for (from, to) in [(0, 100_000), (100_000, 250_000)] {
        let r = patch(server.addr, &token, &id, from as u64, &data[from..to]).await;
        assert_eq!(r.status, 204, "{}", r.text());
    }
    assert_eq!(
        parts(&s3, &id),
        ["00000000000000000000", "00000000000000100000", "created"]
    );
    assert_eq!(head_offset(server.addr, &token, &id).await, 250_000);
    let r = patch(server.addr, &token, &id, 250_000, &data[250_000..]).await;
    assert_eq!(r.status, 204, "{}", r.text());
    assert!(parts(&s3, &id).is_empty(), "{:?}", parts(&s3, &id));
    assert_eq!(s3.objects("blobs"), [format!("blobs/{}", sha(&data))]);

    let r = get(server.addr, &token, &id, "").await;
    assert_eq!((r.status, r.body == data), (200, true));
    let r = get(server.addr, &token, &id, "Range: bytes=299990-\r\n").await;
    assert_eq!((r.status, &r.body[..]), (206, &data[299_990..]));

    // The same bytes again: stored once.
    let again = create(server.addr, &token, data.len() as u64, "b.bin").await;
    let r = patch(server.addr, &token, &again, 0, &data).await;
    assert_eq!(r.status, 204, "{}", r.text());
    assert_eq!(s3.objects("blobs").len(), 1);
    assert!(parts(&s3, &again).is_empty());
}

/// A chunk whose checksum does not match is cut back out of S3: the
/// upload's offset stays where it was and the upload then completes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_discarded_chunk_is_cut_back_out_of_the_bucket() {
    use base64::Engine as _;
    let s3 = Arc::new(S3Server::start().await);
    let server = server_on(&s3).await;
    let (_alice, _events, token) = account(server.url(), "alice").await;
    let data = content(10_000, 1);
    let id = create(server.addr, &token, data.len() as u64, "c.bin").await;
    let r = patch(server.addr, &token, &id, 0, &data[..4000]).await;
    assert_eq!(r.status, 204);
    let wrong = base64::engine::general_purpose::STANDARD.encode([0u8; 32]);
    let r = crate::files::patch_with(
        server.addr,
        &token,
        &id,
        4000,
        &data[4000..],
        &format!("Upload-Checksum: sha256 {wrong}\r\n"),
    )
    .await;
    assert_eq!(r.status, 460, "{}", r.text());
    assert_eq!(head_offset(server.addr, &token, &id).await, 4000);
    assert_eq!(parts(&s3, &id), ["00000000000000000000", "created"]);
    let r = patch(server.addr, &token, &id, 4000, &data[4000..]).await;
    assert_eq!(r.status, 204, "{}", r.text());
    assert_eq!(get(server.addr, &token, &id, "").await.body, data);
}

/// A store that is not there, or that refuses the node's key, stops the
/// start with an error naming it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_or_refusing_store_stops_the_start() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let s3 = S3Server::start().await;
    for (endpoint, secret) in [
        (format!("http://{closed}"), S3_KEY.1),
        // (TLS set up, rustls on ring, before the connection is refused.)
        (format!("https://{closed}"), S3_KEY.1),
        (s3.endpoint.clone(), "not-the-secret"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let mut config = test_config(dir.path().to_owned());
        s3.configure(&mut config);
        config.files.s3_endpoint = Some(endpoint.clone());
        config.files.s3_secret_access_key = Some(chatus_server::config::Secret(secret.into()));
        let err = match chatus_server::State::open(config).await {
            Ok(_) => panic!("started without its file store at {endpoint}"),
            Err(e) => e.to_string(),
        };
        assert!(
            err.starts_with("The S3 file store s3://chatus is unreachable or refused access"),
            "{err}"
        );
    }
}

/// Calls `HEAD /uploads/ID` on `addr` until it answers 200 (the node
/// learns of a session made elsewhere over the bus a moment later).
async fn offset_on(addr: SocketAddr, token: &Token, id: &FileId) -> u64 {
    tokio::time::timeout(WAIT, async {
        loop {
            let r = http(
                addr,
                &format!("HEAD /uploads/{id} HTTP/1.1\r\n{TUS}{}", auth(token)),
                b"",
            )
            .await;
            if r.status == 200 {
                return r.header("upload-offset").unwrap().parse().unwrap();
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("the upload never showed on that node")
}

/// Three nodes sharing one bucket: an upload begun on A resumes on B,
/// and the file shared from A downloads on C, whole and by range.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_uploaded_through_one_node_downloads_through_another() {
    let Some(cl) = Cluster::with_s3().await else {
        return;
    };
    let (a, b, c) = (cl.node().await, cl.node().await, cl.node().await);
    let (alice, _ea, token) = account(a.url(), "alice").await;
    let data = content(6 << 20, 9);
    let id = create(a.addr, &token, data.len() as u64, "big.bin").await;
    let r = patch(a.addr, &token, &id, 0, &data[..1 << 20]).await;
    assert_eq!(r.status, 204, "{}", r.text());
    assert_eq!(offset_on(b.addr, &token, &id).await, 1 << 20);
    let r = patch(b.addr, &token, &id, 1 << 20, &data[1 << 20..]).await;
    assert_eq!(r.status, 204, "{}", r.text());
    assert_eq!(head_offset(a.addr, &token, &id).await, data.len() as u64);
    share(&alice, &id).await;

    let (_bob, _eb, bob_token) = account(c.url(), "bob").await;
    let whole = tokio::time::timeout(WAIT, async {
        loop {
            let r = get(c.addr, &bob_token, &id, "").await;
            if r.status == 200 {
                return r;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("the file never downloaded on C");
    assert_eq!(whole.body.len(), data.len());
    assert!(whole.body == data, "the bytes differ");
    assert_eq!(
        whole.header("etag"),
        Some(format!("\"{}\"", sha(&data)).as_str())
    );
    let r = get(c.addr, &bob_token, &id, "Range: bytes=5000000-5000009\r\n").await;
    assert_eq!((r.status, &r.body[..]), (206, &data[5_000_000..5_000_010]));
    // One blob, assembled by a multipart upload (6 MiB), and no part left.
    let s3 = cl.s3.as_ref().unwrap();
    assert_eq!(s3.objects("blobs"), [format!("blobs/{}", sha(&data))]);
    assert!(
        s3.objects("partial").is_empty(),
        "{:?}",
        s3.objects("partial")
    );
}

/// Nodes that keep files in their own data directories (no S3): an upload
/// begun on A and resumed on B is refused there with the reason and the
/// fix, not a bare "no such upload" (seen trying a cluster by hand).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_without_the_bytes_says_why() {
    let Some(cl) = Cluster::new().await else {
        return;
    };
    let (a, b) = (cl.node().await, cl.node().await);
    let (_alice, _ea, token) = account(a.url(), "alice").await;
    let id = create(a.addr, &token, 10, "apart.bin").await;
    let r = patch(b.addr, &token, &id, 0, b"0123456789").await;
    assert_eq!(r.status, 404, "{}", r.text());
    assert!(r.text().contains("files.store"), "{}", r.text());
    // On A it goes on.
    let r = patch(a.addr, &token, &id, 0, b"0123456789").await;
    assert_eq!(r.status, 204, "{}", r.text());
}
