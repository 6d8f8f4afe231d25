//! The chat screen: sidebar (rooms with unread counts, invitations, direct
//! conversations, who is online), the open conversation's header and feed,
//! the composer (Enter sends, Shift+Enter starts a new line), and a status
//! line (connected / reconnecting, notices).

use chatus_client::protocol::{Conversation, Visibility};
use eframe::egui::{self, Key, KeyboardShortcut, Modifiers, RichText};

use super::dialogs::{self, Dialog};
use super::feed::{self, Feeds};
use super::style;
use crate::state::{Intent, Link, State};

/// What the chat screen remembers between frames.
#[derive(Debug, Default)]
pub struct View {
    /// The composer's text.
    pub composer: String,
    /// The open dialog.
    pub dialog: Option<Dialog>,
    /// The member list is shown.
    pub show_members: bool,
    /// Feed scroll state per conversation.
    pub feeds: Feeds,
}

fn badge(ui: &mut egui::Ui, n: u64) {
    if n > 0 {
        let text = if n > 99 {
            "99+".to_owned()
        } else {
            n.to_string()
        };
        ui.label(
            RichText::new(text)
                .small()
                .strong()
                .color(ui.visuals().strong_text_color())
                .background_color(ui.visuals().selection.bg_fill),
        );
    }
}

/// A presence dot, painted (no font needed): filled when online, a ring
/// when offline, a faint small dot when unknown (we are not connected).
fn dot(ui: &mut egui::Ui, online: Option<bool>) {
    let size = egui::vec2(10.0, 10.0);
    let (rect, _) = ui.allocate_exact_size(size, egui::Sense::hover());
    let center = rect.center();
    match online {
        Some(true) => {
            ui.painter()
                .circle_filled(center, 4.0, egui::Color32::from_rgb(60, 180, 90));
        }
        Some(false) => {
            ui.painter().circle_stroke(
                center,
                3.5,
                egui::Stroke::new(1.2, ui.visuals().weak_text_color()),
            );
        }
        None => {
            ui.painter()
                .circle_filled(center, 2.0, ui.visuals().weak_text_color());
        }
    }
}

/// Draws the chat screen; returns intents.
pub fn show(ui: &mut egui::Ui, state: &State, view: &mut View) -> Vec<Intent> {
    let mut intents = Vec::new();
    status_bar(ui, state, &mut intents);
    sidebar(ui, state, view, &mut intents);
    if view.show_members {
        members_panel(ui, state, &mut intents);
    }
    composer(ui, state, view, &mut intents);
    egui::CentralPanel::default_margins().show(ui, |ui| {
        header(ui, state, view, &mut intents);
        ui.separator();
        let conv = state.selected.clone();
        intents.extend(feed::show(ui, state, &conv, &mut view.feeds));
    });
    if let Some(d) = &mut view.dialog {
        let (more, close) = dialogs::show(ui, d, &state.directory);
        intents.extend(more);
        if close {
            view.dialog = None;
        }
    }
    intents
}

fn status_bar(ui: &mut egui::Ui, state: &State, intents: &mut Vec<Intent>) {
    egui::Panel::bottom("status").show(ui, |ui| {
        ui.horizontal(|ui| {
            match &state.link {
                Link::Online => {
                    dot(ui, Some(true));
                    let who = state.me.as_ref().map_or(String::new(), ToString::to_string);
                    let server = state
                        .server
                        .as_ref()
                        .map_or(String::new(), |s| format!("{}:{}", s.host(), s.port()));
                    ui.label(format!("Connected to {server} as {who}"));
                }
                Link::Connecting => {
                    ui.spinner();
                    ui.label("Connecting…");
                }
                Link::Reconnecting {
                    reason,
                    retry_in,
                    never_connected,
                } => {
                    ui.spinner();
                    let when = retry_in.map_or(String::new(), |d| {
                        format!(" in {:.0}s", d.as_secs_f64().ceil())
                    });
                    let what = if *never_connected {
                        "Cannot reach the server"
                    } else {
                        "Connection lost"
                    };
                    ui.colored_label(
                        ui.visuals().warn_fg_color,
                        format!("{what}; reconnecting{when}…"),
                    )
                    .on_hover_text(reason);
                }
                Link::Offline => {
                    dot(ui, Some(false));
                    ui.label("Offline");
                }
            }
            let waiting = state.pending.iter().filter(|p| p.failed.is_none()).count();
            if waiting > 0 {
                ui.separator();
                ui.label(format!("{waiting} waiting to be sent"));
            }
            if let Some(n) = &state.notice {
                ui.separator();
                if n.error {
                    ui.colored_label(ui.visuals().error_fg_color, &n.text);
                } else {
                    ui.label(&n.text);
                }
                if ui.small_button("✖").on_hover_text("Dismiss").clicked() {
                    intents.push(Intent::DismissNotice);
                }
            }
        });
    });
}

