//! [`ChatusApp`]: the window. It owns the [`State`], the network
//! [`Bridge`] and the drawing state; each frame it applies what the network
//! said, draws the current screen, and turns intents into actions.

use chatus_client::protocol::Username;
use chatus_client::{ServerUrl, Sessions};
use eframe::egui;

use crate::net::{Action, Bridge, Session, Update};
use crate::settings::{self, Settings};
use crate::state::{Intent, Screen, State};
use crate::ui;
use crate::{GuiError, Options};

/// The desktop app.
pub struct ChatusApp {
    state: State,
    view: ui::chat::View,
    net: Bridge,
    settings: Settings,
    title: String,
    wired: bool,
    /// The client the chat view was drawn for: another one (a new login,
    /// another account) gets a fresh view.
    view_session: Session,
    /// The account whose muted conversations the state holds.
    muted_for: Option<String>,
    /// The passphrase dialog, while the network waits for its answer.
    passphrase: Option<crate::passphrase::Dialog>,
}

impl ChatusApp {
    /// Builds the app from command-line options and stored settings, and
    /// logs in at once when a login is saved for the last account (or,
    /// when none is remembered, the server's default account in the store).
    pub fn new(options: &Options, settings: Settings) -> Result<Self, GuiError> {
        let sessions = Sessions::new(options.config_dir.clone())?;
        let source = options
            .key_source
            .clone()
            .unwrap_or_else(chatus_client::KeySource::from_env);
        let net = Bridge::start(sessions.clone(), source)?;
        let mut state = State::default();
        let mut settings = settings;
        if let Some(s) = &options.server {
            let url = ServerUrl::parse(s).map_err(|e| GuiError::Options(e.to_string()))?;
            settings.host = crate::state::form_host(&url);
            settings.port = url.port();
        }
        if let Some(u) = &options.user {
            settings.username.clone_from(u);
        }
        state.login.host.clone_from(&settings.host);
        state.login.port = settings.port.to_string();
        state.login.username.clone_from(&settings.username);
        state.share = settings.share_receipts;
        let mut app = Self {
            state,
            view: ui::chat::View::default(),
            net,
            settings,
            title: String::new(),
            wired: false,
            view_session: Session::default(),
            muted_for: None,
            passphrase: None,
        };
        if let Ok(server) =
            ServerUrl::parse(&format!("{}:{}", app.settings.host, app.settings.port))
        {
            let user = Username::parse(app.settings.username.clone()).ok();
            if let Ok((user, _)) = sessions.token(&server, user.as_ref()) {
                let actions = app.state.resume_session(server, user);
                app.dispatch(actions);
            }
        }
        let actions = app.state.intent(Intent::LoginServerEdited);
        app.dispatch(actions);
        Ok(app)
    }

    /// The state (for tests and the screenshot tool).
    pub fn state(&self) -> &State {
        &self.state
    }

    /// The composer's text (for tests).
    pub fn composer(&self) -> &str {
        &self.view.composer
    }

    /// Saves shared files into `folder` under their own names, without
    /// the save dialog (`None`: the dialog asks each time). An existing
    /// file there is never replaced (a file chosen in the dialog may be:
    /// the dialog asks first).
    pub fn set_save_folder(&mut self, folder: Option<std::path::PathBuf>) {
        self.state.save_folder = folder;
    }

    /// Keeps images opened full size in `folder` (`None`: the user's cache
    /// folder).
    pub fn set_image_cache(&mut self, folder: Option<std::path::PathBuf>) {
        self.state.image_cache = folder;
    }

    fn dispatch(&mut self, actions: Vec<Action>) {
        for a in actions {
            self.net.send(a);
        }
    }

    fn intent(&mut self, intent: Intent) {
        let actions = self.state.intent(intent);
        self.dispatch(actions);
    }

    /// Draws one frame into `ui` (the whole window).
    pub fn show(&mut self, ui: &mut egui::Ui) {
        if !self.wired {
            let ctx = ui.ctx().clone();
            self.net.set_repaint(move || ctx.request_repaint());
            self.wired = true;
        }
        for (session, update) in self.net.drain() {
            if let Update::Passphrase(question) = update {
                self.passphrase = Some(crate::passphrase::Dialog::new(question));
                continue;
            }
            let actions = self.state.receive(session, update);
            self.dispatch(actions);
        }
        if let Some(dialog) = &mut self.passphrase
            && dialog.show(ui.ctx())
        {
            self.passphrase = None;
        }
        if let (Some(me), Some(server)) = (&self.state.me, &self.state.server) {
            self.settings.host = crate::state::form_host(server);
            self.settings.port = server.port();
            self.settings.username = me.to_string();
            let account = format!("{}@{}:{}", me.key(), server.host(), server.port());
            if self.muted_for.as_deref() == Some(account.as_str()) {
                self.settings.set_muted(&account, &self.state.muted);
            } else {
                self.state.muted = self.settings.muted_in(&account);
                self.muted_for = Some(account);
            }
        }
        self.state.set_focused(ui.input(|i| i.focused));
        let timed_out = self.state.verify_tick(std::time::Instant::now());
        self.dispatch(timed_out);
        self.settings.share_receipts = self.state.share;
        let intents = match self.state.screen {
            Screen::Login => {
                let saved = self.state.saved_here().to_vec();
                ui::login::show(ui, &mut self.state.login, &saved)
            }
            Screen::Chat => ui::chat::show(ui, &self.state, &mut self.view),
        };
        for i in intents {
            self.intent(i);
        }
        if self.state.screen == Screen::Login || self.state.session() != self.view_session {
            self.view = ui::chat::View::default();
            self.view_session = self.state.session();
        }
        let title = self.state.title();
        if title != self.title {
            ui.ctx()
                .send_viewport_cmd(egui::ViewportCommand::Title(title.clone()));
            self.title = title;
        }
        if let Some(path) = &self.state.to_open {
            // The system's viewer (a browser, when that is what opens
            // files): egui hands the URL to the platform.
            ui.ctx()
                .open_url(egui::OpenUrl::new_tab(format!("file://{}", path.display())));
            self.intent(Intent::Opened);
        }
        if self.state.quit {
            ui.ctx().send_viewport_cmd(egui::ViewportCommand::Close);
        }
    }
}

impl eframe::App for ChatusApp {
    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        self.show(ui);
    }

    fn save(&mut self, storage: &mut dyn eframe::Storage) {
        eframe::set_value(storage, settings::KEY, &self.settings);
    }

    fn on_exit(&mut self, _gl: Option<&eframe::glow::Context>) {
        self.net.send(Action::Disconnect);
        // Give the network thread a moment to send the close frame.
        std::thread::sleep(std::time::Duration::from_millis(150));
    }
}
