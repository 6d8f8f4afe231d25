//! The `chatus` binary: parses arguments, sets up logging, and hands over to
//! the library ([`chatus::run`]). Everything else lives in the library so
//! tests can reach it.

use std::process::ExitCode;

use clap::Parser as _;

fn main() -> ExitCode {
    let cli = chatus::args::Cli::parse();
    chatus::logging::init(cli.log_level.as_deref());
    // The desktop app owns the main thread (windowing needs it) and runs
    // its own network thread, so it starts before any async runtime.
    if matches!(cli.command, None | Some(chatus::args::Command::Gui(_))) {
        return match chatus::gui(&cli) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("chatus: {e}");
                ExitCode::from(chatus::exit_code(&anyhow::Error::from(e)))
            }
        };
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("chatus: Could not start the async runtime: {e}.");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(chatus::run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let e = anyhow::Error::from(e);
            eprintln!("chatus: {e}");
            ExitCode::from(chatus::exit_code(&e))
        }
    }
}
