//! `/search QUERY` in `chat`.

use chatus_client::Client;
use chatus_client::protocol::ErrorCode;
use chatus_client::protocol::search::{Search, SearchQuery};

use super::Screen;

/// Most hits `/search` prints.
const SEARCH_HITS: u32 = 10;

/// `/search QUERY`: the newest hits in every conversation the user is in,
/// as `chatus search` finds them (the server's index, and this device's
/// decrypted history for encrypted conversations), one line each as
/// `chatus search` prints them (matched words in bold on a terminal), or
/// one JSON object each with `--json`. A query that cannot be parsed is a
/// note, not an error that ends `chat`.
pub(super) async fn search(
    client: &Client,
    screen: &Screen,
    query: &str,
) -> Result<(), chatus_client::Error> {
    let query = match SearchQuery::parse(query.to_owned()) {
        Ok(q) => q,
        Err(e) => {
            screen.note(&e.message);
            return Ok(());
        }
    };
    let request = Search {
        query,
        conv: None,
        from: None,
        before: None,
        after: None,
        limit: Some(SEARCH_HITS),
        offset: None,
    };
    let found = match client.search_all(request).await {
        Ok(found) => found,
        Err(e) if e.code() == Some(ErrorCode::InvalidQuery) => {
            screen.note(&e.to_string());
            return Ok(());
        }
        Err(e) => return Err(e),
    };
    if screen.json() {
        for hit in &found.hits {
            screen.line(&crate::search::found_json(hit).to_string());
        }
        return Ok(());
    }
    let bold = matches!(screen, Screen::Editor(_));
    let mut lines: Vec<String> = found
        .hits
        .iter()
        .map(|h| {
            let text = crate::search::hit_text(&h.hit, bold);
            if h.on_device {
                format!("  {text}  (found on this device)")
            } else {
                format!("  {text}")
            }
        })
        .collect();
    let head = match (found.hits.len(), found.more) {
        (0, _) => "No messages found.".to_owned(),
        (n, false) => format!("{n} found, newest first:"),
        (n, true) => format!("The newest {n} found (chatus search --limit N shows more):"),
    };
    lines.insert(0, head);
    screen.line(&lines.join("\n"));
    Ok(())
}
