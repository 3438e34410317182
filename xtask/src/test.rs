//! `cargo xtask test`: the whole suite, exactly what CI runs. Fails fast on the first failing step
//! and always ends with a timing table and, when tests ran, one `N passed, N failed` line.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::{
    describe, ensure_rustup_target, examples, has_program, plugin, postgres, pretix, vendure,
    widget, workspace, Workspace, WASM_TARGET,
};

/// Crates that only make sense for wasm32: linted a second time for that target.
const WASM_CRATES: &[&str] = &[plugin::PACKAGE, widget::PACKAGE];
/// Crates whose tests never load the plugin or the widget: `--only` on them skips those builds.
const STANDALONE_CRATES: &[&str] = &["cvco-core", "cvco-sandbox", "xtask"];
/// Set by .ci/run (seconds since the epoch) so the summary shows the whole CI wall time.
const CI_STARTED_AT_ENV: &str = "CVCO_CI_STARTED_AT";

/// Every suite a full `cargo xtask test` runs, with the fewest tests it must pass: what each had
/// at a15fd4f (2026-12-03, before issue 10's new tests: `cargo nextest list`, pytest
/// --collect-only, the node and smoke sources). A suite missing from the run, or under its
/// minimum, fails the run, so a renamed file or a crate that stopped being tested cannot leave CI
/// green with fewer tests. Raise a minimum when tests are added; never lower one to make a run
/// pass. Rust suites are one per crate, named `rust: <crate>` as nextest names the crate.
pub const EXPECTED_SUITES: &[(&str, u64)] = &[
    ("rust: cvco-core", 86),
    ("rust: cvco-plugin", 7),
    ("rust: cvco-sandbox", 40),
    ("rust: cvco-widget", 12),
    ("rust: cvco-widget-qr", 4),
    ("rust: cvco-host", 142),
    (HOST_POSTGRES_SUITE, 142),
    ("rust: cvco-test-host", 49),
    ("rust: cvco-plugin-host", 7),
    ("rust: cvco-browser-tests", 20),
    ("rust: xtask", 53),
    (DOCTESTS_SUITE, 1),
    (WIDGET_DOM_SUITE, 7),
    (examples::UNIT_SUITE, 5),
    (examples::SMOKE_SUITE, 32),
    // Shopper side (vendure.test.ts), back-office (backoffice.test.ts), database upgrade
    // (migration.test.ts).
    (VENDURE_SUITE, 26),
    (pretix::ADAPTER_SUITE, 58),
    // Every adapter runs the whole suite: scenarios, 19 Schemathesis operations (test_schema.py),
    // 7 back-office tests (test_back_office.py) and the lost-answer matrix.
    ("contract: pretix", 112),
    ("contract: vendure", 112),
    ("contract: cvco-host", 112),
    (pretix::HOST_POSTGRES_SUITE, 112),
    (pretix::IDENTICAL_ERRORS_SUITE, 47),
    (FUZZ_SUITE, 4),
];
const FUZZ_SUITE: &str = "fuzz targets (cvco-core)";
/// cvco-host's tests run a second time with `CVCO_HOST_TEST_STORE=postgres`.
const HOST_POSTGRES_SUITE: &str = "rust: cvco-host (postgres)";
const DOCTESTS_SUITE: &str = "doctests";
/// Debian's zbar-tools: decodes the sandbox's Code 128 in its test (`CVCO_ZBARIMG`).
const ZBARIMG_BIN: &str = "/usr/bin/zbarimg";
const WIDGET_DOM_SUITE: &str = "widget DOM (wasm-bindgen-test)";
const VENDURE_SUITE: &str = "vendure adapter";

struct Options {
    lint: bool,
    only: Vec<String>,
}

fn parse_options(args: &[String]) -> Result<Options> {
    let mut options = Options {
        lint: true,
        only: Vec::new(),
    };
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--no-lint" => options.lint = false,
            "--only" => options
                .only
                .push(args.next().context("--only needs a crate name")?.clone()),
            other => match other.strip_prefix("--only=") {
                Some(name) => options.only.push(name.to_owned()),
                None => bail!("unexpected argument `{other}` (test [--no-lint] [--only CRATE]...)"),
            },
        }
    }
    Ok(options)
}

