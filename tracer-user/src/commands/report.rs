//! `contend report FILE`: render an export offline, as text or, with
//! `--tui`, in the dashboard's views.

use std::{io::IsTerminal as _, path::Path};

use anyhow::{Context as _, bail};
use tracer_user::{
    dashboard::{self, Feed, state::State},
    export,
};

use super::trace::StopSignals;

pub fn run(file: &Path) -> anyhow::Result<()> {
    let export = export::read(file)?;
    print!("{}", export::report::render(&export));
    Ok(())
}

/// `--tui`: the recording in the dashboard, frozen.
pub fn run_dashboard(file: &Path) -> anyhow::Result<()> {
    let export = export::read(file)?;
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
