//! The message feed: day separators, sender and time on the first of a
//! run of messages (every message shows its full date and time on hover),
//! our own messages set apart, links clickable, pending messages at the
//! end, then files being sent. A message that shares a file shows the
//! file's card (see [`super::files`]). Read receipts show as "Seen by …"
//! under the last message each reader reached. Moderation events (a ban,
//! a new topic) are a line of their own between the messages. It follows new messages unless scrolled up (then a "new messages"
//! button appears), and asks for older history at the top. Characters that
//! no font can draw are reported (`Intent::GlyphsMissing`).

use std::collections::HashMap;

use chatus_client::protocol::message::Message;
use chatus_client::protocol::moderation::{ActionKind, Moderated, Role};
use chatus_client::protocol::{Conversation, Emoji};
use eframe::egui::{self, RichText};

use super::files;
use super::style::{self, Run};
use crate::fonts::GlyphCheck;
use crate::state::{ComposeMode, Conv, Intent, Link, Pending, State};

/// Scroll bookkeeping for one conversation's feed.
#[derive(Debug, Default, Clone)]
pub struct FeedView {
    /// The view was at the bottom last frame.
    at_bottom: bool,
    /// Messages that arrived below while scrolled up.
    unseen: usize,
    /// How many messages were shown last frame, and the newest seq.
    last_count: usize,
    last_newest: u64,
    /// Content height when older history was requested, to keep the view
    /// still when it arrives.
    anchor: Option<f32>,
    /// A scroll position to apply next frame.
    jump: Option<f32>,
    /// The message last gone to from a search, outlined.
    found: Option<chatus_client::protocol::Seq>,
}

/// Feeds by conversation.
pub type Feeds = HashMap<Conversation, FeedView>;

fn message_body(ui: &mut egui::Ui, text: &str) {
    let runs = style::runs(text);
    if runs.iter().all(|r| matches!(r, Run::Text(_))) {
        ui.add(egui::Label::new(text).wrap());
        return;
    }
    ui.horizontal_wrapped(|ui| {
        ui.spacing_mut().item_spacing.x = 0.0;
        for r in runs {
            match r {
                Run::Text(t) => {
                    ui.add(egui::Label::new(t).wrap());
                }
                Run::Link(url) => {
                    ui.hyperlink_to(url, url);
                }
            }
        }
    });
}

