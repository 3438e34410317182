//! The pretix adapter's own test suite inside the real platform (host-adapters/pretix/).
//! `None`: nothing to run yet.

use std::path::PathBuf;

use anyhow::Result;

use crate::test::TestCounts;

/// `env`: what the workspace tests got (the plugin's path under `CVCO_PLUGIN_WASM`, …).
pub fn tests(_env: &[(&str, PathBuf)]) -> Result<Option<TestCounts>> {
    Ok(None)
}
