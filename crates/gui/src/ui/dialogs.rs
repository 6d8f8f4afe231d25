//! Modal dialogs: create a room, invite someone, browse rooms to join,
//! search messages, set a room's topic, kick or ban a member, a user's
//! devices (drawn by `verify.rs`).

use chatus_client::moderation::command::Command;
use chatus_client::protocol::search::SearchHit;
use chatus_client::protocol::{RoomName, Username, Visibility};
use eframe::egui::{self, Key, RichText};

use super::style;
use crate::state::{Intent, State};

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
    /// Search messages; the hits are the state's.
    Search {
        /// The query typed.
        query: String,
        /// Only in the open conversation.
        here: bool,
    },
    /// Set a room's topic (owner, moderators).
    Topic {
        /// The room.
        room: RoomName,
        /// The topic typed (empty clears it).
        topic: String,
    },
    /// Kick or ban a member, with a reason.
    Sanction {
        /// The room.
        room: RoomName,
        /// Who.
        user: Username,
        /// Ban (else kick).
        ban: bool,
        /// The reason typed (may be empty).
        reason: String,
    },
    /// A room's audit log (its owner); the entries are the state's.
    Audit {
        /// The room.
        room: RoomName,
    },
    /// A user's devices with their trust (ours: the account menu).
    Devices {
        /// Whose.
        user: Username,
    },
}

/// Draws the dialog; returns intents, and whether it should close.
pub fn show(ui: &mut egui::Ui, dialog: &mut Dialog, state: &State) -> (Vec<Intent>, bool) {
    let directory = &state.directory;
    let mut intents = Vec::new();
    let mut close = false;
    let modal = egui::Modal::new(egui::Id::unique("dialog")).show(ui.ctx(), |ui| {
        ui.set_min_width(300.0);
        match dialog {
            Dialog::Devices { user } => {
                super::verify::devices(ui, state, user, &mut intents, &mut close);
            }
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
            Dialog::Audit { room } => {
                audit(ui, state, room, &mut intents, &mut close);
            }
            Dialog::Topic { room, topic } => {
                ui.heading(format!("Topic of #{room}"));
                ui.add_space(6.0);
                let l = ui.label("Topic (empty clears it):");
                let r = ui
                    .add(egui::TextEdit::singleline(topic).desired_width(f32::INFINITY))
                    .labelled_by(l.id);
                r.request_focus();
                ui.horizontal(|ui| {
                    if ui.button("Set topic").clicked() || ui.input(|i| i.key_pressed(Key::Enter)) {
                        let cmd = Command::Topic(topic.trim().to_owned());
                        intents.push(Intent::Moderate(room.clone(), cmd));
                        close = true;
                    }
                    if ui.button("Cancel").clicked() {
                        close = true;
                    }
                });
            }
            Dialog::Sanction {
                room,
                user,
                ban,
                reason,
            } => {
                let (title, button) = if *ban {
                    (format!("Ban {user} from #{room}"), "Ban")
                } else {
                    (format!("Remove {user} from #{room}"), "Kick")
                };
                ui.heading(title);
                ui.add_space(6.0);
                ui.label(if *ban {
                    "They leave the room and cannot join, read or see it until unbanned (/unban)."
                } else {
                    "They leave the room; they may join it again."
                });
                let l = ui.label("Reason (optional, members see it):");
                let r = ui
                    .add(egui::TextEdit::singleline(reason).desired_width(f32::INFINITY))
                    .labelled_by(l.id);
                r.request_focus();
                ui.horizontal(|ui| {
                    if ui.button(button).clicked() || ui.input(|i| i.key_pressed(Key::Enter)) {
                        let (who, why) = (user.to_string(), reason.trim().to_owned());
                        let cmd = if *ban {
                            Command::Ban(who, why)
                        } else {
                            Command::Kick(who, why)
                        };
                        intents.push(Intent::Moderate(room.clone(), cmd));
                        close = true;
                    }
                    if ui.button("Cancel").clicked() {
                        close = true;
                    }
                });
            }
            Dialog::Search { query, here } => {
                ui.set_min_width(460.0);
                ui.heading("Search messages");
                ui.add_space(6.0);
                let l = ui.label("Words, \"a phrase\", or a prefix*:");
                let r = ui
                    .add(egui::TextEdit::singleline(query).desired_width(f32::INFINITY))
                    .labelled_by(l.id);
                r.request_focus();
                ui.checkbox(here, format!("Only in {}", state.selected));
                ui.horizontal(|ui| {
                    if ui.button("Search").clicked() || ui.input(|i| i.key_pressed(Key::Enter)) {
                        intents.push(Intent::Search {
                            query: query.clone(),
                            here: *here,
                        });
                    }
                    if ui.button("Close").clicked() {
                        close = true;
                    }
                });
                if let Some(found) = &state.search {
                    ui.separator();
                    if found.busy {
                        ui.spinner();
                    } else if let Some(e) = &found.error {
                        ui.colored_label(ui.visuals().error_fg_color, e.as_str());
                    } else if found.hits.is_empty() {
                        ui.label(RichText::new(format!("Nothing matches {}.", found.query)).weak());
                    } else {
                        egui::ScrollArea::vertical()
                            .max_height(360.0)
                            .show(ui, |ui| {
                                for hit in &found.hits {
                                    if search_hit(ui, hit) {
                                        intents.push(Intent::OpenHit(hit.conv.clone(), hit.seq));
                                        close = true;
                                    }
                                }
                                if found.more {
                                    ui.label(
                                        RichText::new("More matches: make the search narrower.")
                                            .small()
                                            .weak(),
                                    );
                                }
                            });
                    }
                }
            }
        }
    });
    if modal.should_close() {
        close = true;
    }
    (intents, close)
}

