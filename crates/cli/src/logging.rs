//! Log set-up: `tracing` to stderr, filtered by `RUST_LOG` when set, else by
//! `--log-level` (default `info` for ChatUs crates, `warn` for the rest).

use std::io::IsTerminal as _;

use tracing_subscriber::EnvFilter;

/// Installs the global subscriber. `level` is a tracing level name.
pub fn init(level: Option<&str>) {
    let filter = match std::env::var("RUST_LOG") {
        Ok(spec) if !spec.trim().is_empty() => EnvFilter::new(spec),
        _ => {
            let level = level.unwrap_or("info");
            EnvFilter::new(format!(
                "warn,chatus={level},chatus_server={level},chatus_client={level}"
            ))
        }
    };
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .try_init();
}
