//! Tests of the PostgreSQL store, each on a fresh database: the shared
//! suite (`store::suite`), then what only several nodes on one database
//! show: numbering and deduplication under concurrent appends from several
//! stores, a join racing a ban and invitations racing the cap, nodes with
//! other settings refused, and outages.

use std::sync::Arc;

use chatus_protocol::history::Page;
use chatus_protocol::{RoomName, Seq, Timestamp, Visibility};

use super::PgStore;
use super::scratch::ScratchDb;
use crate::store::access::{InviteAdded, MemberAdded};
use crate::store::suite::{Kind, add_user, lobby, msg, new_user, upload};
use crate::store::{
    Appended, BodyHold, HoldAdmission, Store, StoreError, UploadAdmission, UploadLimits, UserId,
};

crate::store::suite::store_suite!(Kind::Postgres);

/// A fresh database, or `None` (the test is skipped, and said so).
async fn scratch() -> Option<ScratchDb> {
    ScratchDb::create().await.unwrap()
}

async fn node(db: &ScratchDb) -> Arc<dyn Store> {
    Arc::new(PgStore::open(db.url(), "test=1").await.unwrap())
}

/// Several nodes starting at once on an empty database: one migrates, the
/// others wait for the start-up lock and find it done.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_starting_at_once_migrate_once() {
    let Some(db) = scratch().await else { return };
    let opened = futures_util::future::join_all((0..4).map(|_| node(&db))).await;
    let snap = opened[3].snapshot(Timestamp(0)).await.unwrap();
    assert_eq!(snap.rooms.len(), 1, "one lobby");
}

/// Four nodes claiming one device's keys at once: each one-time key is
/// handed out once (`FOR UPDATE SKIP LOCKED`), the rest get the fallback.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_claims_from_several_nodes_hand_out_each_key_once() {
    let Some(db) = scratch().await else { return };
    let nodes = [
        node(&db).await,
        node(&db).await,
        node(&db).await,
        node(&db).await,
    ];
    let lobby = lobby(&*nodes[0]).await;
    let owner = nodes[0]
        .create_user(new_user("owner", vec![lobby]))
        .await
        .unwrap()
        .id;
    let stored = nodes[0]
        .upload_keys(crate::store::suite::device_keys(owner, "DEV", "c", 10))
        .await
        .unwrap();
    assert_eq!(
        stored,
        crate::store::KeysStored::Stored { one_time_keys: 10 }
    );
    let tasks: Vec<_> = nodes
        .iter()
        .map(|store| {
            let store = store.clone();
            tokio::spawn(async move {
                let mut got = Vec::new();
                for _ in 0..5 {
                    let dev = chatus_protocol::keys::DeviceId::parse("DEV").unwrap();
                    let c = store.claim_keys(vec![(owner, dev)]).await.unwrap();
                    got.push(c[0].clone().unwrap());
                }
                got
            })
        })
        .collect();
    let mut one_time = Vec::new();
    for t in tasks {
        for c in t.await.unwrap() {
            if !c.fallback {
                one_time.push(c.key_json);
            }
        }
    }
    let distinct: std::collections::HashSet<&String> = one_time.iter().collect();
    assert_eq!(distinct.len(), one_time.len(), "a key was handed out twice");
    assert!(one_time.len() <= 10);
    // A claim passes over keys locked by others, so some may be left;
    // none is lost: claimed plus remaining is what was uploaded.
    let last = nodes[0]
        .claim_keys(vec![(
            owner,
            chatus_protocol::keys::DeviceId::parse("DEV").unwrap(),
        )])
        .await
        .unwrap()[0]
        .clone()
        .unwrap();
    let taken = one_time.len() + usize::from(!last.fallback);
    assert_eq!(taken + last.remaining as usize, 10, "no key is lost");
}

