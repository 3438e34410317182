//! Pools of plugin instances for many merchants in one process: one [`Pool`] per reception
//! point, created on first use, least-recently-used evicted above a bound, all sharing the
//! compiled module through a [`ModuleCache`].

use crate::failure::internal;
use crate::pool::{ModuleCache, Pool, PoolBuilder};
use cvco_core::CvcoError;
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Default bound on live pools. A live pool costs its idle instances, ~0.85 MiB RSS with one
/// (the compiled module is shared); 1,000 merchants paying once held 311 MiB at this bound,
/// 878 MiB with all 1,000 live (`tests/src/bin/tenants-bench.rs`, dev profile, 2026-12-03).
pub const DEFAULT_MAX_LIVE: usize = 256;

type Factory<K> = dyn Fn(&K) -> Result<PoolBuilder, CvcoError> + Send + Sync;

/// Builds a [`Registry`].
pub struct RegistryBuilder<K> {
    factory: Box<Factory<K>>,
    max_live: usize,
    modules: ModuleCache,
}

impl<K: Eq + Hash + Clone> RegistryBuilder<K> {
    /// At most `n` (≥ 1) pools kept; the least recently used is dropped to make room.
    pub fn max_live(mut self, n: usize) -> Self {
        self.max_live = n.max(1);
        self
    }

    /// Shares compiled modules with other registries or pools (one is made otherwise).
    pub fn modules(mut self, modules: ModuleCache) -> Self {
        self.modules = modules;
        self
    }

    pub fn build(self) -> Registry<K> {
        Registry {
            inner: Arc::new(RegInner {
                factory: self.factory,
                max_live: self.max_live,
                modules: self.modules,
                state: Mutex::new(State {
                    slots: HashMap::new(),
                    tick: 0,
                }),
                created: AtomicU64::new(0),
                evicted: AtomicU64::new(0),
                invalidated: AtomicU64::new(0),
            }),
        }
    }
}

/// One key's pool, built once: concurrent first callers wait on the same slot.
type Slot = Arc<Mutex<Option<Pool>>>;

struct Entry {
    slot: Slot,
    last_used: u64,
}

struct State<K> {
    slots: HashMap<K, Entry>,
    tick: u64,
}

struct RegInner<K> {
    factory: Box<Factory<K>>,
    max_live: usize,
    modules: ModuleCache,
    state: Mutex<State<K>>,
    created: AtomicU64,
    evicted: AtomicU64,
    invalidated: AtomicU64,
}

/// Pools keyed by reception point (`K`: a shop id, a merchant key), made by a factory that
/// returns the key's [`PoolBuilder`] (its config: credentials, shop id, settings).
///
/// Pools are cloned out, so an evicted or invalidated pool's calls in flight finish on it;
/// the next [`Registry::get`] builds a fresh one. Cheap to clone, `Send + Sync`.
pub struct Registry<K> {
    inner: Arc<RegInner<K>>,
}

impl<K> Clone for Registry<K> {
    fn clone(&self) -> Self {
        Registry {
            inner: self.inner.clone(),
        }
    }
}

/// Counters for tests and monitoring.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RegistryStats {
    /// Pools held now.
    pub live: usize,
    /// Pools built since the start.
    pub created: u64,
    /// Pools dropped by the LRU bound.
    pub evicted: u64,
    /// Pools dropped by [`Registry::invalidate`].
    pub invalidated: u64,
    /// Modules compiled (shared by all pools with the same wasm and manifest options).
    pub modules_compiled: u64,
}

impl<K: Eq + Hash + Clone> Registry<K> {
    pub fn builder(
        factory: impl Fn(&K) -> Result<PoolBuilder, CvcoError> + Send + Sync + 'static,
    ) -> RegistryBuilder<K> {
        RegistryBuilder {
            factory: Box::new(factory),
            max_live: DEFAULT_MAX_LIVE,
            modules: ModuleCache::new(),
        }
    }

