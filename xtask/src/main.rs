//! `cargo xtask <command>`: the build steps cargo alone cannot express (wasm targets, wasm-bindgen,
//! the demo, the whole test suite as CI runs it, the benchmark report).
//!
//! This file holds dispatch and the helpers every command shares; one module per command.

mod bench;
mod demo;
mod examples;
mod exports;
mod fuzz;
mod host_bench;
mod lost_answers;
mod plugin;
mod postgres;
mod pretix;
mod store_bench;
mod suite;
mod tenants_bench;
mod test;
mod vendure;
mod widget;
mod widget_bench;

use std::collections::BTreeSet;
use std::env;
use std::ffi::OsStr;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::sync::OnceLock;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};

/// The only cross target: the plugin and the widget are wasm32-unknown-unknown (no WASI).
pub const WASM_TARGET: &str = "wasm32-unknown-unknown";
/// The size-optimised profile of the workspace for wasm artifacts.
pub const WASM_PROFILE: &str = "wasm";

/// Chromium flags for every browser test: headless, as root, and quiet on a machine whose only
/// network is loopback (without the background-networking flags Chromium floods refused connections).
/// Add `--user-data-dir=` with [`fresh_chromium_profile`] so runs never share state.
#[allow(dead_code)] // Used by the browser tests hook once the widget lands.
pub const CHROMIUM_FLAGS: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--disable-background-networking",
    "--no-first-run",
    "--disable-component-update",
    "--disable-sync",
];
pub const CHROMIUM_BIN: &str = "/usr/bin/chromium";
pub const CHROMEDRIVER_BIN: &str = "/usr/bin/chromedriver";

const HELP: &str = "\
cargo xtask <command> [options]

  demo   [--port-base N]      build and start the demo on 127.0.0.1, print its URLs; Ctrl-C stops it
  test   [--no-lint] [--only CRATE]...
                              the whole suite, exactly what CI runs (.ci/run)
  bench                       one line per figure: name value unit [bar PASS|FAIL]
  fuzz   [--seconds N] [--target NAME]...
                              the cargo-fuzz targets of core/fuzz, N s each (default 30)
  lost-answers [--driver NAME]...
                              the lost-answer matrix (tests/contract/test_lost_answers.py), printed
  gen-exports                 write the plugin's export names for the Python and TypeScript adapters
  plugin                      build cvco_plugin.wasm (profile wasm) and print its path and size
  postgres                    start a throwaway PostgreSQL, print its URL (CVCO_TEST_DATABASE_URL); Ctrl-C stops it
  widget                      build the widget wasm and run wasm-bindgen into dist/widget/
";

