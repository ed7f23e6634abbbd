//! One module per subcommand, and what the tracing ones share (`trace`).

pub mod record;
pub mod report;
pub mod trace;

/// Logs go to stderr, warnings and up unless `CONTEND_LOG` says otherwise
/// (e.g. `CONTEND_LOG=debug`).
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("CONTEND_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}
