//! The pages of `examples/` are in the binary: a host started with no `examples_dir`, away from
//! the workspace, serves the back-office, the shared modules and receipt.css with their content
//! types and headers; `examples_dir` serves them from disk instead; neither lets a path out.

mod common;
use common::*;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

fn examples() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples")
}

/// The binary, started from `cwd` with none of the caller's CVCO_* settings: demo mode against
/// the real sandbox, no `examples_dir`.
struct Binary(Child, String);

impl Binary {
    fn start(cwd: &std::path::Path, sandbox_url: &str) -> Binary {
        let mut c = Command::new(env!("CARGO_BIN_EXE_cvco-host"));
        for (k, _) in std::env::vars_os() {
            if k.to_string_lossy().starts_with("CVCO_") {
                c.env_remove(k);
            }
        }
        let mut child = c
            .current_dir(cwd)
            .env(
                "CVCO_HOST_PLUGIN",
                cvco_test_host::plugin_path().expect("plugin"),
            )
            .env("CVCO_HOST_API_BASE_URL", sandbox_url)
            .env("CVCO_HOST_ARGON2_M_KIB", "1024")
            .args(["--demo", "--port", "0"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("cvco-host");
        let mut first = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut first)
            .unwrap();
        let base = first
            .trim()
            .strip_prefix("cvco-host listening on ")
            .unwrap_or_else(|| panic!("no start: {first:?}"))
            .to_string();
        Binary(child, base)
    }
}

impl Drop for Binary {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A GET sent byte for byte (reqwest would resolve `..` before sending); (status, body).
fn raw_get(base: &str, target: &str) -> (u16, String) {
    let addr = base.trim_start_matches("http://");
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    write!(
        s,
        "GET {target} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let status = out
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, out)
}

async fn get(base: &str, path: &str) -> reqwest::Response {
    reqwest::get(format!("{base}{path}")).await.unwrap()
}

fn header(r: &reqwest::Response, name: &str) -> String {
    r.headers()
        .get(name)
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default()
}

/// Traversal attempts that would reach `file` (a path relative to the folder above the one
/// served) if `..` got through, sent unresolved.
fn escapes(file: &str) -> Vec<String> {
    let encoded = file.replace('/', "%2f");
    vec![
        format!("/examples/../{file}"),
        format!("/examples/..%2f{encoded}"),
        format!("/examples/shared/..%2f..%2f{encoded}"),
        format!("/examples/%2e%2e/{file}"),
        format!("/examples/..%5c{}", file.replace('/', "%5c")),
        format!("/examples/./../{file}"),
    ]
}

/// Refused with the HTML 404 page, and nothing of `secret` in the answer.
fn assert_refused(base: &str, target: &str, secret: &str) {
    let (status, body) = raw_get(base, target);
    assert_eq!(status, 404, "{target}: {body}");
    assert!(
        body.contains("Page introuvable / Page not found"),
        "{target}: {body}"
    );
    assert!(!body.contains(secret), "{target} leaked a file: {body}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_binary_serves_its_pages_from_itself_whatever_its_working_directory() {
    let sandbox = cvco_sandbox::spawn(cvco_sandbox::SandboxConfig::default())
        .await
        .expect("sandbox");
    // A working directory with no examples/ in it (nor above it).
    let cwd = std::env::temp_dir().join(format!("cvco-host-assets-{}", std::process::id()));
    std::fs::create_dir_all(&cwd).unwrap();
    let host = Binary::start(&cwd, &sandbox.base_url);
    let base = host.1.clone();

    let r = get(&base, "/back-office").await;
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "content-type"), "text/html; charset=utf-8");
    assert_eq!(header(&r, "content-security-policy"), cvco_host::http::CSP);
    assert_eq!(header(&r, "cache-control"), "no-cache");
    assert_eq!(header(&r, "x-content-type-options"), "nosniff");
    let html = r.text().await.unwrap();
    assert_eq!(
        html,
        std::fs::read_to_string(examples().join("back-office/index.html")).unwrap()
    );

