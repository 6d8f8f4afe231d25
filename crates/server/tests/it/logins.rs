//! Logins under attack (issue 9): the hashing pool is bounded and fair
//! across source addresses, token logins never wait for it, a guesser
//! cannot lock the owner out, and a user's connections are capped. Source
//! addresses are played by binding client sockets to 127.0.0.x.

use std::net::Ipv4Addr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use serde_json::{Value, json};

use crate::util::*;

fn from(n: u8) -> Ipv4Addr {
    Ipv4Addr::new(127, 0, 1, n)
}

async fn login_from(server: &TestServer, n: u8, name: &str, pw: &str) -> Value {
    let mut raw = Raw::hello_from(server.addr, from(n)).await;
    raw.call(json!({"type":"login","username":name,"password":pw}))
        .await
}

/// Regression: all password checks waited in one first-come queue (a
/// semaphore of two in front of tokio's blocking pool), so a legitimate
/// login waited behind every attempt of a flood (16–20 s, sometimes past
/// the login timeout). Now each source address has its own queue and the
/// threads serve the source served least recently first: while 20
/// addresses keep 4 wrong logins each waiting, another address's correct
/// login waits for at most about one hash per flooding address (usually
/// none), not for the whole queue. Counted in hashes, not
/// timed. Token logins need no hash at all and go through meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_flood_from_many_addresses_delays_another_address_by_a_bounded_amount() {
    // One node where the suite spreads tests over several: the hashing queue is each node's.
    let server = TestServer::start_one_node(|c| {
        c.login.hash_threads = 1;
        c.login.queue_per_source = 4;
        // Argon2's default cost: hashes slow enough that a queue builds up
        // and that replies travel while few more hashes complete.
    })
    .await;
    let mut alice = Raw::registered(server.addr, "alice").await;
    let token = {
        let mut raw = Raw::connect(server.addr).await;
        raw.call(json!({"type":"hello","version":1})).await;
        let r = raw
            .call(json!({"type":"login","username":"alice","password":password("alice").expose()}))
            .await;
        r["token"].as_str().unwrap().to_owned()
    };
    alice.call(json!({"type":"ping"})).await;

    const SOURCES: u8 = 20;
    const PER_SOURCE: usize = 4;
    let stop = Arc::new(AtomicBool::new(false));
    let mut flood = Vec::new();
    for s in 0..SOURCES {
        for _ in 0..PER_SOURCE {
            let stop = stop.clone();
            let addr = server.addr;
            flood.push(tokio::spawn(async move {
                let mut raw = Raw::hello_from(addr, from(100 + s)).await;
                let mut sent = 0;
                // Bounded: at most 50 attempts per connection.
                while !stop.load(Ordering::Relaxed) && sent < 50 {
                    let r = raw
                        .call(json!({"type":"login","username":"alice","password":"wrong guess"}))
                        .await;
                    assert!(
                        r["code"] == "bad_credentials" || r["code"] == "rate_limited",
                        "{r}"
                    );
                    sent += 1;
                }
            }));
        }
    }
    let accounts = server.state.accounts();
    eventually("the flood fills the queue", || {
        accounts.queue_depth() >= usize::from(SOURCES) * PER_SOURCE / 2
    })
    .await;

    // A token login needs no hash: it goes through while the queue is full.
    let mut resumed = Raw::hello_from(server.addr, from(1)).await;
    let r = resumed.call(json!({"type":"auth","token":token})).await;
    assert_eq!(r["type"], "authed", "{r}");

    let mut owner = Raw::hello_from(server.addr, from(2)).await;
    let before = accounts.pool_stats().hashed;
    let r = owner
        .call(json!({"type":"login","username":"alice","password":password("alice").expose()}))
        .await;
    let hashed = accounts.pool_stats().hashed - before;
    stop.store(true, Ordering::Relaxed);
    assert_eq!(r["type"], "authed", "{r}");
    // A first-come queue would have made it wait for about SOURCES ×
    // PER_SOURCE hashes; now at most about one per source.
    assert!(
        hashed <= u64::from(SOURCES) + 10,
        "the login waited for {hashed} hashes"
    );
    for f in flood {
        f.await.unwrap();
    }
}

/// Regression: on a fresh server, concurrent logins for unknown names each
/// made the cached dummy hash before checking against it (a race on
/// `OnceLock::get` then `get_or_init`), so each cost two hashes. Now a
/// login for an unknown name costs exactly one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_for_an_unknown_name_costs_exactly_one_hash() {
    // One node where the suite spreads tests over several: it counts one node's hashes.
    let server = TestServer::start_one_node(|_| {}).await;
    let logins: Vec<_> = (0..8u8)
        .map(|i| {
            let addr = server.addr;
            tokio::spawn(async move {
                let mut raw = Raw::hello_from(addr, from(10 + i)).await;
                raw.call(
                    json!({"type":"login","username":format!("ghost{i}"),"password":"whatever"}),
                )
                .await
            })
        })
        .collect();
    for l in logins {
        let r = l.await.unwrap();
        assert_eq!(r["code"], "bad_credentials", "{r}");
    }
    let stats = server.state.accounts().pool_stats();
    assert_eq!(stats.hashed, 8, "{stats:?}");
    assert_eq!(server.state.accounts().auth_failures(), 8);
}