/// Draws the feed of `conv`; returns intents (load older, characters no
/// font has).
pub fn show(
    ui: &mut egui::Ui,
    state: &State,
    conv: &Conversation,
    feeds: &mut Feeds,
    glyphs: &mut GlyphCheck,
) -> Vec<Intent> {
    let mut intents = Vec::new();
    let mut missing = Vec::new();
    let empty = Conv::default();
    let c = state.convs.get(conv).unwrap_or(&empty);
    let fv = feeds.entry(conv.clone()).or_default();
    let newest = c.messages.keys().next_back().map_or(0, |s| s.0);
    if newest > fv.last_newest && !fv.at_bottom && fv.last_count > 0 {
        fv.unseen += c
            .messages
            .range(chatus_client::protocol::Seq(fv.last_newest + 1)..)
            .count();
    }
    let mut area = egui::ScrollArea::vertical()
        .id_salt(("feed", conv.to_string()))
        .stick_to_bottom(true)
        .auto_shrink([false, false]);
    if let Some(y) = fv.jump.take() {
        area = area.vertical_scroll_offset(y);
    }
    let pending: Vec<&Pending> = state.pending_in(conv).collect();
    let output = area.show(ui, |ui| {
        ui.add_space(4.0);
        if c.history.loading {
            ui.horizontal(|ui| {
                ui.spinner();
                ui.label(RichText::new("Loading older messages…").weak());
            });
        } else if !c.history.requested && state.link != Link::Online {
            ui.vertical_centered(|ui| {
                ui.label(
                    RichText::new("Messages will load when the connection is back.")
                        .weak()
                        .italics(),
                );
            });
        } else if c.history.requested && !c.history.more_older {
            ui.vertical_centered(|ui| {
                ui.label(
                    RichText::new(format!("This is the beginning of {conv}."))
                        .weak()
                        .italics(),
                );
            });
        }
        let today = style::today();
        let seen = state.seen_by(conv);
        let mut prev: Option<&Message> = None;
        let mut moderation = c.moderation.iter().peekable();
        for m in c.messages.values() {
            while let Some((_, event)) = moderation.next_if(|(seq, _)| **seq < m.seq) {
                moderation_line(ui, event);
            }
            let day = style::day(m.time);
            let new_day = prev.is_none_or(|p| style::day(p.time) != day);
            if new_day && let Some(d) = day {
                day_divider(ui, &style::day_label(d, today));
            }
            let grouped = !new_day
                && prev.is_some_and(|p| {
                    p.sender == m.sender && m.time.0.saturating_sub(p.time.0) < 5 * 60_000
                });
            if let Some(body) = &m.body {
                missing.extend(glyphs.missing(ui.ctx(), body.as_str()));
            }
            let found = fv.found == Some(m.seq);
            let response = row(ui, state, m, !grouped, found, &mut intents);
            if state
                .jump
                .as_ref()
                .is_some_and(|j| j.conv == *conv && j.seq == m.seq)
            {
                response.scroll_to_me(Some(egui::Align::Center));
                fv.found = Some(m.seq);
                intents.push(Intent::Jumped);
            }
            seen_line(
                ui,
                conv,
                seen.get(&m.seq).map_or(&[][..], Vec::as_slice),
                state.unnamed_seen_at(conv, m.seq),
            );
            prev = Some(m);
        }
        for (_, event) in moderation {
            moderation_line(ui, event);
        }
        for p in &pending {
            pending_row(ui, state, p);
        }
        files::uploads(ui, state, conv, &mut intents);
        ui.add_space(4.0);
    });
    let offset = output.state.clamped_offset().y;
    let view_h = output.inner_rect.height();
    let content_h = output.content_size.y;
    fv.at_bottom = offset + view_h >= content_h - 4.0;
    if fv.at_bottom {
        fv.unseen = 0;
    }
    if let Some(anchor) = fv.anchor
        && !c.history.loading
    {
        if content_h > anchor + 1.0 {
            fv.jump = Some(offset + (content_h - anchor));
            ui.ctx().request_repaint();
        }
        // Also when nothing came (the request failed or was not sent while
        // offline): otherwise the feed would never ask again.
        fv.anchor = None;
    }
    if offset <= 2.0
        && content_h > view_h
        && c.history.more_older
        && !c.history.loading
        && fv.anchor.is_none()
    {
        fv.anchor = Some(content_h);
        intents.push(Intent::LoadOlder);
    }
    fv.last_count = c.messages.len();
    fv.last_newest = newest;
    if !missing.is_empty() {
        intents.push(Intent::GlyphsMissing(missing));
    }
    if fv.unseen > 0 {
        // "↓", not "⬇": an emoji font would draw that as a blue tile.
        let label = if fv.unseen == 1 {
            "↓ 1 new message".to_owned()
        } else {
            format!("↓ {} new messages", fv.unseen)
        };
        let rect = output.inner_rect;
        let pos = egui::pos2(rect.center().x - 70.0, rect.bottom() - 36.0);
        egui::Area::new(egui::Id::unique(("new-messages", conv.to_string())))
            .fixed_pos(pos)
            .order(egui::Order::Foreground)
            .show(ui.ctx(), |ui| {
                if ui.button(label).clicked() {
                    fv.jump = Some(f32::MAX);
                    fv.unseen = 0;
                }
            });
    }
    intents
}

/// Who read up to this message (read receipts): "Seen" in a direct
/// conversation, "Seen by …" in a room, names beyond three counted, with
/// the readers the server counted without naming (`unnamed`).
fn seen_line(
    ui: &mut egui::Ui,
    conv: &Conversation,
    readers: &[&chatus_client::protocol::Username],
    unnamed: u32,
) {
    let Some(text) = seen_text(conv, readers, unnamed) else {
        return;
    };
    ui.with_layout(egui::Layout::right_to_left(egui::Align::Min), |ui| {
        ui.add_space(8.0);
        ui.label(RichText::new(text).small().weak());
    });
}