    for (path, content_type) in [
        ("shared/api.js", "text/javascript; charset=utf-8"),
        (
            "back-office/views/payment.js",
            "text/javascript; charset=utf-8",
        ),
        ("receipt.css", "text/css; charset=utf-8"),
        ("shared/favicon.svg", "image/svg+xml"),
        ("counter/index.html", "text/html; charset=utf-8"),
    ] {
        let r = get(&base, &format!("/examples/{path}")).await;
        assert_eq!(r.status(), 200, "{path}");
        assert_eq!(header(&r, "content-type"), content_type, "{path}");
        assert_eq!(header(&r, "cache-control"), "no-cache", "{path}");
        assert_eq!(
            r.bytes().await.unwrap().as_ref(),
            std::fs::read(examples().join(path)).unwrap(),
            "{path}: not the file of examples/"
        );
    }
    // A folder serves its index.html, as it does from disk.
    let r = get(&base, "/examples/counter/").await;
    assert_eq!(r.status(), 200);
    assert!(r
        .text()
        .await
        .unwrap()
        .contains("/examples/counter/counter.js"));

    // Not served: the node click-through, the node unit tests, files that do not exist.
    for path in [
        "/examples/smoke/run.sh",
        "/examples/shared/money.test.mjs",
        "/examples/shared/none.js",
        "/examples/",
    ] {
        let r = get(&base, path).await;
        assert_eq!(r.status(), 404, "{path}");
        assert_eq!(header(&r, "content-type"), "text/html; charset=utf-8");
        assert!(
            r.text().await.unwrap().contains("Page introuvable"),
            "{path}"
        );
    }
    // From the workspace's examples/ (where a regression to disk would look), ../ is the root.
    for target in escapes("host-adapters/rust/Cargo.toml") {
        assert_refused(&base, &target, "[package]");
    }
    drop(host);
    let _ = std::fs::remove_dir_all(&cwd);
}

#[tokio::test(flavor = "multi_thread")]
async fn examples_dir_serves_the_pages_from_that_folder_instead_of_the_binary() {
    let root = std::env::temp_dir().join(format!("cvco-host-pages-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let dir = root.join("examples");
    // Beside the folder served: what a traversal would be after.
    std::fs::create_dir_all(&root).unwrap();
    std::fs::write(root.join("secret.txt"), "client_secret = s3cr3t").unwrap();
    for sub in ["back-office", "shared", "smoke"] {
        std::fs::create_dir_all(dir.join(sub)).unwrap();
    }
    std::fs::write(dir.join("back-office/index.html"), "<p>page en cours</p>").unwrap();
    std::fs::write(dir.join("shared/new-module.js"), "export const x = 1;\n").unwrap();
    std::fs::write(dir.join("smoke/run.sh"), "#!/bin/sh\n").unwrap();
    let env = env_with(|c| c.examples_dir = Some(dir.clone())).await;

    let r = get(&env.base, "/back-office").await;
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "content-type"), "text/html; charset=utf-8");
    assert_eq!(header(&r, "content-security-policy"), cvco_host::http::CSP);
    assert_eq!(r.text().await.unwrap(), "<p>page en cours</p>");
    let r = get(&env.base, "/examples/shared/new-module.js").await;
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "content-type"), "text/javascript; charset=utf-8");
    assert_eq!(r.text().await.unwrap(), "export const x = 1;\n");
    // The folder wins whole: what it lacks is not taken from the binary.
    assert_eq!(get(&env.base, "/examples/receipt.css").await.status(), 404);
    for target in escapes("secret.txt") {
        assert_refused(&env.base, &target, "s3cr3t");
    }
    // The same files are out of reach as from the binary.
    assert_eq!(get(&env.base, "/examples/smoke/run.sh").await.status(), 404);
    let _ = std::fs::remove_dir_all(&root);
}
