//! `tenants_rss_mib`: resident memory of one process whose plugin Registry serves 1,000 merchants
//! that each made a real payment, measured by the test host's `tenants-bench` (sandbox in its own
//! process, so not counted). Release, as a deployment runs it: the dev profile's wasmtime holds
//! more code and debug data, which is not what a merchant's host costs.

use anyhow::Result;

use crate::bench::{run_bench_binary, Figure};
use crate::{plugin, Workspace};

pub fn run(workspace: &Workspace) -> Result<Vec<Figure>> {
    const BIN: &str = "tenants-bench";
    let wasm = plugin::build()?;
    // The sandbox binary it starts, beside it in the same profile.
    let mut build = workspace.cargo(["build", "--release", "-q", "-p", "cvco-sandbox"]);
    crate::run(&mut build)?;
    let mut command = workspace.cargo([
        "run",
        "--release",
        "-q",
        "-p",
        "cvco-test-host",
        "--bin",
        BIN,
    ]);
    command.env(plugin::WASM_ENV, &wasm);
    command.env(
        "CVCO_SANDBOX_BIN",
        workspace.target_dir.join("release").join("cvco-sandbox"),
    );
    run_bench_binary(BIN, &mut command)
}
