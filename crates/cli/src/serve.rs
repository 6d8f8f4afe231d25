//! `chatus serve`: builds the server configuration (flag > environment >
//! file > defaults), raises the open-file limit, binds, and runs until
//! Ctrl-C or SIGTERM; prints the TLS certificate's fingerprint and reloads
//! the certificate on SIGHUP.

use std::io::Write as _;

use chatus_server::{Config, Registration, State};

use crate::CliError;
use crate::args::{RegistrationArg, ServeArgs};

/// Resolves when the process is asked to stop.
async fn stop_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// On every SIGHUP, re-reads the certificate and key: new connections get
/// the new certificate, open ones keep theirs; a failed reload keeps the
/// old certificate and says why.
#[cfg(unix)]
fn reload_on_hangup(tls: std::sync::Arc<chatus_server::tls::Tls>) {
    use tokio::signal::unix::{SignalKind, signal};
    let mut hup = match signal(SignalKind::hangup()) {
        Ok(hup) => hup,
        Err(e) => {
            tracing::warn!(cause = %e, "cannot reload the certificate on SIGHUP");
            return;
        }
    };
    tokio::spawn(async move {
        while hup.recv().await.is_some() {
            match tls.reload() {
                Ok(fingerprint) => {
                    tracing::info!(%fingerprint, "reloaded the TLS certificate");
                }
                Err(e) => {
                    tracing::error!(cause = %e, "reloading the TLS certificate failed; keeping the old one");
                }
            }
        }
    });
}

/// Builds the configuration from the file (if any) and the flags.
pub fn config(args: &ServeArgs) -> Result<Config, CliError> {
    let mut config = match &args.config {
        Some(path) => {
            let (config, warnings) = Config::from_file(path)
                .map_err(|e| CliError::Server(chatus_server::ServerError::Config(e)))?;
            for w in warnings {
                tracing::warn!("{w}");
            }
            config
        }
        None => Config::default(),
    };
    if let Some(a) = args.addr {
        config.addr = a;
    }
    if let Some(d) = &args.data {
        config.data.clone_from(d);
    }
    if let Some(s) = args.store.as_deref().filter(|s| !s.trim().is_empty()) {
        config.store = Some(s.to_owned());
    }
    if let Some(b) = args.bus.as_deref().filter(|s| !s.trim().is_empty()) {
        config.bus.url = Some(b.to_owned());
    }
    if let Some(p) = &args.bus_prefix {
        config.bus.prefix.clone_from(p);
    }
    if let Some(f) = args.files.as_deref().filter(|s| !s.trim().is_empty()) {
        config.files.store = Some(f.to_owned());
    }
    if let Some(e) = args.s3_endpoint.as_deref().filter(|s| !s.trim().is_empty()) {
        config.files.s3_endpoint = Some(e.to_owned());
    }
    if let Some(r) = args.registration {
        config.registration = match r {
            RegistrationArg::Open => Registration::Open,
            RegistrationArg::Closed => Registration::Closed,
        };
    }
    if let Some(n) = args.max_frame_bytes {
        config.max_frame_bytes = n;
    }
    if let Some(n) = args.max_body_bytes {
        config.max_body_bytes = n;
    }
    if let Some(n) = args.max_connections {
        config.max_connections = n;
    }
    if args.plain {
        config.tls.plain = true;
    }
    if let (Some(cert), Some(key)) = (&args.tls_cert, &args.tls_key) {
        config.tls.cert = Some(cert.clone());
        config.tls.key = Some(key.clone());
        config.tls.plain = false;
    }
    config
        .validate()
        .map_err(|e| CliError::Server(chatus_server::ServerError::Config(e)))?;
    Ok(config)
}

/// Why `addr` cannot be listened on, and what to do about it.
fn cannot_listen(addr: std::net::SocketAddr, e: &std::io::Error) -> CliError {
    let next = std::net::SocketAddr::new(addr.ip(), addr.port().wrapping_add(1).max(1));
    CliError::Local(match e.kind() {
        std::io::ErrorKind::AddrInUse => format!(
            "Cannot listen on {addr}: something else (another chatus serve?) already uses it. \
             Stop it, or choose another address with --addr, e.g. --addr {next}."
        ),
        std::io::ErrorKind::PermissionDenied => format!(
            "Cannot listen on {addr}: permission denied (ports below 1024 need privileges). \
             Choose another address with --addr, e.g. --addr 127.0.0.1:7500."
        ),
        std::io::ErrorKind::AddrNotAvailable => format!(
            "Cannot listen on {addr}: this machine has no such address. \
             Choose another with --addr, e.g. --addr 0.0.0.0:{}.",
            addr.port()
        ),
        _ => format!("Cannot listen on {addr}: {e}. Choose another address with --addr."),
    })
}

/// `serve`.
pub async fn serve(args: ServeArgs) -> Result<(), CliError> {
    let config = config(&args)?;
    // Every connection is a file descriptor: use all the process may have.
    match chatus_server::fdlimit::raise() {
        Ok(limit) => tracing::debug!(open_files = ?limit.soft, "open-file limit"),
        Err(e) => tracing::warn!(cause = %e, "could not raise the open-file limit"),
    }
    let listener = chatus_server::bind(config.addr).map_err(|e| cannot_listen(config.addr, &e))?;
    let local = listener
        .local_addr()
        .map_err(|e| CliError::Local(format!("Cannot read the listening address: {e}.")))?;
    let state_in = match &config.store {
        Some(url) => format!(
            "state in {}",
            chatus_server::store::postgres::redact_url(url)
        ),
        None => {
            let data = std::path::absolute(&config.data).unwrap_or_else(|_| config.data.clone());
            format!("data in {}", data.display())
        }
    };
    let state_in = match &config.bus.url {
        Some(bus) => format!(
            "{state_in}, linked through {bus} as {}.*",
            config.bus.prefix
        ),
        None => state_in,
    };
    let state_in = match &config.files.store {
        Some(files) => format!("{state_in}, files in {files}"),
        None => state_in,
    };
    let registration = match config.registration {
        Registration::Open => "open",
        Registration::Closed => "closed",
    };
    if config.tls.plain && !local.ip().is_loopback() {
        tracing::warn!(
            "serving without TLS on {local}, which is not a loopback address: passwords and \
             messages cross the network in clear unless a TLS-terminating proxy is in front"
        );
    }
    let state = State::open(config).await?;
    let scheme = if state.tls().is_some() { "wss" } else { "ws" };
    let mut out = std::io::stdout().lock();
    let _ = writeln!(
        out,
        "ChatUs {} listening on {scheme}://{local} ({state_in}, registration {registration}). Ctrl-C stops it.",
        env!("CARGO_PKG_VERSION"),
    );
    if let Some(tls) = state.tls() {
        let kind = match tls.self_signed_path() {
            Some(path) => format!("self-signed, {}", path.display()),
            None => "from --tls-cert".into(),
        };
        let _ = writeln!(
            out,
            "TLS certificate fingerprint: {} ({kind}). Clients asked to trust this server should see the same.",
            tls.fingerprint()
        );
    }
    let _ = out.flush();
    drop(out);
    #[cfg(unix)]
    if let Some(tls) = state.tls().cloned() {
        reload_on_hangup(tls);
    }
    chatus_server::run(listener, state, stop_signal()).await?;
    Ok(())
}
