//! A reader that stops reading is cut off with a reason and never slows the
//! others; the memory queued for it is capped.

use chatus_client::protocol::{Body, Conversation, RoomName};
use serde_json::json;
use tokio::io::AsyncWriteExt as _;

use crate::util::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_reader_is_disconnected_and_others_keep_flowing() {
    // Room for a burst of fan-out, far below what the test pushes.
    let cap = 256 * 1024;
    let server = TestServer::start_with(move |c| c.outbox_max_bytes = cap).await;
    let (sender, _) = register(server.url(), "sender").await;
    let mut readers = Vec::new();
    for i in 0..5 {
        readers.push(register(server.url(), &format!("reader{i}")).await);
    }
    // The stalled client: logs in with a raw socket and then never reads.
    let mut stalled = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    stalled
        .write_all(
            b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
              Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
        )
        .await
        .unwrap();
    for text in [
        json!({"type":"hello","version":1}).to_string(),
        json!({"type":"register","username":"stalled","password":"stalled-password"}).to_string(),
    ] {
        stalled
            .write_all(&masked_text_frame(text.as_bytes()))
            .await
            .unwrap();
    }
    eventually("the stalled client is logged in", || {
        server.state.hub().online_users().len() == 7
    })
    .await;

    // Push far more than the cap plus the kernel's socket buffers (a few
    // MiB on loopback) through the lobby: 12 MB.
    let text = "x".repeat(4000);
    let n = 3000;
    let lobby = Conversation::Room(RoomName::lobby());
    let s = sender.clone();
    let pump = tokio::spawn(async move {
        let mut acks = Vec::new();
        for _ in 0..n {
            let s = s.clone();
            let body = Body::parse(text.clone()).unwrap();
            let lobby = lobby.clone();
            acks.push(tokio::spawn(
                async move { s.send(lobby, body).await.unwrap() },
            ));
        }
        for a in acks {
            a.await.unwrap();
        }
    });
    for (_, events) in &mut readers {
        let got = messages(events, n).await;
        assert_eq!(got.last().unwrap().seq.0, n as u64);
    }
    pump.await.unwrap();
    // The stalled one was cut off; the others are all still here.
    eventually("the stalled client is gone", || {
        server.state.hub().online_users().len() == 6
    })
    .await;
    for conn in server.state.hub().connections() {
        assert!(conn.outbox.pending_bytes() <= cap);
    }
}

/// A masked client text frame.
fn masked_text_frame(payload: &[u8]) -> Vec<u8> {
    let mut v = vec![0x81];
    if payload.len() < 126 {
        v.push(0x80 | payload.len() as u8);
    } else {
        v.push(0x80 | 126);
        v.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    }
    let mask = [1, 2, 3, 4];
    v.extend_from_slice(&mask);
    v.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    v
}