/// Three nodes appending to the same conversations at once: every message
/// gets its own seq, the seqs of a conversation run 1..=n with no gap, and
/// history holds exactly what was acknowledged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_appends_from_several_nodes_have_no_gap() {
    let Some(db) = scratch().await else { return };
    let nodes = [node(&db).await, node(&db).await, node(&db).await];
    let lobby = lobby(&*nodes[0]).await;
    let mut users = Vec::new();
    for (i, store) in nodes.iter().enumerate() {
        users.push(add_user(&**store, &format!("u{i}"), vec![lobby]).await);
    }
    let dev = nodes[0]
        .create_room(
            RoomName::parse("dev").unwrap(),
            Visibility::Public,
            users[0],
            Timestamp(1),
        )
        .await
        .unwrap()
        .id;
    let convs = [lobby, dev];
    // Each node sends 30 batches of 7, mixing both rooms, all at once.
    let mut tasks = Vec::new();
    for (n, store) in nodes.iter().enumerate() {
        let store = store.clone();
        let sender = users[n];
        tasks.push(tokio::spawn(async move {
            let mut got = Vec::new();
            for b in 0..30 {
                let batch: Vec<_> = (0..7)
                    .map(|i| {
                        let conv = convs[(b + i) % 2];
                        (conv, msg(conv, sender, &format!("n{n}-{b}-{i}"), "x"))
                    })
                    .collect();
                let out = store
                    .append(batch.iter().map(|(_, m)| m.clone()).collect())
                    .await
                    .unwrap();
                for ((conv, _), o) in batch.iter().zip(out) {
                    match o {
                        Appended::Stored { seq } => got.push((*conv, seq.0)),
                        other => panic!("unexpected {other:?}"),
                    }
                }
            }
            got
        }));
    }
    let mut per_conv: std::collections::HashMap<_, Vec<u64>> = Default::default();
    for t in tasks {
        for (conv, seq) in t.await.unwrap() {
            per_conv.entry(conv).or_default().push(seq);
        }
    }
    let total: usize = per_conv.values().map(Vec::len).sum();
    assert_eq!(total, 3 * 30 * 7);
    for (conv, mut seqs) in per_conv {
        seqs.sort_unstable();
        let n = seqs.len() as u64;
        assert_eq!(seqs, (1..=n).collect::<Vec<_>>(), "conversation {conv:?}");
        let (rows, more) = nodes[1]
            .history(conv, Page::After(Seq(0)), 1000)
            .await
            .unwrap();
        assert!(!more);
        assert_eq!(rows.len() as u64, n);
        let snap = nodes[2].snapshot(Timestamp(0)).await.unwrap();
        let row = snap.rooms.iter().find(|r| r.id == conv).unwrap();
        assert_eq!(row.last_seq, Seq(n));
    }
}

/// The same send arriving at two nodes at once (a client that retried
/// through another node): one stored message and one duplicate with its
/// seq. The same id sent to two conversations at once: one stored, one
/// refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_send_through_two_nodes_at_once_is_stored_once() {
    let Some(db) = scratch().await else { return };
    let (a, b) = (node(&db).await, node(&db).await);
    let lobby = lobby(&*a).await;
    let u = add_user(&*a, "u", vec![lobby]).await;
    let v = add_user(&*a, "v", vec![lobby]).await;
    let dm = a.open_dm(u, v, Timestamp(1)).await.unwrap().id;
    for round in 0..20 {
        let id = format!("same-{round}");
        let (x, y) = tokio::join!(
            a.append(vec![msg(lobby, u, &id, "hello")]),
            b.append(vec![msg(lobby, u, &id, "hello")])
        );
        let mut outcomes = [x.unwrap()[0], y.unwrap()[0]];
        outcomes.sort_by_key(|o| matches!(o, Appended::Duplicate { .. }));
        match outcomes {
            [
                Appended::Stored { seq },
                Appended::Duplicate { seq: dup, .. },
            ] => {
                assert_eq!(seq, dup);
            }
            other => panic!("round {round}: {other:?}"),
        }
        let id = format!("split-{round}");
        let (x, y) = tokio::join!(
            a.append(vec![msg(lobby, u, &id, "here")]),
            b.append(vec![msg(dm, u, &id, "there")])
        );
        let outcomes = [x.unwrap()[0], y.unwrap()[0]];
        let stored = outcomes
            .iter()
            .filter(|o| matches!(o, Appended::Stored { .. }))
            .count();
        let reused = outcomes
            .iter()
            .filter(|o| matches!(o, Appended::ClientIdReused))
            .count();
        assert_eq!((stored, reused), (1, 1), "round {round}: {outcomes:?}");
    }
    // Nothing was numbered twice or skipped.
    let (rows, _) = a.history(lobby, Page::After(Seq(0)), 1000).await.unwrap();
    let seqs: Vec<u64> = rows.iter().map(|r| r.seq.0).collect();
    assert_eq!(seqs, (1..=seqs.len() as u64).collect::<Vec<_>>());
}

