//! `chatus-bench report`: turns the JSON lines of a run into the Markdown
//! tables of BENCHMARKS.md, with ChatUs / nats-server ratios where both
//! were measured in the same run.

use std::fmt::Write as _;

use serde_json::Value;

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or(0.0)
}

fn num(x: f64) -> String {
    if x >= 1e6 {
        format!("{:.2} M", x / 1e6)
    } else if x >= 1e4 {
        format!("{:.0} k", x / 1e3)
    } else if x >= 100.0 {
        format!("{x:.0}")
    } else {
        format!("{x:.2}")
    }
}

fn ratio(a: f64, b: f64) -> String {
    if b > 0.0 {
        format!("{:.2}×", a / b)
    } else {
        "–".into()
    }
}

fn lat(r: &Value) -> String {
    let l = &r["latency_us"];
    format!(
        "{} / {} / {} / {} / {}",
        f(&l["p50"]),
        f(&l["p90"]),
        f(&l["p99"]),
        f(&l["p99.9"]),
        f(&l["max"])
    )
}

fn find<'a>(
    rows: &'a [Value],
    workload: &str,
    system: &str,
    pred: impl Fn(&Value) -> bool,
) -> Option<&'a Value> {
    rows.iter()
        .find(|r| r["workload"] == workload && r["system"] == system && pred(&r["params"]))
}