/// Tests counted from the runners' own closing lines.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct TestCounts {
    pub passed: u64,
    pub failed: u64,
    pub skipped: u64,
}

impl TestCounts {
    pub fn add(&mut self, other: TestCounts) {
        self.passed += other.passed;
        self.failed += other.failed;
        self.skipped += other.skipped;
    }

    /// The plain closing line CI reads, whatever runner produced the counts.
    pub fn summary_line(&self) -> String {
        format!(
            "tests: {} passed, {} failed, {} skipped",
            self.passed, self.failed, self.skipped
        )
    }
}

/// Reads a runner's closing line: nextest's `Summary [..] 12 tests run: 11 passed, 1 failed, 0
/// skipped` or libtest's `test result: ok. 5 passed; 0 failed; 1 ignored; ..`. Other lines: `None`.
pub fn parse_count_line(line: &str) -> Option<TestCounts> {
    let line = line.trim();
    let tally = if let Some(rest) = line.strip_prefix("test result:") {
        rest
    } else if line.starts_with("Summary [") {
        let (_, rest) = line.split_once(" run:")?;
        rest
    } else {
        return None;
    };
    let mut counts = TestCounts::default();
    for segment in tally.split([',', ';']) {
        let mut words = segment.split_whitespace();
        let number = words.by_ref().find_map(|word| word.parse::<u64>().ok());
        let (Some(number), Some(label)) = (number, words.next()) else {
            continue;
        };
        match label {
            "passed" => counts.passed += number,
            "failed" | "timed" => counts.failed += number,
            "skipped" | "ignored" => counts.skipped += number,
            _ => {}
        }
    }
    Some(counts)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Ok,
    Failed,
}

#[derive(Default)]
struct Steps {
    records: Vec<(String, Duration, Outcome)>,
    counts: TestCounts,
    counted: bool,
    /// Tests passed, by suite (see [`EXPECTED_SUITES`]).
    suites: BTreeMap<String, u64>,
}

impl Steps {
    /// Runs one named step, timing it; the first error stops the suite with the step's name.
    fn step<T>(&mut self, name: &str, body: impl FnOnce(&mut Self) -> Result<T>) -> Result<T> {
        eprintln!("\n==> {name}");
        let started = Instant::now();
        let result = body(self);
        let outcome = if result.is_ok() {
            Outcome::Ok
        } else {
            Outcome::Failed
        };
        self.records
            .push((name.to_owned(), started.elapsed(), outcome));
        result.with_context(|| format!("step `{name}` failed"))
    }

    /// Adds a runner's counts to the closing tally.
    fn count(&mut self, counts: TestCounts) {
        self.counts.add(counts);
        self.counted = true;
    }

    /// Records that suite `name` passed `passed` tests, for the expected-suites check.
    fn record(&mut self, name: &str, passed: u64) {
        *self.suites.entry(name.to_owned()).or_default() += passed;
    }

    /// A whole suite's counts: counted, recorded, and an error when a test failed or none passed
    /// (a suite that found no test is a missing suite, not a green one).
    fn suite(&mut self, name: &str, counts: TestCounts) -> Result<()> {
        self.count(counts);
        self.record(name, counts.passed);
        if counts.failed > 0 {
            bail!("{} {name} tests failed", counts.failed);
        }
        if counts.passed == 0 {
            bail!("{name}: 0 tests passed");
        }
        Ok(())
    }

    fn print_summary(&self, total: Duration) {
        eprintln!("\nxtask test: steps");
        for (name, elapsed, outcome) in &self.records {
            let outcome = match outcome {
                Outcome::Ok => "ok",
                Outcome::Failed => "FAILED",
            };
            eprintln!("  {name:<32} {:>8.1} s  {outcome}", elapsed.as_secs_f64());
        }
        eprintln!("  {:<32} {:>8.1} s", "total", total.as_secs_f64());
        if let Some(ci_elapsed) = elapsed_since_ci_start() {
            eprintln!("  {:<32} {:>8} s", "since .ci/run started", ci_elapsed);
        }
        if !self.suites.is_empty() {
            eprintln!("\nxtask test: tests passed by suite");
            for (name, passed) in &self.suites {
                eprintln!("  {name:<32} {passed:>6}");
            }
        }
    }
}