    /// The key's pool, built by the factory on first use (the factory's error is returned
    /// and nothing is kept, so the next call tries again). Blocks while building.
    pub fn get(&self, key: &K) -> Result<Pool, CvcoError> {
        let slot = self.slot(key)?;
        let mut guard = slot
            .lock()
            .map_err(|_| internal("registry slot lock poisoned"))?;
        if let Some(pool) = guard.as_ref() {
            return Ok(pool.clone());
        }
        let built = (self.inner.factory)(key).and_then(|b| b.build_shared(&self.inner.modules));
        let pool = match built {
            Ok(pool) => pool,
            Err(e) => {
                // An empty slot must not hold a place under the bound.
                if let Ok(mut state) = self.inner.state.lock() {
                    if state
                        .slots
                        .get(key)
                        .is_some_and(|e| Arc::ptr_eq(&e.slot, &slot))
                    {
                        state.slots.remove(key);
                    }
                }
                return Err(e);
            }
        };
        self.inner.created.fetch_add(1, Ordering::Relaxed);
        *guard = Some(pool.clone());
        Ok(pool)
    }

    /// [`Registry::get`] from async code, off the runtime's worker threads.
    pub async fn get_async(&self, key: &K) -> Result<Pool, CvcoError>
    where
        K: Send + Sync + 'static,
    {
        let (registry, key) = (self.clone(), key.clone());
        tokio::task::spawn_blocking(move || registry.get(&key))
            .await
            .map_err(|e| internal(&format!("registry task: {e}")))?
    }

    /// Drops the key's pool (its credentials or settings changed): calls in flight finish on
    /// the old one, the next `get` builds from the factory again. True if one was held.
    pub fn invalidate(&self, key: &K) -> bool {
        let removed = self
            .inner
            .state
            .lock()
            .map(|mut s| s.slots.remove(key).is_some())
            .unwrap_or(false);
        if removed {
            self.inner.invalidated.fetch_add(1, Ordering::Relaxed);
        }
        removed
    }

    /// Whether the key has a pool now (a `get` would not build one).
    pub fn is_live(&self, key: &K) -> bool {
        let slot = match self.inner.state.lock() {
            Ok(s) => s.slots.get(key).map(|e| e.slot.clone()),
            Err(_) => None,
        };
        slot.is_some_and(|s| s.lock().is_ok_and(|p| p.is_some()))
    }

    pub fn stats(&self) -> RegistryStats {
        RegistryStats {
            live: self.inner.state.lock().map_or(0, |s| s.slots.len()),
            created: self.inner.created.load(Ordering::Relaxed),
            evicted: self.inner.evicted.load(Ordering::Relaxed),
            invalidated: self.inner.invalidated.load(Ordering::Relaxed),
            modules_compiled: self.inner.modules.compiled(),
        }
    }

    pub fn max_live(&self) -> usize {
        self.inner.max_live
    }

    /// The key's slot, marked most recently used; a new key may evict the least recently used.
    fn slot(&self, key: &K) -> Result<Slot, CvcoError> {
        let mut state = self
            .inner
            .state
            .lock()
            .map_err(|_| internal("registry lock poisoned"))?;
        state.tick += 1;
        let tick = state.tick;
        if let Some(entry) = state.slots.get_mut(key) {
            entry.last_used = tick;
            return Ok(entry.slot.clone());
        }
        // A scan only when a pool is added: O(live) against a compilation-free build.
        while state.slots.len() >= self.inner.max_live {
            let Some(oldest) = state
                .slots
                .iter()
                .min_by_key(|(_, e)| e.last_used)
                .map(|(k, _)| k.clone())
            else {
                break;
            };
            state.slots.remove(&oldest);
            self.inner.evicted.fetch_add(1, Ordering::Relaxed);
        }
        let slot: Slot = Arc::new(Mutex::new(None));
        state.slots.insert(
            key.clone(),
            Entry {
                slot: slot.clone(),
                last_used: tick,
            },
        );
        Ok(slot)
    }
}
