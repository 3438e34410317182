//! The Extism plugin artifact: every backend and the test host load this one .wasm.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};

use crate::{
    ensure_debian_packages, ensure_rustup_target, human_bytes, reject_args, run, workspace,
    Artifact, WASM_PROFILE, WASM_TARGET,
};

pub const PACKAGE: &str = "cvco-plugin";
/// Tests and hosts find the plugin through this variable instead of building it themselves.
pub const WASM_ENV: &str = "CVCO_PLUGIN_WASM";

/// `cargo xtask plugin`
pub fn command(args: &[String]) -> Result<()> {
    reject_args(args)?;
    let wasm = build()?;
    let size = std::fs::metadata(&wasm)?.len();
    println!("{}", wasm.display());
    println!("{size} bytes ({})", human_bytes(size));
    Ok(())
}

/// Builds `cvco_plugin.wasm` with the size-optimised profile and returns its path.
pub fn build() -> Result<PathBuf> {
    let workspace = workspace()?;
    ensure_rustup_target(WASM_TARGET)?;
    let artifacts = workspace.build(&[
        "-p",
        PACKAGE,
        "--target",
        WASM_TARGET,
        "--profile",
        WASM_PROFILE,
    ])?;
    let wasm = cdylib_wasm(&artifacts, PACKAGE)?;
    let wasm = wasm
        .canonicalize()
        .with_context(|| format!("resolving {}", wasm.display()))?;
    shrink(&wasm)?;
    Ok(wasm)
}

/// Binaryen's wasm-opt (Debian package `binaryen`), run on cargo's own output.
const WASM_OPT: &str = "/usr/bin/wasm-opt";

/// The features rustc's wasm32 target emits; wasm-opt must accept them and keep them.
const WASM_FEATURES: &[&str] = &[
    "--enable-bulk-memory",
    "--enable-sign-ext",
    "--enable-mutable-globals",
    "--enable-nontrapping-float-to-int",
    "--enable-reference-types",
    "--enable-multivalue",
];

/// Size-optimises the plugin with wasm-opt (about a fifth smaller than rustc alone, which keeps
/// the plugin under its 400 KB bar). Always from cargo's unoptimised copy in `deps/`, written
/// atomically over the uplifted file, so a rerun never optimises twice and a reader never sees a
/// half-written module.
fn shrink(wasm: &std::path::Path) -> Result<()> {
    ensure_debian_packages(&[(WASM_OPT, "binaryen")])?;
    let dir = wasm.parent().context("plugin path without a directory")?;
    let raw = dir
        .join("deps")
        .join(wasm.file_name().context("plugin path without a name")?);
    let raw = if raw.is_file() { raw } else { wasm.to_owned() };
    let tmp = dir.join(".cvco_plugin.wasm-opt.tmp");
    run(std::process::Command::new(WASM_OPT)
        .arg("-Oz")
        .args(WASM_FEATURES)
        .arg(&raw)
        .arg("-o")
        .arg(&tmp))
    .context("wasm-opt on cvco_plugin.wasm")?;
    std::fs::rename(&tmp, wasm).with_context(|| format!("replacing {}", wasm.display()))
}

/// The one `.wasm` cargo reports for a cdylib build of `package` (its dependencies are rlibs).
pub fn cdylib_wasm(artifacts: &[Artifact], package: &str) -> Result<PathBuf> {
    let mut wasm = artifacts
        .iter()
        .filter(|a| a.kinds.iter().any(|kind| kind == "cdylib"))
        .filter_map(|a| a.file_with_extension("wasm"));
    match (wasm.next(), wasm.next()) {
        (Some(path), None) if path.is_file() => Ok(path.to_owned()),
        (Some(path), None) => bail!("cargo built {package} but {} is missing", path.display()),
        (None, _) => bail!("cargo reported no .wasm for {package}"),
        (Some(_), Some(_)) => bail!("cargo reported several .wasm files for {package}"),
    }
}
