//! `cargo xtask fuzz`: the property tests that feed the event decoder
//! arbitrary bytes and the export reader damaged files, run long. The unit
//! tests (and so CI) run each with proptest's default 256 cases.

use crate::cmd::{self, cargo};

/// The tests, by name filter, in tracer-user's unit tests.
const PROPERTIES: [&str; 3] = [
    "events::decode::fuzz",
    "export::clamp::tests::damaged_exports",
    "export::clamp::tests::any_numbers",
];

pub fn run(cases: u32) -> anyhow::Result<()> {
    for filter in PROPERTIES {
        cmd::run(
            cargo()
                .args(["test", "--release", "--package", "tracer-user", "--lib"])
                .arg(filter)
                .env("PROPTEST_CASES", cases.to_string()),
        )?;
    }
    Ok(())
}
