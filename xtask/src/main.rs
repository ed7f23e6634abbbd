//! `cargo xtask setup | demo | test`: everything a fresh machine needs to
//! build, run and test contend, in one place.

mod cmd;
mod demo;
mod setup;
mod test;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "cargo xtask")]
struct Cli {
    #[command(subcommand)]
    command: Task,
}

#[derive(Subcommand)]
enum Task {
    /// Install what building and testing need; safe to run again.
    Setup,
    /// Build contend, start the bundled Go shop demo and trace it live (root).
    Demo {
        /// How long to trace, in seconds.
        #[arg(long, default_value_t = 5)]
        seconds: u32,
    },
    /// Run formatting and lint checks, unit tests and end-to-end tests (root).
    Test,
}

fn main() -> ExitCode {
    let result = match Cli::parse().command {
        Task::Setup => setup::run().map(drop),
        Task::Demo { seconds } => demo::run(seconds),
        Task::Test => test::run(),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("xtask: {error:#}");
            ExitCode::FAILURE
        }
    }
}
