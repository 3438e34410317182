//! `cargo xtask fuzz [--seconds N] [--target NAME]...`: the cargo-fuzz (libFuzzer) targets of
//! `core/fuzz`, each run for a bounded time; any crash, panic, overflow or timeout fails the run.
//! `cargo xtask test` runs every target for [`TEST_SECONDS_PER_TARGET`].
//!
//! cargo-fuzz needs nightly `-Z` flags; the toolchain here is stable, so its builds run with
//! `RUSTC_BOOTSTRAP=1` (the same compiler, nightly flags unlocked). No sanitizer: cvco-core is
//! safe Rust, so ASan would only slow the search; debug assertions (overflow checks) are on.
//! The corpus and crash files live under the target dir, never in the tree.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{bail, Context, Result};

use crate::{describe, run, workspace, Workspace};

/// The fuzz crate (its own workspace), relative to the workspace root.
pub const FUZZ_DIR: &str = "core/fuzz";
/// Every target of `core/fuzz/Cargo.toml`; a missing one fails the build step.
pub const TARGETS: &[&str] = &["time", "text", "signature", "json"];
/// What `cargo xtask test` gives each target: about two minutes for the four.
pub const TEST_SECONDS_PER_TARGET: u64 = 30;
/// cargo-fuzz from crates.io, built once into `$HOME/.cache/cvco/tools`.
const CARGO_FUZZ_VERSION: &str = "0.13.2";
/// Past this many files a target's corpus is dropped and restarted from the seeds.
const MAX_CORPUS_FILES: usize = 30_000;
/// The flags the build and every run share (a difference would rebuild).
const BUILD_FLAGS: &[&str] = &["--sanitizer", "none", "--debug-assertions"];

/// What one target did in its time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FuzzRun {
    pub target: String,
    pub execs: u64,
    pub seconds: u64,
    pub corpus_files: usize,
}

/// `cargo xtask fuzz`
pub fn command(args: &[String]) -> Result<()> {
    let mut seconds = TEST_SECONDS_PER_TARGET;
    let mut targets: Vec<&str> = Vec::new();
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--seconds" => {
                let value = args.next().context("--seconds needs a number")?;
                seconds = value
                    .parse()
                    .ok()
                    .filter(|s| *s > 0)
                    .with_context(|| format!("--seconds {value}: a positive number"))?;
            }
            "--target" => {
                let value = args.next().context("--target needs a name")?;
                let Some(known) = TARGETS.iter().find(|t| **t == value.as_str()) else {
                    bail!("--target {value}: no such target ({})", TARGETS.join(", "));
                };
                targets.push(known);
            }
            other => crate::reject_args(&[other.to_owned()])?,
        }
    }
    if targets.is_empty() {
        targets = TARGETS.to_vec();
    }
    run_targets(&targets, seconds)?;
    Ok(())
}

/// Builds the targets, runs each for `seconds`, prints one line per target; an error on any
/// crash (with the file that reproduces it) or on a target that executed nothing.
pub fn run_targets(targets: &[&str], seconds: u64) -> Result<Vec<FuzzRun>> {
    let workspace = workspace()?;
    let cargo_fuzz = ensure_cargo_fuzz(workspace)?;
    let work = workspace.target_dir.join("fuzz");
    run(cargo_fuzz_command(&cargo_fuzz, workspace, "build").args(BUILD_FLAGS))?;
    let mut runs = Vec::new();
    for target in targets {
        runs.push(run_target(&cargo_fuzz, workspace, &work, target, seconds)?);
    }
    for r in &runs {
        eprintln!(
            "fuzz {:<10} {:>10} execs in {:>3} s, corpus {} files, no crash",
            r.target, r.execs, r.seconds, r.corpus_files
        );
    }
    Ok(runs)
}

fn cargo_fuzz_command(cargo_fuzz: &Path, workspace: &Workspace, sub: &str) -> Command {
    let mut command = Command::new(cargo_fuzz);
    command
        .args(["fuzz", sub, "--fuzz-dir", FUZZ_DIR, "--target-dir"])
        .arg(workspace.target_dir.join("fuzz/build"))
        .current_dir(&workspace.root)
        .env("RUSTC_BOOTSTRAP", "1");
    command
}

