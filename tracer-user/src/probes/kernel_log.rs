//! The kernel side's diagnostics: each probe failure it counts (see
//! `failures.rs`) it can also log with `aya-log`, under the target
//! [`KERNEL_LOG_TARGET`] at debug level. They are off unless the user's log
//! filter enables that target (`CONTEND_LOG=contend::kernel=debug`): the
//! object is then loaded with aya-log's level at 0, so the probes never
//! format a line, and no reader runs here. When on, a task drains aya-log's
//! ring into `log`, which tracing-subscriber forwards to contend's own log
//! (stderr, or the dashboard's file).

use aya::Ebpf;
use aya_log::{EbpfLogger, Level};
use tokio::io::{Interest, unix::AsyncFd};
pub use tracer_common::KERNEL_LOG_TARGET;

/// The aya-log level to load the object with: the most verbose level the
/// log filter enables for [`KERNEL_LOG_TARGET`], or 0 (nothing) when it
/// enables none. Read once logging is set up.
pub fn level() -> u8 {
    use tracing::Level as Tracing;
    let enabled = [
        (
            tracing::enabled!(target: KERNEL_LOG_TARGET, Tracing::TRACE),
            Level::Trace,
        ),
        (
            tracing::enabled!(target: KERNEL_LOG_TARGET, Tracing::DEBUG),
            Level::Debug,
        ),
        (
            tracing::enabled!(target: KERNEL_LOG_TARGET, Tracing::INFO),
            Level::Info,
        ),
        (
            tracing::enabled!(target: KERNEL_LOG_TARGET, Tracing::WARN),
            Level::Warn,
        ),
        (
            tracing::enabled!(target: KERNEL_LOG_TARGET, Tracing::ERROR),
            Level::Error,
        ),
    ];
    enabled
        .into_iter()
        .find(|(on, _)| *on)
        .map_or(0, |(_, level)| level as u8)
}

/// Starts forwarding the kernel side's log lines, if they are enabled
/// (`level` was not 0). A failure to do so costs the diagnostics, never
/// the session: it is a warning.
pub fn forward(ebpf: &mut Ebpf, level: u8) {
    if level == 0 {
        return;
    }
    if let Err(error) = spawn_reader(ebpf) {
        tracing::warn!("the kernel side's diagnostics will not be shown: {error}");
    }
}

#[derive(Debug, thiserror::Error)]
enum ForwardError {
    #[error("{0}")]
    Logger(#[from] aya_log::Error),
    #[error("cannot poll their ring: {0}")]
    Poll(std::io::Error),
    #[error("no tokio runtime to read them on")]
    NoRuntime,
}

/// Takes aya-log's ring from `ebpf` and drains it on a task of its own,
/// whenever the kernel says it holds lines: they go to `log`'s logger,
/// which is tracing-subscriber's bridge into contend's log.
fn spawn_reader(ebpf: &mut Ebpf) -> Result<(), ForwardError> {
    let runtime = tokio::runtime::Handle::try_current().map_err(|_| ForwardError::NoRuntime)?;
    let logger = EbpfLogger::init(ebpf)?;
    // SAFETY: the logger owns its ring's map descriptor and keeps it open
    // and unchanged until it is dropped with the AsyncFd.
    let mut logger = unsafe { AsyncFd::register_with_interest(logger, Interest::READABLE) }
        .map_err(|error| ForwardError::Poll(error.into()))?;
    runtime.spawn(async move {
        while let Ok(mut ready) = logger.readable_mut().await {
            ready.get_inner_mut().flush();
            ready.clear_ready();
        }
    });
    Ok(())
}
