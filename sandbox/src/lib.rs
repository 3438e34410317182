//! Sandbox of the ANCV acquisition server ("environnement de recette"): the merchant API of
//! `cvco_core::wire`, scripted beneficiaries, a simulated beneficiary app, signed notifications,
//! fault injection, and optional SQLite persistence.
//!
//! In-process use: [`spawn`] a server on 127.0.0.1 and talk to [`SandboxHandle::base_url`].

mod admin;
mod api;
mod app;
pub mod beneficiaries;
mod code128;
pub mod engine;
pub mod faults;
mod html;
mod http;
pub mod model;
mod qr;
mod scheduler;
mod store;

use axum::extract::DefaultBodyLimit;
use axum::routing::{delete, get, post, put, MethodRouter};
use axum::Router;
use cvco_core::CvcoError;
use engine::Inner;
pub use engine::{RetryPolicy, DEMO_SHOP};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;

#[derive(Debug, Clone)]
pub struct SandboxConfig {
    pub host: IpAddr,
    /// 0 picks a free port.
    pub port: u16,
    /// SQLite file; in memory when absent.
    pub data_file: Option<PathBuf>,
    /// Time a scripted beneficiary takes to answer (tests set it small).
    pub approve_delay_ms: u64,
    pub notification_retry: RetryPolicy,
    /// Base of the links the sandbox hands out (payment URLs); the bound address when absent.
    pub public_base_url: Option<String>,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        SandboxConfig {
            host: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: 0,
            data_file: None,
            approve_delay_ms: 1000,
            notification_retry: RetryPolicy::default(),
            public_base_url: None,
        }
    }
}

#[derive(Debug)]
pub enum SandboxError {
    Io(std::io::Error),
    Store(CvcoError),
}

impl std::fmt::Display for SandboxError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SandboxError::Io(e) => write!(f, "network: {e}"),
            SandboxError::Store(e) => write!(f, "storage: {e}"),
        }
    }
}

impl std::error::Error for SandboxError {}

pub struct Shared {
    inner: Mutex<Inner>,
    wake: Notify,
    base_url: RwLock<String>,
    http: reqwest::Client,
    cancels: Mutex<Vec<CancelCall>>,
}

/// One cancel call received (`GET /admin/cancellations`): a void, a replay on a transaction
/// already cancelled (no second CANCELLED event), or a refusal; so a test can count how many
/// voids a host asked for.
#[derive(Clone, serde::Serialize)]
pub struct CancelCall {
    pub shop_id: String,
    pub transaction_id: String,
    /// `void`, `replay` (already cancelled, whatever the answer) or `refused`.
    pub outcome: &'static str,
    pub received_at_ms: i64,
}

/// The journal keeps the latest calls only.
const CANCEL_LOG_MAX: usize = 10_000;

/// The sandbox's state, shared by the router and the background scheduler.
#[derive(Clone)]
pub struct SandboxState(Arc<Shared>);

impl SandboxState {
    pub fn open(config: &SandboxConfig) -> Result<SandboxState, SandboxError> {
        let inner = Inner::open(
            config.data_file.as_deref(),
            config.approve_delay_ms,
            config.notification_retry,
        )
        .map_err(SandboxError::Store)?;
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| SandboxError::Io(std::io::Error::other(e)))?;
        let base = config
            .public_base_url
            .clone()
            .unwrap_or_else(|| format!("http://{}:{}", config.host, config.port));
        Ok(SandboxState(Arc::new(Shared {
            inner: Mutex::new(inner),
            wake: Notify::new(),
            base_url: RwLock::new(base.trim_end_matches('/').to_string()),
            http,
            cancels: Mutex::new(Vec::new()),
        })))
    }

    /// The engine, for the short synchronous sections of a handler (never held across await).
    pub fn lock(&self) -> MutexGuard<'_, Inner> {
        self.0.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn base_url(&self) -> String {
        self.0
            .base_url
            .read()
            .map(|s| s.clone())
            .unwrap_or_default()
    }

    pub fn set_base_url(&self, url: &str) {
        if let Ok(mut s) = self.0.base_url.write() {
            *s = url.trim_end_matches('/').to_string();
        }
    }

    /// Records a cancel call in the journal of `GET /admin/cancellations`.
    pub fn record_cancel(&self, shop_id: &str, transaction_id: &str, outcome: &'static str) {
        let received_at_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0);
        let mut log = self.0.cancels.lock().unwrap_or_else(|p| p.into_inner());
        if log.len() >= CANCEL_LOG_MAX {
            log.drain(..CANCEL_LOG_MAX / 2);
        }
        log.push(CancelCall {
            shop_id: shop_id.into(),
            transaction_id: transaction_id.into(),
            outcome,
            received_at_ms,
        });
    }

    /// The cancel calls received, oldest first.
    pub fn cancel_calls(&self) -> Vec<CancelCall> {
        self.0
            .cancels
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Tells the scheduler something new may be due.
    pub fn wake(&self) {
        self.0.wake.notify_one();
    }

    /// Runs the scheduler until `shutdown` flips (for hosts that serve [`router`] themselves).
    pub async fn run_scheduler(self, shutdown: watch::Receiver<bool>) {
        scheduler::run(self, shutdown).await
    }
}

