//! The WebSocket underneath: writing requests, reading server messages
//! (every frame counts as hearing from the server), what a close frame
//! means for reconnecting, and why a connection could not be opened.

use chatus_protocol::error::close;
use chatus_protocol::{Envelope, ServerMessage};
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt as _, StreamExt as _};
use std::time::Duration;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::tungstenite::error::Error as WsError;
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

/// Why opening a connection to `host` failed, in a few words for people
/// (`connection refused`, `the name … could not be resolved`), rather than
/// the library's nested error text.
pub(crate) fn connect_failure(e: &WsError, host: &str) -> String {
    use std::io::ErrorKind;
    match e {
        WsError::Io(io) => match io.kind() {
            ErrorKind::ConnectionRefused => "connection refused".into(),
            ErrorKind::TimedOut => "timed out".into(),
            ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted => {
                "the connection was reset".into()
            }
            ErrorKind::HostUnreachable => "no route to the host".into(),
            ErrorKind::NetworkUnreachable => "the network is unreachable".into(),
            ErrorKind::AddrNotAvailable => "the address is not available".into(),
            // Name resolution failures carry no kind of their own.
            _ if io.to_string().contains("lookup address") => {
                format!("the name {host} could not be resolved")
            }
            _ => io.to_string(),
        },
        WsError::Http(response) => format!(
            "it answered HTTP {} rather than a ChatUs WebSocket",
            response.status()
        ),
        WsError::Protocol(p) => format!("it does not speak WebSocket ({p})"),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connect_failures_read_as_causes() {
        let refused = WsError::Io(std::io::Error::from(std::io::ErrorKind::ConnectionRefused));
        assert_eq!(connect_failure(&refused, "h"), "connection refused");
        let dns = WsError::Io(std::io::Error::other(
            "failed to lookup address information: Name or service not known",
        ));
        assert_eq!(
            connect_failure(&dns, "example.invalid"),
            "the name example.invalid could not be resolved"
        );
    }
}
