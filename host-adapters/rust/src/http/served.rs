//! Which files of `examples/` cvco-host serves: shared by build.rs (what it embeds) and
//! assets.rs (what it serves from an `examples_dir` override), so both serve the same set.

/// `rel`: a path under `examples/`, `/`-separated, without `.` or `..` components.
pub fn served(rel: &str) -> bool {
    let mut parts = rel.split('/');
    // smoke/ is the Chromium click-through (node), never loaded by a page.
    parts.next().is_some_and(|top| top != "smoke" && !top.starts_with('.'))
        && parts.all(|c| !c.starts_with('.'))
        // Node unit tests of the shared modules (`cargo xtask test` runs them).
        && !rel.ends_with(".test.mjs")
}
