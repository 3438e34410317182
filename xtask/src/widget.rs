//! The checkout widget: a wasm-bindgen crate turned into an ES module the browser imports.
//! Also the hooks the test suite calls around the browser tests.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use wasm_bindgen_cli_support::Bindgen;

use crate::test::TestCounts;
use crate::{
    ensure_chromium, ensure_rustup_target, human_bytes, reject_args, run, workspace,
    CHROMEDRIVER_BIN, CHROMIUM_BIN, WASM_TARGET,
};

/// One wasm module: the payment QR encoder (crate cvco-widget-qr) is linked in, so a shopper never
/// downloads a second allocator, formatter and wasm-bindgen runtime for it.
pub const PACKAGE: &str = "cvco-widget";
/// Cargo profile of the widget's wasm: `wasm` with opt-level "z" (see the workspace Cargo.toml).
pub const PROFILE: &str = "wasm-widget";
pub const CRATE_DIR: &str = "widget";
/// Where the generated module lands, at the workspace root (git-ignored).
pub const DIST_DIR: &str = "dist/widget";
/// Tests find the generated widget through this variable.
pub const DIST_ENV: &str = "CVCO_WIDGET_DIST";
/// Reference types off for the widget: wasm-bindgen then keeps JS values in a JS-side array rather
/// than an externref table, which makes the download smaller (−0.5 KB brotli: no table shims in the
/// wasm) and lets browsers without reference types run it.
const WASM_RUSTFLAGS: &str =
    "target.wasm32-unknown-unknown.rustflags=[\"-Ctarget-feature=-reference-types\"]";

/// `cargo xtask widget`
pub fn command(args: &[String]) -> Result<()> {
    reject_args(args)?;
    let dist = build()?;
    for entry in std::fs::read_dir(&dist)? {
        let path = entry?.path();
        if path.is_file() {
            let size = std::fs::metadata(&path)?.len();
            println!("{} {}", path.display(), human_bytes(size));
        }
    }
    Ok(())
}

/// Builds the widget wasm and runs wasm-bindgen (target `web`) into dist/widget/.
pub fn build() -> Result<PathBuf> {
    let workspace = workspace()?;
    ensure_rustup_target(WASM_TARGET)?;
    let artifacts = workspace.build(&[
        "-p",
        PACKAGE,
        "--target",
        WASM_TARGET,
        "--profile",
        PROFILE,
        "--config",
        WASM_RUSTFLAGS,
    ])?;
    let wasm = crate::plugin::cdylib_wasm(&artifacts, PACKAGE)?;
    let dist = workspace.root.join(DIST_DIR);
    // Stale files from an older build must not be served next to the new module.
    if dist.exists() {
        std::fs::remove_dir_all(&dist).with_context(|| format!("cleaning {}", dist.display()))?;
    }
    std::fs::create_dir_all(&dist)?;
    eprintln!(
        "$ wasm-bindgen --target web --remove-name-section --remove-producers-section \
         --out-dir {DIST_DIR} {}",
        wasm.display()
    );
    Bindgen::new()
        .input_path(&wasm)
        .web(true)?
        .typescript(true)
        // What a browser never reads: function names, the toolchain's producers record.
        .remove_name_section(true)
        .remove_producers_section(true)
        .generate(&dist)
        .with_context(|| format!("wasm-bindgen on {}", wasm.display()))?;
    let glue = dist.join("cvco_widget.js");
    let text = std::fs::read_to_string(&glue)?;
    std::fs::write(&glue, strip_js_comments(&text))?;
    copy_package_files(&workspace.root.join(CRATE_DIR), &dist)?;
    Ok(dist)
}

/// The hand-written half of the npm package: the custom element entry, its types, the stylesheet,
/// the lazily loaded camera scanner, package.json and the README.
const PACKAGE_FILES: &[&str] = &[
    "js/cvco-checkout.js",
    "js/cvco-checkout.d.ts",
    "js/cvco-checkout.css",
    "js/cvco-scan-lazy.js",
    "js/package.json",
    "README.md",
];

