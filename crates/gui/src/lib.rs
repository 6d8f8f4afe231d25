//! The ChatUs desktop app: egui/eframe over the client library.
//!
//! The UI thread never waits on the network: a background thread runs the
//! client on tokio, and the two talk through channels (see [`net`]). What
//! the window shows is plain data in [`state`], tested without a window;
//! the `ui` modules draw it and return intents.
//!
//! # Layout
//! - [`app`]: [`ChatusApp`], the eframe app: per frame, apply updates,
//!   draw, dispatch intents.
//! - [`state`]: the state and its rules (updates and intents → actions).
//! - [`net`]: the bridge to the network thread ([`net::Action`] in,
//!   [`net::Update`] out).
//! - [`ui`]: the login and chat screens, the feed, dialogs.
//! - [`settings`]: what is remembered between runs.

pub mod app;
pub mod net;
pub mod settings;
pub mod state;
pub mod ui;

use std::path::PathBuf;

pub use app::ChatusApp;

/// What the command line can preset.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Server address (`host:port` or `ws://host:port`).
    pub server: Option<String>,
    /// User name.
    pub user: Option<String>,
    /// Where login tokens are kept (default: the user's config directory).
    pub config_dir: Option<PathBuf>,
}

/// Why the app could not start.
#[derive(Debug, thiserror::Error)]
pub enum GuiError {
    /// An option was invalid.
    #[error("{0}")]
    Options(String),
    /// The stored logins could not be used.
    #[error(transparent)]
    Sessions(#[from] chatus_client::SessionsError),
    /// The network thread could not start.
    #[error("Could not start the network thread: {0}")]
    Io(#[from] std::io::Error),
    /// The window could not be opened.
    #[error("Could not open the window: {0}")]
    Window(String),
}

/// Opens the window and runs until it closes.
pub fn run(options: &Options) -> Result<(), GuiError> {
    let native = eframe::NativeOptions {
        viewport: egui::ViewportBuilder::default()
            .with_title("ChatUs")
            .with_app_id("chatus")
            .with_inner_size([960.0, 640.0])
            .with_min_inner_size([720.0, 440.0]),
        ..Default::default()
    };
    let mut error = None;
    let result = eframe::run_native(
        "ChatUs",
        native,
        Box::new(|cc| {
            let settings: settings::Settings = cc
                .storage
                .and_then(|s| eframe::get_value(s, settings::KEY))
                .unwrap_or_default();
            match ChatusApp::new(options, settings) {
                Ok(app) => Ok(Box::new(app)),
                Err(e) => {
                    let msg = e.to_string();
                    error = Some(e);
                    Err(msg.into())
                }
            }
        }),
    );
    if let Some(e) = error {
        return Err(e);
    }
    result.map_err(|e| GuiError::Window(e.to_string()))
}
