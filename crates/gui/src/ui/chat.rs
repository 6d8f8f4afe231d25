//! The chat screen: sidebar (the account menu, rooms with unread counts,
//! invitations, direct conversations, who is online), the open
//! conversation's header and feed, the composer (Enter sends, Shift+Enter
//! starts a new line; Attach sends files, as does dropping them on the
//! window), and a status line (connected / reconnecting,
//! notices).
//!
//! The header and the composer adapt to narrow windows: the room's buttons
//! fold into a menu, labels are shortened with an ellipsis, and the
//! composer's hint is shortened or left out rather than wrapped.

use chatus_client::protocol::{Conversation, RoomName, Username, Visibility};
use eframe::egui::{self, Key, KeyboardShortcut, Modifiers, RichText};

use super::dialogs::{self, Dialog};
use super::feed::{self, Feeds};
use super::files;
use crate::fonts::GlyphCheck;
use crate::state::{ComposeMode, Intent, Link, State};

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
    /// Characters of messages already checked against the fonts.
    pub glyphs: GlyphCheck,
    /// The message whose text the composer was filled with for an edit.
    pub editing: Option<chatus_client::protocol::Seq>,
    /// The account menu's display name field.
    pub display_name: String,
    /// The key backup's restore form, while open: the key typed.
    pub restore_key: Option<String>,
    /// The form changing the encryption passphrase, while open.
    pub passphrase_form: Option<super::rekey::Form>,
}

/// The accessible label of the account menu (the user name in the sidebar).
pub fn account_menu_label(me: &Username) -> String {
    format!("{me} ⏷")
}

/// The accessible label of the room menu that replaces the header's
/// buttons when the window is narrow.
pub const ROOM_MENU: &str = "Room ⏷";

/// The account menu's entry listing our devices.
pub const YOUR_DEVICES: &str = "Your devices…";

/// A direct conversation's button listing the peer's devices.
pub const DEVICES: &str = "Devices…";

/// The label of the header's search button.
pub const SEARCH: &str = "Search…";

/// The composer's hints, longest first: the longest that fits on one line
/// is shown (none when even the shortest would wrap).
const HINTS: [&str; 3] = [
    "Enter sends, Shift+Enter starts a new line; /join ROOM, /leave, /msg USER TEXT, /quit",
    "Enter sends, Shift+Enter: new line",
    "Enter sends",
];

/// The width of `text` on one line in `font`.
fn text_width(ui: &egui::Ui, text: &str, font: egui::FontId) -> f32 {
    ui.painter()
        .layout_no_wrap(text.to_owned(), font, egui::Color32::PLACEHOLDER)
        .size()
        .x
}

