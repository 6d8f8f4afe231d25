//! The desktop app meets a server's self-signed certificate: on first
//! contact it shows the fingerprint and asks (Trust pins it, in the file
//! the CLI shares, and logs in; Cancel sends nothing), and a certificate
//! other than the pinned one is refused with an explanation and no way to
//! click through.

use chatus_client::{Fingerprint, KnownServers, ServerUrl};
use egui_kittest::kittest::Queryable as _;

use crate::util::*;

fn tls(c: &mut chatus_server::Config) {
    c.tls.plain = false;
}

#[test]
fn an_unknown_certificate_is_asked_about_then_trusted() {
    let server = Server::start_with(tls);
    let config = tempfile::tempdir().unwrap();
    let mut h = app(config.path());
    log_in_at(&mut h, "127.0.0.1", server.addr.port(), "alice", true);
    wait_until(&mut h, "the question", |h| shows(h, "Trust this server?"));
    let fingerprint = h
        .state()
        .state()
        .login
        .certificate
        .as_ref()
        .unwrap()
        .fingerprint
        .clone();
    assert!(shows(&h, &fingerprint), "the fingerprint is shown");

    // Cancel: back to the form, nothing pinned.
    h.get_by_label("Cancel").click();
    wait_until(&mut h, "the refusal", |h| shows(h, "Not trusted"));
    let known = KnownServers::new(config.path().to_owned());
    let url = ServerUrl::parse(&format!("127.0.0.1:{}", server.addr.port())).unwrap();
    assert_eq!(known.pinned(&url).unwrap(), None);

    // Again, and Trust: pinned, and logged in.
    log_in_at(&mut h, "127.0.0.1", server.addr.port(), "alice", true);
    wait_until(&mut h, "the question", |h| shows(h, "Trust this server?"));
    h.get_by_label("Trust").click();
    wait_until(&mut h, "logged in", |h| shows(h, "Message #lobby"));
    assert_eq!(
        known.pinned(&url).unwrap(),
        Some(Fingerprint::parse(&fingerprint).unwrap())
    );
}

#[test]
fn a_changed_certificate_is_refused_without_a_way_through() {
    let server = Server::start_with(tls);
    let config = tempfile::tempdir().unwrap();
    let url = ServerUrl::parse(&format!("127.0.0.1:{}", server.addr.port())).unwrap();
    // Pinned earlier: another certificate.
    let old = Fingerprint::of(b"the certificate it had before");
    KnownServers::new(config.path().to_owned())
        .pin(&url, &old)
        .unwrap();
    let mut h = app(config.path());
    log_in_at(&mut h, "127.0.0.1", server.addr.port(), "bob", true);
    wait_until(&mut h, "the refusal", |h| {
        shows(h, "Certificate changed: not connected")
    });
    assert!(shows(&h, old.as_str()), "the pinned fingerprint is named");
    assert!(shows(&h, "intercepting"));
    assert!(
        h.query_by_label("Trust").is_none(),
        "no way to click through"
    );
    h.get_by_label("OK").click();
    wait_until(&mut h, "back to the form", |h| shows(h, "Create account"));
}
