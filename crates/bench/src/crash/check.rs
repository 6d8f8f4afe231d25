//! The check after each restart: every conversation's whole history, read
//! back through `history`, against what the senders were told and what
//! each of them has seen.
//!
//! [`verify`] is pure (histories and ledgers in, violations out), so its
//! rules are unit-tested on histories that break them.

use std::collections::{BTreeMap, HashMap};

use serde_json::json;

use super::client::{Conv, Link, Sender, Tag, user_name};

/// A stored message as `history` returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    /// Its `seq`.
    pub seq: u64,
    /// Its sender's name.
    pub sender: String,
    /// The tag its body starts with (`None`: a body this run did not write).
    pub tag: Option<Tag>,
}

/// Reads the whole history of `conv` through `link`, oldest first.
pub async fn read_all(link: &mut Link, conv: &Conv, me: &str) -> anyhow::Result<Vec<Stored>> {
    let mut out: Vec<Stored> = Vec::new();
    loop {
        let after = out.last().map_or(0, |m| m.seq);
        let mut req = json!({"type":"history","after":after,"limit":200});
        match conv {
            Conv::Room(r) => req["room"] = json!(r),
            Conv::Dm(a, b) => req["peer"] = json!(if a == me { b } else { a }),
        }
        let page = link.call(req).await?;
        let msgs = page["messages"].as_array().cloned().unwrap_or_default();
        for m in &msgs {
            out.push(Stored {
                seq: m["seq"].as_u64().unwrap_or(0),
                sender: m["sender"].as_str().unwrap_or("").to_owned(),
                tag: m["body"].as_str().and_then(Tag::parse),
            });
        }
        if page["more"].as_bool() != Some(true) {
            return Ok(out);
        }
        if msgs.is_empty() {
            anyhow::bail!("an empty history page said more: {page}");
        }
        // A page that does not move forward would loop forever: that is a
        // violation `verify` reports, so stop reading here.
        if out.last().map_or(0, |m| m.seq) <= after {
            return Ok(out);
        }
    }
}

