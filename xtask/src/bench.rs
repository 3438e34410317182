//! `cargo xtask bench`: one line per figure, `name value unit`, then the bar and PASS/FAIL when the
//! project has set one. A bench whose binary does not exist yet prints `name - - SKIPPED (reason)`.
//!
//! To add a bench: a [`Bench`] entry in [`REGISTRY`] (and its bars in [`BARS`]).

use std::io::Write;
use std::process::Stdio;

use anyhow::{bail, Context, Result};

use crate::{
    describe, host_bench, plugin, reject_args, store_bench, tenants_bench, widget, widget_bench,
    workspace, Workspace,
};

/// A figure's limit. Values are compared as numbers; the bar is printed as `bar<=N` or `bar<N`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Bar {
    AtMost(f64),
    LessThan(f64),
    AtLeast(f64),
}

impl Bar {
    pub fn passes(self, value: f64) -> bool {
        match self {
            Bar::AtMost(limit) => value <= limit,
            Bar::LessThan(limit) => value < limit,
            Bar::AtLeast(limit) => value >= limit,
        }
    }

    pub fn label(self) -> String {
        match self {
            Bar::AtMost(limit) => format!("bar<={}", number(limit)),
            Bar::LessThan(limit) => format!("bar<{}", number(limit)),
            Bar::AtLeast(limit) => format!("bar>={}", number(limit)),
        }
    }
}

fn number(value: f64) -> String {
    if value.fract() == 0.0 && value.abs() < 1e15 {
        format!("{}", value as i64)
    } else {
        format!("{value}")
    }
}

/// Bars by figure name; a trailing `*` matches any suffix.
pub const BARS: &[(&str, Bar)] = &[
    ("plugin_wasm_bytes", Bar::AtMost(400.0 * 1024.0)),
    ("plugin_call_us_*", Bar::LessThan(50.0)),
    // The whole download a storefront pays for: wasm + JS glue + CSS, QR encoder included; only the
    // camera scanner for browsers with BarcodeDetector loads lazily outside the bar (issue: widget).
    ("widget_brotli_bytes", Bar::AtMost(45_000.0)),
    ("widget_first_render_ms", Bar::LessThan(50.0)),
    ("live_status_p95_ms", Bar::LessThan(300.0)),
    ("host_status_rps", Bar::AtLeast(3_000.0)),
    // Issue 12: two instances on one PostgreSQL.
    ("host_status_rps_postgres", Bar::AtLeast(3_000.0)),
    ("cross_instance_status_p95_ms", Bar::AtMost(300.0)),
    ("payment_flow_ms", Bar::LessThan(50.0)),
    // Issue 12: the back-office list over 1,000,000 payments, one host serving 1,000 merchants.
    ("transactions_page_p95_ms_*", Bar::AtMost(50.0)),
    ("tenants_rss_mib", Bar::AtMost(512.0)),
    // The figure at the host level: one cvco-host, 1,000 merchants each paid once.
    ("tenants_host_rss_mib", Bar::AtMost(512.0)),
];

pub fn name_matches(pattern: &str, name: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => name.starts_with(prefix),
        None => pattern == name,
    }
}

pub fn bar_for(name: &str) -> Option<Bar> {
    BARS.iter()
        .find(|(pattern, _)| name_matches(pattern, name))
        .map(|(_, bar)| *bar)
}

/// One measured figure as a bench reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct Figure {
    pub name: String,
    pub value: String,
    pub unit: String,
}

impl Figure {
    pub fn new(name: &str, value: impl ToString, unit: &str) -> Self {
        Figure {
            name: name.to_owned(),
            value: value.to_string(),
            unit: unit.to_owned(),
        }
    }

    /// Reads a `name value unit` line as bench binaries print them; anything else is `None`.
    pub fn parse(line: &str) -> Option<Self> {
        let mut words = line.split_whitespace();
        let (name, value, unit) = (words.next()?, words.next()?, words.next()?);
        let well_formed = words.next().is_none()
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
            && value.parse::<f64>().is_ok();
        well_formed.then(|| Figure::new(name, value, unit))
    }
}

