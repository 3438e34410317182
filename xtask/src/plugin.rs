//! The Extism plugin artifact: every backend and the test host load this one .wasm.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};

use crate::{
    ensure_rustup_target, human_bytes, reject_args, workspace, Artifact, WASM_PROFILE, WASM_TARGET,
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
    wasm.canonicalize()
        .with_context(|| format!("resolving {}", wasm.display()))
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