/// Copies the hand-written files; the JS and CSS a page downloads lose their comments and
/// indentation on the way (the sources in widget/js/ keep them).
fn copy_package_files(crate_dir: &std::path::Path, dist: &std::path::Path) -> Result<()> {
    for file in PACKAGE_FILES {
        let from = crate_dir.join(file);
        let name = from.file_name().context("package file name")?;
        let to = dist.join(name);
        let context = || format!("copying {} into {}", from.display(), dist.display());
        if file.ends_with(".js") || file.ends_with(".css") {
            let text = std::fs::read_to_string(&from).with_context(context)?;
            let shipped = if file.ends_with(".css") {
                minify_css(&text)
            } else {
                strip_js_comments(&text)
            };
            std::fs::write(&to, shipped).with_context(context)?;
        } else {
            std::fs::copy(&from, &to).with_context(context)?;
        }
    }
    Ok(())
}

/// JS without its comment lines (`// …` lines and `/* … */` blocks that start a line and end one)
/// and without indentation. Comments after code stay: only whole lines are dropped, so strings are
/// never cut; `/* @…` directives (`@ts-self-types`) stay too.
fn strip_js_comments(js: &str) -> String {
    let mut out = String::with_capacity(js.len());
    let mut in_block = false;
    for line in js.lines() {
        let code = line.trim_start();
        if in_block {
            in_block = !code.contains("*/");
            continue;
        }
        if code.starts_with("/*") && !code.starts_with("/* @") {
            match code.find("*/") {
                None => in_block = true,
                Some(end) if code[end + 2..].trim().is_empty() => {}
                Some(_) => {
                    out.push_str(code);
                    out.push('\n');
                }
            }
            continue;
        }
        if code.is_empty() || code.starts_with("//") {
            continue;
        }
        out.push_str(code);
        out.push('\n');
    }
    out
}

/// CSS without comments and with whitespace collapsed: runs become one space, none around `{`,
/// `}` and `;` (never around `:` or `,`: `a :focus` and `a:focus` differ).
fn minify_css(css: &str) -> String {
    let mut text = String::with_capacity(css.len());
    let mut rest = css;
    while let Some(start) = rest.find("/*") {
        text.push_str(&rest[..start]);
        rest = rest[start..]
            .find("*/")
            .map_or("", |end| &rest[start + end + 2..]);
    }
    text.push_str(rest);
    let mut out = String::with_capacity(text.len());
    for word in text.split_whitespace() {
        let glued = out.ends_with(['{', '}', ';']) || word.starts_with(['{', '}', ';']);
        if !out.is_empty() && !glued {
            out.push(' ');
        }
        out.push_str(word);
    }
    out.push('\n');
    out
}

/// Runs before the workspace tests: what the browser tests need on disk and on the machine.
/// Returns the environment to export to the test processes.
pub fn prepare_browser_tests() -> Result<Vec<(&'static str, PathBuf)>> {
    let dist = build()?;
    ensure_chromium()?;
    Ok(vec![
        (DIST_ENV, dist),
        ("CVCO_CHROMIUM", PathBuf::from(CHROMIUM_BIN)),
        ("CVCO_CHROMEDRIVER", PathBuf::from(CHROMEDRIVER_BIN)),
    ])
}

/// wasm-bindgen of the widget, its CLI support in xtask and the test runner: one version.
pub const WASM_BINDGEN_VERSION: &str = "0.2.130";
/// Chromium's options for wasm-bindgen-test-runner (it adds headless and no-sandbox itself).
const WEBDRIVER_JSON: &str = "widget/webdriver.json";

