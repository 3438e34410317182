//! `tenants_rss_mib`: resident memory of one process whose plugin Registry serves 1,000 merchants
//! that each made a real payment, measured by the test host's `tenants-bench` (sandbox in its own
//! process, so not counted). Release, as a deployment runs it: the dev profile's wasmtime holds
//! more code and debug data, which is not what a merchant's host costs. `tenants_host_rss_mib` is
//! the same at the level of one cvco-host.

use anyhow::Result;

use crate::bench::{run_bench_binary, Figure};
use crate::{plugin, Workspace};

pub fn run(workspace: &Workspace) -> Result<Vec<Figure>> {
    const BIN: &str = "tenants-bench";
    let wasm = plugin::build()?;
    let sandbox = release_sandbox(workspace)?;
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
    command.env("CVCO_SANDBOX_BIN", sandbox);
    run_bench_binary(BIN, &mut command)
}

/// `tenants_host_rss_mib`: the same 1,000 merchants served by one cvco-host (`[[merchants]]`, each
/// payment through the host's engine, its decision brought back by the merchant's notification),
/// cvco-host's `tenants-host-bench` example, release.
pub fn host(workspace: &Workspace) -> Result<Vec<Figure>> {
    const BIN: &str = "tenants-host-bench";
    let wasm = plugin::build()?;
    let sandbox = release_sandbox(workspace)?;
    let mut command = workspace.cargo([
        "run",
        "--release",
        "-q",
        "-p",
        "cvco-host",
        "--example",
        BIN,
    ]);
    command.env(plugin::WASM_ENV, &wasm);
    command.env("CVCO_SANDBOX_BIN", sandbox);
    run_bench_binary(BIN, &mut command)
}

/// The sandbox binary the benches start as their own process, built in release.
fn release_sandbox(workspace: &Workspace) -> Result<std::path::PathBuf> {
    let mut build = workspace.cargo(["build", "--release", "-q", "-p", "cvco-sandbox"]);
    crate::run(&mut build)?;
    Ok(workspace.target_dir.join("release").join("cvco-sandbox"))
}
