//! Embeds the demo and staff pages of `examples/` (back-office, counter, kiosk, storefront, widget
//! playground, shared modules, receipt.css) so the binary serves them without that folder next to
//! it. `examples_dir` (config) still serves them from disk instead, for page development.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

#[path = "src/http/served.rs"]
mod served;

fn main() {
    let manifest =
        PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let examples = manifest.join("../../examples");
    let examples = examples.canonicalize().unwrap_or(examples);
    // A directory here is scanned whole by cargo: a file added, changed or removed anywhere
    // under examples/ re-runs this script (include_bytes! alone would miss new files).
    println!("cargo:rerun-if-changed={}", examples.display());
    println!("cargo:rerun-if-changed=src/http/served.rs");

    let mut files = Vec::new();
    walk(&examples, "", &mut files);
    files.sort();
    let mut out = String::from(
        "/// Embedded `examples/` files: (path under examples/, bytes), sorted by path.\n\
         pub(super) static FILES: &[(&str, &[u8])] = &[\n",
    );
    for (rel, path) in &files {
        writeln!(
            out,
            "    ({rel:?}, include_bytes!({:?})),",
            path.display().to_string()
        )
        .unwrap();
    }
    out.push_str("];\n");
    let dest = PathBuf::from(std::env::var_os("OUT_DIR").expect("OUT_DIR")).join("examples.rs");
    // Unchanged list, unchanged file: no needless rewrite.
    if std::fs::read_to_string(&dest).ok().as_deref() != Some(out.as_str()) {
        std::fs::write(&dest, out).expect("write examples.rs");
    }
}

fn walk(dir: &Path, prefix: &str, files: &mut Vec<(String, PathBuf)>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let Ok(name) = entry.file_name().into_string() else {
            continue; // not UTF-8: no URL names it
        };
        let rel = format!("{prefix}{name}");
        if !served::served(&rel) {
            continue;
        }
        let path = entry.path();
        if path.is_dir() {
            walk(&path, &format!("{rel}/"), files);
        } else if path.is_file() {
            files.push((rel, path));
        }
    }
}