/// Renders Markdown from JSON lines.
pub fn render(lines: &str) -> String {
    let rows: Vec<Value> = lines
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let mut out = String::new();

    // 1. Fan-out.
    let mut keys: Vec<(u64, u64)> = rows
        .iter()
        .filter(|r| r["workload"] == "fanout")
        .map(|r| {
            (
                r["params"]["members"].as_u64().unwrap_or(0),
                r["params"]["window"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    keys.sort_unstable();
    keys.dedup();
    if !keys.is_empty() {
        let _ = writeln!(out, "### 1. Room fan-out (closed loop)\n");
        let _ = writeln!(
            out,
            "| members | in flight | ChatUs deliveries/s | nats deliveries/s | ratio | ChatUs latency µs p50 / p90 / p99 / p99.9 / max | nats latency µs p50 / p90 / p99 / p99.9 / max | ChatUs CPU s per M | nats CPU s per M |"
        );
        let _ = writeln!(out, "|---:|---:|---:|---:|---:|---|---|---:|---:|");
        for (n, w) in keys {
            let pick = |sys| {
                find(&rows, "fanout", sys, |p| {
                    p["members"] == n && p["window"] == w
                })
            };
            let (c, nats) = (pick("chatus"), pick("nats"));
            let cd = c.map_or(0.0, |r| f(&r["deliveries_per_sec"]));
            let nd = nats.map_or(0.0, |r| f(&r["deliveries_per_sec"]));
            let _ = writeln!(
                out,
                "| {n} | {w} | {} | {} | {} | {} | {} | {} | {} |",
                num(cd),
                if nats.is_some() {
                    num(nd)
                } else {
                    "–".into()
                },
                ratio(cd, nd),
                c.map_or("–".into(), lat),
                nats.map_or("–".into(), lat),
                c.map_or("–".into(), |r| format!(
                    "{:.2}",
                    f(&r["cpu_s_per_million"])
                )),
                nats.map_or("–".into(), |r| format!(
                    "{:.2}",
                    f(&r["cpu_s_per_million"])
                )),
            );
        }
        out.push('\n');
    }

    // 2. Sustainable rate.
    let steps: Vec<&Value> = rows.iter().filter(|r| r["workload"] == "rate").collect();
    if !steps.is_empty() {
        let _ = writeln!(
            out,
            "### 2. Sustainable rate (open loop, stepped until p99 > 10 ms)\n"
        );
        let _ = writeln!(
            out,
            "| system | members | offered deliveries/s | achieved | latency µs p50 / p90 / p99 / p99.9 / max | CPU s per M |"
        );
        let _ = writeln!(out, "|---|---:|---:|---:|---|---:|");
        for r in &steps {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {:.2} |",
                r["system"].as_str().unwrap_or("?"),
                r["params"]["members"],
                num(f(&r["params"]["offered_deliveries_per_sec"])),
                num(f(&r["deliveries_per_sec"])),
                lat(r),
                f(&r["cpu_s_per_million"])
            );
        }
        let c = rows
            .iter()
            .find(|r| r["workload"] == "rate_summary" && r["system"] == "chatus");
        let n = rows
            .iter()
            .find(|r| r["workload"] == "rate_summary" && r["system"] == "nats");
        let cs = c.map_or(0.0, |r| f(&r["sustainable_deliveries_per_sec"]));
        let ns = n.map_or(0.0, |r| f(&r["sustainable_deliveries_per_sec"]));
        let _ = writeln!(
            out,
            "\nHeadline (last step with p99 under 10 ms): ChatUs {} deliveries/s, nats-server {} deliveries/s, ratio {}.\n",
            num(cs),
            num(ns),
            ratio(cs, ns)
        );
    }

    // 3, 4. ChatUs-only traffic shapes.
    let shapes: Vec<&Value> = rows
        .iter()
        .filter(|r| {
            ["many_senders", "small_rooms", "direct"]
                .contains(&r["workload"].as_str().unwrap_or(""))
        })
        .collect();
    if !shapes.is_empty() {
        let _ = writeln!(
            out,
            "### 3–4. Many senders, many small rooms, direct messages (ChatUs)\n"
        );
        let _ = writeln!(
            out,
            "| workload | shape | deliveries/s | latency µs p50 / p90 / p99 / p99.9 / max | CPU s per M |"
        );
        let _ = writeln!(out, "|---|---|---:|---|---:|");
        for r in shapes {
            let p = &r["params"];
            let shape = match r["workload"].as_str() {
                Some("many_senders") => format!(
                    "{} members all sending {} msg/s",
                    p["members"], p["msgs_per_sec_each"]
                ),
                Some("small_rooms") => format!(
                    "{} users in rooms of {}, each {} msg/s",
                    p["users"], p["room_size"], p["msgs_per_sec_each"]
                ),
                _ => format!(
                    "{} pairs, each side {} msg/s",
                    p["pairs"], p["msgs_per_sec_each"]
                ),
            };
            let _ = writeln!(
                out,
                "| {} | {shape} | {} | {} | {:.2} |",
                r["workload"].as_str().unwrap_or("?"),
                num(f(&r["deliveries_per_sec"])),
                lat(r),
                f(&r["cpu_s_per_million"])
            );
        }
        out.push('\n');
    }

    // 5. Slow consumers.
    let slow: Vec<&Value> = rows.iter().filter(|r| r["workload"] == "slow").collect();
    if !slow.is_empty() {
        let _ = writeln!(out, "### 5. Slow consumers (K members stop reading)\n");
        let _ = writeln!(
            out,
            "| system | members | stalled | offered deliveries/s | others' deliveries/s | others' latency µs p50 / p90 / p99 / p99.9 / max | server RSS before → peak (MiB) | stalled ones disconnected |"
        );
        let _ = writeln!(out, "|---|---:|---:|---:|---:|---|---|---:|");
        for r in slow {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} | {:.1} → {:.1} | {} |",
                r["system"].as_str().unwrap_or("?"),
                r["params"]["members"],
                r["params"]["stalled"],
                num(f(&r["params"]["offered_deliveries_per_sec"])),
                num(f(&r["deliveries_per_sec"])),
                lat(r),
                f(&r["server_rss_before_kib"]) / 1024.0,
                f(&r["server_rss_peak_kib"]) / 1024.0,
                r["stalled_disconnected"]
            );
        }
        out.push('\n');
    }

    // 6. Idle.
    let idle: Vec<&Value> = rows.iter().filter(|r| r["workload"] == "idle").collect();
    if !idle.is_empty() {
        let _ = writeln!(out, "### 6. Idle logged-in connections (ChatUs)\n");
        let _ = writeln!(
            out,
            "| connections | server RSS before → after (MiB) | bytes per connection | seconds to connect and log in all | kernel bytes per socket |"
        );
        let _ = writeln!(out, "|---:|---|---:|---:|---:|");
        for r in idle {
            let secs = r["connect_seconds"]
                .as_f64()
                .map_or_else(|| "–".to_owned(), |s| format!("{s:.2}"));
            let kernel = r["kernel_bytes_per_socket"]
                .as_f64()
                .map_or_else(|| "–".to_owned(), |b| format!("{b:.0}"));
            let _ = writeln!(
                out,
                "| {} | {:.1} → {:.1} | {} | {secs} | {kernel} |",
                r["params"]["connections"],
                f(&r["server_rss_before_kib"]) / 1024.0,
                f(&r["server_rss_after_kib"]) / 1024.0,
                f(&r["bytes_per_connection"])
            );
        }
        out.push('\n');
    }

    // 7. Storm.
    for r in rows.iter().filter(|r| r["workload"] == "storm") {
        let _ = writeln!(out, "### 7. Connect storm (ChatUs)\n");
        let _ = writeln!(
            out,
            "| clients | rounds | median seconds | best seconds | per second (median) |"
        );
        let _ = writeln!(out, "|---:|---:|---:|---:|---:|");
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} |\n",
            r["params"]["clients"],
            r["params"]["rounds"],
            f(&r["seconds_median"]),
            f(&r["seconds_best"]),
            num(f(&r["per_sec_median"]))
        );
    }

    // 8. Ingest.
    // Records with a `store` are workload 17's (table 17).
    for r in rows
        .iter()
        .filter(|r| r["workload"] == "ingest" && r.get("store").is_none())
    {
        let _ = writeln!(
            out,
            "### 8. Durable ingest (ChatUs, persistence as shipped)\n"
        );
        let _ = writeln!(
            out,
            "| senders | in flight each | acknowledged/s | echo latency µs p50 / p90 / p99 / p99.9 / max | CPU s per M |"
        );
        let _ = writeln!(out, "|---:|---:|---:|---|---:|");
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {:.2} |\n",
            r["params"]["senders"],
            r["params"]["window_each"],
            num(f(&r["acked_per_sec"])),
            lat(r),
            f(&r["cpu_s_per_million"])
        );
    }

    // 9. Failed-login flood.
    for r in rows.iter().filter(|r| r["workload"] == "logins") {
        logins(&mut out, r);
    }

    // 10. Stalled before login.
    for r in rows.iter().filter(|r| r["workload"] == "prelogin") {
        let p = &r["params"];
        let _ = writeln!(
            out,
            "### 10. Connections stalled mid-frame before login (ChatUs, {})\n",
            p["limits"].as_str().unwrap_or("?")
        );
        let _ = writeln!(
            out,
            "| addresses | tried from each | let in | refused | frame bytes sent | server RSS before → after (MiB) | bytes per connection |"
        );
        let _ = writeln!(out, "|---:|---:|---:|---:|---:|---|---:|");
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {:.1} → {:.1} | {} |\n",
            p["sources"],
            p["per_source"],
            r["opened"],
            r["refused"],
            f(&p["frame_bytes"]) - 1.0,
            f(&r["server_rss_before_kib"]) / 1024.0,
            f(&r["server_rss_after_kib"]) / 1024.0,
            f(&r["bytes_per_connection"])
        );
    }
    tls_cost(&mut out, &rows);
    for r in rows.iter().filter(|r| r["workload"] == "typing") {
        typing(&mut out, r);
    }
    for r in rows.iter().filter(|r| r["workload"] == "receipts") {
        receipts(&mut out, r);
    }
    for r in rows.iter().filter(|r| r["workload"] == "reactions") {
        reactions(&mut out, r);
    }
    for r in rows.iter().filter(|r| r["workload"] == "search") {
        search(&mut out, r);
    }
    cluster_fanout(&mut out, &rows);
    pg_ingest(&mut out, &rows);
    out
}