/// Checks the histories against the senders' ledgers and views.
///
/// - Each conversation's `seq`s are 1, 2, 3, … with no gap or repeat.
/// - Every message is a send of this run, by the sender it names, stored
///   once in all conversations together.
/// - Every acknowledged send is at the conversation and `seq` it was
///   acknowledged with.
/// - Nothing is stored that its sender does not hold as acknowledged or
///   still pending.
/// - Each sender's messages are in each conversation in the order it sent
///   them (leaving out sends answered with an error, which were sent again
///   later).
/// - Each sender's own view of a conversation is exactly its history.
pub fn verify(histories: &BTreeMap<Conv, Vec<Stored>>, senders: &[Sender]) -> Vec<String> {
    let mut out = Vec::new();
    let mut seen: HashMap<Tag, (&Conv, u64)> = HashMap::new();
    for (conv, msgs) in histories {
        let mut last_n: HashMap<usize, u64> = HashMap::new();
        for (i, m) in msgs.iter().enumerate() {
            let due = i as u64 + 1;
            if m.seq != due {
                out.push(format!(
                    "in {conv}, seq {due} is missing: found seq {} in its place",
                    m.seq
                ));
                break;
            }
            let Some(tag) = m.tag else {
                out.push(format!(
                    "in {conv}, seq {} has a body this run did not send",
                    m.seq
                ));
                continue;
            };
            if m.sender != user_name(tag.sender) {
                out.push(format!(
                    "in {conv}, seq {} ({tag}) is shown as sent by {}",
                    m.seq, m.sender
                ));
            }
            if let Some((c, s)) = seen.insert(tag, (conv, m.seq)) {
                out.push(format!(
                    "{tag} is stored twice: {c} seq {s} and {conv} seq {}",
                    m.seq
                ));
            }
            let Some(sender) = senders.get(tag.sender) else {
                out.push(format!(
                    "in {conv}, seq {} names an unknown sender ({tag})",
                    m.seq
                ));
                continue;
            };
            if !sender.acked.contains_key(&tag.n) && !sender.pending.contains_key(&tag.n) {
                out.push(format!(
                    "in {conv}, seq {} holds {tag}, which was never sent",
                    m.seq
                ));
            }
            if !sender.refused.contains(&tag.n)
                && let Some(prev) = last_n.insert(tag.sender, tag.n)
                && prev > tag.n
            {
                out.push(format!(
                    "in {conv}, {tag} (seq {}) is stored after s{}-{prev}, which was sent later",
                    m.seq, tag.sender
                ));
            }
        }
    }
    for s in senders {
        for (n, (conv, seq)) in &s.acked {
            let tag = Tag {
                sender: s.index,
                n: *n,
            };
            let at = histories.get(conv).and_then(|h| {
                usize::try_from(*seq)
                    .ok()?
                    .checked_sub(1)
                    .and_then(|i| h.get(i))
            });
            match at {
                Some(m) if m.tag == Some(tag) => {}
                Some(m) => out.push(format!(
                    "{tag} was acknowledged as {conv} seq {seq}, which holds {}",
                    m.tag.map_or("another body".to_owned(), |t| t.to_string())
                )),
                None => out.push(format!(
                    "{tag} was acknowledged as {conv} seq {seq}, which is not stored"
                )),
            }
        }
        for (conv, view) in &s.views {
            let stored: Vec<Option<Tag>> = histories
                .get(conv)
                .map(|h| h.iter().map(|m| m.tag).collect())
                .unwrap_or_default();
            let seen: Vec<Option<Tag>> = view.iter().map(|t| Some(*t)).collect();
            if seen != stored {
                let at = seen.iter().zip(&stored).position(|(a, b)| a != b);
                out.push(format!(
                    "{}'s view of {conv} has {} messages, its history {}{}",
                    s.name,
                    seen.len(),
                    stored.len(),
                    at.map_or(String::new(), |i| format!("; they differ at seq {}", i + 1))
                ));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::rng::Rng;
    use super::*;

    fn room() -> Conv {
        Conv::Room("r".into())
    }

    fn stored(seq: u64, sender: usize, n: u64) -> Stored {
        Stored {
            seq,
            sender: user_name(sender),
            tag: Some(Tag { sender, n }),
        }
    }

    /// Two senders in one room, with `msgs` acknowledged and seen by both.
    fn world(msgs: &[(u64, usize, u64)]) -> (BTreeMap<Conv, Vec<Stored>>, Vec<Sender>) {
        let mut senders: Vec<Sender> = (0..2)
            .map(|i| Sender::new(i, String::new(), vec![room()], Rng::new(0)))
            .collect();
        let mut h = Vec::new();
        for &(seq, s, n) in msgs {
            h.push(stored(seq, s, n));
            senders[s].acked.insert(n, (room(), seq));
            for x in &mut senders {
                x.views
                    .entry(room())
                    .or_default()
                    .push(Tag { sender: s, n });
            }
        }
        (BTreeMap::from([(room(), h)]), senders)
    }

    const GOOD: &[(u64, usize, u64)] = &[(1, 0, 1), (2, 1, 1), (3, 0, 2), (4, 1, 2)];

    #[test]
    fn a_consistent_run_passes() {
        let (h, s) = world(GOOD);
        assert_eq!(verify(&h, &s), Vec::<String>::new());
    }

    #[test]
    fn a_lost_acknowledged_message_is_caught() {
        let (mut h, s) = world(GOOD);
        h.get_mut(&room()).unwrap().pop();
        let v = verify(&h, &s);
        assert!(
            v.iter()
                .any(|l| l.contains("s1-2") && l.contains("not stored")),
            "{v:?}"
        );
    }

    #[test]
    fn a_gap_a_repeat_and_a_reorder_are_caught() {
        let (mut h, s) = world(GOOD);
        h.get_mut(&room()).unwrap().remove(1);
        assert!(
            verify(&h, &s)
                .iter()
                .any(|l| l.contains("seq 2 is missing"))
        );

        let (mut h, s) = world(GOOD);
        h.get_mut(&room()).unwrap().push(stored(5, 0, 1));
        assert!(verify(&h, &s).iter().any(|l| l.contains("stored twice")));

        let (h, s) = world(&[(1, 0, 2), (2, 0, 1)]);
        assert!(verify(&h, &s).iter().any(|l| l.contains("sent later")));
    }

    #[test]
    fn a_phantom_and_a_diverging_view_are_caught() {
        let (mut h, s) = world(GOOD);
        h.get_mut(&room()).unwrap().push(stored(5, 1, 9));
        let v = verify(&h, &s);
        assert!(v.iter().any(|l| l.contains("never sent")), "{v:?}");
        assert!(v.iter().any(|l| l.contains("view of room r")), "{v:?}");
    }
}
