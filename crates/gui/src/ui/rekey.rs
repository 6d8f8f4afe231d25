//! The form that seals this device's encryption keys with a new
//! passphrase (the account menu's "Change encryption passphrase…", as
//! `chatus passphrase change` in the CLI). The current passphrase is
//! asked first and the new one twice; the client library checks the
//! current one, and a notice says how it went. A device whose keys are in
//! the OS keyring has no passphrase, and the notice says that too.

use chatus_client::Passphrase;
use eframe::egui;

use crate::state::Intent;

/// The account menu's entry that opens the form.
pub const CHANGE_PASSPHRASE: &str = "Change encryption passphrase…";
/// The accessible label of the current passphrase's field.
pub const CURRENT: &str = "Current passphrase:";
/// The accessible label of the new passphrase's field.
pub const NEW: &str = "New passphrase:";
/// The accessible label of the field repeating it.
pub const AGAIN: &str = "Repeat the new one:";
/// The form's button.
pub const CHANGE: &str = "Change";

/// What is typed in the form while it is open.
#[derive(Default)]
pub struct Form {
    current: String,
    new: String,
    again: String,
    error: Option<&'static str>,
    /// Whether the keyboard was put in the first field (once, when the
    /// form opened).
    focused: bool,
}

impl std::fmt::Debug for Form {
    // Never the passphrases.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Form(..)")
    }
}

/// The form, while `form` holds one; closed (set to `None`) by Change
/// with a usable new passphrase, or by Cancel.
pub fn form(ui: &mut egui::Ui, form: &mut Option<Form>) -> Vec<Intent> {
    let mut intents = Vec::new();
    let Some(f) = form.as_mut() else {
        return intents;
    };
    let mut close = false;
    egui::Modal::new(egui::Id::unique("change passphrase")).show(ui.ctx(), |ui| {
        ui.set_max_width(380.0);
        ui.heading("Change the encryption passphrase");
        ui.label(
            "The passphrase seals the encryption keys stored on this device. Other \
             devices and the server are not affected.",
        );
        let mut enter = false;
        for (label, text) in [
            (CURRENT, &mut f.current),
            (NEW, &mut f.new),
            (AGAIN, &mut f.again),
        ] {
            let l = ui.label(label);
            let field = ui
                .add(egui::TextEdit::singleline(text).password(true))
                .labelled_by(l.id);
            // The keyboard starts in the first field; Enter in any changes.
            // (Asked until it holds: the modal's first frame only sizes.)
            if label == CURRENT && !f.focused {
                if field.has_focus() {
                    f.focused = true;
                } else {
                    field.request_focus();
                }
            }
            enter |= field.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter));
        }
        if let Some(e) = f.error {
            ui.colored_label(ui.visuals().error_fg_color, e);
        }
        ui.horizontal(|ui| {
            if ui.button(CHANGE).clicked() || enter {
                f.error = if f.current.is_empty() {
                    Some("Type the current passphrase.")
                } else if f.new.is_empty() {
                    Some("An empty passphrase protects nothing; type a new one.")
                } else if f.new != f.again {
                    Some("The two new ones differ.")
                } else {
                    None
                };
                if f.error.is_none() {
                    intents.push(Intent::ChangePassphrase(
                        Passphrase::new(std::mem::take(&mut f.current)),
                        Passphrase::new(std::mem::take(&mut f.new)),
                    ));
                    close = true;
                }
            }
            if ui.button("Cancel").clicked() {
                close = true;
            }
        });
    });
    if close {
        *form = None;
    }
    intents
}