/// Table 16, the cross-node fan-out: every setup of one run, with each
/// p99 against the first setup's (one node as shipped).
fn cluster_fanout(out: &mut String, rows: &[Value]) {
    let runs: Vec<&Value> = rows
        .iter()
        .filter(|r| r["workload"] == "cluster_fanout")
        .collect();
    let Some(first) = runs.first() else {
        return;
    };
    let p = &first["params"];
    let _ = writeln!(
        out,
        "### 16. Cross-node fan-out ({} members, {} msg/s offered, {} messages measured per setup)\n",
        p["members"], p["msgs_per_sec"], p["messages"]
    );
    let _ = writeln!(
        out,
        "| setup | delivered / expected | deliveries/s | latency µs p50 / p90 / p99 / p99.9 / max | p99 µs on the sender's node / on the others | p99 vs first row | ChatUs CPU s per M |"
    );
    let _ = writeln!(out, "|---|---:|---:|---|---|---:|---:|");
    let base = f(&first["latency_us"]["p99"]);
    for r in &runs {
        let others = if r["params"]["nodes"].as_u64().unwrap_or(1) > 1 {
            format!("{}", f(&r["latency_other_nodes_us"]["p99"]))
        } else {
            "–".into()
        };
        let _ = writeln!(
            out,
            "| {} | {} / {} | {} | {} | {} / {} | {} | {:.2} |",
            r["setup"].as_str().unwrap_or("?"),
            r["deliveries"],
            r["expected"],
            num(f(&r["deliveries_per_sec"])),
            lat(r),
            f(&r["latency_same_node_us"]["p99"]),
            others,
            ratio(f(&r["latency_us"]["p99"]), base),
            f(&r["cpu_s_per_million"])
        );
    }
    out.push('\n');
}

