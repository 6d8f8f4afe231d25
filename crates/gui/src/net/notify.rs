//! Desktop notifications, shown by notify-rust.

/// Shows a desktop notification (blocking: D-Bus). Notification services
/// may read the body as simple markup, so others' text is escaped.
pub(super) fn notify(summary: &str, body: &str) {
    let escape = |s: &str| {
        s.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
    };
    if let Err(e) = notify_rust::Notification::new()
        .appname("ChatUs")
        .summary(summary)
        .body(&escape(body))
        .show()
    {
        tracing::debug!(cause = %e, "no desktop notification");
    }
}