/// The suites of [`EXPECTED_SUITES`] that did not run or passed fewer tests than their minimum,
/// one line each; empty when every suite is there.
pub fn missing_suites(ran: &BTreeMap<String, u64>, expected: &[(&str, u64)]) -> Vec<String> {
    expected
        .iter()
        .filter_map(|(name, minimum)| match ran.get(*name) {
            None => Some(format!(
                "{name}: did not run (expected at least {minimum} tests)"
            )),
            Some(&passed) if passed < *minimum || passed == 0 => Some(format!(
                "{name}: {passed} tests passed, expected at least {minimum}"
            )),
            Some(_) => None,
        })
        .collect()
}

fn elapsed_since_ci_start() -> Option<u64> {
    let started: u64 = std::env::var(CI_STARTED_AT_ENV).ok()?.trim().parse().ok()?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .ok()?
        .as_secs();
    now.checked_sub(started)
}

/// `cargo xtask test`
pub fn command(args: &[String]) -> Result<()> {
    let options = parse_options(args)?;
    let workspace = workspace()?;
    for name in &options.only {
        if workspace.package(name).is_none() {
            let known: Vec<&str> = workspace.packages.iter().map(|p| p.name.as_str()).collect();
            bail!(
                "--only {name}: no such crate (crates: {})",
                known.join(", ")
            );
        }
    }
    let started = Instant::now();
    let mut steps = Steps::default();
    let mut result = run_suite(workspace, &options, &mut steps);
    // A full run that went through must have run every expected suite, each with its tests.
    if result.is_ok() && options.only.is_empty() {
        let missing = missing_suites(&steps.suites, EXPECTED_SUITES);
        if !missing.is_empty() {
            result = Err(anyhow::anyhow!(
                "expected suites missing or short (see EXPECTED_SUITES in xtask/src/test.rs):\n  {}",
                missing.join("\n  ")
            ));
        }
    }
    steps.print_summary(started.elapsed());
    if steps.counted {
        // Last line of the run on purpose: CI reads it.
        println!("{}", steps.counts.summary_line());
    }
    result
}