/// Table 17, durable ingest on each store of one run, against the first.
fn pg_ingest(out: &mut String, rows: &[Value]) {
    let runs: Vec<&Value> = rows
        .iter()
        .filter(|r| r["workload"] == "ingest" && r.get("store").is_some())
        .collect();
    let Some(first) = runs.first() else {
        return;
    };
    let _ = writeln!(out, "### 17. Durable ingest, PostgreSQL against SQLite\n");
    let _ = writeln!(
        out,
        "| store | senders | in flight each | acknowledged/s | vs first row | ack latency µs p50 / p90 / p99 / p99.9 / max | echo latency µs p50 / p99 | ChatUs CPU s per M |"
    );
    let _ = writeln!(out, "|---|---:|---:|---:|---:|---|---|---:|");
    let base = f(&first["acked_per_sec"]);
    for r in &runs {
        let ack = &r["ack_latency_us"];
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} / {} / {} / {} / {} | {} / {} | {:.2} |",
            r["store"].as_str().unwrap_or("?"),
            r["params"]["senders"],
            r["params"]["window_each"],
            num(f(&r["acked_per_sec"])),
            ratio(f(&r["acked_per_sec"]), base),
            f(&ack["p50"]),
            f(&ack["p90"]),
            f(&ack["p99"]),
            f(&ack["p99.9"]),
            f(&ack["max"]),
            f(&r["latency_us"]["p50"]),
            f(&r["latency_us"]["p99"]),
            f(&r["cpu_s_per_million"])
        );
    }
    out.push('\n');
}

/// One row per mode of a typing or receipts record: what every mode shares.
fn mode_row(m: &Value) -> String {
    let l = &m["latency_us"];
    format!(
        "{} | {} / {} / {} | {:.3} | {:.2}",
        num(f(&m["messages"])),
        f(&l["p50"]),
        f(&l["p99"]),
        f(&l["max"]),
        f(&m["server_cpu_s"]) / f(&m["seconds"]).max(1e-9),
        f(&m["server_cpu_ms_per_message"])
    )
}

/// 13. Typing in a large room, with and without, in one run.
fn typing(out: &mut String, r: &Value) {
    let p = &r["params"];
    let _ = writeln!(
        out,
        "### 13. Typing in a room of {} (ChatUs; {} messages/s throughout, {} typers flipping every {} ms in the typing phases)\n",
        p["members"], p["msgs_per_sec"], p["typers"], p["period_ms"]
    );
    let _ = writeln!(
        out,
        "| phases | messages | message latency µs p50 / p99 / max | server CPU s per s | CPU ms per message | typing events delivered/s |"
    );
    let _ = writeln!(out, "|---|---:|---|---:|---:|---:|");
    for mode in ["off", "typing"] {
        let m = &r["modes"][mode];
        let _ = writeln!(
            out,
            "| {mode} | {} | {} |",
            mode_row(m),
            num(f(&m["typing_events_per_sec"]))
        );
    }
    let d = &r["derived"];
    let _ = writeln!(
        out,
        "\np99 with / without typing: {:.2}×; extra server CPU per typing event delivered: {:.2} µs.\n",
        f(&d["p99_ratio_typing_vs_off"]),
        f(&d["extra_server_cpu_us_per_typing_event"])
    );
}

