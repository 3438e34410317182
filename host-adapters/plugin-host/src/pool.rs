//! A pool of plugin instances from one compiled module, and typed export calls.

use crate::failure::{extism_failure, internal};
use cvco_core::plugin_api::{Export, Reply};
use cvco_core::{CvcoError, ErrorCode};
use extism::{CompiledPlugin, Manifest, Plugin, PluginBuilder, Wasm};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
/// The default of the plugin's `request_timeout_ms`, used as the call budget when none is set.
pub const DEFAULT_REQUEST_TIMEOUT_MS: u64 = 10_000;

/// Configures a [`Pool`]: the plugin's manifest config, the hosts it may call, the time budget
/// of one call.
pub struct PoolBuilder {
    wasm: Vec<u8>,
    config: BTreeMap<String, String>,
    allowed_hosts: Vec<String>,
    timeout: Option<Duration>,
    max_idle: usize,
    response_headers: bool,
}

impl PoolBuilder {
    pub fn config(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.config.insert(key.into(), value.into());
        self
    }

    pub fn configs<K: Into<String>, V: Into<String>>(
        mut self,
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        for (k, v) in pairs {
            self.config.insert(k.into(), v.into());
        }
        self
    }

    /// A host name (glob allowed, no port) the plugin may send HTTP requests to.
    pub fn allowed_host(mut self, host: impl Into<String>) -> Self {
        self.allowed_hosts.push(host.into());
        self
    }

    /// Budget of one export call, HTTP included. Default: the plugin's `request_timeout_ms`
    /// config when it parses, else 10 s. The plugin has no clock: Extism enforces it.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Instances kept warm between calls (more are created under load, then dropped).
    pub fn max_idle(mut self, n: usize) -> Self {
        self.max_idle = n.max(1);
        self
    }

    /// Whether the plugin sees HTTP response headers (the server's `Date`). On by default;
    /// off reproduces hosts (some SDKs) that hide them.
    pub fn response_headers(mut self, allow: bool) -> Self {
        self.response_headers = allow;
        self
    }

    /// Compiles the module once; instances are created from it on demand.
    pub fn build(self) -> Result<Pool, CvcoError> {
        let timeout = self.timeout.unwrap_or_else(|| {
            let ms = self
                .config
                .get("request_timeout_ms")
                .and_then(|v| v.trim().parse::<u64>().ok())
                .filter(|ms| (1..=600_000).contains(ms))
                .unwrap_or(DEFAULT_REQUEST_TIMEOUT_MS);
            Duration::from_millis(ms)
        });
        let manifest = Manifest::new([Wasm::data(self.wasm)])
            .with_config(self.config.into_iter())
            .with_allowed_hosts(self.allowed_hosts.into_iter())
            .with_timeout(timeout);
        let compiled = PluginBuilder::new(manifest)
            .with_wasi(false)
            .with_http_response_headers(self.response_headers)
            .compile()
            .map_err(|e| internal(&format!("compiling the plugin: {e:#}")))?;
        Ok(Pool {
            inner: Arc::new(Inner {
                compiled,
                idle: Mutex::new(Vec::new()),
                max_idle: self.max_idle,
                created: AtomicU64::new(0),
                discarded: AtomicU64::new(0),
            }),
        })
    }
}

struct Inner {
    compiled: CompiledPlugin,
    idle: Mutex<Vec<Plugin>>,
    max_idle: usize,
    created: AtomicU64,
    discarded: AtomicU64,
}

/// Plugin instances from one compiled module, reused across calls and threads.
///
/// extism 1.30 ships a `Pool`, but it always returns an instance to the pool on drop, even one
/// that trapped or timed out; this one discards such an instance and creates a fresh one.
/// `Pool` is cheap to clone and `Send + Sync`. Calls block: from async code use
/// [`Pool::call_async`], which runs them on tokio's blocking threads.
#[derive(Clone)]
pub struct Pool {
    inner: Arc<Inner>,
}

/// Counters for tests and monitoring.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolStats {
    pub created: u64,
    pub discarded: u64,
    pub idle: usize,
}

