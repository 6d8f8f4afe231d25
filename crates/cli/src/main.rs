//! The `chatus` binary: parses arguments, sets up logging, and hands over to
//! the library ([`chatus::run`]). Everything else lives in the library so
//! tests can reach it.

use std::process::ExitCode;

use clap::{CommandFactory as _, Parser as _};

fn main() -> ExitCode {
    let cli = chatus::args::Cli::parse();
    chatus::logging::init(cli.log_level.as_deref());
    // The desktop app owns the main thread (windowing needs it) and runs
    // its own network thread, so it starts before any async runtime.
    let wants_gui = match &cli.command {
        Some(chatus::args::Command::Gui) => true,
        None if chatus::has_display() => true,
        None => {
            let _ = chatus::args::Cli::command().print_help();
            return ExitCode::from(chatus::EXIT_USAGE);
        }
        Some(_) => false,
    };
    if wants_gui {
        return match chatus::gui(&cli) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("chatus: error: {e}");
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
            eprintln!("chatus: error: could not start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(chatus::run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let e = anyhow::Error::from(e);
            eprintln!("chatus: error: {e}");
            ExitCode::from(chatus::exit_code(&e))
        }
    }
}
