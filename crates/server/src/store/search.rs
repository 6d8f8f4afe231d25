//! The search query as both backends run it: [`Query`], parsed from the
//! user's text by [`Query::parse`] (never passed on raw), and rendered as
//! an FTS5 expression ([`Query::fts5`]) or a PostgreSQL `tsquery` built
//! from function calls over bound parameters ([`Query::tsquery`]).
//!
//! The language: words (ANDed), `"phrases"`, a trailing `*` for a prefix,
//! `-word` or `-"phrase"` to exclude, and `OR` between groups. Limits keep
//! a query cheap: at most [`MAX_TERMS`] terms, prefixes of at least
//! [`MIN_PREFIX`] letters or digits, and each group needing one term that
//! is not excluded. And what the store is asked ([`SearchSpec`]) and
//! returns ([`SearchRow`]).

use chatus_protocol::{Conversation, Seq, Timestamp, Username};

use super::{ConvId, UserId};

/// The most terms (words and phrases, excluded ones included) in a query.
pub const MAX_TERMS: usize = 12;

/// The fewest letters or digits before a prefix's `*`: `a*` would expand
/// to most of the index.
pub const MIN_PREFIX: usize = 2;

/// Why a query cannot be run; the message is for the user.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct BadQuery(pub &'static str);

/// One word or phrase.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Term {
    /// Its words, separated by spaces, as typed (no quote inside).
    pub text: String,
    /// Whether the last word is a prefix.
    pub prefix: bool,
}

/// Terms that must all match, and terms that must not.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Group {
    /// Every one must match (at least one).
    pub all: Vec<Term>,
    /// None may match.
    pub none: Vec<Term>,
}

/// A parsed query: any one of its groups matches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    /// The alternatives.
    pub groups: Vec<Group>,
}

impl Query {
    /// Parses the user's text.
    pub fn parse(text: &str) -> Result<Query, BadQuery> {
        let mut groups = vec![Group::default()];
        let mut terms = 0;
        let mut chars = text.chars().peekable();
        loop {
            while chars.next_if(|c| c.is_whitespace()).is_some() {}
            let Some(&first) = chars.peek() else { break };
            let negated = first == '-';
            if negated {
                chars.next();
            }
            let (raw, quoted) = if chars.peek() == Some(&'"') {
                chars.next();
                let mut s = String::new();
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some(c) => s.push(c),
                        None => return Err(BadQuery("A quote is not closed.")),
                    }
                }
                (s, true)
            } else {
                let mut s = String::new();
                while let Some(c) = chars.next_if(|c| !c.is_whitespace() && *c != '"') {
                    s.push(c);
                }
                (s, false)
            };
            if !quoted && !negated && raw == "OR" {
                groups.push(Group::default());
                continue;
            }
            let mut prefix = false;
            if chars.peek() == Some(&'*') && quoted {
                chars.next();
                prefix = true;
            }
            let mut raw = raw;
            if !quoted && raw.ends_with('*') {
                raw = raw.trim_end_matches('*').to_owned();
                prefix = true;
            }
            // Only letters and digits make words; everything else separates
            // them, as the tokenizers do.
            let words: Vec<String> = raw
                .split(|c: char| !c.is_alphanumeric())
                .filter(|w| !w.is_empty())
                .map(str::to_owned)
                .collect();
            let Some(last) = words.last() else {
                if prefix {
                    return Err(BadQuery("A * must follow a word."));
                }
                continue;
            };
            if prefix && last.chars().count() < MIN_PREFIX {
                return Err(BadQuery(
                    "A prefix needs at least two letters before the *.",
                ));
            }
            terms += 1;
            if terms > MAX_TERMS {
                return Err(BadQuery("A query may have at most 12 words and phrases."));
            }
            let term = Term {
                text: words.join(" "),
                prefix,
            };
            let group = groups.last_mut().ok_or(BadQuery("Nothing to look for."))?;
            if negated {
                group.none.push(term);
            } else {
                group.all.push(term);
            }
        }
        if groups.iter().all(|g| g.all.is_empty() && g.none.is_empty()) {
            return Err(BadQuery("Nothing to look for: give a word."));
        }
        if groups.iter().any(|g| g.all.is_empty()) {
            return Err(BadQuery(
                "Each side of OR needs a word to look for, not only words to exclude.",
            ));
        }
        Ok(Query { groups })
    }

    /// Whether any term is a prefix (`word*`), wanted or excluded.
    pub fn has_prefix(&self) -> bool {
        self.groups
            .iter()
            .flat_map(|g| g.all.iter().chain(&g.none))
            .any(|t| t.prefix)
    }

    /// The FTS5 expression: every term a quoted string, so nothing the
    /// user typed is read as FTS5 syntax.
    pub fn fts5(&self) -> String {
        let term = |t: &Term| {
            format!(
                "\"{}\"{}",
                t.text.replace('"', "\"\""),
                if t.prefix { "*" } else { "" }
            )
        };
        self.groups
            .iter()
            .map(|g| {
                let mut e = format!(
                    "({})",
                    g.all.iter().map(term).collect::<Vec<_>>().join(" AND ")
                );
                for n in &g.none {
                    e = format!("({e} NOT {})", term(n));
                }
                e
            })
            .collect::<Vec<_>>()
            .join(" OR ")
    }

    /// A PostgreSQL `tsquery` expression whose text is only operators and
    /// `$n` placeholders, numbered from `first`, with the values to bind
    /// in order: a phrase through `phraseto_tsquery`, a prefix word
    /// (letters and digits only) through `to_tsquery` with `:*`.
    pub fn tsquery(&self, first: usize) -> (String, Vec<String>) {
        let mut values = Vec::new();
        let mut term = |t: &Term| -> String {
            if !t.prefix {
                values.push(t.text.clone());
                return format!("phraseto_tsquery('english', ${})", first + values.len() - 1);
            }
            let (head, last) = t.text.rsplit_once(' ').unwrap_or(("", t.text.as_str()));
            // Only letters and digits reach here: nothing for to_tsquery's
            // own syntax.
            values.push(format!("{last}:*"));
            let p = first + values.len() - 1;
            if head.is_empty() {
                return format!("to_tsquery('english', ${p})");
            }
            values.push(head.to_owned());
            format!(
                "(phraseto_tsquery('english', ${}) <-> to_tsquery('english', ${p}))",
                p + 1
            )
        };
        let mut groups = Vec::new();
        for g in &self.groups {
            let all: Vec<String> = g.all.iter().map(&mut term).collect();
            let mut e = format!("({})", all.join(" && "));
            for n in &g.none {
                e = format!("({e} && !!{})", term(n));
            }
            groups.push(e);
        }
        (groups.join(" || "), values)
    }
}

