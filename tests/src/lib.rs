//! Test support for the plugin: [`plugin_wasm`] finds `cvco_plugin.wasm` (or builds it once) for
//! the scenario catalogue, the benchmarks and other crates' tests. The runtime itself is
//! `cvco-plugin-host`.

pub use cvco_plugin_host::WASM_ENV;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// Builds `cvco_plugin.wasm` with the `wasm` profile and returns its path.
pub fn build_plugin() -> Result<PathBuf, String> {
    let root = workspace_root();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    // Best effort: without rustup the target may still be installed.
    let _ = std::process::Command::new("rustup")
        .args(["target", "add", "wasm32-unknown-unknown"])
        .current_dir(&root)
        .output();
    let status = std::process::Command::new(&cargo)
        .args([
            "build",
            "-p",
            "cvco-plugin",
            "--target",
            "wasm32-unknown-unknown",
            "--profile",
            "wasm",
        ])
        .current_dir(&root)
        .status()
        .map_err(|e| format!("running {cargo}: {e}"))?;
    if !status.success() {
        return Err(format!("building cvco-plugin failed: {status}"));
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    let wasm = target.join("wasm32-unknown-unknown/wasm/cvco_plugin.wasm");
    if wasm.is_file() {
        Ok(wasm)
    } else {
        Err(format!("{} missing after the build", wasm.display()))
    }
}

/// The plugin's bytes: from `CVCO_PLUGIN_WASM` when set, else built once per process.
pub fn plugin_wasm() -> Result<&'static [u8], String> {
    static WASM: OnceLock<Result<Vec<u8>, String>> = OnceLock::new();
    WASM.get_or_init(|| {
        let path = plugin_path()?;
        std::fs::read(&path).map_err(|e| format!("reading {}: {e}", path.display()))
    })
    .as_ref()
    .map(|v| v.as_slice())
    .map_err(|e| e.clone())
}

/// The plugin's path: `CVCO_PLUGIN_WASM` when set, else built (once per process).
pub fn plugin_path() -> Result<PathBuf, String> {
    static PATH: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    PATH.get_or_init(|| match std::env::var_os(WASM_ENV) {
        Some(p) => Ok(PathBuf::from(p)),
        None => build_plugin(),
    })
    .clone()
}
