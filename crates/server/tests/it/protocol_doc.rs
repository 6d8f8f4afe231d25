//! `docs/PROTOCOL.md` is the contract: its example sessions are replayed
//! here against a real server with a plain WebSocket client, and every
//! request type and error code must be documented.

use std::collections::HashMap;

use serde_json::Value;

use crate::util::*;

fn doc() -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/PROTOCOL.md");
    std::fs::read_to_string(path).unwrap()
}

/// Does `got` match `want`, where `"*"` matches anything and `"$x"`
/// captures into `vars`?
fn matches(want: &Value, got: &Value, vars: &mut HashMap<String, Value>) -> bool {
    match want {
        Value::String(s) if s == "*" => true,
        Value::String(s) if s.starts_with('$') => {
            vars.insert(s.clone(), got.clone());
            true
        }
        Value::Object(w) => {
            let Value::Object(g) = got else { return false };
            w.len() == g.len()
                && w.iter()
                    .all(|(k, v)| g.get(k).is_some_and(|gv| matches(v, gv, vars)))
        }
        Value::Array(w) => {
            let Value::Array(g) = got else { return false };
            w.len() == g.len() && w.iter().zip(g).all(|(a, b)| matches(a, b, vars))
        }
        other => other == got,
    }
}

fn substitute(text: &str, vars: &HashMap<String, Value>) -> String {
    let mut out = text.to_owned();
    for (k, v) in vars {
        out = out.replace(&format!("\"{k}\""), &v.to_string());
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_example_sessions_are_true() {
    let server = TestServer::start().await;
    let doc = doc();
    let mut conns: HashMap<String, Raw> = HashMap::new();
    let mut vars = HashMap::new();
    let mut in_block = false;
    let mut checked = 0;
    // Frames each connection skipped while waiting, shown if one never comes
    // (it may have come early and been skipped).
    let mut skipped_by: HashMap<String, Vec<Value>> = HashMap::new();
    for line in doc.lines() {
        if line.starts_with("```transcript") {
            in_block = true;
            continue;
        }
        if line.starts_with("```") {
            in_block = false;
            continue;
        }
        if !in_block || line.trim().is_empty() {
            continue;
        }
        let (who, rest) = line.split_once(' ').unwrap();
        let (dir, frame) = rest.split_once(' ').unwrap();
        if !conns.contains_key(who) {
            conns.insert(who.to_owned(), Raw::connect(server.addr).await);
        }
        let conn = conns.get_mut(who).unwrap();
        match dir {
            ">" => conn.send_text(&substitute(frame, &vars)).await,
            "<" => {
                let want: Value =
                    serde_json::from_str(frame).unwrap_or_else(|e| panic!("{line}: {e}"));
                // Events not shown may come first: skip frames of other types
                // (or other ids), then compare the whole object.
                let skipped = skipped_by.entry(who.to_owned()).or_default();
                // On several nodes, events of different kinds come on
                // different bus subjects, so they may arrive in another
                // order than the transcript's (one node keeps it): there,
                // an event skipped earlier may be the one now wanted.
                let early = (node_count() > 1)
                    .then(|| {
                        skipped.iter().position(|got| {
                            got["type"] == want["type"]
                                && got.get("id") == want.get("id")
                                && matches(&want, got, &mut vars.clone())
                        })
                    })
                    .flatten();
                let got = match early {
                    Some(i) => skipped.remove(i),
                    None => next_like(conn, &want, skipped, line, who).await,
                };
                let mut captured = vars.clone();
                assert!(matches(&want, &got, &mut captured), "{line}\n  got: {got}");
                vars = captured;
                checked += 1;
            }
            other => panic!("bad direction {other:?} in {line}"),
        }
    }
    assert!(checked > 30, "only {checked} frames checked");
}

/// The next frame of `want`'s type (and id) on `conn`, the others pushed
/// to `skipped`; fails after 15 s naming what came instead.
async fn next_like(
    conn: &mut Raw,
    want: &Value,
    skipped: &mut Vec<Value>,
    line: &str,
    who: &str,
) -> Value {
    let found = tokio::time::timeout(std::time::Duration::from_secs(15), async {
        loop {
            // `next_raw` has no timeout of its own, so a frame that never
            // comes is reported here, with what came instead.
            let got = match conn.next_raw().await {
                Frame::Json(v) => v,
                other => panic!("{line}\n  connection gave {other:?} instead"),
            };
            if got["type"] == want["type"] && got.get("id") == want.get("id") {
                return got;
            }
            skipped.push(got);
        }
    })
    .await;
    let Ok(got) = found else {
        let skipped: Vec<String> = skipped.iter().map(Value::to_string).collect();
        panic!(
            "{line}\n  never came; frames {who} skipped so far:\n    {}",
            skipped.join("\n    ")
        );
    };
    got
}

#[test]
fn every_request_type_and_error_code_is_documented() {
    let doc = doc();
    for t in chatus_client::protocol::Request::TYPES {
        assert!(
            doc.contains(&format!("### `{t}`")),
            "request {t} has no section"
        );
    }
    for code in chatus_client::protocol::ErrorCode::ALL {
        assert!(
            doc.contains(&format!("| `{}` |", code.as_str())),
            "error code {code} is not in the table"
        );
    }
    for close in [
        1000, 1001, 1002, 1007, 1008, 1009, 1011, 4000, 4001, 4002, 4003,
    ] {
        assert!(
            doc.contains(&format!("| {close} |")),
            "close code {close} is not in the table"
        );
    }
}

/// Splits a shell command line into words: single quotes keep text as it
/// is, double quotes substitute `$VAR`s, bare words too.
fn shell_words(line: &str, vars: &HashMap<String, String>) -> Vec<String> {
    let expand = |s: &str| {
        let mut out = s.to_owned();
        // Longest names first, so `$ID` never eats the start of `$IDX`.
        let mut names: Vec<&String> = vars.keys().collect();
        names.sort_by_key(|k| std::cmp::Reverse(k.len()));
        for k in names {
            out = out.replace(&format!("${k}"), &vars[k]);
        }
        out
    };
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                in_word = true;
                for c in chars.by_ref() {
                    if c == '\'' {
                        break;
                    }
                    cur.push(c);
                }
            }
            '"' => {
                in_word = true;
                let mut q = String::new();
                for c in chars.by_ref() {
                    if c == '"' {
                        break;
                    }
                    q.push(c);
                }
                cur.push_str(&expand(&q));
            }
            ' ' if in_word => {
                words.push(std::mem::take(&mut cur));
                in_word = false;
            }
            ' ' => {}
            c => {
                in_word = true;
                let mut bare = String::from(c);
                while let Some(c) = chars.clone().next() {
                    if c == ' ' || c == '\'' || c == '"' {
                        break;
                    }
                    bare.push(c);
                    chars.next();
                }
                cur.push_str(&expand(&bare));
            }
        }
    }
    if in_word {
        words.push(cur);
    }
    words
}

