//! The reference backend's figures: `host_status_rps` and `payment_flow_ms`, measured by the
//! `host-bench` binary of cvco-host (sandbox and host in-process, dev profile like the tests).

use anyhow::{bail, Context, Result};
use std::process::Stdio;

use crate::bench::{Figure, Outcome};
use crate::{describe, plugin, Workspace};

pub fn run(workspace: &Workspace) -> Result<Outcome> {
    const PACKAGE: &str = "cvco-host";
    const BIN: &str = "host-bench";
    if !workspace.has_bin(PACKAGE, BIN) {
        return Ok(Outcome::Skipped(format!(
            "{PACKAGE} has no {BIN} binary yet"
        )));
    }
    let wasm = plugin::build()?;
    let mut command = workspace.cargo(["run", "-p", PACKAGE, "--bin", BIN]);
    command
        .env(plugin::WASM_ENV, &wasm)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    let line = describe(&command);
    eprintln!("$ {line}");
    let output = command
        .output()
        .with_context(|| format!("could not start `{line}`"))?;
    if !output.status.success() {
        bail!("{BIN} exited with {}", output.status);
    }
    let mut figures = Vec::new();
    for line in String::from_utf8_lossy(&output.stdout).lines() {
        match Figure::parse(line) {
            Some(figure) => figures.push(figure),
            None if !line.trim().is_empty() => eprintln!("{BIN}: {line}"),
            None => {}
        }
    }
    Ok(Outcome::Measured(figures))
}
