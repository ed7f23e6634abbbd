//! `contend diff BEFORE AFTER`: what changed between two recordings of the
//! same program (no root needed).

use std::path::Path;

use tracer_user::export::{self, diff};

pub fn run(before: &Path, after: &Path, thresholds: diff::Thresholds) -> anyhow::Result<()> {
    let before_export = export::read(before)?;
    let after_export = export::read(after)?;
    let changes = diff::compare(&before_export, &after_export, thresholds);
    print!(
        "{}",
        diff::render(
            &changes,
            &before.display().to_string(),
            &after.display().to_string()
        )
    );
    Ok(())
}
