//! The WebSocket underneath: writing requests, reading server messages
//! (every frame counts as hearing from the server), and what a close frame
//! means for reconnecting.

use chatus_protocol::error::close;
use chatus_protocol::{Envelope, ServerMessage};
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt as _, StreamExt as _};
use std::time::Duration;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use super::{Link, Lost, Ws};
use crate::error::Error;

pub(super) async fn write(sink: &mut SplitSink<Ws, WsMessage>, env: &Envelope) -> Result<(), Lost> {
    sink.send(WsMessage::Text(env.encode().into()))
        .await
        .map_err(|_| Lost::dropped())
}

/// Reads the next server message, skipping control frames; every frame
/// counts as hearing from the server.
pub(super) async fn read(
    stream: &mut SplitStream<Ws>,
    heard: &mut Instant,
) -> Result<ServerMessage, Lost> {
    loop {
        let frame = stream.next().await;
        *heard = Instant::now();
        match frame {
            Some(Ok(WsMessage::Text(text))) => match ServerMessage::decode(&text) {
                Ok(m) => return Ok(m),
                Err(e) => {
                    tracing::warn!(cause = %e, "skipped a message this client does not understand");
                }
            },
            Some(Ok(WsMessage::Close(frame))) => return Err(lost_by_close(frame)),
            Some(Ok(_)) => {}
            Some(Err(_)) | None => return Err(Lost::dropped()),
        }
    }
}

/// Maps the server's close frame to what the client does next.
pub(super) fn lost_by_close(frame: Option<CloseFrame>) -> Lost {
    let (code, reason) = match frame {
        Some(f) => (u16::from(f.code), f.reason.to_string()),
        None => (1005, String::new()),
    };
    let error = Error::Closed { code, reason };
    match code {
        close::SESSION_ENDED | close::UNSUPPORTED_VERSION | close::NORMAL => Lost::Fatal(error),
        close::LAGGING => Lost::Retry { error, now: true },
        _ => Lost::Retry { error, now: false },
    }
}

/// Sends a normal close and waits briefly for the server's close reply.
pub(super) async fn close_link(link: &mut Link, reason: &str) {
    let frame = CloseFrame {
        code: CloseCode::Normal,
        reason: reason.to_owned().into(),
    };
    if link.sink.send(WsMessage::Close(Some(frame))).await.is_err() {
        return;
    }
    let _ = tokio::time::timeout(Duration::from_secs(2), async {
        while let Some(Ok(msg)) = link.stream.next().await {
            if matches!(msg, WsMessage::Close(_)) {
                break;
            }
        }
    })
    .await;
}
