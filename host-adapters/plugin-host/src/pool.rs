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

    fn call_timeout(&self) -> Duration {
        self.timeout.unwrap_or_else(|| {
            let ms = self
                .config
                .get("request_timeout_ms")
                .and_then(|v| v.trim().parse::<u64>().ok())
                .filter(|ms| (1..=600_000).contains(ms))
                .unwrap_or(DEFAULT_REQUEST_TIMEOUT_MS);
            Duration::from_millis(ms)
        })
    }

    /// Compiles the module once; instances are created from it on demand.
    pub fn build(self) -> Result<Pool, CvcoError> {
        let timeout = self.call_timeout();
        let compiled = compile(
            self.wasm,
            self.config,
            self.allowed_hosts,
            timeout,
            self.response_headers,
        )?;
        Ok(Pool::from_parts(compiled, None, self.max_idle))
    }

    /// Like [`PoolBuilder::build`], but the compiled module comes from `modules`: pools whose
    /// wasm, allowed hosts, call budget and response-headers setting agree share one compiled
    /// module (one wasmtime engine and code), and each instance gets this pool's config.
    pub fn build_shared(self, modules: &ModuleCache) -> Result<Pool, CvcoError> {
        let timeout = self.call_timeout();
        let key = ModuleKey {
            wasm: self.wasm,
            allowed_hosts: self.allowed_hosts,
            timeout,
            response_headers: self.response_headers,
        };
        let compiled = modules.get_or_compile(key)?;
        let config: BTreeMap<String, Option<String>> =
            self.config.into_iter().map(|(k, v)| (k, Some(v))).collect();
        let config = serde_json::to_vec(&config)
            .map_err(|e| internal(&format!("serialising the plugin config: {e}")))?;
        Ok(Pool::from_parts(compiled, Some(config), self.max_idle))
    }
}

fn compile(
    wasm: Vec<u8>,
    config: BTreeMap<String, String>,
    allowed_hosts: Vec<String>,
    timeout: Duration,
    response_headers: bool,
) -> Result<CompiledPlugin, CvcoError> {
    let manifest = Manifest::new([Wasm::data(wasm)])
        .with_config(config.into_iter())
        .with_allowed_hosts(allowed_hosts.into_iter())
        .with_timeout(timeout);
    PluginBuilder::new(manifest)
        .with_wasi(false)
        .with_http_response_headers(response_headers)
        .compile()
        .map_err(|e| internal(&format!("compiling the plugin: {e:#}")))
}

/// What a compiled module depends on besides the config: extism bakes these into the
/// manifest it compiles with, and they apply to every instance.
#[derive(PartialEq, Eq)]
struct ModuleKey {
    wasm: Vec<u8>,
    allowed_hosts: Vec<String>,
    timeout: Duration,
    response_headers: bool,
}

/// Compiled modules shared by many pools (one per distinct wasm, allowed hosts, call budget
/// and response-headers setting), so a thousand merchants' pools hold one compiled plugin.
///
/// extism 1.30 compiles the manifest config into a `CompiledPlugin` and has no Rust API to
/// change it; its C API's `extism_plugin_config` (public in `extism::sdk`) sets one
/// instance's config, which is what pools built by [`PoolBuilder::build_shared`] do.
#[derive(Clone, Default)]
pub struct ModuleCache {
    inner: Arc<Mutex<Vec<(ModuleKey, CompiledPlugin)>>>,
    compiled: Arc<AtomicU64>,
}

impl ModuleCache {
    pub fn new() -> Self {
        Self::default()
    }

    /// How many modules were compiled (not served from the cache).
    pub fn compiled(&self) -> u64 {
        self.compiled.load(Ordering::Relaxed)
    }

    /// Modules held now.
    pub fn len(&self) -> usize {
        self.inner.lock().map_or(0, |v| v.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn get_or_compile(&self, key: ModuleKey) -> Result<CompiledPlugin, CvcoError> {
        // Compiling under the lock: concurrent first pools wait for one compilation.
        let mut modules = self
            .inner
            .lock()
            .map_err(|_| internal("module cache lock poisoned"))?;
        if let Some((_, c)) = modules.iter().find(|(k, _)| *k == key) {
            return Ok(c.clone());
        }
        let compiled = compile(
            key.wasm.clone(),
            BTreeMap::new(),
            key.allowed_hosts.clone(),
            key.timeout,
            key.response_headers,
        )?;
        self.compiled.fetch_add(1, Ordering::Relaxed);
        modules.push((key, compiled.clone()));
        Ok(compiled)
    }
}

struct Inner {
    compiled: CompiledPlugin,
    /// JSON for `extism_plugin_config` when the compiled module is shared without config.
    instance_config: Option<Vec<u8>>,
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

    fn from_parts(
        compiled: CompiledPlugin,
        instance_config: Option<Vec<u8>>,
        max_idle: usize,
    ) -> Pool {
        Pool {
            inner: Arc::new(Inner {
                compiled,
                instance_config,
                idle: Mutex::new(Vec::new()),
                max_idle,
                created: AtomicU64::new(0),
                discarded: AtomicU64::new(0),
            }),
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
        let mut plugin = Plugin::new_from_compiled(&self.inner.compiled)
            .map_err(|e| internal(&format!("instantiating the plugin: {e:#}")))?;
        if let Some(json) = &self.inner.instance_config {
            // SAFETY: `plugin` is a live, exclusively borrowed Plugin; the JSON slice outlives
            // the call, which copies what it keeps.
            let ok = unsafe {
                extism::sdk::extism_plugin_config(&mut plugin, json.as_ptr(), json.len() as _)
            };
            if !ok {
                return Err(internal("setting the plugin instance's config"));
            }
        }
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
