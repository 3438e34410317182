//! Shared helpers: a sandbox per test on 127.0.0.1:0, a JSON client, isolated shops, polling.
#![allow(dead_code)]

use cvco_sandbox::{spawn, RetryPolicy, SandboxConfig, SandboxHandle};
use serde_json::{json, Value};
use std::future::Future;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

pub const ALICE: &str = "alice.approve@sandbox.cvco.test";
pub const BRUNO: &str = "10000000002";
pub const CHLOE: &str = "chloe.decline@sandbox.cvco.test";
pub const DAVID: &str = "10000000004";
pub const EVE: &str = "eve.blocked@sandbox.cvco.test";
pub const JEANNE: &str = "jeanne.manual@sandbox.cvco.test";
pub const HUGO: &str = "hugo.adjust@sandbox.cvco.test";
pub const INES: &str = "10000000008";

pub fn test_config() -> SandboxConfig {
    SandboxConfig {
        approve_delay_ms: 40,
        notification_retry: RetryPolicy {
            base_ms: 50,
            factor: 2,
            max_attempts: 10,
        },
        ..SandboxConfig::default()
    }
}

pub struct Sbx {
    pub handle: SandboxHandle,
    pub http: reqwest::Client,
}

pub struct Resp {
    pub status: u16,
    pub body: Value,
    pub headers: reqwest::header::HeaderMap,
}

impl Resp {
    pub fn code(&self) -> &str {
        self.body["code"].as_str().unwrap_or("")
    }

    #[track_caller]
    pub fn expect(self, status: u16) -> Value {
        assert_eq!(self.status, status, "unexpected answer: {}", self.body);
        self.body
    }

    #[track_caller]
    pub fn expect_error(&self, status: u16, code: &str) {
        assert_eq!(
            (self.status, self.code()),
            (status, code),
            "unexpected answer: {}",
            self.body
        );
        for k in ["message_fr", "message_en", "retryable"] {
            assert!(
                self.body.get(k).is_some(),
                "error body lacks {k}: {}",
                self.body
            );
        }
    }
}

pub struct Shop {
    pub id: String,
    pub client_id: String,
    pub client_secret: String,
    pub notification_secret: String,
    pub token: String,
}

static SHOP_SEQ: AtomicU32 = AtomicU32::new(1);

pub async fn start() -> Sbx {
    start_with(test_config()).await
}

pub async fn start_with(config: SandboxConfig) -> Sbx {
    let handle = spawn(config).await.expect("sandbox starts");
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    Sbx { handle, http }
}

impl Sbx {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.handle.base_url, path)
    }

    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> Resp {
        let mut req = self.http.request(method, self.url(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("request reaches the sandbox");
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let text = resp.text().await.unwrap();
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text)
                .unwrap_or_else(|e| panic!("non-JSON answer ({status}) {e}: {text}"))
        };
        Resp {
            status,
            body,
            headers,
        }
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Resp {
        self.send(reqwest::Method::GET, path, token, None, &[])
            .await
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: Value) -> Resp {
        self.send(reqwest::Method::POST, path, token, Some(body), &[])
            .await
    }

    pub async fn put(&self, path: &str, body: Value) -> Resp {
        self.send(reqwest::Method::PUT, path, None, Some(body), &[])
            .await
    }

    pub async fn token(&self, client_id: &str, secret: &str) -> String {
        let r = self
            .post(
                "/oauth/token",
                None,
                json!({"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret}),
            )
            .await
            .expect(200);
        r["access_token"].as_str().unwrap().to_string()
    }

    /// A fresh shop with all channels; `settings` overrides the defaults (and may carry
    /// cancel_password, fee_bps, token_ttl_s, channels at the top level of `extra`).
    pub async fn shop(&self, settings: Value, extra: Value) -> Shop {
        let n = SHOP_SEQ.fetch_add(1, Ordering::Relaxed);
        let id = format!("T{n}-{}", std::process::id() % 100_000);
        let mut body = json!({
            "shop_id": id,
            "client_id": format!("client-{id}"),
            "client_secret": format!("secret-{id}"),
            "notification_secret": format!("whsec_{id}"),
            "channels": ["ecommerce", "moto", "proximity", "kiosk"],
            "settings": settings,
        });
        if let Value::Object(m) = extra {
            for (k, v) in m {
                body[k] = v;
            }
        }
        self.post("/admin/shops", None, body).await.expect(201);
        let token = self
            .token(&format!("client-{id}"), &format!("secret-{id}"))
            .await;
        Shop {
            client_id: format!("client-{id}"),
            client_secret: format!("secret-{id}"),
            notification_secret: format!("whsec_{id}"),
            id,
            token,
        }
    }

    pub async fn default_shop(&self) -> Shop {
        self.shop(json!({}), json!({})).await
    }

    /// Creates a transaction (201 expected) and returns it.
    pub async fn create_tx(&self, shop: &Shop, extra: Value) -> Value {
        let mut body = json!({
            "shop_id": shop.id,
            "merchant_order_id": "CMD-1",
            "amount_cents": 4550,
            "channel": "ecommerce",
        });
        if let Value::Object(m) = extra {
            for (k, v) in m {
                body[k] = v;
            }
        }
        self.post("/api/v1/transactions", Some(&shop.token), body)
            .await
            .expect(201)
    }

    pub async fn tx(&self, shop: &Shop, id: &str) -> Value {
        self.get(&format!("/api/v1/transactions/{id}"), Some(&shop.token))
            .await
            .expect(200)
    }

    /// Polls the transaction until its state is `state` (fails after 5 s).
    pub async fn tx_until(&self, shop: &Shop, id: &str, state: &str) -> Value {
        wait_for(&format!("transaction {id} to reach {state}"), || async {
            let t = self.tx(shop, id).await;
            (t["state"] == state).then_some(t)
        })
        .await
    }

    pub async fn pt(&self, shop: &Shop, id: &str) -> Value {
        self.get(&format!("/api/v1/pre-transactions/{id}"), Some(&shop.token))
            .await
            .expect(200)
    }
}

/// Polls `f` every 20 ms until it yields a value; panics after 5 s.
pub async fn wait_for<T, F, Fut>(what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub fn cents(v: &Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not cents: {v}"))
}