/// A day's divider: a rule across the feed with the day's name in a pill
/// in the middle, in the normal text colour, so it reads in both themes.
/// What a moderation event did, as a sentence: "alice banned bob: spam".
pub fn moderation_text(m: &Moderated) -> String {
    let a = &m.action;
    let user = a.target.as_ref().map_or("someone", |u| u.as_str());
    let mut s = match a.action {
        ActionKind::Topic => match a.topic.as_ref().map(|t| t.as_str()) {
            Some("") | None => "cleared the topic".to_owned(),
            Some(t) => format!("set the topic to “{t}”"),
        },
        ActionKind::Role => match a.role {
            Some(Role::Moderator) => format!("made {user} a moderator"),
            _ => format!("made {user} a plain member"),
        },
        ActionKind::Kick => format!("removed {user}"),
        ActionKind::Ban => format!("banned {user}"),
        ActionKind::Unban => format!("lifted the ban on {user}"),
        ActionKind::Mute => match a.until {
            Some(t) => format!("muted {user} until {}", style::full_time(t)),
            None => format!("muted {user}"),
        },
        ActionKind::Unmute => format!("unmuted {user}"),
        ActionKind::InviteOnly if a.invite_only == Some(true) => {
            "made the room invitation-only".to_owned()
        }
        ActionKind::InviteOnly => "opened the room to everyone".to_owned(),
    };
    if let Some(r) = &a.reason {
        s.push_str(&format!(": {r}"));
    }
    format!("{} {s}", m.actor)
}

/// A moderation event's line in the feed.
fn moderation_line(ui: &mut egui::Ui, m: &Moderated) {
    ui.add_space(2.0);
    ui.label(RichText::new(moderation_text(m)).italics().weak())
        .on_hover_text(style::full_time(m.time));
    ui.add_space(2.0);
}

fn day_divider(ui: &mut egui::Ui, label: &str) {
    ui.add_space(8.0);
    let font = egui::TextStyle::Small.resolve(ui.style());
    let text_color = ui.visuals().strong_text_color();
    let galley = ui
        .painter()
        .layout_no_wrap(label.to_owned(), font, text_color);
    let height = galley.size().y + 6.0;
    let (rect, response) = ui.allocate_exact_size(
        egui::vec2(ui.available_width(), height),
        egui::Sense::hover(),
    );
    let visuals = ui.visuals();
    let line = egui::Stroke::new(
        1.0,
        visuals
            .widgets
            .noninteractive
            .fg_stroke
            .color
            .gamma_multiply(0.45),
    );
    let pill = egui::Rect::from_center_size(rect.center(), galley.size() + egui::vec2(16.0, 6.0));
    let painter = ui.painter();
    painter.hline(rect.left()..=pill.left() - 6.0, rect.center().y, line);
    painter.hline(pill.right() + 6.0..=rect.right(), rect.center().y, line);
    painter.rect(
        pill,
        pill.height() / 2.0,
        visuals.widgets.noninteractive.weak_bg_fill,
        line,
        egui::StrokeKind::Inside,
    );
    painter.galley(pill.center() - galley.size() / 2.0, galley, text_color);
    // Painted, so give it a name for screen readers (and tests).
    response.widget_info(|| egui::WidgetInfo::labeled(egui::Role::Label, true, label));
    ui.add_space(4.0);
}

/// The reactions a message's context menu offers (each toggles ours).
const QUICK_REACTIONS: &[&str] = &["👍", "❤️", "😂", "🎉"];

/// What a reply shows of the message it quotes: the excerpt the server or
/// the client library gave, else the quoted message's text if it is
/// loaded here (in an encrypted conversation the server sends none), else
/// its number.
fn quoted_text(state: &State, m: &Message, q: &chatus_client::protocol::event::Quote) -> String {
    if let Some(e) = &q.excerpt {
        return e.clone();
    }
    let c = state.convs.get(&m.conv);
    match c.and_then(|c| c.messages.get(&q.seq)) {
        Some(t) if t.deleted.is_some() => "message deleted".into(),
        Some(t) => t.body.as_ref().map_or_else(
            || "message deleted".into(),
            |b| chatus_client::protocol::event::excerpt(b.as_str()),
        ),
        None if c.is_some_and(|c| c.encrypted) => format!("message {}", q.seq),
        None => "message deleted".into(),
    }
}

