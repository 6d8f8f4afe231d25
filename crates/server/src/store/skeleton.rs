//! The confusable skeleton of a user name: the key under which names must
//! also be unique, so that `aIice` or `a1ice` cannot register beside
//! `alice`.
//!
//! Unicode TR39 maps each character to a prototype that looks like it
//! (`I` and `1` to `l`, `0` to `O`, `m` to `rn`); two strings look alike
//! when their skeletons are equal. The skeleton is case-sensitive, and
//! names are not, so the key is the skeleton of the name *as registered*,
//! then lower-cased: `aIice`, `a1ice` and `AIice` all give `alice`, like
//! `alice` and `Alice`. `ALICE` gives `allce` (its `I` became `l` before
//! lower-casing); it is the same account as `alice` anyway, which the
//! case-folded name key catches.

use chatus_protocol::Username;

/// The key under which look-alike names collide.
pub(crate) fn name_skeleton(name: &Username) -> String {
    unicode_security::confusable_detection::skeleton(name.as_str())
        .flat_map(char::to_lowercase)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(s: &str) -> String {
        name_skeleton(&Username::parse(s).unwrap())
    }

    #[test]
    fn look_alikes_share_a_key() {
        // (name, name) pairs that must collide.
        let same: &[(&str, &str)] = &[
            ("alice", "aIice"),
            ("alice", "a1ice"),
            ("alice", "AIice"),
            ("alice", "Alice"),
            ("ALICE", "AL1CE"),
            ("ALICE", "ALlCE"),
            ("bob", "b0b"),
            ("bob", "BOB"),
            ("bob", "B0B"),
            ("mike", "rnike"),
            ("x.y-z_1", "x.y-z_l"),
        ];
        for (a, b) in same {
            assert_eq!(key(a), key(b), "{a} and {b} must collide");
        }
        // Pairs that must not.
        let different: &[(&str, &str)] = &[
            ("alice", "alicf"),
            ("alice", "alice2"),
            ("kim", "klm"),
            ("bob", "bobby"),
            ("a.b", "a-b"),
            ("a_b", "ab"),
        ];
        for (a, b) in different {
            assert_ne!(key(a), key(b), "{a} and {b} must not collide");
        }
    }

    #[test]
    fn keys_are_what_the_table_says() {
        let table: &[(&str, &str)] = &[
            ("alice", "alice"),
            ("aIice", "alice"),
            ("ALICE", "allce"),
            ("b0b", "bob"),
            ("m", "rn"),
            ("Ray_9.x-1", "ray_9.x-l"),
        ];
        for (name, want) in table {
            assert_eq!(key(name), *want, "{name}");
        }
    }
}
