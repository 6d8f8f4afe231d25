//! Searching everywhere the user can read, encrypted conversations
//! included: [`Client::search_all`].
//!
//! The server's full-text index never sees the text of an end-to-end
//! encrypted conversation (it stores ciphertext), so for those the client
//! searches itself: it pages back through the conversation's history (the
//! newest [`LOCAL_SEARCH_DEPTH`] messages), decrypts each page with this
//! device's keys, and matches the query against the plaintext. The hits
//! are merged with the server's, newest first, each marked
//! [`Hit::on_device`] when it was found here.
//!
//! The query is the server's language where it makes sense without an
//! index: words (all must appear, as whole words, ignoring case),
//! `"phrases"` (consecutive words), `prefix*`, `-word` to exclude and `OR`
//! between groups. Words are not stemmed (`running` does not find `run`,
//! `run*` does).

use std::time::Duration;

use chatus_protocol::history::Page;
use chatus_protocol::message::Message;
use chatus_protocol::search::{MAX_SEARCH_LIMIT, Search, SearchHit};
use chatus_protocol::{Conversation, ErrorCode, Seq};

use crate::e2ee::conv_key;
use crate::error::Error;
use crate::handle::Client;

/// How many of the newest messages of each encrypted conversation are
/// searched on the device.
pub const LOCAL_SEARCH_DEPTH: usize = 5000;

/// Messages asked for per history page while searching (the server may
/// give fewer).
const PAGE: u32 = 200;

/// The longest snippet made on the device, in bytes (before the `…`s).
const SNIPPET_BYTES: usize = 160;

/// How many times a page asked for while the user's request budget is
/// spent is asked for again (after the wait the server names).
const RATE_RETRIES: u32 = 5;

/// One message found by [`Client::search_all`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hit {
    /// The message, its snippet and marks as the server gives them.
    pub hit: SearchHit,
    /// True when this device found it, in an encrypted conversation's
    /// decrypted history; false for the server's hits.
    pub on_device: bool,
}

/// What [`Client::search_all`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Found {
    /// The hits, newest first, at most the search's `limit`.
    pub hits: Vec<Hit>,
    /// More hits matched than `limit` (or the server has more).
    pub more: bool,
    /// Encrypted conversations with more history than was searched (older
    /// than their newest [`LOCAL_SEARCH_DEPTH`] messages).
    pub cut_short: Vec<Conversation>,
}

impl Found {
    /// The hits as the server's reply shape, without the marks of where
    /// they were found (for a front end that shows only that).
    pub fn into_results(self) -> chatus_protocol::search::SearchResults {
        let next = u32::try_from(self.hits.len()).unwrap_or(u32::MAX);
        chatus_protocol::search::SearchResults {
            id: None,
            hits: self.hits.into_iter().map(|h| h.hit).collect(),
            more: self.more,
            next,
        }
    }
}

