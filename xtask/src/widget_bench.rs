//! The widget's figures in headless Chromium: first render and live-status latency.

use anyhow::Result;

use crate::bench::Outcome;
use crate::Workspace;

pub fn run(_workspace: &Workspace) -> Result<Outcome> {
    Ok(Outcome::Skipped(
        "not written yet: comes with the widget browser tests".into(),
    ))
}
