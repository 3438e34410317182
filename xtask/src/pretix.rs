//! The pretix adapter's suite inside a real pretix (host-adapters/pretix/tests), then the
//! language-neutral contract suite (tests/contract) against pretix, Vendure and cvco-host (with
//! Schemathesis on openapi.json), then all three together for byte-identical error bodies.
//! Python comes from a virtualenv cached under `$HOME/.cache/cvco/venv-pretix`, rebuilt only when
//! the pinned requirements change.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::test::TestCounts;
use crate::{run, suite, workspace};

const ADAPTER_DIR: &str = "host-adapters/pretix";
const CONTRACT_DIR: &str = "tests/contract";
const VENDURE_TEST_SERVER: &str = "host-adapters/vendure/dist/test/serve.js";
pub const ADAPTER_SUITE: &str = "pretix adapter";
/// tests/contract/test_identical_errors.py: every adapter started together, the same bad inputs.
pub const IDENTICAL_ERRORS_SUITE: &str = "contract: identical error bodies";
/// The contract suite on cvco-host with its PostgreSQL store.
pub const HOST_POSTGRES_SUITE: &str = "contract: cvco-host (postgres)";
/// tests/contract/drivers/cvco_host.py: the server it creates a database on for each start.
const HOST_DATABASE_ENV: &str = "CVCO_CONTRACT_HOST_DATABASE";
/// The drivers whose error bodies must be byte-identical.
const ALL_DRIVERS: &str = "cvco_host,pretix,vendure";
const REQUIREMENTS: &str = "host-adapters/pretix/requirements-test.txt";
/// Copy of the requirements the venv was built from: a different file means a rebuild.
const VENV_STAMP: &str = ".cvco-requirements.txt";
/// What the contract suite adds (Schemathesis), installed over the pretix venv.
const CONTRACT_REQUIREMENTS: &str = "tests/contract/requirements.txt";
const CONTRACT_STAMP: &str = ".cvco-contract-requirements.txt";
/// A hung run (a stuck stream, a server that never stops) must not hold CI forever.
const SUITE_TIMEOUT: Duration = Duration::from_secs(15 * 60);