/// The unread count, and apart from it the mentions of us (`@3`), which
/// stand out in the warning colour.
fn badges(ui: &mut egui::Ui, c: &crate::state::Conv) {
    badge(ui, c.unread);
    if c.mentions > 0 {
        let n = c.mentions.min(99);
        ui.label(
            RichText::new(format!("@{n}"))
                .small()
                .strong()
                .color(ui.visuals().strong_text_color())
                .background_color(ui.visuals().warn_fg_color.gamma_multiply(0.5)),
        )
        .on_hover_text("Messages that mention you");
    }
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
pub(super) fn dot(ui: &mut egui::Ui, online: Option<bool>) {
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
    if view.dialog.is_none() && ui.input_mut(|i| i.consume_key(Modifiers::COMMAND, Key::F)) {
        view.dialog = Some(Dialog::Search {
            query: String::new(),
            here: false,
        });
    }
    status_bar(ui, state, &mut intents);
    sidebar(ui, state, view, &mut intents);
    if view.show_members {
        super::members::panel(ui, state, view, &mut intents);
    }
    composer(ui, state, view, &mut intents);
    egui::CentralPanel::default_margins().show(ui, |ui| {
        intents.extend(files::drop_target(ui, state, ui.max_rect()));
        header(ui, state, view, &mut intents);
        ui.separator();
        let conv = state.selected.clone();
        intents.extend(feed::show(
            ui,
            state,
            &conv,
            &mut view.feeds,
            &mut view.glyphs,
        ));
    });
    if let Some(d) = &mut view.dialog {
        let (more, close) = dialogs::show(ui, d, state);
        intents.extend(more);
        if close {
            view.dialog = None;
            // The dialog's field had the keyboard. Hand it to the composer
            // now: left to itself, the composer takes it only once the
            // field is gone for a whole frame, and keys typed in that frame
            // went nowhere.
            ui.memory_mut(|m| m.request_focus(composer_id()));
            ui.ctx().request_repaint();
        }
    }
    intents.extend(super::backup::restore(ui, &mut view.restore_key));
    intents.extend(super::rekey::form(ui, &mut view.passphrase_form));
    intents.extend(super::backup::replace(ui, state));
    intents.extend(super::backup::recovery_key(ui, state));
    // Over any other dialog: another device's offer may come at any time.
    intents.extend(super::verify::dialog(ui, state));
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
                // The button first: a long notice is cut short at the
                // window's edge (the whole text on hover), not the button.
                // "×", not "✖": an emoji font would draw that in colour.
                if ui.small_button("×").on_hover_text("Dismiss").clicked() {
                    intents.push(Intent::DismissNotice);
                }
                let text = if n.error {
                    RichText::new(&n.text).color(ui.visuals().error_fg_color)
                } else {
                    RichText::new(&n.text)
                };
                ui.add(egui::Label::new(text).truncate())
                    .on_hover_text(&n.text);
            }
        });
    });
}

