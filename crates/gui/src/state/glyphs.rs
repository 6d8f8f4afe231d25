//! Text no installed font can draw shows as boxes. The window finds such
//! characters (`fonts::GlyphCheck`); here they become a suggestion, once per
//! kind, in the status line: which font package to install.
//!
//! Package names are Debian's (and Ubuntu's), the platform the README
//! documents; the same Noto fonts exist under other names elsewhere.

use super::State;

/// A kind of text that needs a font the system lacks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FontGap {
    /// Chinese, Japanese or Korean.
    Cjk,
    /// Emoji and pictographs.
    Emoji,
    /// Any other script (Arabic, Hebrew, Indic, Thai, …).
    Other,
}

impl FontGap {
    /// The kind of text `c` belongs to.
    pub fn of(c: char) -> FontGap {
        match c {
            '\u{1100}'..='\u{11FF}'     // Hangul Jamo
            | '\u{2E80}'..='\u{2FDF}'   // CJK radicals
            | '\u{2FF0}'..='\u{303F}'   // ideographic description, CJK punctuation
            | '\u{3040}'..='\u{33FF}'   // kana, bopomofo, Hangul compatibility, CJK compatibility
            | '\u{3400}'..='\u{4DBF}'   // CJK extension A
            | '\u{4E00}'..='\u{9FFF}'   // CJK unified ideographs
            | '\u{A960}'..='\u{A97F}'
            | '\u{AC00}'..='\u{D7FF}'   // Hangul syllables
            | '\u{F900}'..='\u{FAFF}'   // CJK compatibility ideographs
            | '\u{FE30}'..='\u{FE4F}'
            | '\u{FF00}'..='\u{FFEF}'   // half- and full-width forms
            | '\u{20000}'..='\u{3FFFF}' => FontGap::Cjk,
            '\u{2190}'..='\u{21FF}'     // arrows
            | '\u{2300}'..='\u{23FF}'   // technical (⌚, ⏰)
            | '\u{2460}'..='\u{27BF}'   // enclosed, shapes, symbols, dingbats
            | '\u{2B00}'..='\u{2BFF}'
            | '\u{1F000}'..='\u{1FBFF}' => FontGap::Emoji,
            _ => FontGap::Other,
        }
    }

    /// What people call this text.
    pub fn what(self) -> &'static str {
        match self {
            FontGap::Cjk => "Chinese, Japanese or Korean text",
            FontGap::Emoji => "some emoji",
            FontGap::Other => "text in some scripts",
        }
    }

    /// The Debian/Ubuntu package with a font for it.
    pub fn package(self) -> &'static str {
        match self {
            FontGap::Cjk => "fonts-noto-cjk",
            FontGap::Emoji => "fonts-noto-color-emoji",
            FontGap::Other => "fonts-noto-core",
        }
    }
}

impl State {
    /// Message text has characters no font can draw: says once per kind
    /// which package to install.
    pub(super) fn glyphs_missing(&mut self, chars: &[char]) {
        let mut new: Vec<FontGap> = chars.iter().map(|c| FontGap::of(*c)).collect();
        new.sort_unstable();
        new.dedup();
        new.retain(|g| !self.font_gaps.contains(g));
        if new.is_empty() {
            return;
        }
        self.font_gaps.extend(new.iter().copied());
        let what: Vec<&str> = new.iter().map(|g| g.what()).collect();
        let packages: Vec<&str> = new.iter().map(|g| g.package()).collect();
        let mut what = what.join(" and ");
        if let Some(first) = what.get(..1) {
            what = first.to_uppercase() + &what[1..];
        }
        self.notice(
            format!(
                "{what} shows as boxes: no installed font has it. \
                 Install a font (Debian, Ubuntu: sudo apt install {}) and restart ChatUs.",
                packages.join(" "),
            ),
            false,
        );
    }
}
