//! The `contend` command line. Library code returns typed errors; here they
//! become one line on stderr and a non-zero exit.

/// `eprintln!` that cannot panic: with stderr closed (`2>&1 | head`), a
/// message is lost, not the recording being written.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

mod commands;

use std::{path::PathBuf, process::ExitCode, time::Duration};

use clap::{Args, Parser, Subcommand};
use commands::trace::TraceArgs;
use tracer_user::{duration, export, export::diff, size};

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
    /// Trace a process and watch its maps, locks and findings live.
    Top(TopArgs),
    /// Print the summary of an export written by `record` (no root needed).
    Report(ReportArgs),
    /// Show what changed between two exports of the same program (no root needed).
    Diff(DiffArgs),
}

#[derive(Args)]
struct RecordArgs {
    #[command(flatten)]
    trace: TraceArgs,
    /// Stop after this long: seconds (4, 0.5) or with a unit (500ms, 30s, 2m).
    /// Without it, record until Ctrl-C or until the target exits.
    #[arg(short, long, value_parser = duration::parse)]
    duration: Option<Duration>,
    /// Where to write the export; `-` for standard output.
    /// [default: contend-PID.json]
    #[arg(short, long)]
    output: Option<PathBuf>,
    #[command(flatten)]
    artefacts: commands::artefacts::Artefacts,
}

#[derive(Args)]
struct TopArgs {
    #[command(flatten)]
    trace: TraceArgs,
}

#[derive(Args)]
struct ReportArgs {
    /// An export written by `contend record` (or by `e` in `contend top`).
    file: PathBuf,
    /// Open it in the dashboard instead of printing the summary.
    #[arg(long)]
    tui: bool,
    /// Refuse files larger than this: bytes, or with a unit (512M, 1G).
    /// [default: 256M]
    #[arg(long, value_parser = size::parse)]
    max_size: Option<u64>,
}

#[derive(Args)]
struct DiffArgs {
    /// The earlier export.
    before: PathBuf,
    /// The later export.
    after: PathBuf,
    /// Show keys whose share of their map moved by at least this many
    /// percentage points.
    #[arg(long, value_name = "POINTS", default_value_t = diff::DEFAULT_SHARE_POINTS,
          value_parser = parse_points)]
    key_share: f64,
    /// Show locks whose p99 wait or wait per second grew or shrank by at
    /// least this factor.
    #[arg(long, value_name = "FACTOR", default_value_t = diff::DEFAULT_WAIT_RATIO,
          value_parser = parse_ratio)]
    wait_ratio: f64,
}

/// Percentage points: 0 shows every listed key.
fn parse_points(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(points) if (0.0..=100.0).contains(&points) => Ok(points),
        _ => Err(format!(
            "{text:?} is not a number of percentage points (0 to 100)"
        )),
    }
}

/// A factor above 1: 1 would show every lock, below it reads backwards.
fn parse_ratio(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(ratio) if ratio > 1.0 && ratio.is_finite() => Ok(ratio),
        _ => Err(format!("{text:?} is not a factor above 1 (e.g. 1.5)")),
    }
}

impl Command {
    /// Whether the command draws a dashboard, which owns the terminal.
    fn draws(&self) -> bool {
        match self {
            Self::Top(_) => true,
            Self::Report(args) => args.tui,
            Self::Record(_) | Self::Diff(_) => false,
        }
    }

    /// Runs it; what contend exits with (a command it started decides).
    fn run(self) -> anyhow::Result<ExitCode> {
        let success = |()| ExitCode::SUCCESS;
        match self {
            Self::Record(args) => commands::record::run(commands::record::Options {
                trace: args.trace,
                duration: args.duration,
                output: args.output,
                artefacts: args.artefacts,
            }),
            Self::Top(args) => commands::top::run(&args.trace),
            Self::Report(args) => {
                let limit = args.max_size.unwrap_or(export::file::DEFAULT_READ_LIMIT);
                if args.tui {
                    commands::report::run_dashboard(&args.file, limit).map(success)
                } else {
                    commands::report::run(&args.file, limit).map(success)
                }
            }
            Self::Diff(args) => commands::diff::run(
                &args.before,
                &args.after,
                diff::Thresholds {
                    share_points: args.key_share,
                    wait_ratio: args.wait_ratio,
                },
            )
            .map(success),
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = if cli.command.draws() {
        commands::init_logging_to_file().and_then(|log| {
            let result = cli.command.run();
            log.close();
            result
        })
    } else {
        commands::init_logging();
        cli.command.run()
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            say!("contend: {error:#}");
            ExitCode::FAILURE
        }
    }
}