/// A report line and whether it is a failure.
pub fn measured_line(figure: &Figure) -> (String, bool) {
    let base = format!("{} {} {}", figure.name, figure.value, figure.unit);
    let Some(bar) = bar_for(&figure.name) else {
        return (base, false);
    };
    match figure.value.parse::<f64>() {
        Ok(value) if bar.passes(value) => (format!("{base} {} PASS", bar.label()), false),
        Ok(_) => (format!("{base} {} FAIL", bar.label()), true),
        Err(_) => (format!("{base} {} FAIL (not a number)", bar.label()), true),
    }
}

pub fn failed_line(name: &str, reason: &str) -> String {
    format!("{name} - - FAIL ({reason})")
}

pub struct Bench {
    /// The figures this bench promises (patterns allowed); a promised figure with a bar that the
    /// bench did not report is a failure, so a silently dropped measurement cannot pass.
    pub figures: &'static [&'static str],
    /// Every bench runs: a missing binary or widget is an error, never a skipped figure.
    pub run: fn(&Workspace) -> Result<Vec<Figure>>,
}

pub const REGISTRY: &[Bench] = &[
    Bench {
        figures: &[
            "plugin_wasm_bytes",
            "plugin_instantiate_us",
            "plugin_call_us_validate_beneficiary",
            "plugin_call_us_verify_notification",
            "plugin_call_us_parse_request",
            "plugin_call_us_checkout",
            "plugin_call_us_render_payment",
        ],
        run: plugin_bench,
    },
    Bench {
        figures: &[
            "widget_wasm_bytes",
            "widget_wasm_gzip_bytes",
            "widget_wasm_brotli_bytes",
            "widget_js_brotli_bytes",
            "widget_css_brotli_bytes",
            "widget_gzip_bytes",
            "widget_brotli_bytes",
        ],
        run: widget_size,
    },
    Bench {
        figures: &[
            "widget_first_render_ms",
            "live_status_p50_ms",
            "live_status_p95_ms",
        ],
        run: widget_bench::run,
    },
    Bench {
        figures: &[
            "host_status_rps",
            "payment_flow_ms",
            "host_status_rps_postgres",
            "cross_instance_status_p95_ms",
        ],
        run: host_bench::run,
    },
    Bench {
        figures: &["transactions_page_p95_ms_sqlite"],
        run: store_bench::sqlite,
    },
    Bench {
        figures: &["transactions_page_p95_ms_postgres"],
        run: store_bench::postgres,
    },
    Bench {
        figures: &["tenants_rss_mib"],
        run: tenants_bench::run,
    },
    Bench {
        figures: &["tenants_host_rss_mib"],
        run: tenants_bench::host,
    },
];

/// `cargo xtask bench`
pub fn command(args: &[String]) -> Result<()> {
    reject_args(args)?;
    let workspace = workspace()?;
    let mut failures = 0;
    for bench in REGISTRY {
        let lines = match (bench.run)(workspace) {
            Ok(figures) => report(bench, &figures),
            Err(error) => bench
                .figures
                .iter()
                .map(|name| (failed_line(name, &format!("{error:#}")), true))
                .collect(),
        };
        for (line, failed) in lines {
            println!("{line}");
            failures += usize::from(failed);
        }
        std::io::stdout().flush()?;
    }
    if failures > 0 {
        bail!("{failures} figure(s) failed");
    }
    Ok(())
}

/// The lines for what a bench measured, plus a failure for each promised figure with a bar that
/// is missing from its output.
pub fn report(bench: &Bench, figures: &[Figure]) -> Vec<(String, bool)> {
    let mut lines: Vec<(String, bool)> = figures.iter().map(measured_line).collect();
    for promised in bench.figures {
        let reported = figures.iter().any(|f| name_matches(promised, &f.name));
        if !reported && bar_for(promised).is_some() {
            lines.push((failed_line(promised, "not reported by the bench"), true));
        }
    }
    lines
}

