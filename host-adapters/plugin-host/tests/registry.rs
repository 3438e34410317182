//! The registry with the real plugin: lazy pools, the LRU bound, one build for concurrent first
//! calls, per-merchant config over one compiled module (checked against the sandbox), rebuilds.

use cvco_core::plugin_api::exports::{Capabilities, CheckConnection};
use cvco_core::plugin_api::{CheckConnectionInput, Empty};
use cvco_core::{Channel, ShopId};
use cvco_plugin_host::{Pool, PoolBuilder, Registry};
use cvco_sandbox::engine::CreateShop;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::time::Duration;

fn wasm() -> &'static [u8] {
    cvco_test_host::plugin_wasm().expect("the plugin (CVCO_PLUGIN_WASM or a build)")
}

/// A builder that needs no server: only `capabilities` is called on it.
fn offline(shop: &str) -> PoolBuilder {
    Pool::builder(wasm())
        .config("api_base_url", "http://127.0.0.1:9")
        .config("shop_id", shop)
        .config("client_id", format!("client-{shop}"))
        .config("client_secret", "s")
        .allowed_host("127.0.0.1")
        .max_idle(1)
}

/// Whether the pool's instances see `key` in their config.
fn has_config(pool: &Pool, key: &str) -> bool {
    let caps = pool.call::<Capabilities>(&Empty {}).expect("capabilities");
    caps.config_keys
        .iter()
        .find(|k| k.key == key)
        .expect("known key")
        .present
}

struct Sandbox {
    rt: tokio::runtime::Runtime,
    handle: Option<cvco_sandbox::SandboxHandle>,
}

impl Sandbox {
    fn start() -> Sandbox {
        let rt = tokio::runtime::Runtime::new().expect("runtime");
        let handle = rt
            .block_on(cvco_sandbox::spawn(cvco_sandbox::SandboxConfig::default()))
            .expect("sandbox");
        Sandbox {
            rt,
            handle: Some(handle),
        }
    }

    fn url(&self) -> String {
        self.handle.as_ref().expect("running").base_url.clone()
    }

    fn add_shop(&self, shop: &str, client_id: &str, secret: &str) {
        let req = CreateShop {
            shop_id: ShopId::parse(shop).expect("shop id"),
            name: None,
            client_id: client_id.into(),
            client_secret: secret.into(),
            notification_secret: format!("whsec-{shop}"),
            channels: Channel::ALL.to_vec(),
            settings: Default::default(),
            cancel_password: None,
            fee_bps: None,
            token_ttl_s: None,
        };
        let handle = self.handle.as_ref().expect("running");
        handle.state.lock().create_shop(req).expect("shop created");
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        if let Some(h) = self.handle.take() {
            self.rt.block_on(h.shutdown());
        }
    }
}

/// Merchant credentials the factory reads, as a host's store would.
type Creds = Arc<Mutex<HashMap<String, (String, String)>>>;

fn sandbox_registry(url: String, creds: Creds) -> Registry<String> {
    Registry::builder(move |shop: &String| {
        let (client_id, secret) = creds.lock().unwrap().get(shop).cloned().ok_or_else(|| {
            cvco_core::CvcoError::new(cvco_core::ErrorCode::NotFound).with_field("shop_id")
        })?;
        Ok(Pool::builder(wasm())
            .config("api_base_url", url.clone())
            .config("shop_id", shop.clone())
            .config("client_id", client_id)
            .config("client_secret", secret)
            .allowed_host("127.0.0.1")
            .max_idle(1))
    })
    .build()
}

#[test]
fn pools_are_created_on_first_use_and_each_shop_answers_with_its_own_credentials() {
    let sb = Sandbox::start();
    sb.add_shop("SHOP-A", "client-a", "secret-a");
    sb.add_shop("SHOP-B", "client-b", "secret-b");
    let creds: Creds = Arc::new(Mutex::new(HashMap::from([
        ("SHOP-A".into(), ("client-a".into(), "secret-a".into())),
        ("SHOP-B".into(), ("client-b".into(), "secret-b".into())),
        // Shop B's client id with A's secret: must be refused, so config is not mixed up.
        ("SHOP-C".into(), ("client-b".into(), "secret-a".into())),
    ])));
    let registry = sandbox_registry(sb.url(), creds);
    assert_eq!(registry.stats().created, 0);
    assert!(!registry.is_live(&"SHOP-A".to_string()));

    for shop in ["SHOP-A", "SHOP-B", "SHOP-A", "SHOP-B"] {
        let pool = registry.get(&shop.to_string()).expect("pool");
        let status = pool
            .call::<CheckConnection>(&CheckConnectionInput::default())
            .expect("credentials accepted");
        assert_eq!(status.shop_id, shop);
    }
    let refused = registry
        .get(&"SHOP-C".to_string())
        .expect("pool")
        .call::<CheckConnection>(&CheckConnectionInput::default());
    assert!(refused.is_err(), "wrong secret accepted: {refused:?}");

    let stats = registry.stats();
    assert_eq!((stats.created, stats.live), (3, 3));
    assert_eq!(
        stats.modules_compiled, 1,
        "one compiled module for every shop"
    );
    assert!(registry.get(&"SHOP-UNKNOWN".to_string()).is_err());
    assert_eq!(registry.stats().live, 3, "a failed build holds no place");
}