/// One HTTP request from a `curl` command line (`-i`, `-I`, `-X`, `-H`,
/// `--data-binary`), sent to the test server; returns the raw response.
async fn curl(addr: std::net::SocketAddr, words: &[String]) -> Vec<u8> {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    assert_eq!(words[0], "curl");
    let mut method = "GET".to_owned();
    let mut headers = Vec::new();
    let mut body = Vec::new();
    let mut path = None;
    let mut it = words[1..].iter();
    while let Some(w) = it.next() {
        match w.as_str() {
            "-i" => {}
            "-I" => method = "HEAD".into(),
            "-X" => method = it.next().unwrap().clone(),
            "-H" => headers.push(it.next().unwrap().clone()),
            "--data-binary" => body = it.next().unwrap().clone().into_bytes(),
            url => {
                let rest = url.strip_prefix("http://").unwrap();
                path = Some(rest[rest.find('/').unwrap()..].to_owned());
            }
        }
    }
    let mut req = format!(
        "{method} {} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n",
        path.unwrap()
    );
    for h in headers {
        req.push_str(&h);
        req.push_str("\r\n");
    }
    if !body.is_empty() {
        req.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    req.push_str("\r\n");
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(req.as_bytes()).await.unwrap();
    s.write_all(&body).await.unwrap();
    let mut raw = Vec::new();
    tokio::time::timeout(WAIT, s.read_to_end(&mut raw))
        .await
        .unwrap()
        .unwrap();
    raw
}

/// The `curl` walk-through of the Files section, replayed: each command
/// is sent, and the status, the headers shown (`$NAME` in a value
/// captures the rest) and the body shown must match.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_curl_walk_through_is_true() {
    let server = TestServer::start().await;
    let mut raw = Raw::connect(server.addr).await;
    raw.call(serde_json::json!({"type": "hello", "version": 1}))
        .await;
    let authed = raw
        .call(serde_json::json!({"type": "register", "username": "alice", "password": "correct horse battery"}))
        .await;
    let mut vars = HashMap::new();
    vars.insert(
        "TOKEN".to_owned(),
        authed["token"].as_str().unwrap().to_owned(),
    );
    let doc = doc();
    // Commands with their expected output, from every ```curl block.
    let mut steps: Vec<(String, Vec<String>)> = Vec::new();
    let mut in_block = false;
    for line in doc.lines() {
        if line.starts_with("```curl") {
            in_block = true;
        } else if line.starts_with("```") {
            in_block = false;
        } else if in_block {
            if let Some(cmd) = line.strip_prefix("$ ") {
                steps.push((cmd.to_owned(), Vec::new()));
            } else {
                steps.last_mut().unwrap().1.push(line.to_owned());
            }
        }
    }
    assert!(steps.len() >= 8, "only {} curl steps", steps.len());
    for (cmd, mut want) in steps {
        while want.last().is_some_and(|l| l.is_empty()) {
            want.pop();
        }
        let res = curl(server.addr, &shell_words(&cmd, &vars)).await;
        let split = res.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
        let head = String::from_utf8_lossy(&res[..split]).into_owned();
        let body = String::from_utf8_lossy(&res[split + 4..]).into_owned();
        let mut lines = head.lines();
        let status = lines.next().unwrap();
        let want_status = &want[0];
        assert_eq!(
            status.get(..12),
            want_status.get(..12),
            "{cmd}\n  got: {head}"
        );
        let got: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(": "))
            .map(|(k, v)| (k.to_ascii_lowercase(), v.to_owned()))
            .collect();
        let blank = want.iter().position(String::is_empty);
        let (shown, body_lines) = match blank {
            Some(b) => (&want[1..b], Some(&want[b + 1..])),
            None => (&want[1..], None),
        };
        for line in shown {
            let (k, v) = line.split_once(": ").unwrap();
            let found = got
                .iter()
                .find(|(gk, _)| gk == k)
                .unwrap_or_else(|| panic!("{cmd}\n  no {k} in: {head}"));
            match v.split_once('$') {
                Some((prefix, name)) => {
                    let rest = found.1.strip_prefix(prefix).unwrap_or_else(|| {
                        panic!("{cmd}\n  {k}: {} does not start with {prefix}", found.1)
                    });
                    vars.insert(name.to_owned(), rest.to_owned());
                }
                None => assert_eq!(found.1, v, "{cmd}: {k}"),
            }
        }
        if let Some(b) = body_lines {
            assert_eq!(body, b.join("\n"), "{cmd}");
        }
    }
}