/// One message. Ours are set apart by a faint background; one that
/// mentions us by a tint of the warning colour and a bar at its left; the
/// one gone to from a search (`found`) is outlined.
fn row(
    ui: &mut egui::Ui,
    state: &State,
    m: &Message,
    header: bool,
    found: bool,
    intents: &mut Vec<Intent>,
) -> egui::Response {
    let mine = state.is_me(&m.sender);
    let mentioned = !mine && state.mentions_me(m);
    let fill = if mine {
        ui.visuals().faint_bg_color
    } else if mentioned {
        ui.visuals().warn_fg_color.gamma_multiply(0.12)
    } else {
        egui::Color32::TRANSPARENT
    };
    let stroke = if found {
        ui.visuals().selection.stroke
    } else {
        egui::Stroke::NONE
    };
    let framed = egui::Frame::new()
        .fill(fill)
        .stroke(stroke)
        .inner_margin(egui::Margin::symmetric(8, 2))
        .corner_radius(4.0)
        .show(ui, |ui| {
            ui.set_width(ui.available_width());
            if header {
                ui.horizontal(|ui| {
                    let name = RichText::new(state.shown(&m.sender))
                        .strong()
                        .color(style::name_color(ui, m.sender.as_str()));
                    ui.label(name);
                    if mine {
                        ui.label(RichText::new("(you)").small().weak());
                    }
                    ui.label(RichText::new(style::clock(m.time)).small().weak());
                });
            }
            // The quote of a reply: clicking it goes to the message
            // (loading older pages until it is there).
            if let Some(q) = &m.reply_to {
                let quoted = quoted_text(state, m, q);
                let quote = ui
                    .add(
                        egui::Label::new(
                            RichText::new(format!("↪ {}: {quoted}", q.sender))
                                .small()
                                .weak(),
                        )
                        .sense(egui::Sense::click()),
                    )
                    .on_hover_cursor(egui::CursorIcon::PointingHand)
                    .on_hover_text("Go to the message");
                if quote.clicked() {
                    intents.push(Intent::OpenHit(m.conv.clone(), q.seq));
                }
            }
            let Some(body) = &m.body else {
                ui.label(RichText::new("message deleted").italics().weak());
                return;
            };
            match &m.file {
                Some(f) => {
                    // The body of a file message is the file's name unless
                    // the sender wrote something else.
                    if body.as_str() != f.name.as_str() {
                        message_body(ui, body.as_str());
                    }
                    files::card(ui, state, f, intents);
                }
                None => message_body(ui, body.as_str()),
            }
            if m.edited.is_some() {
                ui.label(RichText::new("(edited)").small().weak());
            }
            if !m.reactions.is_empty() {
                let line: Vec<String> = m
                    .reactions
                    .iter()
                    .map(|r| format!("{} {}", r.emoji, r.count))
                    .collect();
                ui.label(RichText::new(line.join("  ")).small());
            }
        });
    if mentioned {
        let r = framed.response.rect;
        ui.painter().vline(
            r.left() + 1.0,
            r.y_range(),
            egui::Stroke::new(3.0, ui.visuals().warn_fg_color),
        );
    }
    // Grouped messages show no time of their own: hovering any message
    // tells when it was sent.
    let response = framed.response.on_hover_text(style::full_time(m.time));
    if m.deleted.is_none() {
        // The frame senses hover only (sensing clicks would take them from
        // the links and buttons inside it), so `Response::context_menu`,
        // which waits for the frame's own secondary click, would never open:
        // a secondary click anywhere over the message opens it instead.
        let opened = response.contains_pointer() && ui.input(|i| i.pointer.secondary_clicked());
        egui::Popup::menu(&response)
            .open_memory(opened.then_some(egui::SetOpenCommand::Bool(true)))
            .at_pointer_fixed()
            .show(|ui| {
                for emoji in QUICK_REACTIONS {
                    if let Ok(emoji) = Emoji::parse(*emoji)
                        && ui.button(format!("React {emoji}")).clicked()
                    {
                        intents.push(Intent::React(m.seq, emoji));
                    }
                }
                if ui.button("Reply").clicked() {
                    intents.push(Intent::ComposeAs(Some(ComposeMode::Reply(m.seq))));
                }
                if mine && ui.button("Edit").clicked() {
                    intents.push(Intent::ComposeAs(Some(ComposeMode::Edit(m.seq))));
                }
                if mine && ui.button("Delete message").clicked() {
                    intents.push(Intent::Delete(m.seq));
                }
            });
    }
    response
}

