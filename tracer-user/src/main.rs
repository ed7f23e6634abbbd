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
use tracer_user::{duration, export, size};

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

impl Command {
    /// Whether the command draws a dashboard, which owns the terminal.
    fn draws(&self) -> bool {
        match self {
            Self::Top(_) => true,
            Self::Report(args) => args.tui,
            Self::Record(_) => false,
        }
    }

    fn run(self) -> anyhow::Result<()> {
        match self {
            Self::Record(args) => commands::record::run(commands::record::Options {
                trace: args.trace,
                duration: args.duration,
                output: args.output,
            }),
            Self::Top(args) => commands::top::run(&args.trace),
            Self::Report(args) => {
                let limit = args.max_size.unwrap_or(export::file::DEFAULT_READ_LIMIT);
                if args.tui {
                    commands::report::run_dashboard(&args.file, limit)
                } else {
                    commands::report::run(&args.file, limit)
                }
            }
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
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            say!("contend: {error:#}");
            ExitCode::FAILURE
        }
    }
}
