//! Mentions: `@name` in a message's text.
//!
//! A mention is a convention of the text, not a field: the server stores
//! and relays the text as written, and each client finds the mentions of
//! its own user in it (so they work the same in encrypted conversations,
//! whose text the server never sees). The rules, shared by the CLI and the
//! desktop app so that both highlight the same messages:
//!
//! - `@` starts a mention at the start of the text or after a character
//!   that cannot be part of a user name (`hi @bob`, `(@bob)`, but not
//!   `me@bob.example`);
//! - the name is the longest run of user-name characters after it, with
//!   trailing `.` and `-` left out (`@bob.` at the end of a sentence names
//!   `bob`);
//! - names compare without case, as accounts do (`@Bob` names `bob`).

use crate::ids::{Username, is_name_char};

/// The user names mentioned in `text`, in order, as written (not checked
/// against any account; a run too long to be a name is left out).
pub fn mentioned(text: &str) -> impl Iterator<Item = &str> {
    let mut prev: Option<char> = None;
    text.char_indices().filter_map(move |(i, c)| {
        let starts = c == '@' && !prev.is_some_and(is_name_char);
        prev = Some(c);
        if !starts {
            return None;
        }
        let rest = &text[i + 1..];
        let end = rest.find(|c: char| !is_name_char(c)).unwrap_or(rest.len());
        let name = rest[..end].trim_end_matches(['.', '-']);
        Username::parse(name).is_ok().then_some(name)
    })
}

/// True when `text` mentions `user`.
pub fn mentions(text: &str, user: &Username) -> bool {
    mentioned(text).any(|name| name.eq_ignore_ascii_case(user.as_str()))
}

/// The mention being typed at the end of `text`, for completion: the byte
/// offset of its `@` and the part of the name typed so far (possibly
/// empty). `None` when the text does not end in one.
pub fn partial_mention(text: &str) -> Option<(usize, &str)> {
    let start = text
        .char_indices()
        .rev()
        .find(|(_, c)| !is_name_char(*c))
        .filter(|(_, c)| *c == '@')?
        .0;
    let before = text[..start].chars().next_back();
    if before.is_some_and(is_name_char) {
        return None;
    }
    Some((start, &text[start + 1..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(s: &str) -> Username {
        Username::parse(s).unwrap()
    }

    #[test]
    fn mentions_follow_the_rules() {
        let bob = user("bob");
        assert!(mentions("@bob hi", &bob));
        assert!(mentions("hi @Bob.", &bob));
        assert!(mentions("(@bob) and @carol", &bob));
        assert!(mentions("ask @bob-", &bob));
        assert!(!mentions("mail me@bob", &bob));
        assert!(!mentions("@bobby", &bob));
        assert!(!mentions("bob", &bob));
        assert!(!mentions("@ bob", &bob));
        assert!(mentions("@bob.smith or @bob", &bob));
        assert!(mentions("@bob.smith", &user("bob.smith")));
        let names: Vec<&str> = mentioned("@a @@b x@c @d!").collect();
        assert_eq!(names, ["a", "b", "d"]);
        // Not a name: too long.
        assert_eq!(mentioned(&format!("@{}", "x".repeat(40))).count(), 0);
    }

    #[test]
    fn the_mention_being_typed_is_found() {
        assert_eq!(partial_mention("hi @bo"), Some((3, "bo")));
        assert_eq!(partial_mention("@"), Some((0, "")));
        assert_eq!(partial_mention("hi @bo "), None);
        assert_eq!(partial_mention("mail me@bo"), None);
        assert_eq!(partial_mention("plain"), None);
        assert_eq!(partial_mention("é@b"), Some((2, "b")));
    }
}
