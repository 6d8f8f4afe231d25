//! Files through the client library's transfer module against a real
//! server: round trips with equal SHA-256, resuming an interrupted upload
//! and a partial download, transfers run as tasks, resume state kept in
//! the config directory when the file's folder is read-only, and an
//! upload discarded (removed on the server too).

use chatus_client::Event;
use chatus_client::protocol::{Body, FileId};
use chatus_client::transfer::{self, Endpoint, Progress};

use crate::files::{account, content, http, lobby, sha};
use crate::util::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_goes_round_trip_with_the_same_sha256_and_is_stored_once() {
    // One node where the suite spreads tests over several: it reads one node's metrics.
    let server = TestServer::start_one_node(|_| {}).await;
    let (alice, _, alice_token) = account(server.url(), "alice").await;
    let (bob, mut bob_events, bob_token) = account(server.url(), "bob").await;
    let dir = tempfile::tempdir().unwrap();
    let data = content(3 * 1024 * 1024 + 17, 1);
    let src = dir.path().join("report.bin");
    std::fs::write(&src, &data).unwrap();

    let to = Endpoint {
        server: server.url(),
        token: alice_token,
        trust: Default::default(),
    };
    let mut seen = Vec::new();
    let up = transfer::upload(&to, &src, &mut |p: Progress| seen.push(p))
        .await
        .unwrap();
    assert_eq!(up.sha256.as_str(), sha(&data));
    assert_eq!(seen.last().unwrap().done, data.len() as u64);
    assert!(up.state_file.exists(), "resume state kept until the send");
    let sent = alice
        .send_file_with_id(
            lobby(),
            Body::parse("report.bin").unwrap(),
            Some(up.id.clone()),
            up.client_id.clone(),
        )
        .await
        .unwrap();
    up.forget().unwrap();
    assert!(!up.state_file.exists());

    let m = next_matching(&mut bob_events, |e| match e {
        Event::Message { message, .. } if message.file.is_some() => Some(message),
        _ => None,
    })
    .await;
    assert_eq!(m.seq, sent.seq);
    let info = m.file.unwrap();
    assert_eq!(info.id, up.id);
    assert_eq!(info.name.as_str(), "report.bin");
    assert_eq!(info.size, data.len() as u64);
    assert_eq!(info.sha256.as_str(), sha(&data));

    // History and list_files carry the same file.
    let page = bob
        .history(
            lobby(),
            chatus_client::protocol::history::Page::Latest,
            None,
        )
        .await
        .unwrap();
    assert_eq!(page.messages.last().unwrap().file.as_ref(), Some(&info));
    let listed = bob.list_files(lobby(), None).await.unwrap();
    assert_eq!(listed.files.len(), 1);
    assert_eq!(listed.files[0].file, info);

    let out = tempfile::tempdir().unwrap();
    let from = Endpoint {
        server: server.url(),
        token: bob_token,
        trust: Default::default(),
    };
    let got = transfer::download(&from, &info.id, Some(out.path()), false, &mut |_| {})
        .await
        .unwrap();
    assert_eq!(got.path, out.path().join("report.bin"));
    assert_eq!(std::fs::read(&got.path).unwrap(), data);
    assert_eq!(got.sha256, info.sha256);
    // Never replaced without force.
    let again = transfer::download(&from, &info.id, Some(out.path()), false, &mut |_| {}).await;
    assert!(
        matches!(again, Err(transfer::TransferError::Exists(_))),
        "{again:?}"
    );

    // The same bytes under another name: a second upload, one blob.
    let copy = dir.path().join("copy.bin");
    std::fs::write(&copy, &data).unwrap();
    let up2 = transfer::upload(&to, &copy, &mut |_| {}).await.unwrap();
    assert_ne!(up2.id, up.id);
    let blobs = server.stored("blobs");
    assert_eq!(blobs.len(), 1, "{blobs:?}");

    let metrics = http(server.addr, "GET /metrics HTTP/1.1\r\n", b"")
        .await
        .text();
    let n = data.len();
    for line in [
        "chatus_uploads_created_total 2".to_owned(),
        "chatus_uploads_finished_total 2".to_owned(),
        format!("chatus_upload_bytes_total {}", 2 * n),
        format!("chatus_download_bytes_total {n}"),
    ] {
        assert!(
            metrics.lines().any(|l| l == line),
            "no {line:?} in {metrics}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_resumes_an_interrupted_upload_and_a_partial_download() {
    let server = TestServer::start().await;
    let (_c, _e, token) = account(server.url(), "alice").await;
    let to = Endpoint {
        server: server.url(),
        token,
        trust: Default::default(),
    };
    let dir = tempfile::tempdir().unwrap();
    let data = content(2 * transfer::CHUNK + 3, 7);
    let src = dir.path().join("big.bin");
    std::fs::write(&src, &data).unwrap();

    // The program stops once the first chunk is stored.
    let (tx, rx) = tokio::sync::oneshot::channel();
    let mut tx = Some(tx);
    let mut first_run = |p: Progress| {
        if p.done >= transfer::CHUNK as u64
            && let Some(tx) = tx.take()
        {
            let _ = tx.send(());
        }
    };
    tokio::select! {
        r = transfer::upload(&to, &src, &mut first_run) => panic!("not interrupted: {r:?}"),
        _ = rx => {}
    }
    let state: transfer::UploadState =
        serde_json::from_str(&std::fs::read_to_string(transfer::upload::state_file(&src)).unwrap())
            .unwrap();
    // Run again: it goes on from the server's offset, not from zero.
    let mut seen = Vec::new();
    let up = transfer::upload(&to, &src, &mut |p| seen.push(p))
        .await
        .unwrap();
    assert_eq!(Some(&up.id), state.id.as_ref());
    assert_eq!(up.client_id, state.client_id);
    let resumed_at = seen[0].done;
    assert!(
        resumed_at >= transfer::CHUNK as u64 && resumed_at < data.len() as u64,
        "{seen:?}"
    );
    assert_eq!(up.sha256.as_str(), sha(&data));

    // A download cut in the middle left a .part: it goes on from there.
    let out = tempfile::tempdir().unwrap();
    let dest = out.path().join("copy.bin");
    let part = transfer::download::part_file(&dest);
    let half = data.len() / 2;
    std::fs::write(&part, &data[..half]).unwrap();
    let mut seen = Vec::new();
    let got = transfer::download(&to, &up.id, Some(&dest), false, &mut |p| seen.push(p))
        .await
        .unwrap();
    assert_eq!(seen[0].done, half as u64);
    assert_eq!(std::fs::read(&got.path).unwrap(), data);
    assert!(!part.exists());

    // A damaged .part is caught by the SHA-256, never given the name, and
    // dropped so that the next run starts clean.
    let dest2 = out.path().join("copy2.bin");
    let part2 = transfer::download::part_file(&dest2);
    std::fs::write(&part2, vec![0u8; half]).unwrap();
    let err = transfer::download(&to, &up.id, Some(&dest2), false, &mut |_| {})
        .await
        .unwrap_err();
    assert!(
        matches!(err, transfer::TransferError::Mismatch { .. }),
        "{err:?}"
    );
    assert!(!dest2.exists() && !part2.exists());
    transfer::download(&to, &up.id, Some(&dest2), false, &mut |_| {})
        .await
        .unwrap();
    assert_eq!(std::fs::read(&dest2).unwrap(), data);

    // The file changes before its message was sent: a new upload, and the
    // old one is removed from the server.
    std::fs::write(&src, b"a different file").unwrap();
    let again = transfer::upload(&to, &src, &mut |_| {}).await.unwrap();
    assert_ne!(again.id, up.id);
    let old = http(
        server.addr,
        &format!(
            "HEAD /uploads/{} HTTP/1.1\r\nTus-Resumable: 1.0.0\r\nAuthorization: Bearer {}\r\n",
            up.id,
            to.token.expose()
        ),
        b"",
    )
    .await;
    assert_eq!(old.status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transfer_task_reports_progress_then_its_result() {
    let server = TestServer::start().await;
    let (_c, _e, token) = account(server.url(), "alice").await;
    let to = Endpoint {
        server: server.url(),
        token,
        trust: Default::default(),
    };
    let dir = tempfile::tempdir().unwrap();
    let data = content(transfer::CHUNK + 10, 8);
    let src = dir.path().join("t.bin");
    std::fs::write(&src, &data).unwrap();
    let (_handle, mut updates) = transfer::spawn(to.clone(), transfer::Action::Upload(src));
    let mut progress = Vec::new();
    let up = loop {
        match tokio::time::timeout(WAIT, updates.recv()).await.unwrap() {
            Some(transfer::Update::Progress(p)) => progress.push(p.done),
            Some(transfer::Update::Uploaded(up)) => break up,
            other => panic!("{other:?}"),
        }
    };
    assert_eq!(progress.first(), Some(&0));
    assert_eq!(progress.last(), Some(&(data.len() as u64)));
    assert!(
        updates.recv().await.is_none(),
        "the channel closes at the end"
    );
    let missing = transfer::Action::Download {
        id: FileId::from_bytes([3; 16]),
        dest: Some(dir.path().to_owned()),
        force: false,
    };
    let (_handle, mut updates) = transfer::spawn(to.clone(), missing);
    match updates.recv().await {
        Some(transfer::Update::Failed(transfer::TransferError::NotFound(_))) => {}
        other => panic!("{other:?}"),
    }
    let (_handle, mut updates) = transfer::spawn(
        to,
        transfer::Action::Download {
            id: up.id,
            dest: Some(dir.path().join("back.bin")),
            force: false,
        },
    );
    loop {
        match updates.recv().await {
            Some(transfer::Update::Progress(_)) => {}
            Some(transfer::Update::Downloaded(d)) => {
                assert_eq!(std::fs::read(d.path).unwrap(), data);
                break;
            }
            other => panic!("{other:?}"),
        }
    }
}

async fn upload_status(
    server: &TestServer,
    token: &chatus_client::protocol::Token,
    id: &FileId,
) -> u16 {
    http(
        server.addr,
        &format!(
            "HEAD /uploads/{id} HTTP/1.1\r\nTus-Resumable: 1.0.0\r\nAuthorization: Bearer {}\r\n",
            token.expose()
        ),
        b"",
    )
    .await
    .status
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resume_state_falls_back_to_the_config_directory_when_the_folder_is_read_only() {
    use std::os::unix::fs::PermissionsExt as _;
    let server = TestServer::start().await;
    let (_c, _e, token) = account(server.url(), "alice").await;
    let to = Endpoint {
        server: server.url(),
        token,
        trust: Default::default(),
    };
    let dir = tempfile::tempdir().unwrap();
    let config = tempfile::tempdir().unwrap();
    let state_dir = config.path().join("uploads");
    let data = content(transfer::CHUNK + 99, 4);
    let src = dir.path().join("f.bin");
    std::fs::write(&src, &data).unwrap();
    // Read-only for a normal user; a directory where the state's temporary
    // file would go stops root as well.
    std::fs::create_dir(dir.path().join(".f.bin.chatus-upload.tmp")).unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o555)).unwrap();

    let up = transfer::upload::upload_with(&to, &src, Some(&state_dir), &mut |_| {})
        .await
        .unwrap();
    assert_eq!(up.sha256.as_str(), sha(&data));
    assert!(up.state_file.starts_with(&state_dir), "{:?}", up.state_file);
    assert!(up.state_file.exists());
    assert!(!transfer::upload::state_file(&src).exists());
    // Run again (as after an interruption): the state is found there and
    // the same upload goes on, with the same message id.
    let again = transfer::upload::upload_with(&to, &src, Some(&state_dir), &mut |_| {})
        .await
        .unwrap();
    assert_eq!((&again.id, &again.client_id), (&up.id, &up.client_id));
    again.forget().unwrap();
    assert!(!up.state_file.exists());
    // Without a fallback, the failure to write beside the file is said.
    let err = transfer::upload::upload_with(&to, &src, None, &mut |_| {})
        .await
        .unwrap_err();
    assert!(matches!(err, transfer::TransferError::Io { .. }), "{err:?}");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_discarded_upload_is_removed_on_the_server_and_forgotten() {
    let server = TestServer::start().await;
    let (_c, _e, token) = account(server.url(), "alice").await;
    let to = Endpoint {
        server: server.url(),
        token: token.clone(),
        trust: Default::default(),
    };
    let dir = tempfile::tempdir().unwrap();
    let data = content(3 * transfer::CHUNK, 6);
    let src = dir.path().join("big.bin");
    std::fs::write(&src, &data).unwrap();
    let state = transfer::upload::state_file(&src);
    let (handle, mut updates) = transfer::spawn(to.clone(), transfer::Action::Upload(src.clone()));
    // Once some bytes are on the server, discard it.
    loop {
        match tokio::time::timeout(WAIT, updates.recv()).await.unwrap() {
            Some(transfer::Update::Progress(p)) if p.done > 0 => break,
            Some(transfer::Update::Progress(_)) => {}
            other => panic!("{other:?}"),
        }
    }
    let saved: transfer::UploadState =
        serde_json::from_str(&std::fs::read_to_string(&state).unwrap()).unwrap();
    let id = saved.id.unwrap();
    assert_eq!(upload_status(&server, &token, &id).await, 200);
    assert!(handle.discard().await.unwrap());
    assert!(!state.exists(), "the resume state is forgotten");
    assert_eq!(upload_status(&server, &token, &id).await, 404);
    // Nothing left to discard; the next upload starts afresh.
    assert!(!transfer::upload::discard(&to, &src, None).await.unwrap());
    let fresh = transfer::upload(&to, &src, &mut |_| {}).await.unwrap();
    assert_ne!(fresh.id, id);
}
