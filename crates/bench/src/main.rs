//! The `chatus-bench` binary: `run` measures, `crash` kills and checks,
//! `report` renders Markdown.

use std::io::Read as _;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Load generator for ChatUs, with nats-server as the reference.
#[derive(Parser)]
#[command(name = "chatus-bench", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run workloads; print one JSON line per run.
    Run(chatus_bench::RunArgs),
    /// Kill the server with SIGKILL under load, restart it, and check that
    /// nothing acknowledged was lost or stored twice (exits 1 if so).
    Crash(chatus_bench::crash::CrashArgs),
    /// Render JSON lines (a file, or standard input) as Markdown tables.
    Report {
        /// The file of JSON lines.
        file: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run(args) => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .map_err(anyhow::Error::from)
            .and_then(|rt| rt.block_on(chatus_bench::run_cli(args))),
        Command::Crash(args) => {
            let held = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .map_err(anyhow::Error::from)
                .and_then(|rt| rt.block_on(chatus_bench::crash::run_cli(args)));
            return match held {
                Ok(true) => ExitCode::SUCCESS,
                Ok(false) => ExitCode::FAILURE,
                Err(e) => {
                    eprintln!("chatus-bench: error: {e:#}");
                    ExitCode::FAILURE
                }
            };
        }
        Command::Report { file } => {
            let text = match file {
                Some(p) => std::fs::read_to_string(p).map_err(anyhow::Error::from),
                None => {
                    let mut s = String::new();
                    std::io::stdin()
                        .read_to_string(&mut s)
                        .map(|_| s)
                        .map_err(anyhow::Error::from)
                }
            };
            text.map(|t| print!("{}", chatus_bench::report::render(&t)))
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("chatus-bench: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
