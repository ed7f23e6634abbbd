//! Support for the end-to-end tests: building and running Go fixtures
//! (`go`), running the real `contend` binary against them (`contend`), and
//! a real terminal for its dashboard (`tmux`).
//!
//! `cargo xtask test` provides the toolchains and the binary through
//! `CONTEND_GO_NEW`, `CONTEND_GO_OLD` and `CONTEND_BIN`.

pub mod contend;
pub mod go;
pub mod matrix;
pub mod tmux;

use std::path::PathBuf;

/// The workspace root.
pub fn workspace_root() -> PathBuf {
    let manifest_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest_dir
        .parent()
        .map(PathBuf::from)
        .unwrap_or(manifest_dir)
}

/// A path from an environment variable that `cargo xtask test` sets.
pub fn path_from_env(name: &str) -> PathBuf {
    match std::env::var_os(name) {
        Some(path) => PathBuf::from(path),
        None => panic!("{name} is not set: run the end-to-end tests with `cargo xtask test`"),
    }
}
