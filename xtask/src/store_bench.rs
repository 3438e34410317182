//! `transactions_page_p95_ms_sqlite` and `transactions_page_p95_ms_postgres`: the back-office
//! transactions page over 1,000,000 stored payments, read through cvco-host's own store
//! (`Store::transactions`, its migrations' schema and indexes) by the `store-bench` example. Release,
//! as a deployment runs it: the figure is the store's SQL and the database engine, which the dev
//! profile's unoptimised SQLite would slow several times.

use anyhow::Result;

use crate::bench::{run_bench_binary, Figure};
use crate::{postgres, Workspace};

const PACKAGE: &str = "cvco-host";
const BIN: &str = "store-bench";

pub fn sqlite(workspace: &Workspace) -> Result<Vec<Figure>> {
    let mut command = workspace.cargo(["run", "--release", "-q", "-p", PACKAGE, "--example", BIN]);
    run_bench_binary(BIN, &mut command)
}

/// The same pages on a throwaway PostgreSQL cluster (the example's `--database postgres://…`).
pub fn postgres(workspace: &Workspace) -> Result<Vec<Figure>> {
    let cluster = postgres::start(workspace)?;
    let mut command = workspace.cargo(["run", "--release", "-q", "-p", PACKAGE, "--example", BIN]);
    command.args(["--", "--database", &cluster.url()]);
    let figures = run_bench_binary(BIN, &mut command);
    cluster.stop()?;
    figures
}