impl Client {
    /// Messages matching `search` in every conversation it covers (one,
    /// or all of ours): the server's full-text search for clear
    /// conversations, and for end-to-end encrypted ones a search on this
    /// device over their newest [`LOCAL_SEARCH_DEPTH`] messages,
    /// decrypted (see the module doc). Merged newest first; `from`,
    /// `before` and `after` apply to both; `offset` only to the server's.
    pub async fn search_all(&self, search: Search) -> Result<Found, Error> {
        let query = LocalQuery::parse(search.query.as_str()).map_err(|message| Error::Server {
            code: ErrorCode::InvalidQuery,
            message: message.into(),
            retry_after: None,
        })?;
        // Also tells the device which conversations are encrypted.
        let encrypted: Vec<Conversation> = self
            .conversations()
            .await?
            .into_iter()
            .filter(|c| c.encrypted)
            .map(|c| c.conv)
            .collect();
        let is_encrypted = |conv: &Conversation| {
            let key = conv_key(conv);
            encrypted.iter().any(|e| conv_key(e) == key)
        };
        // Without a device nothing would decrypt: no use paging.
        let local: Vec<Conversation> = match &search.conv {
            _ if !self.e2ee.enabled() => Vec::new(),
            Some(conv) if is_encrypted(conv) => vec![conv.clone()],
            Some(_) => Vec::new(),
            None => encrypted.clone(),
        };
        let limit = search.limit.unwrap_or(20).clamp(1, MAX_SEARCH_LIMIT) as usize;
        let mut found = Found::default();
        let ask_server = search.conv.as_ref().is_none_or(|c| !is_encrypted(c));
        if ask_server {
            let results = self.search(search.clone()).await?;
            found.more = results.more;
            // A hit in an encrypted conversation matched the ciphertext's
            // characters, not its text.
            found.hits.extend(
                results
                    .hits
                    .into_iter()
                    .filter(|h| !is_encrypted(&h.conv))
                    .map(|hit| Hit {
                        hit,
                        on_device: false,
                    }),
            );
        }
        for conv in local {
            if self
                .search_here(&conv, &search, &query, &mut found.hits)
                .await?
            {
                found.cut_short.push(conv);
            }
        }
        found
            .hits
            .sort_by_key(|h| std::cmp::Reverse((h.hit.time, h.hit.seq)));
        if found.hits.len() > limit {
            found.hits.truncate(limit);
            found.more = true;
        }
        Ok(found)
    }

    /// Searches the newest messages of one encrypted conversation on this
    /// device, adding its hits to `hits`; true when older history was
    /// left unsearched.
    async fn search_here(
        &self,
        conv: &Conversation,
        search: &Search,
        query: &LocalQuery,
        hits: &mut Vec<Hit>,
    ) -> Result<bool, Error> {
        let mut page = Page::Latest;
        let mut scanned = 0;
        loop {
            let mut got = self.page_waiting(conv, page).await?;
            let oldest = got
                .messages
                .iter()
                .map(|m| m.seq)
                .chain(got.changes.iter().map(chatus_protocol::event::Change::seq))
                .min();
            // Oldest first, as listed, so replies find their quotes.
            let opened = self.open_all(&mut got.messages);
            for (m, o) in got.messages.iter().zip(opened) {
                scanned += 1;
                if matches!(o, crate::Opened::Decrypted { .. })
                    && let Some(hit) = local_hit(m, search, query)
                {
                    hits.push(Hit {
                        hit,
                        on_device: true,
                    });
                }
            }
            match oldest {
                Some(seq) if got.more && seq > Seq(1) => {
                    if scanned >= LOCAL_SEARCH_DEPTH {
                        return Ok(true);
                    }
                    page = Page::Before(seq);
                }
                _ => return Ok(false),
            }
        }
    }

    /// A history page, waiting out `rate_limited` answers a few times.
    async fn page_waiting(
        &self,
        conv: &Conversation,
        page: Page,
    ) -> Result<chatus_protocol::history::HistoryPage, Error> {
        let mut tries = 0;
        loop {
            match self.history(conv.clone(), page, Some(PAGE)).await {
                Err(Error::Server {
                    code: ErrorCode::RateLimited,
                    retry_after,
                    ..
                }) if tries < RATE_RETRIES => {
                    tries += 1;
                    tokio::time::sleep(retry_after.unwrap_or(Duration::from_secs(1))).await;
                }
                other => return other,
            }
        }
    }
}

/// The hit `message` (decrypted) makes for `search`, if it matches.
fn local_hit(message: &Message, search: &Search, query: &LocalQuery) -> Option<SearchHit> {
    if message.deleted.is_some()
        || search
            .from
            .as_ref()
            .is_some_and(|f| !f.same_account(&message.sender))
        || search.before.is_some_and(|t| message.time >= t)
        || search.after.is_some_and(|t| message.time <= t)
    {
        return None;
    }
    let text = message.body.as_ref()?.as_str();
    let marks = query.matches(text)?;
    let (snippet, marks) = snippet(text, &marks);
    Some(SearchHit {
        conv: message.conv.clone(),
        seq: message.seq,
        sender: message.sender.clone(),
        time: message.time,
        snippet,
        marks,
    })
}