/// How long one search may run in the database before it is stopped.
pub const SEARCH_TIME_LIMIT: std::time::Duration = std::time::Duration::from_millis(200);

/// What to search for, as the store runs it.
#[derive(Debug, Clone)]
pub struct SearchSpec {
    /// Who asks: only their rooms (member now) and direct conversations.
    pub asker: UserId,
    /// The parsed query.
    pub query: Query,
    /// Only this conversation.
    pub conv: Option<ConvId>,
    /// Only messages by this user.
    pub from: Option<UserId>,
    /// Only messages sent before this time.
    pub before: Option<Timestamp>,
    /// Only messages sent after this time.
    pub after: Option<Timestamp>,
    /// Most hits.
    pub limit: u32,
    /// Hits to skip.
    pub offset: u32,
    /// Ranking bound: when at most this many indexed messages match (in
    /// the whole index, or in `conv`), every match is ranked (bm25 on
    /// SQLite, `ts_rank` on PostgreSQL) and the page is the best; when
    /// more match, the page is the newest matches instead, read newest
    /// first from each conversation, so that a common word costs the page
    /// and not every match. The server's `search_ranked_max`.
    pub ranked_max: u32,
}

/// One message found, as the store returns it.
#[derive(Debug, Clone)]
pub struct SearchRow {
    /// Its conversation, as the asker names it.
    pub conv: Conversation,
    /// Its position.
    pub seq: Seq,
    /// Its sender.
    pub sender: Username,
    /// When it was sent.
    pub time: Timestamp,
    /// Its current text.
    pub body: String,
    /// The passage around the matches, each match between
    /// [`MARK_START`] and [`MARK_END`].
    pub snippet: String,
}

/// Opens a match in a stored snippet.
pub const MARK_START: char = '\u{1}';
/// Closes a match in a stored snippet.
pub const MARK_END: char = '\u{2}';

#[cfg(test)]
mod tests {
    use super::*;

    fn fts(q: &str) -> String {
        Query::parse(q).unwrap().fts5()
    }

    #[test]
    fn words_phrases_prefixes_and_exclusions() {
        assert_eq!(fts("run fast"), r#"("run" AND "fast")"#);
        assert_eq!(fts(r#""big deal" dep*"#), r#"("big deal" AND "dep"*)"#);
        assert_eq!(fts("a -b -\"c d\""), r#"((("a") NOT "b") NOT "c d")"#);
        assert_eq!(fts("a OR b c"), r#"("a") OR ("b" AND "c")"#);
    }

    #[test]
    fn syntax_of_fts5_is_only_text() {
        assert_eq!(
            fts("NEAR(a b) AND col:x ^y"),
            r#"("NEAR a" AND "b" AND "AND" AND "col x" AND "y")"#
        );
        assert_eq!(fts("it's"), r#"("it s")"#);
        assert_eq!(fts("\"ab\"*"), r#"("ab"*)"#);
    }

    #[test]
    fn bad_queries_are_refused() {
        for q in ["\"open", "-a", "a OR -b", "OR", "a*", "*", "!!!", "x OR"] {
            assert!(Query::parse(q).is_err(), "{q}");
        }
        let many = ["w"; MAX_TERMS + 1].join(" ");
        assert!(Query::parse(&many).is_err());
    }
}
