//! Byte budgets: how long things are on the wire, and trimming a list to
//! fit.
//!
//! A connection's outbox is capped (see [`crate::outbox`]); one reply or
//! one fan-out round may use a quarter of it, so that a client reading at a
//! healthy pace is never mistaken for a lagging one. Budgets must count
//! what is *sent*: JSON escaping makes a body of control characters six
//! times longer than its UTF-8, so [`escaped_len`] measures that.

use serde::Serialize;

/// The bytes `s` takes inside a JSON string as serde_json writes it (not
/// counting the quotes): `"`, `\` and the control characters with a short
/// escape (`\b \t \n \f \r`) take two; the other control characters
/// (U+0000–U+001F) take six (`\u00XX`); everything else its UTF-8 length.
/// One pass over the bytes, no allocation.
pub(crate) fn escaped_len(s: &str) -> usize {
    s.bytes()
        .map(|b| match b {
            b'"' | b'\\' | 0x08 | 0x09 | 0x0a | 0x0c | 0x0d => 2,
            0x00..=0x1f => 6,
            _ => 1,
        })
        .sum()
}

/// The bytes `value` takes encoded as JSON, counted without building it.
pub(crate) fn encoded_len(value: &impl Serialize) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    // Serialising protocol types cannot fail; a failure would only make
    // the count smaller, and nothing is sent from it.
    let _ = serde_json::to_writer(&mut count, value);
    count.0
}

/// Room for a list reply's envelope (type, id, the list's own field name,
/// `truncated`, the WebSocket header) besides its items.
const ENVELOPE: usize = 128;

/// Trims `items` so that a reply carrying them stays within `budget`
/// bytes. Items are kept by `rank` (lower first; ties in list order) for as
/// long as they fit; those kept stay in their original order. Returns
/// whether any item was dropped.
pub(crate) fn keep_within<T: Serialize>(
    items: &mut Vec<T>,
    budget: usize,
    rank: impl Fn(&T) -> u8,
) -> bool {
    let room = budget.saturating_sub(ENVELOPE);
    // Each item plus its separating comma.
    let sizes: Vec<usize> = items.iter().map(|i| encoded_len(i) + 1).collect();
    if sizes.iter().sum::<usize>() <= room {
        return false;
    }
    let mut order: Vec<usize> = (0..items.len()).collect();
    order.sort_by_key(|&i| rank(&items[i]));
    let mut keep = vec![false; items.len()];
    let mut total = 0;
    for i in order {
        total += sizes[i];
        if total > room {
            break;
        }
        keep[i] = true;
    }
    let mut flags = keep.into_iter();
    items.retain(|_| flags.next().unwrap_or(false));
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaped_len_is_what_serde_json_writes() {
        let mut samples: Vec<String> = (0u8..0x80).map(|b| char::from(b).to_string()).collect();
        samples.extend(
            [
                "",
                "plain",
                "é",
                "日本",
                "🦀",
                "\u{7f}",
                "\u{2028}",
                "a\"b\\c\u{1}\n",
            ]
            .map(String::from),
        );
        samples.push("\u{1}".repeat(1000));
        for s in samples {
            let written = serde_json::to_string(&s).unwrap().len() - 2;
            assert_eq!(escaped_len(&s), written, "{s:?}");
        }
        assert_eq!(escaped_len("\u{1}"), 6);
        assert_eq!(escaped_len("\n"), 2);
    }

    #[test]
    fn encoded_len_counts_the_json() {
        let v = serde_json::json!({"a": [1, 2, 3], "b": "x\u{1}"});
        assert_eq!(encoded_len(&v), v.to_string().len());
    }

    #[test]
    fn lists_keep_the_best_ranked_in_their_order() {
        // Ten strings of 10 bytes each as JSON ("12345678" plus quotes),
        // eleven with the comma.
        let all: Vec<String> = (0..10).map(|i| format!("item{i:04}")).collect();
        let mut v = all.clone();
        assert!(!keep_within(&mut v, ENVELOPE + 110, |_| 0));
        assert_eq!(v, all, "a list that fits is untouched");

        let mut v = all.clone();
        assert!(keep_within(&mut v, ENVELOPE + 33, |_| 0));
        assert_eq!(v, ["item0000", "item0001", "item0002"]);

        // Odd items first, then even ones in list order; what is kept
        // stays in list order.
        let mut v = all.clone();
        let odd_first = |s: &String| u8::from(s.ends_with(['0', '2', '4', '6', '8']));
        assert!(keep_within(&mut v, ENVELOPE + 66, odd_first));
        assert_eq!(
            v,
            [
                "item0000", "item0001", "item0003", "item0005", "item0007", "item0009"
            ]
        );
    }
}
