//! The line editor `chat` uses on a terminal: reedline on a thread of its
//! own, printing everything else *above* the prompt, so arriving messages
//! never mix with a half-typed line and nothing already shown is erased.
//!
//! reedline's `read_line` blocks, so it runs on a dedicated thread and
//! hands each finished line to the chat loop over a channel. Output goes
//! through reedline's external printer. A relay thread batches what is
//! queued and hands it over on a rendezvous channel: when a hand-over
//! returns, reedline holds the batch and prints it before it next checks
//! for the stop signal. So stopping (drop every [`Printer`], let the relay
//! finish, then raise the stop flag) loses no line, and a burst costs one
//! repaint, not one per line.
//!
//! History is kept per server and account in the config directory
//! (`history/HOST_PORT/USER.txt`, mode 0600).

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc as std_mpsc};
use std::thread::JoinHandle;

use reedline::{
    ColumnarMenu, Emacs, ExternalPrinter, FileBackedHistory, KeyCode, KeyModifiers,
    MenuBuilder as _, Prompt, PromptEditMode, PromptHistorySearch, PromptHistorySearchStatus,
    Reedline, ReedlineEvent, ReedlineMenu, Signal, default_emacs_keybindings,
};
use tokio::sync::mpsc;

use super::complete::{ChatCompleter, SharedNames};

/// How many typed lines the history keeps.
const HISTORY_LINES: usize = 1000;

/// What the person did at the prompt.
#[derive(Debug)]
pub enum Typed {
    /// A finished line.
    Line(String),
    /// Ctrl-D or Ctrl-C: leave.
    End,
    /// The terminal failed.
    Failed(String),
}

/// Prints lines above the prompt (or plainly, once the editor stopped).
/// Cheap to clone; the editor stops only after every clone is dropped.
#[derive(Clone, Debug)]
pub struct Printer(std_mpsc::Sender<String>);

impl Printer {
    /// Queues `text` (one or more lines); never blocks.
    pub fn print(&self, text: String) {
        let _ = self.0.send(text);
    }
}

/// The running editor.
pub struct Editor {
    lines: mpsc::UnboundedReceiver<Typed>,
    stop: Arc<AtomicBool>,
    editor: Option<JoinHandle<()>>,
    relay: Option<JoinHandle<()>>,
}

/// The prompt: `#room> `, following the current room.
struct RoomPrompt(Arc<Mutex<String>>);

impl Prompt for RoomPrompt {
    fn render_prompt_left(&self) -> std::borrow::Cow<'_, str> {
        self.0.lock().map(|r| r.clone()).unwrap_or_default().into()
    }
    fn render_prompt_right(&self) -> std::borrow::Cow<'_, str> {
        "".into()
    }
    fn render_prompt_indicator(&self, _: PromptEditMode) -> std::borrow::Cow<'_, str> {
        "> ".into()
    }
    fn render_prompt_multiline_indicator(&self) -> std::borrow::Cow<'_, str> {
        "… ".into()
    }
    fn render_prompt_history_search_indicator(
        &self,
        search: PromptHistorySearch,
    ) -> std::borrow::Cow<'_, str> {
        let failing = match search.status {
            PromptHistorySearchStatus::Passing => "",
            PromptHistorySearchStatus::Failing => "failing ",
        };
        format!("({failing}search: {}) ", search.term).into()
    }
}

/// Where typed lines are kept for `user` on `server`.
pub fn history_path(config_dir: &Path, host: &str, port: u16, user: &str) -> PathBuf {
    let safe = |s: &str| -> String {
        s.chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                    c
                } else {
                    '_'
                }
            })
            .collect()
    };
    config_dir
        .join("history")
        .join(format!("{}_{port}", safe(host)))
        .join(format!("{}.txt", safe(&user.to_ascii_lowercase())))
}