/// Which part of the server a route belongs to; /api/v1 routes get the fault layer.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Part {
    Api,
    Other,
}

/// Every route: (method, path). The OpenAPI document must list each one (a test checks).
fn table() -> Vec<(&'static str, &'static str, Part, MethodRouter<SandboxState>)> {
    use Part::*;
    vec![
        ("GET", "/healthz", Other, get(admin::healthz)),
        ("GET", "/openapi.json", Other, get(admin::openapi)),
        ("POST", "/oauth/token", Other, post(api::token)),
        (
            "POST",
            "/api/v1/transactions",
            Api,
            post(api::create_transaction),
        ),
        (
            "GET",
            "/api/v1/transactions",
            Api,
            get(api::list_transactions),
        ),
        (
            "GET",
            "/api/v1/transactions/{id}",
            Api,
            get(api::get_transaction),
        ),
        (
            "POST",
            "/api/v1/transactions/{id}/authorizations",
            Api,
            post(api::request_authorization),
        ),
        (
            "POST",
            "/api/v1/transactions/{id}/capture",
            Api,
            post(api::capture),
        ),
        (
            "POST",
            "/api/v1/transactions/{id}/cancel",
            Api,
            post(api::cancel),
        ),
        (
            "POST",
            "/api/v1/transactions/{id}/refunds",
            Api,
            post(api::refund),
        ),
        (
            "POST",
            "/api/v1/pre-transactions",
            Api,
            post(api::create_pre_transaction),
        ),
        (
            "GET",
            "/api/v1/pre-transactions/{id}",
            Api,
            get(api::get_pre_transaction),
        ),
        (
            "POST",
            "/api/v1/pre-transactions/{id}/cancel",
            Api,
            post(api::cancel_pre_transaction),
        ),
        (
            "GET",
            "/api/v1/pre-transactions/{id}/qrcode",
            Api,
            get(api::pre_transaction_qrcode),
        ),
        ("GET", "/api/v1/remittances", Api, get(api::remittances)),
        ("GET", "/api/v1/totals", Api, get(api::totals)),
        ("GET", "/admin", Other, get(admin::dashboard)),
        ("GET", "/admin/shops", Other, get(admin::list_shops)),
        ("POST", "/admin/shops", Other, post(admin::create_shop)),
        ("GET", "/admin/shops/{id}", Other, get(admin::get_shop)),
        (
            "PUT",
            "/admin/shops/{id}/settings",
            Other,
            put(admin::update_settings),
        ),
        ("GET", "/admin/faults", Other, get(admin::get_faults)),
        ("PUT", "/admin/faults", Other, put(admin::put_faults)),
        (
            "DELETE",
            "/admin/faults",
            Other,
            delete(admin::delete_faults),
        ),
        (
            "GET",
            "/admin/notifications",
            Other,
            get(admin::notifications),
        ),
        (
            "GET",
            "/admin/cancellations",
            Other,
            get(admin::cancellations),
        ),
        ("GET", "/admin/clock", Other, get(admin::get_clock)),
        ("POST", "/admin/clock", Other, post(admin::advance_clock)),
        ("GET", "/outbox", Other, get(app::outbox_page)),
        ("GET", "/outbox.json", Other, get(app::outbox_json)),
        ("GET", "/app", Other, get(app::home)),
        ("GET", "/app/app.js", Other, get(app::script)),
        ("GET", "/app/app.css", Other, get(app::stylesheet)),
        ("POST", "/app/scan", Other, post(app::scan_form)),
        ("GET", "/app/pay/{id}", Other, get(app::pay_page)),
        ("POST", "/app/pay/{id}", Other, post(app::pay_form)),
        ("GET", "/app/b/{id}", Other, get(app::beneficiary_page)),
        ("GET", "/app/b/{id}/id-qr.svg", Other, get(app::id_qr)),
        (
            "GET",
            "/app/b/{id}/id-code128.svg",
            Other,
            get(app::id_barcode),
        ),
        ("POST", "/app/b/{id}/unlock", Other, post(app::unlock_form)),
        (
            "POST",
            "/app/b/{id}/reset-balance",
            Other,
            post(app::reset_form),
        ),
        (
            "GET",
            "/app/b/{id}/tx/{tx_id}",
            Other,
            get(app::transaction_page),
        ),
        (
            "POST",
            "/app/b/{id}/tx/{tx_id}/accept",
            Other,
            post(app::accept_form),
        ),
        (
            "POST",
            "/app/b/{id}/tx/{tx_id}/confirm",
            Other,
            post(app::confirm_form),
        ),
        (
            "POST",
            "/app/b/{id}/tx/{tx_id}/decline",
            Other,
            post(app::decline_form),
        ),
        (
            "GET",
            "/app/api/beneficiaries",
            Other,
            get(app::api_beneficiaries),
        ),
        (
            "GET",
            "/app/api/beneficiaries/{id}/pending",
            Other,
            get(app::api_pending),
        ),
        (
            "POST",
            "/app/api/beneficiaries/{id}/unlock",
            Other,
            post(app::api_unlock),
        ),
        (
            "POST",
            "/app/api/beneficiaries/{id}/reset-balance",
            Other,
            post(app::api_reset_balance),
        ),
        (
            "POST",
            "/app/api/transactions/{id}/accept",
            Other,
            post(app::api_accept),
        ),
        (
            "POST",
            "/app/api/transactions/{id}/confirm",
            Other,
            post(app::api_confirm),
        ),
        (
            "POST",
            "/app/api/transactions/{id}/decline",
            Other,
            post(app::api_decline),
        ),
        ("POST", "/app/api/pay", Other, post(app::api_pay)),
    ]
}