/// One search hit: where, who and when, then the passage with the matched
/// words marked, as a button (framed on hover). True when it was clicked
/// (go to the message).
fn search_hit(ui: &mut egui::Ui, hit: &SearchHit) -> bool {
    let mut job = egui::text::LayoutJob::default();
    let body = egui::TextStyle::Body.resolve(ui.style());
    let plain = egui::TextFormat::simple(body.clone(), ui.visuals().text_color());
    let marked = egui::TextFormat {
        background: ui.visuals().selection.bg_fill,
        color: ui.visuals().strong_text_color(),
        ..egui::TextFormat::simple(body, ui.visuals().text_color())
    };
    let text = hit.snippet.as_str();
    let mut at = 0;
    for [start, end] in &hit.marks {
        let (start, end) = (*start as usize, *end as usize);
        // The server promises ordered ranges on character boundaries;
        // anything else is shown unmarked rather than trusted.
        let (Some(before), Some(word)) = (text.get(at..start), text.get(start..end)) else {
            break;
        };
        job.append(before, 0.0, plain.clone());
        job.append(word, 0.0, marked.clone());
        at = end;
    }
    job.append(text.get(at..).unwrap_or(""), 0.0, plain);
    ui.add_space(4.0);
    ui.label(
        RichText::new(format!(
            "{} · {} · {}",
            hit.conv,
            hit.sender,
            style::full_time(hit.time)
        ))
        .small()
        .weak(),
    );
    let response = ui
        .add(egui::Button::new(job).wrap().frame_when_inactive(false))
        .on_hover_text("Go to this message");
    response.clicked()
}

/// The audit log: each moderation event of the room, newest first, with
/// its time; *Older* loads the page before.
fn audit(
    ui: &mut egui::Ui,
    state: &State,
    room: &RoomName,
    intents: &mut Vec<Intent>,
    close: &mut bool,
) {
    ui.set_min_width(460.0);
    ui.heading(format!("Audit log of #{room}"));
    ui.add_space(6.0);
    let log = state.audit.as_ref().filter(|a| &a.room == room);
    if let Some(log) = log {
        if log.entries.is_empty() && !log.busy && log.error.is_none() {
            ui.label(RichText::new("Nothing has been moderated here.").weak());
        }
        egui::ScrollArea::vertical()
            .max_height(360.0)
            .show(ui, |ui| {
                for m in &log.entries {
                    ui.horizontal_wrapped(|ui| {
                        ui.label(RichText::new(style::full_time(m.time)).small().weak());
                        ui.label(super::feed::moderation_text(m));
                    });
                }
            });
        if log.busy {
            ui.spinner();
        }
        if let Some(e) = &log.error {
            ui.colored_label(ui.visuals().error_fg_color, e.as_str());
        }
    }
    ui.horizontal(|ui| {
        let older = log
            .filter(|l| l.more && !l.busy)
            .and_then(|l| l.entries.last());
        if let Some(last) = older
            && ui.button("Older").clicked()
        {
            intents.push(Intent::AuditLog(room.clone(), Some(last.seq)));
        }
        if ui.button("Close").clicked() {
            *close = true;
        }
    });
}
