//! The composer's rules: plain text is sent to the open conversation, and
//! a few IRC-style commands (`/join`, `/leave`, `/msg`, `/quit`, `//` for
//! a literal slash) become actions. Text written in reply or edit mode
//! (`ComposeMode`, from a message's context menu) answers a message or
//! replaces one's own text. Sent text waits in
//! [`State::pending`](super::State) until the server stores it.

use chatus_client::Client;
use chatus_client::protocol::{Body, Conversation, RoomName, Username};

use super::{ComposeMode, Intent, Pending, State};
use crate::net::Action;

impl State {
    pub(super) fn compose(&mut self, text: &str) -> Vec<Action> {
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
            other => {
                self.notice(
                    format!("Unknown command /{other}. Try /join, /leave, /msg or /quit."),
                    true,
                );
                Vec::new()
            }
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