fn main() -> ExitCode {
    let args: Vec<String> = env::args().skip(1).collect();
    let (command, rest) = match args.split_first() {
        Some((command, rest)) => (command.as_str(), rest),
        None => ("help", &[][..]),
    };
    let result = match command {
        "demo" => demo::command(rest),
        "test" => test::command(rest),
        "bench" => bench::command(rest),
        "lost-answers" => lost_answers::command(rest),
        "fuzz" => fuzz::command(rest),
        "plugin" => plugin::command(rest),
        "postgres" => postgres::command(rest),
        "gen-exports" => exports::command(rest),
        "widget" => widget::command(rest),
        "help" | "--help" | "-h" => {
            print!("{HELP}");
            Ok(())
        }
        other => Err(anyhow!("unknown command `{other}`\n\n{HELP}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("xtask: error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// Fails on any argument a command did not expect, so a typo never silently runs something else.
pub fn reject_args(args: &[String]) -> Result<()> {
    match args.first() {
        Some(arg) => bail!("unexpected argument `{arg}`\n\n{HELP}"),
        None => Ok(()),
    }
}

/// What `cargo metadata` says about the workspace, read once.
pub struct Workspace {
    pub root: PathBuf,
    /// Honours CARGO_TARGET_DIR and `build.target-dir`, as cargo itself resolves them.
    pub target_dir: PathBuf,
    pub packages: Vec<Package>,
}

pub struct Package {
    pub name: String,
    /// Targets as (kind, name), e.g. ("bin", "plugin-bench"), ("lib", "cvco_core").
    pub targets: Vec<(String, String)>,
}

impl Workspace {
    pub fn package(&self, name: &str) -> Option<&Package> {
        self.packages.iter().find(|package| package.name == name)
    }

    pub fn has_bin(&self, package: &str, bin: &str) -> bool {
        self.package(package).is_some_and(|p| {
            p.targets
                .iter()
                .any(|(kind, name)| kind == "bin" && name == bin)
        })
    }

    pub fn has_lib(&self, package: &str) -> bool {
        self.package(package)
            .is_some_and(|p| p.targets.iter().any(|(kind, _)| kind == "lib"))
    }

    /// Runs `cargo build <args>` and returns the files cargo reports it produced (or found fresh),
    /// read from `--message-format=json`: a file left in the persistent target dir by an older or
    /// renamed target never stands in for the one asked for.
    pub fn build(&self, args: &[&str]) -> Result<Vec<Artifact>> {
        let mut command = self.cargo(["build"]);
        command
            .args(args)
            .arg("--message-format=json-render-diagnostics")
            .stdout(std::process::Stdio::piped());
        let line = describe(&command);
        eprintln!("$ {line}");
        let output = command
            .spawn()
            .and_then(|child| child.wait_with_output())
            .with_context(|| format!("could not start `{line}`"))?;
        if !output.status.success() {
            bail!("`{line}` failed ({})", output.status);
        }
        Ok(parse_artifacts(&String::from_utf8_lossy(&output.stdout)))
    }

    /// Builds one binary of `package` (dev profile) and returns the path cargo reports for it.
    pub fn build_bin(&self, package: &str, bin: &str) -> Result<PathBuf> {
        self.build(&["-p", package, "--bin", bin])?
            .into_iter()
            .find(|a| a.kinds.iter().any(|kind| kind == "bin") && a.name == bin)
            .and_then(|a| a.executable)
            .with_context(|| format!("cargo reported no executable for {package} --bin {bin}"))
    }

    /// A cargo command run from the workspace root, with the cargo that runs us.
    pub fn cargo<I, S>(&self, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut command = Command::new(env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
        command.args(args).current_dir(&self.root);
        command
    }
}

/// One `compiler-artifact` message of cargo: a target and the files built for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Artifact {
    /// The target's name (`cvco-sandbox`, `cvco_plugin`).
    pub name: String,
    pub kinds: Vec<String>,
    pub filenames: Vec<PathBuf>,
    pub executable: Option<PathBuf>,
}

impl Artifact {
    /// The artifact's file with this extension (`wasm`), if cargo produced one.
    pub fn file_with_extension(&self, extension: &str) -> Option<&Path> {
        self.filenames
            .iter()
            .map(PathBuf::as_path)
            .find(|path| path.extension() == Some(OsStr::new(extension)))
    }
}

/// The `compiler-artifact` lines of cargo's JSON messages; other lines are ignored.
pub fn parse_artifacts(json_lines: &str) -> Vec<Artifact> {
    json_lines
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|message| message["reason"] == "compiler-artifact")
        .map(|message| {
            let strings = |value: &serde_json::Value| -> Vec<String> {
                value
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(serde_json::Value::as_str)
                    .map(str::to_owned)
                    .collect()
            };
            Artifact {
                name: message["target"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
                kinds: strings(&message["target"]["kind"]),
                filenames: strings(&message["filenames"])
                    .into_iter()
                    .map(PathBuf::from)
                    .collect(),
                executable: message["executable"].as_str().map(PathBuf::from),
            }
        })
        .collect()
}

pub fn workspace() -> Result<&'static Workspace> {
    static WORKSPACE: OnceLock<Workspace> = OnceLock::new();
    if let Some(workspace) = WORKSPACE.get() {
        return Ok(workspace);
    }
    let workspace = read_workspace()?;
    Ok(WORKSPACE.get_or_init(|| workspace))
}

fn read_workspace() -> Result<Workspace> {
    // `cargo run` gives us our manifest dir at run time; the workspace is its parent.
    let xtask_dir = env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    let manifest = xtask_dir
        .parent()
        .context("xtask has no parent directory")?
        .join("Cargo.toml");
    let output = Command::new(env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
        .args([
            "metadata",
            "--no-deps",
            "--format-version",
            "1",
            "--manifest-path",
        ])
        .arg(&manifest)
        .output()
        .context("running cargo metadata")?;
    if !output.status.success() {
        bail!(
            "cargo metadata failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let metadata: serde_json::Value =
        serde_json::from_slice(&output.stdout).context("parsing cargo metadata")?;
    let text = |value: &serde_json::Value, key: &str| -> Result<String> {
        value[key]
            .as_str()
            .map(str::to_owned)
            .with_context(|| format!("cargo metadata without `{key}`"))
    };
    let packages = metadata["packages"]
        .as_array()
        .context("cargo metadata without packages")?
        .iter()
        .map(|package| {
            let targets = package["targets"]
                .as_array()
                .into_iter()
                .flatten()
                .flat_map(|target| {
                    let name = target["name"].as_str().unwrap_or_default().to_owned();
                    target["kind"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(serde_json::Value::as_str)
                        .map(move |kind| (kind.to_owned(), name.clone()))
                        .collect::<Vec<_>>()
                })
                .collect();
            Ok(Package {
                name: text(package, "name")?,
                targets,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Workspace {
        root: PathBuf::from(text(&metadata, "workspace_root")?),
        target_dir: PathBuf::from(text(&metadata, "target_directory")?),
        packages,
    })
}

/// Shell-like rendering of a command for the echo line.
pub fn describe(command: &Command) -> String {
    let mut parts: Vec<String> = command
        .get_envs()
        .filter_map(|(key, value)| {
            value.map(|value| format!("{}={}", key.to_string_lossy(), value.to_string_lossy()))
        })
        .collect();
    let program = Path::new(command.get_program());
    // The toolchain's full path to cargo says nothing a reader needs.
    if program.file_name() == Some(OsStr::new("cargo")) {
        parts.push("cargo".to_owned());
    } else {
        parts.push(program.to_string_lossy().into_owned());
    }
    parts.extend(command.get_args().map(|arg| {
        let arg = arg.to_string_lossy();
        if arg.is_empty() || arg.contains(char::is_whitespace) {
            format!("'{arg}'")
        } else {
            arg.into_owned()
        }
    }));
    parts.join(" ")
}

/// Runs a command in the foreground after echoing it; a non-zero exit is an error naming it.
pub fn run(command: &mut Command) -> Result<()> {
    let line = describe(command);
    eprintln!("$ {line}");
    let status = command
        .status()
        .with_context(|| format!("could not start `{line}`"))?;
    if !status.success() {
        bail!("`{line}` failed ({status})");
    }
    Ok(())
}

/// Whether a program can be started (`--version` answers).
pub fn has_program(program: &str, args: &[&str]) -> bool {
    Command::new(program)
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

/// Installs a rustup target when it is missing (a fresh machine has only the host target).
pub fn ensure_rustup_target(target: &str) -> Result<()> {
    let installed = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output();
    match installed {
        Ok(output) if output.status.success() => {
            if String::from_utf8_lossy(&output.stdout)
                .lines()
                .any(|line| line.trim() == target)
            {
                return Ok(());
            }
            run(Command::new("rustup").args(["target", "add", target]))
        }
        // No rustup: accept a toolchain that already ships the target's standard library.
        _ => {
            let sysroot = Command::new("rustc")
                .args(["--print", "sysroot"])
                .output()
                .context("neither rustup nor rustc could be run")?;
            let sysroot = PathBuf::from(String::from_utf8_lossy(&sysroot.stdout).trim());
            if sysroot.join("lib/rustlib").join(target).is_dir() {
                Ok(())
            } else {
                bail!("target {target} is missing and rustup is not available to add it")
            }
        }
    }
}

/// Installs Debian packages whose files are missing. `wanted` pairs a file the package provides
/// with the package name; nothing runs when every file is there.
pub fn ensure_debian_packages(wanted: &[(&str, &str)]) -> Result<()> {
    let missing: BTreeSet<&str> = wanted
        .iter()
        .filter(|(file, _)| !Path::new(file).exists())
        .map(|(_, package)| *package)
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let list = missing.iter().copied().collect::<Vec<_>>().join(" ");
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        bail!(
            "missing Debian packages: {list}; install them with `sudo apt-get install -y {list}`"
        );
    }
    run(Command::new("apt-get")
        .arg("update")
        .env("DEBIAN_FRONTEND", "noninteractive"))
    .with_context(|| format!("apt-get update before installing {list}"))?;
    run(Command::new("apt-get")
        .args(["install", "-y"])
        .args(&missing)
        .env("DEBIAN_FRONTEND", "noninteractive"))
    .with_context(|| format!("installing Debian packages {list}"))?;
    let still_missing: Vec<&str> = wanted
        .iter()
        .filter(|(file, _)| !Path::new(file).exists())
        .map(|(file, _)| *file)
        .collect();
    if !still_missing.is_empty() {
        bail!(
            "installed {list} but still missing: {}",
            still_missing.join(", ")
        );
    }
    Ok(())
}

/// Debian's Chromium and ChromeDriver, which the browser tests drive.
pub fn ensure_chromium() -> Result<()> {
    ensure_debian_packages(&[
        (CHROMIUM_BIN, "chromium"),
        (CHROMEDRIVER_BIN, "chromium-driver"),
    ])
    .context("Chromium is needed for the browser tests")
}

/// A new empty Chromium profile directory (for `--user-data-dir=`), so no run sees another's state.
#[allow(dead_code)] // Used by the browser tests hook once the widget lands.
pub fn fresh_chromium_profile() -> Result<PathBuf> {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_nanos())
        .unwrap_or_default();
    let dir = env::temp_dir().join(format!("cvco-chromium-{}-{nanos}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    Ok(dir)
}

/// Splits `http://host:port/path` into the socket address and the path. Loopback HTTP only.
pub fn split_http_url(url: &str) -> Result<(String, String)> {
    let rest = url
        .strip_prefix("http://")
        .with_context(|| format!("not an http:// URL: {url}"))?;
    let (authority, path) = match rest.find('/') {
        Some(slash) => (&rest[..slash], &rest[slash..]),
        None => (rest, "/"),
    };
    if authority.is_empty() {
        bail!("URL without host: {url}");
    }
    let address = if authority.contains(':') {
        authority.to_owned()
    } else {
        format!("{authority}:80")
    };
    Ok((address, path.to_owned()))
}

/// A minimal HTTP/1.0 GET returning the status code and body: enough for health checks on
/// 127.0.0.1 without pulling an HTTP client into every xtask build.
pub fn http_get(url: &str, timeout: Duration) -> Result<(u16, String)> {
    let (address, path) = split_http_url(url)?;
    let socket_address = std::net::ToSocketAddrs::to_socket_addrs(&address)?
        .next()
        .with_context(|| format!("cannot resolve {address}"))?;
    let mut stream = TcpStream::connect_timeout(&socket_address, timeout)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    // One write: `write!` on a socket may send the request in pieces, and a server that answers
    // after the first piece and closes turns the next one into a broken pipe.
    let request = format!("GET {path} HTTP/1.0\r\nHost: {address}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes())?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response)?;
    let response = String::from_utf8_lossy(&response);
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .with_context(|| format!("not an HTTP response from {url}"))?;
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .unwrap_or_default();
    Ok((status, body))
}

/// Bytes as people read them in a report.
pub fn human_bytes(bytes: u64) -> String {
    if bytes < 1024 {
        format!("{bytes} B")
    } else if bytes < 1024 * 1024 {
        format!("{:.1} KiB", bytes as f64 / 1024.0)
    } else {
        format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_loopback_urls() {
        assert_eq!(
            split_http_url("http://127.0.0.1:7070/healthz").unwrap(),
            ("127.0.0.1:7070".into(), "/healthz".into())
        );
        assert_eq!(
            split_http_url("http://localhost").unwrap(),
            ("localhost:80".into(), "/".into())
        );
        assert!(split_http_url("https://127.0.0.1/").is_err());
        assert!(split_http_url("http:///x").is_err());
    }

    #[test]
    fn http_get_reads_status_and_body_from_a_real_socket() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/healthz", listener.local_addr().unwrap());
        let server = std::thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            // The whole request head, however the client's writes were split.
            let mut request = Vec::new();
            let mut byte = [0u8; 1];
            while !request.ends_with(b"\r\n\r\n") && stream.read(&mut byte).unwrap() == 1 {
                request.push(byte[0]);
            }
            let request = String::from_utf8_lossy(&request).into_owned();
            stream
                .write_all(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 4\r\n\r\nbusy")
                .unwrap();
            request
        });
        let (status, body) = http_get(&url, Duration::from_secs(5)).unwrap();
        assert_eq!((status, body.as_str()), (503, "busy"));
        assert!(server
            .join()
            .unwrap()
            .starts_with("GET /healthz HTTP/1.0\r\n"));
    }

    #[test]
    fn artifacts_are_read_from_cargo_json_messages() {
        let messages = r#"{"reason":"compiler-artifact","target":{"kind":["lib"],"name":"serde"},"filenames":["/t/debug/deps/libserde-1.rlib"],"executable":null,"fresh":true}
{"reason":"compiler-artifact","target":{"kind":["bin"],"name":"cvco-sandbox"},"filenames":["/t/debug/cvco-sandbox"],"executable":"/t/debug/cvco-sandbox","fresh":false}
{"reason":"compiler-artifact","target":{"kind":["cdylib"],"name":"cvco_plugin"},"filenames":["/t/wasm32-unknown-unknown/wasm/cvco_plugin.wasm"],"executable":null}
{"reason":"build-finished","success":true}
not json"#;
        let artifacts = parse_artifacts(messages);
        assert_eq!(artifacts.len(), 3);
        assert_eq!(
            artifacts[1].executable.as_deref(),
            Some(Path::new("/t/debug/cvco-sandbox"))
        );
        assert_eq!(artifacts[0].executable, None);
        assert_eq!(artifacts[2].kinds, ["cdylib"]);
        assert_eq!(
            artifacts[2].file_with_extension("wasm"),
            Some(Path::new("/t/wasm32-unknown-unknown/wasm/cvco_plugin.wasm"))
        );
        assert_eq!(artifacts[0].file_with_extension("wasm"), None);
    }

    #[test]
    fn human_bytes_picks_a_unit() {
        assert_eq!(human_bytes(999), "999 B");
        assert_eq!(human_bytes(231_456), "226.0 KiB");
        assert_eq!(human_bytes(3 * 1024 * 1024), "3.0 MiB");
    }

    #[test]
    fn describe_quotes_arguments_with_spaces() {
        let mut command = Command::new("cargo");
        command.args(["clippy", "--", "-D warnings"]).env("A", "b");
        assert_eq!(describe(&command), "A=b cargo clippy -- '-D warnings'");
    }
}
