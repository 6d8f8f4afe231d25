//! The login screen: the accounts with a saved login on the server (one
//! click enters), then the form: server host and port, user name,
//! password, and a switch between logging in and creating an account.
//! Enter submits.

use chatus_client::protocol::Username;
use eframe::egui::{self, Key, RichText};

use crate::state::{CertificateQuestion, Intent, LoginForm, LoginMode};

/// The accessible label of the button that enters as a saved account.
pub fn saved_label(user: &Username) -> String {
    format!("Continue as {user}")
}

/// Draws the login screen; `saved` are the accounts with a saved login on
/// the form's server. Returns what the user asked for.
pub fn show(ui: &mut egui::Ui, form: &mut LoginForm, saved: &[Username]) -> Vec<Intent> {
    let mut intents = Vec::new();
    egui::CentralPanel::default_margins().show(ui, |ui| {
        // A small window scrolls rather than cutting the form off.
        egui::ScrollArea::vertical()
            .auto_shrink([false, false])
            .show(ui, |ui| form_ui(ui, form, saved, &mut intents));
    });
    intents
}

/// The title and the form, centred.
fn form_ui(ui: &mut egui::Ui, form: &mut LoginForm, saved: &[Username], intents: &mut Vec<Intent>) {
    ui.vertical_centered(|ui| {
        ui.add_space((ui.clip_rect().height() * 0.12).min(80.0));
        ui.label(RichText::new("ChatUs").size(32.0).strong());
        ui.label(RichText::new("Self-hosted chat").weak());
        ui.add_space(16.0);
    });
    let width = 340.0_f32.min(ui.available_width());
    ui.vertical_centered(|ui| {
        ui.set_max_width(width);
        egui::Frame::group(ui.style())
            .inner_margin(16.0)
            .show(ui, |ui| {
                ui.set_width(width - 32.0);
                if !saved.is_empty() {
                    ui.label(RichText::new("Saved accounts on this server").strong());
                    ui.add_space(4.0);
                    for user in saved {
                        let button = egui::Button::new(saved_label(user))
                            .min_size(egui::vec2(width - 32.0, 26.0));
                        if ui
                            .add_enabled(!form.busy, button)
                            .on_hover_text("Enter without a password")
                            .clicked()
                        {
                            intents.push(Intent::UseSaved(user.clone()));
                        }
                    }
                    ui.add_space(6.0);
                    ui.separator();
                    ui.label(RichText::new("Another account").weak());
                    ui.add_space(4.0);
                }
                ui.horizontal(|ui| {
                    ui.selectable_value(&mut form.mode, LoginMode::Login, "Log in");
                    ui.selectable_value(&mut form.mode, LoginMode::Register, "Register");
                });
                ui.add_space(8.0);
                egui::Grid::new("login-grid")
                    .num_columns(2)
                    .spacing([8.0, 8.0])
                    .show(ui, |ui| {
                        let host = field(ui, "Server:", &mut form.host, false, "127.0.0.1");
                        let port = field(ui, "Port:", &mut form.port, false, "7500");
                        if host || port {
                            intents.push(Intent::LoginServerEdited);
                        }
                        field(ui, "Username:", &mut form.username, false, "");
                        field(ui, "Password:", &mut form.password, true, "");
                    });
                ui.add_space(8.0);
                let label = match form.mode {
                    LoginMode::Login => "Log in",
                    LoginMode::Register => "Create account",
                };
                if let Some(q) = &form.certificate {
                    certificate_ui(ui, q, form.error.as_deref(), intents);
                    return;
                }
                let submit = ui.add_enabled(
                    !form.busy,
                    egui::Button::new(label).min_size(egui::vec2(120.0, 28.0)),
                );
                if form.busy {
                    ui.horizontal(|ui| {
                        ui.spinner();
                        ui.label("Connecting…");
                    });
                }
                if let Some(err) = &form.error {
                    ui.add_space(6.0);
                    ui.colored_label(ui.visuals().error_fg_color, err);
                }
                let enter = ui.input(|i| i.key_pressed(Key::Enter));
                if submit.clicked() || (enter && !form.busy) {
                    intents.push(Intent::SubmitLogin);
                }
            });
    });
}

/// The certificate the login stopped at: an unknown one with its
/// fingerprint and Trust / Cancel, or a changed one refused.
fn certificate_ui(
    ui: &mut egui::Ui,
    q: &CertificateQuestion,
    error: Option<&str>,
    intents: &mut Vec<Intent>,
) {
    ui.add_space(6.0);
    if q.pinned.is_some() {
        ui.label(RichText::new("Certificate changed: not connected").strong());
        if let Some(why) = error {
            ui.colored_label(ui.visuals().error_fg_color, why);
        }
        if ui.button("OK").clicked() {
            intents.push(Intent::DistrustCertificate);
        }
        return;
    }
    ui.label(RichText::new("Trust this server?").strong());
    ui.label(format!(
        "{} presents a certificate no known authority signed (a server's own self-signed \
         certificate does). Trust it only if its fingerprint is the one `chatus serve` printed \
         on the server:",
        q.server.key()
    ));
    ui.label(RichText::new(&q.fingerprint).monospace());
    ui.horizontal(|ui| {
        if ui.button("Trust").clicked() {
            intents.push(Intent::TrustCertificate);
        }
        if ui.button("Cancel").clicked() {
            intents.push(Intent::DistrustCertificate);
        }
    });
}

/// One labelled field; true when its text changed.
///
/// Its id is fixed: the list of saved accounts above the form comes and
/// goes as the server is typed, and automatic ids would then change under
/// the field being typed in, which would lose the keyboard.
fn field(ui: &mut egui::Ui, label: &str, value: &mut String, password: bool, hint: &str) -> bool {
    let l = ui.label(label);
    let changed = ui
        .add(
            egui::TextEdit::singleline(value)
                .id(egui::Id::unique(("login-field", label)))
                .password(password)
                .hint_text(hint)
                .desired_width(200.0),
        )
        .labelled_by(l.id)
        .changed();
    ui.end_row();
    changed
}
