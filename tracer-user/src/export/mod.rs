//! The versioned JSON export: its schema (`schema`), how a recording becomes
//! one (`build`), what its figures may not say truly (`caveats`), what
//! changed between two (`diff`), reading and writing
//! files (`file`) and bringing what is read into range (`clamp`), the text
//! report rendered from it (`report`), and how its strings, which come from
//! the traced program, are made safe to show on a terminal (`untrusted`).

pub mod build;
pub mod caveats;
mod clamp;
pub mod diff;
pub mod ending;
pub mod file;
pub mod report;
pub mod schema;
pub mod untrusted;

pub use file::{ExportError, read, read_at_most, write};
pub use schema::Export;
