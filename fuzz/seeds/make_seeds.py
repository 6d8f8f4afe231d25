#!/usr/bin/env python3
"""Writes the fuzz targets' seed corpus (fuzz/seeds/TARGET/*): the
requests of docs/PROTOCOL.md's transcripts, WebSocket frames carrying
them, and HTTP request heads. Run from anywhere; it rewrites the seeds."""

import hashlib
import json
import os
import re

HERE = os.path.dirname(os.path.abspath(__file__))
DOC = os.path.join(HERE, "..", "..", "docs", "PROTOCOL.md")


def requests():
    """Every `NAME > {...}` line of the protocol transcripts."""
    out = []
    with open(DOC, encoding="utf-8") as f:
        for line in f:
            m = re.match(r"^\w+ > (\{.*\})\s*$", line)
            if m:
                out.append(m.group(1))
    # A few the transcripts do not show.
    out += [
        '{"type":"history","peer":"bob","before":10,"limit":5}',
        '{"type":"mark_read","room":"lobby","seq":3}',
        '{"type":"ping","id":99}',
        '{"type":"send","room":"lobby","body":"caf\\u00e9 \\ud83d\\ude00","client_id":"u-1"}',
    ]
    return out


def frame(opcode, payload, fin=True, mask=b"\x37\xfa\x21\x3d"):
    """One masked client frame."""
    b0 = (0x80 if fin else 0) | opcode
    n = len(payload)
    if n < 126:
        head = bytes([b0, 0x80 | n])
    elif n < 65536:
        head = bytes([b0, 0x80 | 126]) + n.to_bytes(2, "big")
    else:
        head = bytes([b0, 0x80 | 127]) + n.to_bytes(8, "big")
    masked = bytes(c ^ mask[i % 4] for i, c in enumerate(payload))
    return head + mask + masked


def write(target, data):
    d = os.path.join(HERE, target)
    os.makedirs(d, exist_ok=True)
    name = hashlib.sha1(data).hexdigest()[:16]
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def main():
    reqs = requests()
    for r in reqs:
        json.loads(r)  # the transcripts must hold JSON
        write("envelope", r.encode())

    # frame: [limit/4, read size, bytes that came with the upgrade] + frames
    hello = reqs[0].encode()
    stream = b"".join(frame(1, r.encode()) for r in reqs[:6])
    write("frame", bytes([255, 255, 0]) + stream)
    write("frame", bytes([255, 7, 10]) + stream)
    write("frame", bytes([64, 1, 0]) + frame(1, hello[:10], fin=False) + frame(0, hello[10:]))
    write("frame", bytes([255, 3, 0]) + frame(9, b"ping!") + frame(1, hello) + frame(10, b""))
    write("frame", bytes([255, 255, 0]) + frame(8, (1000).to_bytes(2, "big") + b"bye"))
    write("frame", bytes([255, 255, 0]) + frame(2, b"\x00\x01\x02"))
    write("frame", bytes([255, 255, 0]) + frame(1, b"x" * 300))
    # A header that announces more than the limit (the payload never comes).
    write("frame", bytes([8, 255, 0]) + frame(1, b"y" * 70000)[:200])

    upgrade = (
        b"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:7500\r\nUpgrade: websocket\r\n"
        b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        b"Sec-WebSocket-Version: 13\r\n\r\n"
    )
    browser = (
        b"GET /ws?x=1 HTTP/1.1\r\nHost: chat.example\r\nUser-Agent: Mozilla/5.0\r\n"
        b"Origin: https://chat.example\r\nUpgrade: websocket\r\nConnection: keep-alive, Upgrade\r\n"
        b"Sec-WebSocket-Key: x3JJHMbDL1EzLkh9GBhXDw==\r\nSec-WebSocket-Version: 13\r\n"
        b"Sec-WebSocket-Extensions: permessage-deflate\r\n\r\n"
    )
    write("handshake", b"\xff" + upgrade)
    write("handshake", b"\x05" + upgrade + frame(1, hello))
    write("handshake", b"\xff" + browser)
    write("handshake", b"\xff" + b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
    write("handshake", b"\x10" + b"HEAD / HTTP/1.1\r\n\r\n")
    write("handshake", b"\xff" + b"POST /ws HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc")
    write("handshake", b"\xff" + b"GET /ws HTTP/1.0\r\nUpgrade: websocket\r\n\r\n")

    # file_headers: [file length, u64 LE] metadata NUL checksum NUL range
    def headers(length, metadata, checksum, rng):
        return length.to_bytes(8, "little") + metadata + b"\0" + checksum + b"\0" + rng

    write("file_headers", headers(3, b"filename Li4vLi4veA==,filetype aW1hZ2UvcG5n",
                                  b"sha256 47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=", b"bytes=-5"))
    write("file_headers", headers(1 << 30, b"filename cmVwb3J0LnBkZg==,filetype YXBwbGljYXRpb24vcGRm",
                                  b"sha256 AAAA", b"bytes=1048576-"))
    write("file_headers", headers(10, b"name 4pyTIA0K,type dGV4dC9wbGFpbjsgY2hhcnNldD11dGYtOA==",
                                  b"md5 xyz", b"bytes=2-1"))
    write("file_headers", headers(0, b"filename", b"", b"bytes=0-0,5-9"))


if __name__ == "__main__":
    main()