fn run_suite(workspace: &Workspace, options: &Options, steps: &mut Steps) -> Result<()> {
    let selected = |name: &str| options.only.is_empty() || options.only.iter().any(|o| o == name);
    let package_args: Vec<String> = options
        .only
        .iter()
        .flat_map(|name| ["-p".to_owned(), name.clone()])
        .collect();

    steps.step("wasm target", |_| ensure_rustup_target(WASM_TARGET))?;

    if options.lint {
        steps.step("fmt", |_| {
            crate::run(&mut workspace.cargo(["fmt", "--all", "--check"]))
        })?;
        steps.step("clippy", |_| {
            let mut clippy = workspace.cargo(["clippy"]);
            if options.only.is_empty() {
                clippy.arg("--workspace");
            } else {
                clippy.args(&package_args);
            }
            crate::run(clippy.args(["--all-targets", "--", "-D", "warnings"]))
        })?;
        let wasm_crates: Vec<&str> = WASM_CRATES
            .iter()
            .copied()
            .filter(|name| selected(name))
            .collect();
        if !wasm_crates.is_empty() {
            steps.step("clippy wasm32", |_| {
                let mut clippy = workspace.cargo(["clippy", "--target", WASM_TARGET]);
                for name in &wasm_crates {
                    clippy.args(["-p", name]);
                }
                crate::run(clippy.args(["--", "-D", "warnings"]))
            })?;
        }
    }

    let mut test_env: Vec<(&str, PathBuf)> = Vec::new();
    let standalone = !options.only.is_empty()
        && options
            .only
            .iter()
            .all(|name| STANDALONE_CRATES.contains(&name.as_str()));
    if !standalone {
        let wasm = steps.step("plugin wasm", |_| plugin::build())?;
        test_env.push((plugin::WASM_ENV, wasm));
        let env = steps.step("browser prerequisites", |_| widget::prepare_browser_tests())?;
        test_env.extend(env);
    }

    if selected("cvco-sandbox") {
        // The sandbox's barcode is checked by an independent decoder, never skipped.
        steps.step("barcode decoder", |_| {
            crate::ensure_debian_packages(&[(ZBARIMG_BIN, "zbar-tools")])
        })?;
        test_env.push(("CVCO_ZBARIMG", PathBuf::from(ZBARIMG_BIN)));
    }

    // PostgreSQL for cvco-host's second store (xtask/src/postgres.rs), up until the last step; a
    // URL already in the environment is used as it is.
    let _postgres = if (selected("cvco-host") || selected("xtask"))
        && std::env::var_os(postgres::URL_ENV).is_none()
    {
        let handle = steps.step("postgres", |_| postgres::start(workspace))?;
        test_env.push((postgres::URL_ENV, PathBuf::from(handle.url())));
        Some(handle)
    } else {
        None
    };

    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    if !has_program(&cargo, &["nextest", "--version"]) {
        // The per-crate counts below come from nextest's lines: no silent fallback.
        bail!("cargo-nextest is needed: cargo install cargo-nextest --locked");
    }
    steps.step("tests", |steps| {
        let mut tests = workspace.cargo(["nextest", "run"]);
        if options.only.is_empty() {
            // Every member: the default members and the plugin (not a default member: it builds
            // for wasm32), whose native unit tests would otherwise never run.
            tests.arg("--workspace");
        } else {
            // A selected crate may have no tests of its own (only doctests): not an error.
            tests.arg("--no-tests=warn");
        }
        tests.args(&package_args);
        tests.envs(test_env.iter().map(|(key, value)| (*key, value)));
        let (result, tally) = run_tallying(&mut tests);
        for (krate, passed) in &tally.passed_by_crate {
            steps.record(&format!("rust: {krate}"), *passed);
        }
        match tally.counts {
            Some(counts) => steps.count(counts),
            None if result.is_ok() => bail!("nextest reported no summary"),
            None => {}
        }
        result
    })?;

    // cvco-host's whole suite again on its second store: each test on a PostgreSQL database of
    // its own (host-adapters/rust/src/store/testing.rs).
    if selected("cvco-host") {
        steps.step(HOST_POSTGRES_SUITE, |steps| {
            let mut tests = workspace.cargo(["nextest", "run", "-p", "cvco-host"]);
            tests.envs(test_env.iter().map(|(key, value)| (*key, value)));
            tests.env("CVCO_HOST_TEST_STORE", "postgres");
            let (result, counts) = run_counting(&mut tests);
            result?;
            steps.suite(
                HOST_POSTGRES_SUITE,
                counts.context("nextest reported no summary")?,
            )
        })?;
    }

    // Every parser of cvco-core under libFuzzer for a bounded time (xtask/src/fuzz.rs).
    if selected("cvco-core") {
        steps.step("fuzz", |steps| {
            let runs = crate::fuzz::run_targets(
                crate::fuzz::TARGETS,
                crate::fuzz::TEST_SECONDS_PER_TARGET,
            )?;
            // One "test" per target that ran inputs and found no crash.
            steps.record(FUZZ_SUITE, runs.len() as u64);
            Ok(())
        })?;
    }

    // nextest does not run doctests; cargo test does them for every library selected.
    let has_doc_libs = options.only.is_empty() || options.only.iter().any(|n| workspace.has_lib(n));
    if has_doc_libs {
        steps.step("doctests", |steps| {
            let mut doctests = workspace.cargo(["test", "--doc"]);
            for name in options.only.iter().filter(|name| workspace.has_lib(name)) {
                doctests.args(["-p", name]);
            }
            doctests.envs(test_env.iter().map(|(key, value)| (*key, value)));
            let (result, counts) = run_counting(&mut doctests);
            result?;
            let counts = counts.context("cargo test --doc reported no result")?;
            if options.only.is_empty() {
                steps.suite(DOCTESTS_SUITE, counts)
            } else {
                // One selected crate may well have no doctest.
                steps.count(counts);
                Ok(())
            }
        })?;
    }

    if selected(widget::PACKAGE) {
        steps.step(WIDGET_DOM_SUITE, |steps| {
            steps.suite(WIDGET_DOM_SUITE, widget::browser_tests()?)
        })?;
    }

    // The demo pages (storefront, back-office, counter) clicked through in Chromium.
    if options.only.is_empty() {
        steps.step("demo pages", |steps| {
            for (name, counts) in examples::tests(&test_env)? {
                steps.suite(name, counts)?;
            }
            Ok(())
        })?;
    }

    // Adapters for real platforms run their own suites inside the platform (pytest, node).
    if options.only.is_empty() {
        // Vendure first: it builds the test server the contract suite's Vendure driver starts.
        steps.step(VENDURE_SUITE, |steps| {
            steps.suite(VENDURE_SUITE, vendure::tests(&test_env)?)
        })?;
        steps.step("pretix adapter and contract", |steps| {
            let suites = pretix::tests(&test_env)?;
            // Every suite counted before the first failure is reported.
            for (name, counts) in &suites {
                steps.count(*counts);
                steps.record(name, counts.passed);
            }
            for (name, counts) in suites {
                if counts.failed > 0 {
                    bail!("{} {name} tests failed", counts.failed);
                }
                if counts.passed == 0 {
                    bail!("{name}: 0 tests passed");
                }
            }
            Ok(())
        })?;
    }
    Ok(())
}

