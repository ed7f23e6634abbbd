//! `cargo xtask setup | demo | test | bench | fuzz | soak`: everything a fresh machine
//! needs to build, run, test and measure contend, in one place.

mod bench;
mod cmd;
mod demo;
mod fuzz;
mod setup;
mod soak;
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
    /// Build contend, start the bundled Go shop demo and trace it live (root):
    /// in the dashboard on a terminal, else recorded and summarised.
    Demo {
        /// How long to record when not on a terminal, in seconds.
        #[arg(long, default_value_t = 5)]
        seconds: u32,
    },
    /// Run formatting and lint checks, unit tests and end-to-end tests (root).
    Test,
    /// Measure speed and print a table (root).
    Bench {
        /// One quick sample per measurement, to check the suite works.
        #[arg(long)]
        smoke: bool,
        /// Run only this measurement.
        #[arg(long, value_enum)]
        only: Option<bench::Measurement>,
    },
    /// Feed the event decoder and the export reader arbitrary input for
    /// longer than the unit tests do.
    Fuzz {
        /// Cases per property.
        #[arg(long, default_value_t = 100_000)]
        cases: u32,
    },
    /// Leave contend on under the fixtures' heaviest load, attaching and
    /// detaching all along, and check that no target crashes, every export
    /// reads back and contend's memory stays flat (root).
    Soak {
        /// How long to run.
        #[arg(long, default_value_t = 30)]
        minutes: u32,
    },
}

fn main() -> ExitCode {
    let result = match Cli::parse().command {
        Task::Setup => setup::run().map(drop),
        Task::Demo { seconds } => demo::run(seconds),
        Task::Test => test::run(),
        Task::Bench { smoke, only } => bench::run(smoke, only),
        Task::Fuzz { cases } => fuzz::run(cases),
        Task::Soak { minutes } => soak::run(minutes),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("xtask: {error:#}");
            ExitCode::FAILURE
        }
    }
}
