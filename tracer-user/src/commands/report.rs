//! `contend report FILE`: render an export offline.

use std::path::Path;

use tracer_user::export;

pub fn run(file: &Path) -> anyhow::Result<()> {
    let export = export::read(file)?;
    print!("{}", export::report::render(&export));
    Ok(())
}
