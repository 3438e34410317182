//! The Extism plugin artifact: every backend and the test host load this one .wasm.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};

use crate::{
    ensure_rustup_target, human_bytes, reject_args, run, workspace, WASM_PROFILE, WASM_TARGET,
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
    run(&mut workspace.cargo([
        "build",
        "-p",
        PACKAGE,
        "--target",
        WASM_TARGET,
        "--profile",
        WASM_PROFILE,
    ]))?;
    let wasm = workspace.wasm_artifact("cvco_plugin");
    if !wasm.is_file() {
        bail!("cargo built {PACKAGE} but {} is missing", wasm.display());
    }
    wasm.canonicalize()
        .with_context(|| format!("resolving {}", wasm.display()))
}
