//! The checkout widget: a wasm-bindgen crate turned into an ES module the browser imports.
//! Also the hooks the test suite calls around the browser tests.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use wasm_bindgen_cli_support::Bindgen;

use crate::test::TestCounts;
use crate::{
    ensure_chromium, ensure_rustup_target, human_bytes, reject_args, run, workspace,
    CHROMEDRIVER_BIN, CHROMIUM_BIN, WASM_TARGET,
};

/// One wasm module: the payment QR encoder (crate cvco-widget-qr) is linked in, so a shopper never
/// downloads a second allocator, formatter and wasm-bindgen runtime for it.
pub const PACKAGE: &str = "cvco-widget";
/// Cargo profile of the widget's wasm: `wasm` with opt-level "z" (see the workspace Cargo.toml).
pub const PROFILE: &str = "wasm-widget";
pub const CRATE_DIR: &str = "widget";
pub const BROWSER_TESTS_DIR: &str = "tests/browser";
/// Where the generated module lands, at the workspace root (git-ignored).
pub const DIST_DIR: &str = "dist/widget";
/// Tests find the generated widget through this variable.
pub const DIST_ENV: &str = "CVCO_WIDGET_DIST";

/// `cargo xtask widget`
pub fn command(args: &[String]) -> Result<()> {
    reject_args(args)?;
    match build()? {
        Some(dist) => {
            for entry in std::fs::read_dir(&dist)? {
                let path = entry?.path();
                if path.is_file() {
                    let size = std::fs::metadata(&path)?.len();
                    println!("{} {}", path.display(), human_bytes(size));
                }
            }
            Ok(())
        }
        None => {
            println!("no widget yet ({CRATE_DIR}/Cargo.toml does not exist): nothing to build");
            Ok(())
        }
    }
}

pub fn exists() -> Result<bool> {
    Ok(workspace()?.has_crate_dir(CRATE_DIR))
}

/// Builds the widget wasm and runs wasm-bindgen (target `web`) into dist/widget/.
/// `None` when the widget crate does not exist yet.
pub fn build() -> Result<Option<PathBuf>> {
    let workspace = workspace()?;
    if !exists()? {
        return Ok(None);
    }
    ensure_rustup_target(WASM_TARGET)?;
    run(&mut workspace.cargo([
        "build",
        "-p",
        PACKAGE,
        "--target",
        WASM_TARGET,
        "--profile",
        PROFILE,
    ]))?;
    let artifacts = workspace.target_dir.join(WASM_TARGET).join(PROFILE);
    let wasm = artifacts.join("cvco_widget.wasm");
    if !wasm.is_file() {
        bail!("cargo built {PACKAGE} but {} is missing", wasm.display());
    }
    let dist = workspace.root.join(DIST_DIR);
    // Stale files from an older build must not be served next to the new module.
    if dist.exists() {
        std::fs::remove_dir_all(&dist).with_context(|| format!("cleaning {}", dist.display()))?;
    }
    std::fs::create_dir_all(&dist)?;
    eprintln!(
        "$ wasm-bindgen --target web --out-dir {DIST_DIR} {}",
        wasm.display()
    );
    Bindgen::new()
        .input_path(&wasm)
        .web(true)?
        .typescript(true)
        .generate(&dist)
        .with_context(|| format!("wasm-bindgen on {}", wasm.display()))?;
    copy_package_files(&workspace.root.join(CRATE_DIR), &dist)?;
    Ok(Some(dist))
}

/// The hand-written half of the npm package: the custom element entry, its types, the stylesheet,
/// the lazily loaded camera scanner, package.json and the README.
const PACKAGE_FILES: &[&str] = &[
    "js/cvco-checkout.js",
    "js/cvco-checkout.d.ts",
    "js/cvco-checkout.css",
    "js/cvco-scan-lazy.js",
    "js/package.json",
    "README.md",
];

fn copy_package_files(crate_dir: &std::path::Path, dist: &std::path::Path) -> Result<()> {
    for file in PACKAGE_FILES {
        let from = crate_dir.join(file);
        let name = from.file_name().context("package file name")?;
        std::fs::copy(&from, dist.join(name))
            .with_context(|| format!("copying {} into {}", from.display(), dist.display()))?;
    }
    Ok(())
}

/// Runs before the workspace tests: what the browser tests need on disk and on the machine.
/// Returns the environment to export to the test processes.
pub fn prepare_browser_tests() -> Result<Vec<(&'static str, PathBuf)>> {
    let workspace = workspace()?;
    let mut env = Vec::new();
    if let Some(dist) = build()? {
        env.push((DIST_ENV, dist));
    }
    if workspace.has_crate_dir(BROWSER_TESTS_DIR) {
        ensure_chromium()?;
        env.push(("CVCO_CHROMIUM", PathBuf::from(CHROMIUM_BIN)));
        env.push(("CVCO_CHROMEDRIVER", PathBuf::from(CHROMEDRIVER_BIN)));
    }
    Ok(env)
}

/// Runs after the workspace tests when the widget exists: browser tests that are not part of the
/// workspace test run. The browser tests crate (tests/browser) is a workspace member and already
/// ran with the others, so there is nothing more yet; `None` means no extra step.
pub fn browser_tests() -> Result<Option<TestCounts>> {
    Ok(None)
}
