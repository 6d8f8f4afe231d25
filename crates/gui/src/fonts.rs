//! Fonts: emoji at the size of the text around them, in colour when the
//! system has a colour emoji font, and a check for characters that no font
//! can draw (they would show as boxes), so the app can say what to install.
//!
//! egui bundles a Latin/Cyrillic/Greek text font and monochrome emoji fonts,
//! and eframe's system font provider finds a system font for any other
//! character the bundled fonts lack (CJK, Arabic, …). Emoji never reach
//! it, because the bundled monochrome ones are found first, and egui draws
//! them at 81% of the text size. So: the bundled emoji fonts are set to
//! full size, and the system's colour emoji font, when there is one (looked
//! up on a background thread, since listing system fonts takes a while),
//! goes ahead of them. egui draws colour glyphs (`COLR`, `CBDT`, `sbix`) in
//! colour. Only a font with colour glyphs is taken: the first font with an
//! emoji is often a text font with a few monochrome ones (DejaVu Sans).

use std::collections::HashSet;
use std::sync::Arc;

use eframe::egui::{self, FontData, FontDefinitions, FontId};
use eframe::epaint::text::FontInsert;

/// The bundled emoji fonts (egui's `monochrome_emoji_fonts`).
const BUNDLED_EMOJI: [&str; 2] = ["NotoEmoji-Regular", "emoji-icon-font"];

/// The fonts to use: egui's, with emoji at text size, and `system_emoji`
/// (when given) ahead of the bundled emoji fonts but after the text fonts
/// (emoji fonts also have digits and `#`, which must stay text).
pub fn definitions(system_emoji: Option<FontInsert>) -> FontDefinitions {
    let mut defs = FontDefinitions::default();
    for name in BUNDLED_EMOJI {
        if let Some(data) = defs.font_data.get_mut(name) {
            let mut full = (**data).clone();
            full.tweak.scale = 1.0;
            *data = Arc::new(full);
        }
    }
    if let Some(font) = system_emoji {
        defs.font_data
            .insert(font.name.clone(), Arc::new(font.data));
        for chain in defs.families.values_mut() {
            let at = chain
                .iter()
                .position(|f| BUNDLED_EMOJI.contains(&f.as_str()))
                .unwrap_or(chain.len());
            chain.insert(at, font.name.clone());
        }
    }
    defs
}

/// Installs [`definitions`] now, and the system's emoji font once a
/// background thread has found it (the window repaints then).
pub fn install(ctx: &egui::Context) {
    ctx.set_fonts(definitions(None));
    let ctx = ctx.clone();
    let spawned = std::thread::Builder::new()
        .name("chatus-fonts".into())
        .spawn(move || {
            if let Some(font) = system_emoji_font() {
                tracing::debug!(font = %font.name, "emoji from the system");
                ctx.set_fonts(definitions(Some(font)));
                ctx.request_repaint();
            }
        });
    if let Err(e) = spawned {
        tracing::debug!(cause = %e, "no thread to look for an emoji font; bundled emoji only");
    }
}

/// The system's colour emoji font (the generic `emoji` family, e.g. Noto
/// Color Emoji), if it has one.
fn system_emoji_font() -> Option<FontInsert> {
    use fontique::{
        Collection, CollectionOptions, GenericFamily, QueryFamily, QueryStatus, SourceCache,
        SourceCacheOptions,
    };
    let mut collection = Collection::new(CollectionOptions {
        shared: false,
        system_fonts: true,
    });
    let mut cache = SourceCache::new(SourceCacheOptions::default());
    let mut found = None;
    {
        let mut query = collection.query(&mut cache);
        query.set_families([QueryFamily::Generic(GenericFamily::Emoji)]);
        query.matches_with(|font| {
            if has_colour_glyph(font.blob.as_ref(), font.index, '😀') {
                found = Some(font.clone());
                QueryStatus::Stop
            } else {
                QueryStatus::Continue
            }
        });
    }
    let font = found?;
    let family = collection
        .family_name(font.family.0)
        .unwrap_or("emoji")
        .to_owned();
    let (blob, _) = font.blob.into_raw_parts();
    Some(FontInsert::new(
        &format!("system:{family}"),
        FontData::from_blob(blob, font.index),
        Vec::new(),
    ))
}

/// True when the font in `data` draws `c` with a colour glyph (`COLR`) or
/// a bitmap (`CBDT`, `sbix`).
fn has_colour_glyph(data: &[u8], index: u32, c: char) -> bool {
    use skrifa::MetadataProvider as _;
    let Ok(font) = skrifa::FontRef::from_index(data, index) else {
        return false;
    };
    let Some(glyph) = font.charmap().map(c) else {
        return false;
    };
    font.color_glyphs().get(glyph).is_some()
        || font
            .bitmap_strikes()
            .glyph_for_size(skrifa::instance::Size::unscaled(), glyph)
            .is_some()
}

/// Finds characters in message text that no installed font (nor the
/// system fallback) can draw. Each character is looked up once.
#[derive(Debug, Default)]
pub struct GlyphCheck {
    checked: HashSet<char>,
}