/// A passage of `text` around its first mark, at most [`SNIPPET_BYTES`]
/// (with `…` where text was left out), and the marks inside it as byte
/// ranges into it.
fn snippet(text: &str, marks: &[(usize, usize)]) -> (String, Vec<[u32; 2]>) {
    let first = marks.first().map_or(0, |m| m.0);
    let mut start = first.saturating_sub(SNIPPET_BYTES / 3);
    while !text.is_char_boundary(start) {
        start -= 1;
    }
    let mut end = (start + SNIPPET_BYTES).min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let lead = if start > 0 { "…" } else { "" };
    let tail = if end < text.len() { "…" } else { "" };
    let snippet = format!("{lead}{}{tail}", &text[start..end]);
    let shift = lead.len();
    let marks = marks
        .iter()
        .filter(|(a, b)| *a >= start && *b <= end)
        .filter_map(|(a, b)| {
            Some([
                u32::try_from(a - start + shift).ok()?,
                u32::try_from(b - start + shift).ok()?,
            ])
        })
        .collect();
    (snippet, marks)
}

/// One word or phrase of a local query: its words, lower-cased, the last
/// one a prefix when `prefix`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Term {
    words: Vec<String>,
    prefix: bool,
}

/// Terms that must all match, and terms that must not.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
struct Group {
    all: Vec<Term>,
    none: Vec<Term>,
}

/// A query as the device runs it: any one group matches.
#[derive(Debug, Clone, PartialEq, Eq)]
struct LocalQuery {
    groups: Vec<Group>,
}

/// The words of `text` (runs of letters and digits) with their byte
/// ranges, lower-cased.
fn words(text: &str) -> Vec<(usize, usize, String)> {
    let mut out = Vec::new();
    let mut start = None;
    for (i, c) in text.char_indices() {
        match (c.is_alphanumeric(), start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                out.push((s, i, text[s..i].to_lowercase()));
                start = None;
            }
            _ => {}
        }
    }
    if let Some(s) = start {
        out.push((s, text.len(), text[s..].to_lowercase()));
    }
    out
}

impl LocalQuery {
    /// Parses the user's text as the server does (words, `"phrases"`,
    /// `prefix*`, `-excluded`, `OR`); the error is for the user.
    fn parse(text: &str) -> Result<LocalQuery, &'static str> {
        let mut groups = vec![Group::default()];
        let mut chars = text.chars().peekable();
        loop {
            while chars.next_if(|c| c.is_whitespace()).is_some() {}
            let Some(&first) = chars.peek() else { break };
            let negated = first == '-';
            if negated {
                chars.next();
            }
            let quoted = chars.peek() == Some(&'"');
            let mut raw = String::new();
            if quoted {
                chars.next();
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some(c) => raw.push(c),
                        None => return Err("A quote is not closed."),
                    }
                }
            } else {
                while let Some(c) = chars.next_if(|c| !c.is_whitespace() && *c != '"') {
                    raw.push(c);
                }
            }
            if !quoted && !negated && raw == "OR" {
                groups.push(Group::default());
                continue;
            }
            let mut prefix = false;
            if quoted && chars.peek() == Some(&'*') {
                chars.next();
                prefix = true;
            }
            if !quoted && raw.ends_with('*') {
                raw = raw.trim_end_matches('*').to_owned();
                prefix = true;
            }
            let term = Term {
                words: words(&raw).into_iter().map(|(_, _, w)| w).collect(),
                prefix,
            };
            if term.words.is_empty() {
                if prefix {
                    return Err("A * must follow a word.");
                }
                continue;
            }
            let group = groups.last_mut().ok_or("Nothing to look for.")?;
            if negated {
                group.none.push(term);
            } else {
                group.all.push(term);
            }
        }
        if groups.iter().any(|g| g.all.is_empty()) {
            return Err("Give a word to look for (on each side of OR).");
        }
        Ok(LocalQuery { groups })
    }

    /// The byte ranges of `text` that match, in order, when it matches.
    fn matches(&self, text: &str) -> Option<Vec<(usize, usize)>> {
        let words = words(text);
        let mut marks: Vec<(usize, usize)> = Vec::new();
        let mut any = false;
        for g in &self.groups {
            if g.none.iter().any(|t| !t.find(&words).is_empty()) {
                continue;
            }
            let found: Vec<Vec<(usize, usize)>> = g.all.iter().map(|t| t.find(&words)).collect();
            if found.iter().all(|f| !f.is_empty()) {
                any = true;
                marks.extend(found.into_iter().flatten());
            }
        }
        if !any {
            return None;
        }
        marks.sort_unstable();
        marks.dedup();
        Some(marks)
    }
}

