//! `contend report FILE`: render an export offline, as text or, with
//! `--tui`, in the dashboard's views.

use std::{
    io::{self, IsTerminal as _, Write as _},
    path::Path,
};

use anyhow::{Context as _, bail};
use tracer_user::{
    dashboard::{self, Feed, state::State},
    export,
};

use super::trace::StopSignals;

/// Prints the summary of the export at `file`, of at most `limit` bytes.
pub fn run(file: &Path, limit: u64) -> anyhow::Result<()> {
    let export = export::read_at_most(file, limit)?;
    let text = export::report::render(&export);
    let mut stdout = io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        // A reader that has seen enough (`| head`) is not an error.
        Err(error) if error.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        written => written.context("cannot write the report"),
    }
}

/// `--tui`: the recording in the dashboard, frozen.
pub fn run_dashboard(file: &Path, limit: u64) -> anyhow::Result<()> {
    let export = export::read_at_most(file, limit)?;
    if !std::io::stdout().is_terminal() {
        bail!("--tui draws on a terminal; without it, `contend report` prints the summary");
    }
    let name = file.file_name().map_or_else(
        || file.display().to_string(),
        |name| name.to_string_lossy().into_owned(),
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        let mut signals = StopSignals::catch_with_hangup()?;
        let state = State::recording(export, name);
        dashboard::run(state, Feed::frozen(), signals.recv()).await?;
        Ok(())
    })
}
