//! Table tests for `Envelope::decode`: input frame → expected request (as
//! re-encoded JSON) or expected error code.

use chatus_protocol::{Envelope, ErrorCode};
use serde_json::{Value, json};

/// Decodes `input`; on success compares the re-encoded request with `want`.
fn check(input: &str, want: Value) {
    let env = Envelope::decode(input).unwrap_or_else(|e| panic!("{input}: {e}"));
    let got: Value = serde_json::from_str(&env.encode()).unwrap();
    assert_eq!(got, want, "input: {input}");
}

/// Decodes `input` and expects failure with `code` (and the echoed `id`).
fn check_err(input: &str, code: ErrorCode, id: Option<u64>) {
    match Envelope::decode(input) {
        Ok(env) => panic!("{input}: decoded to {env:?}, wanted {code}"),
        Err(e) => {
            assert_eq!(e.code, code, "input: {input} ({})", e.message);
            assert_eq!(e.id.map(|i| i.0), id, "input: {input}");
            assert!(
                e.message.ends_with('.'),
                "message is a sentence: {}",
                e.message
            );
        }
    }
}

#[test]
fn good_requests() {
    check(
        r#"{"type":"hello","version":1}"#,
        json!({"type":"hello","version":1}),
    );
    check(
        r#"{"type":"hello","version":1,"presence":false}"#,
        json!({"type":"hello","version":1,"presence":false}),
    );
    // `true` is the default and is not written out.
    check(
        r#"{"type":"hello","version":1,"presence":true}"#,
        json!({"type":"hello","version":1}),
    );
    check(
        r#"{"id":7,"type":"login","username":"Alice","password":"pw"}"#,
        json!({"id":7,"type":"login","username":"Alice","password":"pw"}),
    );
    check(
        r#"{"type":"send","room":"Lobby","body":"hi","client_id":"c1"}"#,
        json!({"type":"send","room":"lobby","body":"hi","client_id":"c1"}),
    );
    check(
        r#"{"type":"send","peer":"bob","body":"psst","client_id":"c2","id":null}"#,
        json!({"type":"send","peer":"bob","body":"psst","client_id":"c2"}),
    );
    check(
        r#"{"type":"history","room":"lobby","before":10,"limit":5}"#,
        json!({"type":"history","room":"lobby","before":10,"limit":5}),
    );
    check(
        r#"{"type":"history","peer":"bob"}"#,
        json!({"type":"history","peer":"bob"}),
    );
    check(
        r#"{"type":"create_room","room":"dev"}"#,
        json!({"type":"create_room","room":"dev","visibility":"public"}),
    );
    check(
        r#"{"type":"create_room","room":"ops","visibility":"private"}"#,
        json!({"type":"create_room","room":"ops","visibility":"private"}),
    );
    check(r#"{"type":"logout"}"#, json!({"type":"logout"}));
    check(
        r#"{"type":"logout","everywhere":false}"#,
        json!({"type":"logout"}),
    );
    check(
        r#"{"type":"logout","everywhere":true}"#,
        json!({"type":"logout","everywhere":true}),
    );
    check(
        r#"{"type":"change_password","current":"old one","new":"new one"}"#,
        json!({"type":"change_password","current":"old one","new":"new one"}),
    );
    check(
        r#"{"type":"mark_read","peer":"x","seq":3}"#,
        json!({"type":"mark_read","peer":"x","seq":3}),
    );
}

#[test]
fn bad_frames() {
    use ErrorCode::*;
    let cases: &[(&str, ErrorCode, Option<u64>)] = &[
        ("", InvalidJson, None),
        ("{", InvalidJson, None),
        ("hello", InvalidJson, None),
        ("[1,2]", InvalidMessage, None),
        ("\"hi\"", InvalidMessage, None),
        ("{}", InvalidMessage, None),
        (r#"{"id":-1,"type":"ping"}"#, InvalidMessage, None),
        (r#"{"id":"x","type":"ping"}"#, InvalidMessage, None),
        (r#"{"id":3,"type":5}"#, InvalidMessage, Some(3)),
        (r#"{"id":4,"type":"shout"}"#, UnknownType, Some(4)),
        (
            r#"{"id":5,"type":"ping","extra":1}"#,
            InvalidMessage,
            Some(5),
        ),
        (r#"{"type":"hello"}"#, InvalidMessage, None),
        (r#"{"type":"hello","version":"1"}"#, InvalidMessage, None),
        (
            r#"{"type":"hello","version":1,"presence":"no"}"#,
            InvalidMessage,
            None,
        ),
        (
            r#"{"type":"login","username":"a b","password":"x"}"#,
            InvalidUsername,
            None,
        ),
        (
            r#"{"type":"login","username":"al","password":""}"#,
            InvalidPassword,
            None,
        ),
        (r#"{"type":"auth","token":"short"}"#, InvalidToken, None),
        (
            r#"{"type":"change_password","current":"","new":"long enough"}"#,
            InvalidPassword,
            None,
        ),
        (
            r#"{"type":"change_password","current":"long enough","new":""}"#,
            InvalidPassword,
            None,
        ),
        (
            r#"{"type":"change_password","current":"long enough"}"#,
            InvalidMessage,
            None,
        ),
        (r#"{"type":"logout","everywhere":1}"#, InvalidMessage, None),
        (r##"{"type":"join_room","room":"#dev"}"##, InvalidRoom, None),
        (
            r#"{"type":"send","room":"lobby","body":"   ","client_id":"c"}"#,
            EmptyBody,
            None,
        ),
        (
            r#"{"type":"send","room":"lobby","body":"x","client_id":"a b"}"#,
            InvalidClientId,
            None,
        ),
        (
            r#"{"type":"send","body":"x","client_id":"c"}"#,
            InvalidMessage,
            None,
        ),
        (
            r#"{"type":"send","room":"a","peer":"b","body":"x","client_id":"c"}"#,
            InvalidMessage,
            None,
        ),
        (
            r#"{"type":"send","room":"a","body":"x","client_id":"c","sender":"mallory"}"#,
            InvalidMessage,
            None,
        ),
        (
            r#"{"type":"send","room":"a","body":"x","client_id":"c","file":"../../etc/passwd"}"#,
            UnknownFile,
            None,
        ),
        (
            r#"{"type":"list_files","room":"a","limit":5,"before":3}"#,
            InvalidMessage,
            None,
        ),
        (
            r#"{"type":"history","room":"a","before":1,"after":2}"#,
            InvalidMessage,
            None,
        ),
        (
            r#"{"type":"history","room":"a","limit":-3}"#,
            InvalidMessage,
            None,
        ),
        (
            r#"{"type":"invite","room":"a","user":"é"}"#,
            InvalidUsername,
            None,
        ),
        (
            r#"{"id":6,"type":"set_display_name","display_name":"a\u202eb"}"#,
            InvalidDisplayName,
            Some(6),
        ),
        (
            r#"{"type":"set_display_name","display_name":"  "}"#,
            InvalidDisplayName,
            None,
        ),
        (r#"{"type":"set_display_name"}"#, InvalidMessage, None),
        // Key backup: nested fields, each checked by its type.
        (
            r#"{"id":8,"type":"create_backup","algorithm":"other","key_check":"x"}"#,
            InvalidBackup,
            Some(8),
        ),
        (
            r#"{"type":"put_backup_keys","version":1,"keys":[]}"#,
            InvalidBackup,
            None,
        ),
        (
            r#"{"type":"put_backup_keys","version":1,"keys":[{"conversation":"room:a","sender_key":"short","session_id":"short","first_known_index":0,"sealed":"AAAA"}]}"#,
            InvalidBackup,
            None,
        ),
        (
            r#"{"type":"get_backup_keys","version":-1}"#,
            InvalidBackup,
            None,
        ),
        (r#"{"type":"get_backup","x":1}"#, InvalidMessage, None),
    ];
    for (input, code, id) in cases {
        check_err(input, *code, *id);
    }
}

#[test]
fn hostile_inputs_never_panic() {
    let deep = "[".repeat(10_000);
    let wide = format!(
        "{{\"type\":\"send\",\"room\":\"a\",\"body\":\"{}\",\"client_id\":\"c\"}}",
        "x".repeat(100_000)
    );
    for input in [
        deep.as_str(),
        wide.as_str(),
        "\u{0}",
        "{\"type\":\"\u{0}\"}",
        "1e999999",
    ] {
        let _ = Envelope::decode(input);
    }
}

/// A tiny deterministic generator, so failures reproduce.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

#[test]
fn mutated_requests_never_panic_and_errors_are_sentences() {
    let seeds = [
        r#"{"id":1,"type":"send","room":"lobby","body":"hi","client_id":"c1"}"#,
        r#"{"type":"history","peer":"bob","before":10,"limit":5}"#,
        r#"{"type":"register","username":"alice","password":"pw12345678"}"#,
        r#"{"type":"create_room","room":"dev","visibility":"private"}"#,
        r#"{"type":"mark_read","room":"x","seq":18446744073709551615}"#,
    ];
    let alphabet: &[&str] = &[
        "{", "}", "[", "]", "\"", ":", ",", "null", "-1", "1e400", "\\u0000", "é", "type",
        "\u{ffff}",
    ];
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    for _ in 0..20_000 {
        let mut s: Vec<char> = seeds[rng.below(seeds.len())].chars().collect();
        for _ in 0..1 + rng.below(4) {
            let at = rng.below(s.len() + 1);
            match rng.below(3) {
                0 if !s.is_empty() => {
                    s.remove(at.min(s.len() - 1));
                }
                1 => s
                    .splice(at..at, alphabet[rng.below(alphabet.len())].chars())
                    .for_each(drop),
                _ => s.truncate(at),
            }
        }
        let text: String = s.into_iter().collect();
        if let Err(e) = Envelope::decode(&text) {
            assert!(e.message.ends_with('.'), "{text:?} → {}", e.message);
        }
    }
}