/// Password checks waiting past their deadline are answered
/// `server_busy` without being hashed: a queue cannot keep the server busy
/// with attempts long after they were made.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checks_waiting_past_their_deadline_are_not_hashed() {
    // One node where the suite spreads tests over several: it reads one node's hashing pool.
    let server = TestServer::start_one_node(|c| {
        c.login.hash_threads = 1;
        c.login.max_wait_ms = 50;
        // Argon2's default parameters: each hash takes tens of
        // milliseconds, so 30 in a row outlast the deadline.
    })
    .await;
    let logins: Vec<_> = (0..30u8)
        .map(|i| {
            let addr = server.addr;
            tokio::spawn(async move {
                let mut raw = Raw::hello_from(addr, from(10 + i)).await;
                raw.call(json!({"type":"login","username":"nobody","password":"whatever"}))
                    .await
            })
        })
        .collect();
    let mut busy = 0;
    for l in logins {
        let r = l.await.unwrap();
        match r["code"].as_str() {
            Some("bad_credentials") => {}
            Some("server_busy") => {
                assert!(r["retry_after_ms"].as_u64().unwrap() > 0, "{r}");
                busy += 1;
            }
            _ => panic!("unexpected reply {r}"),
        }
    }
    let stats = server.state.accounts().pool_stats();
    assert!(busy > 0, "{stats:?}");
    assert_eq!(stats.expired, busy);
    assert_eq!(stats.hashed + stats.expired, 30, "{stats:?}");
    assert_eq!(stats.queue_depth, 0);
}

/// Regression: five wrong passwords for a name, from any address, made its
/// owner's correct password answer `rate_limited` from every address. Now
/// failures count per (account, address): the guessers are refused, the
/// owner from an address without failures gets in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guessing_a_password_does_not_lock_its_owner_out() {
    // One node where the suite spreads tests over several: login throttles are each node's.
    let server = TestServer::start_one_node(|c| {
        c.rate.failed_login_burst_per_account_and_addr = 3;
        c.rate.failed_logins_per_min_per_account_and_addr = 0.01;
        c.rate.login_burst_per_account = 5;
        c.rate.logins_per_min_per_account = 0.01;
    })
    .await;
    let _victim = Raw::registered(server.addr, "victim").await;
    // One address guesses until refused.
    let mut guesser = Raw::hello_from(server.addr, from(2)).await;
    let mut codes = Vec::new();
    for _ in 0..4 {
        let r = guesser
            .call(json!({"type":"login","username":"victim","password":"wrong guess"}))
            .await;
        codes.push(r["code"].as_str().unwrap().to_owned());
    }
    assert_eq!(
        codes,
        [
            "bad_credentials",
            "bad_credentials",
            "bad_credentials",
            "rate_limited"
        ]
    );
    // More addresses spend the account-wide budget.
    for n in 3..6 {
        let r = login_from(&server, n, "victim", "wrong guess").await;
        assert_eq!(r["code"], "bad_credentials", "{r}");
    }
    // The guessers are refused now, even with the right password...
    let r = login_from(&server, 3, "victim", password("victim").expose()).await;
    assert_eq!(r["code"], "rate_limited", "{r}");
    // ...but the owner, from an address that did not fail, gets in.
    let r = login_from(&server, 9, "victim", password("victim").expose()).await;
    assert_eq!(r["type"], "authed", "{r}");
    // And another account is not affected at all.
    let _other = Raw::registered(server.addr, "other").await;
    let r = login_from(&server, 2, "other", password("other").expose()).await;
    assert_eq!(r["type"], "authed", "{r}");
}

/// Regression: token logins were unlimited, so 200 logins of one account
/// filled a 200-slot server. Now a user has at most
/// `max_connections_per_user` logged-in connections; a password login
/// past it gets no session either.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_has_at_most_max_connections_per_user() {
    // One node where the suite spreads tests over several: max_connections_per_user counts per node.
    let server = TestServer::start_one_node(|c| c.max_connections_per_user = 3).await;
    let mut first = Raw::connect(server.addr).await;
    first.call(json!({"type":"hello","version":1})).await;
    let r = first
        .call(json!({"type":"register","username":"alice","password":password("alice").expose()}))
        .await;
    let token = r["token"].as_str().unwrap().to_owned();
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut raw = Raw::connect(server.addr).await;
        raw.call(json!({"type":"hello","version":1})).await;
        let r = raw.call(json!({"type":"auth","token":token})).await;
        assert_eq!(r["type"], "authed", "{r}");
        held.push(raw);
    }
    let mut extra = Raw::connect(server.addr).await;
    extra.call(json!({"type":"hello","version":1})).await;
    let r = extra.call(json!({"type":"auth","token":token})).await;
    assert_eq!(r["code"], "too_many_connections", "{r}");
    // Refused means not logged in.
    let r = extra.call(json!({"type":"who"})).await;
    assert_eq!(r["code"], "unauthenticated", "{r}");
    let r = extra
        .call(json!({"type":"login","username":"alice","password":password("alice").expose()}))
        .await;
    assert_eq!(r["code"], "too_many_connections", "{r}");
    assert_eq!(server.state.accounts().session_count(), 1);
    // Another user is not affected; and once one closes, there is room.
    let _bob = Raw::registered(server.addr, "bob").await;
    drop(held.pop());
    tokio::time::timeout(WAIT, async {
        loop {
            let r = extra.call(json!({"type":"auth","token":token})).await;
            if r["type"] == "authed" {
                break;
            }
            assert_eq!(r["code"], "too_many_connections", "{r}");
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    })
    .await
    .unwrap();
}
