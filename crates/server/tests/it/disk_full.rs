//! A full disk: the server refuses new messages with a typed error (never
//! an acknowledgement), keeps serving reads and live connections, takes
//! messages again once space returns, and loses nothing it acknowledged.
//!
//! The data directory is a small tmpfs mounted for the test, so the full
//! disk is real: SQLite's own writes fail with "database or disk is full".
//! Mounting needs root (CI runs as root). Where it is not permitted the
//! test says so and stops, unless `CHATUS_REQUIRE_MOUNT=1` is set, as
//! `.ci/run` does, which makes that a failure.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};

use crate::util::*;

/// A tmpfs mounted on a temporary directory, unmounted on drop.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    /// Mounts a tmpfs of `size` (as `mount` spells it, e.g. `8m`), or says
    /// why it could not.
    fn mount(size: &str) -> Result<Self, String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let out = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(dir.path())
            .output()
            .map_err(|e| format!("could not run mount: {e}"))?;
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).trim().to_owned());
        }
        Ok(Self { dir })
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        // Lazily, in case a file in it is still open.
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

/// Fills the file system with a ballast file until a write fails.
fn fill(path: &Path) -> PathBuf {
    let ballast = path.join("ballast");
    let mut f = std::fs::File::create(&ballast).unwrap();
    let block = vec![0x5Au8; 64 * 1024];
    let mut small = false;
    loop {
        let chunk = if small { &block[..512] } else { &block[..] };
        match f.write_all(chunk) {
            Ok(()) => {}
            Err(_) if !small => small = true,
            Err(_) => break,
        }
    }
    let _ = f.sync_all();
    ballast
}

/// Sends a 4 KB message whose body starts with its `client_id` to the
/// lobby; the reply.
async fn send(raw: &mut Raw, client_id: &str) -> Value {
    let body = format!("{client_id} {}", "x".repeat(4000));
    raw.call(json!({"type":"send","room":"lobby","body":body,"client_id":client_id}))
        .await
}

/// Sends the messages `ids` without waiting in between, then collects
/// their replies, in the order of `ids`.
async fn send_burst(raw: &mut Raw, ids: &[String]) -> Vec<Value> {
    for (i, id) in ids.iter().enumerate() {
        let body = format!("{id} {}", "x".repeat(4000));
        let req =
            json!({"type":"send","room":"lobby","body":body,"client_id":id,"id":1_000_000 + i});
        raw.send_text(&req.to_string()).await;
    }
    let mut replies: Vec<Option<Value>> = vec![None; ids.len()];
    while replies.iter().any(Option::is_none) {
        let v = raw.recv().await;
        if let Some(i) = v["id"].as_u64().and_then(|id| id.checked_sub(1_000_000)) {
            replies[i as usize] = Some(v);
        }
    }
    replies.into_iter().map(Option::unwrap).collect()
}

/// Checks that the lobby holds exactly the acknowledged messages, each at
/// the `seq` it was acknowledged with.
fn same(history: &BTreeMap<u64, String>, acked: &BTreeMap<String, u64>) {
    let stored: BTreeMap<String, u64> = history
        .iter()
        .map(|(seq, b)| (b.split(' ').next().unwrap().to_owned(), *seq))
        .collect();
    assert_eq!(&stored, acked);
}

