//! The kernel side's diagnostics: each probe failure it counts (see
//! `failures.rs`) it can also log with `aya-log`, under the target
//! [`KERNEL_LOG_TARGET`] at debug level. They are off unless the user's log
//! filter enables that target (`CONTEND_LOG=contend::kernel=debug`); while
//! off, the object is loaded with aya-log's level at 0, so the probes never
//! format a line, and no reader runs here. When on, a task drains aya-log's
//! ring into `log`, which tracing-subscriber forwards to contend's own log
//! (stderr, or the dashboard's file).

use aya::Ebpf;
use aya_log::{EbpfLogger, Level};
use tokio::io::{Interest, unix::AsyncFd};
pub use tracer_common::KERNEL_LOG_TARGET;

/// The aya-log level to load the object with: debug if the log filter
/// enables [`KERNEL_LOG_TARGET`] at debug level, else 0 (nothing). The
/// kernel side logs at debug level only (`tracer-ebpf/src/failures.rs`),
/// so contend's default filter, `warn`, leaves it off. Read once logging
/// is set up.
pub fn level() -> u8 {
    if tracing::enabled!(target: KERNEL_LOG_TARGET, tracing::Level::DEBUG) {
        Level::Debug as u8
    } else {
        0
    }
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
    #[error(transparent)]
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

#[cfg(test)]
mod tests {
    use tracing_subscriber::{EnvFilter, layer::SubscriberExt as _};

    use super::*;

    /// The level `level` reads under the log filter `directives`.
    fn level_under(directives: &str) -> u8 {
        let subscriber = tracing_subscriber::registry().with(EnvFilter::new(directives));
        tracing::subscriber::with_default(subscriber, level)
    }

    #[test]
    fn the_kernel_logs_nothing_unless_its_target_is_enabled() {
        assert_eq!(level_under("warn"), 0, "contend's default filter");
        assert_eq!(level_under("tracer_user=debug"), 0);
        assert_eq!(level_under("contend::kernel=off,debug"), 0);
        assert_eq!(level_under("contend::kernel=debug"), Level::Debug as u8);
        assert_eq!(level_under("debug"), Level::Debug as u8);
        assert_eq!(level_under("contend=trace"), Level::Debug as u8);
        assert_eq!(level_under("contend::kernel=info"), 0);
    }
}
