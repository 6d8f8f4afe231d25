//! Workload 11: file transfer. Upload (tus, one `PATCH` with the whole
//! file) and download (`GET /files/{id}`) throughput and the server's CPU
//! per GB, against a static-file reference measured in the same run: a
//! minimal HTTP/1.1 server in this process (tokio, no framework) that
//! takes a `PUT` to disk and answers a `GET` from disk, 256 KiB at a time,
//! as little work per byte as a server can do. Every transfer is made by
//! `curl` (with `Expect:` turned off, the same for both), so client costs
//! are equal and outside both servers.
//!
//! Then, together: one upload of the whole file and ten parallel
//! downloads of it, while the server's resident memory is sampled every
//! 50 ms (the target: flat, under 64 MiB above idle), and another user's
//! chat latency (a `send` to its acknowledgement, 20 a second) is
//! measured, against the same probe with nothing else running.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow, bail};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

use crate::chatus::{self, Account};

/// Parallel downloads while the upload runs.
pub const PARALLEL_DOWNLOADS: usize = 10;

/// Chat probes per second.
const PROBES_PER_SEC: f64 = 20.0;

/// Bytes copied at a time by the reference server.
const REF_BUF: usize = 256 * 1024;

/// Writes `len` bytes of varied content (so that nothing compresses or
/// deduplicates by accident).
fn make_file(path: &Path, len: u64, seed: u64) -> anyhow::Result<()> {
    use std::io::Write as _;
    let mut f = std::io::BufWriter::new(std::fs::File::create(path)?);
    let mut x = seed | 1;
    let mut block = vec![0u8; 1 << 20];
    let mut left = len;
    while left > 0 {
        for chunk in block.chunks_exact_mut(8) {
            // xorshift64
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            chunk.copy_from_slice(&x.to_le_bytes());
        }
        let n = usize::try_from(left.min(block.len() as u64)).unwrap_or(block.len());
        f.write_all(&block[..n])?;
        left -= n as u64;
    }
    f.flush()?;
    Ok(())
}

/// The reference: `PUT /anything` stores the body in `dir/put.bin`;
/// `GET /anything` sends `dir/get.bin`. One request per connection.
async fn reference_server(
    dir: PathBuf,
) -> anyhow::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let task = tokio::spawn(async move {
        while let Ok((s, _)) = listener.accept().await {
            let dir = dir.clone();
            tokio::spawn(async move {
                let _ = reference_conn(s, &dir).await;
            });
        }
    });
    Ok((addr, task))
}

