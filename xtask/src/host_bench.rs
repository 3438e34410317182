//! The reference backend's figures: `host_status_rps` and `payment_flow_ms`, then
//! `host_status_rps_postgres` and `cross_instance_status_p95_ms` (two instances on a throwaway
//! PostgreSQL started here), measured by the `host-bench` example of cvco-host (sandbox and hosts
//! in-process, dev profile like the tests).

use anyhow::Result;

use crate::bench::{run_bench_binary, Figure};
use crate::{plugin, postgres, Workspace};

pub fn run(workspace: &Workspace) -> Result<Vec<Figure>> {
    const PACKAGE: &str = "cvco-host";
    const BIN: &str = "host-bench";
    let wasm = plugin::build()?;
    // Kept running until the example is done; stopped (and deleted) when dropped.
    let pg = postgres::start(workspace)?;
    let mut command = workspace.cargo(["run", "-p", PACKAGE, "--example", BIN]);
    command.env(plugin::WASM_ENV, &wasm);
    command.env(postgres::URL_ENV, pg.url());
    run_bench_binary(BIN, &mut command)
}
