//! One interface over both systems for the workloads they share: a
//! receiving connection yields the timestamps of its deliveries; a sending
//! connection queues messages and flushes.

use std::io;

use serde::Serialize;

use crate::{chatus, nats, ws};

/// Which server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum System {
    /// ChatUs.
    Chatus,
    /// nats-server (core publish/subscribe).
    Nats,
}

impl System {
    /// Lower-case name.
    pub fn name(self) -> &'static str {
        match self {
            System::Chatus => "chatus",
            System::Nats => "nats",
        }
    }
}

/// A connection that receives deliveries.
pub enum Rx {
    /// ChatUs WebSocket.
    Chatus(ws::Reader),
    /// NATS socket.
    Nats(nats::Reader),
}

impl Rx {
    /// Reads what is available; `f` gets each delivery's timestamp.
    /// Returns false when the connection closed.
    pub async fn deliveries(&mut self, mut f: impl FnMut(u64)) -> io::Result<bool> {
        match self {
            Rx::Chatus(r) => {
                r.read_batch(|p| {
                    if let Some(t) = chatus::delivery(p) {
                        f(t);
                    }
                })
                .await
            }
            Rx::Nats(r) => {
                r.read_batch(|p| {
                    if let Some(t) = p.get(..20).and_then(chatus::parse_stamp) {
                        f(t);
                    }
                })
                .await
            }
        }
    }
}

/// A connection that sends.
pub enum Tx {
    /// ChatUs: where messages go.
    Chatus {
        /// The socket.
        w: ws::Writer,
        /// Where messages go.
        to: chatus::To,
    },
    /// NATS: the subject.
    Nats {
        /// The socket.
        w: nats::Writer,
        /// Where messages go.
        subject: String,
    },
}

impl Tx {
    /// Queues one message with this body.
    pub fn queue(&mut self, body: &[u8]) {
        match self {
            Tx::Chatus { w, to } => chatus::queue_send(w, to, body),
            Tx::Nats { w, subject } => w.publish(subject, body),
        }
    }

    /// Sends what is queued.
    pub async fn flush(&mut self) -> io::Result<()> {
        match self {
            Tx::Chatus { w, .. } => w.flush().await,
            Tx::Nats { w, .. } => w.flush().await,
        }
    }
}