fn sidebar(ui: &mut egui::Ui, state: &State, view: &mut View, intents: &mut Vec<Intent>) {
    egui::Panel::left("sidebar")
        .resizable(true)
        .default_size(210.0)
        .show(ui, |ui| {
            ui.add_space(6.0);
            ui.horizontal(|ui| {
                ui.label(RichText::new("ChatUs").strong().size(18.0));
            });
            if let Some(me) = &state.me {
                ui.horizontal(|ui| {
                    dot(ui, Some(state.link == Link::Online));
                    ui.label(RichText::new(me.as_str()).strong());
                    if ui.small_button("Log out").clicked() {
                        intents.push(Intent::Logout);
                    }
                });
            }
            ui.separator();
            egui::ScrollArea::vertical()
                .auto_shrink([false, false])
                .show(ui, |ui| {
                    ui.horizontal(|ui| {
                        ui.label(RichText::new("Rooms").strong());
                        ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
                            if ui
                                .small_button("Browse")
                                .on_hover_text("Rooms you can join")
                                .clicked()
                            {
                                view.dialog = Some(Dialog::Browse);
                                intents.push(Intent::DismissNotice);
                                intents.push(Intent::Browse);
                            }
                            if ui
                                .small_button("+")
                                .on_hover_text("Create a room")
                                .clicked()
                            {
                                view.dialog = Some(Dialog::Create {
                                    name: String::new(),
                                    private: false,
                                    error: None,
                                });
                            }
                        });
                    });
                    for (room, c) in state.rooms() {
                        let conv = Conversation::Room(room.clone());
                        ui.horizontal(|ui| {
                            let lock = if c.visibility == Some(Visibility::Private) {
                                "🔒"
                            } else {
                                "#"
                            };
                            let label = format!("{lock} {room}");
                            let text = if c.unread > 0 {
                                RichText::new(label).strong()
                            } else {
                                RichText::new(label)
                            };
                            if ui.selectable_label(state.selected == conv, text).clicked() {
                                intents.push(Intent::Select(conv));
                            }
                            badge(ui, c.unread);
                        });
                    }
                    if !state.invites.is_empty() {
                        ui.add_space(6.0);
                        ui.label(RichText::new("Invitations").strong());
                        for room in &state.invites {
                            ui.horizontal(|ui| {
                                ui.label(format!("🔒 {room}"));
                                if ui.small_button("Join").clicked() {
                                    intents.push(Intent::Join(room.clone()));
                                }
                            });
                        }
                    }
                    ui.add_space(6.0);
                    ui.label(RichText::new("Direct messages").strong());
                    for (peer, c) in state.directs() {
                        let conv = Conversation::Peer(peer.clone());
                        ui.horizontal(|ui| {
                            dot(ui, state.presence(peer));
                            let text = if c.unread > 0 {
                                RichText::new(peer.as_str()).strong()
                            } else {
                                RichText::new(peer.as_str())
                            };
                            if ui.selectable_label(state.selected == conv, text).clicked() {
                                intents.push(Intent::Select(conv));
                            }
                            badge(ui, c.unread);
                        });
                    }
                    ui.add_space(6.0);
                    // While not connected the list is what we last knew:
                    // kept (to start a direct conversation) but dimmed,
                    // with no claim about who is online now.
                    let known = state.link == Link::Online;
                    let heading = if known {
                        format!("Online — {}", state.online.len())
                    } else {
                        "Online — unknown while offline".to_owned()
                    };
                    ui.label(RichText::new(heading).strong());
                    for user in &state.online {
                        ui.horizontal(|ui| {
                            dot(ui, state.presence(user));
                            let me = state.is_me(user);
                            let name = if known {
                                RichText::new(user.as_str())
                            } else {
                                RichText::new(user.as_str()).weak()
                            };
                            let resp = ui.selectable_label(false, name).on_hover_text(if me {
                                "you"
                            } else {
                                "Send a direct message"
                            });
                            if resp.clicked() && !me {
                                intents.push(Intent::Select(Conversation::Peer(user.clone())));
                            }
                        });
                    }
                });
        });
}

