//! Harness of the widget's end-to-end tests: the sandbox and cvco-host in-process, a TCP proxy that
//! can cut the network, and a minimal WebDriver client driving headless Chromium (fresh profile per
//! browser). Failures panic with what was seen: this is test code.

use std::io::Write;
use std::net::{SocketAddr, TcpListener as StdListener};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{json, Value};

pub const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

fn env_path(name: &str, default: &str) -> PathBuf {
    std::env::var_os(name)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(default))
}

fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("workspace root")
}

/// The built widget (dist/widget), from `CVCO_WIDGET_DIST` (xtask exports it) or the default place.
pub fn widget_dist() -> PathBuf {
    std::env::var_os("CVCO_WIDGET_DIST")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("dist/widget"))
}

/// Screenshots for review land in `<target dir>/screenshots` (git-ignored).
pub fn screenshot_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"));
    target.join("screenshots")
}

/// One browser test at a time on this machine: Chromium is heavy and the cores are few. The lock
/// is released when the guard (a file handle) drops, even if the test panics.
pub struct Serial(#[allow(dead_code)] std::fs::File);

pub fn serial() -> Serial {
    let path = std::env::temp_dir().join("cvco-browser-tests.lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .expect("lock file");
    file.lock().expect("browser test lock");
    Serial(file)
}

/// Sandbox + cvco-host (test orders on) on a private tokio runtime, and a proxy in front of the
/// host whose network can be cut.
pub struct Stack {
    pub rt: tokio::runtime::Runtime,
    pub sandbox_url: String,
    pub host_url: String,
    /// The address pages are loaded from (through the proxy).
    pub base_url: String,
    network_up: Arc<AtomicBool>,
    cut_epoch: Arc<AtomicU32>,
    sandbox: Option<cvco_sandbox::SandboxHandle>,
    host: Option<cvco_host::HostHandle>,
}

impl Stack {
    pub fn start() -> Stack {
        let entry = widget_dist().join("cvco-checkout.js");
        assert!(
            entry.is_file(),
            "{} is missing: build the widget first (`cargo xtask widget`, or run `cargo xtask test`)",
            entry.display()
        );
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("tokio runtime");
        let sandbox = rt
            .block_on(cvco_sandbox::spawn(cvco_sandbox::SandboxConfig {
                approve_delay_ms: 300,
                ..Default::default()
            }))
            .expect("sandbox");
        let host = rt
            .block_on(cvco_host::spawn(cvco_host::HostConfig {
                sandbox_url: sandbox.base_url.clone(),
                test_orders: true,
                widget_dir: widget_dist(),
                examples_dir: Some(workspace_root().join("examples")),
                poll_interval_ms: 1000,
                // The demo accounts' hashes are computed at start; a debug build takes seconds at
                // the production cost, and these tests never log in.
                argon2_m_kib: 64,
                // The demo shop and accounts these pages use exist only in demo mode.
                ..cvco_host::HostConfig::demo()
            }))
            .expect("cvco-host");
        let network_up = Arc::new(AtomicBool::new(true));
        let cut_epoch = Arc::new(AtomicU32::new(0));
        let proxy = rt.block_on(proxy(host.addr, network_up.clone(), cut_epoch.clone()));
        Stack {
            sandbox_url: sandbox.base_url.clone(),
            host_url: host.base_url.clone(),
            base_url: format!("http://{proxy}"),
            network_up,
            cut_epoch,
            sandbox: Some(sandbox),
            host: Some(host),
            rt,
        }
    }

    /// Drops every open connection of the browser and refuses new ones until [`Stack::restore`].
    pub fn cut_network(&self) {
        self.network_up.store(false, Ordering::SeqCst);
        self.cut_epoch.fetch_add(1, Ordering::SeqCst);
    }

    pub fn restore_network(&self) {
        self.network_up.store(true, Ordering::SeqCst);
    }

    pub fn sandbox(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        http(method, &format!("{}{}", self.sandbox_url, path), body)
    }

    /// Sets the demo shop's settings (e.g. a short authorization timeout).
    pub fn shop_settings(&self, settings: Value) {
        self.sandbox("PUT", "/admin/shops/SHOP-DEMO-01/settings", Some(settings));
    }

    /// The transaction waiting for this beneficiary in the app (polls until there is one).
    pub fn pending_transaction(&self, beneficiary: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let pending = self.sandbox(
                "GET",
                &format!("/app/api/beneficiaries/{beneficiary}/pending"),
                None,
            );
            if let Some(id) = find_transaction_id(&pending) {
                return id;
            }
            assert!(
                Instant::now() < deadline,
                "no pending transaction for {beneficiary}: {pending}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The beneficiary types `pin` in the app: the HTTP status (422 `wrong_pin`, 409 once locked).
    pub fn confirm_with_pin(&self, tx: &str, beneficiary: &str, pin: &str) -> u16 {
        let url = format!("{}/app/api/transactions/{tx}/confirm", self.sandbox_url);
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        agent
            .post(&url)
            .send_json(json!({"beneficiary": beneficiary, "pin": pin}))
            .unwrap_or_else(|e| panic!("POST {url}: {e}"))
            .status()
            .as_u16()
    }

    pub fn confirm(&self, tx: &str, beneficiary: &str) -> Value {
        self.sandbox(
            "POST",
            &format!("/app/api/transactions/{tx}/confirm"),
            Some(json!({"beneficiary": beneficiary, "pin": "1234"})),
        )
    }
}

fn find_transaction_id(pending: &Value) -> Option<String> {
    let list = pending
        .get("transactions")
        .and_then(Value::as_array)
        .cloned()
        .or_else(|| pending.as_array().cloned())?;
    list.iter()
        .find_map(|t| t.get("transaction_id").or(t.get("id"))?.as_str())
        .map(str::to_string)
}

impl Drop for Stack {
    fn drop(&mut self) {
        let host = self.host.take();
        let sandbox = self.sandbox.take();
        self.rt.block_on(async {
            if let Some(h) = host {
                h.shutdown().await;
            }
            if let Some(s) = sandbox {
                s.shutdown().await;
            }
        });
    }
}

/// A plain TCP relay: a real network drop for the browser when `up` goes false (every relayed
/// connection of an older epoch is closed, new ones are refused by closing them at once).
async fn proxy(upstream: SocketAddr, up: Arc<AtomicBool>, epoch: Arc<AtomicU32>) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("proxy bind");
    let addr = listener.local_addr().expect("proxy addr");
    tokio::spawn(async move {
        while let Ok((mut client, _)) = listener.accept().await {
            if !up.load(Ordering::SeqCst) {
                drop(client);
                continue;
            }
            let born = epoch.load(Ordering::SeqCst);
            let epoch = epoch.clone();
            tokio::spawn(async move {
                let Ok(mut server) = tokio::net::TcpStream::connect(upstream).await else {
                    return;
                };
                let relay = tokio::io::copy_bidirectional(&mut client, &mut server);
                let cut = async {
                    while epoch.load(Ordering::SeqCst) == born {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                };
                tokio::select! {
                    _ = relay => {}
                    _ = cut => {}
                }
            });
        }
    });
    addr
}

/// A JSON call from the test itself (sandbox admin and app APIs).
pub fn http(method: &str, url: &str, body: Option<Value>) -> Value {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into();
    let mut resp = match (method, body) {
        ("GET", _) => agent.get(url).call(),
        ("DELETE", _) => agent.delete(url).call(),
        ("POST", b) => agent.post(url).send_json(b.unwrap_or(json!({}))),
        ("PUT", b) => agent.put(url).send_json(b.unwrap_or(json!({}))),
        (m, _) => panic!("method {m}"),
    }
    .unwrap_or_else(|e| panic!("{method} {url}: {e}"));
    let status = resp.status().as_u16();
    let text = resp.body_mut().read_to_string().unwrap_or_default();
    assert!(status < 400, "{method} {url}: {status} {text}");
    serde_json::from_str(&text).unwrap_or(Value::Null)
}

fn free_port() -> u16 {
    StdListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

/// Headless Chromium through chromedriver, with a fresh profile that is deleted afterwards.
pub struct Browser {
    driver: Child,
    session: String,
    profile: PathBuf,
    agent: ureq::Agent,
}

impl Browser {
    pub fn launch() -> Browser {
        let chromium = env_path("CVCO_CHROMIUM", "/usr/bin/chromium");
        let chromedriver = env_path("CVCO_CHROMEDRIVER", "/usr/bin/chromedriver");
        static COUNT: AtomicU32 = AtomicU32::new(0);
        let profile = std::env::temp_dir().join(format!(
            "cvco-chromium-{}-{}",
            std::process::id(),
            COUNT.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&profile);
        std::fs::create_dir_all(&profile).expect("profile dir");
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(60)))
            .build()
            .into();
        let mut attempt = 0;
        loop {
            attempt += 1;
            let port = free_port();
            let mut driver = Command::new(&chromedriver)
                .arg(format!("--port={port}"))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap_or_else(|e| panic!("starting {}: {e}", chromedriver.display()));
            let base = format!("http://127.0.0.1:{port}");
            let ready = (0..100).any(|_| {
                std::thread::sleep(Duration::from_millis(50));
                agent
                    .get(&format!("{base}/status"))
                    .call()
                    .ok()
                    .and_then(|mut r| r.body_mut().read_json::<Value>().ok())
                    .is_some_and(|v| v["value"]["ready"] == json!(true))
            });
            if !ready {
                let _ = driver.kill();
                let _ = driver.wait();
                assert!(attempt < 3, "chromedriver did not start");
                continue;
            }
            let mut args: Vec<String> = [
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--disable-background-networking",
                "--no-first-run",
                "--disable-component-update",
                "--disable-sync",
                "--disable-dev-shm-usage",
                "--window-size=720,900",
                // A fake camera, granted without a prompt (the scan test).
                "--use-fake-device-for-media-stream",
                "--use-fake-ui-for-media-stream",
            ]
            .iter()
            .map(|s| s.to_string())
            .collect();
            args.push(format!("--user-data-dir={}", profile.display()));
            let caps = json!({"capabilities": {"alwaysMatch": {
                "browserName": "chrome",
                "pageLoadStrategy": "normal",
                "goog:chromeOptions": {"binary": chromium.to_string_lossy(), "args": args}
            }}});
            let mut resp = agent
                .post(&format!("{base}/session"))
                .send_json(&caps)
                .expect("new session");
            let v: Value = resp.body_mut().read_json().expect("session json");
            let id = v["value"]["sessionId"]
                .as_str()
                .unwrap_or_else(|| panic!("no session: {v}"))
                .to_string();
            return Browser {
                driver,
                session: format!("{base}/session/{id}"),
                profile,
                agent,
            };
        }
    }

    fn call(&self, method: &str, path: &str, body: Value) -> Value {
        let url = format!("{}{}", self.session, path);
        let mut resp = match method {
            "GET" => self.agent.get(&url).call(),
            "DELETE" => self.agent.delete(&url).call(),
            _ => self.agent.post(&url).send_json(&body),
        }
        .unwrap_or_else(|e| panic!("webdriver {path}: {e}"));
        let v: Value = resp.body_mut().read_json().expect("webdriver json");
        if v["value"].get("error").is_some() {
            panic!("webdriver {path}: {}", v["value"]);
        }
        v["value"].clone()
    }

    pub fn goto(&self, url: &str) {
        self.call("POST", "/url", json!({ "url": url }));
    }

    /// Runs `script` (a function body; `arguments` are `args`) in the page.
    pub fn exec(&self, script: &str, args: Value) -> Value {
        self.call(
            "POST",
            "/execute/sync",
            json!({"script": script, "args": args}),
        )
    }

    /// Polls `expr` (a JS expression) until it is truthy; returns its value.
    pub fn wait_for(&self, expr: &str, timeout: Duration) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            let v = self.exec(&format!("return ({expr}) || null;"), json!([]));
            if !v.is_null() && v != json!(false) {
                return v;
            }
            if Instant::now() > deadline {
                let seen = self.widget_text();
                let events = self.events();
                panic!("timed out waiting for `{expr}`; widget shows: {seen:?}; events: {events}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// An element inside the widget's shadow root.
    pub fn shadow(&self, selector: &str) -> Value {
        let el = self.exec(
            "const w = document.querySelector('cvco-checkout');\
             return w && w.shadowRoot && w.shadowRoot.querySelector(arguments[0]);",
            json!([selector]),
        );
        assert!(
            el.get(ELEMENT_KEY).is_some(),
            "no {selector} in the widget; it shows {:?}",
            self.widget_text()
        );
        el
    }

    fn element_id(el: &Value) -> String {
        el[ELEMENT_KEY].as_str().expect("element id").to_string()
    }

    /// Real key events, as a keyboard or a hand-held scanner sends them (`\u{E007}` is Enter).
    pub fn type_keys(&self, el: &Value, text: &str) {
        let id = Self::element_id(el);
        self.call(
            "POST",
            &format!("/element/{id}/value"),
            json!({ "text": text }),
        );
    }

    pub fn click(&self, el: &Value) {
        let id = Self::element_id(el);
        self.call("POST", &format!("/element/{id}/click"), json!({}));
    }

    /// Keys sent to whatever has the focus (Tab, Enter, Space…).
    pub fn keys(&self, text: &str) {
        let actions: Vec<Value> = text
            .chars()
            .flat_map(|c| {
                let k = c.to_string();
                [
                    json!({"type": "keyDown", "value": k}),
                    json!({"type": "keyUp", "value": k}),
                ]
            })
            .collect();
        self.call(
            "POST",
            "/actions",
            json!({"actions": [{"type": "key", "id": "kb", "actions": actions}]}),
        );
    }

    /// What the shopper reads in the widget (its shadow root's text, any whitespace as one space).
    pub fn widget_text(&self) -> String {
        self.exec(
            "const w = document.querySelector('cvco-checkout');\
             const r = w && w.shadowRoot && w.shadowRoot.querySelector('.cvco');\
             return r ? r.innerText.replace(/[\\s\\u00a0\\u202f]+/g, ' ').trim() : '';",
            json!([]),
        )
        .as_str()
        .unwrap_or_default()
        .to_string()
    }

    pub fn view(&self) -> String {
        self.exec(
            "const w = document.querySelector('cvco-checkout');\
             const b = w && w.shadowRoot && w.shadowRoot.querySelector('.cvco-body');\
             return b ? b.getAttribute('data-view') : '';",
            json!([]),
        )
        .as_str()
        .unwrap_or_default()
        .to_string()
    }

    pub fn wait_view(&self, view: &str, timeout: Duration) {
        self.wait_for(
            &format!(
                "(() => {{ const w = document.querySelector('cvco-checkout');\
                 const b = w && w.shadowRoot && w.shadowRoot.querySelector('.cvco-body');\
                 return b && b.getAttribute('data-view') === {view:?}; }})()"
            ),
            timeout,
        );
    }

    /// Events the page received (recorded by the playground's script).
    pub fn events(&self) -> Value {
        self.exec("return window.cvcoEvents || [];", json!([]))
    }

    pub fn event_types(&self) -> Vec<String> {
        self.events()
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|e| e["type"].as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    }

    pub fn violations(&self) -> Value {
        self.exec("return window.cvcoViolations || null;", json!([]))
    }

    /// A Chrome DevTools Protocol command through chromedriver.
    pub fn cdp(&self, cmd: &str, params: Value) -> Value {
        self.call(
            "POST",
            "/goog/cdp/execute",
            json!({"cmd": cmd, "params": params}),
        )
    }

    pub fn screenshot(&self, name: &str) -> PathBuf {
        let png = self.call("GET", "/screenshot", Value::Null);
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(png.as_str().expect("screenshot base64"))
            .expect("screenshot decode");
        let dir = screenshot_dir();
        std::fs::create_dir_all(&dir).expect("screenshot dir");
        let path = dir.join(format!("{name}.png"));
        std::fs::File::create(&path)
            .and_then(|mut f| f.write_all(&bytes))
            .expect("screenshot write");
        path
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.agent.delete(&self.session).call();
        let _ = self.driver.kill();
        let _ = self.driver.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

/// The playground page with a fresh test order of `amount_cents` and the given widget attributes.
pub fn open_playground(browser: &Browser, stack: &Stack, amount_cents: u64, query: &str) -> String {
    let sep = if query.is_empty() { "" } else { "&" };
    browser.goto(&format!(
        "{}/examples/widget-playground/index.html?amount={amount_cents}{sep}{query}",
        stack.base_url
    ));
    let order = browser.wait_for(
        "window.cvcoPlayground && (window.cvcoPlayground.orderRef || ('ERROR ' + window.cvcoPlayground.error))",
        Duration::from_secs(15),
    );
    let order = order.as_str().unwrap_or_default().to_string();
    assert!(!order.starts_with("ERROR"), "{order}");
    browser.wait_for(
        "(window.cvcoEvents || []).some(e => e.type === 'cvco-ready')",
        Duration::from_secs(15),
    );
    order
}
