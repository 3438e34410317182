//! The vendure adapter's own test suite inside the real platform (host-adapters/vendure/):
//! `npm ci` (skipped while node_modules matches the lockfile), the sandbox binary, then
//! `tsc` and `node --test` with Vendure's in-process SQLite test server against that sandbox.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{bail, Context, Result};

use crate::suite;
use crate::test::TestCounts;
use crate::{ensure_debian_packages, has_program, run, workspace};

const ADAPTER_DIR: &str = "host-adapters/vendure";
const SANDBOX_BIN_ENV: &str = "CVCO_SANDBOX_BIN";
/// Written into node_modules after a successful `npm ci`: deleting node_modules forgets it too.
const INSTALLED_STAMP: &str = "node_modules/.cvco-lock-hash";
/// A hung run (a stuck stream, a server that never stops) must not hold CI forever.
const SUITE_TIMEOUT: Duration = Duration::from_secs(15 * 60);

/// `env`: what the workspace tests got (the plugin's path under `CVCO_PLUGIN_WASM`, …).
pub fn tests(env: &[(&str, PathBuf)]) -> Result<TestCounts> {
    let ws = workspace()?;
    let dir = ws.root.join(ADAPTER_DIR);
    if !has_program("node", &["--version"]) || !has_program("npm", &["--version"]) {
        ensure_debian_packages(&[("/usr/bin/node", "nodejs"), ("/usr/bin/npm", "npm")])?;
    }
    install_dependencies(&dir)?;

    let sandbox = ws.build_bin("cvco-sandbox", "cvco-sandbox")?;

    run(Command::new("node")
        .args(["node_modules/typescript/bin/tsc", "-p", "tsconfig.json"])
        .current_dir(&dir))?;

    let mut node = Command::new("node");
    node.args([
        "--test",
        "--test-reporter=tap",
        "--test-concurrency=1",
        "dist/test/vendure.test.js",
        // The back-office (issue 11 §4): Admin API, §2 over HTTP, deferred capture, refunds.
        "dist/test/backoffice.test.js",
        // An existing database upgraded by a generated migration (the plugin's entities changed).
        "dist/test/migration.test.js",
    ])
    .current_dir(&dir)
    .envs(env.iter().map(|(key, value)| (*key, value)))
    .env(SANDBOX_BIN_ENV, &sandbox)
    .env("VENDURE_DISABLE_TELEMETRY", "true");
    let counts = run_node_tests(&mut node)?;
    if counts.passed + counts.failed == 0 {
        bail!("the vendure suite ran no test");
    }
    Ok(counts)
}

/// `npm ci` unless node_modules was installed from this very lockfile by this very node.
fn install_dependencies(dir: &Path) -> Result<()> {
    let lock = std::fs::read(dir.join("package-lock.json")).context("reading package-lock.json")?;
    let node = Command::new("node")
        .arg("--version")
        .output()
        .context("node --version")?;
    // Native modules (bcrypt) are built for one node ABI: a new node means a fresh install.
    let stamp = format!(
        "{:016x} {}",
        fnv1a(&lock),
        String::from_utf8_lossy(&node.stdout).trim()
    );
    let stamp_path = dir.join(INSTALLED_STAMP);
    if std::fs::read_to_string(&stamp_path).is_ok_and(|found| found == stamp) {
        eprintln!("vendure: node_modules matches package-lock.json, no npm ci");
        return Ok(());
    }
    run(Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
        .current_dir(dir))?;
    std::fs::write(&stamp_path, stamp).context("writing the install stamp")?;
    Ok(())
}

/// FNV-1a: enough to notice a changed lockfile, no extra crate.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// Node's test runner, relayed and tallied by its TAP summary (see [`suite::run_grouped`]).
pub(crate) fn run_node_tests(command: &mut Command) -> Result<TestCounts> {
    suite::run_grouped(command, TapTally::default(), SUITE_TIMEOUT)
}

/// The closing lines of node's TAP reporter: `# pass 6`, `# fail 1`, `# cancelled 0`, …
#[derive(Default)]
struct TapTally {
    counts: TestCounts,
    cancelled: u64,
    saw_summary: bool,
}

impl suite::Tally for TapTally {
    fn read(&mut self, line: &str) {
        let Some((key, value)) = line
            .strip_prefix("# ")
            .and_then(|rest| rest.split_once(' '))
        else {
            return;
        };
        let Ok(value) = value.trim().parse::<u64>() else {
            return;
        };
        match key {
            "pass" => {
                self.counts.passed = value;
                self.saw_summary = true;
            }
            "fail" => self.counts.failed = value,
            "cancelled" => self.cancelled = value,
            "skipped" | "todo" => self.counts.skipped += value,
            _ => {}
        }
    }

    /// A cancelled test (its suite's hook failed, a timeout) did not pass.
    fn counts(&self) -> Option<TestCounts> {
        let mut counts = self.counts;
        counts.failed += self.cancelled;
        self.saw_summary.then_some(counts)
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::{fnv1a, TapTally};
    use crate::suite::Tally as _;
    use crate::test::TestCounts;

    #[test]
    fn tap_summary_is_counted_and_cancelled_tests_fail() {
        let mut tally = TapTally::default();
        assert_eq!(tally.counts(), None);
        for line in [
            "# Subtest: x",
            "# tests 9",
            "# suites 1",
            "# pass 6",
            "# fail 1",
            "# cancelled 1",
            "# skipped 1",
            "# todo 0",
            "# duration_ms 31580.8",
        ] {
            tally.read(line);
        }
        let expected = TestCounts {
            passed: 6,
            failed: 2,
            skipped: 1,
        };
        assert_eq!(tally.counts(), Some(expected));
    }

    #[test]
    fn fnv1a_tells_lockfiles_apart() {
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_ne!(fnv1a(b"{\"a\":1}"), fnv1a(b"{\"a\":2}"));
    }

    /// The whole step alone, as `cargo xtask test` runs it: `CVCO_PLUGIN_WASM=… cargo test -p xtask
    /// vendure_step -- --ignored --nocapture`.
    #[test]
    #[ignore = "installs npm packages, builds the sandbox, runs Vendure"]
    fn vendure_step() {
        let wasm = std::env::var_os("CVCO_PLUGIN_WASM").expect("CVCO_PLUGIN_WASM");
        let counts =
            super::tests(&[("CVCO_PLUGIN_WASM", PathBuf::from(wasm))]).expect("vendure step");
        assert_eq!(counts.failed, 0, "{counts:?}");
    }
}
