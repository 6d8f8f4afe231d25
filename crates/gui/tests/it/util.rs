//! Helpers: a real server on its own runtime, the app in a kittest
//! harness, and waiting for the window to show something.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use chatus_client::protocol::{Body, Password, Username};
use chatus_client::{
    Client, Config, Credentials, Events, KeySource, Passphrase, Reconnect, ServerUrl,
};
use chatus_gui::{ChatusApp, Options};
use chatus_server::State;
use eframe::egui;
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable as _;

/// A server running on its own tokio runtime.
pub struct Server {
    pub rt: tokio::runtime::Runtime,
    pub addr: SocketAddr,
    pub data: PathBuf,
    _dir: Option<tempfile::TempDir>,
    tune: fn(&mut chatus_server::Config),
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<Result<(), chatus_server::ServerError>>>,
}

impl Server {
    pub fn start() -> Self {
        Self::start_with(|_| {})
    }

    /// Starts a server with settings changed by `tune`.
    pub fn start_with(tune: fn(&mut chatus_server::Config)) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().to_owned();
        Self::launch("127.0.0.1:0".parse().unwrap(), data, Some(dir), tune)
    }

    fn launch(
        addr: SocketAddr,
        data: PathBuf,
        dir: Option<tempfile::TempDir>,
        tune: fn(&mut chatus_server::Config),
    ) -> Self {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let mut config = chatus_server::Config {
            addr,
            data: data.clone(),
            ..Default::default()
        };
        config.tls.plain = true;
        config.rate.logins_per_min_per_addr = 100_000.0;
        config.rate.login_burst_per_addr = 100_000;
        config.rate.messages_per_sec = 100_000.0;
        config.rate.message_burst = 100_000;
        tune(&mut config);
        let (addr, stop, task) = rt.block_on(async move {
            let listener = tokio::net::TcpListener::bind(config.addr).await.unwrap();
            let addr = listener.local_addr().unwrap();
            let state = State::open(config).await.unwrap();
            let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
            let task = tokio::spawn(chatus_server::run(listener, state, async move {
                let _ = stopped.await;
            }));
            (addr, stop, task)
        });
        Self {
            rt,
            addr,
            data,
            _dir: dir,
            tune,
            stop: Some(stop),
            task: Some(task),
        }
    }

    pub fn url(&self) -> ServerUrl {
        // The test servers serve plain (see `start`).
        ServerUrl::parse(&format!("ws://{}", self.addr)).unwrap()
    }

    /// Stops the server cleanly.
    pub fn stop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.task.take() {
            self.rt.block_on(t).unwrap().unwrap();
        }
    }

    /// Starts again on the same port and data directory.
    pub fn restart(mut self) -> Self {
        self.stop();
        let dir = self._dir.take();
        let (addr, data, tune) = (self.addr, self.data.clone(), self.tune);
        drop(self);
        Self::launch(addr, data, dir, tune)
    }

    /// Registers and connects someone through the client library, with an
    /// end-to-end encryption device kept in the server's scratch folder.
    pub fn person(&self, name: &str) -> (Client, Events) {
        let creds = Credentials::Register {
            username: Username::parse(name).unwrap(),
            password: Password::parse(format!("{name}-password")).unwrap(),
        };
        let mut config = Config::new(self.url(), creds);
        config.reconnect = Reconnect::forever();
        // A device of their own, as the app and the CLI have: direct
        // conversations are end-to-end encrypted.
        config.e2ee_dir = Some(self.data.join(format!("device-{name}")));
        config.key_source = key_source();
        self.rt
            .block_on(async { Client::connect(config).await.map(|(c, e, _)| (c, e)) })
            .unwrap()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

/// How the tests' devices are sealed: a passphrase (derived once per
/// process), never the OS keyring of the machine running them.
pub fn key_source() -> KeySource {
    KeySource::passphrase(Passphrase::new("gui tests"))
}

/// The app in a headless harness, with its own token directory.
pub fn app(config_dir: &std::path::Path) -> Harness<'static, ChatusApp> {
    app_sized(config_dir, egui::vec2(1000.0, 700.0))
}

/// The app started again as if it had run before: its settings remember
/// the server on `port` and `user`, and `config_dir` holds what it stored.
pub fn app_remembering(
    config_dir: &std::path::Path,
    port: u16,
    user: &str,
) -> Harness<'static, ChatusApp> {
    let options = Options {
        config_dir: Some(config_dir.to_owned()),
        key_source: Some(key_source()),
        ..Options::default()
    };
    let settings = chatus_gui::settings::Settings {
        host: "ws://127.0.0.1".into(),
        port,
        username: user.into(),
        ..Default::default()
    };
    let app = ChatusApp::new(&options, settings).unwrap();
    Harness::builder()
        .with_size(egui::vec2(1000.0, 700.0))
        .build_ui_state(|ui, app: &mut ChatusApp| app.show(ui), app)
}

