//! ftw turns scripts and executables into authenticated web forms.
//!
//! The binary is a thin `main.rs` over `run`; everything lives in this library so the
//! integration tests and future embedders can reach it. Modules follow concerns: `cli`
//! (clap types), `manifest` (the TOML format, checked), `password` (argon2id), and `cmd`
//! (one file per subcommand).

pub mod ansi;
pub mod audit;
pub mod auth;
pub mod cli;
mod cmd;
pub mod config;
pub mod error;
pub mod exec;
pub mod form;
mod logging;
pub mod manifest;
pub mod metrics;
pub mod options;
pub mod password;
pub mod runs;
pub mod server;
pub mod state_dir;
pub mod store;
pub mod tls;

use std::process::ExitCode;

use clap::Parser;

/// Parses the command line, runs the subcommand, prints any error, and returns the exit
/// code: 0 success, 1 run-time failure, 2 usage or manifest error.
pub fn run() -> ExitCode {
    let cli = match cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    match cmd::dispatch(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{e}");
            ExitCode::from(e.exit_code())
        }
    }
}
