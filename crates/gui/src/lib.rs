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
//!   [`net::Update`] out), which also runs file transfers and the file
//!   dialogs.
//! - [`ui`]: the login and chat screens, the feed, dialogs.
//! - [`passphrase`]: the dialog asking for the passphrase that seals a
//!   login's encryption keys when no OS keyring answers.
//! - [`settings`]: what is remembered between runs.
//! - [`fonts`]: the fonts (a colour emoji font when the system has one)
//!   and finding characters no font can draw.

pub mod app;
pub mod fonts;
pub mod net;
pub mod passphrase;
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
    /// Where the key sealing each login's encryption device comes from
    /// (default: the OS keyring, else `CHATUS_PASSPHRASE`, else a dialog
    /// asks).
    pub key_source: Option<chatus_client::KeySource>,
}

/// Log filter directives (`tracing_subscriber::EnvFilter` syntax) that
/// keep the desktop app's log quiet at the default level: warnings that
/// windowing and font libraries print on every start on ordinary machines
/// (Xvfb, minimal X servers, a `C` locale) and that no one can act on.
/// The binary adds them to its default filter; `RUST_LOG` overrides them.
pub const QUIET_LOG_DIRECTIVES: &[&str] = &[
    // "error setting XSETTINGS; Xft options won't reload automatically":
    // there is no XSETTINGS manager (no desktop environment running).
    "winit::platform_impl::linux::x11::xdisplay=error",
    // "XRandR reported that the display's 0mm in size, which is certifiably
    // insane": virtual displays report no physical size; winit then
    // assumes 96 dpi, which is right.
    "winit::platform_impl::linux::x11::util::randr=error",
    // "Failed to parse locale \"C\"": no locale set; fonts are then chosen
    // without one, which is what a `C` locale means.
    "egui_system_font_provider=error",
];

/// Why the app could not start.
#[derive(Debug, thiserror::Error)]
pub enum GuiError {
    /// No display to open a window on: no X11 or Wayland display is set
    /// (a plain console, an SSH session without X forwarding).
    #[error(
        "No display was found: neither DISPLAY nor WAYLAND_DISPLAY is set, so the desktop app \
         cannot open a window. Start it from a graphical session, or use the terminal client \
         (chatus chat)."
    )]
    NoDisplay,
    /// A display is set but could not be used.
    #[error("Could not open a window on the display {display}: {why}")]
    DisplayUnusable {
        /// The display named by the environment (`DISPLAY` or
        /// `WAYLAND_DISPLAY`).
        display: String,
        /// What the windowing library said, without its source location.
        why: String,
    },
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

/// The smallest window the layout is made for (the header and composer
/// adapt down to it; window managers keep the window from getting smaller).
pub const MIN_WINDOW: [f32; 2] = [560.0, 400.0];

/// Opens the window and runs until it closes.
pub fn run(options: &Options) -> Result<(), GuiError> {
    let display = display_from_env(|name| std::env::var(name).ok());
    if cfg!(all(unix, not(target_os = "macos"))) && display.is_none() {
        return Err(GuiError::NoDisplay);
    }
    let native = eframe::NativeOptions {
        viewport: egui::ViewportBuilder::default()
            .with_title("ChatUs")
            .with_app_id("chatus")
            .with_inner_size([960.0, 640.0])
            .with_min_inner_size(MIN_WINDOW),
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
            fonts::install(&cc.egui_ctx);
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
    result.map_err(|e| match e {
        // The event loop is the connection to the display: it fails when
        // the display named in the environment is not there.
        eframe::Error::WinitEventLoop(e) => GuiError::DisplayUnusable {
            display: display.unwrap_or_default(),
            why: without_source_location(&e.to_string()).to_owned(),
        },
        e => GuiError::Window(without_source_location(&e.to_string()).to_owned()),
    })
}

/// The display the window would open on: `WAYLAND_DISPLAY` or `DISPLAY`
/// (or `WAYLAND_SOCKET`), as `get` reads the environment.
fn display_from_env(get: impl Fn(&str) -> Option<String>) -> Option<String> {
    ["WAYLAND_DISPLAY", "WAYLAND_SOCKET", "DISPLAY"]
        .into_iter()
        .find_map(|name| get(name).filter(|v| !v.trim().is_empty()))
}

/// winit's errors read `os error at /path/to/src/file.rs:765: what
/// happened`; people need only what happened.
fn without_source_location(msg: &str) -> &str {
    match msg.find(".rs:") {
        Some(at) => msg[at..]
            .find(": ")
            .map_or(msg, |end| msg[at + end + 2..].trim()),
        None => msg,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_display_is_said_plainly() {
        let env = |vars: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                vars.iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| (*v).to_owned())
            }
        };
        assert_eq!(display_from_env(env(&[])), None);
        assert_eq!(display_from_env(env(&[("DISPLAY", "")])), None);
        assert_eq!(
            display_from_env(env(&[("DISPLAY", ":0")])).as_deref(),
            Some(":0")
        );
        assert_eq!(
            display_from_env(env(&[("DISPLAY", ":0"), ("WAYLAND_DISPLAY", "wayland-0")]))
                .as_deref(),
            Some("wayland-0")
        );
        let msg = GuiError::NoDisplay.to_string();
        assert!(msg.contains("No display was found"), "{msg}");
        assert!(!msg.contains(".rs"), "{msg}");
    }

    /// Regression: `chatus gui` with a display that is not there printed
    /// winit's source path (`…/winit-0.30.13/src/platform_impl/linux/mod.rs:788`).
    #[test]
    fn window_errors_leave_out_source_paths() {
        let winit = "winit EventLoopError: os error at /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/winit-0.30.13/src/platform_impl/linux/mod.rs:788: Failed to open connection to X server";
        assert_eq!(
            without_source_location(winit),
            "Failed to open connection to X server"
        );
        assert_eq!(without_source_location("plain words"), "plain words");
        let e = GuiError::DisplayUnusable {
            display: ":55".into(),
            why: without_source_location(winit).into(),
        };
        assert_eq!(
            e.to_string(),
            "Could not open a window on the display :55: Failed to open connection to X server"
        );
    }

    /// The directives parse, and they silence exactly the start-up
    /// warnings named, not other warnings from the same libraries.
    #[test]
    fn quiet_log_directives_silence_the_start_up_warnings() {
        use std::io::Write;
        use std::sync::{Arc, Mutex};
        #[derive(Clone, Default)]
        struct Buf(Arc<Mutex<Vec<u8>>>);
        impl Write for Buf {
            fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(b);
                Ok(b.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let mut filter = tracing_subscriber::EnvFilter::new("warn");
        for d in QUIET_LOG_DIRECTIVES {
            filter = filter.add_directive(d.parse().unwrap());
        }
        let buf = Buf::default();
        let writer = buf.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            tracing::warn!(target: "winit::platform_impl::linux::x11::xdisplay", "error setting XSETTINGS");
            tracing::warn!(target: "winit::platform_impl::linux::x11::util::randr", "certifiably insane");
            tracing::warn!(target: "egui_system_font_provider", "Failed to parse locale \"C\"");
            tracing::warn!(target: "winit::platform_impl::linux::x11::window", "still shown");
            tracing::error!(target: "egui_system_font_provider", "errors still shown");
        });
        let out = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        assert!(!out.contains("XSETTINGS"), "{out}");
        assert!(!out.contains("insane"), "{out}");
        assert!(!out.contains("locale"), "{out}");
        assert!(out.contains("still shown"), "{out}");
        assert!(out.contains("errors still shown"), "{out}");
    }
}