/// Steps the harness until `cond` holds (the network answers on its own
/// thread); fails after 20 seconds.
pub fn wait_until(
    h: &mut Harness<'_, ChatusApp>,
    what: &str,
    cond: impl Fn(&Harness<'_, ChatusApp>) -> bool,
) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        h.step();
        if cond(h) {
            return;
        }
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Steps until the window stops animating (a dialog fading in or out).
/// `Harness::run` fails when a repaint is still wanted after a few frames,
/// and the network thread asks for one with every update it hands over,
/// so a busy connection made it fail at random; here that only means
/// stepping on. Fails after 5 seconds.
pub fn settle(h: &mut Harness<'_, ChatusApp>) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while h.run_ok().is_none() {
        assert!(Instant::now() < deadline, "the window never settled");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// True when some widget's label contains `text`.
pub fn shows(h: &Harness<'_, ChatusApp>, text: &str) -> bool {
    h.query_by_label_contains(text).is_some()
}

/// Fills the login form and submits it (the test servers serve plain).
pub fn log_in(h: &mut Harness<'_, ChatusApp>, server: &Server, name: &str, register: bool) {
    let host = format!("ws://{}", server.addr.ip());
    log_in_at(h, &host, server.addr.port(), name, register);
}

/// Fills the login form with `host` (a bare host means TLS) and submits it.
pub fn log_in_at(
    h: &mut Harness<'_, ChatusApp>,
    host: &str,
    port: u16,
    name: &str,
    register: bool,
) {
    h.step();
    if register {
        h.get_by_label("Register").click();
        h.step();
    }
    for (label, value) in [
        ("Server:", host.to_owned()),
        ("Port:", port.to_string()),
        ("Username:", name.to_owned()),
        ("Password:", format!("{name}-password")),
    ] {
        let field = h.get_by_label(label);
        field.focus();
        h.step();
        h.key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::A);
        h.step();
        h.get_by_label(label).type_text(&value);
        h.step();
    }
    h.key_press(egui::Key::Enter);
    h.step();
}

/// Types into the composer and presses Enter.
pub fn say(h: &mut Harness<'_, ChatusApp>, text: &str) {
    let label = composer_label(h);
    h.get_by_label(&label).focus();
    h.step();
    h.get_by_label(&label).type_text(text);
    h.step();
    h.key_press(egui::Key::Enter);
    h.step();
}

/// The composer's accessible label for the open conversation.
pub fn composer_label(h: &Harness<'_, ChatusApp>) -> String {
    let target = match &h.state().state().selected {
        chatus_client::protocol::Conversation::Room(r) => format!("#{r}"),
        chatus_client::protocol::Conversation::Peer(p) => format!("@{p}"),
    };
    format!("Message {target}:")
}

/// Opens the account menu (the user name in the sidebar) and clicks
/// `entry` in it.
pub fn account_menu(h: &mut Harness<'_, ChatusApp>, me: &str, entry: &str) {
    let me = Username::parse(me).unwrap();
    h.get_by_label(&chatus_gui::ui::chat::account_menu_label(&me))
        .click();
    // Not `run`: a spinner (reconnecting) never lets the window settle.
    h.run_steps(3);
    h.get_by_label(entry).click();
    h.step();
}

/// The app in a headless harness whose devices are sealed as `source`
/// says (the passphrase dialog when it has no passphrase); `remember`
/// (port, user) starts it as `app_remembering` does.
pub fn app_with_source(
    config_dir: &std::path::Path,
    source: KeySource,
    remember: Option<(u16, &str)>,
) -> Harness<'static, ChatusApp> {
    let options = Options {
        config_dir: Some(config_dir.to_owned()),
        key_source: Some(source),
        ..Options::default()
    };
    let settings = match remember {
        Some((port, user)) => chatus_gui::settings::Settings {
            host: "ws://127.0.0.1".into(),
            port,
            username: user.into(),
            ..Default::default()
        },
        None => chatus_gui::settings::Settings::default(),
    };
    let app = ChatusApp::new(&options, settings).unwrap();
    Harness::builder()
        .with_size(egui::vec2(1000.0, 700.0))
        .build_ui_state(|ui, app: &mut ChatusApp| app.show(ui), app)
}

/// The app in a headless harness of the given size.
pub fn app_sized(config_dir: &std::path::Path, size: egui::Vec2) -> Harness<'static, ChatusApp> {
    app_with(config_dir, size, false)
}

/// The app in a headless harness of the given size; `tofu` lets it draw
/// text its fonts lack as boxes, as a real window does (by default the
/// harness fails on such text, which catches a label using a glyph the
/// bundled fonts do not have).
pub fn app_with(
    config_dir: &std::path::Path,
    size: egui::Vec2,
    tofu: bool,
) -> Harness<'static, ChatusApp> {
    let options = Options {
        config_dir: Some(config_dir.to_owned()),
        key_source: Some(key_source()),
        ..Options::default()
    };
    let app = ChatusApp::new(&options, chatus_gui::settings::Settings::default()).unwrap();
    let mut builder = Harness::builder().with_size(size);
    if tofu {
        builder = builder.allow_missing_glyphs();
    }
    builder.build_ui_state(|ui, app: &mut ChatusApp| app.show(ui), app)
}

/// The composer's hint (shown while it is empty).
pub fn composer_hint(h: &Harness<'_, ChatusApp>) -> String {
    use egui_kittest::kittest::NodeT as _;
    h.get_by_label(&composer_label(h))
        .accesskit_node()
        .placeholder()
        .unwrap_or_default()
        .to_owned()
}

/// `bob` writes "lunch at noon?" to the lobby, then 120 messages
/// (`filler 0` … `filler 119`): enough that the first is two pages back
/// when someone opens the lobby.
pub fn lunch_then_fillers(server: &Server, bob: &Client) {
    let mut bodies = vec!["lunch at noon?".to_owned()];
    bodies.extend((0..120).map(|i| format!("filler {i}")));
    for body in bodies {
        server
            .rt
            .block_on(bob.send(lobby(), Body::parse(body).unwrap()))
            .unwrap();
    }
}

/// The lobby, as a conversation.
pub fn lobby() -> chatus_client::protocol::Conversation {
    chatus_client::protocol::Conversation::Room(chatus_client::protocol::RoomName::lobby())
}
