//! Files in the conversation: a shared file's card (name, size, media
//! type, Save, and the download's progress with Cancel, or its result), the rows of files
//! being sent (progress with Cancel, a lost connection, a failure), and
//! dropping files onto the window to send them.
//!
//! An image's card shows its preview (the server's thumbnail) above the
//! name; clicking it opens the image full size. Previews become textures
//! here, kept in egui's memory for the previews the state keeps.

use std::collections::HashMap;
use std::path::PathBuf;

use chatus_client::protocol::{Conversation, FileId, FileInfo};
use eframe::egui::{self, RichText};

use super::style::{human_size, progress_text};
use crate::state::{
    DownloadPhase, Intent, MAX_PREVIEWS, Preview, PreviewState, State, Upload, UploadPhase,
    is_image,
};

/// The accessible label of an image's preview.
pub fn preview_label(name: &str) -> String {
    format!("Preview of {name}")
}

/// Textures of the previews shown, by file (in egui's memory).
#[derive(Clone, Default)]
struct Textures(HashMap<FileId, egui::TextureHandle>);

/// The texture of a preview, made once.
fn texture(ui: &egui::Ui, state: &State, id: &FileId, p: &Preview) -> egui::TextureHandle {
    let key = egui::Id::unique("chatus-preview-textures");
    let ctx = ui.ctx();
    if let Some(t) = ctx.data_mut(|d| {
        d.get_temp_mut_or_default::<Textures>(key)
            .0
            .get(id)
            .cloned()
    }) {
        return t;
    }
    // Made outside `data_mut`: egui's memory and its textures share a lock.
    let image = egui::ColorImage::from_rgba_unmultiplied([p.width, p.height], &p.rgba);
    let tex = ctx.load_texture(format!("preview-{id}"), image, egui::TextureOptions::LINEAR);
    ctx.data_mut(|d| {
        let t = d.get_temp_mut_or_default::<Textures>(key);
        if t.0.len() >= MAX_PREVIEWS {
            // Only those the state still keeps.
            t.0.retain(|id, _| matches!(state.previews.get(id), Some(PreviewState::Ready(_))));
        }
        t.0.insert(id.clone(), tex.clone());
    });
    tex
}

/// An image's preview (or a placeholder while it loads); a click opens
/// the image full size.
fn preview(ui: &mut egui::Ui, state: &State, file: &FileInfo, intents: &mut Vec<Intent>) {
    match state.previews.get(&file.id) {
        None => intents.push(Intent::Preview(file.clone())),
        Some(PreviewState::Loading) => {
            ui.horizontal(|ui| {
                ui.spinner();
                ui.label(RichText::new("Loading the preview…").small().weak());
            });
        }
        Some(PreviewState::Unavailable) => {}
        Some(PreviewState::Ready(p)) => {
            let tex = texture(ui, state, &file.id, p);
            let resp = ui
                .add(
                    egui::Image::new(&tex)
                        .max_size(egui::vec2(320.0, 320.0))
                        .corner_radius(4.0)
                        .sense(egui::Sense::click()),
                )
                .on_hover_text(format!("Open {} full size", file.name));
            let label = preview_label(file.name.as_str());
            resp.widget_info(|| egui::WidgetInfo::labeled(egui::Role::Image, true, &label));
            if resp.clicked() {
                intents.push(Intent::OpenFull(file.clone()));
            }
        }
    }
}

/// The accessible label of the attach button.
pub const ATTACH: &str = "Attach…";

/// The card of a shared file.
pub fn card(ui: &mut egui::Ui, state: &State, file: &FileInfo, intents: &mut Vec<Intent>) {
    let download = state.download_of(&file.id);
    egui::Frame::group(ui.style())
        .inner_margin(egui::Margin::symmetric(8, 6))
        .show(ui, |ui| {
            ui.set_max_width(ui.available_width().min(460.0));
            if is_image(file) {
                preview(ui, state, file, intents);
            }
            ui.horizontal(|ui| {
                ui.vertical(|ui| {
                    ui.add(egui::Label::new(RichText::new(file.name.as_str()).strong()).truncate());
                    ui.label(
                        RichText::new(format!("{} · {}", human_size(file.size), file.media_type))
                            .small()
                            .weak(),
                    );
                });
                ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
                    let busy = download.is_some_and(crate::state::Download::busy);
                    let save = ui
                        .add_enabled(!busy, egui::Button::new("Save"))
                        .on_hover_text(format!("Save {} on this computer", file.name));
                    if save.clicked() {
                        intents.push(Intent::Save(file.clone()));
                    }
                });
            });
            let Some(d) = download else {
                return;
            };
            match &d.phase {
                DownloadPhase::Choosing => {
                    ui.label(RichText::new("Choosing where to save…").small().weak());
                }
                DownloadPhase::Saving => {
                    let p = d.progress.unwrap_or(chatus_client::transfer::Progress {
                        done: 0,
                        total: file.size,
                    });
                    ui.horizontal(|ui| {
                        bar(ui, p.done, p.total, &format!("Saving {}", file.name));
                        if ui
                            .small_button("Cancel")
                            .on_hover_text(format!("Stop saving {}", file.name))
                            .clicked()
                        {
                            intents.push(Intent::CancelSave(file.id.clone()));
                        }
                    });
                }
                DownloadPhase::Saved(path) => {
                    ui.label(
                        RichText::new(format!("Saved as {}", path.display()))
                            .small()
                            .weak(),
                    );
                }
                DownloadPhase::Failed(why) => {
                    ui.colored_label(
                        ui.visuals().error_fg_color,
                        format!("Could not save it: {why}"),
                    );
                }
            }
        });
}

