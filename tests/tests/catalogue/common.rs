//! One sandbox per test binary (in-process, 127.0.0.1:0, on its own runtime), an isolated shop
//! per test, and plugin pools configured for it.

use cvco_core::plugin_api::Payment;
use cvco_core::{CvcoError, ErrorCode, Timestamp};
use cvco_plugin_host::Pool;
use serde::de::DeserializeOwned;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

pub struct Env {
    pub base_url: String,
    pub runtime: tokio::runtime::Runtime,
    _sandbox: cvco_sandbox::SandboxHandle,
}

pub fn env() -> &'static Env {
    static ENV: OnceLock<Env> = OnceLock::new();
    ENV.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let config = cvco_sandbox::SandboxConfig {
            approve_delay_ms: 50,
            notification_retry: cvco_sandbox::RetryPolicy {
                base_ms: 50,
                factor: 2,
                max_attempts: 5,
            },
            ..Default::default()
        };
        let sandbox = runtime
            .block_on(cvco_sandbox::spawn(config))
            .expect("sandbox");
        Env {
            base_url: sandbox.base_url.clone(),
            runtime,
            _sandbox: sandbox,
        }
    })
}

pub fn wasm() -> &'static [u8] {
    cvco_test_host::plugin_wasm().expect("plugin wasm")
}

fn agent() -> &'static ureq::Agent {
    static AGENT: OnceLock<ureq::Agent> = OnceLock::new();
    AGENT.get_or_init(|| {
        ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(30)))
            .build()
            .into()
    })
}

/// A JSON call to the sandbox (admin and app endpoints): (status, body).
pub fn http(method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let url = format!("{}{path}", env().base_url);
    let a = agent();
    let response = match (method, body) {
        ("GET", _) => a.get(&url).call(),
        ("DELETE", _) => a.delete(&url).call(),
        ("POST", Some(b)) => a.post(&url).send_json(b),
        ("POST", None) => a.post(&url).send_empty(),
        ("PUT", Some(b)) => a.put(&url).send_json(b),
        _ => panic!("unsupported {method}"),
    };
    let mut response = response.unwrap_or_else(|e| panic!("{method} {path}: {e}"));
    let status = response.status().as_u16();
    let text = response.body_mut().read_to_string().unwrap_or_default();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

pub fn ok(method: &str, path: &str, body: Option<Value>) -> Value {
    let (status, v) = http(method, path, body);
    assert!(
        (200..300).contains(&status),
        "{method} {path}: {status} {v}"
    );
    v
}

pub struct Shop {
    pub id: String,
    pub client_id: String,
    pub client_secret: String,
    pub notification_secret: String,
}

static SEQ: AtomicU32 = AtomicU32::new(0);

/// A unique id for orders, keys and shops of this process.
pub fn unique(prefix: &str) -> String {
    format!(
        "{prefix}-{}-{}",
        std::process::id() % 100_000,
        SEQ.fetch_add(1, Ordering::Relaxed)
    )
}

/// An isolated shop (all channels) with `settings` over the defaults and `extra` top-level fields.
pub fn shop_with(settings: Value, extra: Value) -> Shop {
    let id = unique("T");
    let mut body = json!({
        "shop_id": id,
        "client_id": format!("{id}-client"),
        "client_secret": format!("{id}-secret"),
        "notification_secret": format!("whsec_{id}"),
        "channels": ["ecommerce", "moto", "proximity", "kiosk"],
        "settings": settings,
    });
    if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
        for (k, v) in e {
            b.insert(k.clone(), v.clone());
        }
    }
    let (status, v) = http("POST", "/admin/shops", Some(body));
    assert_eq!(status, 201, "create shop: {v}");
    Shop {
        client_id: format!("{id}-client"),
        client_secret: format!("{id}-secret"),
        notification_secret: format!("whsec_{id}"),
        id,
    }
}

pub fn shop() -> Shop {
    shop_with(json!({}), json!({}))
}

impl Shop {
    pub fn config(&self) -> Vec<(&'static str, String)> {
        vec![
            ("api_base_url", env().base_url.clone()),
            ("shop_id", self.id.clone()),
            ("client_id", self.client_id.clone()),
            ("client_secret", self.client_secret.clone()),
            ("notification_secret", self.notification_secret.clone()),
        ]
    }