impl Term {
    /// Where this term occurs among `words`: each occurrence's byte range.
    fn find(&self, words: &[(usize, usize, String)]) -> Vec<(usize, usize)> {
        let n = self.words.len();
        if n == 0 || words.len() < n {
            return Vec::new();
        }
        (0..=words.len() - n)
            .filter(|&i| {
                self.words.iter().enumerate().all(|(k, want)| {
                    let have = &words[i + k].2;
                    if self.prefix && k == n - 1 {
                        have.starts_with(want.as_str())
                    } else {
                        have == want
                    }
                })
            })
            .map(|i| (words[i].0, words[i + n - 1].1))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(s: &str) -> LocalQuery {
        LocalQuery::parse(s).unwrap()
    }

    fn marked(query: &str, text: &str) -> Option<Vec<&'static str>> {
        let text: &'static str = Box::leak(text.to_owned().into_boxed_str());
        q(query)
            .matches(text)
            .map(|m| m.into_iter().map(|(a, b)| &text[a..b]).collect())
    }

    #[test]
    fn words_phrases_prefixes_exclusions_and_or() {
        assert_eq!(marked("Eagle", "The eagle lands"), Some(vec!["eagle"]));
        assert_eq!(
            marked("eagle lands", "The EAGLE lands"),
            Some(vec!["EAGLE", "lands"])
        );
        assert_eq!(marked("eagle owl", "The eagle lands"), None);
        assert_eq!(marked("eag", "The eagle lands"), None, "a word is whole");
        assert_eq!(marked("eag*", "The eagle lands"), Some(vec!["eagle"]));
        assert_eq!(
            marked("\"eagle lands\"", "the eagle, lands"),
            Some(vec!["eagle, lands"])
        );
        assert_eq!(marked("\"lands eagle\"", "the eagle lands"), None);
        assert_eq!(marked("eagle -owl", "eagle and owl"), None);
        assert_eq!(marked("eagle -owl", "eagle alone"), Some(vec!["eagle"]));
        assert_eq!(marked("owl OR eagle", "eagle alone"), Some(vec!["eagle"]));
        assert_eq!(marked("café", "Au CAFÉ ce soir"), Some(vec!["CAFÉ"]));
        for bad in ["\"open", "-a", "a OR -b", "OR", "*", "x OR"] {
            assert!(LocalQuery::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn snippets_cut_on_characters_and_keep_their_marks() {
        let text = format!("{} needle {}", "é".repeat(200), "x".repeat(300));
        let marks = q("needle").matches(&text).unwrap();
        let (s, m) = snippet(&text, &marks);
        assert!(s.starts_with('…') && s.ends_with('…'));
        let [a, b] = m[0];
        assert_eq!(&s[a as usize..b as usize], "needle");
        let (s, m) = snippet("short needle", &[(6, 12)]);
        assert_eq!((s.as_str(), m), ("short needle", vec![[6, 12]]));
    }
}
