//! Thumbnails (`GET /files/{id}/thumbnail`) against a real server: real
//! PNG and JPEG images made here, uploaded through tus, their thumbnails
//! decoded; who may see them; a decompression bomb refused while the
//! server keeps serving; a file that is not an image.

use std::net::SocketAddr;

use chatus_client::Client;
use chatus_client::protocol::{Body, Conversation, FileId, Token};
use image::{DynamicImage, ImageBuffer, ImageFormat, Rgb, Rgba};

use crate::files::{Res, account, create, get, http, patch, sha};
use crate::util::*;

/// Uploads `data` through tus (always declared as
/// `application/octet-stream`, so the server must look at the bytes).
async fn upload(addr: SocketAddr, token: &Token, data: &[u8], name: &str) -> FileId {
    let id = create(addr, token, data.len() as u64, name).await;
    let r = patch(addr, token, &id, 0, data).await;
    assert_eq!(r.status, 204, "{}", r.text());
    id
}

async fn thumb(addr: SocketAddr, token: &Token, id: &FileId, extra: &str) -> Res {
    http(
        addr,
        &format!(
            "GET /files/{id}/thumbnail HTTP/1.1\r\nAuthorization: Bearer {}\r\n{extra}",
            token.expose()
        ),
        b"",
    )
    .await
}

fn encoded(img: &DynamicImage, format: ImageFormat) -> Vec<u8> {
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, format).unwrap();
    out.into_inner()
}

/// A 900×600 RGB gradient as PNG, and a 400×1000 one as JPEG.
fn pictures() -> (Vec<u8>, Vec<u8>) {
    let png = DynamicImage::ImageRgb8(ImageBuffer::from_fn(900, 600, |x, y| {
        Rgb([(x % 256) as u8, (y % 256) as u8, 128])
    }));
    let jpeg = DynamicImage::ImageRgb8(ImageBuffer::from_fn(400, 1000, |x, y| {
        Rgb([200, (x % 256) as u8, (y % 256) as u8])
    }));
    (
        encoded(&png, ImageFormat::Png),
        encoded(&jpeg, ImageFormat::Jpeg),
    )
}

/// A valid 1×1 PNG whose header then claims `w`×`h` (the chunk's CRC
/// made right, so only the size gives it away).
fn bomb(w: u32, h: u32) -> Vec<u8> {
    let one = DynamicImage::ImageRgba8(ImageBuffer::from_pixel(1, 1, Rgba([1, 2, 3, 4])));
    let mut png = encoded(&one, ImageFormat::Png);
    assert_eq!(&png[12..16], b"IHDR");
    png[16..20].copy_from_slice(&w.to_be_bytes());
    png[20..24].copy_from_slice(&h.to_be_bytes());
    let crc = crc32(&png[12..29]);
    png[29..33].copy_from_slice(&crc.to_be_bytes());
    png
}