/// 14. Read receipts in a large room: none, private, public, in one run.
fn receipts(out: &mut String, r: &Value) {
    let p = &r["params"];
    let _ = writeln!(
        out,
        "### 14. Read receipts in a room of {} (ChatUs; {} messages/s, every member marks each one read)\n",
        p["members"], p["msgs_per_sec"]
    );
    let _ = writeln!(
        out,
        "| receipts | messages | message latency µs p50 / p99 / max | server CPU s per s | CPU ms per message | `read` frames per member per message | `read` bytes per member per message | p99 vs none |"
    );
    let _ = writeln!(out, "|---|---:|---|---:|---:|---:|---:|---:|");
    for mode in ["off", "private", "public"] {
        let m = &r["modes"][mode];
        let vs = if mode == "off" {
            "1.00×".to_owned()
        } else {
            format!(
                "{:.2}×",
                f(&r["derived"][format!("p99_ratio_{mode}_vs_off")])
            )
        };
        let _ = writeln!(
            out,
            "| {} | {} | {:.3} | {} | {vs} |",
            if mode == "off" { "none" } else { mode },
            mode_row(m),
            f(&m["read_frames_per_member_per_message"]),
            num(f(&m["read_bytes_per_member_per_message"]))
        );
    }
    out.push('\n');
}

/// Reactions in a large room, with and without, in one run.
fn reactions(out: &mut String, r: &Value) {
    let p = &r["params"];
    let _ = writeln!(
        out,
        "### Reactions in a room of {} (ChatUs; {} messages/s throughout, {} reactors each adding or taking back a reaction every {} ms in the reaction phases)\n",
        p["members"], p["msgs_per_sec"], p["reactors"], p["period_ms"]
    );
    let _ = writeln!(
        out,
        "| phases | messages | message latency µs p50 / p99 / max | server CPU s per s | CPU ms per message | reactions/s | `reacted` frames per member per reaction | bytes per member per reaction |"
    );
    let _ = writeln!(out, "|---|---:|---|---:|---:|---:|---:|---:|");
    for mode in ["off", "reactions"] {
        let m = &r["modes"][mode];
        let _ = writeln!(
            out,
            "| {mode} | {} | {:.1} | {:.3} | {} |",
            mode_row(m),
            f(&m["requests_per_sec"]),
            f(&m["reaction_events_per_member_per_reaction"]),
            num(f(&m["reaction_bytes_per_member_per_reaction"]))
        );
    }
    let d = &r["derived"];
    let _ = writeln!(
        out,
        "\np99 with / without reactions: {:.2}×; extra server CPU per reaction: {:.2} µs.\n",
        f(&d["p99_ratio_reactions_vs_off"]),
        f(&d["extra_server_cpu_us_per_reaction"])
    );
}

/// 15. Search over many stored messages.
fn search(out: &mut String, r: &Value) {
    let p = &r["params"];
    let _ = writeln!(
        out,
        "### 15. Search over {} stored messages (ChatUs, first page of 20)\n",
        num(f(&r["stored"]))
    );
    let b = &r["db_bytes_per_message"];
    let _ = writeln!(
        out,
        "Filled by {} senders ({} in flight each, {}-byte bodies of words) at {} messages/s, {:.2} µs of server CPU per message. Database bytes per message: FTS index {}, the rest {}, total {}.\n",
        p["senders"],
        p["window_each"],
        p["body_bytes"],
        num(f(&r["fill_per_sec"])),
        f(&r["fill_server_cpu_us_per_message"]),
        b["fts_index"],
        b["everything_else"],
        b["total"]
    );
    let _ = writeln!(
        out,
        "| query | messages holding it | all conversations: ms median / p90 / max | one room ({} messages): ms median / p90 / max |",
        p["room_messages"]
    );
    let _ = writeln!(out, "|---|---:|---|---|");
    let scope = |s: &Value| {
        if f(&s["errors"]) > 0.0 {
            format!(
                "{} / {} refused ({})",
                s["errors"],
                p["reps"],
                s["error"].as_str().unwrap_or("?")
            )
        } else {
            format!(
                "{:.1} / {:.1} / {:.1}",
                f(&s["median_ms"]),
                f(&s["p90_ms"]),
                f(&s["max_ms"])
            )
        }
    };
    for q in r["queries"].as_array().into_iter().flatten() {
        let with = q["messages_with_word"]
            .as_f64()
            .map_or_else(|| "–".to_owned(), num);
        let _ = writeln!(
            out,
            "| {} `{}` | {with} | {} | {} |",
            q["query"].as_str().unwrap_or("?"),
            q["text"].as_str().unwrap_or("?"),
            scope(&q["scopes"]["all"]),
            scope(&q["scopes"]["room"])
        );
    }
    out.push('\n');
}

