//! The versioned JSON export: its schema (`schema`), how a recording becomes
//! one (`build`), reading and writing files (`file`), the text report
//! rendered from it (`report`), and how its strings, which come from the
//! traced program, are made safe to show on a terminal (`untrusted`).

pub mod build;
pub mod ending;
pub mod file;
pub mod report;
pub mod schema;
pub mod untrusted;

pub use file::{ExportError, read, write};
pub use schema::Export;