/// Creates the history file (and its directories) readable by its owner
/// only, before the editor opens it.
fn private_history(path: &Path) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        #[cfg(unix)]
        {
            use std::os::unix::fs::DirBuilderExt as _;
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)?;
        }
        #[cfg(not(unix))]
        std::fs::create_dir_all(dir)?;
    }
    let mut open = std::fs::OpenOptions::new();
    open.append(true).create(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        open.mode(0o600);
    }
    open.open(path).map(drop)
}

impl Editor {
    /// Starts the editor with its history file, completion names and the
    /// prompt's room (`#lobby`). Returns it and the printer for output.
    pub fn start(
        history: &Path,
        names: SharedNames,
        room: Arc<Mutex<String>>,
    ) -> std::io::Result<(Editor, Printer)> {
        private_history(history)?;
        let history = FileBackedHistory::with_file(HISTORY_LINES, history.to_owned())
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        let mut keys = default_emacs_keybindings();
        keys.add_binding(
            KeyModifiers::NONE,
            KeyCode::Tab,
            ReedlineEvent::UntilFound(vec![
                ReedlineEvent::Menu("completion".into()),
                ReedlineEvent::MenuNext,
            ]),
        );
        // Rendezvous: a hand-over returns once reedline holds the batch.
        let external = ExternalPrinter::new(0);
        let to_editor = external.sender();
        let stop = Arc::new(AtomicBool::new(false));
        let mut line_editor = Reedline::create()
            .with_history(Box::new(history))
            .with_completer(Box::new(ChatCompleter(names)))
            .with_menu(ReedlineMenu::EngineCompleter(Box::new(
                ColumnarMenu::default().with_name("completion"),
            )))
            .with_quick_completions(true)
            .with_partial_completions(true)
            .with_edit_mode(Box::new(Emacs::new(keys)))
            .with_external_printer(external)
            .with_break_signal(stop.clone());
        let (lines_tx, lines) = mpsc::unbounded_channel();
        let prompt = RoomPrompt(room);
        let editor = std::thread::Builder::new()
            .name("chat-editor".into())
            .spawn(move || {
                loop {
                    let typed = match line_editor.read_line(&prompt) {
                        Ok(Signal::Success(line)) => Typed::Line(line),
                        Ok(Signal::CtrlD | Signal::CtrlC) => Typed::End,
                        Ok(Signal::ExternalBreak(_)) => break,
                        Ok(_) => continue,
                        Err(e) => Typed::Failed(e.to_string()),
                    };
                    let last = !matches!(typed, Typed::Line(_));
                    if lines_tx.send(typed).is_err() || last {
                        break;
                    }
                }
            })?;
        let (print_tx, print_rx) = std_mpsc::channel::<String>();
        let relay = std::thread::Builder::new()
            .name("chat-printer".into())
            .spawn(move || {
                while let Ok(first) = print_rx.recv() {
                    let mut batch = first;
                    while let Ok(more) = print_rx.try_recv() {
                        batch.push('\n');
                        batch.push_str(&more);
                    }
                    // The editor has gone (Ctrl-D): the terminal is plain again.
                    if let Err(e) = to_editor.send(batch) {
                        println!("{}", e.0);
                    }
                }
            })?;
        Ok((
            Editor {
                lines,
                stop,
                editor: Some(editor),
                relay: Some(relay),
            },
            Printer(print_tx),
        ))
    }

    /// The next thing typed; `None` once the editor has stopped.
    pub async fn next(&mut self) -> Option<Typed> {
        self.lines.recv().await
    }

    /// Prints what is still queued, then stops the editor and gives the
    /// terminal back. Every [`Printer`] must have been dropped, or this
    /// waits for them.
    pub fn stop(mut self) {
        if let Some(relay) = self.relay.take() {
            let _ = relay.join();
        }
        self.stop.store(true, Ordering::Relaxed);
        if let Some(editor) = self.editor.take() {
            let _ = editor.join();
        }
        // A stopped editor leaves its last prompt painted: take it away, so
        // the shell's prompt does not land after it.
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(b"\r\x1b[2K");
        let _ = out.flush();
    }
}
