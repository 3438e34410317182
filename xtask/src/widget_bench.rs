//! The widget's figures in headless Chromium: first render and live-status latency, measured by
//! the `widget-bench` binary of the browser tests (sandbox + cvco-host in-process, real widget).

use anyhow::Result;

use crate::bench::{run_bench_binary, Figure};
use crate::{plugin, widget, Workspace};

const PACKAGE: &str = "cvco-browser-tests";
const BIN: &str = "widget-bench";

pub fn run(workspace: &Workspace) -> Result<Vec<Figure>> {
    let env = widget::prepare_browser_tests()?;
    // The host loads the plugin; built here once rather than by every process.
    let wasm = plugin::build()?;
    let mut command = workspace.cargo(["run", "-q", "-p", PACKAGE, "--bin", BIN]);
    command.env(plugin::WASM_ENV, &wasm);
    for (name, value) in &env {
        command.env(name, value);
    }
    run_bench_binary(BIN, &mut command)
}
