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
                loop {
                    let got = conn.recv().await;
                    if got["type"] == want["type"] && got.get("id") == want.get("id") {
                        let mut captured = vars.clone();
                        assert!(matches(&want, &got, &mut captured), "{line}\n  got: {got}");
                        vars = captured;
                        break;
                    }
                }
                checked += 1;
            }
            other => panic!("bad direction {other:?} in {line}"),
        }
    }
    assert!(checked > 30, "only {checked} frames checked");
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
