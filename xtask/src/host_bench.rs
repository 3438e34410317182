//! The reference backend's figures: `host_status_rps` and `payment_flow_ms`, measured by the
//! `host-bench` example of cvco-host (sandbox and host in-process, dev profile like the tests).

use anyhow::Result;

use crate::bench::{run_bench_binary, Figure};
use crate::{plugin, Workspace};

pub fn run(workspace: &Workspace) -> Result<Vec<Figure>> {
    const PACKAGE: &str = "cvco-host";
    const BIN: &str = "host-bench";
    let wasm = plugin::build()?;
    let mut command = workspace.cargo(["run", "-p", PACKAGE, "--example", BIN]);
    command.env(plugin::WASM_ENV, &wasm);
    run_bench_binary(BIN, &mut command)
}
