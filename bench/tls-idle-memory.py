# Resident memory per idle logged-in connection of a running `chatus serve`,
# plain or TLS (BENCHMARKS.md, "TLS: idle memory"). Usage:
#   python3 bench/tls-idle-memory.py HOST PORT plain|tls CONNECTIONS SERVER_PID
# The server needs the benchmark's raised limits (CHATUS_CONFIG in
# crates/bench/src/proc.rs) and cheap password hashes (login.argon2_*).
import asyncio, ssl, sys, os, json, base64, struct

def frame(text):
    data = text.encode()
    mask = os.urandom(4)
    n = len(data)
    head = bytes([0x81])
    if n < 126: head += bytes([0x80 | n])
    else: head += bytes([0x80 | 126]) + struct.pack(">H", n)
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(data))

async def read_frame(r):
    h = await r.readexactly(2)
    n = h[1] & 0x7F
    if n == 126: n = struct.unpack(">H", await r.readexactly(2))[0]
    elif n == 127: n = struct.unpack(">Q", await r.readexactly(8))[0]
    return (h[0] & 0x0F, await r.readexactly(n))

async def open_ws(host, port, tls):
    ctx = None
    if tls:
        ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
    r, w = await asyncio.open_connection(host, port, ssl=ctx)
    w.write(b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
    await w.drain()
    head = await r.readuntil(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 101"), head
    return r, w

async def call(r, w, obj, want):
    w.write(frame(json.dumps(obj))); await w.drain()
    while True:
        op, p = await read_frame(r)
        if op == 1:
            m = json.loads(p)
            if m.get("type") == want: return m
            if m.get("type") == "error": raise Exception(m)

def rss(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"): return int(line.split()[1])

async def main():
    host, port, tls, n, pid = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "tls", int(sys.argv[4]), int(sys.argv[5])
    r, w = await open_ws(host, port, tls)
    await call(r, w, {"type": "hello", "version": 1, "id": 1}, "welcome")
    name = "mem" + ("t" if tls else "p") + str(os.getpid())
    m = await call(r, w, {"type": "register", "username": name, "password": "a long password", "id": 2}, "authed")
    token = m["token"]
    await asyncio.sleep(1)
    before = rss(pid)
    conns = [(r, w)]
    async def one():
        r, w = await open_ws(host, port, tls)
        await call(r, w, {"type": "hello", "version": 1, "presence": False, "id": 1}, "welcome")
        await call(r, w, {"type": "auth", "token": token, "id": 2}, "authed")
        return r, w
    for i in range(0, n, 100):
        conns += await asyncio.gather(*[one() for _ in range(min(100, n - i))])
    await asyncio.sleep(3)
    after = rss(pid)
    print(json.dumps({"tls": tls, "connections": n, "rss_before_kib": before, "rss_after_kib": after, "kib_per_connection": round((after - before) / n, 2)}))

asyncio.run(main())
