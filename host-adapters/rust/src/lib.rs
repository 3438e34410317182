//! `cvco-host`, the reference merchant backend: the merchant HTTP contract
//! (`host-adapters/PROTOCOL.md`) over `cvco_plugin.wasm`, with a demo shop, a MOTO back-office and
//! a counter. It owns no CVCo protocol code: every ANCV interaction is a plugin export call.

//! Layers, each depending only on those below it: `http` (routes by audience) and `demo` (the
//! demo pieces, mounted only in demo mode) → `payments` (the engine; plugin calls behind
//! `PluginCalls`) → `store` (all SQL) → `util`.

pub mod auth;
pub mod config;
pub mod demo;
pub mod http;
pub mod payments;
pub mod secrets;
pub mod store;
pub mod tenants;
pub mod util;

pub use config::{Account, HostConfig};
use payments::{Engine, PluginCalls};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use tokio::sync::watch;
use tokio::task::JoinHandle;

#[derive(Debug)]
pub struct HostError(pub String);

impl std::fmt::Display for HostError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for HostError {}

fn err(context: &str, e: impl std::fmt::Display) -> HostError {
    HostError(format!("{context}: {e}"))
}

/// A running host; dropping it stops it too.
pub struct HostHandle {
    pub base_url: String,
    pub addr: SocketAddr,
    pub engine: Arc<Engine>,
    /// The HTTP side's state (accounts and throttling), for tests that look inside.
    pub app: Arc<http::App>,
    /// The plugin the engine calls (tests call other exports with it).
    pub pool: cvco_plugin_host::Pool,
    /// The merchants and their plugin pools.
    pub tenants: tenants::Tenants,
    stop: watch::Sender<bool>,
    server: Option<JoinHandle<()>>,
    poller: Option<JoinHandle<()>>,
    /// PostgreSQL: the LISTEN connection bringing other instances' changes.
    listener: Option<JoinHandle<()>>,
}

impl HostHandle {
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        if let Some(s) = self.server.take() {
            let _ = s.await;
        }
        if let Some(p) = self.poller.take() {
            let _ = p.await;
        }
        if let Some(l) = self.listener.take() {
            let _ = l.await;
        }
    }

    /// As a crash (tests): the server, the poller and the listener stop where they are, with
    /// nothing finished or given back (its leases expire).
    pub fn kill(mut self) {
        for task in [self.server.take(), self.poller.take(), self.listener.take()]
            .into_iter()
            .flatten()
        {
            task.abort();
        }
    }
}

