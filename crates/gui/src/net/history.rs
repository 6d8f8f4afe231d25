//! A history page on the network thread: fetched, its encrypted messages
//! opened on this device (those it cannot read shown as such, never as
//! ciphertext), and the missing keys asked of this user's other devices.

use chatus_client::Client;
use chatus_client::protocol::history::Page;
use chatus_client::protocol::{Body, Conversation, Seq};

use super::Update;

/// The newest page of `conv` (`before: None`) or the one before `before`.
pub(super) async fn page(client: &Client, conv: Conversation, before: Option<Seq>) -> Update {
    let which = before.map_or(Page::Latest, Page::Before);
    match client.history(conv.clone(), which, Some(50)).await {
        Ok(mut page) => {
            let opened = client.open_all(&mut page.messages);
            let mut missing = false;
            for (m, o) in page.messages.iter_mut().zip(opened) {
                if let chatus_client::Opened::Undecryptable { .. } = o {
                    m.body = Body::parse(crate::state::UNDECRYPTABLE).ok();
                    missing = true;
                }
            }
            // A verified device of ours answers; the messages then decrypt.
            if missing && let Err(e) = client.request_missing_keys().await {
                tracing::debug!(cause = %e, "asking for missing keys failed");
            }
            for c in &mut page.changes {
                client.open_change(c);
            }
            Update::History {
                conv,
                page,
                older: before.is_some(),
            }
        }
        Err(e) => Update::HistoryFailed {
            conv,
            older: before.is_some(),
            lost: !matches!(
                e,
                chatus_client::Error::Server { .. } | chatus_client::Error::Protocol(_)
            ),
            error: e.to_string(),
        },
    }
}
