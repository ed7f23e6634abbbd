//! Builds the eBPF programs in `tracer-ebpf` for the BPF target (nightly,
//! `-Z build-std=core`, bpf-linker) and leaves the object in OUT_DIR, where
//! `src/probes/loader.rs` embeds it.
use anyhow::{Context as _, anyhow};

fn main() -> anyhow::Result<()> {
    let metadata = cargo_metadata::MetadataCommand::new()
        .no_deps()
        .exec()
        .context("cargo metadata")?;
    let ebpf = metadata
        .packages
        .iter()
        .find(|package| package.name.as_str() == "tracer-ebpf")
        .ok_or_else(|| anyhow!("tracer-ebpf is not in the workspace"))?;
    let root_dir = ebpf
        .manifest_path
        .parent()
        .ok_or_else(|| anyhow!("{} has no parent", ebpf.manifest_path))?;
    share_ebpf_target_dir(metadata.target_directory.as_std_path())?;
    let package = aya_build::Package {
        name: ebpf.name.as_str(),
        root_dir: root_dir.as_str(),
        ..Default::default()
    };
    aya_build::build_ebpf([package], aya_build::Toolchain::default()).context(
        "building the eBPF programs failed; `cargo xtask setup` installs what they need",
    )?;
    // With AYA_BUILD_SKIP=1 nothing is built; `cargo xtask test` lints that
    // way, since clippy needs the object to exist, not to work, and building
    // it for clippy's own profile took a minute of CI. A contend built so
    // fails to load its probes, and says so.
    let object = std::path::Path::new(&std::env::var("OUT_DIR")?).join("tracer-ebpf");
    if std::env::var_os("AYA_BUILD_SKIP").is_some() && !object.exists() {
        std::fs::write(&object, []).context("writing an empty eBPF object")?;
    }
    Ok(())
}

/// Points the target directory aya-build gives the eBPF build (under this
/// profile's OUT_DIR) at one shared by every profile, `target/ebpf`. The
/// object is always built in release for the BPF target, whatever the
/// profile of `contend`: built apart, `cargo xtask test` built it three
/// times over (debug, test and the bench's build), a minute each. Cargo's
/// own fingerprints say when the shared build is stale, and its lock keeps
/// two build scripts from building into it at once.
fn share_ebpf_target_dir(target_directory: &std::path::Path) -> anyhow::Result<()> {
    let shared = target_directory.join("ebpf");
    std::fs::create_dir_all(&shared).with_context(|| format!("creating {}", shared.display()))?;
    let out_dir = std::path::PathBuf::from(std::env::var("OUT_DIR")?);
    let link = out_dir.join("aya-build").join("target").join("tracer-ebpf");
    if link.is_symlink() || link.exists() {
        return Ok(());
    }
    let parent = link.parent().context("the link has a parent")?;
    std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    std::os::unix::fs::symlink(&shared, &link)
        .with_context(|| format!("linking {} to {}", link.display(), shared.display()))
}
