//! Files in end-to-end encrypted conversations (issue 12, "Encrypted
//! files"), through the client library against a real server: the file is
//! encrypted on the sender's device before upload, its real name, type
//! and key travel only inside the Megolm ciphertext, the receiver checks
//! the ciphertext's SHA-256 before decrypting, and the server's blobs and
//! database hold neither the plaintext nor the name.

use std::path::{Path, PathBuf};

use chatus_client::protocol::{ErrorCode, MediaType, Token};
use chatus_client::transfer::{self, Endpoint, TransferError};
use chatus_client::{Client, Credentials, Events, Resume, Trust};

use crate::e2ee::{body, contains, database_bytes, next_in, peer, raw_history};
use crate::util::*;

/// A client of `name` with its device in `dir`, and its session token.
async fn connect(server: &TestServer, name: &str, dir: &Path) -> (Client, Events, Endpoint) {
    let mut config = client_config(
        server.url(),
        Credentials::Register {
            username: user(name),
            password: password(name),
        },
    );
    config.e2ee_dir = Some(dir.to_owned());
    config.resume = Resume::FromNow;
    let (c, e, connected) = Client::connect(config).await.unwrap();
    let token: Token = connected.token.unwrap();
    let to = Endpoint {
        server: server.url(),
        token,
        trust: Trust::default(),
    };
    (c, e, to)
}

/// Every stored blob of the server's file store.
fn blobs(server: &TestServer) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let root = server.dir.path().join("files").join("blobs");
    for d in std::fs::read_dir(&root).unwrap() {
        for f in std::fs::read_dir(d.unwrap().path()).unwrap() {
            found.push(f.unwrap().path());
        }
    }
    found
}

const SECRET: &str = "TOP SECRET merger plans for the otter company. ";
const NAME: &str = "quarterly-otter-plans.txt";