/// The plugin's figures from the test host's `plugin-bench`, built in release: the bar is about the
/// plugin call as a merchant's host runs it, and the dev profile measures wasmtime's own debug
/// assertions instead (≈ 170 µs dev vs ≈ 12 µs release for `validate_beneficiary`). A cold
/// release build of extism/wasmtime takes ~17 min on 2 cores; later runs are incremental.
fn plugin_bench(workspace: &Workspace) -> Result<Vec<Figure>> {
    const PACKAGE: &str = "cvco-test-host";
    const BIN: &str = "plugin-bench";
    let wasm = plugin::build()?;
    let mut command = workspace.cargo(["run", "--release", "-p", PACKAGE, "--bin", BIN]);
    command.env(plugin::WASM_ENV, &wasm);
    run_bench_binary(BIN, &mut command)
}

/// Runs a bench binary that prints `name value unit` lines; its other lines are context for a
/// person (relayed on stderr), and a failed run is an error, not a report.
pub fn run_bench_binary(bin: &str, command: &mut std::process::Command) -> Result<Vec<Figure>> {
    command.stdout(Stdio::piped()).stderr(Stdio::inherit());
    let line = describe(command);
    eprintln!("$ {line}");
    let output = command
        .output()
        .with_context(|| format!("could not start `{line}`"))?;
    if !output.status.success() {
        bail!("{bin} exited with {}", output.status);
    }
    let mut figures = Vec::new();
    for line in String::from_utf8_lossy(&output.stdout).lines() {
        match Figure::parse(line) {
            Some(figure) => figures.push(figure),
            None if !line.trim().is_empty() => eprintln!("{bin}: {line}"),
            None => {}
        }
    }
    Ok(figures)
}

/// Sizes of the generated widget as a browser downloads it: raw, gzip -9 and brotli q11, each file
/// compressed on its own as a static server precompresses it, summed over every file a checkout page
/// may download ([`widget_downloads`]), then by kind (wasm, JS, CSS).
fn widget_size(_workspace: &Workspace) -> Result<Vec<Figure>> {
    let dist = widget::build()?;
    let [mut wasm, mut js, mut css, mut total] = [Sizes::default(); 4];
    let mut files = Vec::new();
    list_files(&dist, &mut files)?;
    files.sort();
    for path in files {
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        if !widget_downloads(&name) {
            continue;
        }
        let sizes = Sizes::of(&std::fs::read(&path)?)?;
        eprintln!(
            "widget file {}: {} B, gzip {} B, brotli {} B",
            path.strip_prefix(&dist).unwrap_or(&path).display(),
            sizes.raw,
            sizes.gzip,
            sizes.brotli
        );
        total.add(sizes);
        let kind: &mut Sizes = if name.ends_with(".wasm") {
            &mut wasm
        } else if name.ends_with(".css") {
            &mut css
        } else {
            &mut js
        };
        kind.add(sizes);
    }
    if wasm.raw == 0 {
        bail!("no .wasm in {}", dist.display());
    }
    Ok(vec![
        Figure::new("widget_wasm_bytes", wasm.raw, "B"),
        Figure::new("widget_wasm_gzip_bytes", wasm.gzip, "B"),
        Figure::new("widget_wasm_brotli_bytes", wasm.brotli, "B"),
        Figure::new("widget_js_brotli_bytes", js.brotli, "B"),
        Figure::new("widget_css_brotli_bytes", css.brotli, "B"),
        Figure::new("widget_gzip_bytes", total.gzip, "B"),
        Figure::new("widget_brotli_bytes", total.brotli, "B"),
    ])
}

