//! The send queue: messages kept until the server acknowledges them, put
//! on the wire in order within a window, held back after `rate_limited`,
//! and refused here when the server's limits could not take them.

use std::time::Duration;

use chatus_protocol::event::{DeleteMessage, EditMessage, React};
use chatus_protocol::message::{SendMessage, Sent};
use chatus_protocol::{
    Body, ClientMsgId, Conversation, Emoji, Envelope, ErrorCode, FileId, Request, RequestId, Seq,
    ServerMessage,
};
use tokio::sync::oneshot;
use tokio::time::Instant;

use super::{Link, Lost, Task, unexpected, wire::write};
use crate::error::Error;

/// Most sends on the wire without an acknowledgement. Keeps the client
/// reading (acks and echoes) while it sends, so a burst of queued sends
/// never makes the server see it as a reader that cannot keep up.
const SEND_WINDOW: usize = 64;
/// Sends on the wire once the server has answered `rate_limited`: one at a
/// time until the queue drains, so that the queue goes out in order.
const THROTTLED_WINDOW: usize = 1;

/// What a queued send is: a message, or a change to one. Changes are
/// queued like messages, so they too go out once, in order, and survive a
/// reconnect (their `client_id` makes the resend safe).
#[derive(Debug, Clone)]
pub(crate) enum Op {
    /// A message, perhaps sharing a file or answering another message.
    Message {
        /// A finished upload to share.
        file: Option<FileId>,
        /// The message it answers.
        reply_to: Option<Seq>,
        /// The body is a ciphertext (sent as `ciphertext`).
        encrypted: bool,
    },
    /// A new text (the body) for a message of ours.
    Edit {
        /// The message.
        seq: Seq,
        /// The body is a ciphertext (sent as `ciphertext`).
        encrypted: bool,
    },
    /// Deleting a message (the body is not sent).
    Delete(Seq),
    /// Adding (true) or taking back a reaction.
    React(Seq, Emoji, bool),
}

pub(super) struct PendingSend {
    pub(super) to: Conversation,
    pub(super) body: Body,
    pub(super) client_id: ClientMsgId,
    pub(super) op: Op,
    pub(super) reply: oneshot::Sender<Result<Sent, Error>>,
    /// The request id on the current connection, once sent on it.
    pub(super) request_id: Option<RequestId>,
    /// Do not send before this (after `rate_limited`).
    pub(super) not_before: Option<Instant>,
}

impl PendingSend {
    /// The request that carries it.
    fn request(&self) -> Request {
        let (conv, seq, client_id) = (self.to.clone(), self.seq(), self.client_id.clone());
        match &self.op {
            Op::Message {
                file,
                reply_to,
                encrypted,
            } => Request::Send(SendMessage {
                to: conv,
                body: self.body.clone(),
                client_id,
                file: file.clone(),
                reply_to: *reply_to,
                encrypted: *encrypted,
            }),
            Op::Edit { encrypted, .. } => Request::Edit(EditMessage {
                conv,
                seq,
                body: self.body.clone(),
                client_id,
                encrypted: *encrypted,
            }),
            Op::Delete(_) => Request::Delete(DeleteMessage {
                conv,
                seq,
                client_id,
            }),
            Op::React(_, emoji, on) => Request::React(React {
                conv,
                seq,
                emoji: emoji.clone(),
                on: *on,
                client_id,
            }),
        }
    }

    /// The message a change names.
    fn seq(&self) -> Seq {
        match &self.op {
            Op::Message { .. } => Seq(0),
            Op::Edit { seq: s, .. } | Op::Delete(s) | Op::React(s, _, _) => *s,
        }
    }
}

impl Op {
    /// Whether the body is a ciphertext.
    pub(crate) fn encrypted(&self) -> bool {
        matches!(
            self,
            Op::Message {
                encrypted: true,
                ..
            } | Op::Edit {
                encrypted: true,
                ..
            }
        )
    }

    /// The same message or edit with its body in clear or encrypted;
    /// `None` for the kinds that carry no text (a deletion, a reaction).
    pub(crate) fn sealed(&self, encrypted: bool) -> Option<Op> {
        match self {
            Op::Message { file, reply_to, .. } => Some(Op::Message {
                file: file.clone(),
                reply_to: *reply_to,
                encrypted,
            }),
            Op::Edit { seq, .. } => Some(Op::Edit {
                seq: *seq,
                encrypted,
            }),
            Op::Delete(_) | Op::React(..) => None,
        }
    }
}

