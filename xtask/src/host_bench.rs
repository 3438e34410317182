//! The reference backend's figures: `host_status_rps` and `payment_flow_ms`.

use anyhow::Result;

use crate::bench::Outcome;
use crate::Workspace;

pub fn run(_workspace: &Workspace) -> Result<Outcome> {
    Ok(Outcome::Skipped(
        "not written yet: comes with the reference backend cvco-host".into(),
    ))
}
