//! From a PID to the executable we attach to.

use std::{
    fs, io,
    path::{Path, PathBuf},
};

use super::binary::{Binary, BinaryError};

/// A process to trace, with its parsed executable.
#[derive(Debug)]
pub struct Target {
    pub pid: u32,
    /// The executable's path as the process sees it (inside its mount
    /// namespace); this is what we report.
    pub exe: PathBuf,
    /// A path to the same file that opens from our mount namespace; this is
    /// what we read and attach uprobes to.
    pub host_path: PathBuf,
    pub binary: Binary,
}

#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    #[error("no process with PID {0} (has it exited?)")]
    NoSuchProcess(u32),
    #[error("PID {0} has no executable (is it a kernel thread?)")]
    NoExecutable(u32),
    #[error("cannot read the executable of PID {pid}: {cause}")]
    Unreadable { pid: u32, cause: io::Error },
    #[error("{path}: {cause}", path = path.display())]
    Binary { path: PathBuf, cause: BinaryError },
    #[error("{} is not a Go program; contend traces Go binaries (built with Go 1.17 or newer)", .0.display())]
    NotGo(PathBuf),
}

impl Target {
    /// Resolves `/proc/PID/exe` through `/proc/PID/root`, so that processes in
    /// containers resolve to their own files, and parses the executable.
    pub fn from_pid(pid: u32) -> Result<Self, TargetError> {
        let proc_dir = PathBuf::from(format!("/proc/{pid}"));
        if !proc_dir.exists() {
            return Err(TargetError::NoSuchProcess(pid));
        }
        let exe = match fs::read_link(proc_dir.join("exe")) {
            Ok(exe) => exe,
            Err(error) if error.kind() == io::ErrorKind::NotFound => {
                return Err(if proc_dir.exists() {
                    TargetError::NoExecutable(pid)
                } else {
                    TargetError::NoSuchProcess(pid)
                });
            }
            Err(cause) => return Err(TargetError::Unreadable { pid, cause }),
        };
        let host_path = host_path(&proc_dir, &exe);
        let bytes = fs::read(&host_path).map_err(|cause| TargetError::Unreadable { pid, cause })?;
        let binary = Binary::parse(bytes).map_err(|cause| TargetError::Binary {
            path: exe.clone(),
            cause,
        })?;
        if binary.go_version.is_none() {
            return Err(TargetError::NotGo(exe));
        }
        Ok(Self {
            pid,
            exe,
            host_path,
            binary,
        })
    }
}

/// The executable through the process's root, or the `exe` link itself when
/// that path is gone (the file was replaced or deleted since the process
/// started: the link still opens the inode the process runs).
fn host_path(proc_dir: &Path, exe: &Path) -> PathBuf {
    let relative = exe.strip_prefix("/").unwrap_or(exe);
    let through_root = proc_dir.join("root").join(relative);
    if through_root.is_file() {
        through_root
    } else {
        proc_dir.join("exe")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_process_is_reported_by_pid() {
        // PIDs are capped well below u32::MAX by pid_max.
        let error = Target::from_pid(u32::MAX - 1).expect_err("no such pid");
        assert_eq!(
            error.to_string(),
            format!("no process with PID {} (has it exited?)", u32::MAX - 1)
        );
    }

    #[test]
    fn our_own_test_binary_is_not_go() {
        let error = Target::from_pid(std::process::id()).expect_err("a Rust test binary");
        assert!(matches!(error, TargetError::NotGo(_)), "{error}");
    }
}
