//! Cursors: the last `seq` seen in each conversation. A client that keeps
//! them resumes after a reconnect (or a restart, if it stores them) with
//! nothing missed and nothing twice.

use std::collections::BTreeMap;

use chatus_protocol::{Conversation, Seq};
use serde::{Deserialize, Serialize};

/// Last seen `seq` per conversation.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "Vec<Entry>", into = "Vec<Entry>")]
pub struct Cursors {
    map: BTreeMap<Conversation, Seq>,
}

/// The stored form of one cursor: `{"room": "x", "seq": 3}`.
#[derive(Serialize, Deserialize)]
struct Entry {
    #[serde(flatten)]
    conv: Conversation,
    seq: Seq,
}

impl From<Vec<Entry>> for Cursors {
    fn from(v: Vec<Entry>) -> Self {
        Self {
            map: v.into_iter().map(|e| (e.conv, e.seq)).collect(),
        }
    }
}

impl From<Cursors> for Vec<Entry> {
    fn from(c: Cursors) -> Self {
        c.map
            .into_iter()
            .map(|(conv, seq)| Entry { conv, seq })
            .collect()
    }
}

impl Cursors {
    /// No cursors.
    pub fn new() -> Self {
        Self::default()
    }

    /// The last seen `seq` in `conv`.
    pub fn get(&self, conv: &Conversation) -> Option<Seq> {
        self.map.get(conv).copied()
    }

    /// Records `seq` as seen if it is newer; returns false for an old or
    /// repeated one (which the caller should drop).
    pub fn advance(&mut self, conv: &Conversation, seq: Seq) -> bool {
        match self.map.get_mut(conv) {
            Some(last) if *last >= seq => false,
            Some(last) => {
                *last = seq;
                true
            }
            None => {
                self.map.insert(conv.clone(), seq);
                true
            }
        }
    }

    /// Sets a cursor, forward or back.
    pub fn set(&mut self, conv: Conversation, seq: Seq) {
        self.map.insert(conv, seq);
    }

    /// Forgets a conversation's cursor (a room that was removed).
    pub fn remove(&mut self, conv: &Conversation) {
        self.map.remove(conv);
    }

    /// Every cursor.
    pub fn iter(&self) -> impl Iterator<Item = (&Conversation, Seq)> {
        self.map.iter().map(|(c, s)| (c, *s))
    }

    /// How many conversations have a cursor.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// True when there is none.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chatus_protocol::{RoomName, Username};

    #[test]
    fn advance_drops_old_and_repeated() {
        let room = Conversation::Room(RoomName::lobby());
        let mut c = Cursors::new();
        assert!(c.advance(&room, Seq(3)));
        assert!(!c.advance(&room, Seq(3)));
        assert!(!c.advance(&room, Seq(2)));
        assert!(c.advance(&room, Seq(4)));
        assert_eq!(c.get(&room), Some(Seq(4)));
    }

    #[test]
    fn stored_form_is_stable() {
        let mut c = Cursors::new();
        c.set(Conversation::Room(RoomName::lobby()), Seq(7));
        c.set(Conversation::Peer(Username::parse("bob").unwrap()), Seq(2));
        let text = serde_json::to_string(&c).unwrap();
        assert_eq!(text, r#"[{"room":"lobby","seq":7},{"peer":"bob","seq":2}]"#);
        assert_eq!(serde_json::from_str::<Cursors>(&text).unwrap(), c);
    }
}
