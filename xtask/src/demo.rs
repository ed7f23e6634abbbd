//! `cargo xtask demo`: the bundled Go shop, traced live: in the dashboard
//! when we run in a terminal, else recorded for a while and summarised (as
//! CI sees it).

use std::{io::IsTerminal as _, path::Path, time::Duration};

use anyhow::{Context as _, bail};
use contend_tests::go::{Fixture, GoToolchain};

use crate::{
    cmd::{self, command},
    setup,
};

pub fn run(seconds: u32) -> anyhow::Result<()> {
    if !cmd::is_root() {
        bail!("the demo loads eBPF programs: run `cargo xtask demo` as root");
    }
    let go = setup::run()?;
    let contend = cmd::build_contend(true)?;
    let root = cmd::workspace_root();
    let export = root.join("target/demo/shop.json");
    std::fs::create_dir_all(root.join("target/demo")).context("creating target/demo")?;

    let toolchain = GoToolchain::at(go.new).context("Go 1.27 from setup")?;
    let shop = toolchain
        .build(&root.join("demo/shop"), &[])
        .context("building the demo shop")?;
    let running = Fixture::start(&shop, &[]).context("starting the demo shop")?;
    let pid = running.pid().to_string();
    if std::io::stdout().is_terminal() {
        eprintln!("xtask: the demo shop runs as PID {pid}; q leaves the dashboard");
        return cmd::run(command(&contend).args(["top", "--pid", &pid]));
    }
    eprintln!("xtask: the demo shop runs as PID {pid}; tracing it for {seconds} s");
    record_and_report(&contend, running, seconds, &export)
}

/// Without a terminal: a recording of `seconds`, then, with the shop
/// stopped, its summary.
fn record_and_report(
    contend: &Path,
    running: Fixture,
    seconds: u32,
    export: &Path,
) -> anyhow::Result<()> {
    cmd::run(
        command(contend)
            .args(["record", "--pid", &running.pid().to_string(), "--duration"])
            .arg(format!("{seconds}s"))
            .arg("--output")
            .arg(export),
    )?;
    drop(running);
    std::thread::sleep(Duration::from_millis(50));
    cmd::run(command(contend).arg("report").arg(export))
}