#[test]
fn the_least_recently_used_pool_is_evicted_at_the_bound_and_its_holders_keep_working() {
    let registry = Registry::builder(|shop: &String| Ok(offline(shop)))
        .max_live(2)
        .build();
    let key = |s: &str| s.to_string();
    let b = registry.get(&key("b")).expect("b");
    registry.get(&key("a")).expect("a");
    registry.get(&key("b")).expect("b again");
    registry.get(&key("c")).expect("c");
    let stats = registry.stats();
    assert_eq!((stats.live, stats.created, stats.evicted), (2, 3, 1));
    assert!(
        !registry.is_live(&key("a")),
        "a was the least recently used"
    );
    assert!(registry.is_live(&key("b")) && registry.is_live(&key("c")));
    registry.get(&key("a")).expect("a rebuilt");
    assert!(!registry.is_live(&key("b")));
    assert_eq!(registry.stats().created, 4);
    // b's pool was cloned out before its eviction: it still answers.
    assert!(has_config(&b, "shop_id"));
}

#[test]
fn concurrent_first_calls_for_one_key_build_one_pool() {
    let builds = Arc::new(AtomicUsize::new(0));
    let counted = builds.clone();
    let registry = Registry::builder(move |shop: &String| {
        counted.fetch_add(1, Ordering::SeqCst);
        std::thread::sleep(Duration::from_millis(50));
        Ok(offline(shop))
    })
    .build();
    let barrier = Arc::new(Barrier::new(8));
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let (registry, barrier) = (registry.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                let pool = registry.get(&"SHOP-X".to_string()).expect("pool");
                has_config(&pool, "shop_id")
            })
        })
        .collect();
    for t in threads {
        assert!(t.join().expect("thread"));
    }
    assert_eq!(builds.load(Ordering::SeqCst), 1);
    assert_eq!(registry.stats().created, 1);
}

#[test]
fn invalidate_rebuilds_the_pool_with_the_new_credentials() {
    let sb = Sandbox::start();
    sb.add_shop("SHOP-R", "client-r", "new-secret");
    let creds: Creds = Arc::new(Mutex::new(HashMap::from([(
        "SHOP-R".into(),
        ("client-r".into(), "old-secret".into()),
    )])));
    let registry = sandbox_registry(sb.url(), creds.clone());
    let shop = "SHOP-R".to_string();
    let check = |pool: &Pool| pool.call::<CheckConnection>(&CheckConnectionInput::default());
    let old = registry.get(&shop).expect("pool");
    assert!(check(&old).is_err(), "the old secret is refused");

    creds
        .lock()
        .unwrap()
        .insert(shop.clone(), ("client-r".into(), "new-secret".into()));
    assert!(
        check(&registry.get(&shop).expect("pool")).is_err(),
        "not rebuilt yet"
    );
    assert!(registry.invalidate(&shop));
    assert!(!registry.is_live(&shop));
    let status = check(&registry.get(&shop).expect("pool")).expect("new secret accepted");
    assert_eq!(status.shop_id, "SHOP-R");
    let stats = registry.stats();
    assert_eq!((stats.created, stats.invalidated), (2, 1));
    assert!(!registry.invalidate(&"SHOP-NONE".to_string()));
}

#[test]
fn pools_share_a_module_only_when_the_manifest_options_agree() {
    let registry = Registry::builder(|shop: &String| {
        let b = offline(shop);
        Ok(if shop.starts_with("slow") {
            b.timeout(Duration::from_secs(30))
        } else {
            b.config("notification_secret", "whsec")
        })
    })
    .build();
    let fast = registry.get(&"fast-1".to_string()).expect("pool");
    registry.get(&"fast-2".to_string()).expect("pool");
    let slow = registry.get(&"slow-1".to_string()).expect("pool");
    assert_eq!(registry.stats().modules_compiled, 2);
    // Config differs between pools of one module, and is the pool's own.
    assert!(has_config(&fast, "notification_secret"));
    assert!(!has_config(&slow, "notification_secret"));
}