/// `env`: what the workspace tests got (the plugin's path under `CVCO_PLUGIN_WASM`, the widget's
/// dist and the browser, …); every suite gets it too.
/// Returns each suite's counts under its name (`pretix adapter`, `contract: <driver>`).
pub fn tests(env: &[(&str, PathBuf)]) -> Result<Vec<(&'static str, TestCounts)>> {
    let workspace = workspace()?;
    let plugin = env
        .iter()
        .find(|(key, _)| *key == crate::plugin::WASM_ENV)
        .map(|(_, path)| path.clone())
        .context("the pretix tests need the built plugin (CVCO_PLUGIN_WASM)")?;
    let python = ensure_venv(&workspace.root)?;

    let sandbox = workspace.build_bin("cvco-sandbox", "cvco-sandbox")?;
    let host = workspace.build_bin("cvco-host", "cvco-host")?;
    // The Vendure step (run before this one) builds the test server its driver starts.
    let vendure_server = workspace.root.join(VENDURE_TEST_SERVER);
    if !vendure_server.is_file() {
        bail!(
            "{} is missing: the vendure adapter step builds it",
            vendure_server.display()
        );
    }

    let contract = |driver: &str| {
        (
            workspace.root.join(CONTRACT_DIR),
            vec!["--driver".to_owned(), driver.to_owned()],
        )
    };
    // cvco-host a second time on PostgreSQL: a database of its own per start, created by the
    // driver on the run's server (CVCO_TEST_DATABASE_URL, started by `cargo xtask test`).
    let postgres = env
        .iter()
        .find(|(key, _)| *key == crate::postgres::URL_ENV)
        .map(|(_, url)| url.clone())
        .or_else(|| std::env::var_os(crate::postgres::URL_ENV).map(PathBuf::from))
        .context("the contract suite on cvco-host (postgres) needs CVCO_TEST_DATABASE_URL")?;
    let suites: [(&'static str, (PathBuf, Vec<String>)); 6] = [
        (ADAPTER_SUITE, (workspace.root.join(ADAPTER_DIR), vec![])),
        ("contract: pretix", contract("pretix")),
        ("contract: vendure", contract("vendure")),
        ("contract: cvco-host", contract("cvco_host")),
        (HOST_POSTGRES_SUITE, contract("cvco_host")),
        (
            IDENTICAL_ERRORS_SUITE,
            (
                workspace.root.join(CONTRACT_DIR),
                vec!["--drivers".to_owned(), ALL_DRIVERS.to_owned()],
            ),
        ),
    ];

    let mut counted = Vec::new();
    for (name, (dir, args)) in suites {
        let mut pytest = Command::new(&python);
        pytest
            .args(["-m", "pytest", "-q", "-p", "no:warnings"])
            .args(&args)
            .current_dir(&dir)
            // The widget's dist and the browser (CVCO_WIDGET_DIST, CVCO_CHROMIUM,
            // CVCO_CHROMEDRIVER from the browser prerequisites step): the contract suite's
            // browser test pays with the widget on each adapter's page.
            .envs(env.iter().map(|(key, value)| (*key, value)))
            .env("CVCO_PLUGIN_WASM", &plugin)
            .env("CVCO_SANDBOX_BIN", &sandbox)
            .env("CVCO_HOST_BIN", &host)
            .env("CARGO_TARGET_DIR", &workspace.target_dir);
        if name == HOST_POSTGRES_SUITE {
            pytest.env(HOST_DATABASE_ENV, &postgres);
        }
        eprintln!("--> {name}");
        let counts = run_pytest(&mut pytest)?;
        eprintln!(
            "--> {name}: {} passed, {} failed, {} skipped",
            counts.passed, counts.failed, counts.skipped
        );
        counted.push((name, counts));
    }
    Ok(counted)
}

/// The venv's python with pretix and the contract suite's requirements.
fn ensure_venv(root: &Path) -> Result<PathBuf> {
    let python = ensure_pretix_venv(root)?;
    ensure_contract_requirements(root, &python)?;
    Ok(python)
}

/// Installs tests/contract/requirements.txt (Schemathesis) into the venv when it changed: added
/// over the pretix packages, never a rebuild (those pins are checked to coexist).
fn ensure_contract_requirements(root: &Path, python: &Path) -> Result<()> {
    let requirements = std::fs::read_to_string(root.join(CONTRACT_REQUIREMENTS))
        .with_context(|| format!("reading {CONTRACT_REQUIREMENTS}"))?;
    let stamp = python
        .parent()
        .and_then(Path::parent)
        .context("venv python has no venv")?
        .join(CONTRACT_STAMP);
    let usable = || crate::has_program(&python.to_string_lossy(), &["-c", "import schemathesis"]);
    if std::fs::read_to_string(&stamp).ok().as_deref() == Some(&requirements) && usable() {
        return Ok(());
    }
    pip_install(python, &root.join(CONTRACT_REQUIREMENTS))?;
    std::fs::write(&stamp, &requirements)?;
    Ok(())
}

/// `pip install -r requirements` into the venv of `python`, quietly and without prompts.
fn pip_install(python: &Path, requirements: &Path) -> Result<()> {
    run(Command::new(python)
        .args([
            "-m",
            "pip",
            "install",
            "-q",
            "--disable-pip-version-check",
            "--no-input",
            "-r",
        ])
        .arg(requirements))
}

/// The venv's python, creating the venv or reinstalling when the pinned requirements changed.
fn ensure_pretix_venv(root: &Path) -> Result<PathBuf> {
    let home = std::env::var_os("HOME").context("HOME is not set")?;
    let venv = PathBuf::from(home).join(".cache/cvco/venv-pretix");
    let python = venv.join("bin/python");
    let requirements = std::fs::read_to_string(root.join(REQUIREMENTS))
        .with_context(|| format!("reading {REQUIREMENTS}"))?;
    let stamp = venv.join(VENV_STAMP);
    let usable = || {
        crate::has_program(
            &python.to_string_lossy(),
            &["-c", "import pretix, extism, pytest_django, requests"],
        )
    };
    // A venv whose interpreter vanished (pyenv upgrade) fails the import check: rebuilt.
    if std::fs::read_to_string(&stamp).ok().as_deref() == Some(&requirements) && usable() {
        return Ok(python);
    }
    let system_python = ["python3.11", "python3.12", "python3.13", "python3"]
        .into_iter()
        .find(|candidate| {
            crate::has_program(
                candidate,
                &[
                    "-c",
                    "import sys, venv; sys.exit(0 if sys.version_info >= (3, 10) else 1)",
                ],
            )
        })
        .context(
            "pretix needs Python >= 3.10 with the venv module (apt-get install python3-venv)",
        )?;
    let started = Instant::now();
    if venv.exists() {
        std::fs::remove_dir_all(&venv).with_context(|| format!("removing {}", venv.display()))?;
    }
    run(Command::new(system_python).args(["-m", "venv"]).arg(&venv))?;
    pip_install(&python, &root.join(REQUIREMENTS))?;
    std::fs::write(&stamp, &requirements)?;
    eprintln!(
        "pretix venv ready in {:.0} s ({})",
        started.elapsed().as_secs_f64(),
        venv.display()
    );
    Ok(python)
}

/// pytest, relayed and tallied by its closing line (see [`suite::run_grouped`]). Exit 5 (no
/// tests) prints no tally, so it fails too.
fn run_pytest(command: &mut Command) -> Result<TestCounts> {
    suite::run_grouped(
        command,
        suite::ClosingLine::new(parse_pytest_summary),
        SUITE_TIMEOUT,
    )
}

/// pytest's closing line: `3 failed, 10 passed, 1 skipped, 2 errors in 4.2s` (with or without
/// `=` padding). Errors count as failures. Other lines: `None`.
fn parse_pytest_summary(line: &str) -> Option<TestCounts> {
    let line = line.trim().trim_matches('=').trim();
    let (tally, duration) = line.rsplit_once(" in ")?;
    if !duration
        .trim_start()
        .starts_with(|c: char| c.is_ascii_digit())
        || !duration.contains('s')
    {
        return None;
    }
    let mut counts = TestCounts::default();
    let mut recognised = false;
    for segment in tally.split(',') {
        let mut words = segment.split_whitespace();
        let (Some(number), Some(label)) = (words.next(), words.next()) else {
            return None;
        };
        let Ok(number) = number.parse::<u64>() else {
            return None;
        };
        match label {
            "passed" | "xpassed" => counts.passed += number,
            "failed" | "error" | "errors" => counts.failed += number,
            "skipped" | "xfailed" => counts.skipped += number,
            "deselected" | "warning" | "warnings" | "rerun" => {}
            _ => return None,
        }
        recognised = true;
    }
    recognised.then_some(counts)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts_of(passed: u64, failed: u64, skipped: u64) -> TestCounts {
        TestCounts {
            passed,
            failed,
            skipped,
        }
    }

    #[test]
    fn reads_pytest_summaries() {
        assert_eq!(
            parse_pytest_summary("11 passed in 26.16s"),
            Some(counts_of(11, 0, 0))
        );
        assert_eq!(
            parse_pytest_summary(
                "==== 2 failed, 9 passed, 1 skipped, 3 warnings, 1 error in 21.94s (0:00:21) ===="
            ),
            Some(counts_of(9, 3, 1))
        );
        assert_eq!(parse_pytest_summary("no tests ran in 0.01s"), None);
        assert_eq!(
            parse_pytest_summary("tests/test_cvco.py::test_x PASSED in a way"),
            None
        );
        assert_eq!(parse_pytest_summary("checking 3 items in 2 dirs"), None);
    }

    /// The pretix step alone (venv, sandbox, pytest): `cargo test -p xtask pretix_step -- --ignored`.
    #[test]
    #[ignore = "slow: installs pretix on a cold cache and runs the Python suites"]
    fn pretix_step() {
        let plugin = std::env::var_os(crate::plugin::WASM_ENV)
            .map(PathBuf::from)
            .unwrap_or_else(|| crate::plugin::build().unwrap());
        for (name, counts) in tests(&[(crate::plugin::WASM_ENV, plugin)]).unwrap() {
            assert_eq!(counts.failed, 0, "{name}: {counts:?}");
            assert!(counts.passed > 0, "{name}: {counts:?}");
        }
    }
}