/// The whole lobby history, as (seq, body) pairs.
async fn lobby(raw: &mut Raw) -> BTreeMap<u64, String> {
    let mut out = BTreeMap::new();
    let mut after = 0;
    loop {
        let r = raw
            .call(json!({"type":"history","room":"lobby","after":after,"limit":200}))
            .await;
        assert_eq!(r["type"], "history", "{r}");
        for m in r["messages"].as_array().unwrap() {
            let seq = m["seq"].as_u64().unwrap();
            assert_eq!(seq, after + 1, "a gap or repeat in the lobby's seq");
            after = seq;
            out.insert(seq, m["body"].as_str().unwrap().to_owned());
        }
        if r["more"] != json!(true) {
            return out;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_refuses_writes_keeps_reads_and_recovers() {
    let fs = match Tmpfs::mount("8m") {
        Ok(fs) => fs,
        Err(why) if std::env::var_os("CHATUS_REQUIRE_MOUNT").is_none() => {
            eprintln!("SKIPPED: the full-disk test needs to mount a tmpfs: {why}");
            return;
        }
        Err(why) => panic!("cannot mount a tmpfs: {why}"),
    };
    let data = fs.path().join("data");
    let mut server = TestServer::start_at(data.clone()).await;
    let mut alice = Raw::registered(server.addr, "alice").await;
    let mut bob = Raw::registered(server.addr, "bob").await;
    let mut dave = Raw::connect(server.addr).await;
    dave.call(json!({"type":"hello","version":1})).await;
    let r = dave
        .call(json!({"type":"register","username":"dave","password":password("dave").expose()}))
        .await;
    let dave_token = r["token"].as_str().unwrap().to_owned();
    drop(dave);
    let mut acked: BTreeMap<String, u64> = BTreeMap::new();
    for i in 0..10 {
        let r = send(&mut alice, &format!("before-{i}")).await;
        assert_eq!(r["type"], "sent", "{r}");
        acked.insert(format!("before-{i}"), r["seq"].as_u64().unwrap());
    }

    // Fill the disk, then give back a little: bursts of sends then meet
    // the full disk part-way through a group commit.
    let ballast = fill(fs.path());
    let len = std::fs::metadata(&ballast).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&ballast)
        .unwrap()
        .set_len(len.saturating_sub(96 * 1024))
        .unwrap();
    let mut refused = Vec::new();
    let mut burst = 0;
    while refused.len() < 3 {
        burst += 1;
        assert!(burst < 200, "the server never ran out of room");
        let ids: Vec<String> = (0..16).map(|i| format!("full-{burst}-{i}")).collect();
        for (reply, id) in send_burst(&mut alice, &ids).await.into_iter().zip(&ids) {
            match reply["type"].as_str() {
                Some("sent") => {
                    acked.insert(id.clone(), reply["seq"].as_u64().unwrap());
                }
                _ => {
                    assert_eq!(reply["code"], "internal", "{reply}");
                    assert!(
                        reply["message"]
                            .as_str()
                            .unwrap()
                            .contains("could not be stored"),
                        "{reply}"
                    );
                    refused.push(id.clone());
                }
            }
        }
    }

    // Reads and live connections go on: both users read everything
    // acknowledged, a new connection logs in with a token, and presence
    // queries work.
    same(&lobby(&mut bob).await, &acked);
    let r = bob.call(json!({"type":"conversations"})).await;
    assert_eq!(r["type"], "conversations", "{r}");
    let r = alice.call(json!({"type":"who"})).await;
    assert_ne!(r["type"], "error", "{r}");
    // A token login needs no write. A password login (it stores a new
    // session) and a registration may still fit in the log's reused space;
    // if not, they are refused, typed. Either way, what they said holds
    // after the restart below.
    let mut dave = Raw::connect(server.addr).await;
    dave.call(json!({"type":"hello","version":1})).await;
    let r = dave.call(json!({"type":"auth","token":dave_token})).await;
    assert_eq!(r["type"], "authed", "{r}");
    let mut erin = Raw::connect(server.addr).await;
    erin.call(json!({"type":"hello","version":1})).await;
    let login = erin
        .call(json!({"type":"login","username":"dave","password":password("dave").expose()}))
        .await;
    let mut erin = Raw::connect(server.addr).await;
    erin.call(json!({"type":"hello","version":1})).await;
    let register = erin
        .call(json!({"type":"register","username":"erin","password":password("erin").expose()}))
        .await;
    for r in [&login, &register] {
        assert!(r["type"] == "authed" || r["code"] == "internal", "{r}");
    }

    // Space returns: messages are taken again, soon.
    std::fs::remove_file(&ballast).unwrap();
    let mut taken = false;
    for i in 0..100 {
        let id = format!("after-{i}");
        let r = send(&mut alice, &id).await;
        if r["type"] == "sent" {
            acked.insert(id, r["seq"].as_u64().unwrap());
            taken = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(taken, "no message was taken after space returned");
    // What was refused goes through now, stored once.
    for id in &refused {
        let r = send(&mut alice, id).await;
        assert_eq!(r["type"], "sent", "{r}");
        assert_eq!(
            r["duplicate"], false,
            "a refused message had been stored: {r}"
        );
        acked.insert(id.clone(), r["seq"].as_u64().unwrap());
    }

    // Nothing acknowledged was lost, across a restart too.
    server.shutdown().await;
    let server = TestServer::start_at(data).await;
    let mut carol = Raw::registered(server.addr, "carol").await;
    same(&lobby(&mut carol).await, &acked);
    if let Some(token) = login["token"].as_str() {
        let mut dave = Raw::connect(server.addr).await;
        dave.call(json!({"type":"hello","version":1})).await;
        let r = dave.call(json!({"type":"auth","token":token})).await;
        assert_eq!(
            r["type"], "authed",
            "a session acknowledged on the full disk was lost: {r}"
        );
    }
    let mut erin = Raw::connect(server.addr).await;
    erin.call(json!({"type":"hello","version":1})).await;
    let r = erin
        .call(json!({"type":"login","username":"erin","password":password("erin").expose()}))
        .await;
    let expected = if register["type"] == "authed" {
        "authed"
    } else {
        "error"
    };
    assert_eq!(
        r["type"], expected,
        "registration said {register}, login after restart {r}"
    );
    let mut seqs: Vec<u64> = acked.values().copied().collect();
    seqs.sort_unstable();
    assert_eq!(seqs, (1..=acked.len() as u64).collect::<Vec<_>>());
    drop(server);
}