/// Whether a shopper's browser may download this file of dist/widget/ for the widget: every wasm
/// module, JS module and stylesheet, whether loaded at once or on first use (QR code included), except
/// the camera scanner for browsers with BarcodeDetector, which the issue lets load lazily outside the
/// bar. Not downloaded: the TypeScript declarations, package.json, the README.
fn widget_downloads(name: &str) -> bool {
    const OUTSIDE_THE_BAR: &[&str] = &["cvco-scan-lazy.js"];
    !OUTSIDE_THE_BAR.contains(&name)
        && (name.ends_with(".wasm") || name.ends_with(".css") || name.ends_with(".js"))
}

/// Every file under `dir` (wasm-bindgen may put JS snippets in subdirectories).
fn list_files(dir: &std::path::Path, files: &mut Vec<std::path::PathBuf>) -> Result<()> {
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        if path.is_dir() {
            list_files(&path, files)?;
        } else if path.is_file() {
            files.push(path);
        }
    }
    Ok(())
}

#[derive(Debug, Default, Clone, Copy)]
pub struct Sizes {
    pub raw: u64,
    pub gzip: u64,
    pub brotli: u64,
}

impl Sizes {
    pub fn of(bytes: &[u8]) -> Result<Self> {
        Ok(Sizes {
            raw: bytes.len() as u64,
            gzip: gzip(bytes)?.len() as u64,
            brotli: brotli(bytes)?.len() as u64,
        })
    }

    fn add(&mut self, other: Sizes) {
        self.raw += other.raw;
        self.gzip += other.gzip;
        self.brotli += other.brotli;
    }
}

pub fn gzip(bytes: &[u8]) -> Result<Vec<u8>> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    encoder.write_all(bytes)?;
    Ok(encoder.finish()?)
}

