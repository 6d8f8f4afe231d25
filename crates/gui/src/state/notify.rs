//! Desktop notifications: a direct message, or a message that mentions
//! us, arriving while the window is not focused (or shows another
//! conversation) raises one, unless its conversation is muted. Only live
//! messages do: those fetched while catching up after a reconnect are
//! counted as unread instead of raising a burst.

use chatus_client::protocol::Conversation;
use chatus_client::protocol::message::Message;

use super::State;
use crate::net::Action;

/// The most characters of a message a notification shows.
pub const NOTIFY_BODY_CHARS: usize = 200;

impl State {
    /// Tells the state whether the window has the keyboard focus.
    pub fn set_focused(&mut self, focused: bool) {
        self.focused = focused;
    }

    /// True when `conv` raises no notifications.
    pub fn is_muted(&self, conv: &Conversation) -> bool {
        self.muted.contains(conv)
    }

    /// Mutes `conv`, or unmutes it.
    pub(super) fn toggle_mute(&mut self, conv: Conversation) {
        if !self.muted.remove(&conv) {
            self.muted.insert(conv);
        }
    }

    /// The notification message `m` raises, if any.
    pub(super) fn notification(&self, m: &Message, live: bool) -> Option<Action> {
        if !live || self.is_me(&m.sender) || self.is_muted(&m.conv) {
            return None;
        }
        if self.focused && m.conv == self.selected {
            return None;
        }
        let body = m.body.as_ref()?;
        let summary = match &m.conv {
            Conversation::Peer(_) => m.sender.to_string(),
            Conversation::Room(room) if self.mentions_me(m) => {
                format!("{} in #{room}", m.sender)
            }
            Conversation::Room(_) => return None,
        };
        let text: String = body.as_str().chars().take(NOTIFY_BODY_CHARS).collect();
        let text = if text.len() < body.as_str().len() {
            format!("{text}…")
        } else {
            text
        };
        Some(Action::Notify {
            summary,
            body: text,
        })
    }
}
