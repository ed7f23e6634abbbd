//! The `contend` command line. Library code returns typed errors; here they
//! become one line on stderr and a non-zero exit.

mod commands;

use std::{ffi::OsString, path::PathBuf, process::ExitCode, time::Duration};

use clap::{Args, Parser, Subcommand};
use tracer_user::{
    duration,
    session::{Budget, DEFAULT_MAX_OVERHEAD},
};

#[derive(Parser)]
#[command(
    name = "contend",
    version,
    about = "Find hot map keys, contended locks and racy maps in running Go programs."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Trace a process for a while, then write a JSON export for later study.
    Record(RecordArgs),
    /// Print the summary of an export written by `record` (no root needed).
    Report(ReportArgs),
}

#[derive(Args)]
struct RecordArgs {
    /// Attach to this running process.
    #[arg(
        short,
        long,
        conflicts_with = "command",
        required_unless_present = "command"
    )]
    pid: Option<u32>,
    /// Stop after this long: seconds (4, 0.5) or with a unit (500ms, 30s, 2m).
    /// Without it, record until Ctrl-C or until the target exits.
    #[arg(short, long, value_parser = duration::parse)]
    duration: Option<Duration>,
    /// Bytes of each map key to capture (longer keys are truncated).
    #[arg(long, value_name = "BYTES", default_value_t = tracer_common::DEFAULT_KEY_LIMIT)]
    key_bytes: u32,
    /// A key with at least this share of a busy map's operations is reported
    /// as hot.
    #[arg(long, value_name = "SHARE", default_value_t = 0.25, value_parser = share)]
    hot_key_share: f64,
    /// How much contend may slow the target, in percent: the map probes go
    /// in and out of it to stay within this, and figures become estimates
    /// (the export says how much of the recording each comes from).
    #[arg(long, value_name = "PCT", default_value_t = Percent(DEFAULT_MAX_OVERHEAD), value_parser = percent)]
    max_overhead: Percent,
    /// Trace everything all the time: complete figures, which then include
    /// contend's own effect on the target.
    #[arg(long, conflicts_with = "max_overhead")]
    exact: bool,
    /// Where to write the export; `-` for standard output.
    /// [default: contend-PID.json]
    #[arg(short, long)]
    output: Option<PathBuf>,
    /// Start this command and trace it (after `--`).
    #[arg(last = true, value_name = "COMMAND")]
    command: Vec<OsString>,
}

#[derive(Args)]
struct ReportArgs {
    /// An export written by `contend record`.
    file: PathBuf,
}

/// A fraction, written and shown in percent.
#[derive(Clone, Copy, Debug)]
struct Percent(f64);

impl std::fmt::Display for Percent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0 * 100.0)
    }
}

/// A slowdown budget in percent (`5`, `0.5`, `2%`).
fn percent(text: &str) -> Result<Percent, String> {
    let number = text.trim().trim_end_matches('%');
    match number.parse::<f64>() {
        Ok(0.0) => Err(
            "0% would trace nothing: give a budget above 0 (e.g. 1 for 1%), or --exact to trace everything"
                .to_owned(),
        ),
        Ok(percent) if percent > 0.0 && percent <= 100.0 => Ok(Percent(percent / 100.0)),
        _ => Err(format!("{text:?} is not a percentage between 0 and 100 (e.g. 5)")),
    }
}

/// A fraction between 0 and 1.
fn share(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(share) if share > 0.0 && share <= 1.0 => Ok(share),
        _ => Err(format!(
            "{text:?} is not a share between 0 and 1 (e.g. 0.25)"
        )),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    commands::init_logging();
    let result = match cli.command {
        Command::Record(args) => commands::record::run(commands::record::Options {
            pid: args.pid,
            command: args.command,
            duration: args.duration,
            output: args.output,
            probes: tracer_user::probes::LoadOptions {
                key_limit: args.key_bytes,
            },
            thresholds: tracer_user::findings::Thresholds {
                hot_key_share: args.hot_key_share,
                ..Default::default()
            },
            budget: if args.exact {
                Budget::Exact
            } else {
                Budget::Max(args.max_overhead.0)
            },
        }),
        Command::Report(args) => commands::report::run(&args.file),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("contend: {error:#}");
            ExitCode::FAILURE
        }
    }
}
