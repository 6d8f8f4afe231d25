//! Device verification: the verification dialog (an offer to accept or
//! decline, the seven emoji with their names and the numbers to compare,
//! *They match* / *They don't match*, then the result), the devices dialog
//! (each device of a user with its trust, and *Verify* on each), and the
//! mark a direct conversation's header shows beside `🔒 encrypted`.

use chatus_client::TrustState;
use chatus_client::protocol::{RoomName, Username};
use eframe::egui::{self, RichText};

use crate::state::{Intent, PeerTrust, State, VerifyPhase, trust_word};

/// The dialog's accept button (an offer from another device).
pub const ACCEPT: &str = "Accept";
/// The dialog's decline button.
pub const DECLINE: &str = "Decline";
/// The button saying both devices show the same emoji.
pub const MATCH: &str = "They match";
/// The button saying they differ.
pub const NO_MATCH: &str = "They don't match";
/// The header's and menus' action.
pub const VERIFY: &str = "Verify…";
/// The mark of a peer with a device we have not verified.
pub const UNVERIFIED: &str = "⚠ unverified";
/// The mark of a peer whose devices are all verified.
pub const VERIFIED: &str = "✔ verified";

/// The size the emoji are drawn at.
const EMOJI_SIZE: f32 = 34.0;

/// Whether the fonts can draw every character of `symbol`.
fn drawable(ui: &egui::Ui, symbol: &str, size: f32) -> bool {
    let font = egui::FontId::proportional(size);
    symbol
        .chars()
        .filter(|c| crate::fonts::drawn(*c))
        .all(|c| ui.fonts_mut(|f| f.has_glyph(&font, c)))
}

/// The mark beside `🔒 encrypted` in a direct conversation's header:
/// whether `peer`'s devices are verified (nothing while not known).
pub fn peer_mark(ui: &mut egui::Ui, state: &State, peer: &Username) {
    match state.peer_trust(peer) {
        Some(PeerTrust::Unverified) => {
            ui.add(
                egui::Label::new(RichText::new(UNVERIFIED).color(ui.visuals().warn_fg_color))
                    .truncate(),
            )
            .on_hover_text(format!(
                "{peer} has a device you have not verified: Verify… compares emoji with it, so \
                 you know no one is in between."
            ));
        }
        Some(PeerTrust::Verified) => {
            ui.add(egui::Label::new(RichText::new(VERIFIED).weak()).truncate())
                .on_hover_text(format!("You verified every device of {peer}."));
        }
        None => {}
    }
}

/// The mark beside `🔒 encrypted` in an encrypted room's header: whether
/// every member's devices are verified, naming those with one that is not
/// (nothing while not known).
pub fn room_mark(ui: &mut egui::Ui, state: &State, room: &RoomName) {
    match state.room_trust(room) {
        Some((PeerTrust::Unverified, users)) => {
            let names: Vec<String> = users.iter().map(|u| state.shown(u)).collect();
            ui.add(
                egui::Label::new(RichText::new(UNVERIFIED).color(ui.visuals().warn_fg_color))
                    .truncate(),
            )
            .on_hover_text(format!(
                "Devices you have not verified: {}. Verify… in a member's menu compares \
                 emoji with them, so you know no one is in between.",
                names.join(", ")
            ));
        }
        Some((PeerTrust::Verified, _)) => {
            ui.add(egui::Label::new(RichText::new(VERIFIED).weak()).truncate())
                .on_hover_text("You verified every device of every member.");
        }
        None => {}
    }
}