impl Task {
    /// Puts queued sends on the wire, oldest first, up to the window. A
    /// send held back (rate limit) holds back every later one too, so the
    /// queue is stored in the order it was written. A send the server's
    /// limits cannot take fails at once instead of costing the connection.
    pub(super) async fn pump(&mut self, link: &mut Link) -> Result<(), Lost> {
        if self.sends.is_empty() {
            self.throttled = false;
        }
        let window = if self.throttled {
            THROTTLED_WINDOW
        } else {
            SEND_WINDOW
        };
        let now = Instant::now();
        let mut in_flight = self.sends.iter().filter(|p| p.request_id.is_some()).count();
        let mut i = 0;
        while i < self.sends.len() && in_flight < window {
            let p = &self.sends[i];
            if p.request_id.is_some() {
                i += 1;
                continue;
            }
            if p.not_before.is_some_and(|t| t > now) {
                break;
            }
            if let Some(error) = self.too_big(p) {
                if let Some(p) = self.sends.remove(i) {
                    let _ = p.reply.send(Err(error));
                }
                continue;
            }
            self.transmit(link, i).await?;
            in_flight += 1;
            i += 1;
        }
        Ok(())
    }

    /// Why the server would refuse `p` for its size, if it would: a body
    /// over `max_body_bytes` is refused, and a request frame over
    /// `max_frame_bytes` (JSON escaping can make it several times the body)
    /// would close the connection, again after every reconnect.
    fn too_big(&self, p: &PendingSend) -> Option<Error> {
        let limits = self.limits?;
        let max_body = usize::try_from(limits.max_body_bytes).unwrap_or(usize::MAX);
        let max_frame = usize::try_from(limits.max_frame_bytes).unwrap_or(usize::MAX);
        let body = p.body.as_str().len();
        // A ciphertext may take twice the plaintext limit (docs/PROTOCOL.md).
        let max_body = if p.op.encrypted() {
            max_body.saturating_mul(2)
        } else {
            max_body
        };
        if max_body > 0 && body > max_body {
            return Some(Error::Server {
                code: ErrorCode::BodyTooLong,
                message: format!(
                    "A message body may be at most {} bytes; this one has {body}.",
                    limits.max_body_bytes
                ),
                retry_after: None,
            });
        }
        // Escaping makes a byte at most six ("\u0001"): most bodies are
        // clearly small enough without encoding them to find out.
        if max_frame == 0 || body.saturating_mul(6).saturating_add(512) <= max_frame {
            return None;
        }
        let frame = Envelope {
            id: Some(RequestId(u64::MAX)),
            request: p.request(),
        }
        .encode()
        .len();
        if frame > max_frame {
            return Some(Error::Server {
                code: ErrorCode::BodyTooLong,
                message: format!(
                    "This message is {frame} bytes on the wire (special characters take several), over the server's limit of {} bytes.",
                    limits.max_frame_bytes
                ),
                retry_after: None,
            });
        }
        None
    }

    /// Puts pending send `i` on the wire with a fresh request id.
    async fn transmit(&mut self, link: &mut Link, i: usize) -> Result<(), Lost> {
        let id = self.next_id();
        let Some(p) = self.sends.get_mut(i) else {
            return Ok(());
        };
        p.request_id = Some(id);
        p.not_before = None;
        let request = p.request();
        write(
            &mut link.sink,
            &Envelope {
                id: Some(id),
                request,
            },
        )
        .await
    }

    pub(super) fn on_send_reply(&mut self, i: usize, msg: ServerMessage) {
        match msg {
            ServerMessage::Sent(sent) => {
                if let Some(p) = self.sends.remove(i) {
                    let _ = p.reply.send(Ok(sent));
                }
            }
            ServerMessage::Error(e) if e.code == ErrorCode::RateLimited => {
                self.throttled = true;
                let wait = Duration::from_millis(e.retry_after_ms.unwrap_or(1000));
                if let Some(p) = self.sends.get_mut(i) {
                    p.request_id = None;
                    p.not_before = Some(Instant::now() + wait);
                }
            }
            ServerMessage::Error(e)
                if matches!(
                    e.code,
                    ErrorCode::ShuttingDown | ErrorCode::Internal | ErrorCode::Unavailable
                ) =>
            {
                // Not stored; resend after the next (re)connect.
                if let Some(p) = self.sends.get_mut(i) {
                    p.request_id = None;
                    p.not_before = Some(Instant::now() + Duration::from_secs(1));
                }
            }
            ServerMessage::Error(e) => {
                if let Some(p) = self.sends.remove(i) {
                    let _ = p.reply.send(Err(e.into()));
                }
            }
            other => {
                if let Some(p) = self.sends.remove(i) {
                    let _ = p.reply.send(Err(unexpected(&other)));
                }
            }
        }
    }
}