/// `median / max (n)` of a probe's times, with its failures counted.
fn probe_ms(probe: &Value, which: &str) -> String {
    let s = &probe[which];
    let fmt = |v: &Value| {
        v.as_f64().map_or_else(
            || "–".to_owned(),
            |x| {
                if x < 10.0 {
                    format!("{x:.1}")
                } else {
                    format!("{x:.0}")
                }
            },
        )
    };
    format!(
        "{} / {} ({})",
        fmt(&s["median"]),
        fmt(&s["max"]),
        s["samples"]
    )
}

/// `rate_limited` answers by what was limited: `N (what: n; …)`.
fn limited(by_what: &Value) -> String {
    let Some(m) = by_what.as_object() else {
        return "0".into();
    };
    let total: u64 = m.values().filter_map(Value::as_u64).sum();
    let parts: Vec<String> = m.iter().map(|(what, n)| format!("{what}: {n}")).collect();
    format!("{total} ({})", parts.join("; "))
}

fn logins(out: &mut String, r: &Value) {
    let p = &r["params"];
    let _ = writeln!(
        out,
        "### 9. Failed-login flood (ChatUs, {})\n",
        p["limits"].as_str().unwrap_or("?")
    );
    let _ = writeln!(
        out,
        "{} connections from {} addresses, {} s; answers: {} `bad_credentials` ({:.1}/s), `rate_limited` {}, `server_busy` {}; server CPU {:.1} s, RSS before / peak / end / 3 s after {:.1} / {:.1} / {:.1} / {:.1} MiB.\n",
        p["connections"],
        p["sources"],
        f(&p["seconds"]),
        r["answers"]["bad_credentials"],
        f(&r["bad_credentials_per_sec"]),
        limited(&r["answers"]["rate_limited"]),
        r["answers"]["server_busy"],
        f(&r["server_cpu_s"]),
        f(&r["server_rss_kib"]["before"]) / 1024.0,
        f(&r["server_rss_kib"]["peak"]) / 1024.0,
        f(&r["server_rss_kib"]["end"]) / 1024.0,
        f(&r["server_rss_kib"]["after"]) / 1024.0,
    );
    let _ = writeln!(
        out,
        "| | password login from another address, ms median / max (samples) | token login, ms median / max (samples) | failed probes |"
    );
    let _ = writeln!(out, "|---|---|---|---:|");
    for (label, key) in [("no flood", "baseline"), ("during the flood", "flood")] {
        let probe = &r[key];
        let _ = writeln!(
            out,
            "| {label} | {} | {} | {} |",
            probe_ms(probe, "password_login_ms"),
            probe_ms(probe, "token_login_ms"),
            probe["failures"].as_array().map_or(0, Vec::len)
        );
    }
    out.push('\n');
}

/// 12. What TLS costs: each part's plain and TLS records of one run.
fn tls_cost(out: &mut String, rows: &[Value]) {
    let pick = |w: &str, tls: bool| rows.iter().rfind(|r| r["workload"] == w && r["tls"] == tls);
    let fanout = (pick("tls_fanout", false), pick("tls_fanout", true));
    let idle = (pick("tls_idle", false), pick("tls_idle", true));
    if fanout.0.is_none() && idle.0.is_none() {
        return;
    }
    let _ = writeln!(
        out,
        "### 12. TLS cost (ChatUs, plain and TLS in the same run)\n"
    );
    let _ = writeln!(out, "| measure | plain | TLS | TLS / plain |");
    let _ = writeln!(out, "|---|---:|---:|---:|");
    if let (Some(p), Some(t)) = fanout {
        let params = &p["params"];
        let (pd, td) = (f(&p["deliveries_per_sec"]), f(&t["deliveries_per_sec"]));
        let _ = writeln!(
            out,
            "| fan-out deliveries/s ({} members, {} in flight) | {} | {} | {} |",
            params["members"],
            params["window"],
            num(pd),
            num(td),
            ratio(td, pd)
        );
        // CPU seconds per million deliveries are CPU µs per delivery.
        let (pc, tc) = (f(&p["cpu_s_per_million"]), f(&t["cpu_s_per_million"]));
        let _ = writeln!(
            out,
            "| server CPU µs per delivery | {pc:.2} | {tc:.2} | {} |",
            ratio(tc, pc)
        );
    }
    if let (Some(p), Some(t)) = idle {
        let (pb, tb) = (
            f(&p["bytes_per_connection"]) / 1024.0,
            f(&t["bytes_per_connection"]) / 1024.0,
        );
        let _ = writeln!(
            out,
            "| server KiB per idle connection ({} connections) | {pb:.1} | {tb:.1} | {} |",
            p["params"]["connections"],
            ratio(tb, pb)
        );
    }
    out.push('\n');
}

