//! Misconfiguration and garbage input: always a typed error, never a trap, and the instance
//! keeps working afterwards.

use crate::common::*;
use cvco_core::plugin_api::{Capabilities, ValidatedBeneficiary, FUNCTIONS};
use cvco_core::ErrorCode;
use serde_json::{json, Value};

fn create_input() -> Value {
    json!({"order_ref": "CFG-1", "amount_cents": 2500, "channel": "ecommerce", "idempotency_key": "cfg-1"})
}

#[test]
fn every_missing_required_key_is_named() {
    let shop = shop();
    for key in ["api_base_url", "shop_id", "client_id", "client_secret"] {
        let pool = cvco_plugin_host::Pool::builder(wasm())
            .configs(shop.config().into_iter().filter(|(k, _)| *k != key))
            .allowed_host("127.0.0.1")
            .build()
            .unwrap();
        let e = fails(&pool, "create_payment", create_input());
        assert_code(&e, ErrorCode::ConfigMissing);
        assert_eq!(e.field.as_deref(), Some(key));
        // Blank counts as missing.
        let e = fails(
            &shop.pool_with(&[(key, "  ")]),
            "get_payment",
            json!({"payment_id": "tx_1"}),
        );
        assert_code(&e, ErrorCode::ConfigMissing);
        assert_eq!(e.field.as_deref(), Some(key));
    }
}

#[test]
fn every_malformed_key_is_named() {
    let shop = shop();
    let cases = [
        ("api_base_url", "ftp://127.0.0.1"),
        ("api_base_url", "127.0.0.1:7070"),
        ("api_base_url", "http://127.0.0.1/?x=1"),
        ("shop_id", "not a shop id!"),
        ("client_id", "a\u{1}b"),
        ("client_secret", "s\ne"),
        ("min_amount_cents", "12,50"),
        ("min_amount_cents", "-1"),
        ("adjustable", "yes"),
        ("authorization_timeout_s", "0"),
        ("authorization_timeout_s", "99999"),
        ("request_timeout_ms", "soon"),
    ];
    for (key, value) in cases {
        let pool = shop.pool_with(&[(key, value)]);
        let e = fails(&pool, "create_payment", create_input());
        assert_code(&e, ErrorCode::ConfigInvalid);
        assert_eq!(e.field.as_deref(), Some(key), "{key}={value:?}");
        assert!(e.message_en.contains(key), "{e:?}");
    }
    // Offline exports need no configuration at all.
    let bare = cvco_plugin_host::Pool::builder(wasm()).build().unwrap();
    let v: ValidatedBeneficiary = call(&bare, "validate_beneficiary", json!({"input": "a@b.fr"}));
    assert_eq!(v.value, "a@b.fr");
    let caps: Capabilities = call(&bare, "capabilities", json!({}));
    assert!(caps.config_keys.iter().all(|k| !k.present));
}

#[test]
fn capabilities_and_validation() {
    let pool = shop().pool();
    let caps: Capabilities = call(&pool, "capabilities", json!(null));
    assert_eq!(caps.plugin, "cvco-plugin");
    assert_eq!(caps.functions.len(), FUNCTIONS.len());
    assert_eq!(caps.channels.len(), 4);
    let secret = caps
        .config_keys
        .iter()
        .find(|k| k.key == "client_secret")
        .unwrap();
    assert!(secret.present && secret.secret && secret.required);
    assert!(
        !caps
            .config_keys
            .iter()
            .find(|k| k.key == "min_amount_cents")
            .unwrap()
            .present
    );
    let v: ValidatedBeneficiary = call(
        &pool,
        "validate_beneficiary",
        json!({"input": "]C010000000001\r\n", "scanned": true}),
    );
    assert_eq!(v.value, "10000000001");
    assert_eq!(v.masked, "*******0001");
    let v: ValidatedBeneficiary = call(
        &pool,
        "validate_beneficiary",
        json!({"input": "CVCO-ID:10000000007", "scanned": true}),
    );
    assert_eq!(v.value, "10000000007");
    let e = fails(
        &pool,
        "validate_beneficiary",
        json!({"input": "1234567890"}),
    );
    assert_code(&e, ErrorCode::InvalidBeneficiary);
    assert_eq!(e.field.as_deref(), Some("input"));
}

#[test]
fn garbage_to_every_export_is_a_typed_error() {
    let shop = shop();
    let pool = shop.pool();
    let huge = "é".repeat(200_000);
    let garbage: Vec<Vec<u8>> = vec![
        b"".to_vec(),
        b"not json".to_vec(),
        b"{".to_vec(),
        b"[]".to_vec(),
        b"42".to_vec(),
        b"\"str\"".to_vec(),
        b"null".to_vec(),
        vec![0xff, 0xfe, 0x00, 0x01],
        br#"{"order_ref": 5, "amount_cents": "45,50", "payment_id": [], "input": {}, "payload": 1, "headers": "x", "body": 3, "from": true, "request_id": null}"#.to_vec(),
        br#"{"unexpected_field": 1}"#.to_vec(),
        format!(r#"{{"input": "{huge}", "payload": "{huge}", "order_ref": "{huge}"}}"#).into_bytes(),
        vec![b' '; 300 * 1024],
        br#"{"payment_id": "../../admin/faults", "request_id": "a/b?c", "amount_cents": 99999999999999999999}"#.to_vec(),
    ];
    for f in FUNCTIONS.iter().filter(|f| **f != "capabilities") {
        for g in &garbage {
            let answer = pool.call_raw(f, g).unwrap_or_else(|e| {
                panic!(
                    "{f} trapped on {:?}: {e:?}",
                    String::from_utf8_lossy(&g[..g.len().min(60)])
                )
            });
            let v: Value = serde_json::from_slice(&answer).expect("JSON answer");
            let e = &v["error"];
            assert!(e.is_object(), "{f} accepted garbage: {v}");
            assert!(
                e["code"].is_string() && e["message_fr"].is_string() && e["message_en"].is_string()
            );
            assert!(answer.len() < 4096, "{f}: error of {} bytes", answer.len());
        }
    }
    let e = fails(&pool, "no_such_export", json!({}));
    assert_code(&e, ErrorCode::NotFound);
    // No instance was lost, and the instance still works.
    assert_eq!(pool.stats().discarded, 0);
    let v: ValidatedBeneficiary = call(
        &pool,
        "validate_beneficiary",
        json!({"input": "10000000001"}),
    );
    assert_eq!(v.kind, cvco_core::plugin_api::BeneficiaryKind::CvConnectId);
    let p = create_payment(&pool, 2500, None);
    assert_eq!(p.amount_cents.cents(), 2500);
}
