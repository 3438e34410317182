//! Signed notifications from the sandbox, verified by the plugin; replays decided by the host.

use crate::common::*;
use cvco_core::signature::VerifiedNotification;
use cvco_core::ErrorCode;
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

fn input(c: &Captured) -> Value {
    let headers: BTreeMap<String, String> = c.headers.iter().cloned().collect();
    json!({"headers": headers, "body": c.body})
}

#[test]
fn notifications_accepted_forged_stale_replayed() {
    let shop = shop();
    let pool = shop.pool();
    let rx = receiver();
    let p: cvco_core::plugin_api::Payment = call(
        &pool,
        "create_payment",
        json!({"order_ref": unique("CMD"), "amount_cents": 2700, "channel": "ecommerce",
               "beneficiary": "alice.approve@sandbox.cvco.test", "idempotency_key": unique("k"),
               "notification_url": rx.url}),
    );
    let captured = rx.wait_for(Duration::from_secs(10), |n| {
        n["transaction_id"] == json!(p.id) && n["state"] == "VALIDATED"
    });

    // Accepted: no `now` given, the plugin reads the server's Date (GET /healthz).
    let mut seen = HashSet::new();
    let v: VerifiedNotification = call(&pool, "verify_notification", input(&captured));
    assert_eq!(
        v.notification.transaction_id.as_deref(),
        Some(p.id.as_str())
    );
    assert_eq!(v.notification.state, "VALIDATED");
    assert!(v.event_id.starts_with("evt_"));
    // What a host dedups on, with the sequence: the transaction, named by the plugin.
    assert_eq!(v.object_key, format!("transaction:{}", p.id));
    assert!(seen.insert(v.event_id.clone()), "first delivery is new");
    // Header names are case-insensitive.
    let mut upper = input(&captured);
    let headers: BTreeMap<String, String> = captured
        .headers
        .iter()
        .map(|(k, v)| (k.to_ascii_uppercase(), v.clone()))
        .collect();
    upper["headers"] = json!(headers);
    let again: VerifiedNotification = call(&pool, "verify_notification", upper);
    // Replayed: still authentic, and the host's seen-set says it is a replay.
    assert!(
        !seen.insert(again.event_id.clone()),
        "replay detected by event id"
    );

    // Forged: one byte of the body changed.
    let mut forged = input(&captured);
    forged["body"] = json!(captured.body.replace("VALIDATED", "CANCELLED"));
    assert_code(
        &fails(&pool, "verify_notification", forged),
        ErrorCode::NotificationBadSignature,
    );
    // Signed with another shop's secret.
    let other = crate::common::shop();
    let foreign = other.pool();
    assert_code(
        &fails(&foreign, "verify_notification", input(&captured)),
        ErrorCode::NotificationBadSignature,
    );
    // Stale: the receiver's clock is 10 minutes later than the signature.
    let mut stale = input(&captured);
    stale["now"] = json!(v.signed_at.plus_secs(600));
    assert_code(
        &fails(&pool, "verify_notification", stale.clone()),
        ErrorCode::NotificationStale,
    );
    stale["tolerance_s"] = json!(3600);
    let _: VerifiedNotification = call(&pool, "verify_notification", stale);
    // Malformed header, missing header, event id not matching the body.
    let mut bad = input(&captured);
    bad["headers"] = json!({"CVCo-Signature": "garbage"});
    assert_code(
        &fails(&pool, "verify_notification", bad),
        ErrorCode::NotificationMalformed,
    );
    let mut missing = input(&captured);
    missing["headers"] = json!({});
    assert_code(
        &fails(&pool, "verify_notification", missing),
        ErrorCode::NotificationBadSignature,
    );
    let mut mismatch = input(&captured);
    let sig = captured
        .headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("cvco-signature"))
        .unwrap()
        .1
        .clone();
    mismatch["headers"] = json!({"CVCo-Signature": sig, "CVCo-Event-Id": "evt_other"});
    assert_code(
        &fails(&pool, "verify_notification", mismatch),
        ErrorCode::NotificationMalformed,
    );
    // Without the notification secret the plugin cannot verify: a configuration error.
    let no_secret = cvco_plugin_host::Pool::builder(wasm())
        .configs(
            shop.config()
                .into_iter()
                .filter(|(k, _)| *k != "notification_secret"),
        )
        .allowed_host("127.0.0.1")
        .build()
        .unwrap();
    let e = fails(&no_secret, "verify_notification", input(&captured));
    assert_code(&e, ErrorCode::ConfigMissing);
    assert_eq!(e.field.as_deref(), Some("notification_secret"));
}

#[test]
fn verification_with_explicit_now_needs_no_network() {
    let shop = shop();
    let now = now();
    let body = json!({"id": "evt_local", "type": "transaction.updated",
        "created_at": now, "shop_id": shop.id, "merchant_order_id": "CMD-1",
        "transaction_id": "tx_1", "state": "VALIDATED", "sequence": 1})
    .to_string();
    let header =
        cvco_core::signature::sign(shop.notification_secret.as_bytes(), now, body.as_bytes());
    // Only the secret and shop id: no api_base_url, no allowed host.
    let pool = cvco_plugin_host::Pool::builder(wasm())
        .config("notification_secret", shop.notification_secret.clone())
        .config("shop_id", shop.id.clone())
        .build()
        .unwrap();
    let input =
        json!({"headers": {"cvco-signature": header}, "body": body, "now": now.plus_secs(30)});
    let v: VerifiedNotification = call(&pool, "verify_notification", input.clone());
    assert_eq!(v.event_id, "evt_local");
    // Without `now` and without api_base_url the plugin says what is missing.
    let mut no_now = input;
    no_now.as_object_mut().unwrap().remove("now");
    let e = fails(&pool, "verify_notification", no_now);
    assert_code(&e, ErrorCode::ConfigMissing);
    assert_eq!(e.field.as_deref(), Some("api_base_url"));
}

#[test]
fn duplicated_deliveries_are_caught_by_the_hosts_seen_set() {
    let shop = shop();
    let pool = shop.pool();
    let rx = receiver();
    shop.faults(json!({"duplicate_notifications": true}));
    let p: cvco_core::plugin_api::Payment = call(
        &pool,
        "create_payment",
        json!({"order_ref": unique("CMD"), "amount_cents": 2200, "channel": "ecommerce",
               "beneficiary": "10000000001", "idempotency_key": unique("k"),
               "notification_url": rx.url}),
    );
    rx.wait_for(Duration::from_secs(10), |n| {
        n["transaction_id"] == json!(p.id) && n["state"] == "VALIDATED"
    });
    // Let the duplicate of the last event arrive too.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let deliveries = loop {
        let all: Vec<Captured> = rx.seen.lock().unwrap().clone();
        let validated = all
            .iter()
            .filter(|c| c.body.contains("\"VALIDATED\""))
            .count();
        if validated >= 2 {
            break all;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no duplicate delivered"
        );
        std::thread::sleep(Duration::from_millis(30));
    };
    shop.clear_faults();
    let mut seen = HashSet::new();
    let (mut fresh, mut replays) = (0, 0);
    for c in &deliveries {
        let v: VerifiedNotification = call(&pool, "verify_notification", input(c));
        if seen.insert(v.event_id) {
            fresh += 1;
        } else {
            replays += 1;
        }
    }
    assert!(replays >= 1, "{fresh} fresh, {replays} replays");
    assert_eq!(fresh, seen.len());
    assert_eq!(fresh + replays, deliveries.len());
}
