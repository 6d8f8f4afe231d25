//! Searching: the search dialog asks the server (`search`, over the
//! conversations we are in, or only the open one), shows the hits, and
//! opening a hit goes to its conversation and scrolls to the message,
//! loading older pages until it is there.

use chatus_client::protocol::search::{Search, SearchHit, SearchQuery};
use chatus_client::protocol::{Conversation, Seq};

use super::{Link, State};
use crate::net::Action;

/// The most older pages loaded to reach a hit (50 messages each): a hit
/// further back than that is not scrolled to, and the notice says so.
pub const MAX_JUMP_PAGES: u32 = 40;

/// The last search and what it found.
#[derive(Debug, Clone, Default)]
pub struct SearchState {
    /// What was asked.
    pub query: String,
    /// Only in this conversation, when set.
    pub conv: Option<Conversation>,
    /// The answer is on its way.
    pub busy: bool,
    /// The hits, best first.
    pub hits: Vec<SearchHit>,
    /// More hits follow the ones shown.
    pub more: bool,
    /// Why the search failed (a query the server cannot read, or the
    /// connection).
    pub error: Option<String>,
}

/// A message to scroll to once it is loaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Jump {
    /// Its conversation.
    pub conv: Conversation,
    /// The message.
    pub seq: Seq,
    /// Older pages asked for so far to reach it.
    pub pages: u32,
}

impl State {
    /// Asks the server for messages matching `query`: everywhere, or only
    /// in the open conversation when `here`.
    pub(super) fn search(&mut self, query: &str, here: bool) -> Vec<Action> {
        let conv = here.then(|| self.selected.clone());
        let mut s = SearchState {
            query: query.trim().to_owned(),
            conv: conv.clone(),
            ..SearchState::default()
        };
        let parsed = SearchQuery::parse(s.query.clone());
        let actions = match parsed {
            Err(e) => {
                s.error = Some(e.message);
                Vec::new()
            }
            Ok(_) if self.link != Link::Online => {
                s.error = Some("Not connected: search needs the server.".into());
                Vec::new()
            }
            Ok(query) => {
                s.busy = true;
                vec![Action::Search(Search {
                    query,
                    conv,
                    from: None,
                    before: None,
                    after: None,
                    limit: Some(30),
                    offset: None,
                })]
            }
        };
        self.search = Some(s);
        actions
    }

    /// The server's answer to the last search.
    pub(super) fn on_search(
        &mut self,
        result: Result<chatus_client::protocol::search::SearchResults, String>,
    ) -> Vec<Action> {
        let Some(s) = &mut self.search else {
            return Vec::new();
        };
        s.busy = false;
        match result {
            Ok(r) => {
                s.hits = r.hits;
                s.more = r.more;
                s.error = None;
            }
            Err(e) => s.error = Some(e),
        }
        Vec::new()
    }

    /// Opens a hit: selects its conversation and scrolls to the message,
    /// loading older pages first when it is not loaded yet.
    pub(super) fn open_hit(&mut self, conv: Conversation, seq: Seq) -> Vec<Action> {
        let mut actions = self.select(&conv);
        self.jump = Some(Jump {
            conv,
            seq,
            pages: 0,
        });
        actions.extend(self.continue_jump());
        actions
    }

    /// While a jump's message is not loaded, asks for the next older page
    /// (after the newest page, which opening the conversation asked for).
    pub(super) fn continue_jump(&mut self) -> Vec<Action> {
        let Some(jump) = &mut self.jump else {
            return Vec::new();
        };
        if jump.conv != self.selected {
            self.jump = None;
            return Vec::new();
        }
        let Some(c) = self.convs.get(&jump.conv) else {
            return Vec::new();
        };
        if c.messages.contains_key(&jump.seq) || !c.history.requested || c.history.loading {
            return Vec::new();
        }
        let reachable = c.messages.keys().next().is_some_and(|s| *s > jump.seq);
        if !reachable || !c.history.more_older || jump.pages >= MAX_JUMP_PAGES {
            let seq = jump.seq;
            self.jump = None;
            self.notice(
                format!("Message {seq} is too far back to show here; scroll up to find it."),
                true,
            );
            return Vec::new();
        }
        jump.pages += 1;
        self.load_older()
    }
}