/// Regression: the quota was checked on the node, then the upload
/// inserted, so uploads created at once through several nodes all passed
/// the check and together went over the quota.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_created_through_three_nodes_at_once_stay_within_the_quota() {
    let Some(db) = scratch().await else { return };
    let nodes = [node(&db).await, node(&db).await, node(&db).await];
    let lobby = lobby(&*nodes[0]).await;
    let u = add_user(&*nodes[0], "u", vec![lobby]).await;
    // Each declares 100..=900 bytes; 1000 holds few of them.
    let limits = UploadLimits {
        quota_bytes: 1000,
        max_unshared: 100,
    };
    let tries =
        (1..=9u8).map(|n| nodes[usize::from(n) % 3].create_upload(upload(n, u, None), limits));
    let verdicts = futures_util::future::join_all(tries).await;
    assert!(
        verdicts.iter().all(|v| matches!(
            v,
            Ok(UploadAdmission::Created | UploadAdmission::OverQuota(_))
        )),
        "{verdicts:?}"
    );
    let used = nodes[1].upload_usage(u).await.unwrap();
    assert!(used.bytes <= 1000, "{used:?} from {verdicts:?}");
    assert!(used.bytes >= 100, "one at least got in: {verdicts:?}");
}

fn hold(n: u8, owner: UserId, holder: &str, now: u64, max: Option<usize>) -> BodyHold {
    BodyHold {
        id: upload(n, owner, None).id,
        owner,
        holder: holder.into(),
        now: Timestamp(now),
        until: Timestamp(now + 60_000),
        max_per_user: max,
    }
}

/// Regression: bodies under way were held and counted per node, so two
/// nodes wrote one upload at once (a resume through B while the cut
/// request still wrote through A), and a user sent as many bodies to each
/// node as one allows. Holds at once through three nodes: one per upload,
/// and no more per user than allowed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_are_held_once_across_nodes_and_counted_per_user() {
    let Some(db) = scratch().await else { return };
    let nodes = [node(&db).await, node(&db).await, node(&db).await];
    let lobby = lobby(&*nodes[0]).await;
    let u = add_user(&*nodes[0], "u", vec![lobby]).await;
    // Nine requests for one upload, three per node, at once: one holds it.
    let tries = (0..9).map(|i| nodes[i % 3].hold_body(hold(1, u, &format!("h{i}"), 1000, None)));
    let verdicts = futures_util::future::join_all(tries).await;
    let held = verdicts
        .iter()
        .filter(|v| matches!(v, Ok(HoldAdmission::Held)))
        .count();
    assert_eq!(held, 1, "{verdicts:?}");
    assert!(verdicts.iter().all(|v| v.is_ok()), "{verdicts:?}");
    // Eight more uploads at once, at most four bodies at once: three more
    // are held (upload 1 counts), the rest refused as too many.
    let tries = (2..=9u8)
        .map(|n| nodes[usize::from(n) % 3].hold_body(hold(n, u, &format!("x{n}"), 1000, Some(4))));
    let verdicts = futures_util::future::join_all(tries).await;
    let held = verdicts
        .iter()
        .filter(|v| matches!(v, Ok(HoldAdmission::Held)))
        .count();
    assert_eq!(held, 3, "{verdicts:?}");
    // Renewed only by its holder; let go through any node, then held by
    // another.
    let one = upload(1, u, None).id;
    assert!(
        !nodes[2]
            .renew_body(one.clone(), "nobody".into(), Timestamp(9))
            .await
            .unwrap()
    );
    for i in 0..9 {
        nodes[0]
            .release_body(one.clone(), format!("h{i}"))
            .await
            .unwrap();
    }
    let again = nodes[1]
        .hold_body(hold(1, u, "later", 2000, None))
        .await
        .unwrap();
    assert_eq!(again, HoldAdmission::Held);
    assert!(
        nodes[2]
            .renew_body(one.clone(), "later".into(), Timestamp(70_000))
            .await
            .unwrap()
    );
    // A hold past its time (its node died) is taken over, and the old
    // holder can no longer renew it.
    let taken = nodes[0]
        .hold_body(hold(1, u, "successor", 70_001, None))
        .await
        .unwrap();
    assert_eq!(taken, HoldAdmission::Held);
    assert!(
        !nodes[1]
            .renew_body(one, "later".into(), Timestamp(80_000))
            .await
            .unwrap()
    );
}