/// What a Rust test run printed: the counts of its closing lines (`None` if none was seen) and, from
/// nextest's `PASS` lines, the tests passed per crate.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RustTally {
    pub counts: Option<TestCounts>,
    pub passed_by_crate: BTreeMap<String, u64>,
}

impl RustTally {
    fn read(&mut self, line: &str) {
        if let Some(counts) = parse_count_line(line) {
            self.counts
                .get_or_insert_with(TestCounts::default)
                .add(counts);
        } else if let Some(krate) = parse_nextest_pass(line) {
            *self.passed_by_crate.entry(krate.to_owned()).or_default() += 1;
        }
    }
}

/// The crate of a nextest `PASS` line: `PASS [   0.004s] cvco-core amount::tests::parses`, with
/// or without a `(12/600)` counter, the binary id `cvco-sandbox::merchant_api` or
/// `xtask::bin/xtask` naming the crate before its `::`. Other lines: `None`.
pub fn parse_nextest_pass(line: &str) -> Option<&str> {
    let rest = line.trim_start().strip_prefix("PASS [")?;
    let (_, rest) = rest.split_once(']')?;
    let mut rest = rest.trim_start();
    if let Some(counter) = rest.strip_prefix('(') {
        rest = counter.split_once(')')?.1.trim_start();
    }
    let binary_id = rest.split_whitespace().next()?;
    binary_id
        .split("::")
        .next()
        .filter(|krate| !krate.is_empty())
}

/// Runs a test command, passing its output through line by line while reading the runners'
/// closing lines. Also returns the counts it saw, failed run or not (`None` if no closing line).
pub fn run_counting(command: &mut Command) -> (Result<()>, Option<TestCounts>) {
    let (result, tally) = run_tallying(command);
    (result, tally.counts)
}

/// [`run_counting`], with nextest's passes per crate as well.
pub fn run_tallying(command: &mut Command) -> (Result<()>, RustTally) {
    let line = describe(command);
    eprintln!("$ {line}");
    let seen: Arc<Mutex<RustTally>> = Arc::default();
    let result = run_relaying(command, &line, &seen);
    let tally = seen
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .clone();
    let result = match (result, tally.counts) {
        (Err(_), Some(counts)) if counts.failed > 0 => {
            Err(anyhow::anyhow!("{} tests failed (`{line}`)", counts.failed))
        }
        (result, _) => result,
    };
    (result, tally)
}