/// A file of about 300 KB made of `SECRET`, named `NAME`.
fn secret_file(dir: &Path) -> (PathBuf, Vec<u8>) {
    let data = SECRET.repeat(6000).into_bytes();
    let path = dir.join(NAME);
    std::fs::write(&path, &data).unwrap();
    (path, data)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bob_saves_alices_encrypted_file_and_the_server_holds_neither_bytes_nor_name() {
    let server = TestServer::start().await;
    let dirs = [(); 3].map(|()| tempfile::tempdir().unwrap());
    let (alice, mut alice_events, alice_to) = connect(&server, "alice", dirs[0].path()).await;
    let (bob, mut bob_events, bob_to) = connect(&server, "bob", dirs[1].path()).await;
    let (src, data) = secret_file(dirs[2].path());

    // A new direct conversation is encrypted: the file goes encrypted.
    assert!(alice.encrypts(&peer("bob")).await.unwrap());
    let up = transfer::upload_encrypted_with(&alice_to, &src, None, &mut |_| {})
        .await
        .unwrap();
    assert_eq!(up.name.as_str(), NAME);
    let sent = alice.share_upload(peer("bob"), None, &up).await.unwrap();
    up.forget().unwrap();

    // Bob's message shows the real file; his device holds its key.
    let got = next_in(&mut bob_events, &peer("alice")).await.unwrap();
    assert_eq!(got.seq, sent.seq);
    assert_eq!(got.body.as_ref().unwrap().as_str(), NAME);
    let info = got.file.clone().unwrap();
    assert_eq!(info.name.as_str(), NAME);
    assert_eq!(info.media_type.as_str(), "text/plain");
    assert_eq!(info.size, data.len() as u64);
    assert!(!info.is_encrypted());
    // Alice's own copy opens too.
    let echo = next_in(&mut alice_events, &peer("bob")).await.unwrap();
    assert_eq!(echo.file.unwrap().name.as_str(), NAME);

    let file = bob.encrypted_file(&info.id).unwrap();
    let out = tempfile::tempdir().unwrap();
    let saved = transfer::download_encrypted(&bob_to, &file, Some(out.path()), false, &mut |_| {})
        .await
        .unwrap();
    assert_eq!(saved.path, out.path().join(NAME));
    assert_eq!(std::fs::read(&saved.path).unwrap(), data);
    let left: Vec<_> = std::fs::read_dir(out.path()).unwrap().collect();
    assert_eq!(left.len(), 1, "no .part or .decrypting is left behind");

    // What the server has: one blob of ciphertext, a neutral name and
    // type, and a message whose body is a ciphertext.
    let stored = blobs(&server);
    assert_eq!(stored.len(), 1, "{stored:?}");
    let blob = std::fs::read(&stored[0]).unwrap();
    assert_eq!(blob.len(), data.len());
    assert_ne!(blob, data);
    assert!(!contains(&blob, "TOP SECRET"), "the blob holds plaintext");
    let db = database_bytes(&server);
    for plain in ["TOP SECRET", "otter", NAME] {
        assert!(!contains(&db, plain), "{plain:?} is in the database");
    }
    let raw = raw_history(&bob, peer("alice")).await;
    let as_stored = raw[0].file.as_ref().unwrap();
    assert!(as_stored.is_encrypted(), "{as_stored:?}");
    assert_eq!(as_stored.name.as_str(), "encrypted");
    assert!(!raw[0].body.as_ref().unwrap().as_str().contains("otter"));

    // The ciphertext is never saved as if it were the file, and the
    // server makes no thumbnail of it.
    let refused = transfer::download(&bob_to, &info.id, Some(out.path()), true, &mut |_| {})
        .await
        .unwrap_err();
    assert!(matches!(refused, TransferError::Encrypted(_)), "{refused}");
    assert!(
        chatus_client::thumbnail::thumbnail(&bob_to, &info.id)
            .await
            .unwrap()
            .is_none()
    );

    // A fresh process of bob's finds the file through its message.
    bob.quit().await;
    let mut config = client_config(
        server.url(),
        Credentials::Login {
            username: user("bob"),
            password: password("bob"),
        },
    );
    config.e2ee_dir = Some(dirs[1].path().to_owned());
    let (bob, _bob_events, _) = Client::connect(config).await.unwrap();
    assert!(bob.encrypted_file(&info.id).is_none());
    let found = bob.find_encrypted_file(&info.id, None).await.unwrap();
    assert_eq!(found, file);
}

/// A blob altered on the server must never be decrypted and saved: the
/// hash the sender put in the message catches it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tampered_stored_blob_is_refused_and_nothing_is_saved() {
    let server = TestServer::start().await;
    let dirs = [(); 3].map(|()| tempfile::tempdir().unwrap());
    let (alice, _alice_events, alice_to) = connect(&server, "alice", dirs[0].path()).await;
    let (bob, mut bob_events, bob_to) = connect(&server, "bob", dirs[1].path()).await;
    let (src, _) = secret_file(dirs[2].path());
    let up = transfer::upload_encrypted_with(&alice_to, &src, None, &mut |_| {})
        .await
        .unwrap();
    alice
        .share_upload(peer("bob"), Some(body("the plans")), &up)
        .await
        .unwrap();
    let got = next_in(&mut bob_events, &peer("alice")).await.unwrap();
    assert_eq!(got.body.as_ref().unwrap().as_str(), "the plans");
    let file = bob.encrypted_file(&got.file.unwrap().id).unwrap();

    // Flip one bit in the middle of the stored ciphertext.
    let stored = blobs(&server);
    let mut blob = std::fs::read(&stored[0]).unwrap();
    let mid = blob.len() / 2;
    blob[mid] ^= 1;
    std::fs::write(&stored[0], &blob).unwrap();

    let out = tempfile::tempdir().unwrap();
    let err = transfer::download_encrypted(&bob_to, &file, Some(out.path()), false, &mut |_| {})
        .await
        .unwrap_err();
    assert!(matches!(err, TransferError::Tampered { .. }), "{err}");
    assert!(err.to_string().contains("altered"), "{err}");
    let left: Vec<_> = std::fs::read_dir(out.path()).unwrap().collect();
    assert!(left.is_empty(), "something was saved: {left:?}");
}

/// The server's rule: an encrypted conversation takes only encrypted
/// files, and an encrypted upload never goes into a clear one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clear_files_are_refused_in_encrypted_conversations_and_the_other_way_round() {
    let server = TestServer::start().await;
    let dirs = [(); 3].map(|()| tempfile::tempdir().unwrap());
    let (alice, _alice_events, alice_to) = connect(&server, "alice", dirs[0].path()).await;
    let (_bob, _bob_events, _) = connect(&server, "bob", dirs[1].path()).await;
    alice.send(peer("bob"), body("hello")).await.unwrap();
    let (src, _) = secret_file(dirs[2].path());

    let clear = transfer::upload::upload_with(&alice_to, &src, None, &mut |_| {})
        .await
        .unwrap();
    let err = alice
        .share_upload(peer("bob"), None, &clear)
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::EncryptionRequired), "{err}");
    clear.forget().unwrap();

    let encrypted = transfer::upload_encrypted_with(&alice_to, &src, None, &mut |_| {})
        .await
        .unwrap();
    let lobby = chatus_client::protocol::Conversation::Room(
        chatus_client::protocol::RoomName::parse("lobby").unwrap(),
    );
    let err = alice
        .share_upload(lobby.clone(), None, &encrypted)
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("not end-to-end encrypted"),
        "{err}"
    );
    // Nor does the server take one from a client that tries anyway.
    let err = alice
        .send_file_with_id(
            lobby,
            body("x"),
            Some(encrypted.id.clone()),
            Client::new_client_id(),
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::NotEncrypted), "{err}");
    assert_eq!(MediaType::ENCRYPTED, "application/vnd.chatus.encrypted");
}