/// A progress bar with the bytes and percentage on it; `what` names it
/// for screen readers.
fn bar(ui: &mut egui::Ui, done: u64, total: u64, what: &str) {
    let fraction = if total == 0 {
        1.0
    } else {
        (done.min(total) as f64 / total as f64) as f32
    };
    let text = progress_text(done, total);
    let resp = ui.add(
        egui::ProgressBar::new(fraction)
            .desired_width(ui.available_width().min(320.0))
            .text(text.clone()),
    );
    let label = format!("{what}: {text}");
    resp.widget_info(|| egui::WidgetInfo::labeled(egui::Role::ProgressIndicator, true, &label));
}

/// The rows of files being sent to `conv`.
pub fn uploads(ui: &mut egui::Ui, state: &State, conv: &Conversation, intents: &mut Vec<Intent>) {
    for u in state.uploads_to(conv) {
        upload_row(ui, u, intents);
    }
}

fn upload_row(ui: &mut egui::Ui, u: &Upload, intents: &mut Vec<Intent>) {
    egui::Frame::new()
        .fill(ui.visuals().faint_bg_color)
        .inner_margin(egui::Margin::symmetric(8, 4))
        .corner_radius(4.0)
        .show(ui, |ui| {
            ui.set_width(ui.available_width());
            ui.horizontal(|ui| {
                let (verb, cancel) = match &u.phase {
                    UploadPhase::Failed(_) => ("Not sent:", "Dismiss"),
                    UploadPhase::Sharing => ("Sharing", ""),
                    _ => ("Sending", "Cancel"),
                };
                ui.label(RichText::new(format!("{verb} {}", u.name)).strong());
                if !cancel.is_empty()
                    && ui
                        .small_button(cancel)
                        .on_hover_text(format!("{cancel} {}", u.name))
                        .clicked()
                {
                    intents.push(Intent::CancelUpload(u.id));
                }
            });
            match &u.phase {
                UploadPhase::Preparing => {
                    ui.horizontal(|ui| {
                        ui.spinner();
                        ui.label(
                            RichText::new("Reading the file before sending it…")
                                .small()
                                .weak(),
                        );
                    });
                }
                UploadPhase::Sending => {
                    if let Some(p) = u.progress {
                        bar(ui, p.done, p.total, &format!("Sending {}", u.name));
                    }
                }
                UploadPhase::Waiting(why) => {
                    if let Some(p) = u.progress {
                        bar(ui, p.done, p.total, &format!("Sending {}", u.name));
                    }
                    ui.colored_label(
                        ui.visuals().warn_fg_color,
                        "Not connected; the upload goes on when the connection is back.",
                    )
                    .on_hover_text(why);
                }
                UploadPhase::Sharing => {
                    ui.horizontal(|ui| {
                        ui.spinner();
                        ui.label(RichText::new("Uploaded; sharing it…").small().weak());
                    });
                }
                UploadPhase::Failed(why) => {
                    ui.add(
                        egui::Label::new(RichText::new(why).color(ui.visuals().error_fg_color))
                            .wrap(),
                    );
                }
            }
        });
}

/// Files dropped on the window go to the open conversation; while files
/// are dragged over it, `area` says where they will go.
pub fn drop_target(ui: &mut egui::Ui, state: &State, area: egui::Rect) -> Option<Intent> {
    let (hovering, dropped) = ui.input(|i| {
        (
            !i.raw.hovered_files.is_empty(),
            i.raw
                .dropped_files
                .iter()
                .map(|f| f.path().to_owned())
                .collect::<Vec<PathBuf>>(),
        )
    });
    if hovering {
        // An area of its own (not just paint), so that screen readers and
        // tests can read where the files will go.
        let inner = area.shrink(6.0);
        egui::Area::new(egui::Id::unique("drop-files"))
            .fixed_pos(inner.min)
            .order(egui::Order::Foreground)
            .interactable(false)
            .show(ui.ctx(), |ui| {
                let visuals = ui.visuals().clone();
                egui::Frame::new()
                    .fill(visuals.extreme_bg_color.gamma_multiply(0.92))
                    .stroke(egui::Stroke::new(2.0, visuals.selection.stroke.color))
                    .corner_radius(6.0)
                    .show(ui, |ui| {
                        ui.set_min_size(inner.size() - egui::vec2(4.0, 4.0));
                        ui.centered_and_justified(|ui| {
                            ui.heading(format!("Drop to send to {}", state.selected));
                        });
                    });
            });
    }
    (!dropped.is_empty()).then_some(Intent::Attach(dropped))
}
