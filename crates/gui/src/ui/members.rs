//! A room's member list (the right-hand panel): presence, roles, a click
//! opens a direct conversation, a context menu on each other member
//! (*Verify…* their device, *Devices…* with their trust) that for the
//! room's owner and moderators also holds moderation of each member they
//! outrank (Kick…, Ban…, Mute for a while, Unmute, and for the owner the
//! moderator role), *Set topic…*, and for the owner *Audit log…*.

use std::time::Duration;

use chatus_client::moderation::command::Command;
use chatus_client::protocol::moderation::Role;
use chatus_client::protocol::presence::Member;
use chatus_client::protocol::{Conversation, RoomName};
use eframe::egui::{self, RichText};

use super::chat::{View, dot};
use super::dialogs::Dialog;
use super::style;
use crate::state::{Intent, Link, State};

/// The mutes the menu offers.
const MUTES: [(&str, u64); 3] = [
    ("Mute for 10 minutes", 600),
    ("Mute for 1 hour", 3600),
    ("Mute for 1 day", 86_400),
];

/// Draws the panel.
pub fn panel(ui: &mut egui::Ui, state: &State, view: &mut View, intents: &mut Vec<Intent>) {
    egui::Panel::right("members")
        .resizable(true)
        .default_size(170.0)
        .show(ui, |ui| {
            ui.add_space(6.0);
            ui.label(RichText::new("Members").strong());
            let Some((room, members)) = &state.members else {
                ui.separator();
                ui.spinner();
                return;
            };
            if state.my_role(room) >= Role::Moderator && ui.small_button("Set topic…").clicked() {
                let topic = state
                    .directory
                    .iter()
                    .find(|r| &r.name == room)
                    .map_or(String::new(), |r| r.topic.as_str().to_owned());
                view.dialog = Some(Dialog::Topic {
                    room: room.clone(),
                    topic,
                });
            }
            if state.my_role(room) == Role::Owner && ui.small_button("Audit log…").clicked() {
                intents.push(Intent::AuditLog(room.clone(), None));
                view.dialog = Some(Dialog::Audit { room: room.clone() });
            }
            ui.separator();
            egui::ScrollArea::vertical().show(ui, |ui| {
                for m in members {
                    ui.horizontal(|ui| {
                        dot(ui, (state.link == Link::Online).then_some(m.online));
                        let name = RichText::new(state.shown(&m.user))
                            .color(style::name_color(ui, m.user.as_str()));
                        let label = ui.selectable_label(false, name);
                        if label.clicked() && !state.is_me(&m.user) {
                            intents.push(Intent::Select(Conversation::Peer(m.user.clone())));
                        }
                        match m.role {
                            Role::Owner => ui.label(RichText::new("owner").small().weak()),
                            Role::Moderator => ui.label(RichText::new("mod").small().weak()),
                            Role::Member => ui.label(""),
                        };
                        if !state.is_me(&m.user) {
                            label.context_menu(|ui| {
                                verify_entries(ui, m, view, intents);
                                if state.may_moderate(room, m) {
                                    ui.separator();
                                    menu(ui, state, room, m, view, intents);
                                }
                            });
                        }
                    });
                }
            });
        });
}

/// The verification entries of a member's menu: verify their device,
/// or list their devices with their trust.
fn verify_entries(ui: &mut egui::Ui, m: &Member, view: &mut View, intents: &mut Vec<Intent>) {
    if ui.button(super::verify::VERIFY).clicked() {
        intents.push(Intent::Verify(m.user.clone(), None));
        ui.close();
    }
    if ui.button(super::chat::DEVICES).clicked() {
        intents.push(Intent::ShowDevices(m.user.clone()));
        view.dialog = Some(Dialog::Devices {
            user: m.user.clone(),
        });
        ui.close();
    }
}

/// The moderation menu of one member.
fn menu(
    ui: &mut egui::Ui,
    state: &State,
    room: &RoomName,
    m: &Member,
    view: &mut View,
    intents: &mut Vec<Intent>,
) {
    let user = m.user.to_string();
    let mut act = |cmd: Command| intents.push(Intent::Moderate(room.clone(), cmd));
    for (label, ban) in [("Kick…", false), ("Ban…", true)] {
        if ui.button(label).clicked() {
            view.dialog = Some(Dialog::Sanction {
                room: room.clone(),
                user: m.user.clone(),
                ban,
                reason: String::new(),
            });
            ui.close();
        }
    }
    ui.separator();
    for (label, secs) in MUTES {
        if ui.button(label).clicked() {
            act(Command::Mute(
                user.clone(),
                Duration::from_secs(secs),
                String::new(),
            ));
            ui.close();
        }
    }
    if ui.button("Unmute").clicked() {
        act(Command::Unmute(user.clone()));
        ui.close();
    }
    if state.my_role(room) == Role::Owner {
        ui.separator();
        let (label, on) = if m.role == Role::Moderator {
            ("Make a plain member", false)
        } else {
            ("Make moderator", true)
        };
        if ui.button(label).clicked() {
            act(Command::Op(user, on));
            ui.close();
        }
    }
}