fn run_relaying(command: &mut Command, line: &str, seen: &Arc<Mutex<RustTally>>) -> Result<()> {
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("could not start `{line}`"))?;
    let stdout = child.stdout.take().context("child stdout")?;
    let stderr = child.stderr.take().context("child stderr")?;
    let readers = [
        relay(Box::new(stdout), false, Arc::clone(seen)),
        relay(Box::new(stderr), true, Arc::clone(seen)),
    ];
    let status = child.wait()?;
    for reader in readers {
        let _ = reader.join();
    }
    if !status.success() {
        bail!("`{line}` failed ({status})");
    }
    Ok(())
}

fn relay(
    source: Box<dyn std::io::Read + Send>,
    to_stderr: bool,
    seen: Arc<Mutex<RustTally>>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut reader = BufReader::new(source);
        let mut buffer = Vec::new();
        loop {
            buffer.clear();
            match reader.read_until(b'\n', &mut buffer) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
            let _ = if to_stderr {
                std::io::stderr().write_all(&buffer)
            } else {
                std::io::stdout().write_all(&buffer)
            };
            seen.lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .read(&String::from_utf8_lossy(&buffer));
        }
    })
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
    fn reads_nextest_summaries() {
        assert_eq!(
            parse_count_line("     Summary [   1.234s] 12 tests run: 12 passed, 0 skipped"),
            Some(counts_of(12, 0, 0))
        );
        assert_eq!(
            parse_count_line(
                "     Summary [  10.002s] 9/40 tests run: 7 passed (1 slow), 2 failed, 3 skipped"
            ),
            Some(counts_of(7, 2, 3))
        );
        assert_eq!(
            parse_count_line("Summary [ 0.5s] 3 tests run: 2 passed, 1 timed out, 0 skipped"),
            Some(counts_of(2, 1, 0))
        );
    }

    #[test]
    fn reads_libtest_results() {
        assert_eq!(
            parse_count_line(
                "test result: ok. 5 passed; 0 failed; 1 ignored; 0 measured; 2 filtered out; finished in 0.01s"
            ),
            Some(counts_of(5, 0, 1))
        );
        assert_eq!(
            parse_count_line(
                "test result: FAILED. 3 passed; 2 failed; 0 ignored; 0 measured; 0 filtered out"
            ),
            Some(counts_of(3, 2, 0))
        );
    }

    #[test]
    fn ignores_other_lines() {
        assert_eq!(
            parse_count_line("        PASS [   0.004s] cvco-core amount::tests::parses"),
            None
        );
        assert_eq!(parse_count_line("test amount::tests::parses ... ok"), None);
        assert_eq!(parse_count_line("running 5 tests"), None);
    }

    #[test]
    fn nextest_pass_lines_name_their_crate() {
        assert_eq!(
            parse_nextest_pass("        PASS [   0.004s] cvco-core amount::tests::parses"),
            Some("cvco-core")
        );
        assert_eq!(
            parse_nextest_pass(
                "        PASS [   1.204s] (  12/600) cvco-sandbox::merchant_api lists_transactions"
            ),
            Some("cvco-sandbox")
        );
        assert_eq!(
            parse_nextest_pass("PASS [ 0.1s] xtask::bin/xtask test::tests::x"),
            Some("xtask")
        );
        assert_eq!(
            parse_nextest_pass("        FAIL [   0.004s] cvco-core amount::tests::parses"),
            None
        );
        assert_eq!(parse_nextest_pass("PASSWORD [x] y"), None);
        assert_eq!(
            parse_nextest_pass("test amount::tests::parses ... ok"),
            None
        );
    }

    #[test]
    fn passes_are_tallied_per_crate_from_a_real_process() {
        let (result, tally) = run_tallying(&mut shell(
            "echo '    PASS [   0.1s] cvco-core a::b' >&2; \
             echo '    PASS [   0.1s] cvco-core::props c' >&2; \
             echo '    PASS [   0.1s] cvco-plugin d' >&2; \
             echo '     Summary [   0.3s] 3 tests run: 3 passed, 0 skipped' >&2",
        ));
        assert!(result.is_ok());
        assert_eq!(tally.counts, Some(counts_of(3, 0, 0)));
        let by_crate: Vec<(&str, u64)> = tally
            .passed_by_crate
            .iter()
            .map(|(name, passed)| (name.as_str(), *passed))
            .collect();
        assert_eq!(by_crate, [("cvco-core", 2), ("cvco-plugin", 1)]);
    }

    #[test]
    fn a_missing_or_short_suite_is_reported() {
        let expected = [
            ("rust: cvco-core", 10),
            ("doctests", 2),
            ("contract: vendure", 5),
        ];
        let ran: BTreeMap<String, u64> = [("rust: cvco-core", 12), ("doctests", 1), ("extra", 3)]
            .into_iter()
            .map(|(name, passed)| (name.to_owned(), passed))
            .collect();
        assert_eq!(
            missing_suites(&ran, &expected),
            [
                "doctests: 1 tests passed, expected at least 2",
                "contract: vendure: did not run (expected at least 5 tests)",
            ]
        );
        let zero: BTreeMap<String, u64> = [("doctests".to_owned(), 0)].into();
        assert_eq!(missing_suites(&zero, &[("doctests", 0)]).len(), 1);
    }

    #[test]
    fn a_suite_with_no_test_passed_fails_its_step() {
        let mut steps = Steps::default();
        assert!(steps.suite("empty", counts_of(0, 0, 2)).is_err());
        assert!(steps.suite("red", counts_of(4, 1, 0)).is_err());
        assert!(steps.suite("green", counts_of(4, 0, 0)).is_ok());
        assert_eq!(steps.counts, counts_of(8, 1, 2));
    }

    #[test]
    fn expected_suites_are_unique_and_cover_every_default_rust_crate() {
        let mut names: Vec<&str> = EXPECTED_SUITES.iter().map(|(name, _)| *name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), EXPECTED_SUITES.len());
        for package in &workspace().unwrap().packages {
            let suite = format!("rust: {}", package.name);
            assert!(names.contains(&suite.as_str()), "{suite} is not expected");
        }
    }

    #[test]
    fn summary_line_is_the_plain_form_ci_reads() {
        let mut total = counts_of(10, 0, 1);
        total.add(counts_of(2, 1, 0));
        assert_eq!(
            total.summary_line(),
            "tests: 12 passed, 1 failed, 1 skipped"
        );
    }

    fn shell(script: &str) -> Command {
        let mut command = Command::new("sh");
        command.args(["-c", script]);
        command
    }

    #[test]
    fn counts_are_read_from_both_streams_of_a_real_process() {
        let (result, counts) = run_counting(&mut shell(
            "echo 'test result: ok. 2 passed; 0 failed; 1 ignored' ; \
             echo '     Summary [   0.1s] 4 tests run: 4 passed, 0 skipped' >&2",
        ));
        assert!(result.is_ok());
        assert_eq!(counts, Some(counts_of(6, 0, 1)));
    }

    #[test]
    fn a_failing_run_still_reports_its_counts() {
        let (result, counts) = run_counting(&mut shell(
            "echo 'test result: FAILED. 3 passed; 2 failed; 0 ignored'; exit 101",
        ));
        assert_eq!(counts, Some(counts_of(3, 2, 0)));
        assert!(format!("{:#}", result.unwrap_err()).starts_with("2 tests failed"));

        let (result, counts) =
            run_counting(&mut shell("echo 'error: could not compile'; exit 101"));
        assert_eq!(counts, None);
        assert!(format!("{:#}", result.unwrap_err()).contains("exit status: 101"));
    }

    #[test]
    fn options_accept_repeated_only_and_reject_unknown_flags() {
        let args = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let options =
            parse_options(&args(&["--no-lint", "--only", "cvco-core", "--only=xtask"])).unwrap();
        assert!(!options.lint);
        assert_eq!(options.only, ["cvco-core", "xtask"]);
        assert!(parse_options(&args(&["--only"])).is_err());
        assert!(parse_options(&args(&["--fast"])).is_err());
    }
}