fn sidebar(ui: &mut egui::Ui, state: &State, view: &mut View, intents: &mut Vec<Intent>) {
    // A narrow window keeps most of its width for the conversation.
    let max_sidebar = (ui.available_width() * 0.36).max(150.0);
    egui::Panel::left("sidebar")
        .resizable(true)
        .default_size(210.0_f32.min(max_sidebar))
        .max_size(max_sidebar)
        .show(ui, |ui| {
            ui.add_space(6.0);
            ui.horizontal(|ui| {
                ui.label(RichText::new("ChatUs").strong().size(18.0));
            });
            if let Some(me) = &state.me {
                ui.horizontal(|ui| {
                    dot(ui, Some(state.link == Link::Online));
                    let mut devices = None;
                    account_menu(ui, state, me, view, &mut devices, intents);
                    if let Some(user) = devices {
                        view.dialog = Some(Dialog::Devices { user });
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
                            let label = format!("{lock} {room}{}", muted_mark(state, &conv));
                            let text = if c.unread > 0 {
                                RichText::new(label).strong()
                            } else {
                                RichText::new(label)
                            };
                            let resp = ui.selectable_label(state.selected == conv, text);
                            mute_menu(&resp, state, &conv, intents);
                            if resp.clicked() {
                                intents.push(Intent::Select(conv));
                            }
                            badges(ui, c);
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
                                if ui.small_button("Decline").clicked() {
                                    intents.push(Intent::Decline(room.clone()));
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
                            let label = format!("{peer}{}", muted_mark(state, &conv));
                            let text = if c.unread > 0 {
                                RichText::new(label).strong()
                            } else {
                                RichText::new(label)
                            };
                            let resp = ui.selectable_label(state.selected == conv, text);
                            mute_menu(&resp, state, &conv, intents);
                            if resp.clicked() {
                                intents.push(Intent::Select(conv));
                            }
                            badges(ui, c);
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
                            let shown = state.shown(user);
                            let name = if known {
                                RichText::new(shown)
                            } else {
                                RichText::new(shown).weak()
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

/// After a muted conversation's name in the sidebar.
fn muted_mark(state: &State, conv: &Conversation) -> &'static str {
    if state.is_muted(conv) { " 🔕" } else { "" }
}

/// A conversation's context menu in the sidebar (secondary click): mute
/// its desktop notifications, or unmute them.
fn mute_menu(resp: &egui::Response, state: &State, conv: &Conversation, intents: &mut Vec<Intent>) {
    resp.context_menu(|ui| {
        let label = if state.is_muted(conv) {
            "Unmute notifications"
        } else {
            "Mute notifications"
        };
        if ui.button(label).clicked() {
            intents.push(Intent::ToggleMute(conv.clone()));
            ui.close();
        }
    });
}

/// The accessible label of the account menu's display name field.
pub const DISPLAY_NAME_LABEL: &str = "Display name";

/// The account menu: switch to another saved account, add one, set the
/// display name, choose receipts, log out.
fn account_menu(
    ui: &mut egui::Ui,
    state: &State,
    me: &Username,
    view: &mut View,
    devices: &mut Option<Username>,
    intents: &mut Vec<Intent>,
) {
    let display_name = &mut view.display_name;
    let others: Vec<&Username> = state
        .saved_here()
        .iter()
        .filter(|u| !u.same_account(me))
        .collect();
    ui.menu_button(RichText::new(account_menu_label(me)).strong(), |ui| {
        for user in &others {
            if ui.button(format!("Switch to {user}")).clicked() {
                intents.push(Intent::UseSaved((*user).clone()));
            }
        }
        if !others.is_empty() {
            ui.separator();
        }
        ui.label(format!("Shown as {}", state.shown(me)));
        ui.horizontal(|ui| {
            let label = ui.label(DISPLAY_NAME_LABEL);
            ui.add(egui::TextEdit::singleline(display_name).desired_width(140.0))
                .labelled_by(label.id)
                .on_hover_text("Shown beside your user name, never instead of it");
        });
        ui.horizontal(|ui| {
            if ui.button("Set display name").clicked() {
                intents.push(Intent::SetDisplayName(Some(display_name.clone())));
            }
            if ui.button("Clear display name").clicked() {
                display_name.clear();
                intents.push(Intent::SetDisplayName(None));
            }
        });
        ui.separator();
        let mut share = state.share;
        let rooms = ui
            .checkbox(&mut share.rooms, "Share read receipts in rooms")
            .on_hover_text("Room members see how far you have read");
        let direct = ui
            .checkbox(&mut share.direct, "Share read receipts in direct messages")
            .on_hover_text("The other person sees that you read their messages");
        if rooms.changed() || direct.changed() {
            intents.push(Intent::Share(share));
        }
        ui.separator();
        if ui
            .button(YOUR_DEVICES)
            .on_hover_text("Your other logins' devices, and verifying them")
            .clicked()
        {
            intents.push(Intent::ShowDevices(me.clone()));
            *devices = Some(me.clone());
        }
        if ui
            .button(super::backup::ENABLE_BACKUP)
            .on_hover_text("Keep your message keys on the server, sealed under a recovery key shown once (asks before replacing a backup you have)")
            .clicked()
        {
            intents.push(Intent::EnableBackup);
        }
        if ui
            .button(super::backup::RESTORE_BACKUP)
            .on_hover_text("Read older encrypted messages on this device with your recovery key")
            .clicked()
        {
            view.restore_key = Some(String::new());
        }
        if ui
            .button(super::rekey::CHANGE_PASSPHRASE)
            .on_hover_text("Seal the encryption keys on this device with a new passphrase")
            .clicked()
        {
            view.passphrase_form = Some(super::rekey::Form::default());
        }
        if ui.button("Add account…").clicked() {
            intents.push(Intent::AddAccount);
        }
        if ui.button("Log out").clicked() {
            intents.push(Intent::Logout);
        }
    })
    .response
    .on_hover_text("Switch account, add another, or log out");
}

fn header(ui: &mut egui::Ui, state: &State, view: &mut View, intents: &mut Vec<Intent>) {
    let height = ui.spacing().interact_size.y.max(26.0);
    let size = egui::vec2(ui.available_width(), height);
    match &state.selected {
        Conversation::Room(room) => {
            let compact = ui.available_width() < room_header_width(ui, state, view, room);
            ui.allocate_ui_with_layout(
                size,
                egui::Layout::right_to_left(egui::Align::Center),
                |ui| {
                    search_button(ui, view);
                    if compact {
                        ui.menu_button(ROOM_MENU, |ui| {
                            room_buttons(ui, room, view, intents);
                        })
                        .response
                        .on_hover_text("Members, invite, leave");
                    } else {
                        // Right to left: the first button is the rightmost.
                        if !room.is_lobby() && ui.button("Leave").clicked() {
                            intents.push(Intent::Leave(room.clone()));
                        }
                        if ui.button("Invite…").clicked() {
                            open_invite(view, room);
                        }
                        if ui.button(members_label(view)).clicked() {
                            toggle_members(view, room, intents);
                        }
                    }
                    ui.with_layout(egui::Layout::left_to_right(egui::Align::Center), |ui| {
                        room_title(ui, state, room);
                    });
                },
            );
        }
        Conversation::Peer(peer) => {
            ui.allocate_ui_with_layout(
                size,
                egui::Layout::right_to_left(egui::Align::Center),
                |ui| {
                    search_button(ui, view);
                    if ui
                        .button(super::verify::VERIFY)
                        .on_hover_text(format!(
                            "Compare emoji with {peer}'s device, so you know no one is in between"
                        ))
                        .clicked()
                    {
                        intents.push(Intent::Verify(peer.clone(), None));
                    }
                    if ui.button(DEVICES).clicked() {
                        intents.push(Intent::ShowDevices(peer.clone()));
                        view.dialog = Some(Dialog::Devices { user: peer.clone() });
                    }
                    ui.with_layout(egui::Layout::left_to_right(egui::Align::Center), |ui| {
                        peer_title(ui, state, peer);
                    });
                },
            );
        }
    }
}

/// The header's search button: opens the search dialog.
fn search_button(ui: &mut egui::Ui, view: &mut View) {
    if ui
        .button(SEARCH)
        .on_hover_text("Search messages (Ctrl+F)")
        .clicked()
    {
        view.dialog = Some(Dialog::Search {
            query: String::new(),
            here: false,
        });
    }
}

/// The other person's name and presence, in a direct conversation's
/// header.
fn peer_title(ui: &mut egui::Ui, state: &State, peer: &Username) {
    let presence = state.presence(peer);
    dot(ui, presence);
    ui.add(egui::Label::new(RichText::new(format!("@{peer}")).size(18.0).strong()).truncate());
    let status = match presence {
        Some(true) => "online",
        Some(false) => "offline",
        None => "presence unknown while offline",
    };
    ui.add(egui::Label::new(RichText::new(status).weak()).truncate());
    encrypted_mark(ui, state);
    super::verify::peer_mark(ui, state, peer);
}

/// The open conversation's end-to-end encryption marker.
fn encrypted_mark(ui: &mut egui::Ui, state: &State) {
    if state
        .convs
        .get(&state.selected)
        .is_some_and(|c| c.encrypted)
    {
        ui.add(egui::Label::new(RichText::new("🔒 encrypted").weak()).truncate())
            .on_hover_text(
                "End-to-end encrypted: only the members' devices can read it, not the server.",
            );
    }
}

/// The room's name, visibility and member count, shortened with an
/// ellipsis when there is no room for them.
fn room_title(ui: &mut egui::Ui, state: &State, room: &RoomName) {
    ui.add(egui::Label::new(RichText::new(format!("#{room}")).size(18.0).strong()).truncate());
    if let Some(c) = state.convs.get(&state.selected)
        && let Some(v) = c.visibility
    {
        ui.add(egui::Label::new(RichText::new(v.as_str()).weak()).truncate());
    }
    encrypted_mark(ui, state);
    super::verify::room_mark(ui, state, room);
    if let Some((members, online)) = state.member_count() {
        let count = if members == 1 {
            "1 member".to_owned()
        } else {
            format!("{members} members")
        };
        let (text, hover) = match online {
            Some(n) => (format!("{count}, {n} online"), None),
            None => (
                format!("{count}, online unknown"),
                Some("Not connected: this is the count when last connected."),
            ),
        };
        let label = ui.add(egui::Label::new(RichText::new(text).weak()).truncate());
        if let Some(h) = hover {
            label.on_hover_text(h);
        }
    }
    if let Some(info) = state.directory.iter().find(|r| &r.name == room)
        && !info.topic.is_empty()
    {
        let label =
            ui.add(egui::Label::new(RichText::new(info.topic.as_str()).italics()).truncate());
        if !info.description.is_empty() {
            label.on_hover_text(info.description.as_str());
        }
    }
}

/// How wide the room header is with its buttons laid out in full (the
/// title and the name of the visibility, the buttons, and some room for
/// the member count).
fn room_header_width(ui: &egui::Ui, state: &State, view: &View, room: &RoomName) -> f32 {
    let spacing = ui.spacing().item_spacing.x;
    let padding = 2.0 * ui.spacing().button_padding.x;
    let body = egui::TextStyle::Body.resolve(ui.style());
    let button = egui::TextStyle::Button.resolve(ui.style());
    let mut buttons = vec![SEARCH, members_label(view), "Invite…"];
    if !room.is_lobby() {
        buttons.push("Leave");
    }
    let buttons: f32 = buttons
        .iter()
        .map(|b| text_width(ui, b, button.clone()) + padding + spacing)
        .sum();
    let title = text_width(ui, &format!("#{room}"), egui::FontId::proportional(18.0));
    let visibility = state
        .convs
        .get(&state.selected)
        .and_then(|c| c.visibility)
        .map_or(0.0, |v| text_width(ui, v.as_str(), body.clone()));
    let count = text_width(ui, "99 members, 99 online", body);
    title + visibility + count + buttons + 3.0 * spacing
}

fn members_label(view: &View) -> &'static str {
    if view.show_members {
        "Hide members"
    } else {
        "Members"
    }
}

fn toggle_members(view: &mut View, room: &RoomName, intents: &mut Vec<Intent>) {
    view.show_members = !view.show_members;
    if view.show_members {
        intents.push(Intent::ShowMembers(room.clone()));
    }
}

fn open_invite(view: &mut View, room: &RoomName) {
    view.dialog = Some(Dialog::Invite {
        room: room.clone(),
        user: String::new(),
        error: None,
    });
}

/// The header's buttons as menu entries (narrow windows).
fn room_buttons(ui: &mut egui::Ui, room: &RoomName, view: &mut View, intents: &mut Vec<Intent>) {
    if ui.button(members_label(view)).clicked() {
        toggle_members(view, room, intents);
    }
    if ui.button("Invite…").clicked() {
        open_invite(view, room);
    }
    if !room.is_lobby() && ui.button("Leave").clicked() {
        intents.push(Intent::Leave(room.clone()));
    }
}

/// The composer's text box.
fn composer_id() -> egui::Id {
    egui::Id::unique("composer")
}

fn composer(ui: &mut egui::Ui, state: &State, view: &mut View, intents: &mut Vec<Intent>) {
    egui::Panel::bottom("composer").show(ui, |ui| {
        ui.add_space(4.0);
        if let Some(line) = state.typing_line() {
            ui.label(RichText::new(line).italics().weak());
        }
        let target = match &state.selected {
            Conversation::Room(r) => format!("#{r}"),
            Conversation::Peer(p) => format!("@{p}"),
        };
        let id = composer_id();
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
        // Reply or edit mode: say so above the text box, with a way out;
        // an edit starts from the message's text.
        if let Some(mode) = state.compose_mode {
            let (seq, what) = match mode {
                ComposeMode::Reply(seq) => (seq, "Replying to"),
                ComposeMode::Edit(seq) => (seq, "Editing"),
            };
            let shown = state
                .convs
                .get(&state.selected)
                .and_then(|c| c.messages.get(&seq));
            if let (ComposeMode::Edit(_), Some(m)) = (mode, shown)
                && view.editing != Some(seq)
            {
                view.editing = Some(seq);
                view.composer = m.body.as_ref().map(|b| b.to_string()).unwrap_or_default();
            }
            ui.horizontal(|ui| {
                let whose = shown.map_or_else(String::new, |m| format!(" {}", m.sender));
                ui.label(
                    RichText::new(format!("{what}{whose}'s message"))
                        .small()
                        .weak(),
                );
                if ui.small_button("Cancel").clicked() {
                    view.editing = None;
                    intents.push(Intent::ComposeAs(None));
                }
            });
        } else {
            view.editing = None;
        }
        // `@` completion: the names that fit what is typed after the last
        // `@`, as buttons above the text box; Tab takes the first.
        let completions = chatus_client::protocol::mention::partial_mention(&view.composer)
            .map(|(at, prefix)| (at, state.mention_candidates(prefix)))
            .filter(|(_, names)| !names.is_empty());
        if let Some((at, names)) = &completions {
            let tab = focused && ui.input_mut(|i| i.consume_key(Modifiers::NONE, Key::Tab));
            let mut chosen = tab.then(|| names[0].clone());
            ui.horizontal_wrapped(|ui| {
                ui.label(RichText::new("Tab:").small().weak());
                for name in names {
                    if ui.small_button(format!("@{name}")).clicked() {
                        chosen = Some(name.clone());
                    }
                }
            });
            if let Some(name) = chosen {
                view.composer.truncate(*at);
                view.composer.push_str(&format!("@{name} "));
                move_cursor_to_end(ui, id, &view.composer);
                ui.memory_mut(|m| m.request_focus(id));
            }
        }
        // Narrow, the label goes above the text box, which then gets the
        // whole width.
        let label_text = format!("Message {target}:");
        let body = egui::TextStyle::Body.resolve(ui.style());
        let stacked = ui.available_width() < text_width(ui, &label_text, body.clone()) + 320.0;
        let above = stacked.then(|| ui.label(&label_text));
        ui.horizontal(|ui| {
            let label = above.unwrap_or_else(|| ui.label(&label_text));
            let button_font = egui::TextStyle::Button.resolve(ui.style());
            let buttons_width = text_width(ui, "Send", button_font.clone())
                + text_width(ui, files::ATTACH, button_font)
                + 2.0 * (2.0 * ui.spacing().button_padding.x + ui.spacing().item_spacing.x);
            let width = (ui.available_width() - buttons_width - 4.0).max(60.0);
            // The text box's inner margin is 4 points a side; leave a little
            // more so that the hint never wraps.
            let room_for_hint = width - 12.0;
            let hint = HINTS
                .into_iter()
                .find(|h| text_width(ui, h, body.clone()) <= room_for_hint)
                .unwrap_or("");
            let edit = egui::TextEdit::multiline(&mut view.composer)
                .id(id)
                .desired_rows(2)
                .desired_width(width)
                .hint_text(hint)
                .return_key(KeyboardShortcut::new(Modifiers::SHIFT, Key::Enter));
            let resp = ui.add(edit).labelled_by(label.id);
            if resp.changed() {
                let text = view.composer.trim();
                let writing =
                    !text.is_empty() && (!text.starts_with('/') || text.starts_with("//"));
                intents.push(Intent::Typing(writing));
            }
            if view.dialog.is_none() && !resp.has_focus() && !ui.ctx().egui_wants_keyboard_input() {
                resp.request_focus();
            }
            if ui
                .button(files::ATTACH)
                .on_hover_text(format!(
                    "Send files to {target} (or drop them on the window)"
                ))
                .clicked()
            {
                intents.push(Intent::PickFiles);
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

/// Puts the text box's cursor after its last character (after the text was
/// changed by completion, not by typing).
fn move_cursor_to_end(ui: &egui::Ui, id: egui::Id, text: &str) {
    let mut st = egui::text_edit::TextEditState::load(ui.ctx(), id).unwrap_or_default();
    let end = egui::text::CCursor::new(text.chars().count());
    st.cursor
        .set_char_range(Some(egui::text::CCursorRange::one(end)));
    st.store(ui.ctx(), id);
}