async fn reference_conn(mut s: TcpStream, dir: &Path) -> anyhow::Result<()> {
    let mut head = Vec::with_capacity(4096);
    let mut buf = vec![0u8; REF_BUF];
    let end = loop {
        let n = s.read(&mut buf).await?;
        if n == 0 {
            bail!("closed before the head ended");
        }
        head.extend_from_slice(&buf[..n]);
        if let Some(at) = head.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        if head.len() > 16 * 1024 {
            bail!("head too long");
        }
    };
    let text = String::from_utf8_lossy(&head[..end]).into_owned();
    let rest = head[end..].to_vec();
    if text.starts_with("PUT ") {
        let len: u64 = text
            .lines()
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.eq_ignore_ascii_case("content-length")
                    .then(|| v.trim().parse().ok())?
            })
            .context("no Content-Length")?;
        let mut f = tokio::fs::File::create(dir.join("put.bin")).await?;
        f.write_all(&rest).await?;
        let mut left = len.saturating_sub(rest.len() as u64);
        while left > 0 {
            let want = usize::try_from(left.min(REF_BUF as u64)).unwrap_or(REF_BUF);
            let n = s.read(&mut buf[..want]).await?;
            if n == 0 {
                bail!("body cut short");
            }
            f.write_all(&buf[..n]).await?;
            left -= n as u64;
        }
        f.sync_all().await?;
        s.write_all(b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            .await?;
    } else {
        let mut f = tokio::fs::File::open(dir.join("get.bin")).await?;
        let len = f.metadata().await?.len();
        s.write_all(
            format!("HTTP/1.1 200 OK\r\nContent-Length: {len}\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        )
        .await?;
        loop {
            let n = f.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            s.write_all(&buf[..n]).await?;
        }
    }
    s.shutdown().await?;
    Ok(())
}

/// Runs a command to its end on a blocking thread (the benchmark's tokio
/// has no process feature, and one more is not worth a rebuild of all).
async fn output(mut cmd: std::process::Command) -> anyhow::Result<std::process::Output> {
    tokio::task::spawn_blocking(move || cmd.output())
        .await?
        .context("could not run curl")
}

/// Runs curl; returns the status code it wrote and the seconds it took.
async fn curl(args: &[String]) -> anyhow::Result<(u16, f64)> {
    let t = Instant::now();
    let mut cmd = std::process::Command::new("curl");
    cmd.args([
        "-sS",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        "-H",
        "Expect:",
    ])
    .args(args);
    let out = output(cmd).await?;
    let secs = t.elapsed().as_secs_f64();
    let code = String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or(0);
    if !out.status.success() {
        bail!("curl failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok((code, secs))
}

fn bearer(a: &Account) -> String {
    format!("Authorization: Bearer {}", a.token)
}

/// Creates a tus upload of `len` bytes; returns its id.
async fn create_upload(addr: SocketAddr, a: &Account, len: u64) -> anyhow::Result<String> {
    let mut cmd = std::process::Command::new("curl");
    cmd.args(["-sS", "-o", "/dev/null", "-D", "-", "-X", "POST"])
        .args(["-H", "Tus-Resumable: 1.0.0", "-H"])
        .arg(format!("Upload-Length: {len}"))
        // "bench.bin"
        .args(["-H", "Upload-Metadata: filename YmVuY2guYmlu", "-H"])
        .arg(bearer(a))
        .arg(format!("http://{addr}/uploads"));
    let out = output(cmd).await?;
    let head = String::from_utf8_lossy(&out.stdout);
    head.lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("location")
                .then(|| v.trim().rsplit('/').next().map(str::to_owned))?
        })
        .ok_or_else(|| anyhow!("no Location in {head:?}"))
}

/// Uploads `file` to ChatUs in one `PATCH`; returns the id and seconds.
async fn chatus_upload(
    addr: SocketAddr,
    a: &Account,
    file: &Path,
    len: u64,
) -> anyhow::Result<(String, f64)> {
    let t = Instant::now();
    let id = create_upload(addr, a, len).await?;
    let (code, _) = curl(&[
        "-X".into(),
        "PATCH".into(),
        "-T".into(),
        file.display().to_string(),
        "-H".into(),
        "Tus-Resumable: 1.0.0".into(),
        "-H".into(),
        "Upload-Offset: 0".into(),
        "-H".into(),
        "Content-Type: application/offset+octet-stream".into(),
        "-H".into(),
        bearer(a),
        format!("http://{addr}/uploads/{id}"),
    ])
    .await?;
    if code != 204 {
        bail!("PATCH answered {code}");
    }
    Ok((id, t.elapsed().as_secs_f64()))
}

async fn chatus_download(addr: SocketAddr, a: &Account, id: &str) -> anyhow::Result<f64> {
    let (code, secs) = curl(&["-H".into(), bearer(a), format!("http://{addr}/files/{id}")]).await?;
    if code != 200 {
        bail!("GET answered {code}");
    }
    Ok(secs)
}

/// One chat probe after another until `stop`: a `send` to the lobby,
/// timed to its acknowledgement. Returns the times in milliseconds.
async fn chat_probe(
    addr: SocketAddr,
    a: Account,
    stop: Arc<AtomicBool>,
) -> anyhow::Result<Vec<f64>> {
    let mut c = chatus::login(addr, None, &a, None).await?;
    let gap = Duration::from_secs_f64(1.0 / PROBES_PER_SEC);
    let mut ms = Vec::new();
    let mut id = 100u64;
    let mut next = tokio::time::Instant::now();
    while !stop.load(Ordering::Relaxed) {
        id += 1;
        let req = json!({
            "type": "send", "room": "lobby", "body": "ping",
            "client_id": format!("files-probe-{}-{id}", std::process::id()),
        });
        let t = Instant::now();
        let v = chatus::ask(&mut c.r, &mut c.w, id, req).await?;
        if v["type"] != "sent" {
            bail!("probe send answered {v}");
        }
        ms.push(t.elapsed().as_secs_f64() * 1000.0);
        next += gap;
        tokio::time::sleep_until(next).await;
    }
    Ok(ms)
}

fn quantiles(ms: &[f64]) -> Value {
    let mut v = ms.to_vec();
    v.sort_by(f64::total_cmp);
    let q = |p: f64| {
        v.get(((v.len() as f64 - 1.0) * p).round() as usize)
            .map(|x| (x * 100.0).round() / 100.0)
    };
    json!({"samples": v.len(), "p50": q(0.5), "p99": q(0.99), "max": q(1.0)})
}

fn mb_per_s(bytes: u64, secs: f64) -> f64 {
    (bytes as f64 / 1e6 / secs.max(1e-9) * 10.0).round() / 10.0
}

fn cpu_per_gb(cpu: f64, bytes: u64) -> f64 {
    (cpu / (bytes as f64 / 1e9) * 1000.0).round() / 1000.0
}

/// Workload 11 with a file of `len` bytes.
pub async fn transfer(env: &mut super::Env, len: u64, baseline_secs: f64) -> anyhow::Result<Value> {
    env.accounts(2).await?;
    let c = env.chatus()?;
    let (addr, pid) = (c.server.addr, c.server.pid);
    let (uploader, chatter) = (c.accounts[0].clone(), c.accounts[1].clone());
    let version = c.server.version.clone();
    let dir = std::env::temp_dir().join(format!("chatus-bench-files-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let result = measure(addr, pid, &uploader, &chatter, &dir, len, baseline_secs).await;
    let _ = std::fs::remove_dir_all(&dir);
    let mut v = result?;
    v["versions"] = json!({"server": version, "chatus_bench": env!("CARGO_PKG_VERSION")});
    Ok(v)
}

async fn measure(
    addr: SocketAddr,
    pid: u32,
    uploader: &Account,
    chatter: &Account,
    dir: &Path,
    len: u64,
    baseline_secs: f64,
) -> anyhow::Result<Value> {
    let src = dir.join("get.bin");
    make_file(&src, len, 0x5eed)?;
    let me = std::process::id();
    let cpu = |p: u32| crate::proc::cpu_seconds(p).unwrap_or(0.0);

    // Chat latency with nothing else running.
    let stop = Arc::new(AtomicBool::new(false));
    let probe = tokio::spawn(chat_probe(addr, chatter.clone(), stop.clone()));
    tokio::time::sleep(Duration::from_secs_f64(baseline_secs)).await;
    stop.store(true, Ordering::Relaxed);
    let alone = probe.await??;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let rss_idle = crate::proc::rss_kib(pid).unwrap_or(0);

    // ChatUs alone: one upload, then one download.
    let c0 = cpu(pid);
    let (id, up_secs) = chatus_upload(addr, uploader, &src, len).await?;
    let up_cpu = cpu(pid) - c0;
    let c0 = cpu(pid);
    let down_secs = chatus_download(addr, uploader, &id).await?;
    let down_cpu = cpu(pid) - c0;

    // The reference alone, the same way.
    let (raddr, rtask) = reference_server(dir.to_owned()).await?;
    let c0 = cpu(me);
    let (code, ref_up_secs) = curl(&[
        "-T".into(),
        src.display().to_string(),
        format!("http://{raddr}/put"),
    ])
    .await?;
    let ref_up_cpu = cpu(me) - c0;
    if code != 201 {
        bail!("reference PUT answered {code}");
    }
    let _ = std::fs::remove_file(dir.join("put.bin"));
    let c0 = cpu(me);
    let (code, ref_down_secs) = curl(&[format!("http://{raddr}/get")]).await?;
    let ref_down_cpu = cpu(me) - c0;
    rtask.abort();
    if code != 200 {
        bail!("reference GET answered {code}");
    }

    // Together: an upload and ten downloads, memory sampled, chat probed.
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = {
        let stop = stop.clone();
        tokio::spawn(async move {
            let mut samples = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                samples.push(crate::proc::rss_kib(pid).unwrap_or(0));
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            samples
        })
    };
    let probe = tokio::spawn(chat_probe(addr, chatter.clone(), stop.clone()));
    let t = Instant::now();
    let c0 = cpu(pid);
    let up = {
        let (u, s) = (uploader.clone(), src.clone());
        tokio::spawn(async move { chatus_upload(addr, &u, &s, len).await })
    };
    let downs: Vec<_> = (0..PARALLEL_DOWNLOADS)
        .map(|_| {
            let (u, id) = (uploader.clone(), id.clone());
            tokio::spawn(async move { chatus_download(addr, &u, &id).await })
        })
        .collect();
    let (_, both_up_secs) = up.await??;
    let mut down_done = Vec::new();
    for d in downs {
        down_done.push(d.await??);
    }
    let both_secs = t.elapsed().as_secs_f64();
    let both_cpu = cpu(pid) - c0;
    stop.store(true, Ordering::Relaxed);
    let during = probe.await??;
    let samples = sampler.await?;
    let peak = samples.iter().copied().max().unwrap_or(0);
    let moved = len * (1 + PARALLEL_DOWNLOADS as u64);
    let slowest = down_done.iter().copied().fold(0.0, f64::max);

    Ok(json!({
        "workload": "files",
        "system": "chatus",
        "params": {
            "file_bytes": len,
            "parallel_downloads": PARALLEL_DOWNLOADS,
            "client": "curl",
            "reference": "minimal tokio HTTP/1.1 server in chatus-bench (PUT to disk, GET from disk, 256 KiB copies)",
        },
        "upload": {"mb_per_s": mb_per_s(len, up_secs), "server_cpu_s_per_gb": cpu_per_gb(up_cpu, len)},
        "download": {"mb_per_s": mb_per_s(len, down_secs), "server_cpu_s_per_gb": cpu_per_gb(down_cpu, len)},
        "reference": {
            "upload": {"mb_per_s": mb_per_s(len, ref_up_secs), "server_cpu_s_per_gb": cpu_per_gb(ref_up_cpu, len)},
            "download": {"mb_per_s": mb_per_s(len, ref_down_secs), "server_cpu_s_per_gb": cpu_per_gb(ref_down_cpu, len)},
        },
        "together": {
            "seconds": (both_secs * 100.0).round() / 100.0,
            "upload_mb_per_s": mb_per_s(len, both_up_secs),
            "download_mb_per_s_each_slowest": mb_per_s(len, slowest),
            "aggregate_mb_per_s": mb_per_s(moved, both_secs),
            "server_cpu_s_per_gb": cpu_per_gb(both_cpu, moved),
        },
        "server_rss_kib": {
            "idle": rss_idle,
            "peak": peak,
            "peak_above_idle": peak.saturating_sub(rss_idle),
            "samples": samples.len(),
        },
        "chat_send_ack_ms": {"alone": quantiles(&alone), "during_transfers": quantiles(&during)},
    }))
}
