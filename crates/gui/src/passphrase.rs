//! The passphrase dialog: when no OS keyring answers and no passphrase was
//! given (`CHATUS_PASSPHRASE`), the client library asks for the one that
//! seals this login's encryption keys (see SECURITY.md, "In the client").
//!
//! Unlike the other dialogs this one does not go through `State` and
//! `Intent`s: the library's `KeySource::ask` is a callback that waits, on
//! a blocking thread of the network runtime, for the answer. [`asker`]
//! sends a [`Question`] to the UI with a channel for the answer, and
//! [`Dialog`] draws it and answers on that channel (closing the app
//! drops the channel, which answers "none").

use std::sync::Arc;
use std::sync::mpsc::{SyncSender, sync_channel};

use chatus_client::{Ask, AskFor, KeySource, Passphrase};
use eframe::egui::{self, Key};

/// The accessible label of the passphrase field.
pub const FIELD: &str = "Passphrase:";
/// The accessible label of the field that repeats a new passphrase.
pub const REPEAT: &str = "Repeat it:";
/// The label of the button that answers.
pub const UNLOCK: &str = "Unlock";

/// The library's question, on its way to the UI.
#[derive(Debug, Clone)]
pub struct Question {
    /// Why it asks.
    pub why: AskFor,
    /// The login (`user@host:port`).
    pub owner: String,
    /// Where the answer goes.
    reply: SyncSender<Option<Passphrase>>,
}

/// A `KeySource::ask` that hands the question to the UI through `send`
/// and waits for the answer.
pub fn asker(send: impl Fn(Question) + Send + Sync + 'static) -> Ask {
    Arc::new(move |why, owner: &str| {
        let (reply, answer) = sync_channel(1);
        send(Question {
            why,
            owner: owner.to_owned(),
            reply,
        });
        answer.recv().ok().flatten()
    })
}

/// `source`, asking through `send` (see [`asker`]) unless it has its own
/// way to ask.
pub fn or_dialog(
    mut source: KeySource,
    send: impl Fn(Question) + Send + Sync + 'static,
) -> KeySource {
    if source.ask.is_none() {
        source.ask = Some(asker(send));
    }
    source
}

/// The dialog's own state.
#[derive(Debug)]
pub struct Dialog {
    question: Question,
    text: String,
    again: String,
    error: Option<String>,
}

impl Dialog {
    /// A dialog for `question`.
    pub fn new(question: Question) -> Self {
        Self {
            question,
            text: String::new(),
            again: String::new(),
            error: None,
        }
    }

    /// Draws the dialog; true once it has answered (close it).
    pub fn show(&mut self, ctx: &egui::Context) -> bool {
        let mut done = false;
        let new = self.question.why == AskFor::New;
        egui::Modal::new(egui::Id::unique("passphrase")).show(ctx, |ui| {
            ui.set_max_width(380.0);
            ui.heading("Encryption passphrase");
            ui.add_space(6.0);
            let owner = &self.question.owner;
            ui.label(match self.question.why {
                AskFor::New => format!(
                    "No system keyring is available to keep the encryption keys of {owner}. \
                     Choose a passphrase to seal them; you will be asked for it when ChatUs \
                     opens them."
                ),
                AskFor::Open => {
                    format!("The encryption keys of {owner} are sealed with a passphrase.")
                }
                AskFor::Wrong => "That passphrase does not open them. Try again.".to_owned(),
            });
            ui.add_space(6.0);
            let l = ui.label(FIELD);
            let r = ui
                .add(egui::TextEdit::singleline(&mut self.text).password(true))
                .labelled_by(l.id);
            if self.text.is_empty() {
                r.request_focus();
            }
            if new {
                let l = ui.label(REPEAT);
                ui.add(egui::TextEdit::singleline(&mut self.again).password(true))
                    .labelled_by(l.id);
            }
            if let Some(e) = &self.error {
                ui.colored_label(ui.visuals().error_fg_color, e.as_str());
            }
            ui.horizontal(|ui| {
                if ui.button(UNLOCK).clicked() || ui.input(|i| i.key_pressed(Key::Enter)) {
                    if self.text.is_empty() {
                        self.error = Some("Type a passphrase.".into());
                    } else if new && self.text != self.again {
                        self.error = Some("The two differ.".into());
                    } else {
                        let p = Passphrase::new(std::mem::take(&mut self.text));
                        self.again.clear();
                        let _ = self.question.reply.send(Some(p));
                        done = true;
                    }
                }
                if ui.button("Cancel").clicked() {
                    let _ = self.question.reply.send(None);
                    done = true;
                }
            });
        });
        done
    }
}
