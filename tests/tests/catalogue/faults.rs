//! The acquisition server failing: 5xx, slow answers, nobody listening. Always a typed,
//! retryable error, and the pool keeps working.

use crate::common::*;
use cvco_core::plugin_api::{Payment, ValidatedBeneficiary};
use cvco_core::{ErrorCode, NormalizedStatus};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

#[test]
fn server_errors_are_retryable() {
    let shop = shop();
    let pool = shop.pool();
    let p = create_payment(&pool, 2500, None);
    shop.faults(json!({"error_rate": 1.0}));
    let e = fails(&pool, "get_payment", json!({"payment_id": p.id}));
    assert_code(&e, ErrorCode::UpstreamUnavailable);
    assert!(e.retryable);
    let e = fails(
        &pool,
        "create_payment",
        json!({"order_ref": unique("CMD"), "amount_cents": 2500, "channel": "ecommerce", "idempotency_key": "k-5xx"}),
    );
    assert!(e.retryable);
    assert!(e.message_fr.contains("même clé d'idempotence"), "{e:?}");
    shop.clear_faults();
    // The same instance carries on: typed errors never discard it.
    let again: Payment = call(&pool, "get_payment", json!({"payment_id": p.id}));
    assert_eq!(again.status, NormalizedStatus::Pending);
    assert_eq!(pool.stats().discarded, 0);
    assert_eq!(pool.stats().created, 1);
}

#[test]
fn slow_server_times_out_with_a_retryable_error() {
    let shop = shop();
    let pool = shop.pool_with(&[("request_timeout_ms", "400")]);
    let p = create_payment(&pool, 2500, None);
    shop.faults(json!({"latency_ms": 1500}));
    let started = Instant::now();
    let e = fails(&pool, "get_payment", json!({"payment_id": p.id}));
    assert!(
        started.elapsed() < Duration::from_millis(1400),
        "{:?}",
        started.elapsed()
    );
    assert_code(&e, ErrorCode::UpstreamTimeout);
    assert!(e.retryable);
    assert_eq!(
        pool.stats().discarded,
        1,
        "the interrupted instance is not reused"
    );
    shop.clear_faults();
    let again: Payment = call(&pool, "get_payment", json!({"payment_id": p.id}));
    assert_eq!(again.id, p.id);
    // Latency under the budget is just slower.
    shop.faults(json!({"latency_ms": 100}));
    let _: Payment = call(&pool, "get_payment", json!({"payment_id": p.id}));
    shop.clear_faults();
}

#[test]
fn nobody_listening_or_host_not_allowed() {
    let shop = shop();
    // A port nobody listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let pool = shop.pool_with(&[("api_base_url", &format!("http://127.0.0.1:{port}"))]);
    let e = fails(&pool, "get_payment", json!({"payment_id": "tx_1"}));
    assert_code(&e, ErrorCode::UpstreamUnavailable);
    assert!(e.retryable);
    // The host did not allow this host name: Extism traps the plugin; no retry can help, so
    // it is a configuration error naming the key to fix, and check_connection says so first.
    let pool = cvco_plugin_host::Pool::builder(wasm())
        .configs(shop.config())
        .build()
        .unwrap();
    let e = fails(&pool, "get_payment", json!({"payment_id": "tx_1"}));
    assert_code(&e, ErrorCode::ConfigInvalid);
    assert_eq!(e.field.as_deref(), Some("allowed_hosts"));
    assert!(!e.retryable);
    let e = fails(&pool, "check_connection", json!({}));
    assert_code(&e, ErrorCode::ConfigInvalid);
    assert_eq!(e.field.as_deref(), Some("allowed_hosts"));
    // Offline exports still work on a fresh instance.
    let v: ValidatedBeneficiary = call(
        &pool,
        "validate_beneficiary",
        json!({"input": "10000000001"}),
    );
    assert_eq!(v.value, "10000000001");
}

#[test]
fn calls_from_async_code() {
    let shop = shop();
    let pool = shop.pool();
    let results = env().runtime.block_on(async {
        let mut tasks = Vec::new();
        for i in 0..4 {
            let pool = pool.clone();
            tasks.push(tokio::spawn(async move {
                let input = json!({"order_ref": format!("ASYNC-{i}"), "amount_cents": 2000 + i,
                                   "channel": "ecommerce", "idempotency_key": format!("async-{i}")});
                pool.call_by_name_async::<_, Value>("create_payment", &input).await
            }));
        }
        let mut out = Vec::new();
        for t in tasks {
            out.push(t.await.unwrap());
        }
        out
    });
    for r in results {
        assert_eq!(r.unwrap()["status"], "pending");
    }
    let stats = pool.stats();
    assert!(stats.created >= 1 && stats.created <= 4, "{stats:?}");
    assert_eq!(stats.discarded, 0);
}
