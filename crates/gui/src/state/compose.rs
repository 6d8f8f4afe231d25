//! The composer's rules: plain text is sent to the open conversation, and
//! a few IRC-style commands (`/join`, `/leave`, `/msg`, `/quit`, `//` for
//! a literal slash) become actions. Text written in reply or edit mode
//! (`ComposeMode`, from a message's context menu) answers a message or
//! replaces one's own text. Sent text waits in
//! [`State::pending`](super::State) until the server stores it.
//!
//! While the composer holds text we say we are typing, renewed every
//! `TYPING_RENEW`; emptying it, sending, or opening another
//! conversation ends that. `@` completion offers the names of people seen
//! in the open conversation.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use chatus_client::Client;
use chatus_client::moderation::command;
use chatus_client::protocol::{Body, Conversation, RoomName, Username};

use super::{ComposeMode, Intent, Link, Pending, State};
use crate::net::Action;

/// How often `typing: true` is said again while the person keeps typing
/// (the server lets it lapse after about five seconds).
pub const TYPING_RENEW: Duration = Duration::from_secs(3);

/// The most names `@` completion offers.
pub const MAX_COMPLETIONS: usize = 6;

impl State {
    /// The composer changed: says we are typing in the open conversation
    /// (at most once per `TYPING_RENEW`), or that we stopped.
    pub(super) fn typing(&mut self, on: bool) -> Vec<Action> {
        if !on || self.link != Link::Online {
            return self.stop_typing();
        }
        let conv = self.selected.clone();
        let mut actions = Vec::new();
        match &self.typing_sent {
            Some((c, at)) if *c == conv && at.elapsed() < TYPING_RENEW => return actions,
            Some((c, _)) if *c != conv => actions.extend(self.stop_typing()),
            _ => {}
        }
        self.typing_sent = Some((conv.clone(), Instant::now()));
        actions.push(Action::Typing(conv, true));
        actions
    }

    /// Says we stopped typing, if we said we were.
    pub(super) fn stop_typing(&mut self) -> Vec<Action> {
        match self.typing_sent.take() {
            Some((conv, _)) if self.link == Link::Online => vec![Action::Typing(conv, false)],
            _ => Vec::new(),
        }
    }

    /// Names to complete the `@` mention being typed with: people seen in
    /// the open conversation (its members when loaded, senders of the
    /// messages shown, the other person of a direct conversation) and
    /// those online, whose names start with `prefix` (ignoring case),
    /// ourselves left out; sorted, at most
    /// `MAX_COMPLETIONS`.
    pub fn mention_candidates(&self, prefix: &str) -> Vec<Username> {
        let mut seen: BTreeMap<String, &Username> = BTreeMap::new();
        let here = &self.selected;
        let members = self
            .members
            .iter()
            .filter(|(room, _)| *here == Conversation::Room(room.clone()))
            .flat_map(|(_, m)| m.iter().map(|m| &m.user));
        let senders = self
            .convs
            .get(here)
            .into_iter()
            .flat_map(|c| c.messages.values().map(|m| &m.sender));
        let peer = match here {
            Conversation::Peer(p) => Some(p),
            Conversation::Room(_) => None,
        };
        for u in members.chain(senders).chain(peer).chain(self.online.iter()) {
            seen.entry(u.key()).or_insert(u);
        }
        let prefix = prefix.to_ascii_lowercase();
        seen.into_iter()
            .filter(|(key, u)| key.starts_with(&prefix) && !self.is_me(u))
            .take(MAX_COMPLETIONS)
            .map(|(_, u)| u.clone())
            .collect()
    }

    pub(super) fn compose(&mut self, text: &str) -> Vec<Action> {
        let trimmed = text.trim();
        let message = !trimmed.starts_with('/') || trimmed.starts_with("//");
        if message && !matches!(self.compose_mode, Some(ComposeMode::Edit(_))) {
            // Storing a message ends typing on the server.
            self.typing_sent = None;
            return self.compose_text(text);
        }
        let mut actions = self.stop_typing();
        actions.extend(self.compose_text(text));
        actions
    }

    fn compose_text(&mut self, text: &str) -> Vec<Action> {
        let trimmed = text.trim();
        if trimmed.is_empty() {
            return Vec::new();
        }
        if trimmed == "quit" || trimmed == "/quit" {
            return self.intent(Intent::Quit);
        }
        if let Some(rest) = trimmed.strip_prefix("//") {
            return self.send(self.selected.clone(), format!("/{rest}"));
        }
        let Some(cmd) = trimmed.strip_prefix('/') else {
            return match self.compose_mode.take() {
                Some(ComposeMode::Edit(seq)) => match Body::parse(text.trim_end()) {
                    Ok(body) => vec![Action::Edit {
                        conv: self.selected.clone(),
                        seq,
                        body,
                    }],
                    Err(_) => Vec::new(),
                },
                Some(ComposeMode::Reply(seq)) => {
                    let mut actions = self.send(self.selected.clone(), text.trim_end().to_owned());
                    for a in &mut actions {
                        if let Action::Send { reply_to, .. } = a {
                            *reply_to = Some(seq);
                        }
                    }
                    actions
                }
                None => self.send(self.selected.clone(), text.trim_end().to_owned()),
            };
        };
        let (name, rest) = cmd.split_once(char::is_whitespace).unwrap_or((cmd, ""));
        let rest = rest.trim();
        match name {
            "join" | "j" => match RoomName::parse(rest.trim_start_matches('#')) {
                Ok(room) => vec![Action::Join(room)],
                Err(e) => {
                    self.notice(format!("/join ROOM: {}", e.message), true);
                    Vec::new()
                }
            },
            "leave" | "part" => match &self.selected {
                Conversation::Room(r) => {
                    let r = r.clone();
                    self.intent(Intent::Leave(r))
                }
                Conversation::Peer(_) => {
                    self.notice("/leave works in rooms.", true);
                    Vec::new()
                }
            },
            "msg" | "m" => {
                let parsed = rest.split_once(char::is_whitespace).map(|(u, t)| {
                    (
                        Username::parse(u.trim_start_matches('@')),
                        t.trim().to_owned(),
                    )
                });
                match parsed {
                    Some((Ok(user), body)) if !body.is_empty() => {
                        let conv = Conversation::Peer(user);
                        let mut actions = self.select(&conv);
                        actions.extend(self.send(conv, body));
                        actions
                    }
                    _ => {
                        self.notice("Usage: /msg USER TEXT", true);
                        Vec::new()
                    }
                }
            }
            other => match command::parse(other, rest) {
                Some(Ok(cmd)) => self.moderate_typed(cmd),
                Some(Err(usage)) => {
                    self.notice(usage, true);
                    Vec::new()
                }
                None => {
                    self.notice(
                        format!(
                            "Unknown command /{other}. Try /join, /leave, /msg, /topic, /kick, /ban or /quit."
                        ),
                        true,
                    );
                    Vec::new()
                }
            },
        }
    }

    fn send(&mut self, conv: Conversation, text: String) -> Vec<Action> {
        let body = match Body::parse(text) {
            Ok(b) => b,
            Err(_) => return Vec::new(),
        };
        let client_id = Client::new_client_id();
        self.pending.push(Pending {
            client_id: client_id.clone(),
            conv: conv.clone(),
            body: body.to_string(),
            failed: None,
        });
        vec![Action::Send {
            conv,
            body,
            client_id,
            reply_to: None,
        }]
    }
}
