//! Production mode (the default) against demo mode (`--demo`), through the real binary and
//! `cvco_host::spawn`: a start without what production needs is refused with every missing item
//! named; a production host has no demo account, no demo shop and no simulated card; `user add`
//! creates the first manager; `--demo` has the demo pieces.

use cvco_sandbox::{SandboxConfig, SandboxHandle};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_cvco-host");
/// A merchant of the sandbox with non-demo credentials (production refuses the demo ones).
const SHOP: &str = "SHOP-PROD-42";
const CLIENT_ID: &str = "prod-client-42";
const CLIENT_SECRET: &str = "prod-secret-7c1f0e9a2b";
const NOTIFICATION_SECRET: &str = "whsec_prod_5d8e21c4";

fn plugin() -> PathBuf {
    cvco_test_host::plugin_path().expect("plugin")
}

/// The binary with none of the caller's CVCO_* settings (the suite's own environment may set
/// the plugin or demo mode).
fn host_command() -> Command {
    let mut c = Command::new(BIN);
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("CVCO_") {
            c.env_remove(k);
        }
    }
    c.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    c
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("cvco-host-prod-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn sandbox_with_prod_shop() -> SandboxHandle {
    let sandbox = cvco_sandbox::spawn(SandboxConfig::default())
        .await
        .expect("sandbox");
    let r = reqwest::Client::new()
        .post(format!("{}/admin/shops", sandbox.base_url))
        .json(&json!({
            "shop_id": SHOP,
            "name": "Gîtes de production",
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "notification_secret": NOTIFICATION_SECRET,
            "channels": ["ecommerce", "moto", "proximity"],
        }))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.text().await.unwrap());
    sandbox
}

/// Production settings for the binary, as an operator would give them (secrets in the env).
fn production_env(c: &mut Command, sandbox_url: &str, data: &Path) {
    c.env("CVCO_HOST_SHOP_ID", SHOP)
        .env("CVCO_HOST_CLIENT_ID", CLIENT_ID)
        .env("CVCO_HOST_CLIENT_SECRET", CLIENT_SECRET)
        .env("CVCO_HOST_NOTIFICATION_SECRET", NOTIFICATION_SECRET)
        .env("CVCO_HOST_API_BASE_URL", sandbox_url)
        .env("CVCO_HOST_PLUGIN", plugin())
        .env("CVCO_HOST_DATA", data)
        .env("CVCO_HOST_ARGON2_M_KIB", "1024")
        .args(["--port", "0"]);
}

/// A started binary: its base URL (first stdout line) and what it logged meanwhile.
struct Running {
    child: Child,
    base: String,
    stderr: mpsc::Receiver<String>,
}

