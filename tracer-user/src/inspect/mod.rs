//! The traced process and its executable: where it lives, what language and
//! Go version it is, and the file offsets of the functions we probe.

pub mod binary;
pub mod buildinfo;
pub mod crash;
pub mod disasm;
pub mod go_version;
pub mod goroutine;
pub mod pclntab;
pub mod process;
pub mod symbolize;
pub mod types;

pub use binary::{Binary, BinaryError, Function, FunctionTable};
pub use go_version::GoVersion;
pub use process::{Target, TargetError};
pub use symbolize::{Frame, Symbolizer};
