//! One module per subcommand, and what the tracing ones share (`trace`).

pub mod artefacts;
pub mod child;
pub mod diff;
pub mod record;
pub mod report;
pub mod top;
pub mod trace;

use std::{fs::File, io::IsTerminal as _, path::PathBuf, sync::Mutex};

use anyhow::Context as _;

/// The variable that sets how much is logged (e.g. `CONTEND_LOG=debug`;
/// `CONTEND_LOG=contend::kernel=debug` for the kernel side's diagnostics).
const LEVEL_VARIABLE: &str = "CONTEND_LOG";
/// Read instead when `CONTEND_LOG` is not set, as Rust programs do.
const LEVEL_VARIABLE_ALIAS: &str = "RUST_LOG";
/// The variable that says where a dashboard's log goes.
const FILE_VARIABLE: &str = "CONTEND_LOG_FILE";

fn filter() -> tracing_subscriber::EnvFilter {
    let variable = match std::env::var_os(LEVEL_VARIABLE) {
        Some(_) => LEVEL_VARIABLE,
        None => LEVEL_VARIABLE_ALIAS,
    };
    tracing_subscriber::EnvFilter::try_from_env(variable)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"))
}

/// Logs go to stderr, warnings and up unless `CONTEND_LOG` says otherwise;
/// coloured only on a terminal, so a log file holds no escape codes; lost
/// quietly if stderr is closed.
pub fn init_logging() {
    tracing_subscriber::fmt()
        .with_env_filter(filter())
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        // Its complaint about a closed stderr is an `eprintln!`, which
        // panics: a log line must not cost the recording.
        .log_internal_errors(false)
        .init();
}

/// Logs go to a file, for commands that own the terminal: a line on stderr
/// would scribble over the dashboard. `CONTEND_LOG_FILE` names the file,
/// else `<temp dir>/contend-top-<our pid>-<random>.log`. Returns the file.
pub fn init_logging_to_file() -> anyhow::Result<LogFile> {
    let named = std::env::var_os(FILE_VARIABLE).map(PathBuf::from);
    let chosen = named.is_some();
    let (file, path) = match named {
        Some(path) => File::create(&path)
            .map(|file| (file, path.clone()))
            .with_context(|| format!("cannot create the log file {}", path.display()))?,
        None => new_private_file(&format!("contend-top-{}-", std::process::id()))?,
    };
    tracing_subscriber::fmt()
        .with_env_filter(filter())
        .with_writer(Mutex::new(file))
        .with_ansi(false)
        .init();
    Ok(LogFile { path, chosen })
}

/// A new `.log` file in the temporary directory, named `<prefix>` and
/// random characters, created exclusively and readable by its owner
/// alone: root writing to a name known in advance in a shared directory
/// would follow a link planted there.
fn new_private_file(prefix: &str) -> anyhow::Result<(File, PathBuf)> {
    tempfile::Builder::new()
        .prefix(prefix)
        .suffix(".log")
        .tempfile_in(std::env::temp_dir())
        .and_then(|file| file.keep().map_err(|error| error.error))
        .with_context(|| {
            format!(
                "cannot create a log file in {}",
                std::env::temp_dir().display()
            )
        })
}

/// The file a dashboard logged to.
pub struct LogFile {
    path: PathBuf,
    /// Named by `CONTEND_LOG_FILE`: kept even when empty.
    chosen: bool,
}

impl LogFile {
    /// Points at the log if anything was logged; removes our default one
    /// if not, so quiet runs leave nothing in the temporary directory.
    pub fn close(self) {
        match std::fs::metadata(&self.path) {
            Ok(metadata) if metadata.len() > 0 => {
                say!("contend: log messages are in {}", self.path.display());
            }
            Ok(_) if !self.chosen => drop(std::fs::remove_file(&self.path)),
            Ok(_) | Err(_) => {}
        }
    }
}