/// Brotli at quality 11 with a 4 MiB window, as static file servers precompress.
pub fn brotli(bytes: &[u8]) -> Result<Vec<u8>> {
    let mut output = Vec::new();
    {
        let mut writer = brotli::CompressorWriter::new(&mut output, 4096, 11, 22);
        writer.write_all(bytes)?;
    }
    Ok(output)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn bars_compare_as_documented() {
        assert!(Bar::AtMost(409_600.0).passes(409_600.0));
        assert!(!Bar::AtMost(409_600.0).passes(409_601.0));
        assert!(Bar::LessThan(50.0).passes(49.9));
        assert!(!Bar::LessThan(50.0).passes(50.0));
        assert_eq!(Bar::AtMost(409_600.0).label(), "bar<=409600");
        assert_eq!(Bar::LessThan(0.5).label(), "bar<0.5");
        assert!(Bar::AtLeast(3_000.0).passes(3_000.0));
        assert!(!Bar::AtLeast(3_000.0).passes(2_999.9));
        assert_eq!(Bar::AtLeast(3_000.0).label(), "bar>=3000");
    }

    #[test]
    fn bars_are_found_by_name_and_pattern() {
        assert_eq!(bar_for("plugin_wasm_bytes"), Some(Bar::AtMost(409_600.0)));
        assert_eq!(
            bar_for("plugin_call_us_verify_notification"),
            Some(Bar::LessThan(50.0))
        );
        assert_eq!(bar_for("plugin_instantiate_us"), None);
        assert_eq!(bar_for("plugin_wasm_bytes_extra"), None);
        assert_eq!(
            bar_for("transactions_page_p95_ms_postgres"),
            Some(Bar::AtMost(50.0))
        );
        assert_eq!(bar_for("tenants_rss_mib"), Some(Bar::AtMost(512.0)));
        assert_eq!(bar_for("tenants_rss_peak_mib"), None);
    }

    #[test]
    fn report_lines_have_the_documented_shape() {
        let line = |name, value| measured_line(&Figure::new(name, value, "B"));
        assert_eq!(
            line("plugin_wasm_bytes", "231456"),
            ("plugin_wasm_bytes 231456 B bar<=409600 PASS".into(), false)
        );
        assert_eq!(
            line("plugin_wasm_bytes", "500000"),
            ("plugin_wasm_bytes 500000 B bar<=409600 FAIL".into(), true)
        );
        assert_eq!(
            measured_line(&Figure::new(
                "plugin_call_us_validate_beneficiary",
                "12.5",
                "us"
            )),
            (
                "plugin_call_us_validate_beneficiary 12.5 us bar<50 PASS".into(),
                false
            )
        );
        assert_eq!(
            line("widget_wasm_bytes", "1000"),
            ("widget_wasm_bytes 1000 B".into(), false)
        );
    }

    #[test]
    fn parses_only_name_value_unit_lines() {
        assert_eq!(
            Figure::parse("plugin_call_us_verify_notification 7.25 us"),
            Some(Figure::new(
                "plugin_call_us_verify_notification",
                "7.25",
                "us"
            ))
        );
        assert_eq!(Figure::parse("profile: dev"), None);
        assert_eq!(Figure::parse("plugin_wasm_bytes many B"), None);
        assert_eq!(Figure::parse("plugin_wasm_bytes 1 B extra"), None);
        assert_eq!(Figure::parse("Plugin 1 B"), None);
    }

    #[test]
    fn a_promised_figure_with_a_bar_cannot_go_missing() {
        let bench = &REGISTRY[0];
        let lines = report(bench, &[Figure::new("plugin_wasm_bytes", 1000, "B")]);
        assert!(lines.contains(&(
            "plugin_call_us_verify_notification - - FAIL (not reported by the bench)".into(),
            true
        )));
        // plugin_instantiate_us has no bar: its absence is not a failure. The five call figures do.
        assert_eq!(lines.iter().filter(|(_, failed)| *failed).count(), 5);
        let complete = report(
            bench,
            &[
                Figure::new("plugin_wasm_bytes", 1000, "B"),
                Figure::new("plugin_call_us_validate_beneficiary", 3, "us"),
                Figure::new("plugin_call_us_verify_notification", 4, "us"),
                Figure::new("plugin_call_us_parse_request", 4, "us"),
                Figure::new("plugin_call_us_checkout", 4, "us"),
                Figure::new("plugin_call_us_render_payment", 4, "us"),
            ],
        );
        assert!(complete.iter().all(|(_, failed)| !failed));
    }

    #[test]
    fn widget_size_counts_every_download_but_the_camera_scanner() {
        for name in [
            "cvco-checkout.js",
            "cvco-checkout.css",
            "cvco_widget.js",
            "cvco_widget_bg.wasm",
            "cvco_qr_lazy.js",
            "cvco_qr_lazy_bg.wasm",
            "inline0.js",
        ] {
            assert!(widget_downloads(name), "{name}");
        }
        for name in [
            "cvco-scan-lazy.js",
            "cvco-checkout.d.ts",
            "cvco_widget_bg.wasm.d.ts",
            "package.json",
            "README.md",
        ] {
            assert!(!widget_downloads(name), "{name}");
        }
    }

    #[test]
    fn compressed_sizes_are_real_compressions() {
        let text = "<cvco-checkout amount-cents=\"12000\"></cvco-checkout>\n".repeat(200);
        let sizes = Sizes::of(text.as_bytes()).unwrap();
        assert_eq!(sizes.raw, text.len() as u64);
        assert!(sizes.gzip < sizes.raw / 10 && sizes.brotli < sizes.raw / 10);

        let mut unzipped = String::new();
        flate2::read::GzDecoder::new(&gzip(text.as_bytes()).unwrap()[..])
            .read_to_string(&mut unzipped)
            .unwrap();
        assert_eq!(unzipped, text);
        let mut unbrotlied = String::new();
        brotli::Decompressor::new(&brotli(text.as_bytes()).unwrap()[..], 4096)
            .read_to_string(&mut unbrotlied)
            .unwrap();
        assert_eq!(unbrotlied, text);
    }
}
