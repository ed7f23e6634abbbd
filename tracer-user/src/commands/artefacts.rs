//! `record --folded`, `--flamegraph`, `--flamegraph-maps` and `--pprof`:
//! the recording's stacks in the formats other tools read, written next to
//! the export once the recording ends.

use std::{
    io::Write as _,
    path::{Path, PathBuf},
};

use anyhow::Context as _;
use clap::Args;
use tracer_user::{
    export::{self, Export},
    profile::{
        Measure, Profile,
        flamegraph::{self, Drawn},
        folded, pprof,
    },
};

#[derive(Args, Clone, Debug, Default)]
pub struct Artefacts {
    /// Also write folded stacks (`frame;frame;… value`, root first) of
    /// lock wait nanoseconds and map operations, each line's first frame
    /// naming which.
    #[arg(long, value_name = "FILE")]
    pub folded: Option<PathBuf>,
    /// Also draw a flame graph (SVG) of the time waited for locks.
    #[arg(long, value_name = "FILE.svg")]
    pub flamegraph: Option<PathBuf>,
    /// Also draw a flame graph (SVG) of the map operations.
    #[arg(long, value_name = "FILE.svg")]
    pub flamegraph_maps: Option<PathBuf>,
    /// Also write a gzipped pprof profile for `go tool pprof`: lock
    /// contentions and delay (as Go's mutex profile has them) and map
    /// operations, by call stack.
    #[arg(long, value_name = "FILE")]
    pub pprof: Option<PathBuf>,
}

impl Artefacts {
    /// Every file asked for.
    pub fn paths(&self) -> impl Iterator<Item = &Path> {
        [
            &self.folded,
            &self.flamegraph,
            &self.flamegraph_maps,
            &self.pprof,
        ]
        .into_iter()
        .flatten()
        .map(PathBuf::as_path)
    }

    pub fn any(&self) -> bool {
        self.paths().next().is_some()
    }

    /// Writes every file asked for. A file that cannot be written is
    /// reported and the others are still written; the first error is
    /// returned once all were tried.
    pub fn write(&self, profile: &Profile, export: &Export) -> anyhow::Result<()> {
        let mut first_error = None;
        let mut attempt = |result: anyhow::Result<()>| {
            if let Err(error) = result {
                if first_error.is_some() {
                    eprintln!("contend: {error:#}");
                } else {
                    first_error = Some(error);
                }
            }
        };
        if let Some(path) = &self.folded {
            attempt(write_file(path, "folded stacks", |out| {
                Ok(out.write_all(folded::render(profile).as_bytes())?)
            }));
        }
        for (path, measure) in [
            (&self.flamegraph, Measure::LockWaits),
            (&self.flamegraph_maps, Measure::MapOps),
        ] {
            if let Some(path) = path {
                attempt(write_file(path, "flame graph", |out| {
                    if let Drawn::Nothing { what } = flamegraph::render(profile, measure, out)? {
                        eprintln!("contend: no {what} were recorded: the flame graph says so");
                    }
                    Ok(())
                }));
            }
        }
        if let Some(path) = &self.pprof {
            attempt(write_file(path, "pprof profile", |out| {
                Ok(pprof::write(profile, &export.target.exe, out)?)
            }));
        }
        first_error.map_or(Ok(()), Err)
    }
}

fn write_file(
    path: &Path,
    what: &str,
    fill: impl FnOnce(&mut Vec<u8>) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let mut bytes = Vec::new();
    fill(&mut bytes).with_context(|| format!("cannot write the {what} {}", path.display()))?;
    // As the export is written: 0600, through a new file renamed into
    // place, given to the user behind sudo.
    export::file::write_bytes(path, &bytes)?;
    eprintln!("contend: wrote the {what} {}", path.display());
    Ok(())
}
