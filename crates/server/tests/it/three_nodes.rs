//! The whole suite again with each test's server three nodes of one
//! cluster (one scratch database, one subject prefix, one data directory)
//! behind a round-robin balancer (`CHATUS_TEST_NODES=3`, see
//! `util::TestServer`), so that a test's clients are spread over the nodes
//! as behind a load balancer: what one client changes on one node, the
//! next sees on another. Where PostgreSQL or NATS is not reachable it
//! prints `SKIPPED: …` and passes, except in CI.
//!
//! To run (or debug) it directly: `CHATUS_TEST_STORE=postgres
//! CHATUS_TEST_BUS=nats://127.0.0.1:4222 CHATUS_TEST_NODES=3 cargo test -p
//! chatus-server --test it`.

use chatus_server::store::postgres::scratch::ScratchDb;

use crate::cluster::nats;
use crate::util::{in_replay, replay_suite};

/// Tests that still fail spread over nodes, and why (known gaps of
/// cluster mode, each a change another node made that this one shows or
/// enforces only when the bus brings it, or state kept per node).
const KNOWN_GAPS: &[&str] = &[
    // Lists are this node's cache, so they show a change made on another
    // node a moment later, and these tests check at once: an invitation
    // in the room list, a role in the member list.
    "budgets::a_huge_room_list_is_trimmed_and_says_so",
    "moderation::ranks_decide_who_acts_on_whom",
    // A session revoked, logged out or expiring on one node ends on the
    // others when the bus brings it, not at the next request (a token
    // login asks the store, so only connections logged in before the
    // revocation live on until then).
    "authz::every_request_in_every_state_does_what_the_table_says",
    "recovery::a_token_login_racing_a_revocation_never_stays_logged_in",
    // Bodies under way are counted and locked per node: a user may send
    // as many bodies at once to each node, and an upload resumed through
    // another node may meet the cut request still being written through
    // the first. (The quota is held by the store.)
    "files::a_trickling_body_is_cut_off_and_uploads_per_user_are_bounded",
    "files::an_upload_cut_at_several_offsets_resumes_and_ends_identical",
];

/// Ignored in `cargo test`: besides `KNOWN_GAPS`, timing-dependent tests
/// fail now and then spread over three nodes (a different one in each of
/// four runs), so it would make CI fail by chance. Run it by hand:
/// `cargo test -p chatus-server --test it three_nodes -- --ignored`.
#[tokio::test]
#[ignore = "timing-dependent failures spread over three nodes; run by hand with --ignored"]
async fn the_suite_passes_on_three_nodes() {
    if in_replay() {
        return;
    }
    let Some(probe) = ScratchDb::create().await.unwrap() else {
        return;
    };
    drop(probe);
    let Some(nats) = nats().await else { return };
    let mut skip = vec![
        "pg::",
        "cluster::",
        "three_nodes::",
        "damaged_db::",
        "disk_full::",
        "s3::",
        "faults::",
    ];
    skip.extend(KNOWN_GAPS);
    replay_suite(
        "on three nodes",
        &[
            ("CHATUS_TEST_STORE", "postgres".into()),
            ("CHATUS_TEST_BUS", format!("nats://{nats}")),
            ("CHATUS_TEST_NODES", "3".into()),
        ],
        &[],
        &skip,
    )
    .await;
}
