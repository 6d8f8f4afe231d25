//! The login screen: server host and port, user name, password, and a
//! switch between logging in and creating an account. Enter submits.

use eframe::egui::{self, Key, RichText};

use crate::state::{Intent, LoginForm, LoginMode};

/// Draws the login form; returns what the user asked for.
pub fn show(ui: &mut egui::Ui, form: &mut LoginForm) -> Vec<Intent> {
    let mut intents = Vec::new();
    egui::CentralPanel::default_margins().show(ui, |ui| {
        ui.vertical_centered(|ui| {
            ui.add_space((ui.available_height() * 0.12).min(80.0));
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
                    ui.horizontal(|ui| {
                        ui.selectable_value(&mut form.mode, LoginMode::Login, "Log in");
                        ui.selectable_value(&mut form.mode, LoginMode::Register, "Register");
                    });
                    ui.add_space(8.0);
                    egui::Grid::new("login-grid")
                        .num_columns(2)
                        .spacing([8.0, 8.0])
                        .show(ui, |ui| {
                            field(ui, "Server:", &mut form.host, false, "127.0.0.1");
                            field(ui, "Port:", &mut form.port, false, "7500");
                            field(ui, "Username:", &mut form.username, false, "");
                            field(ui, "Password:", &mut form.password, true, "");
                        });
                    ui.add_space(8.0);
                    let label = match form.mode {
                        LoginMode::Login => "Log in",
                        LoginMode::Register => "Create account",
                    };
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
    });
    intents
}

fn field(ui: &mut egui::Ui, label: &str, value: &mut String, password: bool, hint: &str) {
    let l = ui.label(label);
    ui.add(
        egui::TextEdit::singleline(value)
            .password(password)
            .hint_text(hint)
            .desired_width(200.0),
    )
    .labelled_by(l.id);
    ui.end_row();
}
