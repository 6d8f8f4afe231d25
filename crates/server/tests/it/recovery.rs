//! Sessions and account recovery (issue 9): revocation leaves no window
//! for a racing token login, an expired session ends its connections,
//! `change_password`, `logout` with `everywhere`, an administrator's reset
//! beside a running server, and look-alike names.

use chatus_client::protocol::{Password, Timestamp, Token};
use chatus_server::service::accounts::{hash_token, now};
use chatus_server::store::NewSession;
use serde_json::{Value, json};

use crate::util::*;

async fn hello(server: &TestServer) -> Raw {
    let mut raw = Raw::connect(server.addr).await;
    raw.call(json!({"type":"hello","version":1})).await;
    raw
}

async fn auth(server: &TestServer, token: &str) -> (Raw, Value) {
    let mut raw = hello(server).await;
    let r = raw.call(json!({"type":"auth","token":token})).await;
    (raw, r)
}

/// Reads until the server closes; fails if a request is answered first.
async fn expect_ended(raw: &mut Raw, what: &str) -> u16 {
    tokio::time::timeout(WAIT, async {
        loop {
            match raw.next_raw().await {
                Frame::Close(code) => return code,
                Frame::End => return 0,
                Frame::Json(v) if v["type"] == "error" => {}
                Frame::Json(v) if v.get("id").is_some() => {
                    panic!("{what}: a request was answered after revocation: {v}")
                }
                Frame::Json(_) => {}
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{what}: the connection was not closed"))
}

fn token(i: usize, which: &str) -> String {
    format!("cu_{which}{i:060}")
}

/// Regression: a connection whose `auth` was in flight while its token was
/// revoked stayed logged in (109 of 300 trials in the review, with tokens
/// older than a day: `auth` awaits extending the token between checking
/// it and attaching the connection). Each trial races `auth` with an old
/// token against `logout` with `everywhere` from another session of the
/// same user; afterwards the racing connection must be refused or closed,
/// never left acting on the token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_login_racing_a_revocation_never_stays_logged_in() {
    const TRIALS: usize = 200;
    let server = TestServer::start_with(|c| {
        c.login.argon2_memory_kib = 64;
        c.login.argon2_iterations = 1;
    })
    .await;
    let accounts = server.state.accounts();
    let lobby = server.state.hub().lobby();
    let day = 86_400_000;
    for i in 0..TRIALS {
        let name = user(&format!("racer{i}"));
        let row = accounts
            .create_user(&name, &password("racer"), false, lobby)
            .await
            .unwrap();
        // An old token (expiring in two days, so `auth` extends it) and a
        // fresh one for the connection that revokes.
        for (which, expires) in [("old", now().0 + 2 * day), ("new", now().0 + 29 * day)] {
            let t = Token::parse(token(i, which)).unwrap();
            server
                .state
                .store()
                .create_session(NewSession {
                    token_hash: hash_token(&t),
                    user: row.id,
                    created: now(),
                    expires: Timestamp(expires),
                })
                .await
                .unwrap();
        }
    }
    // Sessions are cached at start.
    let server = server.restart().await;
    let mut logged_in_then_closed = 0;
    for i in 0..TRIALS {
        let (mut revoker, r) = auth(&server, &token(i, "new")).await;
        assert_eq!(r["type"], "authed", "{r}");
        let mut racer = hello(&server).await;
        let old = token(i, "old");
        // The revocation may close the racer (4001) before its `authed`
        // reply is read: logged in, then closed, the same as the first
        // outcome below.
        let race = tokio::spawn(async move {
            racer
                .send_text(&json!({"type":"auth","token":old,"id":1}).to_string())
                .await;
            let r = loop {
                match racer.next_raw().await {
                    Frame::Json(f) if f["id"] == json!(1) => break f,
                    Frame::Json(_) => {}
                    Frame::Close(code) => break json!({"type":"closed","code":code}),
                    Frame::End => break json!({"type":"closed","code":0}),
                }
            };
            (racer, r)
        });
        let r = revoker
            .call(json!({"type":"logout","everywhere":true}))
            .await;
        assert_eq!(r["type"], "ok", "{r}");
        let (mut racer, r) = race.await.unwrap();
        if r["type"] == "closed" {
            let code = r["code"].as_u64().unwrap();
            assert!(code == 4001 || code == 0, "trial {i}: closed with {code}");
            logged_in_then_closed += 1;
        } else if r["type"] == "authed" {
            // Logged in before the revocation: it must have been closed.
            racer.send_text(r#"{"type":"who","id":99}"#).await;
            let code = expect_ended(&mut racer, &format!("trial {i}")).await;
            assert!(code == 4001 || code == 0, "trial {i}: closed with {code}");
            logged_in_then_closed += 1;
        } else {
            assert_eq!(r["code"], "invalid_token", "trial {i}: {r}");
        }
    }
    // Both outcomes are fine; the count is only for the curious.
    eprintln!("{logged_in_then_closed} of {TRIALS} racers got in and were closed");
    assert_eq!(server.state.accounts().session_count(), 0);
}

/// Regression: a logged-in connection stayed authorised after its token
/// expired. Now the gate refuses its next request (`invalid_token`, close
/// 4001), and the watcher closes an idle one within about a second.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_ends_when_its_session_expires() {
    // Sessions that expire at once.
    let server = TestServer::start_with(|c| c.session_ttl_days = 0).await;
    let mut idle = Raw::registered(server.addr, "alice").await;
    let mut active = hello(&server).await;
    let r = active
        .call(json!({"type":"login","username":"alice","password":password("alice").expose()}))
        .await;
    assert_eq!(r["type"], "authed", "{r}");
    active.send_text(r#"{"type":"who","id":7}"#).await;
    assert_eq!(expect_ended(&mut active, "active").await, 4001);
    assert_eq!(expect_ended(&mut idle, "idle").await, 4001);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn change_password_revokes_every_other_session_and_keeps_this_one() {
    let server = TestServer::start().await;
    let mut this = hello(&server).await;
    let r = this
        .call(json!({"type":"register","username":"alice","password":password("alice").expose()}))
        .await;
    let this_token = r["token"].as_str().unwrap().to_owned();
    let (mut same_token, r) = auth(&server, &this_token).await;
    assert_eq!(r["type"], "authed");
    let mut other = hello(&server).await;
    let r = other
        .call(json!({"type":"login","username":"alice","password":password("alice").expose()}))
        .await;
    let other_token = r["token"].as_str().unwrap().to_owned();
    let mut bob = Raw::registered(server.addr, "bob").await;

    let r = this
        .call(json!({"type":"change_password","current":"not it","new":"a new secret"}))
        .await;
    assert_eq!(r["code"], "bad_credentials", "{r}");
    let r = this
        .call(json!({"type":"change_password","current":password("alice").expose(),"new":"short"}))
        .await;
    assert_eq!(r["code"], "weak_password", "{r}");
    let r = this
        .call(json!({"type":"change_password","current":password("alice").expose(),"new":"a new secret"}))
        .await;
    assert_eq!(r["type"], "ok", "{r}");

    assert_eq!(expect_ended(&mut other, "other session").await, 4001);
    for raw in [&mut this, &mut same_token, &mut bob] {
        let r = raw.call(json!({"type":"who"})).await;
        assert_eq!(r["type"], "users", "{r}");
    }
    let (_, r) = auth(&server, &other_token).await;
    assert_eq!(r["code"], "invalid_token", "{r}");
    let (_, r) = auth(&server, &this_token).await;
    assert_eq!(r["type"], "authed", "{r}");
    let mut fresh = hello(&server).await;
    let r = fresh
        .call(json!({"type":"login","username":"alice","password":password("alice").expose()}))
        .await;
    assert_eq!(r["code"], "bad_credentials", "{r}");
    let r = fresh
        .call(json!({"type":"login","username":"alice","password":"a new secret"}))
        .await;
    assert_eq!(r["type"], "authed", "{r}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logout_everywhere_ends_every_session_of_the_user() {
    let server = TestServer::start().await;
    let mut first = hello(&server).await;
    let r = first
        .call(json!({"type":"register","username":"alice","password":password("alice").expose()}))
        .await;
    let first_token = r["token"].as_str().unwrap().to_owned();
    let (mut twin, _) = auth(&server, &first_token).await;
    let mut second = hello(&server).await;
    let r = second
        .call(json!({"type":"login","username":"alice","password":password("alice").expose()}))
        .await;
    let second_token = r["token"].as_str().unwrap().to_owned();
    let mut bob = Raw::registered(server.addr, "bob").await;

    let r = second
        .call(json!({"type":"logout","everywhere":true}))
        .await;
    assert_eq!(r["type"], "ok", "{r}");
    assert_eq!(second.expect_close().await.0, 1000);
    assert_eq!(expect_ended(&mut first, "first").await, 4001);
    assert_eq!(expect_ended(&mut twin, "twin").await, 4001);
    for t in [&first_token, &second_token] {
        let (_, r) = auth(&server, t).await;
        assert_eq!(r["code"], "invalid_token", "{r}");
    }
    let r = bob.call(json!({"type":"who"})).await;
    assert_eq!(r["type"], "users", "{r}");
}

/// `chatus admin user reset-password` writes beside the running server;
/// the server notices within about a second and ends the user's sessions.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_administrators_reset_reaches_a_running_server() {
    let server = TestServer::start().await;
    let mut alice = hello(&server).await;
    let r = alice
        .call(json!({"type":"register","username":"alice","password":password("alice").expose()}))
        .await;
    let token = r["token"].as_str().unwrap().to_owned();
    let mut bob = Raw::registered(server.addr, "bob").await;
    let new = Password::parse("reset by the admin").unwrap();
    chatus_server::admin::reset_password(&server.location(), &user("ALICE"), &new)
        .await
        .unwrap();
    assert_eq!(expect_ended(&mut alice, "alice").await, 4001);
    let (_, r) = auth(&server, &token).await;
    assert_eq!(r["code"], "invalid_token", "{r}");
    let mut again = hello(&server).await;
    let r = again
        .call(json!({"type":"login","username":"alice","password":"reset by the admin"}))
        .await;
    assert_eq!(r["type"], "authed", "{r}");
    let r = bob.call(json!({"type":"who"})).await;
    assert_eq!(r["type"], "users", "{r}");
    let e = chatus_server::admin::reset_password(&server.location(), &user("nobody"), &new)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("no user named nobody"), "{e}");
}

/// Regression: `aIice` and `a1ice` registered beside `alice` and posted in
/// the lobby. Now a name whose confusable skeleton matches an existing
/// account's is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn look_alike_names_are_refused() {
    let server = TestServer::start().await;
    let _alice = Raw::registered(server.addr, "alice").await;
    let mut raw = hello(&server).await;
    for name in ["aIice", "a1ice", "AIice", "Alice", "ALICE"] {
        let r = raw
            .call(json!({"type":"register","username":name,"password":"long enough"}))
            .await;
        let want = if name.eq_ignore_ascii_case("alice") {
            "username_taken"
        } else {
            "username_confusable"
        };
        assert_eq!(r["code"], want, "{name}: {r}");
        assert!(!r["message"].as_str().unwrap().contains("alice"), "{r}");
    }
    // An administrator cannot add one either.
    let lobby = server.state.hub().lobby();
    let e = server
        .state
        .accounts()
        .create_user(&user("a1ice"), &password("x"), false, lobby)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("username_confusable"), "{e}");
    let r = raw
        .call(json!({"type":"register","username":"alicia","password":"long enough"}))
        .await;
    assert_eq!(r["type"], "authed", "{r}");
}