fn run_target(
    cargo_fuzz: &Path,
    workspace: &Workspace,
    work: &Path,
    target: &str,
    seconds: u64,
) -> Result<FuzzRun> {
    let corpus = work.join("corpus").join(target);
    let artifacts = work.join("artifacts").join(target);
    // The corpus carries over between runs (coverage found stays found), up to a bound past
    // which it starts again from the seeds, so loading it never eats the run's time.
    if corpus.exists() && std::fs::read_dir(&corpus)?.count() > MAX_CORPUS_FILES {
        std::fs::remove_dir_all(&corpus)?;
    }
    std::fs::create_dir_all(&corpus)?;
    // Crash files of an earlier run must not fail (or hide) this one.
    if artifacts.exists() {
        std::fs::remove_dir_all(&artifacts)?;
    }
    std::fs::create_dir_all(&artifacts)?;
    let seeds = workspace.root.join(FUZZ_DIR).join("seeds").join(target);
    for entry in std::fs::read_dir(&seeds).with_context(|| format!("{}", seeds.display()))? {
        let path = entry?.path();
        std::fs::copy(&path, corpus.join(path.file_name().unwrap()))?;
    }
    let mut command = cargo_fuzz_command(cargo_fuzz, workspace, "run");
    command
        .args(BUILD_FLAGS)
        .arg(target)
        .arg(&corpus)
        .arg("--")
        .arg(format!("-max_total_time={seconds}"))
        .arg(format!("-artifact_prefix={}/", artifacts.display()))
        // A single input taking seconds is a bug too (a loop on crafted input).
        .arg("-timeout=10")
        .arg("-rss_limit_mb=2048")
        .arg("-print_final_stats=1");
    let line = describe(&command);
    eprintln!("$ {line}");
    let started = Instant::now();
    let output = command
        .output()
        .with_context(|| format!("could not start `{line}`"))?;
    let log = String::from_utf8_lossy(&output.stderr);
    let crashes: Vec<PathBuf> = std::fs::read_dir(&artifacts)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    if !output.status.success() || !crashes.is_empty() {
        let tail: Vec<&str> = log.lines().rev().take(60).collect();
        eprintln!("{}", tail.into_iter().rev().collect::<Vec<_>>().join("\n"));
        bail!(
            "fuzz target `{target}` found a failure ({}); reproduce with: RUSTC_BOOTSTRAP=1 \
             cargo fuzz run --fuzz-dir {FUZZ_DIR} {} {target} {}",
            output.status,
            BUILD_FLAGS.join(" "),
            crashes
                .first()
                .map(|p| p.display().to_string())
                .unwrap_or_default()
        );
    }
    let execs = final_stat(&log, "stat::number_of_executed_units:")
        .or_else(|| done_runs(&log))
        .with_context(|| format!("fuzz target `{target}` printed no run count"))?;
    if execs == 0 {
        bail!("fuzz target `{target}` executed no input");
    }
    Ok(FuzzRun {
        target: target.to_owned(),
        execs,
        seconds: started.elapsed().as_secs(),
        corpus_files: std::fs::read_dir(&corpus)?.count(),
    })
}

/// A `-print_final_stats=1` line: `stat::number_of_executed_units: 1163724`.
pub fn final_stat(log: &str, key: &str) -> Option<u64> {
    log.lines()
        .find_map(|line| line.trim().strip_prefix(key))
        .and_then(|value| value.trim().parse().ok())
}

/// libFuzzer's closing line: `Done 1163724 runs in 21 second(s)`.
pub fn done_runs(log: &str) -> Option<u64> {
    log.lines()
        .find_map(|line| line.trim().strip_prefix("Done "))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
}

/// `cargo-fuzz` of [`CARGO_FUZZ_VERSION`], built from crates.io once (a minute or two cold).
fn ensure_cargo_fuzz(workspace: &Workspace) -> Result<PathBuf> {
    let home = std::env::var_os("HOME").context("HOME is not set")?;
    let root = PathBuf::from(home).join(".cache/cvco/tools");
    let bin = root.join("bin/cargo-fuzz");
    let version = Command::new(&bin)
        .arg("--version")
        .output()
        .map(|out| String::from_utf8_lossy(&out.stdout).into_owned())
        .unwrap_or_default();
    if version.split_whitespace().any(|w| w == CARGO_FUZZ_VERSION) {
        return Ok(bin);
    }
    run(workspace
        .cargo(["install", "cargo-fuzz", "--locked", "--version"])
        .arg(format!("={CARGO_FUZZ_VERSION}"))
        .arg("--root")
        .arg(&root))?;
    Ok(bin)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_libfuzzer_counts() {
        let log = "#5\tINITED cov: 193\nDone 1163724 runs in 21 second(s)\n\
                   stat::number_of_executed_units: 1163725\nstat::peak_rss_mb: 516\n";
        assert_eq!(
            final_stat(log, "stat::number_of_executed_units:"),
            Some(1_163_725)
        );
        assert_eq!(done_runs(log), Some(1_163_724));
        assert_eq!(done_runs("INFO: nothing"), None);
    }

    #[test]
    fn every_target_is_declared_and_seeded() {
        let root = workspace().unwrap().root.clone();
        let manifest = std::fs::read_to_string(root.join(FUZZ_DIR).join("Cargo.toml")).unwrap();
        for target in TARGETS {
            assert!(
                manifest.contains(&format!("name = \"{target}\"")),
                "{target} not in {FUZZ_DIR}/Cargo.toml"
            );
            let seeds = root.join(FUZZ_DIR).join("seeds").join(target);
            assert!(
                std::fs::read_dir(&seeds).unwrap().count() > 0,
                "{}",
                seeds.display()
            );
        }
    }
}