impl Pool {
    pub fn builder(wasm: impl Into<Vec<u8>>) -> PoolBuilder {
        PoolBuilder {
            wasm: wasm.into(),
            config: BTreeMap::new(),
            allowed_hosts: Vec::new(),
            timeout: None,
            max_idle: std::thread::available_parallelism().map_or(2, |n| n.get()),
            response_headers: true,
        }
    }

    pub fn stats(&self) -> PoolStats {
        PoolStats {
            created: self.inner.created.load(Ordering::Relaxed),
            discarded: self.inner.discarded.load(Ordering::Relaxed),
            idle: self.inner.idle.lock().map_or(0, |v| v.len()),
        }
    }

    fn checkout(&self) -> Result<Plugin, CvcoError> {
        if let Some(p) = self.inner.idle.lock().ok().and_then(|mut v| v.pop()) {
            return Ok(p);
        }
        let plugin = Plugin::new_from_compiled(&self.inner.compiled)
            .map_err(|e| internal(&format!("instantiating the plugin: {e:#}")))?;
        self.inner.created.fetch_add(1, Ordering::Relaxed);
        Ok(plugin)
    }

    fn checkin(&self, plugin: Plugin) {
        if let Ok(mut idle) = self.inner.idle.lock() {
            if idle.len() < self.inner.max_idle {
                idle.push(plugin);
            }
        }
    }

    /// Calls `function` with raw input bytes; returns the plugin's raw JSON answer
    /// (`{"ok": ..}` or `{"error": ..}`), or the Extism-level failure as a typed error.
    pub fn call_raw(&self, function: &str, input: &[u8]) -> Result<Vec<u8>, CvcoError> {
        let mut plugin = self.checkout()?;
        if !plugin.function_exists(function) {
            self.checkin(plugin);
            return Err(CvcoError::new(ErrorCode::NotFound)
                .with_detail(function, function)
                .with_field("function"));
        }
        match plugin.call::<&[u8], Vec<u8>>(function, input) {
            Ok(out) => {
                self.checkin(plugin);
                Ok(out)
            }
            Err(e) => {
                self.inner.discarded.fetch_add(1, Ordering::Relaxed);
                drop(plugin);
                Err(extism_failure(&e))
            }
        }
    }

    /// Calls the export `E` (named once, in `cvco_core::plugin_api::exports`); the plugin's
    /// typed errors come back as `Err`.
    pub fn call<E: Export>(&self, input: &E::Input) -> Result<E::Output, CvcoError>
    where
        E::Output: DeserializeOwned,
    {
        self.call_by_name(E::NAME, input)
    }

    /// [`Pool::call`] from async code, off the runtime's worker threads.
    pub async fn call_async<E: Export>(&self, input: &E::Input) -> Result<E::Output, CvcoError>
    where
        E::Output: DeserializeOwned + Send + 'static,
    {
        self.call_by_name_async(E::NAME, input).await
    }

    /// Calls `function` with any JSON input (tests that send the plugin what no typed host
    /// would); the plugin's typed errors come back as `Err`.
    pub fn call_by_name<I: Serialize + ?Sized, O: DeserializeOwned>(
        &self,
        function: &str,
        input: &I,
    ) -> Result<O, CvcoError> {
        let input = serde_json::to_vec(input)
            .map_err(|e| internal(&format!("serialising the input: {e}")))?;
        decode(&self.call_raw(function, &input)?)
    }

    /// [`Pool::call_by_name`] from async code, off the runtime's worker threads.
    pub async fn call_by_name_async<I: Serialize + ?Sized, O: DeserializeOwned + Send + 'static>(
        &self,
        function: &str,
        input: &I,
    ) -> Result<O, CvcoError> {
        let input = serde_json::to_vec(input)
            .map_err(|e| internal(&format!("serialising the input: {e}")))?;
        let pool = self.clone();
        let function = function.to_string();
        tokio::task::spawn_blocking(move || decode(&pool.call_raw(&function, &input)?))
            .await
            .map_err(|e| internal(&format!("plugin call task: {e}")))?
    }
}

fn decode<O: DeserializeOwned>(answer: &[u8]) -> Result<O, CvcoError> {
    serde_json::from_slice::<Reply<O>>(answer)
        .map_err(|e| internal(&format!("unreadable plugin answer: {e}")))?
        .into_result()
}