fn header(ui: &mut egui::Ui, state: &State, view: &mut View, intents: &mut Vec<Intent>) {
    ui.horizontal(|ui| match &state.selected {
        Conversation::Room(room) => {
            ui.label(RichText::new(format!("#{room}")).size(18.0).strong());
            if let Some(c) = state.convs.get(&state.selected)
                && let Some(v) = c.visibility
            {
                ui.label(RichText::new(v.as_str()).weak());
            }
            if let Some((r, m)) = &state.members
                && r == room
            {
                let online = m.iter().filter(|m| m.online).count();
                let count = if m.len() == 1 {
                    "1 member".to_owned()
                } else {
                    format!("{} members", m.len())
                };
                ui.label(RichText::new(format!("{count}, {online} online")).weak());
            }
            ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
                if !room.is_lobby() && ui.button("Leave").clicked() {
                    intents.push(Intent::Leave(room.clone()));
                }
                if ui.button("Invite…").clicked() {
                    view.dialog = Some(Dialog::Invite {
                        room: room.clone(),
                        user: String::new(),
                        error: None,
                    });
                }
                let label = if view.show_members {
                    "Hide members"
                } else {
                    "Members"
                };
                if ui.button(label).clicked() {
                    view.show_members = !view.show_members;
                    if view.show_members {
                        intents.push(Intent::ShowMembers(room.clone()));
                    }
                }
            });
        }
        Conversation::Peer(peer) => {
            let presence = state.presence(peer);
            dot(ui, presence);
            ui.label(RichText::new(format!("@{peer}")).size(18.0).strong());
            let status = match presence {
                Some(true) => "online",
                Some(false) => "offline",
                None => "presence unknown while offline",
            };
            ui.label(RichText::new(status).weak());
        }
    });
}

fn members_panel(ui: &mut egui::Ui, state: &State, intents: &mut Vec<Intent>) {
    egui::Panel::right("members")
        .resizable(true)
        .default_size(170.0)
        .show(ui, |ui| {
            ui.add_space(6.0);
            ui.label(RichText::new("Members").strong());
            ui.separator();
            let Some((_, members)) = &state.members else {
                ui.spinner();
                return;
            };
            egui::ScrollArea::vertical().show(ui, |ui| {
                for m in members {
                    ui.horizontal(|ui| {
                        dot(ui, (state.link == Link::Online).then_some(m.online));
                        let name = RichText::new(m.user.as_str())
                            .color(style::name_color(ui, m.user.as_str()));
                        if ui.selectable_label(false, name).clicked() && !state.is_me(&m.user) {
                            intents.push(Intent::Select(Conversation::Peer(m.user.clone())));
                        }
                    });
                }
            });
        });
}

fn composer(ui: &mut egui::Ui, state: &State, view: &mut View, intents: &mut Vec<Intent>) {
    egui::Panel::bottom("composer").show(ui, |ui| {
        ui.add_space(4.0);
        let target = match &state.selected {
            Conversation::Room(r) => format!("#{r}"),
            Conversation::Peer(p) => format!("@{p}"),
        };
        let id = egui::Id::unique("composer");
        let focused = ui.memory(|m| m.has_focus(id));
        // Enter sends; Shift+Enter is the text box's own new-line key. The
        // modifiers are read from the key event itself, not from the state
        // at the end of the frame: a Shift released within the same frame
        // (fast typing, a slow frame) must still make a new line.
        let enter = focused
            && ui.input(|i| {
                i.events.iter().any(|e| {
                    matches!(e, egui::Event::Key { key: Key::Enter, pressed: true, modifiers, .. }
                        if !modifiers.shift)
                })
            });
        let mut send = false;
        ui.horizontal(|ui| {
            let label = ui.label(format!("Message {target}:"));
            let width = ui.available_width() - 70.0;
            let edit = egui::TextEdit::multiline(&mut view.composer)
                .id(id)
                .desired_rows(2)
                .desired_width(width.max(100.0))
                .hint_text("Enter sends, Shift+Enter starts a new line; /join ROOM, /leave, /msg USER TEXT, /quit")
                .return_key(KeyboardShortcut::new(Modifiers::SHIFT, Key::Enter));
            let resp = ui.add(edit).labelled_by(label.id);
            if view.dialog.is_none() && !resp.has_focus() && !ui.ctx().egui_wants_keyboard_input() {
                resp.request_focus();
            }
            if ui.button("Send").clicked() {
                send = true;
            }
        });
        if enter || send {
            let text = std::mem::take(&mut view.composer);
            if !text.trim().is_empty() {
                intents.push(Intent::Compose(text));
            }
        }
        ui.add_space(2.0);
    });
}
