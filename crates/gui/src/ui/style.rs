//! Small helpers shared by the screens: name colours, local times, day
//! labels, file sizes, and splitting text into plain runs and links.

use chatus_client::protocol::Timestamp;
use eframe::egui::{self, Color32};

/// A stable colour for a user name, readable on the current theme.
pub fn name_color(ui: &egui::Ui, name: &str) -> Color32 {
    let mut h: u32 = 2166136261;
    for b in name.to_ascii_lowercase().bytes() {
        h = (h ^ u32::from(b)).wrapping_mul(16777619);
    }
    let hue = (h % 360) as f32 / 360.0;
    let value = if ui.visuals().dark_mode { 0.85 } else { 0.55 };
    egui::ecolor::Hsva::new(hue, 0.65, value, 1.0).into()
}

fn zoned(t: Timestamp) -> Option<jiff::ZonedDateTime> {
    let ts = jiff::Timestamp::from_millisecond(i64::try_from(t.0).ok()?).ok()?;
    Some(ts.to_zoned_datetime(jiff::tz::TimeZone::system()))
}

/// A size in bytes for people, in the units the command line uses.
pub use chatus_client::transfer::human_size;

/// Progress as words: `1.5 MiB of 4.0 MiB (37%)`.
pub fn progress_text(done: u64, total: u64) -> String {
    let percent = if total == 0 {
        100
    } else {
        u128::from(done.min(total)) * 100 / u128::from(total)
    };
    format!("{} of {} ({percent}%)", human_size(done), human_size(total))
}

/// `HH:MM` in local time.
pub fn clock(t: Timestamp) -> String {
    zoned(t).map_or_else(String::new, |z| z.strftime("%H:%M").to_string())
}

/// The full local date and time, e.g. "Tuesday 24 November 2026, 14:03:07".
pub fn full_time(t: Timestamp) -> String {
    zoned(t).map_or_else(String::new, |z| {
        z.strftime("%A %-d %B %Y, %H:%M:%S").to_string()
    })
}

/// The local calendar day of a time, for grouping.
pub fn day(t: Timestamp) -> Option<jiff::civil::Date> {
    zoned(t).map(|z| z.date())
}

/// "Today", "Yesterday", or "Tuesday 24 November 2026".
pub fn day_label(d: jiff::civil::Date, today: Option<jiff::civil::Date>) -> String {
    if Some(d) == today {
        return "Today".into();
    }
    if today.and_then(|t| t.yesterday().ok()) == Some(d) {
        return "Yesterday".into();
    }
    d.strftime("%A %-d %B %Y").to_string()
}

/// Today's local date.
pub fn today() -> Option<jiff::civil::Date> {
    Some(jiff::ZonedDateTime::now().date())
}

/// A run of message text: plain, or a link.
#[derive(Debug, PartialEq, Eq)]
pub enum Run<'a> {
    /// Plain text.
    Text(&'a str),
    /// An `http(s)://` link.
    Link(&'a str),
}

/// Splits text into plain runs and links (`http://` or `https://` up to
/// white space, without trailing punctuation).
pub fn runs(text: &str) -> Vec<Run<'_>> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = find_link(rest) {
        if start > 0 {
            out.push(Run::Text(&rest[..start]));
        }
        let tail = &rest[start..];
        let mut end = tail.find(char::is_whitespace).unwrap_or(tail.len());
        while end > 0 && tail[..end].ends_with(['.', ',', ')', ';', ':', '!', '?', '\'', '"']) {
            end -= 1;
        }
        out.push(Run::Link(&tail[..end]));
        rest = &tail[end..];
    }
    if !rest.is_empty() {
        out.push(Run::Text(rest));
    }
    out
}

fn find_link(s: &str) -> Option<usize> {
    let a = s.find("https://");
    let b = s.find("http://");
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_links() {
        assert_eq!(runs("plain"), vec![Run::Text("plain")]);
        assert_eq!(
            runs("see https://example.org/a?b=c, and http://x.y."),
            vec![
                Run::Text("see "),
                Run::Link("https://example.org/a?b=c"),
                Run::Text(", and "),
                Run::Link("http://x.y"),
                Run::Text("."),
            ]
        );
        assert_eq!(runs("https://"), vec![Run::Link("https://")]);
    }

    #[test]
    fn full_times_name_the_day_and_the_second() {
        let t = jiff::civil::date(2026, 11, 24)
            .at(14, 3, 7, 0)
            .to_zoned_datetime(jiff::tz::TimeZone::system())
            .unwrap()
            .timestamp()
            .as_millisecond();
        assert_eq!(
            full_time(Timestamp(u64::try_from(t).unwrap())),
            "Tuesday 24 November 2026, 14:03:07"
        );
    }

    #[test]
    fn sizes_and_progress_read_as_the_command_line_writes_them() {
        assert_eq!(human_size(0), "0 B");
        assert_eq!(human_size(1023), "1023 B");
        assert_eq!(human_size(1536), "1.5 KiB");
        assert_eq!(human_size(4 << 30), "4.0 GiB");
        assert_eq!(progress_text(0, 0), "0 B of 0 B (100%)");
        assert_eq!(progress_text(3 << 20, 8 << 20), "3.0 MiB of 8.0 MiB (37%)");
        // No overflow at the extremes.
        assert!(progress_text(u64::MAX, u64::MAX).ends_with("(100%)"));
        assert!(progress_text(u64::MAX - 1, u64::MAX).ends_with("(99%)"));
    }

    #[test]
    fn day_labels() {
        let d = jiff::civil::date(2026, 11, 24);
        assert_eq!(day_label(d, Some(d)), "Today");
        assert_eq!(day_label(d, d.tomorrow().ok()), "Yesterday");
        assert_eq!(
            day_label(d, Some(jiff::civil::date(2027, 1, 1))),
            "Tuesday 24 November 2026"
        );
    }
}