/// Draws the verification dialog when there is a verification; returns
/// the person's answers.
pub fn dialog(ui: &mut egui::Ui, state: &State) -> Vec<Intent> {
    let mut intents = Vec::new();
    let Some(v) = &state.verification else {
        return intents;
    };
    let who = match &v.device {
        Some(d) => format!("{}'s device {d}", v.user),
        None => format!("{}'s device", v.user),
    };
    let modal = egui::Modal::new(egui::Id::unique("verification")).show(ui.ctx(), |ui| {
        ui.set_min_width(380.0);
        ui.heading(format!("Verify {}", v.user));
        ui.add_space(6.0);
        let mut close_label = "Cancel";
        match &v.phase {
            VerifyPhase::Starting => {
                ui.horizontal(|ui| {
                    ui.spinner();
                    ui.label(format!("Asking {who}…"));
                });
            }
            VerifyPhase::Choose(devices) => {
                ui.label(format!(
                    "{} has several devices. Which one do you have at hand?",
                    v.user
                ));
                for d in devices {
                    let text = format!("{}  ({})", d.device, trust_word(d.trust));
                    if ui
                        .button(text)
                        .on_hover_text(format!("Fingerprint {}", d.fingerprint()))
                        .clicked()
                    {
                        intents.push(Intent::Verify(v.user.clone(), Some(d.device.clone())));
                    }
                }
            }
            VerifyPhase::Offered => {
                ui.label(format!(
                    "{who} wants to verify this device. Go on only if you started it \
                     there (chatus verify, or Verify… in the app)."
                ));
                ui.horizontal(|ui| {
                    if ui.button(ACCEPT).clicked() {
                        intents.push(Intent::AnswerVerification(true));
                    }
                    if ui.button(DECLINE).clicked() {
                        intents.push(Intent::AnswerVerification(false));
                    }
                });
                close_label = "";
            }
            VerifyPhase::Waiting => {
                ui.horizontal(|ui| {
                    ui.spinner();
                    ui.label(format!("Waiting for {who} to accept…"));
                });
                ui.label(
                    RichText::new(format!(
                        "On that device: accept in the app, or run chatus verify {}.",
                        state.me.as_ref().map_or("YOU".into(), ToString::to_string)
                    ))
                    .weak(),
                );
            }
            VerifyPhase::Sas { emoji, decimals } => {
                ui.label(format!(
                    "Compare with what {who} shows. Only say they match if they are the same, in \
                     the same order."
                ));
                ui.add_space(8.0);
                ui.horizontal(|ui| {
                    for e in emoji {
                        ui.vertical(|ui| {
                            ui.set_width(62.0);
                            ui.vertical_centered(|ui| {
                                if drawable(ui, &e.symbol, EMOJI_SIZE) {
                                    ui.label(RichText::new(&e.symbol).size(EMOJI_SIZE));
                                    ui.label(RichText::new(&e.name).strong());
                                } else {
                                    // No font has it: the name alone,
                                    // large, is what to compare.
                                    ui.label(RichText::new(&e.name).size(20.0).strong());
                                }
                            });
                        });
                    }
                });
                ui.add_space(6.0);
                let (a, b, c) = decimals;
                ui.label(RichText::new(format!("Or the numbers: {a} {b} {c}")).weak());
                ui.add_space(8.0);
                ui.horizontal(|ui| {
                    if ui.button(MATCH).clicked() {
                        intents.push(Intent::CompareSas(true));
                    }
                    if ui.button(NO_MATCH).clicked() {
                        intents.push(Intent::CompareSas(false));
                    }
                });
                close_label = "";
            }
            VerifyPhase::Confirmed => {
                ui.horizontal(|ui| {
                    ui.spinner();
                    ui.label(format!("Waiting for {who} to confirm…"));
                });
            }
            VerifyPhase::Verified => {
                ui.label(RichText::new(format!("✔ Verified: {who}.")).strong());
                close_label = "Close";
            }
            VerifyPhase::Mismatch => {
                ui.colored_label(
                    ui.visuals().error_fg_color,
                    format!(
                        "✖ Not verified: the emoji did not match. {who} stays unverified. \
                         Someone may be in between: check with {} another way.",
                        v.user
                    ),
                );
                close_label = "Close";
            }
            VerifyPhase::Cancelled(why) => {
                ui.label(format!("Cancelled: {why} {who} stays unverified."));
                close_label = "Close";
            }
            VerifyPhase::TimedOut => {
                ui.label(format!(
                    "Timed out: {who} did not answer. It stays unverified; try again."
                ));
                close_label = "Close";
            }
            VerifyPhase::Failed(why) => {
                ui.colored_label(
                    ui.visuals().error_fg_color,
                    format!("Could not verify: {why}"),
                );
                close_label = "Close";
            }
        }
        if !close_label.is_empty() {
            ui.add_space(6.0);
            if ui.button(close_label).clicked() {
                intents.push(Intent::CloseVerification);
            }
        }
    });
    if !v.phase.finished() {
        // Timing out needs a frame even when nothing else happens.
        let left = crate::state::VERIFY_TIMEOUT.saturating_sub(v.since.elapsed());
        ui.ctx()
            .request_repaint_after(left + std::time::Duration::from_secs(1));
    }
    // A click beside the dialog (or Escape) closes it only once it is
    // over: under way, a stray click must not cancel the verification.
    if modal.should_close() && v.phase.finished() {
        intents.push(Intent::CloseVerification);
    }
    intents
}

/// The devices dialog's body: `user`'s devices with their trust, and
/// *Verify* on each other device. Sets `close` when closed.
pub fn devices(
    ui: &mut egui::Ui,
    state: &State,
    user: &Username,
    intents: &mut Vec<Intent>,
    close: &mut bool,
) {
    let mine = state.is_me(user);
    ui.heading(if mine {
        "Your devices".to_owned()
    } else {
        format!("{user}'s devices")
    });
    ui.add_space(6.0);
    match state.devices_of(user) {
        None => {
            ui.spinner();
        }
        Some([]) => {
            ui.label(format!("{user} has no devices with encryption keys."));
        }
        Some(list) => {
            egui::Grid::new("devices").striped(true).show(ui, |ui| {
                for d in list {
                    ui.label(RichText::new(&d.device).monospace());
                    let (text, color) = if d.this_device {
                        ("this device", ui.visuals().weak_text_color())
                    } else if d.trust == TrustState::Verified {
                        (trust_word(d.trust), ui.visuals().text_color())
                    } else {
                        (trust_word(d.trust), ui.visuals().warn_fg_color)
                    };
                    ui.label(RichText::new(text).color(color))
                        .on_hover_text(format!("Fingerprint {}", d.fingerprint()));
                    if !d.this_device
                        && ui
                            .button(format!("Verify {}", d.device))
                            .on_hover_text("Compare emoji with that device")
                            .clicked()
                    {
                        intents.push(Intent::Verify(user.clone(), Some(d.device.clone())));
                        *close = true;
                    }
                    ui.end_row();
                }
            });
        }
    }
    ui.add_space(6.0);
    if ui.button("Close").clicked() {
        *close = true;
    }
}
