//! A TCP relay between a client and the test server that can hold
//! traffic without closing anything, as a dead network does, and tell when
//! the server's `authed` has gone by.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use chatus_client::ServerUrl;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, watch};

/// A TCP relay that can hold traffic without closing anything, as a dead
/// network does: `hold_up` stops client → server bytes, `freeze` both ways.
/// It also tells when the server's `authed` has gone by.
pub struct Relay {
    addr: std::net::SocketAddr,
    pub hold_up: watch::Sender<bool>,
    hold_down: watch::Sender<bool>,
    pub hold_up_after_authed: Arc<AtomicBool>,
    pub authed: Arc<Notify>,
}

impl Relay {
    pub async fn start(target: std::net::SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (hold_up, _) = watch::channel(false);
        let (hold_down, _) = watch::channel(false);
        let hold_up_after_authed = Arc::new(AtomicBool::new(false));
        let authed = Arc::new(Notify::new());
        let relay = Self {
            addr,
            hold_up: hold_up.clone(),
            hold_down: hold_down.clone(),
            hold_up_after_authed: hold_up_after_authed.clone(),
            authed: authed.clone(),
        };
        tokio::spawn(async move {
            while let Ok((inbound, _)) = listener.accept().await {
                let Ok(outbound) = TcpStream::connect(target).await else {
                    continue;
                };
                let (ci, co) = inbound.into_split();
                let (si, so) = outbound.into_split();
                let up = hold_up.subscribe();
                let down = hold_down.subscribe();
                tokio::spawn(pipe(ci, so, up, None));
                let watch_authed = (
                    hold_up_after_authed.clone(),
                    hold_up.clone(),
                    authed.clone(),
                );
                tokio::spawn(pipe(si, co, down, Some(watch_authed)));
            }
        });
        relay
    }

    pub fn url(&self) -> ServerUrl {
        ServerUrl::parse(&format!("ws://{}", self.addr)).unwrap()
    }

    pub fn freeze(&self, frozen: bool) {
        self.hold_up.send_replace(frozen);
        self.hold_down.send_replace(frozen);
    }
}

type AuthedWatch = (Arc<AtomicBool>, watch::Sender<bool>, Arc<Notify>);

/// Copies one direction, waiting while `hold` is true. Downstream, when
/// asked, it holds the upstream direction as soon as `authed` passes.
async fn pipe(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mut hold: watch::Receiver<bool>,
    authed: Option<AuthedWatch>,
) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let Ok(n) = from.read(&mut buf).await else {
            return;
        };
        if n == 0 {
            return;
        }
        if let Some((armed, hold_up, seen)) = &authed
            && buf[..n].windows(15).any(|w| w == b"\"type\":\"authed\"")
            && armed.swap(false, Ordering::SeqCst)
        {
            hold_up.send_replace(true);
            seen.notify_one();
        }
        if hold.wait_for(|h| !*h).await.is_err() {
            return;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}
