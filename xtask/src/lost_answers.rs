//! `cargo xtask lost-answers [--driver NAME]...`: the lost-answer matrix of issue 10 §1
//! (tests/contract/test_lost_answers.py: operation × fault × what the caller does next) against
//! each adapter (all three by default), then the matrix itself, one line per cell, as written to
//! `$CARGO_TARGET_DIR/lost-answers-matrix.txt`. Fails when a cell fails or a run breaks.

use std::path::PathBuf;
use std::process::Command;

use anyhow::{bail, Context, Result};

use crate::{has_program, run, workspace};

const DRIVERS: &[&str] = &["cvco_host", "pretix", "vendure"];
const CONTRACT_DIR: &str = "tests/contract";
const VENDURE_DIR: &str = "host-adapters/vendure";
const MATRIX: &str = "lost-answers-matrix.txt";

pub fn command(args: &[String]) -> Result<()> {
    let mut drivers = Vec::new();
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        match arg.as_str() {
            "--driver" => {
                let name = rest.next().context("--driver needs a name")?;
                if !DRIVERS.contains(&name.as_str()) {
                    bail!("unknown driver `{name}` (one of {})", DRIVERS.join(", "));
                }
                drivers.push(name.as_str());
            }
            other => bail!("unknown option `{other}` (lost-answers [--driver NAME]...)"),
        }
    }
    if drivers.is_empty() {
        drivers = DRIVERS.to_vec();
    }

    let ws = workspace()?;
    let plugin = crate::plugin::build()?;
    let sandbox = ws.build_bin("cvco-sandbox", "cvco-sandbox")?;
    let host = ws.build_bin("cvco-host", "cvco-host")?;
    // The venv `cargo xtask test` keeps for pretix has pytest and requests too.
    let home = std::env::var_os("HOME").context("HOME is not set")?;
    let python = PathBuf::from(home).join(".cache/cvco/venv-pretix/bin/python");
    if !has_program(
        &python.to_string_lossy(),
        &["-c", "import pretix, pytest, requests"],
    ) {
        bail!(
            "{} is missing or incomplete: `cargo xtask test` builds it",
            python.display()
        );
    }
    if drivers.contains(&"vendure") {
        let dir = ws.root.join(VENDURE_DIR);
        if !dir.join("node_modules/typescript").is_dir() {
            bail!(
                "{}/node_modules is missing: `cargo xtask test` installs it",
                dir.display()
            );
        }
        run(Command::new("node")
            .args(["node_modules/typescript/bin/tsc", "-p", "tsconfig.json"])
            .current_dir(&dir))?;
    }

    // This run's matrix only: the per-adapter files of an earlier run would be combined in.
    for entry in std::fs::read_dir(&ws.target_dir)? {
        let path = entry?.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name.starts_with("lost-answers-") && name.ends_with(".txt") {
            std::fs::remove_file(&path)?;
        }
    }

    let mut broken = Vec::new();
    for driver in &drivers {
        eprintln!("--> lost-answer matrix: {driver}");
        let status = Command::new(&python)
            .args([
                "-m",
                "pytest",
                "-q",
                "-p",
                "no:warnings",
                "-m",
                "lost_answers",
            ])
            .args(["--driver", driver, "test_lost_answers.py"])
            .current_dir(ws.root.join(CONTRACT_DIR))
            .env("CVCO_PLUGIN_WASM", &plugin)
            .env("CVCO_SANDBOX_BIN", &sandbox)
            .env("CVCO_HOST_BIN", &host)
            .env("CARGO_TARGET_DIR", &ws.target_dir)
            .status()
            .context("starting pytest")?;
        if !status.success() {
            broken.push(*driver);
        }
    }

    let matrix = ws.target_dir.join(MATRIX);
    let text = std::fs::read_to_string(&matrix)
        .with_context(|| format!("{} was not written", matrix.display()))?;
    println!("{text}");
    println!("(written to {})", matrix.display());
    let failed = text.lines().filter(|l| l.contains(" -> FAIL")).count();
    if failed > 0 || !broken.is_empty() {
        bail!(
            "{failed} cell(s) failed; pytest failed for: {}",
            if broken.is_empty() {
                "none".to_owned()
            } else {
                broken.join(", ")
            }
        );
    }
    Ok(())
}
