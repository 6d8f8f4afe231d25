//! Files: tus uploads and HTTP downloads against a real server, through
//! raw HTTP (to cut bodies, corrupt chunks and send bad tokens); the
//! helpers here serve `transfer.rs` too.

use std::net::SocketAddr;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use chatus_client::protocol::{Body, Conversation, ErrorCode, FileId, RoomName, Token, Visibility};
use chatus_client::{Client, Credentials, Error, Events};
use sha2::{Digest as _, Sha256};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

use crate::util::*;

/// A response as the tests look at it.
#[derive(Debug)]
pub(crate) struct Res {
    pub(crate) status: u16,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Vec<u8>,
}

impl Res {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Sends one request (`Connection: close`) and reads the whole response.
pub(crate) async fn http(addr: SocketAddr, head: &str, body: &[u8]) -> Res {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let req = format!("{head}Host: test\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    s.write_all(body).await.unwrap();
    let mut raw = Vec::new();
    tokio::time::timeout(WAIT, s.read_to_end(&mut raw))
        .await
        .expect("timed out reading a response")
        .unwrap();
    parse(&raw)
}

pub(crate) fn parse(raw: &[u8]) -> Res {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut r = httparse::Response::new(&mut headers);
    let n = match r.parse(raw).unwrap() {
        httparse::Status::Complete(n) => n,
        httparse::Status::Partial => panic!("partial response: {:?}", String::from_utf8_lossy(raw)),
    };
    Res {
        status: r.code.unwrap(),
        headers: r
            .headers
            .iter()
            .map(|h| {
                (
                    h.name.to_owned(),
                    String::from_utf8_lossy(h.value).into_owned(),
                )
            })
            .collect(),
        body: raw[n..].to_vec(),
    }
}

pub(crate) const TUS: &str = "Tus-Resumable: 1.0.0\r\n";

pub(crate) fn auth(token: &Token) -> String {
    format!("Authorization: Bearer {}\r\n", token.expose())
}

/// Registers `name`; returns the client, its events and its token.
pub(crate) async fn account(url: chatus_client::ServerUrl, name: &str) -> (Client, Events, Token) {
    let creds = Credentials::Register {
        username: user(name),
        password: password(name),
    };
    let (c, e, connected) = Client::connect(client_config(url, creds)).await.unwrap();
    (c, e, connected.token.unwrap())
}

/// `POST /uploads` for `len` bytes named `name`; returns the id.
pub(crate) async fn create(addr: SocketAddr, token: &Token, len: u64, name: &str) -> FileId {
    let meta = format!(
        "filename {},filetype {}",
        BASE64.encode(name),
        BASE64.encode("application/octet-stream")
    );
    let r = http(
        addr,
        &format!(
            "POST /uploads HTTP/1.1\r\n{TUS}{}Upload-Length: {len}\r\nUpload-Metadata: {meta}\r\nContent-Length: 0\r\n",
            auth(token)
        ),
        b"",
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let loc = r.header("location").unwrap().to_owned();
    FileId::parse(loc.strip_prefix("/uploads/").unwrap()).unwrap()
}

pub(crate) async fn patch(
    addr: SocketAddr,
    token: &Token,
    id: &FileId,
    offset: u64,
    data: &[u8],
) -> Res {
    patch_with(addr, token, id, offset, data, "").await
}

pub(crate) async fn patch_with(
    addr: SocketAddr,
    token: &Token,
    id: &FileId,
    offset: u64,
    data: &[u8],
    extra: &str,
) -> Res {
    http(
        addr,
        &format!(
            "PATCH /uploads/{id} HTTP/1.1\r\n{TUS}{}Content-Type: application/offset+octet-stream\r\nUpload-Offset: {offset}\r\nContent-Length: {}\r\n{extra}",
            auth(token),
            data.len()
        ),
        data,
    )
    .await
}

pub(crate) async fn head_offset(addr: SocketAddr, token: &Token, id: &FileId) -> u64 {
    let r = http(
        addr,
        &format!("HEAD /uploads/{id} HTTP/1.1\r\n{TUS}{}", auth(token)),
        b"",
    )
    .await;
    assert_eq!(r.status, 200, "{r:?}");
    r.header("upload-offset").unwrap().parse().unwrap()
}

/// Waits until the server holds at least `want` bytes of the upload (a
/// body cut off is written out by the server after the client left).
pub(crate) async fn offset_reaches(addr: SocketAddr, token: &Token, id: &FileId, want: u64) -> u64 {
    tokio::time::timeout(WAIT, async {
        loop {
            let n = head_offset(addr, token, id).await;
            if n >= want {
                return n;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the offset never moved")
}

pub(crate) async fn get(addr: SocketAddr, token: &Token, id: &FileId, extra: &str) -> Res {
    http(
        addr,
        &format!("GET /files/{id} HTTP/1.1\r\n{}{extra}", auth(token)),
        b"",
    )
    .await
}

/// Bytes that differ at every position (a shifted or repeated chunk shows).
pub(crate) fn content(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u32).wrapping_mul(2_654_435_761).to_le_bytes()[1] ^ seed)
        .collect()
}

pub(crate) fn sha(data: &[u8]) -> String {
    Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

pub(crate) fn lobby() -> Conversation {
    Conversation::Room(RoomName::lobby())
}

pub(crate) fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// Regression: on PostgreSQL a request let go of its upload's hold in the
/// store after answering, so a client sending its next chunk at once met
/// its own previous request's hold (`423`, seen once in the suite's replay
/// on PostgreSQL, in the cut-upload test below). Each chunk's answer now
/// comes once the upload is free. (A race: without the fix this fails only
/// now and then, as the release usually wins.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chunks_sent_one_after_another_are_each_taken_at_once() {
    let server = TestServer::start().await;
    let (_c, _e, token) = account(server.url(), "alice").await;
    let data = content(40 * 1000, 3);
    let id = create(server.addr, &token, data.len() as u64, "chunks.bin").await;
    for (i, chunk) in data.chunks(1000).enumerate() {
        let r = patch(server.addr, &token, &id, (i * 1000) as u64, chunk).await;
        assert_eq!(r.status, 204, "chunk {i}: {}", r.text());
    }
    let r = get(server.addr, &token, &id, "").await;
    assert_eq!(sha(&r.body), sha(&data));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_cut_at_several_offsets_resumes_and_ends_identical() {
    let server = TestServer::start().await;
    let (_c, _e, token) = account(server.url(), "alice").await;
    // 64 MiB, cut mid-chunk, on a chunk boundary, one byte apart, and
    // three bytes before the end.
    let data = content(64 * 1024 * 1024 + 5, 2);
    let id = create(server.addr, &token, data.len() as u64, "cut.bin").await;
    let cuts = [
        1,
        300_000,
        300_001,
        16 * 1024 * 1024,
        40_000_000,
        data.len() - 3,
    ];
    let mut offset = 0usize;
    for cut in cuts {
        // Declare the whole rest, send up to `cut`, then drop the connection.
        let mut s = TcpStream::connect(server.addr).await.unwrap();
        let rest = data.len() - offset;
        let head = format!(
            "PATCH /uploads/{id} HTTP/1.1\r\nHost: t\r\n{TUS}{}Content-Type: application/offset+octet-stream\r\nUpload-Offset: {offset}\r\nContent-Length: {rest}\r\n\r\n",
            auth(&token)
        );
        s.write_all(head.as_bytes()).await.unwrap();
        s.write_all(&data[offset..cut]).await.unwrap();
        s.flush().await.unwrap();
        drop(s);
        let held = offset_reaches(server.addr, &token, &id, cut as u64).await;
        assert_eq!(held, cut as u64, "what arrived is kept, no more");
        offset = cut;
        // The cut request may still hold the upload for a moment (`423`);
        // an empty PATCH succeeds once it is released.
        tokio::time::timeout(WAIT, async {
            while patch(server.addr, &token, &id, cut as u64, b"")
                .await
                .status
                == 423
            {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await
        .unwrap();
    }
    let r = patch(server.addr, &token, &id, offset as u64, &data[offset..]).await;
    assert_eq!(r.status, 204, "{}", r.text());
    assert_eq!(
        r.header("upload-offset"),
        Some(data.len().to_string().as_str())
    );
    let r = get(server.addr, &token, &id, "").await;
    assert_eq!(r.status, 200);
    assert_eq!(sha(&r.body), sha(&data));
    assert_eq!(
        r.header("etag"),
        Some(format!("\"{}\"", sha(&data)).as_str())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_resumes_after_a_server_restart() {
    let server = TestServer::start().await;
    let (c, _e, token) = account(server.url(), "alice").await;
    c.quit().await;
    let data = content(1024 * 1024, 3);
    let id = create(server.addr, &token, data.len() as u64, "r.bin").await;
    let half = data.len() / 2;
    assert_eq!(
        patch(server.addr, &token, &id, 0, &data[..half])
            .await
            .status,
        204
    );
    let server = server.restart().await;
    assert_eq!(head_offset(server.addr, &token, &id).await, half as u64);
    let r = patch(server.addr, &token, &id, half as u64, &data[half..]).await;
    assert_eq!(r.status, 204, "{}", r.text());
    let r = get(server.addr, &token, &id, "").await;
    assert_eq!(r.body, data);
    // The running hash was lost with the restart: the partial was read
    // back once to hash it.
    assert_eq!(
        r.header("etag"),
        Some(format!("\"{}\"", sha(&data)).as_str())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_members_and_the_two_people_of_a_dm_may_download() {
    let server = TestServer::start().await;
    let (alice, _, a) = account(server.url(), "alice").await;
    let (_bob, _, b) = account(server.url(), "bob").await;
    let (_carol, _, c) = account(server.url(), "carol").await;
    let data = content(1000, 4);
    let secret = RoomName::parse("secret").unwrap();
    alice
        .create_room(secret.clone(), Visibility::Private)
        .await
        .unwrap();

    let in_room = create(server.addr, &a, 1000, "room.txt").await;
    assert_eq!(patch(server.addr, &a, &in_room, 0, &data).await.status, 204);
    let in_dm = create(server.addr, &a, 1000, "dm.txt").await;
    assert_eq!(patch(server.addr, &a, &in_dm, 0, &data).await.status, 204);

    // Before it is shared, only the uploader sees it.
    assert_eq!(get(server.addr, &a, &in_room, "").await.status, 200);
    assert_eq!(get(server.addr, &b, &in_room, "").await.status, 404);
    alice
        .send_file_with_id(
            Conversation::Room(secret),
            Body::parse("room.txt").unwrap(),
            Some(in_room.clone()),
            Client::new_client_id(),
        )
        .await
        .unwrap();
    alice
        .send_file_with_id(
            Conversation::Peer(user("bob")),
            Body::parse("dm.txt").unwrap(),
            Some(in_dm.clone()),
            Client::new_client_id(),
        )
        .await
        .unwrap();
    assert_eq!(
        get(server.addr, &b, &in_room, "").await.status,
        404,
        "bob is not in secret"
    );
    assert_eq!(get(server.addr, &b, &in_dm, "").await.status, 200);
    assert_eq!(get(server.addr, &c, &in_dm, "").await.status, 404);
    assert_eq!(get(server.addr, &c, &in_room, "").await.status, 404);
    // An id that does not exist looks the same.
    let nothing = FileId::from_bytes([9; 16]);
    assert_eq!(get(server.addr, &c, &nothing, "").await.status, 404);
    // Someone else's upload is 404 for tus too, and cannot be sent.
    let r = http(
        server.addr,
        &format!("HEAD /uploads/{in_dm} HTTP/1.1\r\n{TUS}{}", auth(&c)),
        b"",
    )
    .await;
    assert_eq!(r.status, 404);
    let (carol, _) = login(server.url(), "carol", chatus_client::Resume::FromNow).await;
    let err = carol
        .send_file_with_id(
            lobby(),
            Body::parse("mine").unwrap(),
            Some(in_dm.clone()),
            Client::new_client_id(),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Server {
                code: ErrorCode::UnknownFile,
                ..
            }
        ),
        "{err:?}"
    );
    // An unfinished upload cannot be sent yet.
    let half = create(server.addr, &a, 10, "half").await;
    let err = alice
        .send_file_with_id(
            lobby(),
            Body::parse("half").unwrap(),
            Some(half),
            Client::new_client_id(),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Server {
                code: ErrorCode::UploadIncomplete,
                ..
            }
        ),
        "{err:?}"
    );
    // A shared file stays: termination is refused.
    let r = http(
        server.addr,
        &format!("DELETE /uploads/{in_dm} HTTP/1.1\r\n{TUS}{}", auth(&a)),
        b"",
    )
    .await;
    assert_eq!(r.status, 409);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn size_and_quota_limits_are_413_naming_the_limit_and_the_excess() {
    let server = TestServer::start_with(|c| {
        c.files.max_file_bytes = 1000;
        c.files.quota_bytes = 1500;
        c.files.max_unshared_uploads = 2;
    })
    .await;
    let (_c, _e, token) = account(server.url(), "alice").await;
    let r = http(
        server.addr,
        &format!(
            "POST /uploads HTTP/1.1\r\n{TUS}{}Upload-Length: 1200\r\nContent-Length: 0\r\n",
            auth(&token)
        ),
        b"",
    )
    .await;
    assert_eq!(r.status, 413);
    assert!(
        r.text()
            .contains("files.max_file_bytes = 1000 bytes by 200 bytes"),
        "{}",
        r.text()
    );
    let first = create(server.addr, &token, 1000, "a").await;
    let r = http(
        server.addr,
        &format!(
            "POST /uploads HTTP/1.1\r\n{TUS}{}Upload-Length: 800\r\nContent-Length: 0\r\n",
            auth(&token)
        ),
        b"",
    )
    .await;
    assert_eq!(r.status, 413);
    assert!(
        r.text()
            .contains("files.quota_bytes = 1500 bytes by 300 bytes"),
        "{}",
        r.text()
    );
    // A body longer than the upload: 413, nothing kept.
    let r = patch(server.addr, &token, &first, 0, &[7u8; 1001]).await;
    assert_eq!(r.status, 413, "{}", r.text());
    assert_eq!(head_offset(server.addr, &token, &first).await, 0);
    // Terminating the upload gives the quota back.
    let r = http(
        server.addr,
        &format!("DELETE /uploads/{first} HTTP/1.1\r\n{TUS}{}", auth(&token)),
        b"",
    )
    .await;
    assert_eq!(r.status, 204);
    create(server.addr, &token, 800, "b").await;
    create(server.addr, &token, 100, "c").await;
    // Two uploads no message shares yet: a third must wait.
    let r = http(
        server.addr,
        &format!(
            "POST /uploads HTTP/1.1\r\n{TUS}{}Upload-Length: 1\r\nContent-Length: 0\r\n",
            auth(&token)
        ),
        b"",
    )
    .await;
    assert_eq!(r.status, 429);
    assert!(
        r.text().contains("files.max_unshared_uploads = 2"),
        "{}",
        r.text()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupted_chunk_is_460_and_discarded_then_the_upload_completes() {
    let server = TestServer::start().await;
    let (_c, _e, token) = account(server.url(), "alice").await;
    let data = content(5000, 5);
    let id = create(server.addr, &token, 5000, "c.bin").await;
    let good = BASE64.encode(Sha256::digest(&data[..2000]));
    let mut damaged = data[..2000].to_vec();
    damaged[1234] ^= 0x40;
    let r = patch_with(
        server.addr,
        &token,
        &id,
        0,
        &damaged,
        &format!("Upload-Checksum: sha256 {good}\r\n"),
    )
    .await;
    assert_eq!(r.status, 460, "{}", r.text());
    assert_eq!(head_offset(server.addr, &token, &id).await, 0);
    let r = patch_with(
        server.addr,
        &token,
        &id,
        0,
        &data[..2000],
        &format!("Upload-Checksum: sha256 {good}\r\n"),
    )
    .await;
    assert_eq!(r.status, 204, "{}", r.text());
    // A wrong offset is 409 with the right one.
    let r = patch(server.addr, &token, &id, 1000, &data[1000..]).await;
    assert_eq!(r.status, 409);
    assert_eq!(r.header("upload-offset"), Some("2000"));
    let r = patch_with(
        server.addr,
        &token,
        &id,
        2000,
        &data[2000..],
        "Upload-Checksum: md5 AAAA\r\n",
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(
        patch(server.addr, &token, &id, 2000, &data[2000..])
            .await
            .status,
        204
    );
    assert_eq!(get(server.addr, &token, &id, "").await.body, data);
    // An empty PATCH at the end of a finished upload changes nothing.
    let r = patch(server.addr, &token, &id, 5000, b"").await;
    assert_eq!(r.status, 204, "{}", r.text());
    assert_eq!(r.header("upload-offset"), Some("5000"));
    assert_eq!(head_offset(server.addr, &token, &id).await, 5000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_and_tus_versions_are_checked() {
    let server = TestServer::start().await;
    let (_c, _e, token) = account(server.url(), "alice").await;
    let id = create(server.addr, &token, 10, "t").await;
    let bad = "Authorization: Bearer 0123456789abcdef0123456789abcdef\r\n";
    for head in [
        format!("POST /uploads HTTP/1.1\r\n{TUS}{bad}Upload-Length: 1\r\n"),
        format!("HEAD /uploads/{id} HTTP/1.1\r\n{TUS}{bad}"),
        format!("PATCH /uploads/{id} HTTP/1.1\r\n{TUS}Content-Length: 0\r\n"),
        format!("GET /files/{id} HTTP/1.1\r\n{bad}"),
        format!("GET /files/{id} HTTP/1.1\r\nAuthorization: Basic YTpi\r\n"),
    ] {
        let r = http(server.addr, &head, b"").await;
        assert_eq!(r.status, 401, "{head}");
        assert!(r.header("www-authenticate").unwrap().starts_with("Bearer"));
    }
    let r = http(
        server.addr,
        &format!("HEAD /uploads/{id} HTTP/1.1\r\n{}", auth(&token)),
        b"",
    )
    .await;
    assert_eq!(r.status, 412);
    assert_eq!(r.header("tus-version"), Some("1.0.0"));
    let r = http(server.addr, "OPTIONS /uploads HTTP/1.1\r\n", b"").await;
    assert_eq!(r.status, 204);
    assert_eq!(
        r.header("tus-extension"),
        Some("creation,creation-with-upload,termination,checksum")
    );
    assert_eq!(r.header("tus-checksum-algorithm"), Some("sha256"));
    assert_eq!(
        r.header("tus-max-size"),
        Some((4u64 << 30).to_string().as_str())
    );
    // The chat goes on meanwhile.
    let (alice, _) = login(server.url(), "alice", chatus_client::Resume::FromNow).await;
    alice
        .send(lobby(), Body::parse("still here").unwrap())
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traversal_names_are_stored_and_served_safely() {
    let server = TestServer::start().await;
    let (_c, _e, token) = account(server.url(), "alice").await;
    let meta = format!("filename {}", BASE64.encode("../../evil\0\r\nname.sh"));
    let r = http(
        server.addr,
        &format!(
            "POST /uploads HTTP/1.1\r\n{TUS}{}Upload-Length: 3\r\nUpload-Metadata: {meta}\r\nContent-Type: application/offset+octet-stream\r\nContent-Length: 3\r\n",
            auth(&token)
        ),
        b"abc",
    )
    .await;
    assert_eq!(r.status, 201, "creation-with-upload: {}", r.text());
    assert_eq!(r.header("upload-offset"), Some("3"));
    let id = r
        .header("location")
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_owned();
    let id = FileId::parse(id).unwrap();
    let r = get(server.addr, &token, &id, "").await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("content-disposition"),
        Some(
            "attachment; filename=\".._.._evil___name.sh\"; filename*=UTF-8''.._.._evil___name.sh"
        )
    );
    assert_eq!(r.header("cache-control"), Some("private"));
    assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(r.header("content-type"), Some("application/octet-stream"));
    // Nothing was written outside the file store.
    let stray: Vec<_> = std::fs::read_dir(server.data.parent().unwrap())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains("evil"))
        .collect();
    assert!(stray.is_empty(), "{stray:?}");
    assert!(
        walk(&server.data)
            .iter()
            .all(|p| !p.to_string_lossy().contains("evil"))
    );
    // A malformed id is simply unknown.
    let r = http(
        server.addr,
        &format!(
            "GET /files/..%2F..%2Fchatus.db HTTP/1.1\r\n{}",
            auth(&token)
        ),
        b"",
    )
    .await;
    assert_eq!(r.status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_ranges_are_206_and_past_the_end_416() {
    let server = TestServer::start().await;
    let (_c, _e, token) = account(server.url(), "alice").await;
    let data = content(1000, 6);
    let id = create(server.addr, &token, 1000, "r.bin").await;
    assert_eq!(patch(server.addr, &token, &id, 0, &data).await.status, 204);
    let r = get(server.addr, &token, &id, "Range: bytes=100-199\r\n").await;
    assert_eq!(r.status, 206);
    assert_eq!(r.header("content-range"), Some("bytes 100-199/1000"));
    assert_eq!(r.body, &data[100..200]);
    let r = get(server.addr, &token, &id, "Range: bytes=-10\r\n").await;
    assert_eq!(r.status, 206);
    assert_eq!(r.body, &data[990..]);
    let r = get(server.addr, &token, &id, "Range: bytes=1000-\r\n").await;
    assert_eq!(r.status, 416);
    assert_eq!(r.header("content-range"), Some("bytes */1000"));
    let r = get(server.addr, &token, &id, "Range: bytes=0-1,5-6\r\n").await;
    assert_eq!(r.status, 200, "several ranges: the whole file");
    assert_eq!(r.body, data);
    let etag = r.header("etag").unwrap().to_owned();
    let r = get(
        server.addr,
        &token,
        &id,
        &format!("If-None-Match: {etag}\r\n"),
    )
    .await;
    assert_eq!(r.status, 304);
    let r = http(
        server.addr,
        &format!("HEAD /files/{id} HTTP/1.1\r\n{}", auth(&token)),
        b"",
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-length"), Some("1000"));
    assert!(r.body.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trickling_body_is_cut_off_and_uploads_per_user_are_bounded() {
    let server = TestServer::start_with(|c| {
        c.files.read_timeout_secs = 2;
        c.files.max_uploads_per_user = 1;
    })
    .await;
    let (_c, _e, token) = account(server.url(), "alice").await;
    // What the server gathers before one write: 256 KiB on disk, a part
    // of 8 MiB in S3.
    let buffered: usize = if on_s3() { 8 << 20 } else { 256 * 1024 };
    let id = create(server.addr, &token, 2 * buffered as u64, "slow").await;
    let other = create(server.addr, &token, 100, "other").await;
    let s = TcpStream::connect(server.addr).await.unwrap();
    let (mut read, mut write) = s.into_split();
    let head = format!(
        "PATCH /uploads/{id} HTTP/1.1\r\nHost: t\r\n{TUS}{}Content-Type: application/offset+octet-stream\r\nUpload-Offset: 0\r\nContent-Length: {}\r\n\r\n",
        auth(&token),
        2 * buffered
    );
    write.write_all(head.as_bytes()).await.unwrap();
    // More than the server buffers, so that it writes (and HEAD shows)
    // part of it: the request is under way and holds the user's slot.
    let first = buffered + 1;
    write.write_all(&vec![1u8; first]).await.unwrap();
    // A byte every 100 ms (well within the read timeout) until told to
    // stop; returns how many it sent.
    let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
    let trickle = tokio::spawn(async move {
        let mut sent = first as u64;
        loop {
            write.write_all(&[1u8]).await.unwrap();
            sent += 1;
            tokio::select! {
                _ = &mut stopped => return (sent, write),
                () = tokio::time::sleep(Duration::from_millis(100)) => {}
            }
        }
    });
    // While that body trickles, the user's one upload slot is taken.
    offset_reaches(server.addr, &token, &id, buffered as u64).await;
    let r = patch(server.addr, &token, &other, 0, &[2u8; 100]).await;
    assert_eq!(r.status, 429, "{}", r.text());
    stop.send(()).unwrap();
    let (sent, _write) = trickle.await.unwrap();
    // No more bytes: the server ends the request and keeps what came.
    let mut raw = Vec::new();
    tokio::time::timeout(WAIT, read.read_to_end(&mut raw))
        .await
        .unwrap()
        .unwrap();
    let r = parse(&raw);
    assert_eq!(r.status, 408, "{}", r.text());
    assert_eq!(r.header("upload-offset"), Some(sent.to_string().as_str()));
    assert_eq!(
        patch(server.addr, &token, &other, 0, &[2u8; 100])
            .await
            .status,
        204
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abandoned_uploads_are_swept_and_shared_files_stay() {
    let server = TestServer::start().await;
    let (alice, _e, token) = account(server.url(), "alice").await;
    let abandoned = create(server.addr, &token, 100, "gone").await;
    let r = patch(server.addr, &token, &abandoned, 0, &[1u8; 40]).await;
    assert_eq!(r.status, 204);
    let unsent = create(server.addr, &token, 3, "unsent").await;
    assert_eq!(
        patch(server.addr, &token, &unsent, 0, b"xyz").await.status,
        204
    );
    let shared = create(server.addr, &token, 3, "kept").await;
    assert_eq!(
        patch(server.addr, &token, &shared, 0, b"abc").await.status,
        204
    );
    alice
        .send_file_with_id(
            lobby(),
            Body::parse("kept").unwrap(),
            Some(shared.clone()),
            Client::new_client_id(),
        )
        .await
        .unwrap();
    let now = chatus_server::service::accounts::now();
    assert_eq!(server.state.sweep_uploads(now).await.unwrap(), 0, "not yet");
    let later = chatus_client::protocol::Timestamp(now.0 + 25 * 3_600_000);
    assert_eq!(server.state.sweep_uploads(later).await.unwrap(), 2);
    for gone in [&abandoned, &unsent] {
        let r = http(
            server.addr,
            &format!("HEAD /uploads/{gone} HTTP/1.1\r\n{TUS}{}", auth(&token)),
            b"",
        )
        .await;
        assert_eq!(r.status, 404);
    }
    let partials = server.stored("partial");
    assert!(
        !partials.iter().any(|p| p.starts_with(abandoned.as_str())),
        "{partials:?}"
    );
    // The unsent file's bytes went; the shared one's stayed.
    let blobs = server.stored("blobs");
    assert_eq!(blobs.len(), 1, "{blobs:?}");
    assert!(blobs[0].ends_with(&sha(b"abc")));
    assert_eq!(get(server.addr, &token, &shared, "").await.body, b"abc");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_created_at_once_cannot_pass_the_quota_together() {
    let server = TestServer::start_with(|c| {
        c.files.max_file_bytes = 1000;
        c.files.quota_bytes = 1500;
    })
    .await;
    let (_c, _e, token) = account(server.url(), "alice").await;
    let head = format!(
        "POST /uploads HTTP/1.1\r\n{TUS}{}Upload-Length: 1000\r\nContent-Length: 0\r\n",
        auth(&token)
    );
    let tries: Vec<_> = (0..6)
        .map(|_| {
            let head = head.clone();
            let addr = server.addr;
            tokio::spawn(async move { http(addr, &head, b"").await.status })
        })
        .collect();
    let mut statuses = Vec::new();
    for t in tries {
        statuses.push(t.await.unwrap());
    }
    statuses.sort_unstable();
    assert_eq!(statuses, [201, 413, 413, 413, 413, 413]);
}

/// `files.retention_days`: a shared file is removed by the sweep once its
/// upload finished that many days ago (before, never); its message keeps
/// its `file`, downloads answer 404, and the bytes go.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shared_files_past_the_retention_are_removed_by_the_sweep() {
    let server = TestServer::start_with(|c| c.files.retention_days = 7).await;
    let (alice, _e, token) = account(server.url(), "alice").await;
    let old = create(server.addr, &token, 3, "old").await;
    assert_eq!(
        patch(server.addr, &token, &old, 0, b"old").await.status,
        204
    );
    alice
        .send_file_with_id(
            lobby(),
            Body::parse("old").unwrap(),
            Some(old.clone()),
            Client::new_client_id(),
        )
        .await
        .unwrap();
    let now = chatus_server::service::accounts::now();
    let day = 86_400_000;
    let six_days = chatus_client::protocol::Timestamp(now.0 + 6 * day);
    assert_eq!(server.state.sweep_uploads(six_days).await.unwrap(), 0);
    assert_eq!(get(server.addr, &token, &old, "").await.status, 200);
    let eight_days = chatus_client::protocol::Timestamp(now.0 + 8 * day);
    assert_eq!(server.state.sweep_uploads(eight_days).await.unwrap(), 1);
    assert_eq!(get(server.addr, &token, &old, "").await.status, 404);
    assert!(server.stored("blobs").is_empty());
    // Its message is still there, with its file.
    let page = alice
        .history(
            lobby(),
            chatus_client::protocol::history::Page::Latest,
            None,
        )
        .await
        .unwrap();
    assert!(
        page.messages
            .iter()
            .any(|m| m.file.as_ref().is_some_and(|f| f.id == old)),
        "{page:?}"
    );
    // Swept again: nothing more.
    assert_eq!(server.state.sweep_uploads(eight_days).await.unwrap(), 0);
}
