//! The widget's figures in headless Chromium: first render and live-status latency, measured by
//! the `widget-bench` binary of the browser tests (sandbox + cvco-host in-process, real widget).

use std::process::Stdio;

use anyhow::{bail, Context, Result};

use crate::bench::{Figure, Outcome};
use crate::{describe, plugin, widget, Workspace};

const PACKAGE: &str = "cvco-browser-tests";
const BIN: &str = "widget-bench";

pub fn run(workspace: &Workspace) -> Result<Outcome> {
    if !workspace.has_bin(PACKAGE, BIN) {
        return Ok(Outcome::Skipped(format!(
            "{PACKAGE} has no {BIN} binary yet"
        )));
    }
    let env = widget::prepare_browser_tests()?;
    if !env.iter().any(|(name, _)| *name == widget::DIST_ENV) {
        return Ok(Outcome::Skipped("no widget to measure".into()));
    }
    // The host loads the plugin; built here once rather than by every process.
    let wasm = plugin::build()?;
    let mut command = workspace.cargo(["run", "-q", "-p", PACKAGE, "--bin", BIN]);
    command
        .env(plugin::WASM_ENV, &wasm)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    for (name, value) in &env {
        command.env(name, value);
    }
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
