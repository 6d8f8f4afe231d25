//! Tab completion in `chat`: `/commands` at the start of a line, room
//! names after `/join`, `/create` and `/leave` or after `#`, and user
//! names (after `/msg`, after `@`, or any word in a message, IRC style).
//!
//! The names are those the client has heard of: people online or in the
//! current room, senders, and rooms listed or joined. [`Names`] is shared
//! between the chat loop, which adds to it, and the line editor's thread,
//! which reads it on Tab.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use reedline::{Completer, CompletionResult, Span, Suggestion};

/// The commands `chat` understands, as completed.
pub const COMMANDS: &[&str] = &[
    "/ban",
    "/create",
    "/delete",
    "/deop",
    "/edit",
    "/help",
    "/invite-only",
    "/join",
    "/kick",
    "/leave",
    "/msg",
    "/mute",
    "/nick",
    "/op",
    "/quit",
    "/react",
    "/reply",
    "/rooms",
    "/search",
    "/topic",
    "/unban",
    "/unmute",
    "/versions",
    "/who",
];

/// Names known for completion, by lower-case key, in their own spelling.
#[derive(Debug, Default)]
pub struct Names {
    users: BTreeMap<String, String>,
    rooms: BTreeMap<String, String>,
}

/// [`Names`] shared with the editor thread.
pub type SharedNames = Arc<Mutex<Names>>;

impl Names {
    /// Learns a user name.
    pub fn user(&mut self, name: &str) {
        self.users
            .entry(name.to_ascii_lowercase())
            .or_insert_with(|| name.to_owned());
    }

    /// Learns a room name.
    pub fn room(&mut self, name: &str) {
        self.rooms
            .entry(name.to_ascii_lowercase())
            .or_insert_with(|| name.to_owned());
    }

    /// Forgets a room (it is no longer visible).
    pub fn forget_room(&mut self, name: &str) {
        self.rooms.remove(&name.to_ascii_lowercase());
    }
}

/// Learns names into a shared set (a poisoned lock only loses completions).
pub fn learn(names: &SharedNames, f: impl FnOnce(&mut Names)) {
    if let Ok(mut n) = names.lock() {
        f(&mut n);
    }
}

fn matching<'a>(
    candidates: impl Iterator<Item = &'a String>,
    typed: &str,
    prefix: &str,
) -> Vec<String> {
    let typed = typed.to_ascii_lowercase();
    candidates
        .filter(|c| c.to_ascii_lowercase().starts_with(&typed))
        .map(|c| format!("{prefix}{c}"))
        .collect()
}

/// What Tab offers at `pos` in `line`: where the replaced word starts, and
/// the candidates for it.
pub fn suggest(names: &Names, line: &str, pos: usize) -> (usize, Vec<String>) {
    let Some(before) = line.get(..pos) else {
        return (pos, Vec::new());
    };
    let start = before.rfind(char::is_whitespace).map_or(0, |i| {
        i + before[i..].chars().next().map_or(1, char::len_utf8)
    });
    let word = &before[start..];
    let first = before.split_whitespace().next().unwrap_or("");
    let is_first = before[..start].trim().is_empty();
    let candidates = if is_first && word.starts_with('/') {
        matching(
            COMMANDS
                .iter()
                .map(|c| c.to_string())
                .collect::<Vec<_>>()
                .iter(),
            word,
            "",
        )
    } else if let Some(room) = word.strip_prefix('#') {
        matching(names.rooms.values(), room, "#")
    } else if let Some(user) = word.strip_prefix('@') {
        matching(names.users.values(), user, "@")
    } else if matches!(first, "/join" | "/j" | "/create" | "/leave" | "/part") {
        matching(names.rooms.values(), word, "")
    } else if word.is_empty() && !matches!(first, "/msg" | "/m") {
        Vec::new()
    } else {
        matching(names.users.values(), word, "")
    };
    (start, candidates)
}

/// The line editor's completer over shared names.
pub struct ChatCompleter(pub SharedNames);

impl Completer for ChatCompleter {
    fn complete(&mut self, line: &str, pos: usize) -> CompletionResult {
        let Ok(names) = self.0.lock() else {
            return CompletionResult::fresh(Vec::new());
        };
        let (start, words) = suggest(&names, line, pos);
        let suggestions: Vec<Suggestion> = words
            .into_iter()
            .map(|value| Suggestion {
                value,
                span: Span {
                    start: start.min(pos),
                    end: pos,
                },
                append_whitespace: true,
                ..Suggestion::default()
            })
            .collect();
        CompletionResult::fresh(suggestions)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names() -> Names {
        let mut n = Names::default();
        for u in ["alice", "Albert", "bob"] {
            n.user(u);
        }
        for r in ["lobby", "dev", "design"] {
            n.room(r);
        }
        n
    }

    #[test]
    fn completes_commands_rooms_and_people() {
        let n = names();
        let cases: &[(&str, usize, Vec<&str>)] = &[
            ("/jo", 0, vec!["/join"]),
            ("/", 0, COMMANDS.to_vec()),
            ("/join d", 6, vec!["design", "dev"]),
            ("/create de", 8, vec!["design", "dev"]),
            ("see #lo", 4, vec!["#lobby"]),
            ("/msg a", 5, vec!["Albert", "alice"]),
            ("/msg ", 5, vec!["Albert", "alice", "bob"]),
            ("hi AL", 3, vec!["Albert", "alice"]),
            ("ping @b", 5, vec!["@bob"]),
            // Nothing typed in a message: nothing offered.
            ("hello ", 6, vec![]),
            // A command word elsewhere is not a command.
            ("say /jo", 4, vec![]),
        ];
        for (line, start, want) in cases {
            let (s, got) = suggest(&n, line, line.len());
            assert_eq!(
                (s, got.as_slice()),
                (
                    *start,
                    want.iter()
                        .map(|w| w.to_string())
                        .collect::<Vec<_>>()
                        .as_slice()
                ),
                "{line:?}"
            );
        }
    }

    #[test]
    fn completes_at_the_cursor_not_the_end() {
        let n = names();
        let (start, got) = suggest(&n, "/msg b later", 6);
        assert_eq!((start, got), (5, vec!["bob".to_owned()]));
    }
}
