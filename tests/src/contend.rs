//! Running the real `contend` binary.

use std::{
    path::PathBuf,
    process::{Command, Output},
};

#[cfg(feature = "export")]
use tracer_user::export::{self, Export};

/// The `contend` binary under test.
pub fn command() -> Command {
    Command::new(crate::path_from_env("CONTEND_BIN"))
}

/// What a finished `contend` run left behind.
pub struct Run {
    pub output: Output,
    pub export_path: PathBuf,
}

impl Run {
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.output.stderr).into_owned()
    }

    /// The export, which must exist and parse.
    #[cfg(feature = "export")]
    pub fn export(&self) -> Export {
        assert!(
            self.output.status.success(),
            "contend failed: {}",
            self.stderr()
        );
        export::read(&self.export_path)
            .unwrap_or_else(|error| panic!("reading the export: {error}"))
    }
}

/// Runs `contend record` with `args` and an export path unique to `label`.
pub fn record(label: &str, args: &[&str]) -> Run {
    let dir = crate::workspace_root().join("target/e2e");
    std::fs::create_dir_all(&dir).expect("create target/e2e");
    let export_path = dir.join(format!("{label}.json"));
    let _ = std::fs::remove_file(&export_path);
    let output = command()
        .arg("record")
        .args(args)
        .arg("--output")
        .arg(&export_path)
        .output()
        .expect("run contend");
    Run {
        output,
        export_path,
    }
}