#[cfg(test)]
mod tests {
    #[test]
    fn renders_a_fanout_pair_with_its_ratio() {
        let lines = [
            r#"{"workload":"fanout","system":"chatus","params":{"members":10,"window":1},"deliveries_per_sec":2000,"latency_us":{"p50":1,"p90":2,"p99":3,"p99.9":4,"max":5},"cpu_s_per_million":1.5}"#,
            r#"{"workload":"fanout","system":"nats","params":{"members":10,"window":1},"deliveries_per_sec":1000,"latency_us":{"p50":1,"p90":2,"p99":3,"p99.9":4,"max":5},"cpu_s_per_million":2.5}"#,
        ]
        .join("\n");
        let md = super::render(&lines);
        assert!(md.contains("| 10 | 1 | 2000 | 1000 | 2.00× |"), "{md}");
    }

    #[test]
    fn renders_the_cluster_tables_against_their_first_rows() {
        let lat = r#"{"p50":1,"p90":2,"p99":4,"p99.9":5,"max":6}"#;
        let lines = [
            format!(
                r#"{{"workload":"cluster_fanout","setup":"sqlite, 1 node","params":{{"members":6,"nodes":1,"msgs_per_sec":50.0,"messages":20}},"deliveries":120,"expected":120,"deliveries_per_sec":300,"latency_us":{lat},"latency_same_node_us":{lat},"cpu_s_per_million":2.0}}"#
            ),
            format!(
                r#"{{"workload":"cluster_fanout","setup":"postgres+nats, 3 nodes","params":{{"members":6,"nodes":3,"msgs_per_sec":50.0,"messages":20}},"deliveries":120,"expected":120,"deliveries_per_sec":300,"latency_us":{{"p50":1,"p90":2,"p99":6,"p99.9":7,"max":8}},"latency_same_node_us":{lat},"latency_other_nodes_us":{{"p99":7}},"cpu_s_per_million":3.0}}"#
            ),
            format!(
                r#"{{"workload":"ingest","params":{{"senders":3,"window_each":4}},"acked_per_sec":900,"latency_us":{lat},"ack_latency_us":{lat},"cpu_s_per_million":9.0}}"#
            ),
            format!(
                r#"{{"workload":"ingest","store":"sqlite","params":{{"senders":3,"window_each":4}},"acked_per_sec":1000,"latency_us":{lat},"ack_latency_us":{lat},"cpu_s_per_million":9.0}}"#
            ),
            format!(
                r#"{{"workload":"ingest","store":"postgres","params":{{"senders":3,"window_each":4}},"acked_per_sec":500,"latency_us":{lat},"ack_latency_us":{lat},"cpu_s_per_million":9.0}}"#
            ),
        ]
        .join("\n");
        let md = super::render(&lines);
        assert!(
            md.contains(
                "| postgres+nats, 3 nodes | 120 / 120 | 300 | 1 / 2 / 6 / 7 / 8 | 4 / 7 | 1.50× |"
            ),
            "{md}"
        );
        assert!(md.contains("| postgres | 3 | 4 | 500 | 0.50× |"), "{md}");
        // Table 8 keeps only workload 8's own record; table 17 the others.
        assert_eq!(md.matches("| 3 | 4 | 900 |").count(), 1, "{md}");
        assert_eq!(md.matches("| 3 | 4 | 1000 |").count(), 1, "{md}");
        assert!(md.contains("| sqlite | 3 | 4 | 1000 |"), "{md}");
    }
}