impl GlyphCheck {
    /// The characters of `text`, not seen before, that nothing can draw.
    pub fn missing(&mut self, ctx: &egui::Context, text: &str) -> Vec<char> {
        let mut missing = Vec::new();
        // The feed checks every message each frame: most are plain ASCII.
        if text.is_ascii() {
            return missing;
        }
        for c in text.chars() {
            if c.is_ascii() || !drawn(c) || !self.checked.insert(c) {
                continue;
            }
            let font = FontId::proportional(14.0);
            if !ctx.fonts_mut(|f| f.has_glyph(&font, c)) {
                missing.push(c);
            }
        }
        missing
    }
}

/// False for characters that are not drawn as glyphs of their own: spaces,
/// joiners, variation selectors, combining marks and tags (fonts may
/// rightly lack them).
pub fn drawn(c: char) -> bool {
    !(c.is_whitespace()
        || c.is_control()
        || matches!(c,
            '\u{0300}'..='\u{036F}'     // combining diacritics
            | '\u{1AB0}'..='\u{1AFF}'
            | '\u{1DC0}'..='\u{1DFF}'
            | '\u{200B}'..='\u{200F}'   // zero-width space, joiners, marks
            | '\u{202A}'..='\u{202E}'   // bidirectional embedding
            | '\u{2060}'..='\u{206F}'
            | '\u{20D0}'..='\u{20FF}'   // combining marks for symbols (keycaps)
            | '\u{FE00}'..='\u{FE0F}'   // variation selectors (emoji style)
            | '\u{FE20}'..='\u{FE2F}'
            | '\u{FEFF}'
            | '\u{E0000}'..='\u{E007F}' // tags (flag sequences)
            | '\u{E0100}'..='\u{E01EF}'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emoji_are_text_sized_and_the_system_font_comes_first() {
        let none = definitions(None);
        for name in BUNDLED_EMOJI {
            assert_eq!(none.font_data[name].tweak.scale, 1.0, "{name}");
        }
        let system = FontInsert::new(
            "system:Noto Color Emoji:0:0",
            (*none.font_data["NotoEmoji-Regular"]).clone(),
            Vec::new(),
        );
        let defs = definitions(Some(system));
        let chain = &defs.families[&egui::FontFamily::Proportional];
        let at = |name: &str| chain.iter().position(|f| f == name).unwrap();
        assert!(at("Ubuntu-Light") < at("system:Noto Color Emoji:0:0"));
        assert!(at("system:Noto Color Emoji:0:0") < at("NotoEmoji-Regular"));
    }

    #[test]
    fn only_colour_fonts_count_as_emoji_fonts() {
        // The bundled emoji font has 😀, in black and white.
        let defs = FontDefinitions::default();
        let noto = &defs.font_data["NotoEmoji-Regular"];
        assert!(!has_colour_glyph(noto.bytes(), 0, '😀'));
        assert!(!has_colour_glyph(b"not a font", 0, '😀'));
    }

    #[test]
    fn joiners_and_selectors_are_not_glyphs() {
        for c in [
            '\u{200D}',
            '\u{FE0F}',
            '\u{20E3}',
            '\u{0301}',
            '\u{00A0}',
            '\u{E0067}',
        ] {
            assert!(!drawn(c), "{c:?}");
        }
        for c in ['你', 'é', '😀', 'ع'] {
            assert!(drawn(c), "{c:?}");
        }
    }

    /// The verification dialog's emoji: egui's bundled fonts alone (no
    /// system emoji font) draw 60 of the 64 of the SAS table; the four
    /// newer ones need a system emoji font, and without one the dialog
    /// shows their names alone, large (`ui::verify`), so the two devices
    /// can still be compared.
    #[test]
    fn the_bundled_fonts_draw_all_but_four_sas_emoji() {
        let ctx = egui::Context::default();
        ctx.set_fonts(definitions(None));
        let mut missing = Vec::new();
        let mut output = ctx.run_ui(egui::RawInput::default(), |ui| {
            let font = FontId::proportional(34.0);
            for e in chatus_client::SAS_EMOJI {
                for c in e.symbol.chars().filter(|c| drawn(*c)) {
                    if !ui.fonts_mut(|f| f.has_glyph(&font, c)) {
                        missing.push(e.name);
                    }
                }
            }
        });
        output.textures_delta.clear();
        assert_eq!(missing, ["Lion", "Unicorn", "Butterfly", "Robot"]);
    }

    #[test]
    fn finds_characters_no_font_has() {
        // egui's bundled fonts, no system fallback: Cyrillic and emoji are
        // there, Chinese is not.
        let ctx = egui::Context::default();
        let mut check = GlyphCheck::default();
        let mut found = Vec::new();
        let mut output = ctx.run_ui(egui::RawInput::default(), |ui| {
            found.push(check.missing(ui.ctx(), "Привет 😀 你好 你"));
            found.push(check.missing(ui.ctx(), "你好"));
        });
        output.textures_delta.clear();
        assert_eq!(found[0], vec!['你', '好']);
        assert!(found[1].is_empty(), "each character is reported once");
    }
}
