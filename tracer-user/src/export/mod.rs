//! The versioned JSON export: its schema (`schema`), how a recording becomes
//! one (`build`), reading and writing files (`file`), and the text report
//! rendered from it (`report`).

pub mod build;
pub mod file;
pub mod report;
pub mod schema;

pub use file::{ExportError, read, write};
pub use schema::Export;