impl Drop for HostHandle {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

/// The host part of a URL (`http://127.0.0.1:7070/x` → `127.0.0.1`), for the plugin's allow-list.
pub(crate) fn url_host(url: &str) -> String {
    let rest = url.split_once("://").map(|(_, r)| r).unwrap_or(url);
    let authority = rest.split('/').next().unwrap_or(rest);
    let authority = authority
        .rsplit_once('@')
        .map(|(_, a)| a)
        .unwrap_or(authority);
    if let Some(v6) = authority.strip_prefix('[') {
        return v6.split(']').next().unwrap_or(v6).to_string();
    }
    authority.split(':').next().unwrap_or(authority).to_string()
}

/// Starts the host: opens the store, reconciles open payments, serves HTTP, polls.
pub async fn spawn(cfg: HostConfig) -> Result<HostHandle, HostError> {
    // Production refuses to start on missing or demo values (no-op with `demo`); merchants
    // only in the store are read first.
    let early_store = match cfg.may_use_stored_merchants() {
        true => Some(open_store(&cfg).await?),
        false => None,
    };
    let stored = match &early_store {
        Some(s) => s.merchants().await.map_err(|e| err("database", e))?.len(),
        None => 0,
    };
    cfg.check_with_stored(stored)
        .map_err(|problems| HostError(config::refusal(&problems)))?;
    let listener = tokio::net::TcpListener::bind(SocketAddr::new(cfg.host, cfg.port))
        .await
        .map_err(|e| err("binding", e))?;
    let addr = listener.local_addr().map_err(|e| err("binding", e))?;
    let ip = if addr.ip().is_unspecified() {
        IpAddr::V4(Ipv4Addr::LOCALHOST)
    } else {
        addr.ip()
    };
    let base_url = format!("http://{}", SocketAddr::new(ip, addr.port()));
    let public_url = cfg.public_url.clone().unwrap_or_else(|| base_url.clone());
    let plugin = cfg.plugin.as_ref().ok_or_else(|| {
        HostError(format!(
            "no plugin: pass --plugin FILE.wasm or set {} (`cargo xtask plugin` builds it)",
            cvco_plugin_host::WASM_ENV
        ))
    })?;
    let wasm =
        std::fs::read(plugin).map_err(|e| err(&format!("reading {}", plugin.display()), e))?;
    // Plugin pools per reception point of each merchant, built on first use; the engine's
    // merchant (`default`, else the first of [[merchants]]) is built now.
    let tenants = tenants::Tenants::from_config(&cfg, wasm).map_err(|e| err("merchants", e))?;
    let store = match early_store {
        Some(s) => s,
        None => open_store(&cfg).await?,
    };
    // The store's merchants (sealed secrets), then any change every few seconds.
    let merchants_seen = tenants
        .reload(&store, 0)
        .await
        .map_err(|e| err("merchants", e))?;
    let main_merchant = match cfg.shop_id.trim().is_empty() {
        false => tenants::DEFAULT_MERCHANT.to_string(),
        true => cfg
            .merchants
            .first()
            .map(|m| m.id.clone())
            .or_else(|| tenants.ids().into_iter().next())
            .unwrap_or_default(),
    };
    let point = tenants
        .plugin(&main_merchant, None)
        .map_err(|e| err("plugin", e))?;
    let pool = point.pool().await.map_err(|e| err("plugin", e))?;
    // Cookies go without `Secure` only on plain http to a loopback address.
    let secure = !(public_url.starts_with("http://")
        && (cfg.host.is_loopback() || cfg.host.is_unspecified()));
    let (m_kib, ttl, slots) = (cfg.argon2_m_kib, cfg.session_ttl_s, cfg.login_concurrency);
    let (manager, seller) = (cfg.manager.clone(), cfg.seller.clone());
    // The demo pieces exist only in demo mode (test orders only when asked for, too).
    let demo_routes = cfg.demo.then(|| demo::routes(&cfg));
    let plugin: Arc<dyn PluginCalls> = Arc::new(point);
    let engine = Arc::new(
        Engine::new(cfg, store, plugin, public_url.clone())
            .with_tenants(tenants.clone(), &main_merchant),
    );
    let auth = tokio::task::spawn_blocking(move || auth::Auth::new(m_kib, secure, ttl, slots))
        .await
        .map_err(|e| err("accounts", e))?;
    // Only accounts the configuration names (the demo ones with `demo`); none by default.
    if let Some(manager) = &manager {
        auth.ensure_user(
            &engine.store,
            &manager.username,
            &manager.password,
            "manager",
            auth::Permissions::ALL,
        )
        .await
        .map_err(|e| err("accounts", e))?;
    }
    let seller_perms = auth::Permissions {
        moto: true,
        counter: true,
        ..Default::default()
    };
    if let Some(seller) = &seller {
        auth.ensure_user(
            &engine.store,
            &seller.username,
            &seller.password,
            "seller",
            seller_perms,
        )
        .await
        .map_err(|e| err("accounts", e))?;
    }
    check_connection(engine.plugin.as_ref()).await?;
    engine.reconcile().await;
    let (stop, rx) = watch::channel(false);
    let poller = tokio::spawn(engine.clone().poll_loop(rx.clone()));
    // Each merchant's day closes at its closing hour (and days missed while stopped, now).
    tokio::spawn(http::reports::closing_loop(engine.clone(), rx.clone()));
    // Several instances on one PostgreSQL: the others' changes reach this one's subscribers.
    let e2 = engine.clone();
    let changes = engine
        .store
        .listen(rx.clone(), move |id| e2.changed_elsewhere(id));
    tokio::spawn(watch_merchants(
        tenants.clone(),
        engine.clone(),
        merchants_seen,
        rx.clone(),
    ));
    let app = Arc::new(http::App {
        engine: engine.clone(),
        auth,
        stop: rx.clone(),
    });
    let router = http::router(app.clone(), demo_routes);
    let mut server_rx = rx;
    let server = tokio::spawn(async move {
        let shutdown = async move {
            let _ = server_rx.wait_for(|s| *s).await;
        };
        // The peer address feeds per-client throttling.
        let service = router.into_make_service_with_connect_info::<SocketAddr>();
        if let Err(e) = axum::serve(listener, service)
            .with_graceful_shutdown(shutdown)
            .await
        {
            tracing::error!(error = %e, "server");
        }
    });
    tracing::info!(%base_url, %public_url, "cvco-host listening");
    Ok(HostHandle {
        base_url,
        addr,
        engine,
        app,
        pool,
        tenants,
        stop,
        server: Some(server),
        poller: Some(poller),
        listener: changes,
    })
}

async fn open_store(cfg: &HostConfig) -> Result<store::Store, HostError> {
    match &cfg.database {
        Some(database) => store::Store::connect(database).await,
        None => store::Store::open(cfg.data_file.as_deref()),
    }
    .map_err(|e| err("database", e))
}

/// Merchants added or changed in the store (`cvco-host merchant …`, another instance) reach
/// this host within [`MERCHANTS_RELOAD`]: their pools are rebuilt with the new secrets.
async fn watch_merchants(
    tenants: tenants::Tenants,
    engine: Arc<Engine>,
    mut seen: i64,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(MERCHANTS_RELOAD) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        match tenants.reload(&engine.store, seen).await {
            Ok(s) => seen = s,
            Err(e) => tracing::warn!(code = %e.code, "reloading merchants"),
        }
    }
}

const MERCHANTS_RELOAD: std::time::Duration = std::time::Duration::from_secs(2);

/// Start-up check through the plugin: a configuration the plugin cannot work with (a host
/// missing from `allowed_hosts`, bad credentials) stops the start with what is wrong; ANCV
/// being unreachable for now only warns (the poller and reconciliation retry).
async fn check_connection(plugin: &dyn PluginCalls) -> Result<(), HostError> {
    use cvco_core::plugin_api::CheckConnectionInput;
    let checked = plugin
        .check_connection(CheckConnectionInput::default())
        .await;
    match checked {
        Ok(status) => {
            tracing::info!(api = %status.api_base_url, shop_id = %status.shop_id, "ANCV connection checked");
            Ok(())
        }
        Err(e) if e.retryable => {
            tracing::warn!(code = %e.code, message = %e.message_en, "ANCV unreachable at start-up");
            Ok(())
        }
        Err(e) => Err(err("plugin", e)),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn url_host_strips_scheme_port_path() {
        assert_eq!(super::url_host("http://127.0.0.1:7070"), "127.0.0.1");
        assert_eq!(super::url_host("https://acq.example/api"), "acq.example");
        assert_eq!(super::url_host("http://[::1]:80/"), "::1");
    }
}
