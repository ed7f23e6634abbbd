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
