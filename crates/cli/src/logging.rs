//! Log set-up: `tracing` to stderr, filtered by `RUST_LOG` when set, else by
//! `--log-level` (default `info` for ChatUs crates, `warn` for the rest).
//! The desktop app's windowing and font libraries warn at start about
//! things that are normal on many systems (no XSETTINGS manager, a
//! virtual display of size 0, a `C` locale): those are quieted unless
//! `RUST_LOG` asks for them.

use std::io::IsTerminal as _;

use tracing_subscriber::EnvFilter;

/// Installs the global subscriber. `level` is a tracing level name.
pub fn init(level: Option<&str>) {
    let filter = match std::env::var("RUST_LOG") {
        Ok(spec) if !spec.trim().is_empty() => EnvFilter::new(spec),
        _ => {
            let level = level.unwrap_or("info");
            #[cfg_attr(not(feature = "gui"), expect(unused_mut, reason = "no GUI"))]
            let mut filter = EnvFilter::new(format!(
                "warn,chatus={level},chatus_server={level},chatus_client={level}"
            ));
            #[cfg(feature = "gui")]
            for d in chatus_gui::QUIET_LOG_DIRECTIVES {
                if let Ok(d) = d.parse() {
                    filter = filter.add_directive(d);
                }
            }
            filter
        }
    };
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .try_init();
}