fn pending_row(ui: &mut egui::Ui, state: &State, p: &Pending) {
    let fill = ui.visuals().faint_bg_color;
    egui::Frame::new()
        .fill(fill)
        .inner_margin(egui::Margin::symmetric(8, 2))
        .corner_radius(4.0)
        .show(ui, |ui| {
            ui.set_width(ui.available_width());
            ui.horizontal(|ui| {
                let me = state.me.as_ref().map_or("you", |m| m.as_str());
                ui.label(RichText::new(me).strong().weak());
                match &p.failed {
                    Some(why) => {
                        ui.colored_label(ui.visuals().error_fg_color, format!("not sent: {why}"))
                    }
                    None => ui.label(RichText::new("sending…").small().italics().weak()),
                };
            });
            ui.add(egui::Label::new(RichText::new(&p.body).weak()).wrap());
        });
}

/// The text of [`seen_line`], or nothing when nobody is known to have
/// read up to here.
fn seen_text(
    conv: &Conversation,
    readers: &[&chatus_client::protocol::Username],
    unnamed: u32,
) -> Option<String> {
    if readers.is_empty() && unnamed == 0 {
        return None;
    }
    if let Conversation::Peer(_) = conv {
        return Some("Seen".to_owned());
    }
    let named = if readers.len() > 3 || (unnamed > 0 && readers.len() > 2) {
        &readers[..2]
    } else {
        readers
    };
    let others = (readers.len() - named.len()) as u64 + u64::from(unnamed);
    let mut names: Vec<String> = named.iter().map(|u| u.to_string()).collect();
    match others {
        0 => {}
        1 => names.push("1 other".to_owned()),
        n => names.push(format!("{n} others")),
    }
    let text = match names.as_slice() {
        [a] => a.clone(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
        [] => return None,
    };
    Some(format!("Seen by {text}"))
}

#[cfg(test)]
mod seen_tests {
    use super::*;
    use chatus_client::protocol::{RoomName, Username};

    /// Issue 13: in a large room the server names 20 readers a round and
    /// counts the rest; the line says so as chat apps do.
    #[test]
    fn seen_lines_name_three_then_count() {
        let room = Conversation::Room(RoomName::lobby());
        let u: Vec<Username> = ["ann", "bob", "cy", "di"]
            .iter()
            .map(|n| Username::parse(*n).unwrap())
            .collect();
        let r: Vec<&Username> = u.iter().collect();
        let line = |n: usize, unnamed| seen_text(&room, &r[..n], unnamed);
        assert_eq!(line(0, 0), None);
        assert_eq!(line(1, 0).unwrap(), "Seen by ann");
        assert_eq!(line(3, 0).unwrap(), "Seen by ann, bob and cy");
        assert_eq!(line(4, 0).unwrap(), "Seen by ann, bob and 2 others");
        assert_eq!(line(2, 998).unwrap(), "Seen by ann, bob and 998 others");
        assert_eq!(line(3, 1).unwrap(), "Seen by ann, bob and 2 others");
        assert_eq!(line(1, 1).unwrap(), "Seen by ann and 1 other");
        assert_eq!(line(0, 5).unwrap(), "Seen by 5 others");
        let dm = Conversation::Peer(u[0].clone());
        assert_eq!(seen_text(&dm, &r[..1], 0).unwrap(), "Seen");
    }
}
