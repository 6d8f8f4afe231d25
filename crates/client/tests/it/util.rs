//! Test helpers: [`TestServer`] (a real ChatUs server on an ephemeral port
//! with a temporary data directory) and client helpers that wait with a
//! timeout instead of sleeping.

use std::net::SocketAddr;
use std::time::Duration;

use chatus_client::protocol::message::Message;
use chatus_client::protocol::{Password, Username};
use chatus_client::{
    Client, Config as ClientConfig, Credentials, Event, Events, KeySource, Passphrase, Reconnect,
    Resume, ServerUrl,
};
use chatus_server::{Config, State};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

/// How long any single wait in a test may take before it fails.
pub const WAIT: Duration = Duration::from_secs(20);

/// A server running in this process, stopped when dropped.
pub struct TestServer {
    pub addr: SocketAddr,
    /// The server's state (its TLS, for the tests that reload it).
    pub state: State,
    pub dir: tempfile::TempDir,
    _stop: oneshot::Sender<()>,
}

impl TestServer {
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    /// A server whose configuration `tweak` adjusts after the test
    /// defaults (limits generous enough that tests not about limits never
    /// meet them).
    pub async fn start_with(tweak: impl FnOnce(&mut Config)) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut c = Config {
            addr: "127.0.0.1:0".parse().unwrap(),
            data: dir.path().to_owned(),
            ..Config::default()
        };
        // Plain unless a test turns TLS on (tls.rs).
        c.tls.plain = true;
        c.rate.logins_per_min_per_addr = 100_000.0;
        c.rate.login_burst_per_addr = 100_000;
        c.rate.messages_per_sec = 100_000.0;
        c.rate.message_burst = 100_000;
        // Cheap password hashes: these tests are about the client.
        c.login.argon2_memory_kib = 64;
        c.login.argon2_iterations = 1;
        tweak(&mut c);
        let listener = TcpListener::bind(c.addr).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = State::open(c).await.unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(chatus_server::run(listener, state.clone(), async move {
            let _ = stopped.await;
        }));
        Self {
            addr,
            state,
            dir,
            _stop: stop,
        }
    }

    pub fn url(&self) -> ServerUrl {
        ServerUrl::parse(&format!("ws://{}", self.addr)).unwrap()
    }
}

pub fn password(name: &str) -> Password {
    Password::parse(format!("pw-{name}-secret")).unwrap()
}

pub fn user(name: &str) -> Username {
    Username::parse(name).unwrap()
}

/// A client configuration that reconnects quickly.
pub fn client_config(url: ServerUrl, credentials: Credentials) -> ClientConfig {
    let mut c = ClientConfig::new(url, credentials);
    // Devices sealed with a passphrase (derived once per process), never
    // the OS keyring of the machine running the tests.
    c.key_source = KeySource::passphrase(Passphrase::new("client tests"));
    c.reconnect = Reconnect {
        attempts: Some(50),
        initial: Duration::from_millis(50),
        max: Duration::from_millis(300),
    };
    c
}

/// Registers `name` and returns the connected client.
pub async fn register(url: ServerUrl, name: &str) -> (Client, Events) {
    let creds = Credentials::Register {
        username: user(name),
        password: password(name),
    };
    let (c, e, _) = Client::connect(client_config(url, creds)).await.unwrap();
    (c, e)
}

/// Logs `name` in (already registered) with the given resume mode.
pub async fn login(url: ServerUrl, name: &str, resume: Resume) -> (Client, Events) {
    let creds = Credentials::Login {
        username: user(name),
        password: password(name),
    };
    let mut config = client_config(url, creds);
    config.resume = resume;
    let (c, e, _) = Client::connect(config).await.unwrap();
    (c, e)
}

/// The next event that `pick` accepts, skipping others; fails after
/// [`WAIT`].
pub async fn next_matching<T>(events: &mut Events, mut pick: impl FnMut(Event) -> Option<T>) -> T {
    tokio::time::timeout(WAIT, async {
        loop {
            let e = events.recv().await.expect("client stopped");
            if let Some(t) = pick(e) {
                return t;
            }
        }
    })
    .await
    .expect("timed out waiting for an event")
}

/// The next message event.
pub async fn next_message(events: &mut Events) -> Message {
    next_matching(events, |e| match e {
        Event::Message { message, .. } => Some(message),
        _ => None,
    })
    .await
}
