//! Sandbox + host in-process, and HTTP clients playing the shopper, the back-office and the
//! beneficiary.
#![allow(dead_code)]

use cvco_host::{HostConfig, HostHandle};
use cvco_sandbox::{SandboxConfig, SandboxHandle};
use reqwest::header::{HeaderMap, HeaderValue, COOKIE};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

pub const ALICE: &str = "alice.approve@sandbox.cvco.test";
pub const BRUNO: &str = "bruno.partial@sandbox.cvco.test";
pub const CHLOE: &str = "chloe.decline@sandbox.cvco.test";
pub const DAVID: &str = "david.silent@sandbox.cvco.test";
pub const JEANNE: &str = "jeanne.manual@sandbox.cvco.test";

pub struct Env {
    /// PostgreSQL runs (`CVCO_HOST_TEST_STORE=postgres`): this test's own database, dropped last.
    pub db: Option<cvco_host::store::testing::PgDatabase>,
    pub sandbox: SandboxHandle,
    pub host: Option<HostHandle>,
    pub base: String,
    pub sb: String,
    pub raw: reqwest::Client,
    pub cfg: HostConfig,
}

pub fn test_config(sandbox_url: &str) -> HostConfig {
    HostConfig {
        sandbox_url: sandbox_url.into(),
        plugin: Some(cvco_test_host::plugin_path().expect("plugin")),
        test_orders: true,
        poll_interval_ms: 300,
        poll_max_ms: 1000,
        expiry_grace_ms: 1000,
        argon2_m_kib: 1024,
        // The demo pieces and accounts (test orders, manager/seller) the suites drive.
        ..HostConfig::demo()
    }
}

pub async fn env() -> Env {
    env_with(|_| {}).await
}

pub async fn env_with(tune: impl FnOnce(&mut HostConfig)) -> Env {
    // Long enough that a test's next step (a second attempt, a cancel) comes before the
    // approval on a loaded 2-core machine; 150 ms was not, on PostgreSQL under the full run.
    let sandbox = cvco_sandbox::spawn(SandboxConfig {
        approve_delay_ms: 500,
        ..Default::default()
    })
    .await
    .expect("sandbox");
    let mut cfg = test_config(&sandbox.base_url);
    tune(&mut cfg);
    // On PostgreSQL, a database of its own replaces the SQLite file or memory (kept across
    // restarts like the file).
    let db = database_for(&mut cfg).await;
    let host = cvco_host::spawn(cfg.clone()).await.expect("host");
    Env {
        db,
        base: host.base_url.clone(),
        sb: sandbox.base_url.clone(),
        sandbox,
        host: Some(host),
        raw: reqwest::Client::new(),
        cfg,
    }
}

/// When the suite runs on PostgreSQL: a fresh database for `cfg` (unless it names one).
pub async fn database_for(cfg: &mut HostConfig) -> Option<cvco_host::store::testing::PgDatabase> {
    use cvco_host::store::testing;
    if !testing::wants_postgres() || cfg.database.is_some() {
        return None;
    }
    let db = testing::PgDatabase::create()
        .await
        .unwrap_or_else(|| panic!("{}=postgres needs {}", testing::STORE_ENV, testing::URL_ENV))
        .expect("test database");
    cfg.database = Some(db.url.clone());
    Some(db)
}

impl Env {
    /// The host's database, opened beside it (to stage what a crash leaves behind).
    pub async fn store(&self) -> cvco_host::store::Store {
        match (&self.cfg.database, &self.cfg.data_file) {
            (Some(url), _) => cvco_host::store::Store::connect(url).await,
            (None, file) => cvco_host::store::Store::open(file.as_deref()),
        }
        .expect("store")
    }

    pub async fn restart(&mut self) {
        if let Some(h) = self.host.take() {
            h.shutdown().await;
        }
        let mut cfg = self.cfg.clone();
        // Same port: the notification URL the sandbox holds stays valid.
        cfg.port = self.base.rsplit(':').next().unwrap().parse().unwrap();
        let host = cvco_host::spawn(cfg).await.expect("host restart");
        self.base = host.base_url.clone();
        self.host = Some(host);
    }

    pub async fn stop_host(&mut self) {
        if let Some(h) = self.host.take() {
            h.shutdown().await;
        }
    }

    pub fn shopper(&self) -> Client {
        let token: String = (0..32)
            .map(|i| format!("{:02x}", (i * 7 + rand_byte()) % 256))
            .collect();
        let mut h = HeaderMap::new();
        h.insert(
            COOKIE,
            HeaderValue::from_str(&format!("cvco_shop={token}")).unwrap(),
        );
        Client {
            http: reqwest::Client::builder()
                .default_headers(h)
                .build()
                .unwrap(),
            base: self.base.clone(),
            csrf: None,
        }
    }