/// Look-alike names registering at once through two nodes: one gets in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn look_alikes_registering_on_two_nodes_at_once_get_one_name() {
    let Some(db) = scratch().await else { return };
    let (a, b) = (node(&db).await, node(&db).await);
    for round in 0..10 {
        let (x, y) = tokio::join!(
            a.create_user(new_user(&format!("al{round}ce"), vec![])),
            b.create_user(new_user(&format!("aI{round}ce"), vec![]))
        );
        let ok = [x.is_ok(), y.is_ok()];
        assert_eq!(ok.iter().filter(|o| **o).count(), 1, "round {round}");
        assert!(matches!(x.err().or(y.err()), Some(StoreError::Confusable)));
    }
}

/// A node whose settings differ from a live node's is refused, naming the
/// setting; once that node has stopped, it may start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_with_other_settings_is_refused() {
    let Some(db) = scratch().await else { return };
    let first = PgStore::open(db.url(), "max_body_bytes=16384\nschema=1")
        .await
        .unwrap();
    let refused = PgStore::open(db.url(), "max_body_bytes=100\nschema=1").await;
    let Err(StoreError::Refused(why)) = refused else {
        panic!("not refused");
    };
    assert!(
        why.contains("max_body_bytes is 16384 there and 100 here"),
        "{why}"
    );
    PgStore::open(db.url(), "max_body_bytes=16384\nschema=1")
        .await
        .unwrap();
    first.close().await.unwrap();
    // The second node with the first's settings still runs, so the odd
    // one out is refused until that one stops too.
    assert!(
        PgStore::open(db.url(), "max_body_bytes=100\nschema=1")
            .await
            .is_err()
    );
}

/// A database migrated by a newer server is not touched.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_newer_schema_is_refused() {
    let Some(db) = scratch().await else { return };
    let store = PgStore::open(db.url(), "test=1").await.unwrap();
    store
        .write(|c| Box::pin(c.batch("INSERT INTO chatus_schema (version) VALUES (99)")))
        .await
        .unwrap();
    store.close().await.unwrap();
    let Err(StoreError::Corrupt(why)) = PgStore::open(db.url(), "test=1").await else {
        panic!("a newer schema was opened");
    };
    assert!(why.contains("schema version 99"), "{why}");
}

/// Nothing listens: a clear error at once, not a hang.
#[tokio::test]
async fn unreachable_at_start_is_a_clear_error() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let url = format!("postgres://postgres@127.0.0.1:{port}/chatus");
    match PgStore::open(&url, "test=1").await {
        Err(StoreError::Unavailable(why)) => assert!(!why.is_empty()),
        Err(other) => panic!("{other:?}"),
        Ok(_) => panic!("opened"),
    }
    let Err(StoreError::Refused(why)) = PgStore::open("postgres://h:notaport/x", "").await else {
        panic!("a bad URL was accepted");
    };
    assert!(why.contains("not valid"), "{why}");
    let Err(StoreError::Refused(why)) = PgStore::open("postgres://h/x?sslmode=require", "").await
    else {
        panic!("a TLS URL was accepted");
    };
    assert!(why.contains("sslmode=require"), "{why}");
}

