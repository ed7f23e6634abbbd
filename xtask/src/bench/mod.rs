//! `cargo xtask bench [--smoke]`: where contend stands on speed. Prints a
//! markdown table and writes `target/bench/results.json`. Benchmarks are not
//! tests: nothing here fails on a slow number; `--smoke` runs each
//! measurement once, to check the suite still works.

mod attach;

use std::{fs, path::Path};

use anyhow::{Context as _, bail};
use contend_tests::go::GoToolchain;
use serde::Serialize;

use crate::{
    cmd::{self, cargo},
    setup::{self, GoToolchains},
};

/// One measurement.
#[derive(Serialize)]
struct Row {
    name: String,
    value: f64,
    unit: &'static str,
    target: String,
    /// Whether the value meets the target.
    met: bool,
}

pub fn run(smoke: bool) -> anyhow::Result<()> {
    if !cmd::is_root() {
        bail!("the benchmarks load eBPF programs: run `cargo xtask bench` as root");
    }
    let go = setup::run()?;
    let profile = if smoke { "debug" } else { "release" };
    let mut build = cargo();
    build.args(["build", "--package", "tracer-user", "--bin", "contend"]);
    if !smoke {
        build.arg("--release");
    }
    cmd::run(&mut build)?;
    let contend = cmd::workspace_root()
        .join("target")
        .join(profile)
        .join("contend");
    measure(&go, &contend, smoke)
}

/// Runs the measurements with an already built `contend`.
pub fn measure(go: &GoToolchains, contend: &Path, smoke: bool) -> anyhow::Result<()> {
    let root = cmd::workspace_root();
    let out_dir = root.join("target/bench");
    fs::create_dir_all(&out_dir).context("creating target/bench")?;

    let toolchain = GoToolchain::at(&go.new).context("Go 1.27 from setup")?;
    let rows = attach::rows(&toolchain, contend, &out_dir, smoke)?;

    print_table(&rows, smoke);
    let json = serde_json::to_string_pretty(&rows).context("encoding the results")?;
    fs::write(out_dir.join("results.json"), json).context("writing target/bench/results.json")?;
    Ok(())
}

fn print_table(rows: &[Row], smoke: bool) {
    if smoke {
        println!("\n(smoke run: one sample each, debug build; numbers are not representative)");
    }
    println!("\n| measurement | value | target | met |\n| --- | ---: | --- | --- |");
    for row in rows {
        let met = if row.met { "yes" } else { "no" };
        println!(
            "| {} | {:.1} {} | {} | {met} |",
            row.name, row.value, row.unit, row.target
        );
    }
}
