//! The merchant contract's exports (`checkout`, `render_payment`, `error_catalogue`,
//! `parse_request`) through the real `.wasm`: the answer is byte for byte what `cvco_core::contract`
//! gives natively, so a Python or TypeScript adapter renders exactly what cvco-host renders.

use crate::common::*;
use cvco_core::contract::{self, CheckoutInput, Operation, RenderPaymentInput};
use cvco_core::plugin_api::{exports, Payment, Reply};
use cvco_core::{Amount, ErrorCode, MerchantSettings, Timestamp};
use serde_json::json;
use std::time::Duration;

/// The raw answer of `function`, and what core gives natively for the same input.
fn same_bytes<T: serde::Serialize>(
    pool: &cvco_plugin_host::Pool,
    function: &str,
    input: &serde_json::Value,
    native: Result<T, cvco_core::CvcoError>,
) {
    let wasm = pool
        .call_raw(function, input.to_string().as_bytes())
        .unwrap();
    let native = serde_json::to_vec(&Reply::from(native)).unwrap();
    assert_eq!(
        String::from_utf8_lossy(&wasm),
        String::from_utf8_lossy(&native),
        "{function}({input})"
    );
}

fn cents(n: u64) -> Amount {
    Amount::from_cents(n).unwrap()
}

#[test]
fn checkout_reads_the_merchants_settings_from_the_manifest_not_from_the_host() {
    let shop = shop();
    let pool = shop.pool_with(&[
        ("min_amount_cents", "3000"),
        ("adjustable", "false"),
        ("authorization_timeout_s", "90"),
    ]);
    let order = |remaining: u64| CheckoutInput {
        order_ref: "CHK-1".into(),
        order_total_cents: cents(8000),
        order_remaining_cents: cents(remaining),
        currency: "EUR".into(),
        payable: true,
        modes: vec![],
        cvco_authorized: false,
    };
    let low = pool.call::<exports::Checkout>(&order(2500)).unwrap();
    assert!(!low.eligible);
    let reason = low.ineligible_reason.unwrap();
    assert_eq!(reason.code, ErrorCode::AmountBelowMinimum);
    assert!(reason.message_fr.contains("30,00"), "{reason:?}");
    assert_eq!(low.min_amount_cents, cents(3000));
    assert!(!low.adjustable);
    assert_eq!(low.authorization_timeout_s, 90);
    let ok = pool.call::<exports::Checkout>(&order(3000)).unwrap();
    assert!(ok.eligible);
    // The defaults when the manifest says nothing, and the bytes core gives.
    let settings = MerchantSettings::default();
    same_bytes(
        &shop.pool(),
        "checkout",
        &json!({"order_ref": "CHK-2", "order_total_cents": 1500, "order_remaining_cents": 1500}),
        Ok(contract::checkout(
            &settings,
            CheckoutInput {
                order_ref: "CHK-2".into(),
                order_total_cents: cents(1500),
                order_remaining_cents: cents(1500),
                currency: "EUR".into(),
                payable: true,
                modes: vec![],
                cvco_authorized: false,
            },
        )),
    );
    // A bad setting is named, as for every other export.
    let e = fails(
        &shop.pool_with(&[("min_amount_cents", "vingt")]),
        "checkout",
        json!({"order_ref": "CHK-3", "order_total_cents": 1, "order_remaining_cents": 1}),
    );
    assert_code(&e, ErrorCode::ConfigInvalid);
    assert_eq!(e.field.as_deref(), Some("min_amount_cents"));
}