/// A TCP relay to PostgreSQL that a test can cut (every connection
/// closed, new ones refused) and restore: an outage without touching the
/// server other tests use.
struct Relay {
    addr: std::net::SocketAddr,
    down: Arc<std::sync::atomic::AtomicBool>,
    links: Arc<std::sync::Mutex<Vec<tokio::task::AbortHandle>>>,
    accept: tokio::task::JoinHandle<()>,
}

impl Relay {
    async fn start(upstream: (String, u16)) -> Relay {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let down = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let links = Arc::new(std::sync::Mutex::new(Vec::new()));
        let (d, l) = (down.clone(), links.clone());
        let accept = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if d.load(std::sync::atomic::Ordering::SeqCst) {
                    continue;
                }
                let upstream = upstream.clone();
                let task = tokio::spawn(async move {
                    if let Ok(mut out) = tokio::net::TcpStream::connect(upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut out).await;
                    }
                });
                l.lock().unwrap().push(task.abort_handle());
            }
        });
        Relay {
            addr,
            down,
            links,
            accept,
        }
    }

    fn cut(&self) {
        self.down.store(true, std::sync::atomic::Ordering::SeqCst);
        for link in self.links.lock().unwrap().drain(..) {
            link.abort();
        }
    }

    fn restore(&self) {
        self.down.store(false, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.cut();
        self.accept.abort();
    }
}

