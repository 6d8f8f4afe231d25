//! The key backup's windows: the question asked before turning the backup
//! on would replace the account's existing one (replace or cancel), the
//! recovery key shown once when the backup is turned on (with what to do
//! with it), and the form that restores the backup on this device with a
//! recovery key. The account menu opens them.

use eframe::egui::{self, RichText};

use crate::state::{Intent, State};

/// The account menu's entry that turns the key backup on.
pub const ENABLE_BACKUP: &str = "Back up encryption keys…";

/// The account menu's entry that opens the restore form.
pub const RESTORE_BACKUP: &str = "Restore from key backup…";

/// The title of the window showing a new recovery key.
pub const RECOVERY_KEY_TITLE: &str = "Your recovery key";

/// The button that closes it.
pub const SAVED_IT: &str = "I have saved it";

/// The accessible label of the restore form's field.
pub const RECOVERY_KEY_FIELD: &str = "Recovery key";

/// The restore form's button.
pub const RESTORE: &str = "Restore";

/// The title of the question asked before replacing an existing backup.
pub const REPLACE_BACKUP_TITLE: &str = "Replace your key backup?";

/// Its button that replaces the backup.
pub const REPLACE_BACKUP: &str = "Replace it";

/// Its button that keeps the backup as it is.
pub const KEEP_BACKUP: &str = "Cancel";

/// What to tell the person with their recovery key.
const KEEP_IT: &str = "It is shown this once and stored nowhere: write it down or keep it in a \
password manager. With it, a new device of yours reads your encrypted history; without it, that \
history cannot be restored. Anyone who has it and can log in as you can read that history too.";

/// The recovery key window, while the state holds a new key.
pub fn recovery_key(ui: &mut egui::Ui, state: &State) -> Vec<Intent> {
    let mut intents = Vec::new();
    let Some(key) = &state.recovery_key else {
        return intents;
    };
    egui::Modal::new(egui::Id::unique("recovery key")).show(ui.ctx(), |ui| {
        ui.set_max_width(420.0);
        ui.heading(RECOVERY_KEY_TITLE);
        ui.label(RichText::new(key).monospace().strong());
        ui.label(KEEP_IT);
        ui.horizontal(|ui| {
            if ui.button("Copy").clicked() {
                ui.ctx().copy_text(key.clone());
            }
            if ui.button(SAVED_IT).clicked() {
                intents.push(Intent::DismissRecoveryKey);
            }
        });
    });
    intents
}

/// The question asked while the state holds an existing backup that
/// turning the backup on would replace.
pub fn replace(ui: &mut egui::Ui, state: &State) -> Vec<Intent> {
    let mut intents = Vec::new();
    let Some(existing) = &state.backup_to_replace else {
        return intents;
    };
    let who = state
        .me
        .as_ref()
        .map_or_else(|| "This account".to_owned(), |me| state.shown(me));
    egui::Modal::new(egui::Id::unique("replace backup")).show(ui.ctx(), |ui| {
        ui.set_max_width(420.0);
        ui.heading(REPLACE_BACKUP_TITLE);
        ui.label(format!(
            "{who} already has a key backup (version {}, {} keys){}.",
            existing.version,
            existing.keys,
            if existing.this_device {
                ", and this device backs up to it"
            } else {
                ""
            }
        ));
        ui.label(
            "A new backup replaces it: the keys only it holds are lost, and your other \
             devices stop backing up until they are given the new recovery key. To read \
             older messages on this device, restore the backup instead.",
        );
        ui.horizontal(|ui| {
            if ui.button(REPLACE_BACKUP).clicked() {
                intents.push(Intent::ReplaceBackup(true));
            }
            if ui.button(KEEP_BACKUP).clicked() {
                intents.push(Intent::ReplaceBackup(false));
            }
        });
    });
    intents
}

/// The restore form, while `form` holds what is typed; closed (set to
/// `None`) by Restore or Cancel.
pub fn restore(ui: &mut egui::Ui, form: &mut Option<String>) -> Vec<Intent> {
    let mut intents = Vec::new();
    let Some(text) = form.as_mut() else {
        return intents;
    };
    let mut close = false;
    egui::Modal::new(egui::Id::unique("restore backup")).show(ui.ctx(), |ui| {
        ui.set_max_width(420.0);
        ui.heading("Restore from the key backup");
        ui.label("Type the recovery key shown when the backup was turned on.");
        let label = ui.label(RECOVERY_KEY_FIELD);
        ui.add(
            egui::TextEdit::singleline(text)
                .password(true)
                .desired_width(400.0),
        )
        .labelled_by(label.id);
        ui.horizontal(|ui| {
            if ui.button(RESTORE).clicked() && !text.trim().is_empty() {
                intents.push(Intent::RestoreBackup(std::mem::take(text)));
                close = true;
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