    pub async fn login(&self, user: &str, password: &str) -> Client {
        let r = self
            .raw
            .post(format!("{}/back-office/api/login", self.base))
            .json(&json!({"username": user, "password": password}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "login {user}");
        let cookie = r
            .headers()
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find(|v| v.starts_with("cvco_bo="))
            .expect("cvco_bo cookie")
            .to_string();
        assert!(
            cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
            "{cookie}"
        );
        let pair = cookie.split(';').next().unwrap().to_string();
        let body: Value = r.json().await.unwrap();
        let mut h = HeaderMap::new();
        h.insert(COOKIE, HeaderValue::from_str(&pair).unwrap());
        Client {
            http: reqwest::Client::builder()
                .default_headers(h)
                .build()
                .unwrap(),
            base: self.base.clone(),
            csrf: body["csrf_token"].as_str().map(str::to_string),
        }
    }

    pub async fn manager(&self) -> Client {
        self.login("manager", "manager-demo").await
    }

    /// The sandbox admin API.
    pub async fn admin(&self, method: reqwest::Method, path: &str, body: Value) -> Value {
        let r = self
            .raw
            .request(method, format!("{}{}", self.sb, path))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "sandbox {path}: {}", r.status());
        r.json().await.unwrap_or(Value::Null)
    }

    pub async fn faults(&self, faults: Value) {
        let mut f = faults;
        f["shop_id"] = json!("SHOP-DEMO-01");
        self.admin(reqwest::Method::PUT, "/admin/faults", f).await;
    }

    pub async fn shop_settings(&self, settings: Value) {
        self.admin(
            reqwest::Method::PUT,
            "/admin/shops/SHOP-DEMO-01/settings",
            settings,
        )
        .await;
    }

    /// The beneficiary's app: confirm (or pay then confirm) with the code 1234.
    pub async fn app_confirm(&self, tx_id: &str, who: &str) {
        let r = self
            .raw
            .post(format!("{}/app/api/transactions/{tx_id}/confirm", self.sb))
            .json(&json!({"beneficiary": who, "pin": "1234"}))
            .send()
            .await
            .unwrap();
        assert!(
            r.status().is_success(),
            "confirm: {} {}",
            r.status(),
            r.text().await.unwrap()
        );
    }

    pub async fn app_pay_request(&self, request_id: &str, who: &str) -> String {
        let r = self
            .raw
            .post(format!("{}/app/api/pay", self.sb))
            .json(&json!({"beneficiary": who, "pre_transaction_id": request_id}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201, "pay");
        let v: Value = r.json().await.unwrap();
        v["id"]
            .as_str()
            .or(v["transaction_id"].as_str())
            .expect("transaction id")
            .to_string()
    }
}

fn rand_byte() -> usize {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static N: AtomicUsize = AtomicUsize::new(0);
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos() as usize;
    t.wrapping_add(N.fetch_add(97, Ordering::Relaxed)) % 251
}

#[derive(Clone)]
pub struct Client {
    pub http: reqwest::Client,
    pub base: String,
    pub csrf: Option<String>,
}

pub struct Answer {
    pub status: u16,
    pub body: Value,
    pub text: String,
    pub headers: reqwest::header::HeaderMap,
}

impl Client {
    pub async fn send(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Answer {
        let mut req = self
            .http
            .request(method.clone(), format!("{}{}", self.base, path));
        if method != reqwest::Method::GET {
            if let Some(c) = &self.csrf {
                req = req.header("x-csrf-token", c);
            }
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req.send().await.unwrap();
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        let text = r.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Answer {
            status,
            body,
            text,
            headers,
        }
    }

    pub async fn get(&self, path: &str) -> Answer {
        self.send(reqwest::Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> Answer {
        self.send(reqwest::Method::POST, path, Some(body)).await
    }

    pub async fn test_order(&self, amount: i64) -> String {
        let a = self
            .post("/shop/api/test-orders", json!({"amount_cents": amount}))
            .await;
        assert_eq!(a.status, 201, "{}", a.text);
        a.body["order_ref"].as_str().unwrap().to_string()
    }

    pub async fn pay(&self, order_ref: &str, beneficiary: &str, attempt: &str) -> Answer {
        self.post(
            "/cvco/v1/payments",
            json!({"order_ref": order_ref, "mode": "identifier",
            "beneficiary": beneficiary, "attempt": attempt}),
        )
        .await
    }

    /// Polls the host (not the sandbox) until the payment is final.
    pub async fn wait_final(&self, payment_id: &str) -> Value {
        let start = Instant::now();
        loop {
            let a = self.get(&format!("/cvco/v1/payments/{payment_id}")).await;
            assert_eq!(a.status, 200, "{}", a.text);
            if a.body["final"] == true {
                return a.body;
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "not final: {}",
                a.text
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

pub async fn wait_until<F, Fut>(what: &str, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    while !f().await {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