/// (method, path) of every route the router serves.
pub fn routes() -> Vec<(&'static str, &'static str)> {
    table().into_iter().map(|(m, p, _, _)| (m, p)).collect()
}

/// The OpenAPI 3.1 document served at /openapi.json.
pub const OPENAPI: &str = include_str!("../openapi.json");

pub fn router(state: SandboxState) -> Router {
    let mut api = Router::new();
    let mut other = Router::new();
    for (_, path, part, handler) in table() {
        match part {
            Part::Api => api = api.route(path, handler),
            Part::Other => other = other.route(path, handler),
        }
    }
    let api = api.layer(axum::middleware::from_fn_with_state(
        state.clone(),
        api::faults_layer,
    ));
    other
        .merge(api)
        .fallback(http::not_found)
        .method_not_allowed_fallback(http::method_not_allowed)
        .layer(DefaultBodyLimit::max(1 << 20))
        .with_state(state)
}

/// A running sandbox. Dropping it stops the server too; [`SandboxHandle::shutdown`] waits for it.
pub struct SandboxHandle {
    pub base_url: String,
    pub addr: SocketAddr,
    pub state: SandboxState,
    stop: watch::Sender<bool>,
    server: Option<JoinHandle<()>>,
    scheduler: Option<JoinHandle<()>>,
}

impl SandboxHandle {
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        if let Some(s) = self.server.take() {
            let _ = s.await;
        }
        if let Some(s) = self.scheduler.take() {
            let _ = s.await;
        }
    }
}

impl Drop for SandboxHandle {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

pub async fn spawn(config: SandboxConfig) -> Result<SandboxHandle, SandboxError> {
    let listener = tokio::net::TcpListener::bind(SocketAddr::new(config.host, config.port))
        .await
        .map_err(SandboxError::Io)?;
    let addr = listener.local_addr().map_err(SandboxError::Io)?;
    let state = SandboxState::open(&config)?;
    let base_url = config.public_base_url.clone().unwrap_or_else(|| {
        let host = if addr.ip().is_unspecified() {
            IpAddr::V4(Ipv4Addr::LOCALHOST)
        } else {
            addr.ip()
        };
        format!("http://{}", SocketAddr::new(host, addr.port()))
    });
    state.set_base_url(&base_url);
    let (stop, rx) = watch::channel(false);
    let scheduler = tokio::spawn(state.clone().run_scheduler(rx.clone()));
    let app = router(state.clone());
    let mut server_rx = rx;
    let server = tokio::spawn(async move {
        let shutdown = async move {
            let _ = server_rx.wait_for(|stop| *stop).await;
        };
        if let Err(e) = axum::serve(listener, app)
            .with_graceful_shutdown(shutdown)
            .await
        {
            tracing::error!("sandbox server stopped: {e}");
        }
    });
    Ok(SandboxHandle {
        base_url: state.base_url(),
        addr,
        state,
        stop,
        server: Some(server),
        scheduler: Some(scheduler),
    })
}