    pub fn pool(&self) -> Pool {
        self.pool_with(&[])
    }

    /// A pool with the shop's configuration, `overrides` replacing or adding keys.
    pub fn pool_with(&self, overrides: &[(&str, &str)]) -> Pool {
        let mut b = Pool::builder(wasm())
            .configs(self.config())
            .allowed_host("127.0.0.1");
        for (k, v) in overrides {
            b = b.config(*k, *v);
        }
        b.build().expect("pool")
    }

    pub fn faults(&self, faults: Value) {
        let mut body = faults;
        body["shop_id"] = json!(self.id);
        ok("PUT", "/admin/faults", Some(body));
    }

    pub fn clear_faults(&self) {
        ok(
            "DELETE",
            &format!("/admin/faults?shop_id={}", self.id),
            None,
        );
    }
}

/// Calls an export that must succeed.
pub fn call<O: DeserializeOwned>(pool: &Pool, f: &str, input: Value) -> O {
    pool.call_by_name(f, &input)
        .unwrap_or_else(|e| panic!("{f}({input}): {e:?}"))
}

/// Calls an export that must fail with a typed error.
pub fn fails(pool: &Pool, f: &str, input: Value) -> CvcoError {
    match pool.call_by_name::<_, Value>(f, &input) {
        Ok(v) => panic!("{f}({input}) succeeded: {v}"),
        Err(e) => {
            assert!(!e.message_fr.is_empty() && !e.message_en.is_empty());
            e
        }
    }
}

pub fn assert_code(e: &CvcoError, code: ErrorCode) {
    assert_eq!(e.code, code, "{e:?}");
}

/// Polls `get_payment` until the payment is final (or the deadline passes).
pub fn wait_final(pool: &Pool, payment_id: &str, within: Duration) -> Payment {
    let deadline = Instant::now() + within;
    loop {
        let p: Payment = call(pool, "get_payment", json!({ "payment_id": payment_id }));
        if p.is_final {
            return p;
        }
        assert!(
            Instant::now() < deadline,
            "payment {payment_id} not final in {within:?}: {p:?}"
        );
        std::thread::sleep(Duration::from_millis(40));
    }
}

pub fn create_payment(pool: &Pool, amount_cents: i64, beneficiary: Option<&str>) -> Payment {
    let mut input = json!({
        "order_ref": unique("CMD"),
        "amount_cents": amount_cents,
        "channel": "ecommerce",
        "idempotency_key": unique("key"),
    });
    if let Some(b) = beneficiary {
        input["beneficiary"] = json!(b);
    }
    call(pool, "create_payment", input)
}

pub fn now() -> Timestamp {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis() as i64;
    Timestamp(ms)
}

/// A request the sandbox sent to a notification URL.
#[derive(Debug, Clone)]
pub struct Captured {
    pub headers: Vec<(String, String)>,
    pub body: String,
}

/// A tiny HTTP receiver for notifications: records every POST and answers 200.
pub struct Receiver {
    pub url: String,
    pub seen: Arc<Mutex<Vec<Captured>>>,
}

pub fn receiver() -> Receiver {
    let seen: Arc<Mutex<Vec<Captured>>> = Arc::default();
    let sink = seen.clone();
    let app = axum::Router::new().fallback(
        move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
            let sink = sink.clone();
            async move {
                let headers = headers
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string()))
                    .collect();
                let body = String::from_utf8_lossy(&body).into_owned();
                sink.lock().unwrap().push(Captured { headers, body });
                axum::http::StatusCode::OK
            }
        },
    );
    let rt = &env().runtime;
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    rt.spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Receiver {
        url: format!("http://{addr}/notify"),
        seen,
    }
}

impl Receiver {
    /// Waits for a notification whose body satisfies `pred`.
    pub fn wait_for(&self, within: Duration, pred: impl Fn(&Value) -> bool) -> Captured {
        let deadline = Instant::now() + within;
        loop {
            if let Some(c) = self
                .seen
                .lock()
                .unwrap()
                .iter()
                .find(|c| serde_json::from_str::<Value>(&c.body).is_ok_and(|v| pred(&v)))
            {
                return c.clone();
            }
            assert!(
                Instant::now() < deadline,
                "no matching notification in {within:?}"
            );
            std::thread::sleep(Duration::from_millis(30));
        }
    }
}