/// PostgreSQL lost while running: calls answer `Unavailable` (not a hang,
/// not a panic), and once it is back the store reconnects by itself and
/// numbering goes on without a gap.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_database_is_unavailable_then_recovers() {
    let Some(db) = scratch().await else { return };
    let config: tokio_postgres::Config = db.url().parse().unwrap();
    let host = match &config.get_hosts()[0] {
        tokio_postgres::config::Host::Tcp(h) => h.clone(),
        #[cfg(unix)]
        tokio_postgres::config::Host::Unix(_) => "127.0.0.1".into(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let relay = Relay::start((host, port)).await;
    let url = format!(
        "postgres://{}@{}/{}",
        config.get_user().unwrap_or("postgres"),
        relay.addr,
        db.name()
    );
    let store = PgStore::open(&url, "test=1").await.unwrap();
    let lobby = lobby(&store).await;
    let u = add_user(&store, "u", vec![lobby]).await;
    store
        .append(vec![msg(lobby, u, "1", "before")])
        .await
        .unwrap();

    relay.cut();
    let write = store.append(vec![msg(lobby, u, "2", "during")]).await;
    assert!(
        matches!(write, Err(StoreError::Unavailable(_))),
        "{write:?}"
    );
    let read = store.history(lobby, Page::Latest, 10).await;
    assert!(matches!(read, Err(StoreError::Unavailable(_))), "{read:?}");
    // Still down: answered at once, again and again.
    for _ in 0..3 {
        let again = store.append(vec![msg(lobby, u, "2", "during")]).await;
        assert!(
            matches!(again, Err(StoreError::Unavailable(_))),
            "{again:?}"
        );
    }

    relay.restore();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    let out = loop {
        match store.append(vec![msg(lobby, u, "2", "during")]).await {
            Ok(out) => break out,
            Err(StoreError::Unavailable(_)) if tokio::time::Instant::now() < deadline => {
                tokio::task::yield_now().await;
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
            Err(e) => panic!("{e:?}"),
        }
    };
    assert_eq!(out, [Appended::Stored { seq: Seq(2) }]);
    let (rows, _) = store.history(lobby, Page::Latest, 10).await.unwrap();
    let bodies: Vec<&str> = rows
        .iter()
        .map(|r| r.body.as_ref().unwrap().as_str())
        .collect();
    assert_eq!(bodies, ["before", "during"]);
}

/// Regression: a join checked the ban and added the member in separate
/// steps, so a ban another node was storing at that moment was passed and
/// the banned user stayed a member. Here another node's ban is caught
/// mid-transaction (its append holds the room's row and has written the
/// ban, not committed yet); the join made meanwhile waits for it and is
/// refused once it commits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_join_racing_a_ban_on_another_node_is_refused() {
    let Some(db) = scratch().await else { return };
    let store = node(&db).await;
    let lobby = lobby(&*store).await;
    let owner = add_user(&*store, "o", vec![lobby]).await;
    let x = add_user(&*store, "x", vec![lobby]).await;
    let room = store
        .create_room(
            RoomName::parse("den").unwrap(),
            Visibility::Public,
            owner,
            Timestamp(1),
        )
        .await
        .unwrap()
        .id;
    let url = db.url();
    let raw = move || async move {
        let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(conn);
        client
    };
    let (ban, watch) = (raw().await, raw().await);
    ban.batch_execute("BEGIN").await.unwrap();
    ban.execute(
        "SELECT last_seq FROM conversations WHERE id = $1 FOR UPDATE",
        &[&room.0],
    )
    .await
    .unwrap();
    ban.execute(
        "INSERT INTO bans (conv_id, user_id, banned_ms) VALUES ($1, $2, 2)",
        &[&room.0, &x.0],
    )
    .await
    .unwrap();
    let join = tokio::spawn({
        let store = store.clone();
        async move { store.add_member(room, x, Timestamp(3)).await }
    });
    // The ban commits only once the join waits for it (a fresh view of the
    // server's activity each time: outside a transaction).
    let waiting = "SELECT count(*) FROM pg_stat_activity
                   WHERE datname = current_database() AND wait_event_type = 'Lock'";
    tokio::time::timeout(std::time::Duration::from_secs(10), async {
        while watch
            .query_one(waiting, &[])
            .await
            .unwrap()
            .get::<_, i64>(0)
            == 0
        {
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("the join never waited for the ban");
    ban.batch_execute("COMMIT").await.unwrap();
    assert_eq!(join.await.unwrap().unwrap(), MemberAdded::Banned);
    let snap = store.snapshot(Timestamp(4)).await.unwrap();
    assert!(!snap.members.contains(&(room, x)), "a banned member");
}

/// Regression: the cap on a user's pending invitations was held in each
/// node's memory, so invitations through several nodes passed it
/// together. Twelve invitations to one user through three nodes at once,
/// with a cap of five: five are stored, the rest refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invitations_through_several_nodes_at_once_keep_the_cap() {
    const CAP: usize = 5;
    let Some(db) = scratch().await else { return };
    let nodes = [node(&db).await, node(&db).await, node(&db).await];
    let a = add_user(&*nodes[0], "a", vec![]).await;
    let b = add_user(&*nodes[0], "b", vec![]).await;
    let mut rooms = Vec::new();
    for i in 0..12 {
        let name = RoomName::parse(format!("r{i}")).unwrap();
        let row = nodes[0]
            .create_room(name, Visibility::Private, a, Timestamp(1))
            .await
            .unwrap();
        rooms.push(row.id);
    }
    let tasks: Vec<_> = rooms
        .iter()
        .enumerate()
        .map(|(i, &room)| {
            let store = nodes[i % nodes.len()].clone();
            tokio::spawn(async move {
                store
                    .add_invite(room, b, a, Timestamp(2), CAP)
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut added = 0;
    for t in tasks {
        if t.await.unwrap() == InviteAdded::Added {
            added += 1;
        }
    }
    assert_eq!(added, CAP);
    let snap = nodes[1].snapshot(Timestamp(3)).await.unwrap();
    assert_eq!(snap.invites.iter().filter(|i| i.1 == b).count(), CAP);
}
