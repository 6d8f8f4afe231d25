//! `chatus search`: the client library's [`Client::search_all`] (one
//! `search` request, and in end-to-end encrypted conversations a search on
//! this device over their newest
//! [`LOCAL_SEARCH_DEPTH`](chatus_client::search::LOCAL_SEARCH_DEPTH)
//! messages, decrypted), its hits printed one per line, newest first
//! (conversation, seq, sender, time, snippet, and `(found on this device)`
//! for the device's), the matched words in bold when stdout is a
//! terminal; `--json` prints one object per hit, with `on_device`.
//!
//! [`Client::search_all`]: chatus_client::Client::search_all

use std::io::IsTerminal as _;

use chatus_client::protocol::search::{Search, SearchHit, SearchQuery};
use chatus_client::protocol::{Conversation, Timestamp};
use chatus_client::search::Hit;
use clap::Args;
use serde_json::json;

use crate::CliError;
use crate::args::ClientArgs;
use crate::commands::{parse_room, say};
use crate::connect::{Ctx, Mode, parse_user};
use crate::output;

/// `search` options.
#[derive(Debug, Args)]
pub struct SearchArgs {
    /// Only this room.
    #[arg(long, short = 'r', conflicts_with = "with")]
    pub room: Option<String>,
    /// Only the direct conversation with this user.
    #[arg(long, short = 'w')]
    pub with: Option<String>,
    /// Only messages sent by this user.
    #[arg(long)]
    pub from: Option<String>,
    /// Only messages sent before this time (RFC 3339, or a date: UTC midnight).
    #[arg(long, value_name = "TIME")]
    pub before: Option<String>,
    /// Only messages sent after this time (RFC 3339, or a date: UTC midnight).
    #[arg(long, value_name = "TIME")]
    pub after: Option<String>,
    /// Most hits to print (at most 50).
    #[arg(long, short = 'n', default_value_t = 20)]
    pub limit: u32,
    /// What to look for: words, "phrases", prefix*, -excluded, OR.
    #[arg(value_name = "QUERY", required = true)]
    pub query: Vec<String>,
    #[command(flatten)]
    pub client: ClientArgs,
}

/// A time given on the command line.
fn parse_time(s: &str) -> Result<Timestamp, CliError> {
    let ts = match s.parse::<jiff::Timestamp>() {
        Ok(ts) => ts,
        // A date alone: midnight UTC.
        Err(_) => format!("{s}T00:00:00Z")
            .parse::<jiff::Timestamp>()
            .map_err(|_| {
                CliError::Usage(format!(
                    "{s:?} is not a time: give 2026-12-02T20:00:00Z or 2026-12-02."
                ))
            })?,
    };
    Ok(Timestamp(u64::try_from(ts.as_millisecond()).unwrap_or(0)))
}

/// `search`.
pub async fn search(ctx: &Ctx, args: &SearchArgs) -> Result<(), CliError> {
    let query = SearchQuery::parse(args.query.join(" ")).map_err(|e| CliError::Usage(e.message))?;
    let conv = match (&args.room, &args.with) {
        (Some(r), _) => Some(Conversation::Room(parse_room(r)?)),
        (None, Some(u)) => Some(Conversation::Peer(parse_user(u)?)),
        (None, None) => None,
    };
    if args.limit == 0 {
        return Err(CliError::Usage("--limit must be at least 1.".into()));
    }
    let request = Search {
        query,
        conv,
        from: args.from.as_deref().map(parse_user).transpose()?,
        before: args.before.as_deref().map(parse_time).transpose()?,
        after: args.after.as_deref().map(parse_time).transpose()?,
        limit: Some(args.limit),
        offset: None,
    };
    let (client, _, _) = ctx.connect(Mode::OneShot).await?;
    let result = client.search_all(request).await;
    client.quit().await;
    let found = result?;
    let bold = std::io::stdout().is_terminal();
    for hit in &found.hits {
        if ctx.json {
            say(&found_json(hit).to_string());
        } else if hit.on_device {
            say(&format!(
                "{}  (found on this device)",
                hit_text(&hit.hit, bold)
            ));
        } else {
            say(&hit_text(&hit.hit, bold));
        }
    }
    if !ctx.json && found.hits.is_empty() {
        eprintln!("(no messages found)");
    }
    if !ctx.json && found.more {
        eprintln!("(more hits: narrow the search, or raise --limit)");
    }
    if !ctx.json {
        for conv in &found.cut_short {
            eprintln!(
                "(only the newest {} messages of {} were searched on this device)",
                chatus_client::search::LOCAL_SEARCH_DEPTH,
                output::place(conv)
            );
        }
    }
    Ok(())
}

/// A hit of [`Client::search_all`](chatus_client::Client::search_all) as
/// JSON: [`hit_json`] plus `on_device`.
pub fn found_json(h: &Hit) -> serde_json::Value {
    let mut v = hit_json(&h.hit);
    v["on_device"] = json!(h.on_device);
    v
}

/// A hit as JSON: `room` or `peer`, `seq`, `sender`, `time`, `time_ms`,
/// `snippet` and `marks` (`[start, end)` byte ranges in `snippet`).
pub fn hit_json(h: &SearchHit) -> serde_json::Value {
    let mut v = json!({
        "seq": h.seq.0,
        "sender": h.sender.as_str(),
        "time": output::rfc3339(h.time),
        "time_ms": h.time.0,
        "snippet": h.snippet,
        "marks": h.marks,
    });
    match &h.conv {
        Conversation::Room(r) => v["room"] = json!(r.as_str()),
        Conversation::Peer(p) => v["peer"] = json!(p.as_str()),
    }
    v
}

/// A hit as one line; the marks in bold when `bold`, else unmarked.
/// Control characters in the text never reach the terminal.
pub fn hit_text(h: &SearchHit, bold: bool) -> String {
    let mut snippet = String::new();
    let mut at = 0;
    for [a, b] in &h.marks {
        let (a, b) = (*a as usize, *b as usize);
        let (Some(before), Some(word)) = (h.snippet.get(at..a), h.snippet.get(a..b)) else {
            continue;
        };
        snippet.push_str(&output::clean(before));
        if bold {
            snippet.push_str("\x1b[1m");
        }
        snippet.push_str(&output::clean(word));
        if bold {
            snippet.push_str("\x1b[0m");
        }
        at = b;
    }
    snippet.push_str(&output::clean(h.snippet.get(at..).unwrap_or_default()));
    format!(
        "{} {} {} {}  {}",
        output::place(&h.conv),
        h.seq,
        h.sender,
        output::date_time(h.time),
        snippet.replace('\n', " ")
    )
}