fn crc32(data: &[u8]) -> u32 {
    let mut c = 0xFFFF_FFFFu32;
    for &b in data {
        c ^= u32::from(b);
        for _ in 0..8 {
            c = if c & 1 == 1 {
                0xEDB8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
        }
    }
    !c
}

async fn share(client: &Client, to: Conversation, id: &FileId) {
    client
        .send_file_with_id(
            to,
            Body::parse("a picture").unwrap(),
            Some(id.clone()),
            Client::new_client_id(),
        )
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn png_and_jpeg_get_bounded_thumbnails_that_only_viewers_see() {
    let server = TestServer::start().await;
    let (alice, _, a) = account(server.url(), "alice").await;
    let (_bob, _, b) = account(server.url(), "bob").await;
    let (_carol, _, c) = account(server.url(), "carol").await;
    let (png, jpeg) = pictures();
    let p = upload(server.addr, &a, &png, "wide.png").await;
    let j = upload(server.addr, &a, &jpeg, "tall.jpg").await;
    for id in [&p, &j] {
        share(&alice, Conversation::Peer(user("bob")), id).await;
    }

    for (id, want) in [(&p, (320, 213)), (&j, (128, 320))] {
        let r = thumb(server.addr, &b, id, "").await;
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(r.header("content-type"), Some("image/jpeg"));
        assert_eq!(r.header("cache-control"), Some("private"));
        let img = image::load_from_memory(&r.body).unwrap();
        let got = (img.width(), img.height());
        assert!(
            got.0.abs_diff(want.0) <= 1 && got.1.abs_diff(want.1) <= 1,
            "{got:?}"
        );
        // The same again, kept: equal bytes, and the ETag gives 304.
        let etag = r.header("etag").unwrap().to_owned();
        let again = thumb(server.addr, &a, id, "").await;
        assert_eq!(again.status, 200);
        assert_eq!(again.body, r.body);
        let cached = thumb(server.addr, &b, id, &format!("If-None-Match: {etag}\r\n")).await;
        assert_eq!(cached.status, 304);
        assert!(cached.body.is_empty());
        // Carol is not in the conversation: exactly as if there were no
        // such file, like the download itself.
        let no = thumb(server.addr, &c, id, "").await;
        assert_eq!(no.status, 404);
        assert_eq!(get(server.addr, &c, id, "").await.status, 404);
    }
    let nothing = FileId::from_bytes([7; 16]);
    assert_eq!(thumb(server.addr, &b, &nothing, "").await.status, 404);
    let r = http(
        server.addr,
        &format!("GET /files/{p}/thumbnail HTTP/1.1\r\n"),
        b"",
    )
    .await;
    assert_eq!(r.status, 401);

    // Kept beside the blobs, by the file's SHA-256.
    let thumbs = server.stored("thumbs");
    assert_eq!(thumbs.len(), 2, "{thumbs:?}");
    for data in [&png, &jpeg] {
        let sha = sha(data);
        assert!(thumbs.iter().any(|t| t.ends_with(&sha)), "{thumbs:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_decompression_bomb_is_refused_by_its_header_and_the_server_keeps_serving() {
    let server = TestServer::start().await;
    let (alice, _, a) = account(server.url(), "alice").await;
    let bomb = bomb(100_000, 100_000);
    assert!(bomb.len() < 100, "{} bytes", bomb.len());
    let id = upload(server.addr, &a, &bomb, "bomb.png").await;
    let started = std::time::Instant::now();
    for _ in 0..3 {
        let r = thumb(server.addr, &a, &id, "").await;
        assert_eq!(r.status, 422, "{}", r.text());
        let text = r.text();
        assert!(
            text.contains("100000×100000") && text.contains("thumbnail_max_megapixels"),
            "{text}"
        );
    }
    // Refused from the header: no time spent decoding.
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    // The file itself is still there to download, and chat goes on.
    let r = get(server.addr, &a, &id, "").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body, bomb);
    alice
        .send(crate::files::lobby(), Body::parse("still here").unwrap())
        .await
        .unwrap();
    // And a real image after it is thumbnailed.
    let (png, _) = pictures();
    let p = upload(server.addr, &a, &png, "ok.png").await;
    assert_eq!(thumb(server.addr, &a, &p, "").await.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_that_is_not_an_image_has_no_thumbnail() {
    let server = TestServer::start().await;
    let (_alice, _, a) = account(server.url(), "alice").await;
    let text = upload(server.addr, &a, b"just some words\n", "notes.txt").await;
    let r = thumb(server.addr, &a, &text, "").await;
    assert_eq!(r.status, 404);
    assert!(
        r.text().contains("not a PNG, JPEG, GIF or WebP"),
        "{}",
        r.text()
    );
    // A damaged image (right magic bytes, nothing after) is 422.
    let damaged = upload(server.addr, &a, b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR", "cut.png").await;
    let r = thumb(server.addr, &a, &damaged, "").await;
    assert_eq!(r.status, 422, "{}", r.text());
    assert!(r.text().contains("cannot be decoded"), "{}", r.text());
    // Only GET and HEAD.
    let r = http(
        server.addr,
        &format!(
            "DELETE /files/{text}/thumbnail HTTP/1.1\r\nAuthorization: Bearer {}\r\n",
            a.expose()
        ),
        b"",
    )
    .await;
    assert_eq!(r.status, 405);
}
