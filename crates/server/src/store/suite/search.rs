//! The store suite's case for search past the ranking bound
//! ([`SearchSpec::ranked_max`]): the page is the newest matches, with the
//! same privacy, filters and current-text rule as ranked pages.

use super::*;
use chatus_protocol::Conversation;

use crate::store::search::Query;
use crate::store::{Kind, MARK_START, SearchSpec};

/// A message at `time` (milliseconds).
fn at(conv: ConvId, sender: UserId, cid: &str, body: &str, time: u64) -> NewMessage {
    NewMessage {
        time: Timestamp(time),
        ..msg(conv, sender, cid, body)
    }
}

/// Issue 13: a word in more messages than the ranking bound was ranked by
/// reading every match, so common words were refused as too slow. Past
/// the bound the page is the newest matches the asker may read, paged,
/// filtered and highlighted as ranked pages are; deleted and edited-away
/// text still never matches.
pub(crate) async fn search_past_the_ranking_bound_is_newest_first(place: &Place) {
    let store = place.open().await;
    let lobby = lobby(&*store).await;
    let a = add_user(&*store, "a", vec![lobby]).await;
    let b = add_user(&*store, "b", vec![lobby]).await;
    let c = add_user(&*store, "c", vec![]).await;
    let side = store
        .create_room(
            RoomName::parse("side").unwrap(),
            Visibility::Public,
            c,
            Timestamp(0),
        )
        .await
        .unwrap()
        .id;
    let dm = store.open_dm(a, b, Timestamp(0)).await.unwrap().id;
    store
        .append(vec![
            at(lobby, a, "l1", "tea tea tea, the best tea", 1), // seq 1
            at(lobby, b, "l2", "tea later", 2),                 // seq 2
            at(lobby, a, "l3", "coffee only", 3),               // seq 3
            at(lobby, b, "l4", "tea at four", 4),               // seq 4
            at(lobby, a, "l5", "tea then deleted", 11),         // seq 5
            at(lobby, a, "l6", "tea then edited", 12),          // seq 6
            at(dm, b, "d1", "tea for two", 6),                  // dm seq 1
            at(dm, a, "d2", "more tea please", 8),              // dm seq 2
            at(side, c, "s1", "tea elsewhere", 9),
            at(side, c, "s2", "tea elsewhere again", 10),
        ])
        .await
        .unwrap();
    store
        .append(vec![
            change(lobby, a, "x5", "-", Kind::Delete { target: Seq(5) }),
            change(lobby, a, "x6", "coffee now", Kind::Edit { target: Seq(6) }),
        ])
        .await
        .unwrap();
    let spec = |q: &str, ranked_max: u32| SearchSpec {
        asker: a,
        query: Query::parse(q).unwrap(),
        conv: None,
        from: None,
        before: None,
        after: None,
        limit: 3,
        offset: 0,
        ranked_max,
    };
    let dm_name = |seq: u64| (Conversation::Peer(Username::parse("b").unwrap()), seq);
    let lobby_name = |seq: u64| (Conversation::Room(RoomName::lobby()), seq);
    let find = |spec: SearchSpec| {
        let store = store.clone();
        async move {
            let (rows, more) = store.search(spec).await.unwrap();
            for r in &rows {
                assert!(r.snippet.contains(MARK_START), "{r:?}");
            }
            let hits: Vec<_> = rows.into_iter().map(|r| (r.conv, r.seq.0)).collect();
            (hits, more)
        }
    };
    // Under the bound: ranked, the message saying it four times first.
    let (hits, _) = find(spec("tea", 100)).await;
    assert_eq!(hits[0], lobby_name(1));
    // Past it (5 visible matches, and the other room's): newest first.
    let (hits, more) = find(spec("tea", 2)).await;
    assert_eq!(hits, vec![dm_name(2), dm_name(1), lobby_name(4)]);
    assert!(more);
    let (hits, more) = find(SearchSpec {
        offset: 3,
        ..spec("tea", 2)
    })
    .await;
    assert_eq!(hits, vec![lobby_name(2), lobby_name(1)]);
    assert!(!more);
    // Prefixes and phrases too.
    let (hits, _) = find(spec("te*", 2)).await;
    assert_eq!(hits, vec![dm_name(2), dm_name(1), lobby_name(4)]);
    let (hits, _) = find(spec("\"tea please\"", 0)).await;
    assert_eq!(hits, vec![dm_name(2)]);
    // Filters: one conversation, a sender, a time window.
    let (hits, _) = find(SearchSpec {
        conv: Some(lobby),
        ..spec("tea", 2)
    })
    .await;
    assert_eq!(hits, vec![lobby_name(4), lobby_name(2), lobby_name(1)]);
    let (hits, _) = find(SearchSpec {
        from: Some(b),
        ..spec("tea", 2)
    })
    .await;
    assert_eq!(hits, vec![dm_name(1), lobby_name(4), lobby_name(2)]);
    let (hits, _) = find(SearchSpec {
        before: Some(Timestamp(8)),
        after: Some(Timestamp(1)),
        ..spec("tea", 2)
    })
    .await;
    assert_eq!(hits, vec![dm_name(1), lobby_name(4), lobby_name(2)]);
    // A prefix past the bound is read in one pass on SQLite: the same
    // pages, filters and privacy as the word it stands for here.
    let cases = |q: &'static str| {
        vec![
            spec(q, 2),
            SearchSpec {
                offset: 2,
                ..spec(q, 2)
            },
            SearchSpec {
                conv: Some(lobby),
                ..spec(q, 2)
            },
            SearchSpec {
                conv: Some(side),
                ..spec(q, 2)
            },
            SearchSpec {
                from: Some(b),
                ..spec(q, 2)
            },
            SearchSpec {
                after: Some(Timestamp(4)),
                ..spec(q, 2)
            },
            SearchSpec {
                asker: c,
                ..spec(q, 2)
            },
        ]
    };
    for (word, prefix) in cases("tea").into_iter().zip(cases("te*")) {
        let context = format!("{:?}", (word.conv, word.from, word.offset, word.asker));
        assert_eq!(find(prefix).await, find(word).await, "{context}");
    }
    // Deleted and edited-away text never matches, bound or not.
    assert!(find(spec("deleted OR edited", 0)).await.0.is_empty());
    // Someone in no conversation with matches finds nothing.
    let (hits, _) = find(SearchSpec {
        asker: c,
        conv: Some(lobby),
        ..spec("tea", 0)
    })
    .await;
    assert!(hits.is_empty());
}
