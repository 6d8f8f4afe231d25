//! Modal dialogs: create a room, invite someone, browse rooms to join.

use chatus_client::protocol::room::RoomInfo;
use chatus_client::protocol::{RoomName, Username, Visibility};
use eframe::egui::{self, Key, RichText};

use crate::state::Intent;

/// The open dialog, with its fields.
#[derive(Debug, Clone)]
pub enum Dialog {
    /// Create a room.
    Create {
        /// The name typed.
        name: String,
        /// Invitation only.
        private: bool,
        /// What is wrong with the name.
        error: Option<String>,
    },
    /// Invite someone to a room.
    Invite {
        /// The room.
        room: RoomName,
        /// The name typed.
        user: String,
        /// What is wrong with the name.
        error: Option<String>,
    },
    /// Rooms one may join.
    Browse,
}

/// Draws the dialog; returns intents, and whether it should close.
pub fn show(ui: &mut egui::Ui, dialog: &mut Dialog, directory: &[RoomInfo]) -> (Vec<Intent>, bool) {
    let mut intents = Vec::new();
    let mut close = false;
    let modal = egui::Modal::new(egui::Id::unique("dialog")).show(ui.ctx(), |ui| {
        ui.set_min_width(300.0);
        match dialog {
            Dialog::Create {
                name,
                private,
                error,
            } => {
                ui.heading("Create a room");
                ui.add_space(6.0);
                let l = ui.label("Room name:");
                let r = ui
                    .add(egui::TextEdit::singleline(name).hint_text("e.g. dev"))
                    .labelled_by(l.id);
                r.request_focus();
                ui.checkbox(private, "Private (invitation only)");
                if let Some(e) = error {
                    ui.colored_label(ui.visuals().error_fg_color, e.as_str());
                }
                ui.horizontal(|ui| {
                    let create =
                        ui.button("Create").clicked() || ui.input(|i| i.key_pressed(Key::Enter));
                    if create {
                        match RoomName::parse(name.trim().trim_start_matches('#')) {
                            Ok(room) => {
                                let vis = if *private {
                                    Visibility::Private
                                } else {
                                    Visibility::Public
                                };
                                intents.push(Intent::Create(room, vis));
                                close = true;
                            }
                            Err(e) => *error = Some(e.message),
                        }
                    }
                    if ui.button("Cancel").clicked() {
                        close = true;
                    }
                });
            }
            Dialog::Invite { room, user, error } => {
                ui.heading(format!("Invite to #{room}"));
                ui.add_space(6.0);
                let l = ui.label("User name:");
                let r = ui.add(egui::TextEdit::singleline(user)).labelled_by(l.id);
                r.request_focus();
                if let Some(e) = error {
                    ui.colored_label(ui.visuals().error_fg_color, e.as_str());
                }
                ui.horizontal(|ui| {
                    if ui.button("Invite").clicked() || ui.input(|i| i.key_pressed(Key::Enter)) {
                        match Username::parse(user.trim().trim_start_matches('@')) {
                            Ok(u) => {
                                intents.push(Intent::Invite(room.clone(), u));
                                close = true;
                            }
                            Err(e) => *error = Some(e.message),
                        }
                    }
                    if ui.button("Cancel").clicked() {
                        close = true;
                    }
                });
            }
            Dialog::Browse => {
                ui.heading("Rooms");
                ui.add_space(6.0);
                egui::ScrollArea::vertical()
                    .max_height(320.0)
                    .show(ui, |ui| {
                        for r in directory {
                            ui.horizontal(|ui| {
                                ui.label(RichText::new(format!("#{}", r.name)).strong());
                                let members = if r.members == 1 {
                                    "1 member".into()
                                } else {
                                    format!("{} members", r.members)
                                };
                                ui.label(
                                    RichText::new(format!("{} · {members}", r.visibility.as_str()))
                                        .weak(),
                                );
                                ui.with_layout(
                                    egui::Layout::right_to_left(egui::Align::Center),
                                    |ui| {
                                        if r.joined {
                                            ui.label(RichText::new("joined").weak());
                                        } else if ui.button("Join").clicked() {
                                            intents.push(Intent::Join(r.name.clone()));
                                            close = true;
                                        }
                                    },
                                );
                            });
                        }
                    });
                if ui.button("Close").clicked() {
                    close = true;
                }
            }
        }
    });
    if modal.should_close() {
        close = true;
    }
    (intents, close)
}