impl Running {
    fn start(mut c: Command) -> Running {
        let mut child = c.spawn().expect("cvco-host");
        let (tx, stderr) = mpsc::channel();
        let err = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let mut first = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut first)
            .unwrap();
        let base = match first.trim().strip_prefix("cvco-host listening on ") {
            Some(b) => b.to_string(),
            None => {
                let _ = child.kill();
                let _ = child.wait();
                let logged: Vec<String> =
                    std::iter::from_fn(|| stderr.recv_timeout(Duration::from_secs(1)).ok())
                        .collect();
                panic!("no start: {first:?}\n{}", logged.join("\n"));
            }
        };
        Running {
            child,
            base,
            stderr,
        }
    }

    /// Waits (a little) for a stderr line containing `needle`.
    fn logged(&self, needle: &str) -> Option<String> {
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while let Some(left) = deadline.checked_duration_since(std::time::Instant::now()) {
            match self.stderr.recv_timeout(left) {
                Ok(line) if line.contains(needle) => return Some(line),
                Ok(_) => {}
                Err(_) => return None,
            }
        }
        None
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn login(base: &str, username: &str, password: &str) -> reqwest::Response {
    reqwest::Client::new()
        .post(format!("{base}/back-office/api/login"))
        .json(&json!({"username": username, "password": password}))
        .send()
        .await
        .unwrap()
}

/// A cvco error body: the typed fields every client relies on.
async fn assert_cvco_error(r: reqwest::Response, status: u16) -> Value {
    assert_eq!(r.status().as_u16(), status);
    let body: Value = r.json().await.expect("a JSON error body");
    for k in ["code", "message_fr", "message_en", "retryable"] {
        assert!(body.get(k).is_some(), "{k} missing from {body}");
    }
    body
}

#[test]
fn a_start_without_configuration_is_refused_naming_each_missing_item() {
    let out = host_command()
        .args(["--port", "0", "--host", "0.0.0.0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    for needle in [
        "shop id missing",
        "--shop-id, CVCO_HOST_SHOP_ID or shop_id",
        "client id missing",
        "client secret missing",
        "CVCO_HOST_CLIENT_SECRET or client_secret",
        "notification secret missing",
        "API base URL missing",
        "--api-base-url, CVCO_HOST_API_BASE_URL or api_base_url",
        "plugin missing",
        "public URL missing",
    ] {
        assert!(err.contains(needle), "{needle:?} not in:\n{err}");
    }
    assert!(out.stdout.is_empty(), "it must not listen");
}

#[test]
fn demo_values_and_plain_http_are_refused_in_production() {
    let out = host_command()
        .env("CVCO_HOST_SHOP_ID", "SHOP-DEMO-01")
        .env("CVCO_HOST_CLIENT_ID", CLIENT_ID)
        .env("CVCO_HOST_CLIENT_SECRET", "demo-secret")
        .env("CVCO_HOST_NOTIFICATION_SECRET", "whsec_demo_change_me")
        .env("CVCO_HOST_PLUGIN", plugin())
        .args(["--port", "0", "--sandbox-url", "http://acq.example"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    for needle in [
        "\"SHOP-DEMO-01\"",
        "\"demo-secret\"",
        "\"whsec_demo_change_me\"",
        "\"http://acq.example\" must be https://",
    ] {
        assert!(err.contains(needle), "{needle:?} not in:\n{err}");
    }
    assert!(!err.contains("client id"), "the client id was fine:\n{err}");
    assert!(!err.contains("plugin"), "the plugin was given:\n{err}");
}

#[tokio::test]
async fn spawn_refuses_a_production_config_too() {
    let e = cvco_host::spawn(cvco_host::HostConfig {
        plugin: None,
        ..Default::default()
    })
    .await
    .err()
    .expect("refused");
    for needle in ["shop id", "client secret", "API base URL", "plugin missing"] {
        assert!(e.0.contains(needle), "{needle:?} not in {}", e.0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn production_has_no_demo_account_no_demo_shop_no_simulated_card() {
    let sandbox = sandbox_with_prod_shop().await;
    let dir = scratch("fresh");
    let mut c = host_command();
    production_env(&mut c, &sandbox.base_url, &dir.join("host.sqlite"));
    let host = Running::start(c);
    assert!(
        host.logged("cvco-host user add --role manager").is_some(),
        "a fresh production host says how to create the first manager"
    );
    for (user, password) in [("manager", "manager-demo"), ("seller", "seller-demo")] {
        assert_cvco_error(login(&host.base, user, password).await, 401).await;
    }
    let http = reqwest::Client::new();
    let r = http
        .post(format!("{}/shop/api/orders", host.base))
        .json(&json!({"items": [{"product_id": "mobil-home", "nights": 2}]}))
        .send()
        .await
        .unwrap();
    assert_cvco_error(r, 404).await;
    let r = http
        .post(format!("{}/shop/api/orders/ORD-1/card", host.base))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_cvco_error(r, 404).await;
    let r = http
        .get(format!("{}/shop/api/products", host.base))
        .send()
        .await
        .unwrap();
    assert_cvco_error(r, 404).await;
    // The merchant contract itself is served: a staff route answers "log in", not "no route".
    let r = http
        .get(format!("{}/cvco/v1/transactions", host.base))
        .send()
        .await
        .unwrap();
    assert_cvco_error(r, 401).await;
    drop(host);
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_add_creates_the_first_manager_who_can_log_in() {
    let sandbox = sandbox_with_prod_shop().await;
    let dir = scratch("user-add");
    let data = dir.join("host.sqlite");
    let add = |username: &str, password: &str| {
        let mut c = host_command();
        c.stdin(Stdio::piped())
            .env("CVCO_HOST_ARGON2_M_KIB", "1024")
            .args(["user", "add", "--role", "manager", "--username", username])
            .args(["--password-stdin", "--data"])
            .arg(&data);
        let mut child = c.spawn().unwrap();
        writeln!(child.stdin.take().unwrap(), "{password}").unwrap();
        child.wait_with_output().unwrap()
    };
    let out = add("boss", "correct horse battery");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Once only: a second add of the same name changes nothing.
    let again = add("boss", "another password");
    assert_eq!(again.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&again.stderr).contains("exists already"));
    // Too short a password is refused before anything is written.
    assert_eq!(add("short", "1234567").status.code(), Some(2));

    let mut c = host_command();
    production_env(&mut c, &sandbox.base_url, &data);
    let host = Running::start(c);
    let r = login(&host.base, "boss", "correct horse battery").await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert!(body["csrf_token"].is_string(), "{body}");
    assert_cvco_error(login(&host.base, "boss", "another password").await, 401).await;
    assert_cvco_error(login(&host.base, "short", "1234567").await, 401).await;
    assert!(host.logged("no back-office manager").is_none());
    drop(host);
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_flag_has_the_demo_accounts_and_the_demo_shop() {
    let sandbox = cvco_sandbox::spawn(SandboxConfig::default())
        .await
        .expect("sandbox");
    let mut c = host_command();
    c.env("CVCO_HOST_PLUGIN", plugin())
        .env("CVCO_HOST_ARGON2_M_KIB", "1024")
        .args(["--demo", "--port", "0", "--sandbox-url", &sandbox.base_url]);
    let host = Running::start(c);
    assert_eq!(
        login(&host.base, "manager", "manager-demo").await.status(),
        200
    );
    assert_eq!(
        login(&host.base, "seller", "seller-demo").await.status(),
        200
    );
    let r = reqwest::get(format!("{}/shop/api/products", host.base))
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}
