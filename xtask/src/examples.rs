//! The demo pages' own tests (examples/): unit tests of the shared page modules (`node --test`)
//! and the smoke run, a headless-Chromium click-through of the storefront, back-office and
//! counter against a real sandbox and cvco-host (examples/smoke/run.sh).

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use anyhow::{bail, Context, Result};

use crate::test::TestCounts;
use crate::CHROMIUM_BIN;
use crate::{ensure_debian_packages, has_program, plugin, suite, vendure, workspace};

const SHARED_DIR: &str = "examples/shared";
const SMOKE_SCRIPT: &str = "examples/smoke/run.sh";
const SMOKE_TIMEOUT: Duration = Duration::from_secs(15 * 60);

/// The suites of this step, by the names the expected-suites table of `test.rs` knows.
pub const UNIT_SUITE: &str = "examples: page modules (node)";
pub const SMOKE_SUITE: &str = "examples: smoke run";

/// `env`: what the workspace tests got (the plugin under `CVCO_PLUGIN_WASM`, the widget, Chromium).
/// Returns the counts of the page modules' unit tests, then of the smoke run.
pub fn tests(env: &[(&str, PathBuf)]) -> Result<Vec<(&'static str, TestCounts)>> {
    let ws = workspace()?;
    let smoke = ws.root.join(SMOKE_SCRIPT);
    if !smoke.is_file() {
        bail!("{} is missing", smoke.display());
    }
    if !has_program("node", &["--version"]) {
        ensure_debian_packages(&[("/usr/bin/node", "nodejs")])?;
    }

    // Files, not the directory: node 20 and node 22 read a directory argument differently.
    let mut unit_files: Vec<PathBuf> = std::fs::read_dir(ws.root.join(SHARED_DIR))?
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|path| path.to_string_lossy().ends_with(".test.mjs"))
        .collect();
    unit_files.sort();
    if unit_files.is_empty() {
        bail!("no *.test.mjs in {SHARED_DIR}");
    }
    let mut node = Command::new("node");
    node.args(["--test", "--test-reporter=tap"])
        .args(&unit_files)
        .current_dir(&ws.root);
    let unit = vendure::run_node_tests(&mut node)?;

    // The paths cargo reports, handed to run.sh: never a stale binary of an older name.
    let host = ws.build_bin("cvco-host", "cvco-host")?;
    let sandbox = ws.build_bin("cvco-sandbox", "cvco-sandbox")?;
    let plugin_wasm = env
        .iter()
        .find(|(key, _)| *key == plugin::WASM_ENV)
        .map(|(_, path)| path.clone())
        .context("the smoke run needs the built plugin (CVCO_PLUGIN_WASM)")?;
    if !plugin_wasm.is_file() {
        bail!(
            "{} is missing: the plugin step builds it",
            plugin_wasm.display()
        );
    }
    let shots = ws.target_dir.join("screenshots").join("pages");
    std::fs::create_dir_all(&shots)?;
    let mut smoke_run = Command::new("sh");
    smoke_run
        .arg(&smoke)
        .arg("--shots")
        .arg(&shots)
        .current_dir(&ws.root)
        .envs(env.iter().map(|(key, value)| (*key, value)))
        .env("CARGO_TARGET_DIR", &ws.target_dir)
        .env("CVCO_PLUGIN", &plugin_wasm)
        .env("CVCO_HOST_BIN", &host)
        .env("CVCO_SANDBOX_BIN", &sandbox)
        .env("CHROMIUM", CHROMIUM_BIN)
        .env("SMOKE_SANDBOX_PORT", free_port()?.to_string())
        .env("SMOKE_HOST_PORT", free_port()?.to_string());
    let smoke = suite::run_grouped(
        &mut smoke_run,
        suite::ClosingLine::new(parse_smoke_summary),
        SMOKE_TIMEOUT,
    )?;
    Ok(vec![(UNIT_SUITE, unit), (SMOKE_SUITE, smoke)])
}

fn free_port() -> Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").context("looking for a free port")?;
    Ok(listener.local_addr()?.port())
}

/// pages-smoke.mjs closes with `N passed, M failed, K skipped`. Other lines: `None`.
fn parse_smoke_summary(line: &str) -> Option<TestCounts> {
    let (passed, rest) = line.trim().split_once(" passed, ")?;
    let (failed, skipped) = rest.split_once(" failed, ")?;
    Some(TestCounts {
        passed: passed.parse().ok()?,
        failed: failed.parse().ok()?,
        skipped: skipped.strip_suffix(" skipped")?.parse().ok()?,
    })
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::parse_smoke_summary;
    use crate::suite::{ClosingLine, Tally as _};
    use crate::test::TestCounts;

    #[test]
    fn smoke_summary_is_read() {
        let mut tally = ClosingLine::new(parse_smoke_summary);
        tally.read("ok   storefront:full-cvco (812 ms)");
        assert_eq!(tally.counts(), None);
        tally.read("FAIL counter:qr: timeout");
        tally.read("");
        tally.read("17 passed, 1 failed, 2 skipped");
        let expected = TestCounts {
            passed: 17,
            failed: 1,
            skipped: 2,
        };
        assert_eq!(tally.counts(), Some(expected));
        // The old closing line, without skipped steps, is not a summary any more.
        assert_eq!(parse_smoke_summary("17 passed, 1 failed"), None);
    }

    /// The whole step alone: `CVCO_PLUGIN_WASM=… cargo test -p xtask examples_step -- --ignored
    /// --nocapture` (needs dist/widget and Chromium, as `cargo xtask test` prepares them).
    #[test]
    #[ignore = "builds cvco-host and the sandbox, runs Chromium"]
    fn examples_step() {
        let wasm = std::env::var_os("CVCO_PLUGIN_WASM").expect("CVCO_PLUGIN_WASM");
        let suites =
            super::tests(&[("CVCO_PLUGIN_WASM", PathBuf::from(wasm))]).expect("examples step");
        for (name, counts) in suites {
            assert_eq!(counts.failed, 0, "{name}: {counts:?}");
            assert!(counts.passed > 0, "{name}: {counts:?}");
        }
    }
}