#[test]
fn render_payment_of_a_real_transaction_is_cores_rendering() {
    let shop = shop();
    let pool = shop.pool();
    let p: Payment = call(
        &pool,
        "create_payment",
        json!({"order_ref": "RND-1", "amount_cents": 4200, "channel": "ecommerce",
               "beneficiary": "alice.approve@sandbox.cvco.test", "idempotency_key": "rnd-1"}),
    );
    let p = wait_final(&pool, &p.id, Duration::from_secs(10));
    let input = RenderPaymentInput {
        payment_id: "pay_rnd1".into(),
        order_ref: "RND-1".into(),
        mode: contract::PaymentMode::Identifier,
        order_total_cents: cents(4200),
        order_remaining_cents: Amount::ZERO,
        sequence: 3,
        created_at: Timestamp(1_000),
        updated_at: Timestamp(2_000),
        events_url: "/cvco/v1/payments/pay_rnd1/events".into(),
        beneficiary_masked: Some("a***@sandbox.cvco.test".into()),
        request_id: None,
        channel: None,
        payment: Some(p.clone()),
        request: None,
        amount_cents: None,
        error: None,
        capture_window_s: None,
    };
    let rendered = pool.call::<exports::RenderPayment>(&input).unwrap();
    assert_eq!(rendered.status, "authorized");
    assert!(rendered.is_final);
    assert_eq!(rendered.transaction_id.as_deref(), Some(p.id.as_str()));
    assert_eq!(rendered.authorizations.len(), 1);
    assert_eq!(
        rendered.updated_at, p.updated_at,
        "ANCV's later update wins"
    );
    same_bytes(
        &pool,
        "render_payment",
        &serde_json::to_value(&input).unwrap(),
        Ok(contract::render_payment(input.clone())),
    );
    // Without an answer from ANCV: unknown, never final.
    let unknown = RenderPaymentInput {
        payment: None,
        amount_cents: Some(cents(4200)),
        ..input
    };
    let rendered = pool.call::<exports::RenderPayment>(&unknown).unwrap();
    assert_eq!(rendered.status, contract::UNKNOWN);
    assert!(!rendered.is_final);
}

#[test]
fn the_error_catalogue_is_cores_table() {
    let pool = shop().pool();
    same_bytes(
        &pool,
        "error_catalogue",
        &json!({}),
        Ok(contract::error_catalogue()),
    );
    let e = fails(&pool, "error_catalogue", json!({"locale": "fr"}));
    assert_code(&e, ErrorCode::InvalidRequest);
}

#[test]
fn every_adapter_gets_the_same_bytes_for_the_same_bad_body() {
    let pool = shop().pool();
    let cases = [
        (Operation::CreatePayment, ""),
        (Operation::CreatePayment, "not json"),
        (Operation::CreatePayment, "[1, 2]"),
        (
            Operation::CreatePayment,
            r#"{"order_ref": "A", "attempt": ""}"#,
        ),
        (
            Operation::CreatePayment,
            r#"{"order_ref": "A b", "attempt": "x"}"#,
        ),
        (
            Operation::CreatePayment,
            r#"{"order_ref": "A", "attempt": "x", "beneficiary": "nobody"}"#,
        ),
        (
            Operation::CreatePayment,
            r#"{"order_ref": "A", "attempt": "x", "mode": "qr", "beneficiary": "a@b.fr"}"#,
        ),
        (
            Operation::CreatePayment,
            r#"{"order_ref": "A", "attempt": "x", "beneficiary": "B@Sandbox.cvco.test", "amount_cents": 1}"#,
        ),
        (
            Operation::Refund,
            r#"{"attempt": "r", "amount_cents": 12.5}"#,
        ),
        (
            Operation::Refund,
            r#"{"attempt": "r", "reason": "trop \u0007"}"#,
        ),
        (
            Operation::CreatePaymentRequest,
            r#"{"order_ref": "A", "attempt": "a", "delivery": "fax"}"#,
        ),
        (
            Operation::CreatePaymentRequest,
            r#"{"order_ref": "A", "attempt": "a", "delivery": "email", "email": "j@ex.fr", "expires_in_s": 5}"#,
        ),
        (
            Operation::BackOfficePayment,
            r#"{"order_ref": "A", "attempt": "a", "channel": "ecommerce"}"#,
        ),
        (Operation::Finalise, r#"{"amount_cents": "12"}"#),
        (
            Operation::CancelByReference,
            r#"{"transaction_id": "../admin"}"#,
        ),
    ];
    for (operation, body) in cases {
        let input = json!({"operation": operation, "body": body});
        same_bytes(
            &pool,
            "parse_request",
            &input,
            contract::parse_request(operation, body),
        );
    }
    let e = fails(
        &pool,
        "parse_request",
        json!({"operation": "pay", "body": "{}"}),
    );
    assert_code(&e, ErrorCode::InvalidRequest);
}
