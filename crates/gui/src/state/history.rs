//! Opening a conversation and loading its history: the newest page when it
//! is first opened, older pages on request, read markers, and what to do
//! when a page cannot be loaded.
//!
//! Pages are only asked for while connected: a request made while the
//! connection is down fails at once, and the newest page of the open
//! conversation is asked for again on every (re)connect until it arrives.

use chatus_client::protocol::history::HistoryPage;
use chatus_client::protocol::{Conversation, Seq};

use super::{Link, State};
use crate::net::Action;

impl State {
    /// Opens `conv`: loads its newest page (once), its members (rooms),
    /// and marks it read.
    pub(super) fn select(&mut self, conv: &Conversation) -> Vec<Action> {
        let mut actions = Vec::new();
        if self.selected != *conv {
            self.compose_mode = None;
            actions.extend(self.stop_typing());
        }
        self.selected = conv.clone();
        self.members = None;
        self.members_stale = false;
        self.convs.entry(conv.clone()).or_default();
        actions.extend(self.request_newest(conv));
        if let Conversation::Room(room) = &conv
            && self.link == Link::Online
        {
            actions.push(Action::Members(room.clone()));
        }
        if self.link == Link::Online {
            actions.push(Action::Receipts(conv.clone()));
        }
        // A direct conversation's header marks unverified devices.
        actions.extend(self.want_devices(conv));
        actions.extend(self.mark_read());
        actions
    }

    /// Asks for the newest page of `conv` unless it was asked for already
    /// or the connection is down (then the next `Connected` asks).
    fn request_newest(&mut self, conv: &Conversation) -> Vec<Action> {
        if self.link != Link::Online {
            return Vec::new();
        }
        let c = self.convs.entry(conv.clone()).or_default();
        if c.history.requested {
            return Vec::new();
        }
        c.history.requested = true;
        c.history.loading = true;
        vec![Action::History {
            conv: conv.clone(),
            before: None,
        }]
    }

    /// After a (re)connect: the open conversation's newest page, if it never
    /// arrived.
    pub(super) fn reload_selected(&mut self) -> Vec<Action> {
        let selected = self.selected.clone();
        if self
            .convs
            .get(&selected)
            .is_some_and(|c| c.history.requested)
        {
            return Vec::new();
        }
        self.select(&selected)
    }

    /// Marks the open conversation read up to its newest message.
    pub fn mark_read(&mut self) -> Vec<Action> {
        let conv = self.selected.clone();
        let Some(c) = self.convs.get_mut(&conv) else {
            return Vec::new();
        };
        let newest = c
            .messages
            .keys()
            .next_back()
            .copied()
            .unwrap_or(Seq(0))
            .max(c.last_seq);
        c.unread = 0;
        c.mentions = 0;
        if newest > c.read_seq {
            c.read_seq = newest;
            let receipt = self.share.receipt(&conv);
            return vec![Action::MarkRead(conv, newest, receipt)];
        }
        Vec::new()
    }

    pub(super) fn load_older(&mut self) -> Vec<Action> {
        if self.link != Link::Online {
            // It would fail at once; the feed asks again when scrolled.
            return Vec::new();
        }
        let conv = self.selected.clone();
        let Some(c) = self.convs.get_mut(&conv) else {
            return Vec::new();
        };
        if c.history.loading || !c.history.more_older {
            return Vec::new();
        }
        let Some(oldest) = c.messages.keys().next().copied() else {
            return Vec::new();
        };
        c.history.loading = true;
        vec![Action::History {
            conv,
            before: Some(oldest),
        }]
    }

    /// Merges a page of history.
    pub(super) fn on_history(
        &mut self,
        conv: Conversation,
        page: HistoryPage,
        older: bool,
    ) -> Vec<Action> {
        self.respell(&page.conv);
        // The page names its senders' display names as they are now (a
        // direct conversation has no member list to learn them from).
        for m in &page.messages {
            let name = page.display_names.get(&m.sender).cloned();
            self.learn_display_name(&m.sender, name);
        }
        let c = self.convs.entry(conv).or_default();
        c.history.loading = false;
        // Does this page reach down to the oldest message held? An older
        // page always does; a newest page may not, when more than a page
        // arrived live before the conversation was opened.
        let reaches_oldest = older
            || c.messages.is_empty()
            || page
                .messages
                .first()
                .is_some_and(|m| Some(&m.seq) <= c.messages.keys().next());
        for m in page.messages {
            c.last_seq = c.last_seq.max(m.seq);
            c.messages.insert(m.seq, m);
        }
        for change in page.changes {
            if let chatus_client::protocol::Change::Moderated(m) = change {
                c.moderation.insert(m.seq, m);
            }
        }
        // Seqs are dense per conversation (1, 2, 3, …), so anything held
        // above 1 has something older; the server's `more` decides when the
        // page is the one that reaches the bottom of what we hold.
        c.history.more_older = if reaches_oldest {
            page.more
        } else {
            c.messages.keys().next().is_some_and(|s| s.0 > 1)
        };
        let mut actions = if older { Vec::new() } else { self.mark_read() };
        actions.extend(self.continue_jump());
        actions
    }

    /// A page could not be loaded: clear the flags so it is asked for
    /// again (the newest page on the next connect or opening; an older one
    /// when the feed is at the top again).
    pub(super) fn on_history_failed(
        &mut self,
        conv: &Conversation,
        older: bool,
        lost: bool,
        error: &str,
    ) -> Vec<Action> {
        if let Some(c) = self.convs.get_mut(conv) {
            c.history.loading = false;
            if !older {
                c.history.requested = false;
            }
        }
        if !lost {
            self.notice(format!("Could not load history: {error}"), true);
            return Vec::new();
        }
        // The connection dropped under the request. The status line says
        // so; if it is already back (the `Connected` overtook this answer),
        // ask again now rather than wait for the next reconnect.
        if !older && *conv == self.selected && self.link == Link::Online {
            return self.reload_selected();
        }
        Vec::new()
    }
}