/// Runs after the workspace tests: the widget's DOM unit tests
/// (`wasm-bindgen-test`, widget/src/web_tests.rs) in headless Chromium through
/// wasm-bindgen-test-runner. The end-to-end browser tests (tests/browser) are a workspace member
/// and already ran with the others.
pub fn browser_tests() -> Result<TestCounts> {
    let workspace = workspace()?;
    ensure_chromium()?;
    let runner = ensure_test_runner()?;
    let mut tests = workspace.cargo(["test", "-p", PACKAGE, "--lib", "--target", WASM_TARGET]);
    tests
        .env("CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER", &runner)
        .env("CHROMEDRIVER", CHROMEDRIVER_BIN)
        .env(
            "WASM_BINDGEN_TEST_WEBDRIVER_JSON",
            workspace.root.join(WEBDRIVER_JSON),
        );
    let (result, counts) = crate::test::run_counting(&mut tests);
    match (result, counts) {
        (_, Some(counts)) if counts.failed > 0 => Ok(counts),
        (Ok(()), Some(counts)) => Ok(counts),
        (Ok(()), None) => bail!("the widget's wasm tests reported no count"),
        (Err(error), _) => Err(error),
    }
}

/// `wasm-bindgen-test-runner` of [`WASM_BINDGEN_VERSION`], built from crates.io once into
/// `$HOME/.cache/cvco/tools` (no binary download; a few minutes cold).
fn ensure_test_runner() -> Result<PathBuf> {
    let home = std::env::var_os("HOME").context("HOME is not set")?;
    let root = PathBuf::from(home).join(".cache/cvco/tools");
    let runner = root.join("bin/wasm-bindgen-test-runner");
    let version = std::process::Command::new(&runner)
        .arg("--version")
        .output()
        .map(|out| String::from_utf8_lossy(&out.stdout).into_owned())
        .unwrap_or_default();
    if version
        .split_whitespace()
        .any(|word| word == WASM_BINDGEN_VERSION)
    {
        return Ok(runner);
    }
    run(workspace()?
        .cargo([
            "install",
            "wasm-bindgen-cli",
            "--bin",
            "wasm-bindgen-test-runner",
        ])
        .arg("--version")
        .arg(format!("={WASM_BINDGEN_VERSION}"))
        .arg("--root")
        .arg(&root))?;
    Ok(runner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_wasm_bindgen_version_everywhere() {
        let root = workspace().unwrap().root.clone();
        let pin = format!("\"={WASM_BINDGEN_VERSION}\"");
        for (file, dependency) in [
            ("xtask/Cargo.toml", "wasm-bindgen-cli-support"),
            ("widget/Cargo.toml", "wasm-bindgen"),
        ] {
            let manifest = std::fs::read_to_string(root.join(file)).unwrap();
            let line = manifest
                .lines()
                .find(|line| line.starts_with(&format!("{dependency} =")))
                .unwrap_or_else(|| panic!("{file} has no {dependency}"));
            assert!(line.contains(&pin), "{file}: {line}");
        }
    }

    #[test]
    fn shipped_js_loses_comment_lines_and_indentation_only() {
        let js = "/* @ts-self-types=\"./x.d.ts\" */\n// header\n/**\n * Docs.\n */\n\
                  export function f(a) {\n  /* one line */\n  /* kept */ a += 1;\n  \
                  const url = 'http://x/'; // kept: after code\n\n  return a * 2;\n}\n";
        assert_eq!(
            strip_js_comments(js),
            "/* @ts-self-types=\"./x.d.ts\" */\nexport function f(a) {\n/* kept */ a += 1;\n\
             const url = 'http://x/'; // kept: after code\nreturn a * 2;\n}\n"
        );
    }

    #[test]
    fn shipped_css_loses_comments_and_spare_whitespace() {
        let css = "/* theme */\n:host {\n  font-family: var(--f, 'Segoe UI', sans-serif);\n}\n\
                   .a :focus,\n.b > .c {\n  gap: calc(var(--s) * 0.75); /* half */\n  color: red;\n}\n";
        assert_eq!(
            minify_css(css),
            ":host{font-family: var(--f, 'Segoe UI', sans-serif);}\
             .a :focus, .b > .c{gap: calc(var(--s) * 0.75);color: red;}\n"
        );
    }

    #[test]
    fn the_shipped_stylesheet_keeps_every_rule() {
        let source = include_str!("../../widget/js/cvco-checkout.css");
        let shipped = minify_css(source);
        assert_eq!(source.matches('{').count(), shipped.matches('{').count());
        assert!(!shipped.contains("/*"));
    }
}
